// The shutdown step's wait for the sidecars to exit, against the fake API server (test/fake-apiserver.ts): containers
// terminating one after another, the budget running out, and an API server that cannot be reached or goes silent.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { loadCluster, type Cluster, type Pod, type Timing } from "../kube.ts";
import { podExitWatch, shutDownSidecars, type ShutdownOptions } from "../shutdown.ts";
import { podWith, startFakeApiServer, type FakeApiServer, type PodShape } from "./fake-apiserver.ts";
import { recordingLog } from "./helpers/shutdown-log.ts";

const options = (timeoutMs: number, overrides: Partial<ShutdownOptions> = {}): ShutdownOptions => ({
  httpGet: [],
  httpPost: [],
  kill: [],
  killAll: false,
  timeoutMs,
  requestTimeoutMs: 10_000,
  userAgent: "proa/test",
  ...overrides,
});
const timing: Partial<Timing> = { backoffBaseMs: 20, backoffMaxMs: 50 };
/** The shutdown step's context in the Pod mode: what main hands it after a wait that saw the Pod. */
const seenPod = (cluster: Cluster, pod: Pod | undefined, watchTiming = timing, more: { terminatingSince?: number } = {}) => ({
  sidecars: podExitWatch({ cluster, pod, ownContainer: "main" }, watchTiming),
  pod,
  ...more,
});
const sidecars: PodShape = { sidecars: ["sidecar-1", "sidecar-2"], nativeSidecars: ["istio-proxy"], ready: true };

let server: FakeApiServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(shape: PodShape): Promise<{ api: FakeApiServer; cluster: Cluster }> {
  server = await startFakeApiServer({ pod: podWith(shape) });
  return { api: server, cluster: loadCluster(server.env(), "proa/test") };
}

async function timed(run: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

const messages = (log: ReturnType<typeof recordingLog>, level: string) => log.lines.filter((line) => line.level === level).map((line) => line.msg);

describe("waiting for the sidecars to exit", () => {
  test("waits until every regular sidecar has exited, logging each exit and who still runs, but not for native sidecars", async () => {
    const { api, cluster } = await start(sidecars);
    const log = recordingLog();
    const done = timed(() => shutDownSidecars(options(5000), seenPod(cluster, api.pod() ?? undefined), log));
    await sleep(100);
    api.setPod(podWith({ ...sidecars, terminated: { "sidecar-1": { exitCode: 0 } } }));
    await sleep(100);
    api.setPod(podWith({ ...sidecars, terminated: { "sidecar-1": { exitCode: 0 }, "sidecar-2": { exitCode: 143 } } }));
    const elapsed = await done;
    assert.ok(elapsed < 1000, `took ${elapsed} ms`);
    const exits = log.lines.filter((line) => line.msg.includes(" exited"));
    assert.deepEqual(
      exits.map((line) => line.msg),
      ["sidecar-1 exited with 0; still running: sidecar-2", "sidecar-2 exited with 143; all sidecars have exited"],
    );
    assert.deepEqual(exits[0]?.fields, { container: "sidecar-1", exitCode: 0, stillRunning: ["sidecar-2"] });
    assert.deepEqual(messages(log, "warn"), []);
  });

  test("when the budget runs out it logs which sidecars are still running and returns", async () => {
    const { api, cluster } = await start(sidecars);
    const log = recordingLog();
    const done = timed(() => shutDownSidecars(options(400), seenPod(cluster, api.pod() ?? undefined), log));
    await sleep(100);
    api.setPod(podWith({ ...sidecars, terminated: { "sidecar-2": { exitCode: 0 } } }));
    const elapsed = await done;
    assert.ok(elapsed >= 390 && elapsed < 900, `took ${elapsed} ms`);
    assert.deepEqual(messages(log, "warn"), ["the sidecars did not exit within 400 ms; still running: sidecar-1; proa exits anyway"]);
  });

  test("after SIGTERM the budget counts from the signal and ends a second before the kubelet's kill", async () => {
    const { api, cluster } = await start(sidecars);
    const log = recordingLog();
    const context = seenPod(cluster, api.pod() ?? undefined, timing, { terminatingSince: Date.now() - 600 });
    const elapsed = await timed(() => shutDownSidecars(options(2000), context, log));
    assert.ok(elapsed >= 350 && elapsed < 700, `took ${elapsed} ms: 2000 ms budget - 600 ms since SIGTERM - 1000 ms margin`);
    assert.match(messages(log, "warn")[0] ?? "", /^the sidecars did not exit within \d+ ms; still running: sidecar-1, sidecar-2/);
  });

  test("a sidecar the kubelet restarts after it exited counts as exited", async () => {
    const { api, cluster } = await start({ ...sidecars, restartPolicy: "OnFailure" });
    const log = recordingLog();
    const done = shutDownSidecars(options(5000), seenPod(cluster, api.pod() ?? undefined), log);
    await sleep(50);
    api.setPod(podWith({ ...sidecars, terminated: { "sidecar-1": { exitCode: 1 } } }));
    await sleep(50);
    api.setPod(podWith(sidecars)); // running again
    await sleep(50);
    api.setPod(podWith({ ...sidecars, terminated: { "sidecar-2": { exitCode: 0 } } }));
    await done;
    assert.deepEqual(messages(log, "warn"), []);
    assert.ok(log.lines.some((line) => line.msg === "sidecar-2 exited with 0; all sidecars have exited"));
  });

  test("sidecars that had already exited, or none at all, need no watch", async () => {
    const { api, cluster } = await start({ ...sidecars, terminated: { "sidecar-1": { exitCode: 0 }, "sidecar-2": { exitCode: 0 } } });
    for (const pod of [api.pod() ?? undefined, podWith({})]) {
      const elapsed = await timed(() => shutDownSidecars(options(5000), seenPod(cluster, pod), recordingLog()));
      assert.ok(elapsed < 100, `took ${elapsed} ms`);
    }
    assert.deepEqual(api.requests, []);
  });

  test("a Pod that disappears from the API ends the wait", async () => {
    const { api, cluster } = await start(sidecars);
    const log = recordingLog();
    const done = timed(() => shutDownSidecars(options(5000), seenPod(cluster, api.pod() ?? undefined), log));
    await sleep(100);
    api.setPod(null);
    assert.ok((await done) < 1000);
    assert.ok(log.lines.some((line) => line.msg.startsWith("the Pod is gone")));
  });
});

describe("an API server that cannot be reached does not stall proa past the budget", () => {
  test("connection refused: the watch keeps retrying until the budget ends it", async () => {
    const { api, cluster } = await start(sidecars);
    const closed = createServer().listen(0, "127.0.0.1");
    await new Promise((resolve) => closed.once("listening", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const log = recordingLog();
    const context = seenPod({ ...cluster, port }, api.pod() ?? undefined);
    const elapsed = await timed(() => shutDownSidecars(options(300), context, log));
    assert.ok(elapsed < 800, `took ${elapsed} ms`);
    assert.equal(messages(log, "warn").at(-1), "the sidecars did not exit within 300 ms; still running: sidecar-1, sidecar-2; proa exits anyway");
  });

  test("an API server that accepts the connection and then goes silent, with a shutdown request that hangs too", async () => {
    const { api, cluster } = await start(sidecars);
    api.fail({ on: "list", chunks: [], end: "stall" });
    const hanging = createServer(() => {}).listen(0, "127.0.0.1");
    await new Promise((resolve) => hanging.once("listening", resolve));
    const url = new URL(`http://127.0.0.1:${(hanging.address() as AddressInfo).port}/quitquitquit`);
    const log = recordingLog();
    const context = seenPod(cluster, api.pod() ?? undefined);
    const elapsed = await timed(() => shutDownSidecars(options(300, { httpPost: [url] }), context, log));
    hanging.closeAllConnections();
    hanging.close();
    assert.ok(elapsed < 800, `took ${elapsed} ms`);
    const [request, wait, ...more] = messages(log, "warn").sort();
    assert.match(request ?? "", /^sidecar shutdown request failed: no answer within \d+ ms \(the rest of the shutdown budget\)$/);
    assert.equal(wait, "the sidecars did not exit within 300 ms; still running: sidecar-1, sidecar-2; proa exits anyway");
    assert.deepEqual(more, []);
  });

  test("a watch that fails for good (403 past its give-up time) is logged and ends the wait", async () => {
    const { api, cluster } = await start(sidecars);
    api.fail(...Array.from({ length: 20 }, () => ({ status: 403 })));
    const log = recordingLog();
    const context = seenPod(cluster, api.pod() ?? undefined, { ...timing, giveUpMs: 100 });
    const elapsed = await timed(() => shutDownSidecars(options(5000), context, log));
    assert.ok(elapsed < 1000, `took ${elapsed} ms`);
    const stopped = log.lines.find((line) => line.msg.startsWith("stopped waiting"));
    assert.deepEqual(stopped?.fields.stillRunning, ["sidecar-1", "sidecar-2"]);
  });
});
