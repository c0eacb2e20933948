// The run's summary as a black box: the bundle as a real process in a fake Pod whose spec points proa's container's
// terminationMessagePath at a real file in a scratch directory, standing in for the kubelet's /dev/termination-log.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import type { Pod } from "../kube.ts";
import { podWith, startFakeApiServer, type FakeApiServer } from "./fake-apiserver.ts";
import { startProa, type LogRecord, type ProaProcess } from "./helpers/proa-process.ts";

const NODE = process.execPath;
const scratch = mkdtempSync(join(tmpdir(), "proa-termination-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

let files = 0;
/** A termination log: an empty file, as the kubelet mounts it (or no file at all). */
function terminationLog(exists = true): string {
  const path = join(scratch, `termination-log-${++files}`);
  if (exists) writeFileSync(path, "");
  return path;
}

/** The fake Pod, with proa's container "main" naming path (and policy) as its termination message file. */
function pod(path: string, options: { policy?: string; ready?: boolean; exited?: boolean } = {}): Pod {
  const shape = options.exited ? { terminated: { "sidecar-1": { exitCode: 0 } } } : { ready: options.ready ?? true };
  const fixture = podWith({ sidecars: ["sidecar-1"], ...shape });
  const main = fixture.spec!.containers![0]!;
  assert.equal(main.name, "main");
  Object.assign(main, { terminationMessagePath: path, terminationMessagePolicy: options.policy ?? "File" });
  return fixture;
}

let api: FakeApiServer;
let sidecar: Server;
let sidecarUrl: string;
let path: string; // the current test's termination log
let proa: ProaProcess | undefined;
before(async () => {
  api = await startFakeApiServer({ pod: null });
  // sidecar-1's shutdown endpoint: answers 200 and, as the real sidecar would, exits (in the fake Pod, whose spec,
  // as a real Pod's, does not change).
  sidecar = createServer((_request, response) => {
    response.end("bye");
    api.setPod({ ...pod(path, { exited: true }), spec: api.pod()?.spec });
  });
  await new Promise<void>((resolve) => sidecar.listen(0, "127.0.0.1", resolve));
  // With credentials and a query value, neither of which may reach the message.
  sidecarUrl = `http://admin:hunter2@127.0.0.1:${(sidecar.address() as { port: number }).port}/quitquitquit?key=s3cr3t`;
});
after(async () => {
  sidecar.close();
  await api.close();
});
afterEach(() => {
  proa?.child.kill("SIGKILL");
  proa = undefined;
});

function run(
  args: string[],
  program: string[],
  env: Record<string, string> = { ...api.env(), PROA_CONTAINER: "main" },
) {
  proa = startProa(["-g", sidecarUrl, ...args, "--", ...program], env);
  return proa;
}

const summary = (run: ProaProcess) => run.logs.find((record) => record.msg === "summary");
const about = (run: ProaProcess) => run.logs.filter((record) => /termination message|summary to/.test(record.msg));

describe("the termination message", () => {
  test("written to the empty file the Pod spec names: the program's status first, never a credential, and the summary line says the same", async () => {
    path = terminationLog();
    api.setPod(pod(path));
    const started = run([], [NODE, "-e", "process.exit(0)"]);
    assert.equal((await started.exit).code, 0, started.stderr());
    const message = readFileSync(path, "utf8");
    assert.match(message, /^program exited 0 after \d+ms; sidecars stopped: sidecar-1 \(GET 200, exited 0\)\n/);
    assert.match(message, /\n {2}GET http:\/\/127\.0\.0\.1:\d+\/quitquitquit\?REDACTED: 200 in \d+ms\n/);
    assert.match(message, /\nproa exited 0$/);
    const line = summary(started) as LogRecord & { wait: any; program: any; shutdown: any };
    // The other log lines about the request are shutdown.ts's business (issue 11 redacts their query values).
    for (const secret of ["hunter2", "s3cr3t", "admin"])
      assert.ok(!message.includes(secret) && !JSON.stringify(line).includes(secret), secret);

    assert.equal(line?.level, "info");
    assert.equal(line.status, 0);
    assert.deepEqual([line.wait.for, line.wait.ending], [["sidecar-1"], "ready"]);
    assert.deepEqual([line.program.kind, line.program.code], ["exited", 0]);
    assert.deepEqual(
      line.shutdown.exits.map(({ name, exitCode }: { name: string; exitCode: number }) => [name, exitCode]),
      [["sidecar-1", 0]],
    );
    assert.deepEqual(line.shutdown.wait, { outcome: "all exited", stillRunning: [] });
    assert.equal(line.shutdown.requests[0].status, 200);
    assert.ok(
      started.logs.some((record) => record.msg === `wrote the run's summary to ${path}`),
      started.stderr(),
    );
  });

  test("the path is proa's own container's, wherever that container is in the spec, not another container's", async () => {
    path = terminationLog();
    const decoy = terminationLog();
    const fixture = pod(path);
    const [main, sidecarSpec] = fixture.spec!.containers!;
    fixture.spec!.containers = [{ ...sidecarSpec!, terminationMessagePath: decoy }, main!];
    api.setPod(fixture);
    const started = run([], [NODE, "-e", "process.exit(0)"]);
    assert.equal((await started.exit).code, 0, started.stderr());
    assert.match(readFileSync(path, "utf8"), /^program exited 0 /);
    assert.equal(readFileSync(decoy, "utf8"), "");
  });

  test("--ready-timeout: the message says the sidecars were not ready in time, and which", async () => {
    path = terminationLog();
    api.setPod(pod(path, { ready: false }));
    const started = run(["--ready-timeout", "300ms"], [NODE, "-e", "process.exit(0)"]);
    assert.equal((await started.exit).code, 1, started.stderr());
    const lines = readFileSync(path, "utf8").split("\n");
    assert.match(
      lines[0]!,
      /^program never ran: sidecars not ready after \d+ms \(--ready-timeout\) \(exit 1\); sidecars stopped: sidecar-1 \(GET 200, exited 0\)$/,
    );
    assert.match(lines[1]!, /^waited \d+ms for sidecar-1: gave up \(--ready-timeout\)$/);
    assert.equal(lines[2], "  --ready-timeout (0.3 s) passed: containers still not ready: sidecar-1");
  });

  test("a message the program wrote itself is left as it is, and proa exits with the program's status", async () => {
    path = terminationLog();
    api.setPod(pod(path));
    const started = run(
      [],
      [NODE, "-e", `require("fs").writeFileSync(${JSON.stringify(path)}, "my own message"); process.exit(3)`],
    );
    assert.equal((await started.exit).code, 3, started.stderr());
    assert.equal(readFileSync(path, "utf8"), "my own message");
    assert.match(about(started)[0]?.msg ?? "", /the program wrote its own/);
    assert.equal(summary(started)?.status, 3);
  });

  test("FallbackToLogsOnError and a failed program: left empty for the kubelet to fill with the last log lines", async () => {
    path = terminationLog();
    api.setPod(pod(path, { policy: "FallbackToLogsOnError" }));
    const started = run([], [NODE, "-e", "process.exit(2)"]);
    assert.equal((await started.exit).code, 2, started.stderr());
    assert.equal(readFileSync(path, "utf8"), "");
    assert.match(about(started)[0]?.msg ?? "", /FallbackToLogsOnError/);
  });

  test("FallbackToLogsOnError and a program that succeeded: written", async () => {
    path = terminationLog();
    api.setPod(pod(path, { policy: "FallbackToLogsOnError" }));
    const started = run([], [NODE, "-e", "process.exit(0)"]);
    assert.equal((await started.exit).code, 0, started.stderr());
    assert.match(readFileSync(path, "utf8"), /^program exited 0 /);
  });

  test("--no-termination-message leaves the file alone; the summary line stays", async () => {
    path = terminationLog();
    api.setPod(pod(path));
    const started = run(["--no-termination-message"], [NODE, "-e", "process.exit(0)"]);
    assert.equal((await started.exit).code, 0, started.stderr());
    assert.equal(readFileSync(path, "utf8"), "");
    assert.equal(summary(started)?.status, 0);
    assert.deepEqual(about(started), []);
  });

  test("no such file (outside a Pod): nothing is created and nothing is said about it above debug level", async () => {
    path = terminationLog(false);
    api.setPod(pod(path));
    const started = run([], [NODE, "-e", "process.exit(0)"]);
    assert.equal((await started.exit).code, 0, started.stderr());
    assert.equal(existsSync(path), false);
    assert.deepEqual(about(started), []);
  });

  test("SIGTERM before the program started: the message says so, with 143", async () => {
    path = terminationLog();
    api.setPod(pod(path, { ready: false }));
    const started = run([], [NODE, "-e", "process.exit(0)"]);
    await started.waitForLog((record) => record.msg === "waiting for containers to be ready");
    started.child.kill("SIGTERM");
    assert.equal((await started.exit).code, 143, started.stderr());
    assert.match(
      readFileSync(path, "utf8"),
      /^program never ran: SIGTERM after waiting \d+ms for the sidecars \(exit 143\); sidecars stopped: sidecar-1 \(GET 200, exited 0\)\n/,
    );
  });

  test("a wait that failed before the Pod was read: PROA_TERMINATION_MESSAGE_PATH names the file, and the message gives the reason", async () => {
    path = terminationLog();
    const started = run([], [NODE, "-e", "process.exit(0)"], { PROA_TERMINATION_MESSAGE_PATH: path }); // no KUBERNETES_SERVICE_*
    assert.equal((await started.exit).code, 1, started.stderr());
    const message = readFileSync(path, "utf8");
    assert.match(message, /^program never ran: the wait for the sidecars failed after \d+ms \(exit 1\)\n/);
    assert.match(message, /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set/);
    assert.match(message, /the sidecars' exit was not watched/);
  });
});
