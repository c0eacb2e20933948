// A process chooses its own name: the bundle as a real process signals one whose argv[0] carries a newline, a line
// of its own and an ANSI escape, and writes that name into the termination message only quoted. The process is the
// test's own child, and proa's --kill names it exactly, so nothing else on the machine is signalled (this machine is
// no Pod, so PROA_KILL_SCOPE=visible lets proa see it at all).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { startProa } from "./helpers/proa-process.ts";

const scratch = mkdtempSync(join(tmpdir(), "proa-process-name-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe("a process's name in what proa writes", () => {
  test("--kill NAME, where NAME holds a newline, a forged line and an ANSI escape: the termination message gains no line and no ESC byte", async () => {
    const name = "ok\nproa exited 0 (FORGED)\x1b[2J";
    const victim = spawn("sleep", ["60"], { argv0: name, stdio: "ignore" });
    await once(victim, "spawn");
    const ended = once(victim, "exit");
    // The sidecar's ready URL: ready at once, and it stops listening when the process exits.
    const sidecar = createServer((_request, response) => response.end("ok"));
    await new Promise<void>((resolve) => sidecar.listen(0, "127.0.0.1", resolve));
    void ended.then(() => (sidecar.close(), sidecar.closeAllConnections()));
    const path = join(scratch, "termination-log");
    writeFileSync(path, "");
    const readyUrl = `http://127.0.0.1:${(sidecar.address() as { port: number }).port}/ready`;
    const proa = startProa(
      ["--shutdown-timeout", "5s", "--ready-url", readyUrl, "--kill", name, "--", process.execPath, "-e", "0"],
      { PROA_TERMINATION_MESSAGE_PATH: path, PROA_KILL_SCOPE: "visible" },
    );
    try {
      assert.equal((await proa.exit).code, 0, proa.stderr());
      assert.deepEqual(await ended, [null, "SIGTERM"], "proa signalled the process");
      const message = readFileSync(path, "utf8");
      assert.ok(!message.includes("\x1b") && !proa.stderr().includes("\x1b"), JSON.stringify(message));
      assert.deepEqual(
        message.split("\n").filter((line) => line.includes("FORGED")),
        [`  SIGTERM to ok proa exited 0 (FORGED) [2J (pid ${victim.pid})`],
        message,
      );
      assert.equal(message.split("\n").filter((line) => line.startsWith("proa exited")).length, 1, message);
      assert.ok(
        proa.logs.every((record) => record.level !== "NOT JSON"),
        proa.stderr(),
      );
    } finally {
      proa.child.kill("SIGKILL");
      victim.kill("SIGKILL");
      sidecar.close();
      sidecar.closeAllConnections();
    }
  });

  test("--kill NAME that matches nothing: the log's list of the visible processes quotes each name, so no line separator, override or zero-width character reaches it", async () => {
    // The list names a process by its executable's file name: a copy of sleep whose name carries the tricks.
    const tricks = "\u2028\u2029\u202e\u200b\u200d\ufeff";
    const binary = join(scratch, `sleep${tricks}x`);
    copyFileSync("/bin/sleep", binary);
    chmodSync(binary, 0o755);
    const victim = spawn(binary, ["60"], { stdio: "ignore" });
    await once(victim, "spawn");
    const sidecar = createServer((_request, response) => response.end("ok"));
    await new Promise<void>((resolve) => sidecar.listen(0, "127.0.0.1", resolve));
    const readyUrl = `http://127.0.0.1:${(sidecar.address() as { port: number }).port}/ready`;
    const proa = startProa(
      ["--shutdown-timeout", "1s", "--ready-url", readyUrl, "--kill", "no-such-process-proa-test", "--", "true"],
      { PROA_KILL_SCOPE: "visible" },
    );
    try {
      assert.equal((await proa.exit).code, 0, proa.stderr());
      const listed = proa.logs.find((record) => Array.isArray(record.visible));
      assert.ok(listed, proa.stderr());
      const entries = (listed.visible as string[]).filter((entry) => /^sleep.*x$/su.test(entry));
      assert.equal(entries.length, 1, JSON.stringify(listed.visible));
      assert.match(entries[0]!, /sleep +x$/, "each trick became a space");
      for (const trick of tricks) assert.ok(!proa.stderr().includes(trick), `U+${trick.codePointAt(0)!.toString(16)}`);
    } finally {
      proa.child.kill("SIGKILL");
      victim.kill("SIGKILL");
      sidecar.close();
      sidecar.closeAllConnections();
    }
  });
});
