// waitUntilReady in-process: however the wait ends, it leaves no timer behind. Through the bundle a leaked timer is
// invisible (proa exits), but a caller that goes on, as the shutdown step does, would be kept alive or woken by it.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, test } from "node:test";
import { loadCluster, waitUntilReady, type Cluster, type ReadyOptions, type Timing } from "../kube.ts";
import type { Log } from "../log.ts";
import { podWith, startFakeApiServer, type FakeApiServer, type FakeApiServerOptions } from "./fake-apiserver.ts";

// The bound and the give-up time are long, so that a timer left armed is still there when the test counts.
const timing: Partial<Timing> = {
  backoffBaseMs: 10,
  backoffMaxMs: 40,
  watchTimeoutSeconds: 0,
  idleMarginMs: 2000,
  reminderMs: 60_000,
  giveUpMs: 60_000,
};
const bounded: ReadyOptions = { waitFor: [], ignore: [], readyTimeoutMs: 10_000 };
const unbounded: ReadyOptions = { waitFor: [], ignore: [] };

const errors: string[] = [];
const log: Log = { error: (msg) => void errors.push(msg), warn: () => {}, info: () => {}, debug: () => {} };
// Only referenced timers keep a process alive, and only they are counted here.
const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
const assertNoTimerLeft = (before: number) =>
  assert.equal(timers() - before, 0, "timers still armed after the wait ended");

// Every timer armed through the globals kube.ts uses is recorded and cleared after each test, so that a timer a
// broken wait leaves behind fails the test without also keeping the test process alive.
const armed: NodeJS.Timeout[] = [];
const realSetTimeout = globalThis.setTimeout;
const realSetInterval = globalThis.setInterval;
globalThis.setTimeout = ((...args: Parameters<typeof realSetTimeout>) =>
  armed[armed.push(realSetTimeout(...args)) - 1]) as typeof setTimeout;
globalThis.setInterval = ((...args: Parameters<typeof realSetInterval>) =>
  armed[armed.push(realSetInterval(...args)) - 1]) as typeof setInterval;

let api: FakeApiServer | undefined;
let cluster: Cluster | undefined;
const running = new Set<AbortController>();
afterEach(async () => {
  for (const controller of running) controller.abort(new Error("the test ended"));
  running.clear();
  errors.length = 0;
  for (const timer of armed.splice(0)) clearTimeout(timer);
  cluster?.agent.destroy();
  await api?.close();
  api = cluster = undefined;
});
async function start(
  fake: FakeApiServerOptions,
): Promise<{ api: FakeApiServer; cluster: Cluster; stop: AbortController }> {
  api = await startFakeApiServer(fake);
  cluster = loadCluster(api.env(), "proa/test");
  const stop = new AbortController();
  running.add(stop);
  return { api, cluster, stop };
}
const eventually = async (condition: () => boolean) => {
  for (let i = 0; i < 200 && !condition(); i++) await sleep(5);
  assert.ok(condition(), "condition not reached within 1 s");
};

describe("waitUntilReady leaves no timer behind", { timeout: 30_000 }, () => {
  test("when the sidecars became ready within --ready-timeout", async () => {
    const { cluster, stop } = await start({ pod: podWith({ sidecars: ["sidecar-1"], ready: true }) });
    const before = timers();
    await waitUntilReady(cluster, bounded, log, stop.signal, undefined, timing);
    assertNoTimerLeft(before);
  });

  test("when a sidecar failed before it was ready", async () => {
    const { cluster, stop } = await start({
      pod: podWith({ sidecars: ["sidecar-1"], terminated: { "sidecar-1": { exitCode: 2 } } }),
    });
    const before = timers();
    await assert.rejects(
      waitUntilReady(cluster, bounded, log, stop.signal, undefined, timing),
      /container sidecar-1 terminated with exit code 2/,
    );
    assertNoTimerLeft(before);
  });

  test("when it was aborted while the sidecars were not ready", async () => {
    const { api, cluster, stop } = await start({ pod: podWith({ sidecars: ["sidecar-1"] }) });
    const before = timers();
    const wait = waitUntilReady(cluster, bounded, log, stop.signal, undefined, timing);
    await eventually(() => api.requests.length === 2); // the list was answered and the watch is open
    const reason = new Error("SIGTERM");
    stop.abort(reason);
    await assert.rejects(wait, (error) => error === reason);
    assertNoTimerLeft(before);
  });

  test("when it was aborted while it gave a missing Pod time to appear", async () => {
    const { cluster, stop } = await start({ pod: null });
    const before = timers();
    const wait = waitUntilReady(cluster, unbounded, log, stop.signal, undefined, timing);
    await eventually(() => errors.some((msg) => msg.startsWith("there is no Pod"))); // the give-up timer is armed
    const reason = new Error("SIGTERM");
    stop.abort(reason);
    await assert.rejects(wait, (error) => error === reason);
    assertNoTimerLeft(before);
  });
});
