// What the shutdown step reports for the run's summary (its ShutdownReport), against real local servers, the fake API
// server and a real process: each request's answer in the order given, each SIGTERM and each --kill name that matched
// nothing, the sidecars seen exiting with their codes, and those still running when the budget ran out.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { loadCluster, podFeed } from "../kube.ts";
import { podExitWatch, shutDownSidecars, type ShutdownOptions } from "../shutdown.ts";
import { podWith, startFakeApiServer } from "./fake-apiserver.ts";
import { recordingLog } from "./helpers/shutdown-log.ts";

const scratch = mkdtempSync(join(tmpdir(), "proa-summary-shutdown-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const options = (overrides: Partial<ShutdownOptions>): ShutdownOptions => ({
  httpGet: [],
  httpPost: [],
  kill: [],
  killAll: false,
  timeoutMs: 5000,
  requestTimeoutMs: 2000,
  userAgent: "proa/test",
  ...overrides,
});
const fast = { refusedRetryDelaysMs: [] };

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

describe("the shutdown step's report", () => {
  test("each request in the order given, with its status or error and time, and its URL without credentials or query values", async () => {
    const ok = createServer((_request, response) => response.end("bye"));
    const busy = createServer((_request, response) => response.writeHead(503).end("busy"));
    const [okPort, busyPort] = [await listen(ok), await listen(busy)];
    const closed = createServer();
    const closedPort = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    try {
      const record = await shutDownSidecars(
        options({
          httpGet: [new URL(`http://127.0.0.1:${closedPort}/quit`)],
          httpPost: [
            new URL(`http://admin:hunter2@127.0.0.1:${busyPort}/quitquitquit?key=s3cr3t`),
            new URL(`http://127.0.0.1:${okPort}/stop`),
          ],
        }),
        {},
        recordingLog(),
        fast,
      );
      const requests = record.requests.map(
        ({ durationMs, ...rest }) => (assert.ok(durationMs >= 0 && durationMs < 2000, `${durationMs} ms`), rest),
      );
      assert.equal(requests.length, 3);
      assert.deepEqual([requests[0]?.method, requests[0]?.phase, requests[0]?.status], ["GET", "connect", undefined]);
      assert.match(requests[0]?.error ?? "", /connection refused/);
      assert.deepEqual(requests.slice(1), [
        { method: "POST", url: `http://127.0.0.1:${busyPort}/quitquitquit?REDACTED`, status: 503, attempts: 1 },
        { method: "POST", url: `http://127.0.0.1:${okPort}/stop`, status: 200, attempts: 1 },
      ]);
      assert.deepEqual(
        record.wait,
        { outcome: "not watched", stillRunning: [] },
        "no Pod known: the exit is not watched",
      );
      assert.equal(record.budgetMs, 5000);
    } finally {
      ok.close();
      busy.close();
    }
  });

  test("sidecars seen exiting with their exit codes, and the one still running when the budget ran out", async (t) => {
    const api = await startFakeApiServer({ pod: podWith({ sidecars: ["sidecar-1", "sidecar-2"], ready: true }) });
    try {
      const cluster = loadCluster(api.env(), "proa/test");
      const pod = api.pod() ?? undefined;
      const feed = podFeed(cluster, recordingLog(), { backoffBaseMs: 20, backoffMaxMs: 50 });
      t.after(() => feed.close());
      const done = shutDownSidecars(
        options({ timeoutMs: 400 }),
        { sidecars: podExitWatch({ feed, ownContainer: "main" }), pod },
        recordingLog(),
        fast,
      );
      await sleep(100);
      api.setPod(
        podWith({ sidecars: ["sidecar-1", "sidecar-2"], ready: true, terminated: { "sidecar-1": { exitCode: 7 } } }),
      );
      const record = await done;
      assert.deepEqual(
        record.exits.map(
          ({ name, exitCode, afterMs }) => (
            assert.ok(afterMs >= 50 && afterMs < 400, `${afterMs} ms`),
            { name, exitCode }
          ),
        ),
        [{ name: "sidecar-1", exitCode: 7 }],
      );
      assert.deepEqual(record.wait, { outcome: "budget spent", stillRunning: ["sidecar-2"] });
      assert.equal(record.budgetMs, 400);
      assert.ok(record.durationMs >= 300 && record.durationMs < 2000, `${record.durationMs} ms`);
    } finally {
      await api.close();
    }
  });

  test("--kill: the process sent SIGTERM, and the name that matched nothing", async () => {
    const name = `proa-sum-${process.pid}`; // unique on this machine, so nothing else is signalled
    copyFileSync("/usr/bin/sleep", join(scratch, name));
    const sleeper = spawn(join(scratch, name), ["60"], { stdio: "ignore" });
    await once(sleeper, "spawn");
    const exited = once(sleeper, "exit"); // listening before the signal, so the event cannot be missed
    process.env.PROA_KILL_SCOPE = "visible"; // this machine is no Pod
    try {
      const record = await shutDownSidecars(options({ kill: [name, `${name}-none`] }), {}, recordingLog(), fast);
      assert.deepEqual(record.signals, [{ pid: sleeper.pid, name, rule: "executable", sent: true }]);
      assert.deepEqual(record.unmatched, [`${name}-none`]);
      const [, signal] = await exited;
      assert.equal(signal, "SIGTERM");
    } finally {
      delete process.env.PROA_KILL_SCOPE;
      sleeper.kill("SIGKILL");
    }
  });
});
