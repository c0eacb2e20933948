// podFeed: one watch of the Pod that every phase follows. Against the fake API server: a phase that stops following
// leaves the watch (and its request) to the next, each follower gets every Pod in order, and close() ends it all.
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { loadCluster, podFeed, type Pod, type PodFeed } from "../kube.ts";
import { podWith, startFakeApiServer, type FakeApiServer } from "./fake-apiserver.ts";
import { recordingLog } from "./helpers/shutdown-log.ts";

let api: FakeApiServer | undefined;
let feed: PodFeed | undefined;
afterEach(async () => {
  await feed?.close();
  await api?.close();
  api = feed = undefined;
});

const versionOf = (pod: Pod | null) => pod?.metadata?.resourceVersion ?? "none";
async function start(timing = {}) {
  api = await startFakeApiServer({ pod: podWith({ sidecars: ["sidecar-1"], ready: true }) });
  feed = podFeed(loadCluster(api.env(), "proa/test"), recordingLog(), {
    backoffBaseMs: 10,
    backoffMaxMs: 40,
    ...timing,
  });
  return { api, feed };
}

/** Follows the feed until `count` Pods have come, then leaves (as a phase does when its question is answered). */
async function take(feed: PodFeed, count: number): Promise<string[]> {
  const seen: string[] = [];
  for await (const pod of feed.follow(AbortSignal.timeout(5000))) {
    seen.push(versionOf(pod));
    if (seen.length === count) break;
  }
  return seen;
}

describe("podFeed: one watch for every phase", () => {
  test("a phase that stops following leaves the watch open for the next, which starts from the latest Pod: one list, one watch", async () => {
    const { api, feed } = await start();
    assert.deepEqual(await take(feed, 1), ["1001"]);
    api.setPod(podWith({ sidecars: ["sidecar-1"], ready: false }));
    await sleep(50);
    assert.equal(versionOf(feed.latest() ?? null), "1002");
    const next = take(feed, 2);
    await sleep(20);
    api.setPod(podWith({ sidecars: ["sidecar-1"], ready: true }));
    assert.deepEqual(await next, ["1002", "1003"]);
    assert.deepEqual(
      api.requests.map(({ url }) => (url.includes("watch=1") ? "watch" : "list")),
      ["list", "watch"],
    );
  });

  test("two followers at once each get every Pod, in order, even Pods that come between their reads", async () => {
    const { api, feed } = await start();
    const [a, b] = [take(feed, 4), take(feed, 4)];
    await sleep(50);
    for (const ready of [false, true, false]) api.setPod(podWith({ sidecars: ["sidecar-1"], ready }));
    assert.deepEqual(await a, ["1001", "1002", "1003", "1004"]);
    assert.deepEqual(await b, ["1001", "1002", "1003", "1004"]);
  });

  test("a follower's abort ends its own following with the abort's reason, not the watch", async () => {
    const { feed } = await start();
    await take(feed, 1);
    const stop = new AbortController();
    const reason = new Error("the program exited");
    const following = (async () => {
      for await (const _ of feed.follow(stop.signal));
    })();
    await sleep(20);
    stop.abort(reason);
    await assert.rejects(following, (error) => error === reason);
    assert.deepEqual(await take(feed, 1), ["1001"], "the watch is still there");
  });

  test("a watch that gives up (403 past giveUpMs) ends every follower with its error", async () => {
    api = await startFakeApiServer({ pod: podWith({ sidecars: ["sidecar-1"], ready: true }) });
    api.fail(...Array.from({ length: 30 }, () => ({ status: 403 })));
    feed = podFeed(loadCluster(api.env(), "proa/test"), recordingLog(), {
      backoffBaseMs: 10,
      backoffMaxMs: 20,
      giveUpMs: 100,
    });
    await assert.rejects(take(feed, 1), /^Error: giving up after 0.1 s: listing Pod .* HTTP 403/);
    await assert.rejects(take(feed, 1), /giving up/, "a later follower is told the same");
  });

  test("close() ends the watch's request and resolves once it is gone", async () => {
    const { api, feed } = await start();
    await take(feed, 1);
    await feed.close();
    const before = api.requests.length;
    await sleep(100);
    assert.equal(api.requests.length, before, "no request after close");
  });
});
