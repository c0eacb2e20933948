// What proa does when a sidecar dies or restarts while the program runs, as a black box: the bundle as a real process
// against the fake API server, whose Pod the test changes mid-run as the kubelet would. One watch serves the whole
// life: the requests the fake server receives are counted.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { ContainerStatus, Pod } from "../kube.ts";
import {
  EXPIRED,
  podWith,
  startFakeApiServer,
  watchEvent,
  type FakeApiServer,
  type PodShape,
} from "./fake-apiserver.ts";
import { SIGNAL_REPORTER, startProa, type LogRecord, type ProaProcess } from "./helpers/proa-process.ts";

const NODE = process.execPath;
const SIDECAR_DIED = 69;
const scratch = mkdtempSync(join(tmpdir(), "proa-run-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const regular: PodShape = { sidecars: ["db-proxy"], ready: true };
const native: PodShape = { nativeSidecars: ["mesh"], ready: true };

/** The Pod with one container's status changed, as the kubelet reports it (the spec, as a real Pod's, unchanged). */
function withStatus(pod: Pod, name: string, status: Partial<ContainerStatus>): Pod {
  const next = structuredClone(pod);
  for (const list of [next.status?.containerStatuses, next.status?.initContainerStatuses])
    for (const s of list ?? []) if (s.name === name) Object.assign(s, status);
  return next;
}
const killed = (exitCode: number, reason: string) => ({
  terminated: { exitCode, reason, startedAt: "2026-12-07T10:50:54Z", finishedAt: "2026-12-07T10:51:00Z" },
});
const running = { running: { startedAt: "2026-12-07T10:51:01Z" } };
const deleting = (pod: Pod): Pod => ({
  ...pod,
  metadata: { ...pod.metadata, deletionTimestamp: new Date(Date.now() + 30_000).toISOString() },
});

let api: FakeApiServer;
let sidecar: Server; // db-proxy's shutdown endpoint: answers 200 and exits (in the fake Pod) as the real one would
let sidecarUrl: string;
let onShutdown: () => void = () => {};
let proa: ProaProcess | undefined;
before(async () => {
  api = await startFakeApiServer({ pod: null });
  sidecar = createServer((_request, response) => {
    response.end("bye");
    onShutdown();
  });
  await new Promise<void>((resolve) => sidecar.listen(0, "127.0.0.1", resolve));
  sidecarUrl = `http://127.0.0.1:${(sidecar.address() as { port: number }).port}/quitquitquit`;
});
after(async () => {
  sidecar.close();
  await api.close();
});
afterEach(() => {
  proa?.child.kill("SIGKILL");
  proa = undefined;
  onShutdown = () => {};
});

/** Starts proa in a Pod of that shape, with a fresh request count; the sidecar exits 0 when asked to stop. */
function run(shape: PodShape, args: string[], program: string[], more: Record<string, string> = {}) {
  const pod = podWith(shape);
  api.setPod(pod);
  api.requests.length = 0;
  onShutdown = () => {
    const current = api.pod();
    if (current) api.setPod(withStatus(current, "db-proxy", { ready: false, state: killed(0, "Completed") }));
  };
  const path = join(scratch, `termination-log-${Math.random()}`);
  writeFileSync(path, "");
  const env = { ...api.env(), PROA_CONTAINER: "main", PROA_TERMINATION_MESSAGE_PATH: path, ...more };
  // The captured Pod's spec names its own termination log path: point it at this test's file.
  for (const c of pod.spec?.containers ?? []) c.terminationMessagePath = path;
  api.setPod(pod);
  proa = startProa([...args, "--", ...program], env);
  return { proa, pod, message: () => readFileSync(path, "utf8") };
}

const summary = (p: ProaProcess) =>
  p.logs.find((record) => record.msg === "summary") as LogRecord & Record<string, any>;
const lists = () => api.requests.filter(({ url }) => !url.includes("watch=1"));
const watches = () => api.requests.filter(({ url }) => url.includes("watch=1"));
const SLEEPER = [NODE, SIGNAL_REPORTER, "143"]; // prints "ready", exits 143 on SIGTERM

/** A wait that fails after 10 s instead of at the test's timeout, when proa never does what it should. */
const within = <T>(promise: Promise<T>, what: string): Promise<T> =>
  Promise.race([promise, sleep(10_000).then(() => assert.fail(`waited 10 s for ${what}`))]);

describe("a sidecar that cannot come back ends the run", () => {
  test("a regular sidecar killed under Never: at once an error naming it, its exit code, reason and time; SIGTERM to the program; the shutdown step; exit 69", async (t) => {
    const { proa, pod, message } = run(regular, ["-g", sidecarUrl], SLEEPER);
    await within(proa.waitForStdout("ready"), "the program to start");
    const diedAt = Date.now();
    api.setPod(withStatus(pod, "db-proxy", { ready: false, state: killed(137, "OOMKilled") }));
    await within(proa.waitForStdout("SIGTERM"), "the program to get SIGTERM");
    const reactionMs = Date.now() - diedAt;
    assert.equal((await within(proa.exit, "proa to exit")).code, SIDECAR_DIED, proa.stderr());
    assert.ok(reactionMs < 2000, `the program got SIGTERM ${reactionMs} ms after the death`);
    t.diagnostic(`the program got SIGTERM ${reactionMs} ms after the fake API server showed the death`);
    const error = proa.logs.find((record) => record.level === "error");
    assert.equal(
      error?.msg,
      "sidecar db-proxy terminated with exit code 137 (OOMKilled) and the Pod's restartPolicy is Never, so it will not be restarted: proa stops the program",
    );
    assert.deepEqual([error?.exitCode, error?.reason, error?.finishedAt], [137, "OOMKilled", "2026-12-07T10:51:00Z"]);
    const line = summary(proa);
    assert.equal(line.status, SIDECAR_DIED);
    assert.deepEqual([line.program.kind, line.program.code], ["exited", 143], "the program's own status is kept");
    assert.deepEqual(
      line.sidecars.map(({ name, kind, exitCode, stopped }: any) => [name, kind, exitCode, stopped]),
      [["db-proxy", "died", 137, true]],
    );
    const [first, second] = message().split("\n");
    assert.match(
      first ?? "",
      /^sidecar db-proxy died \d+(ms|\.\d+s|s) into the program \(exit 137, OOMKilled, at 2026-12-07T10:51:00Z\): proa stopped the program and exits 69$/,
    );
    assert.match(second ?? "", /^program exited 143 after /);
    assert.deepEqual([lists().length, watches().length], [1, 1], "one list and one watch for the whole life");
  });

  test("OnFailure and a sidecar that exited 0 will not run again either: exit 69", async () => {
    const { proa, pod } = run({ ...regular, restartPolicy: "OnFailure" }, [], SLEEPER);
    await within(proa.waitForStdout("ready"), "the program to start");
    api.setPod(withStatus(pod, "db-proxy", { ready: false, state: killed(0, "Completed") }));
    assert.equal((await within(proa.exit, "proa to exit")).code, SIDECAR_DIED, proa.stderr());
  });

  test("a program that ignores SIGTERM is killed after --program-stop-timeout", async () => {
    const ignoring = [
      NODE,
      "-e",
      // Orphaned (a broken proa that never kills it): it exits, so that the test fails rather than hangs.
      "process.on('SIGTERM', () => console.log('SIGTERM')); console.log('ready'); const parent = process.ppid; setInterval(() => process.ppid !== parent && process.exit(1), 200)",
    ];
    const { proa, pod } = run(regular, ["--program-stop-timeout", "300ms"], ignoring);
    await within(proa.waitForStdout("ready"), "the program to start");
    api.setPod(withStatus(pod, "db-proxy", { ready: false, state: killed(1, "Error") }));
    await within(proa.waitForStdout("SIGTERM"), "the program to get SIGTERM");
    const termAt = Date.now();
    assert.equal((await within(proa.exit, "proa to exit")).code, SIDECAR_DIED, proa.stderr());
    const line = summary(proa);
    assert.deepEqual([line.program.kind, line.program.signal], ["killed", "SIGKILL"]);
    assert.ok(Date.now() - termAt >= 250, "SIGKILL came no sooner than the timeout");
  });

  test("--program-stop-timeout never goes past the Pod's grace period: 1h with a grace period of 0.5 s kills after 0.5 s", async () => {
    const ignoring = [
      NODE,
      "-e",
      "process.on('SIGTERM', () => console.log('SIGTERM')); console.log('ready'); const parent = process.ppid; setInterval(() => process.ppid !== parent && process.exit(1), 200)",
    ];
    const { proa, pod } = run(regular, ["--program-stop-timeout", "1h"], ignoring);
    pod.spec = { ...pod.spec, terminationGracePeriodSeconds: 0.5 };
    api.setPod(pod);
    await within(proa.waitForStdout("ready"), "the program to start");
    api.setPod(withStatus(pod, "db-proxy", { ready: false, state: killed(1, "Error") }));
    await within(proa.waitForStdout("SIGTERM"), "the program to get SIGTERM");
    assert.equal((await within(proa.exit, "proa to exit")).code, SIDECAR_DIED, proa.stderr());
    assert.ok(
      proa.logs.some((r) => r.msg === "sending SIGTERM to the program; SIGKILL in 500 ms if it has not exited"),
    );
  });

  test("--no-critical: the death is reported as a warning and the program runs on to its own status", async () => {
    const { proa, pod } = run(regular, ["--no-critical"], [NODE, SIGNAL_REPORTER, "0"]);
    await within(proa.waitForStdout("ready"), "the program to start");
    api.setPod(withStatus(pod, "db-proxy", { ready: false, state: killed(137, "Error") }));
    const warning = await within(
      proa.waitForLog((record) => record.level === "warn" && /db-proxy/.test(record.msg)),
      "the log line",
    );
    assert.match(warning.msg, /--no-critical: the program runs on$/);
    await sleep(200);
    assert.deepEqual(proa.stdout, ["ready"], "no SIGTERM");
    proa.child.kill("SIGTERM");
    assert.equal((await within(proa.exit, "proa to exit")).code, 0);
    assert.deepEqual(
      summary(proa).sidecars.map(({ kind, stopped }: any) => [kind, stopped]),
      [["died", false]],
    );
  });
});

describe("a sidecar that will be restarted is reported, not fatal", () => {
  test("a native sidecar killed under Never (terminated, restartCount 0, then restarted and ready): the program runs on, and the summary lists the restart", async () => {
    const { proa, pod, message } = run(native, [], [NODE, SIGNAL_REPORTER, "0"]);
    await within(proa.waitForStdout("ready"), "the program to start");
    // As native-killed-terminated-before-restart.json, then native-restarting-laststate.json and ready again.
    const dead = withStatus(pod, "mesh", { ready: false, restartCount: 0, state: killed(137, "Error"), lastState: {} });
    api.setPod(dead);
    await sleep(100);
    const back = { restartCount: 1, state: running, lastState: killed(137, "Error") };
    api.setPod(withStatus(pod, "mesh", { ...back, ready: false }));
    api.setPod(withStatus(pod, "mesh", { ...back, ready: true }));
    await sleep(200);
    assert.deepEqual(proa.stdout, ["ready"], "the program was not disturbed");
    proa.child.kill("SIGTERM");
    assert.equal((await within(proa.exit, "proa to exit")).code, 0, proa.stderr());
    const warnings = proa.logs.filter((record) => record.level === "warn").map((record) => record.msg);
    assert.deepEqual(warnings, [
      "native sidecar mesh terminated with exit code 137 (Error); the kubelet restarts native sidecars whatever the Pod's restartPolicy: the program runs on",
    ]);
    assert.deepEqual(
      summary(proa).sidecars.map(({ name, kind, exitCode }: any) => [name, kind, exitCode]),
      [["mesh", "restarting", 137]],
    );
    assert.match(message(), /\nsidecar mesh terminated, to be restarted, \S+ into the program \(exit 137, Error, at /);
  });

  test("a regular sidecar restarted under OnFailure (restartCount rising): reported, and the program's status is proa's", async () => {
    const { proa, pod } = run(
      { ...regular, restartPolicy: "OnFailure" },
      ["-g", sidecarUrl],
      [NODE, SIGNAL_REPORTER, "0"],
    );
    await within(proa.waitForStdout("ready"), "the program to start");
    api.setPod(withStatus(pod, "db-proxy", { restartCount: 1, lastState: killed(2, "Error") }));
    await within(
      proa.waitForLog((record) => record.level === "warn" && /was restarted/.test(record.msg)),
      "the log line",
    );
    proa.child.kill("SIGTERM");
    assert.equal((await within(proa.exit, "proa to exit")).code, 0);
  });

  test("--critical NAME makes a restart of that sidecar end the run", async () => {
    const { proa, pod } = run(native, ["--critical", "mesh"], SLEEPER);
    await within(proa.waitForStdout("ready"), "the program to start");
    api.setPod(withStatus(pod, "mesh", { ready: false, state: killed(137, "Error"), lastState: {} }));
    await within(proa.waitForStdout("SIGTERM"), "the program to get SIGTERM");
    assert.equal((await within(proa.exit, "proa to exit")).code, SIDECAR_DIED);
    assert.match(proa.logs.find((r) => r.level === "error")?.msg ?? "", /--critical names it: proa stops the program$/);
  });

  test("--critical NAME that the run does not watch fails the wait, naming the containers it watches", async () => {
    const { proa } = run(regular, ["--critical", "nosuch"], SLEEPER);
    assert.equal((await within(proa.exit, "proa to exit")).code, 1);
    assert.ok(proa.logs.some((r) => r.level === "error" && r.msg.startsWith("--critical nosuch: proa does not watch")));
  });
});

describe("the one watch, through the run", () => {
  test("a watch that the server ends mid-run is resumed from its resourceVersion, without a new list, and still sees a death", async () => {
    const { proa, pod } = run(regular, [], SLEEPER, { PROA_LOG: "debug" });
    await within(proa.waitForStdout("ready"), "the program to start");
    api.endWatches();
    await within(
      proa.waitForLog((record) => record.msg === "the API server ended the watch"),
      "the log line",
    );
    await sleep(50);
    api.setPod(withStatus(pod, "db-proxy", { ready: false, state: killed(137, "Error") }));
    assert.equal((await within(proa.exit, "proa to exit")).code, SIDECAR_DIED);
    assert.equal(lists().length, 1, "no second list");
    const [first, second] = watches().map(({ url }) => new URL(url, "https://x").searchParams.get("resourceVersion"));
    assert.equal(second, first, "the second watch resumes where the first stood");
  });

  test("a 410 mid-run: proa lists once more and still sees a death", async () => {
    const { proa, pod } = run(regular, [], SLEEPER, { PROA_LOG: "debug" });
    await within(proa.waitForStdout("ready"), "the program to start");
    // The next watch is told its resourceVersion is too old, as after etcd's compaction.
    api.fail({ on: "watch", chunks: [watchEvent("ERROR", EXPIRED)], end: "clean" });
    api.endWatches();
    await within(
      proa.waitForLog((record) => /reported 410/.test(record.msg)),
      "the log line",
    );
    await proa.waitForLog(
      (record) => record.msg === "listed the Pod" && proa.logs.filter((r) => r.msg === "listed the Pod").length === 2,
    );
    api.setPod(withStatus(pod, "db-proxy", { ready: false, state: killed(137, "Error") }));
    assert.equal((await within(proa.exit, "proa to exit")).code, SIDECAR_DIED);
    assert.equal(lists().length, 2, "one list at the start, one after the 410");
  });

  test("a short lifecycle costs one list and one watch: the wait, the run and the shutdown step share them", async () => {
    const { proa } = run(regular, ["-g", sidecarUrl], [NODE, "-e", "setTimeout(() => {}, 100)"]);
    assert.equal((await within(proa.exit, "proa to exit")).code, 0, proa.stderr());
    assert.equal(summary(proa).shutdown.wait.outcome, "all exited", "the step saw the exit through the same watch");
    assert.deepEqual(
      api.requests.map(({ url }) => (url.includes("watch=1") ? "watch" : "list")),
      ["list", "watch"],
    );
  });
});

describe("what is not a death", () => {
  test("a sidecar that dies during the shutdown step (here 137 on its shutdown request) leaves proa's status the program's", async () => {
    const { proa } = run(regular, ["-g", sidecarUrl], [NODE, "-e", "setTimeout(() => {}, 100)"]);
    onShutdown = () => {
      const current = api.pod();
      if (current) api.setPod(withStatus(current, "db-proxy", { ready: false, state: killed(137, "Error") }));
    };
    assert.equal((await within(proa.exit, "proa to exit")).code, 0, proa.stderr());
    assert.deepEqual(summary(proa).sidecars, undefined);
  });

  test("a death and a SIGTERM at once, as a deletion brings them: the program gets SIGTERM once, and proa exits with its status", async () => {
    const { proa, pod } = run(regular, ["-g", sidecarUrl], SLEEPER);
    await within(proa.waitForStdout("ready"), "the program to start");
    api.setPod(deleting(withStatus(pod, "db-proxy", { ready: false, state: killed(137, "Error") })));
    proa.child.kill("SIGTERM");
    assert.equal((await within(proa.exit, "proa to exit")).code, 143, proa.stderr());
    assert.deepEqual(proa.stdout, ["ready", "SIGTERM"]);
    assert.ok(!proa.logs.some((r) => r.level === "error"), "no death is logged");
    assert.equal(summary(proa).sidecars, undefined, "nor summarised");
  });

  test("SIGTERM first, then the sidecar terminates: not a death", async () => {
    const { proa, pod } = run(
      regular,
      [],
      [
        NODE,
        "-e",
        "process.on('SIGTERM', () => setTimeout(() => process.exit(143), 300)); console.log('ready'); setInterval(() => {}, 1000)",
      ],
    );
    await within(proa.waitForStdout("ready"), "the program to start");
    proa.child.kill("SIGTERM");
    await sleep(50);
    api.setPod(withStatus(pod, "db-proxy", { ready: false, state: killed(0, "Completed") }));
    assert.equal((await within(proa.exit, "proa to exit")).code, 143, proa.stderr());
    assert.ok(!proa.logs.some((r) => r.level === "error"), "no death is logged");
  });
});
