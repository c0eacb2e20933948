// A process chooses its own name: the bundle as a real process signals one whose argv[0] carries a newline, a line
// of its own and an ANSI escape, and writes that name into the termination message only quoted. The process is the
// test's own child, and proa's --kill names it exactly, so nothing else on the machine is signalled (this machine is
// no Pod, so PROA_KILL_SCOPE=visible lets proa see it at all).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
});
