// The program's status survives everything around proa (issue #37): a stderr that cannot be written, signals in
// every window of proa's life, spawn errors. The bundle runs as a real process beside a real sidecar endpoint
// (--ready-url), and each test checks the status, the shutdown request and the termination message alike.
import assert from "node:assert/strict";
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { once } from "node:events";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, describe, test } from "node:test";
import { BUNDLE } from "./helpers/proa-process.ts";

const NODE = process.execPath;
const scratch = mkdtempSync(join(tmpdir(), "proa-status-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
const started: ChildProcess[] = [];
const servers: Server[] = [];
afterEach(() => {
  for (const child of started.splice(0)) child.kill("SIGKILL");
  for (const server of servers.splice(0)) (server.closeAllConnections(), server.close());
});

/** A sidecar's admin endpoint: GET /ready answers 200; POST /quit is recorded, answered, and the sidecar then stops
 * listening, as a real one exits, so that proa's wait for its port to close ends at once. */
async function sidecar() {
  const received: string[] = [];
  const server = createServer((request, response) => {
    received.push(`${request.method} ${request.url}`);
    response.end("ok");
    if (request.url === "/quit") response.on("finish", () => (server.closeAllConnections(), server.close()));
  });
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { received, args: ["--ready-url", `${base}/ready`, "-p", `${base}/quit`] };
}

let runs = 0;
/** Runs the bundle with proa's options and the program after --; stderr as given (a pipe by default). */
async function runProa(options: string[], program: string[], stderr: StdioOptions[number] = "pipe") {
  const terminationLog = join(scratch, `termination-log-${++runs}`);
  writeFileSync(terminationLog, "");
  const child = spawn(NODE, [BUNDLE, ...options, "--", ...program], {
    env: { PATH: process.env.PATH ?? "", PROA_TERMINATION_MESSAGE_PATH: terminationLog },
    stdio: ["ignore", "pipe", stderr],
  });
  started.push(child);
  let stderrText = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderrText += chunk));
  const exit = once(child, "exit").then(([code, signal]) => ({ code: code as number | null, signal }));
  return { child, exit, stderr: () => stderrText, terminationMessage: () => readFileSync(terminationLog, "utf8") };
}

const exitsSeven = [NODE, "-e", "setTimeout(() => process.exit(7), 300)"];

describe("a log line that cannot be written is dropped; the status, the shutdown and the termination message stay", () => {
  test("stderr's reader goes away (EPIPE): proa exits with the program's 7, shuts the sidecar down, writes the termination message", async () => {
    const { received, args } = await sidecar();
    const proa = await runProa(args, exitsSeven);
    proa.child.stderr!.destroy(); // the reader of proa's stderr is gone: its next write fails with EPIPE
    assert.deepEqual(await proa.exit, { code: 7, signal: null });
    assert.deepEqual(received, ["GET /ready", "POST /quit"]);
    assert.match(proa.terminationMessage(), /proa exited 7/);
  });

  test("stderr is /dev/full (ENOSPC): proa exits with the program's 7, shuts the sidecar down, writes the termination message", async () => {
    const { received, args } = await sidecar();
    const full = openSync("/dev/full", "w");
    const proa = await runProa(args, exitsSeven, full);
    closeSync(full);
    assert.deepEqual(await proa.exit, { code: 7, signal: null });
    assert.deepEqual(received, ["GET /ready", "POST /quit"]);
    assert.match(proa.terminationMessage(), /proa exited 7/);
  });
});
