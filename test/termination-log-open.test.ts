// writeTerminationMessage against files that look like the kubelet's empty termination log but are not: a hard link
// to another file, a kernel file on procfs, a FIFO a reader waits on, which must not even be opened for writing, and
// a file swapped in between the checks and the open (through writeTerminationMessage's open, the one seam).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  constants,
  linkSync,
  lstatSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { writeTerminationMessage } from "../summary.ts";
import { recordingLog } from "./helpers/shutdown-log.ts";

const scratch = mkdtempSync(join(tmpdir(), "proa-termination-open-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const write = (path: string) => {
  const log = recordingLog();
  writeTerminationMessage("program exited 0 (FORGED)", { path, from: "test" }, 0, log);
  return log.lines;
};

describe("the termination log is written only when it is the kubelet's file alone", () => {
  test("a hard link to another empty file is not written: neither name gets the message", () => {
    const other = join(scratch, "other-file");
    writeFileSync(other, "");
    const link = join(scratch, "hard-link");
    linkSync(other, link);
    assert.deepEqual(
      write(link).map((line) => line.msg),
      [`not writing the termination message: ${link} has 2 hard links, so it is not only the kubelet's file`],
    );
    assert.equal(readFileSync(other, "utf8"), "");
  });

  test("a kernel file on procfs that looks like an empty regular file (/proc/self/comm) is not written", () => {
    const comm = readFileSync("/proc/self/comm", "utf8");
    for (const path of ["/proc/self/comm", `/proc/${process.pid}/comm`]) {
      assert.deepEqual(
        write(path).map((line) => line.msg),
        [`not writing the termination message: ${path} is on /proc, a kernel file`],
      );
    }
    assert.equal(readFileSync("/proc/self/comm", "utf8"), comm);
  });

  test("a FIFO with a reader waiting is never opened for writing: the reader's open never returns", async () => {
    const fifo = join(scratch, "fifo");
    assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
    // A blocking open for reading returns only once some process opens the FIFO for writing.
    const reader = spawn(
      process.execPath,
      ["-e", `console.log("opening"); require("fs").openSync(${JSON.stringify(fifo)}, "r"); console.log("opened")`],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      let output = "";
      reader.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
      while (!output.includes("opening")) await sleep(10);
      await sleep(200); // the reader is now blocked in its open
      assert.deepEqual(
        write(fifo).map((line) => line.msg),
        [`not writing the termination message: ${fifo} is not a regular file`],
      );
      await sleep(200);
      assert.equal(output, "opening\n", "no writer ever opened the FIFO");
    } finally {
      reader.kill("SIGKILL");
    }
  });
});

describe("a file swapped in between the checks and the open is not written", () => {
  /** Checks an empty regular file at path, then runs swap before opening it with the flags writeTerminationMessage
   * chose, which it records. A blocking open of a FIFO without a reader would never return: it fails instead. */
  const writeSwapped = (name: string, swap: (path: string) => void) => {
    const path = join(scratch, name);
    writeFileSync(path, "");
    const log = recordingLog();
    const flags: number[] = [];
    const open = (file: string, flag: number) => {
      flags.push(flag);
      swap(file);
      if (!(flag & constants.O_NONBLOCK) && lstatSync(file).isFIFO())
        throw Object.assign(new Error("a blocking open of a FIFO without a reader never returns"), { code: "EHANG" });
      return openSync(file, flag);
    };
    writeTerminationMessage("program exited 0 (FORGED)", { path, from: "test" }, 0, log, open);
    return { path, msgs: log.lines.map((line) => line.msg), flags };
  };

  test("another empty regular file renamed over it: the opened file is not the one checked, so neither is written", () => {
    const other = join(scratch, "swapped-in");
    const { path, msgs } = writeSwapped("renamed-over", (file) => {
      writeFileSync(other, "");
      renameSync(other, file);
    });
    assert.deepEqual(msgs, [`not writing the termination message: ${path} was replaced while proa opened it`]);
    assert.equal(readFileSync(path, "utf8"), "");
  });

  test("a FIFO without a reader: the open is non-blocking (O_NONBLOCK) and fails at once with ENXIO, never hanging proa", () => {
    const { path, msgs, flags } = writeSwapped("fifo-swapped-in", (file) => {
      unlinkSync(file);
      assert.equal(spawnSync("mkfifo", [file]).status, 0);
    });
    assert.equal(flags.length, 1);
    assert.ok(flags[0]! & constants.O_NONBLOCK, `opened with flags ${flags[0]}, without O_NONBLOCK`);
    assert.deepEqual(msgs, [`not writing the termination message: cannot open ${path} for writing (ENXIO)`]);
  });

  test("a symlink to another empty file: not followed (O_NOFOLLOW, ELOOP), so the file it points to is not written", () => {
    const target = join(scratch, "symlink-target");
    writeFileSync(target, "");
    const { path, msgs } = writeSwapped("symlink-swapped-in", (file) => {
      unlinkSync(file);
      symlinkSync(target, file);
    });
    assert.deepEqual(msgs, [`not writing the termination message: cannot open ${path} for writing (ELOOP)`]);
    assert.equal(readFileSync(target, "utf8"), "");
  });
});
