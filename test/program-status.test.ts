// The program's status survives everything around proa (issue #37): a stderr that cannot be written, signals in
// every window of proa's life, spawn errors. The bundle runs as a real process beside a real sidecar endpoint
// (--ready-url), and each test checks the status, the shutdown request and the termination message alike.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { BUNDLE, SIGNAL_REPORTER } from "./helpers/proa-process.ts";

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
/** Runs the bundle with proa's options and the program after -- (none for --check); stderr as given (a pipe by
 * default); Node's own flags before the bundle, as an image's command line gives them. */
async function runProa(
  options: string[],
  program: string[],
  stderr: "pipe" | number = "pipe",
  nodeFlags: string[] = [],
) {
  const terminationLog = join(scratch, `termination-log-${++runs}`);
  writeFileSync(terminationLog, "");
  const command = program.length > 0 ? ["--", ...program] : [];
  const child: ChildProcess = spawn(NODE, [...nodeFlags, BUNDLE, ...options, ...command], {
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

// ---------------------------------------------------------------------------------------------------------------
// Signals in every window of proa's life

/** What Node prints when SIGUSR1 opened its inspector (on 127.0.0.1:9229, to anyone in the Pod's network). */
const INSPECTOR = /Debugger listening|Debugger ending/;

/** A sidecar whose ready URL answers only after delayMs, so that --check is still checking meanwhile. */
async function slowSidecar(delayMs: number) {
  let asked: () => void;
  const askedOnce = new Promise<void>((resolve) => (asked = resolve));
  const server = createServer((_request, response) => {
    asked();
    setTimeout(() => response.end("ok"), delayMs);
  });
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ready`, askedOnce };
}

describe("signals during --check", () => {
  test("SIGUSR1 during --check does not open Node's inspector, and the check's own status stands", async () => {
    const sidecar = await slowSidecar(1000);
    const proa = await runProa(["--check", "--ready-url", sidecar.url], []);
    await sidecar.askedOnce; // the check is under way
    proa.child.kill("SIGUSR1");
    assert.deepEqual(await proa.exit, { code: 0, signal: null });
    assert.doesNotMatch(proa.stderr(), INSPECTOR);
  });

  test("SIGTERM during --check stops it with 143, and a line says so", async () => {
    const sidecar = await slowSidecar(5000);
    const proa = await runProa(["--check", "--ready-url", sidecar.url], []);
    await sidecar.askedOnce;
    proa.child.kill("SIGTERM");
    assert.deepEqual(await proa.exit, { code: 143, signal: null });
    assert.match(proa.stderr(), /received SIGTERM during --check: stopping the check/);
  });
});

/** The Node flags the default image's ENTRYPOINT (the one that runs /proa/proa.js with node) gives before it. */
function imageNodeFlags(): string[] {
  const dockerfile = readFileSync(new URL("../Dockerfile", import.meta.url), "utf8");
  const entrypoints = [...dockerfile.matchAll(/^ENTRYPOINT (\[.*\])$/gm)].map((m) => JSON.parse(m[1]!) as string[]);
  const argv = entrypoints.find((argv) => argv.includes("/proa/proa.js"));
  assert.ok(argv, "the Dockerfile has an ENTRYPOINT that runs /proa/proa.js");
  return argv.slice(1, argv.indexOf("/proa/proa.js"));
}

/** Whether Node has blocked SIGUSR1 in pid's main thread: it does so first thing (PlatformInit), before which the
 * signal's default action ends any process, which no code of proa's can prevent (as PID 1 the kernel drops it). */
function blocksSigusr1(pid: number): boolean {
  try {
    const blocked = /^SigBlk:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "0";
    return (BigInt(`0x${blocked}`) & (1n << 9n)) !== 0n; // SIGUSR1 is 10: bit 9
  } catch {
    return false;
  }
}

describe("SIGUSR1 from the moment Node starts, run as the image runs proa", () => {
  const flags = imageNodeFlags();
  const unsupported = flags.filter((flag) => !process.allowedNodeEnvironmentFlags.has(flag));
  for (const delayMs of [0, 10, 25, 50, 100, 200]) {
    test(
      `SIGUSR1 ${delayMs} ms after Node started opens no inspector and leaves the program's status`,
      {
        skip: unsupported.length > 0 && `Node ${process.version} has no ${unsupported.join(", ")} (22.14 and later do)`,
      },
      async () => {
        const { args } = await sidecar();
        // The program ignores SIGUSR1, so that only proa's status can change: a node program would open its own inspector.
        const program = ["sh", "-c", "trap '' USR1; sleep 1; exit 3"];
        const proa = await runProa(args, program, "pipe", flags);
        while (!blocksSigusr1(proa.child.pid!)) await sleep(1);
        await sleep(delayMs);
        proa.child.kill("SIGUSR1");
        assert.deepEqual(await proa.exit, { code: 3, signal: null });
        assert.doesNotMatch(proa.stderr(), INSPECTOR);
      },
    );
  }

  test(
    "the price, pinned so that a Node release that changes it is noticed: under --disable-sigusr1 Node keeps SIGUSR1 blocked, so proa cannot pass it to the program",
    { skip: unsupported.length > 0 && `Node ${process.version} has no ${unsupported.join(", ")} (22.14 and later do)` },
    async () => {
      const { args } = await sidecar();
      const proa = await runProa(args, [NODE, SIGNAL_REPORTER, "5"], "pipe", flags);
      const lines: string[] = [];
      proa.child.stdout!.setEncoding("utf8").on("data", (chunk: string) => lines.push(...chunk.split("\n")));
      while (!lines.includes("ready")) await sleep(10);
      proa.child.kill("SIGUSR1");
      await sleep(300);
      proa.child.kill("SIGTERM");
      assert.deepEqual(await proa.exit, { code: 5, signal: null });
      assert.deepEqual(lines.filter(Boolean), ["ready", "SIGTERM"], "SIGUSR1 never reached the program");
    },
  );
});

// ---------------------------------------------------------------------------------------------------------------
// Spawn errors

describe("a program that cannot be spawned is the program's failure, 127 or 126 with the errno, never the wait's", () => {
  const cases: { name: string; errno: string; status: number; path: () => string }[] = [
    {
      name: "a path under a regular file",
      errno: "ENOTDIR",
      status: 127,
      path: () => (writeFileSync(join(scratch, "a-file"), "x"), join(scratch, "a-file", "program")),
    },
    {
      name: "a symbolic link loop",
      errno: "ELOOP",
      status: 127,
      path: () => (symlinkSync("loop", join(scratch, "loop")), join(scratch, "loop")),
    },
    {
      name: "a name longer than a path may be",
      errno: "ENAMETOOLONG",
      status: 127,
      path: () => `/${"x".repeat(256)}`,
    },
    {
      name: "a binary still being written (into a shared volume, say)",
      errno: "ETXTBSY",
      status: 126,
      path: () => {
        const binary = join(scratch, "being-copied");
        writeFileSync(binary, "#!/bin/sh\nexit 0\n");
        chmodSync(binary, 0o755);
        const writer = openSync(binary, "r+"); // held open for writing until proa has tried
        after(() => closeSync(writer));
        return binary;
      },
    },
  ];
  for (const { name, errno, status, path } of cases) {
    test(`${name} (${errno}): proa exits ${status}, logs and summarises the errno, and still shuts the sidecar down`, async () => {
      const { received, args } = await sidecar();
      const proa = await runProa([...args, "--shutdown-timeout", "5s"], [path()]);
      assert.deepEqual(await proa.exit, { code: status, signal: null });
      const logs = proa
        .stderr()
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as Record<string, any>);
      const error = logs.find((record) => record.level === "error");
      assert.equal(error?.error, errno, proa.stderr());
      assert.match(error.msg, status === 127 ? /was not found/ : /cannot be executed/);
      const summary = logs.find((record) => record.msg === "summary");
      assert.deepEqual(summary?.program.kind, "not-started");
      assert.equal(summary?.program.errno, errno);
      assert.equal(summary?.wait.ending, "ready", "the wait did not fail: the sidecars were ready");
      assert.deepEqual(received, ["GET /ready", "POST /quit"]);
      const word = status === 127 ? "not found" : "cannot be executed";
      assert.match(proa.terminationMessage().split("\n")[0]!, new RegExp(`${word} \\(${errno}\\)`));
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Real-time signals: what Node cannot tell, pinned so that a release that can is noticed

describe("a program killed by a real-time signal (SIGRTMIN..SIGRTMAX): Node reports it as exited 0, and so does proa", () => {
  // A shell reports 128 + 36 = 164 for RTMIN+2. Node's child_process turns the signal's number into its name in C++
  // (process_wrap.cc: signo_string) and has none for these, so 'exit' and 'close' give code 0 and signal null, exactly
  // as for a program that exited 0. When this test fails, Node tells them apart: make proa report 128 + N.
  const killedByRealTimeSignal = ["sh", "-c", "kill -s RTMIN+2 $$"];

  test("a shell sees 164; Node's spawn sees code 0 and signal null, as for exit 0; only spawnSync, which proa cannot use, sees a signal without a name", async () => {
    const shell = spawnSync("sh", ["-c", "sh -c 'kill -s RTMIN+2 $$'; echo $?"]);
    assert.equal(shell.stdout.toString().trim(), "164");
    const child = spawn(killedByRealTimeSignal[0]!, killedByRealTimeSignal.slice(1), { stdio: "ignore" });
    started.push(child);
    assert.deepEqual(await once(child, "exit"), [0, null]);
    const exitedZero = spawn("sh", ["-c", "exit 0"], { stdio: "ignore" });
    started.push(exitedZero);
    assert.deepEqual(await once(exitedZero, "exit"), [0, null], "the same as a program that exited 0");
    const sync = spawnSync(killedByRealTimeSignal[0]!, killedByRealTimeSignal.slice(1));
    assert.deepEqual([sync.status, sync.signal], [null, ""]); // blocks the event loop, and gives no pid to signal
  });

  test("proa exits 0 and logs that the program exited 0 (README's Exit status and SECURITY.md say so)", async () => {
    const { args } = await sidecar();
    const proa = await runProa(args, killedByRealTimeSignal);
    assert.deepEqual(await proa.exit, { code: 0, signal: null });
    assert.match(proa.stderr(), /"msg":"program exited","code":0/);
  });
});

describe("the C library's shell, not proa's", () => {
  const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header
    ?.glibcVersionRuntime;
  test(
    "an executable file without #! is run by /bin/sh: glibc's execvp falls back to it (ENOEXEC), not proa",
    { skip: !glibc && "not glibc: musl's execvp has no such fallback" },
    async () => {
      const script = join(scratch, "no-shebang");
      writeFileSync(script, "echo run by the shell; exit 4\n");
      chmodSync(script, 0o755);
      const { args } = await sidecar();
      const proa = await runProa(args, [script]);
      let stdout = "";
      proa.child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
      assert.deepEqual(await proa.exit, { code: 4, signal: null });
      assert.equal(stdout, "run by the shell\n");
    },
  );
});

// ---------------------------------------------------------------------------------------------------------------
// A flapping ready URL

test("a ready URL alternating 500 and 503 for 2 s writes each answer once and then counts it, not 20 lines a second", async () => {
  let requests = 0;
  const began = Date.now();
  const server = createServer((_request, response) => {
    requests++;
    response.statusCode = Date.now() - began > 2000 ? 200 : requests % 2 ? 500 : 503;
    response.end();
  });
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ready`;
  const proa = await runProa(["--ready-url", url, "--shutdown-timeout", "1s"], ["true"]);
  assert.deepEqual(await proa.exit, { code: 0, signal: null });
  const waiting = proa
    .stderr()
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { msg: string; level: string })
    .filter(({ msg }) => msg.startsWith("waiting for URLs to be ready"));
  // An HTTP error from a sidecar that is starting is no mistake of the user's: info, as before the limit.
  assert.deepEqual(new Set(waiting.map(({ level }) => level)), new Set(["info"]));
  assert.ok(requests > 20, `the URL was asked ${requests} times`);
  assert.ok(waiting.length <= 4, `${waiting.length} lines:\n${waiting.map(({ msg }) => msg).join("\n")}`);
  assert.match(
    waiting.at(-1)!.msg,
    /these answers came \d+ more times in \d+ s$/,
    "the counts are written when the wait ends",
  );
});
