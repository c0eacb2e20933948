// kube.ts against the fake API server over real HTTPS: the watch's recovery rules and the wait, with injected
// millisecond timings (no test sleeps for a real backoff).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { get } from "node:https";
import { join } from "node:path";
import { json } from "node:stream/consumers";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, test } from "node:test";
import {
  defaultTiming,
  loadCluster,
  waitUntilReady,
  watchPod,
  type Cluster,
  type Pod,
  type ReadyOptions,
  type Timing,
} from "../kube.ts";
import type { Fields, Level, Log } from "../log.ts";
import { captured, capturedStream } from "./fixtures/pods.ts";
import {
  EXPIRED,
  FORBIDDEN,
  GONE,
  OTHER_CA,
  TEST_CA,
  UNAUTHORIZED,
  podWith,
  startFakeApiServer,
  watchEvent,
  type FakeApiServer,
  type FakeApiServerOptions,
} from "./fake-apiserver.ts";

const fast: Partial<Timing> = {
  backoffBaseMs: 10,
  backoffMaxMs: 40,
  watchTimeoutSeconds: 0,
  idleMarginMs: 2000,
  reminderMs: 60_000,
  giveUpMs: 60_000,
};
const options: ReadyOptions = { waitFor: [], ignore: [] };

interface Entry {
  level: Level;
  msg: string;
  fields?: Fields;
  at: number;
}
function recordingLog(): Log & { entries: Entry[] } {
  const entries: Entry[] = [];
  const at = (level: Level) => (msg: string, fields?: Fields) =>
    void entries.push({ level, msg, ...(fields && { fields }), at: Date.now() });
  return { entries, error: at("error"), warn: at("warn"), info: at("info"), debug: at("debug") };
}

let api: FakeApiServer | undefined;
let cluster: Cluster | undefined;
// Every watch and wait a test starts is stopped after it, even when an assertion failed first: a watch left running
// would retry the closed server forever and keep the test process alive.
const running = new Set<AbortController>();
function stopper(): AbortController {
  const controller = new AbortController();
  running.add(controller);
  return controller;
}
afterEach(async () => {
  for (const controller of running) controller.abort(new Error("the test ended"));
  running.clear();
  cluster?.agent.destroy();
  await api?.close();
  api = cluster = undefined;
});
async function start(fake: FakeApiServerOptions = {}): Promise<{ api: FakeApiServer; cluster: Cluster }> {
  api = await startFakeApiServer(fake);
  cluster = loadCluster(api.env(), "proa/test");
  return { api, cluster };
}

/** Runs watchPod until it has delivered `count` Pods (or nulls), then stops it; fails after 5 s rather than hang. */
async function firstDeliveries(
  cluster: Cluster,
  count: number,
  timing: Partial<Timing> = fast,
  log = recordingLog(),
): Promise<(Pod | null)[]> {
  const stop = stopper();
  const seen: (Pod | null)[] = [];
  const timer = setTimeout(
    () => stop.abort(new Error(`only ${seen.length} of ${count} deliveries: ${JSON.stringify(versions(seen))}`)),
    5000,
  );
  try {
    for await (const pod of watchPod(cluster, log, stop.signal, timing)) if (seen.push(pod) === count) break;
  } finally {
    clearTimeout(timer);
    stop.abort();
  }
  return seen;
}
/** Runs action just after the server has answered its nth request: changes happen in a known order, whatever the load. */
function afterRequest(api: FakeApiServer, n: number, action: () => void): void {
  const previous = api.onRequest;
  api.onRequest = (request) => {
    previous?.(request);
    if (api.requests.length === n) setImmediate(action);
  };
}
const versions = (pods: (Pod | null)[]) => pods.map((pod) => pod?.metadata?.resourceVersion ?? null);
const kinds = (api: FakeApiServer) =>
  api.requests.map((r) =>
    r.url.includes("watch=1") ? `watch@${new URL(r.url, "https://x").searchParams.get("resourceVersion")}` : "list",
  );
const ready = podWith({ sidecars: ["sidecar-1"], ready: true });
const notReady = podWith({ sidecars: ["sidecar-1"] });
const eventually = async (condition: () => boolean) => {
  for (let i = 0; i < 200 && !condition(); i++) await sleep(5);
  assert.ok(condition(), "condition not reached within 1 s");
};

describe("watchPod", { timeout: 60_000 }, () => {
  test("lists by field selector, then watches from the list's resourceVersion with bookmarks and a timeout, as proa's user agent", async () => {
    const { api, cluster } = await start({ pod: notReady });
    afterRequest(api, 2, () => api.setPod(ready));
    assert.deepEqual(
      versions(await firstDeliveries(cluster, 2, { ...fast, watchTimeoutSeconds: 300, random: () => 0.5 })),
      ["1001", "1002"],
    );
    assert.equal(api.requests[0]?.url, "/api/v1/namespaces/proa-e2e/pods?fieldSelector=metadata.name%3Dproa-demo");
    assert.equal(
      api.requests[1]?.url,
      "/api/v1/namespaces/proa-e2e/pods?fieldSelector=metadata.name%3Dproa-demo&watch=1&resourceVersion=1001&allowWatchBookmarks=true&timeoutSeconds=315",
    );
    assert.ok(api.requests.every((r) => r.authorized && r.userAgent === "proa/test" && r.method === "GET"));
  });

  test("an event split byte by byte, with multi-byte characters cut in half, arrives intact", async () => {
    const { api, cluster } = await start({ pod: notReady });
    const pod = {
      ...ready,
      metadata: { ...ready.metadata, resourceVersion: "2000", annotations: { note: "café 日本 🚀" } },
    };
    api.fail({
      on: "watch",
      chunks: [...Buffer.from(watchEvent("MODIFIED", pod))].map((byte) => Uint8Array.of(byte)),
      end: "stall",
    });
    // Some 6,000 writes take seconds on a loaded machine: a watch asked for 60 s is not cut meanwhile.
    const [, second] = await firstDeliveries(cluster, 2, { ...fast, watchTimeoutSeconds: 60 });
    assert.deepEqual(second, pod);
  });

  test("several events in one chunk are each delivered, in order", async () => {
    const { api, cluster } = await start({ pod: notReady });
    const at = (resourceVersion: string) => ({ ...notReady, metadata: { ...notReady.metadata, resourceVersion } });
    api.fail({
      on: "watch",
      chunks: [
        watchEvent("MODIFIED", at("2001")) + watchEvent("MODIFIED", at("2002")) + watchEvent("MODIFIED", at("2003")),
      ],
      end: "stall",
    });
    assert.deepEqual(versions(await firstDeliveries(cluster, 4)), ["1001", "2001", "2002", "2003"]);
  });

  test("the stream captured from kube-apiserver, cut into odd-sized chunks, delivers each Pod state once; bookmarks move the resourceVersion", async () => {
    const { api, cluster } = await start({ pod: notReady });
    const stream = capturedStream("watch-events.jsonl"); // from pod-list.json's resourceVersion 196: 197..202, then BOOKMARK 202 twice
    api.fail(
      { on: "list", status: 200, body: captured("pod-list.json") },
      {
        on: "watch",
        chunks: Array.from({ length: Math.ceil(stream.length / 997) }, (_, i) =>
          stream.subarray(i * 997, (i + 1) * 997),
        ),
        end: "clean",
      },
    );
    const pods = await firstDeliveries(cluster, 8); // the 8th comes from the fake's own history, after the captured stream ended
    assert.deepEqual(versions(pods), ["196", "197", "198", "199", "200", "201", "202", "1001"]);
    assert.deepEqual(kinds(api), ["list", "watch@196", "watch@202"]);
  });

  test("a clean end of the stream watches again from the last resourceVersion, without a list and without delivering twice", async () => {
    const { api, cluster } = await start({ pod: notReady });
    afterRequest(api, 2, () => (api.setPod(notReady), api.endWatches()));
    afterRequest(api, 3, () => api.setPod(ready));
    assert.deepEqual(versions(await firstDeliveries(cluster, 3)), ["1001", "1002", "1003"]);
    assert.deepEqual(kinds(api), ["list", "watch@1001", "watch@1002"]);
  });

  test("a stream cut in the middle of an event drops the partial line and watches again from the last resourceVersion", async () => {
    const { api, cluster } = await start({ pod: notReady });
    const line = watchEvent("MODIFIED", { ...ready, metadata: { ...ready.metadata, resourceVersion: "1500" } });
    api.fail({ on: "watch", chunks: [line.slice(0, 100)], end: "cut" });
    afterRequest(api, 2, () => api.setPod(ready)); // sent again by the next watch
    const log = recordingLog();
    assert.deepEqual(versions(await firstDeliveries(cluster, 2, fast, log)), ["1001", "1002"]);
    assert.deepEqual(kinds(api), ["list", "watch@1001", "watch@1001"]);
    assert.match(
      log.entries.find((e) => e.level === "warn")?.msg ?? "",
      /^watching Pod proa-e2e\/proa-demo at https:\/\/127\.0\.0\.1:\d+ failed: the API server closed the connection/,
    );
  });

  test("a clean end in the middle of an event is a failure too, not a lost event", async () => {
    const { api, cluster } = await start({ pod: notReady });
    api.fail({ on: "watch", chunks: ['{"type":"MODIFIED","obj'], end: "clean" });
    afterRequest(api, 2, () => api.setPod(ready)); // sent again by the next watch
    const log = recordingLog();
    await firstDeliveries(cluster, 2, fast, log);
    assert.ok(log.entries.some((e) => e.level === "warn" && /the stream ended in the middle of an event/.test(e.msg)));
  });

  test("a line that is not a watch event is reported and the watch starts again, never silently skipped", async () => {
    const { api, cluster } = await start({ pod: notReady });
    api.fail({ on: "watch", chunks: ["<html>proxy error</html>\n"], end: "stall" });
    afterRequest(api, 2, () => api.setPod(ready)); // sent again by the next watch
    const log = recordingLog();
    assert.deepEqual(versions(await firstDeliveries(cluster, 2, fast, log)), ["1001", "1002"]);
    assert.ok(
      log.entries.some((e) => e.level === "warn" && /failed: the watch sent a line that is not JSON/.test(e.msg)),
    );
  });

  // Expired: the captured stream byte for byte. Gone: the same Status with that reason.
  for (const [reason, stream] of [
    ["Expired", capturedStream("watch-expired.jsonl")],
    ["Gone", watchEvent("ERROR", GONE)],
  ] as const) {
    test(`an ERROR event 410 ${reason} lists again and never retries the expired resourceVersion`, async () => {
      const { api, cluster } = await start({ pod: notReady });
      api.fail({ on: "watch", chunks: [stream], end: "clean" });
      afterRequest(api, 3, () => api.setPod(ready));
      assert.deepEqual(versions(await firstDeliveries(cluster, 2)), ["1001", "1002"]);
      assert.deepEqual(kinds(api), ["list", "watch@1001", "list", "watch@1001"]);
    });
  }

  test("a watch from a compacted resourceVersion gets 410 from the server and lists again, from the new resourceVersion", async () => {
    const { api, cluster } = await start({ pod: notReady });
    // The watch sends 1002 and ends; before proa watches again, the Pod changes (1003) and the server forgets the history.
    afterRequest(api, 2, () => (api.setPod(notReady), api.endWatches(), api.setPod(notReady), api.compact()));
    afterRequest(api, 5, () => api.setPod(ready));
    assert.deepEqual(versions(await firstDeliveries(cluster, 4)), ["1001", "1002", "1003", "1004"]);
    assert.deepEqual(kinds(api), ["list", "watch@1001", "watch@1002", "list", "watch@1003"]);
  });

  test("HTTP 410 on the watch lists again", async () => {
    const { api, cluster } = await start({ pod: notReady });
    api.fail({ on: "watch", status: 410, body: EXPIRED });
    afterRequest(api, 3, () => api.setPod(ready));
    await firstDeliveries(cluster, 2);
    assert.deepEqual(kinds(api), ["list", "watch@1001", "list", "watch@1001"]);
  });

  test("BOOKMARK events deliver nothing and only advance the resourceVersion", async () => {
    const { api, cluster } = await start({ pod: notReady });
    afterRequest(api, 2, () => (api.bookmark(), api.endWatches()));
    afterRequest(api, 3, () => api.setPod(ready));
    assert.deepEqual(versions(await firstDeliveries(cluster, 2)), ["1001", "1003"]);
    assert.deepEqual(kinds(api), ["list", "watch@1001", "watch@1002"]);
  });

  test("a DELETED Pod is delivered as null, once", async () => {
    const { api, cluster } = await start({ pod: notReady });
    afterRequest(api, 2, () => (api.setPod(null), api.endWatches()));
    afterRequest(api, 3, () => api.setPod(ready));
    assert.deepEqual(versions(await firstDeliveries(cluster, 3)), ["1001", null, "1003"]);
  });

  test("429 with a plain-text body honours Retry-After", async () => {
    const { api, cluster } = await start({ pod: ready });
    // As kube-apiserver's max-in-flight filter sends it: http.Error, text/plain.
    api.fail({
      on: "list",
      status: 429,
      body: "Too many requests, please try again later.\n",
      headers: { "Retry-After": "1" },
    });
    const log = recordingLog();
    await firstDeliveries(cluster, 1, { ...fast, backoffBaseMs: 1, backoffMaxMs: 200 }, log);
    const [first, second] = api.requests;
    assert.ok(
      second && first && second.at - first.at >= 190,
      `retried after ${second && first && second.at - first.at} ms; Retry-After: 1 capped at 200 ms`,
    );
    const { at: _, ...warning } = log.entries.find((e) => e.level === "warn") ?? { at: 0 };
    assert.deepEqual(warning, {
      level: "warn",
      msg: `listing Pod proa-e2e/proa-demo at ${cluster.server} failed: HTTP 429: Too many requests, please try again later.`,
      fields: { retryInMs: 200 },
    });
  });

  test("500 backs off and retries", async () => {
    const { api, cluster } = await start({ pod: ready });
    api.fail({ on: "list", status: 500 }, { on: "list", status: 503, body: "upstream connect error" });
    assert.equal((await firstDeliveries(cluster, 1))[0]?.metadata?.resourceVersion, "1001");
    assert.equal(api.requests.length, 3);
  });

  test("401 is retried at once with the token file's new content", async () => {
    const { api, cluster } = await start({ pod: ready });
    api.token = "rotated"; // the server no longer accepts the token in the file...
    api.onRequest = (request) => {
      if (!request.authorized) writeFileSync(join(api.serviceAccountDir, "token"), "rotated\n"); // ...until the kubelet rewrites it
    };
    const log = recordingLog();
    await firstDeliveries(cluster, 1, { ...fast, backoffBaseMs: 10_000 }, log);
    assert.deepEqual(
      api.requests.map((r) => r.authorized),
      [false, true],
    );
    assert.deepEqual(
      log.entries.map((e) => [e.level, e.msg]),
      [
        ["debug", "the API server refused the token: reading it again and retrying once"],
        ["debug", "listed the Pod"],
      ],
    );
    assert.ok(!/test-token-1|rotated|bearer|authorization/i.test(JSON.stringify(log.entries)));
  });

  test("401 with a token that stays refused is logged at error level and retried with backoff", async () => {
    const { api, cluster } = await start({ pod: ready });
    api.token = "something else";
    setTimeout(() => api.rotateToken("fixed"), 150);
    const log = recordingLog();
    await firstDeliveries(cluster, 1, fast, log);
    const error = log.entries.find((e) => e.level === "error");
    assert.match(
      error?.msg ?? "",
      /failed: HTTP 401: Unauthorized; the token at .*\/token was re-read and still refused/,
    );
    assert.ok(api.requests.length >= 4 && api.requests.length < 40, `${api.requests.length} requests`);
  });

  test("403 logs the Role rule to create and the service account's user, and is retried until RBAC exists", async () => {
    const { api, cluster } = await start({ pod: ready });
    api.fail({ on: "list", status: 403, body: FORBIDDEN }, { on: "list", status: 403, body: FORBIDDEN });
    const log = recordingLog();
    await firstDeliveries(cluster, 1, fast, log);
    const errors = log.entries.filter((e) => e.level === "error");
    assert.equal(errors.length, 2);
    assert.equal(
      errors[0]?.msg,
      `listing Pod proa-e2e/proa-demo at ${cluster.server} failed: HTTP 403: pods "proa-demo" is forbidden: User "system:serviceaccount:proa-e2e:proa-nobody" cannot list resource "pods" in API group "" in the namespace "proa-e2e"; grant system:serviceaccount:proa-e2e:proa-nobody a Role in namespace proa-e2e with the rule {apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"]} and a RoleBinding to it`,
    );
  });

  test("403 after proa was let in (a restarted API server whose authorizer has not caught up) is a warning that says so, not an error", async () => {
    const { api, cluster } = await start({ pod: podWith({ sidecars: ["sidecar-1"], ready: false }) });
    api.fail({ on: "watch", status: 403, body: FORBIDDEN });
    afterRequest(api, 3, () => api.setPod(ready));
    const log = recordingLog();
    await firstDeliveries(cluster, 2, fast, log);
    assert.deepEqual(
      log.entries.filter((e) => e.level === "error"),
      [],
    );
    const warning = log.entries.find((e) => e.level === "warn");
    assert.match(
      warning?.msg ?? "",
      /^watching Pod .* failed: HTTP 403: .* \(allowed before: the API server may still be starting, or the permission was removed; retrying\)$/,
    );
  });

  test("403 that lasts past the give-up time ends the watch with the fix", async () => {
    const { api, cluster } = await start({ pod: ready });
    api.fail(...Array.from({ length: 100 }, () => ({ on: "list" as const, status: 403, body: FORBIDDEN })));
    await assert.rejects(
      firstDeliveries(cluster, 1, { ...fast, giveUpMs: 150 }),
      /^Error: giving up after 0\.\d+ s: listing .* HTTP 403: .*verbs: \["list", "watch"\]/,
    );
  });

  test("a stalled watch (headers, then silence) is cut after timeoutSeconds plus the margin and started again", async () => {
    const { api, cluster } = await start({ pod: notReady });
    api.fail({ on: "watch", chunks: [], end: "stall" });
    afterRequest(api, 2, () => api.setPod(ready)); // the stalled watch never sends it
    const log = recordingLog();
    const started = Date.now();
    assert.deepEqual(versions(await firstDeliveries(cluster, 2, { ...fast, idleMarginMs: 150 }, log)), [
      "1001",
      "1002",
    ]);
    assert.ok(Date.now() - started >= 150);
    assert.deepEqual(kinds(api), ["list", "watch@1001", "watch@1001"]);
    assert.match(log.entries.find((e) => e.level === "warn")?.msg ?? "", /failed: no data from .* for 150 ms/);
  });

  test("a watch may be silent for its timeoutSeconds plus the margin: silence longer than the margin alone is not cut", async () => {
    const { api, cluster } = await start({ pod: notReady });
    const later = { ...ready, metadata: { ...ready.metadata, resourceVersion: "2000" } };
    api.fail({ on: "watch", chunks: [400, watchEvent("MODIFIED", later)], end: "stall" });
    const log = recordingLog();
    assert.deepEqual(
      versions(
        await firstDeliveries(cluster, 2, { ...fast, watchTimeoutSeconds: 1, idleMarginMs: 100, random: () => 0 }, log),
      ),
      ["1001", "2000"],
    );
    assert.deepEqual(
      log.entries.filter((e) => e.level === "warn"),
      [],
    );
    assert.deepEqual(kinds(api), ["list", "watch@1001"]);
  });

  test("a watch asks the server for 300 s jittered up by less than 10%: held for the whole run, it is renewed no more often than every 5 minutes (at most 12 requests an hour)", async () => {
    assert.equal(defaultTiming.watchTimeoutSeconds, 300);
    for (const [random, asked] of [
      [0, 300],
      [0.5, 315],
      [0.999, 330],
    ] as const) {
      const { api, cluster } = await start({ pod: notReady });
      afterRequest(api, 2, () => api.setPod(ready));
      await firstDeliveries(cluster, 2, {
        ...fast,
        watchTimeoutSeconds: defaultTiming.watchTimeoutSeconds,
        random: () => random,
      });
      assert.equal(new URL(api.requests[1]!.url, "https://x").searchParams.get("timeoutSeconds"), String(asked));
      await api.close();
    }
  });

  test("a watch whose headers never come is cut after the margin, not after timeoutSeconds", async () => {
    const { api, cluster } = await start({ pod: notReady });
    api.fail({ on: "watch", hang: true });
    afterRequest(api, 2, () => api.setPod(ready));
    const log = recordingLog();
    await firstDeliveries(cluster, 2, { ...fast, watchTimeoutSeconds: 60, idleMarginMs: 100 }, log);
    assert.match(
      log.entries.find((e) => e.level === "warn")?.msg ?? "",
      /^watching .* failed: no data from .* for 100 ms$/,
    );
  });

  test("the idle timer measures silence, not the length of the request", async () => {
    const { api, cluster } = await start({ pod: notReady });
    const bookmark = watchEvent("BOOKMARK", { kind: "Pod", apiVersion: "v1", metadata: { resourceVersion: "1001" } });
    // Eight bookmarks 40 ms apart: 320 ms in all, never 300 ms of silence (and within timeoutSeconds plus the margin).
    api.fail({ on: "watch", chunks: Array.from({ length: 8 }, () => [bookmark, 40]).flat(), end: "clean" });
    afterRequest(api, 3, () => api.setPod(ready));
    const log = recordingLog();
    await firstDeliveries(cluster, 2, { ...fast, watchTimeoutSeconds: 1, idleMarginMs: 300 }, log);
    assert.deepEqual(
      log.entries.filter((e) => e.level === "warn"),
      [],
    );
    assert.deepEqual(kinds(api), ["list", "watch@1001", "watch@1001"]);
  });

  test("a stalled list is cut after the margin and sent again", async () => {
    const { api, cluster } = await start({ pod: ready });
    api.fail({ on: "list", chunks: ['{"kind":"PodList",'], end: "stall" });
    await firstDeliveries(cluster, 1, { ...fast, idleMarginMs: 100 });
    assert.deepEqual(kinds(api), ["list", "list"]);
  });

  test("a list answered a byte at a time is abandoned after listTimeoutMs, however steadily the bytes come, and sent again", async () => {
    const { api, cluster } = await start({ pod: ready });
    // A byte every 20 ms, for 1.2 s: the idle timer (2 s) never runs out.
    api.fail({
      on: "list",
      chunks: ['{"kind":"PodList",', ...Array.from({ length: 60 }, () => [20, " "]).flat()],
      end: "clean",
    });
    const log = recordingLog();
    const started = Date.now();
    assert.deepEqual(versions(await firstDeliveries(cluster, 1, { ...fast, listTimeoutMs: 200 }, log)), ["1001"]);
    assert.ok(Date.now() - started >= 200);
    assert.deepEqual(kinds(api), ["list", "list"]);
    assert.match(
      log.entries.find((e) => e.level === "warn")?.msg ?? "",
      /^listing Pod .* failed: the answer was not complete within 200 ms$/,
    );
  });

  test("a watch still open a margin after its timeoutSeconds plus the margin is cut, though bytes keep coming, and started again", async () => {
    const { api, cluster } = await start({ pod: notReady });
    // A line that never ends, a byte every 20 ms for 1.2 s: never 300 ms of silence.
    api.fail({
      on: "watch",
      chunks: ['{"type":"BOOKMARK",', ...Array.from({ length: 60 }, () => [20, " "]).flat()],
      end: "clean",
    });
    afterRequest(api, 3, () => api.setPod(ready));
    const log = recordingLog();
    assert.deepEqual(
      versions(await firstDeliveries(cluster, 2, { ...fast, watchTimeoutSeconds: 0, idleMarginMs: 300 }, log)),
      ["1001", "1002"],
    );
    assert.deepEqual(kinds(api), ["list", "watch@1001", "watch@1001"]);
    assert.match(
      log.entries.find((e) => e.level === "warn")?.msg ?? "",
      /^watching Pod .* failed: the answer was not complete within 600 ms$/,
    );
  });

  test("a server that closes at once, a hundred times, is retried at a bounded rate", async () => {
    const { api, cluster } = await start({ pod: ready });
    api.fail(...Array.from({ length: 100 }, () => ({ destroy: true as const })));
    const started = Date.now();
    await firstDeliveries(cluster, 1, { ...fast, backoffBaseMs: 2, backoffMaxMs: 6 });
    const elapsed = Date.now() - started;
    assert.equal(api.requests.length, 101);
    // Once the backoff reaches its cap, each retry waits at least 3 ms (half the cap).
    assert.ok(elapsed >= 98 * 3, `101 requests in ${elapsed} ms`);
  });

  test("a watch that the server ends at once, over and over, is retried with backoff", async () => {
    const { api, cluster } = await start({ pod: notReady });
    api.fail(...Array.from({ length: 30 }, () => ({ on: "watch" as const, chunks: [], end: "clean" as const })));
    afterRequest(api, 2, () => api.setPod(ready));
    const started = Date.now();
    await firstDeliveries(cluster, 2, { ...fast, backoffBaseMs: 2, backoffMaxMs: 6 });
    assert.ok(Date.now() - started >= 28 * 3, `31 watches in ${Date.now() - started} ms`);
    assert.ok(kinds(api).every((kind) => kind === "list" || kind === "watch@1001"));
  });

  test("Retry-After: 0, empty, negative or not a number never shortens the backoff", async () => {
    const { api, cluster } = await start({ pod: ready });
    const values = ["0", "", "-5", "soon", "0", "", "-5", "soon"];
    api.fail(
      ...values.map((value) => ({
        on: "list" as const,
        status: 429,
        body: "Too many requests",
        headers: { "Retry-After": value },
      })),
    );
    await firstDeliveries(cluster, 1, { ...fast, backoffBaseMs: 40, backoffMaxMs: 40, random: () => 0 });
    const gaps = api.requests.slice(1).map((request, i) => request.at - (api.requests[i]?.at ?? 0));
    assert.equal(gaps.length, values.length);
    assert.ok(
      gaps.every((gap) => gap >= 19),
      `retried after ${gaps.join(", ")} ms; the backoff is at least 20 ms`,
    );
  });

  test("Retry-After lengthens the backoff up to the cap", async () => {
    const { api, cluster } = await start({ pod: ready });
    api.fail({ on: "list", status: 503, body: "try later", headers: { "Retry-After": "3600" } });
    await firstDeliveries(cluster, 1, { ...fast, backoffBaseMs: 10, backoffMaxMs: 150, random: () => 0 });
    const [first, second] = api.requests;
    assert.ok(
      second && first && second.at - first.at >= 145,
      `retried after ${second && first && second.at - first.at} ms`,
    );
  });

  // kube-apiserver's own 5xx answers with Retry-After (its responsewriters copy details.retryAfterSeconds into the
  // header). These bodies are derived from its source, as GONE is: a real server sends them only when etcd fails.
  const SERVER_TIMEOUT = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: "The list operation against pods could not be completed at this time, please try again.",
    reason: "ServerTimeout",
    details: { name: "list", kind: "pods", retryAfterSeconds: 2 },
    code: 500,
  };
  const TOO_LARGE = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: "Too large resource version: 1005, current: 1001",
    reason: "Timeout",
    details: {
      causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }],
      retryAfterSeconds: 1,
    },
    code: 504,
  };
  for (const [why, status, body, seconds] of [
    ["a 500 ServerTimeout when etcd is unreachable", 500, SERVER_TIMEOUT, "2"],
    ["a 504 Timeout for a resourceVersion ahead of its cache", 504, TOO_LARGE, "1"],
  ] as const) {
    test(`Retry-After on any 5xx lengthens the backoff as on a 429: kube-apiserver's ${why}`, async () => {
      const { api, cluster } = await start({ pod: ready });
      api.fail({ on: "list", status, body, headers: { "Retry-After": seconds } });
      await firstDeliveries(cluster, 1, { ...fast, backoffBaseMs: 10, backoffMaxMs: 150, random: () => 0 });
      const [first, second] = api.requests;
      assert.ok(
        second && first && second.at - first.at >= 145,
        `retried after ${second && first && second.at - first.at} ms, not the 150 ms cap of Retry-After: ${seconds}`,
      );
    });
  }

  // A server (or proxy) that ends each watch at once, after one bookmark or one event: no more than a few watches a
  // second, whatever it delivers. With a backoff of 10..40 ms and no jitter, 50 watches take at least 975 ms.
  for (const [what, line] of [
    [
      "one BOOKMARK",
      (_: number) => watchEvent("BOOKMARK", { kind: "Pod", apiVersion: "v1", metadata: { resourceVersion: "1001" } }),
    ],
    [
      "one event",
      (i: number) =>
        watchEvent("MODIFIED", { ...notReady, metadata: { ...notReady.metadata, resourceVersion: String(2000 + i) } }),
    ],
  ] as const) {
    test(`watches that end right after ${what}, over and over, are retried with backoff`, async () => {
      const { api, cluster } = await start({ pod: notReady });
      api.fail(
        ...Array.from({ length: 50 }, (_, i) => ({ on: "watch" as const, chunks: [line(i)], end: "clean" as const })),
      );
      const stop = stopper();
      const watching = (async () => {
        for await (const _ of watchPod(cluster, recordingLog(), stop.signal, {
          ...fast,
          backoffBaseMs: 10,
          backoffMaxMs: 40,
          minWatchMs: 1000,
          random: () => 0,
        }));
      })().catch(() => {});
      const started = Date.now();
      await sleep(500);
      stop.abort();
      await watching;
      const watches = kinds(api).filter((kind) => kind.startsWith("watch")).length;
      assert.ok(watches <= 30, `${watches} watches in ${Date.now() - started} ms`);
    });
  }

  test("a list naming another Pod is not taken for proa's Pod: it is ignored with a warning", async () => {
    const { api, cluster } = await start({ pod: ready });
    const other = { ...ready, metadata: { ...ready.metadata, name: "someone-else", resourceVersion: "900" } };
    api.fail({
      on: "list",
      status: 200,
      body: { kind: "PodList", apiVersion: "v1", metadata: { resourceVersion: "1001" }, items: [other] },
    });
    const log = recordingLog();
    assert.deepEqual(await firstDeliveries(cluster, 1, fast, log), [null]);
    assert.match(
      log.entries.find((e) => e.level === "warn")?.msg ?? "",
      /Pod proa-e2e\/someone-else .*proa-e2e\/proa-demo/,
    );
  });

  test("watch events naming another Pod, or another uid under the same name, are ignored: the first with a warning, the rest counted", async () => {
    const { api, cluster } = await start({ pod: notReady });
    const at = (resourceVersion: string, metadata: object = {}) => ({
      ...ready,
      metadata: { ...ready.metadata, resourceVersion, ...metadata },
    });
    api.fail({
      on: "watch",
      chunks: [
        watchEvent("MODIFIED", at("2001", { name: "someone-else" })),
        watchEvent("MODIFIED", at("2002", { namespace: "elsewhere" })),
        watchEvent("MODIFIED", at("2003", { uid: "0b1c5a5e-0000-4000-8000-000000000000" })),
        watchEvent("DELETED", at("2004", { uid: "0b1c5a5e-0000-4000-8000-000000000000" })),
        watchEvent("MODIFIED", { ...notReady, metadata: { ...notReady.metadata, resourceVersion: "2005" } }),
      ],
      end: "stall",
    });
    const log = recordingLog();
    assert.deepEqual(versions(await firstDeliveries(cluster, 2, fast, log)), ["1001", "2005"]);
    const warnings = log.entries.filter((e) => e.level === "warn");
    assert.match(
      warnings[0]?.msg ?? "",
      /sent Pod proa-e2e\/someone-else when asked for proa-e2e\/proa-demo: ignoring it$/,
    );
    // Written when the watch ended, as the 30 s had not passed.
    assert.match(warnings[1]?.msg ?? "", /^ignored 3 events about another Pod in the last 0 s$/);
    assert.match(String(warnings[1]?.fields?.last), /another Pod named proa-e2e\/proa-demo \(uid 0b1c5a5e-/);
    assert.equal(warnings.length, 2);
  });

  test("a Pod with fields of the wrong type is one clear error, and the watch starts again", async () => {
    const { api, cluster } = await start({ pod: notReady });
    const malformed = {
      ...ready,
      metadata: { ...ready.metadata, resourceVersion: "2001" },
      status: { ...ready.status, containerStatuses: 5 },
    };
    api.fail({ on: "watch", chunks: [watchEvent("MODIFIED", malformed)], end: "stall" });
    afterRequest(api, 2, () => api.setPod(ready));
    const log = recordingLog();
    assert.deepEqual(versions(await firstDeliveries(cluster, 2, fast, log)), ["1001", "1002"]);
    assert.match(
      log.entries.find((e) => e.level === "warn")?.msg ?? "",
      /failed: the API server's answer was not a Pod: status\.containerStatuses is a number, not a list$/,
    );
  });

  test("a list whose Pod has fields of the wrong type is one clear error, and the list is sent again", async () => {
    const { api, cluster } = await start({ pod: ready });
    const malformed = { ...ready, spec: { ...ready.spec, containers: [{ name: "main" }, "sidecar-1"] } };
    api.fail({
      on: "list",
      status: 200,
      body: { kind: "PodList", apiVersion: "v1", metadata: { resourceVersion: "1001" }, items: [malformed] },
    });
    const log = recordingLog();
    await firstDeliveries(cluster, 1, fast, log);
    assert.deepEqual(kinds(api), ["list", "list"]);
    assert.match(
      log.entries.find((e) => e.level === "warn")?.msg ?? "",
      /failed: the API server's answer was not a Pod: spec\.containers\[1\] is a string, not an object$/,
    );
  });

  test("a long message from the server is quoted in a few hundred characters, in every log line", async () => {
    const { api, cluster } = await start({ pod: notReady });
    const long = `etcdserver: ${"x".repeat(60_000)}`;
    api.fail({ on: "list", status: 500, body: { ...FORBIDDEN, code: 500, reason: "InternalError", message: long } });
    api.fail({
      on: "watch",
      chunks: [watchEvent("ERROR", { ...EXPIRED, code: 500, reason: "InternalError", message: long })],
      end: "stall",
    });
    afterRequest(api, 4, () => api.setPod(ready));
    const log = recordingLog();
    await firstDeliveries(cluster, 2, fast, log);
    const warnings = log.entries.filter((e) => e.level === "warn");
    assert.equal(warnings.length, 2);
    for (const warning of warnings)
      assert.ok(JSON.stringify(warning).length < 1000, `a log line of ${JSON.stringify(warning).length} characters`);
  });

  test("an API server on the IPv6 loopback works", async () => {
    const { api, cluster } = await start({ pod: ready, host: "::1" });
    assert.equal(cluster.server, `https://[::1]:${api.port}`);
    assert.equal(cluster.host, "::1");
    assert.equal((await firstDeliveries(cluster, 1))[0]?.metadata?.resourceVersion, "1001");
  });

  test("401 or 403 gives up on time, not at the next failure after a long backoff", async () => {
    const { api, cluster } = await start({ pod: ready });
    api.fail(...Array.from({ length: 100 }, () => ({ on: "list" as const, status: 403, body: FORBIDDEN })));
    const started = Date.now();
    await assert.rejects(
      firstDeliveries(cluster, 1, { ...fast, backoffBaseMs: 2000, backoffMaxMs: 2000, random: () => 1, giveUpMs: 250 }),
      /^Error: giving up after 0\.25 s: listing .* HTTP 403/,
    );
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 240 && elapsed < 1000, `gave up after ${elapsed} ms`);
  });

  test("a server whose certificate is not signed by the service account's CA is refused before any request", async () => {
    const { api, cluster } = await start({ pod: ready, ca: OTHER_CA });
    const log = recordingLog();
    const wait = waitUntilReady(cluster, { ...options, readyTimeoutMs: 150 }, log, stopper().signal, undefined, fast);
    await assert.rejects(
      wait,
      /--ready-timeout \(0.15 s\) passed: Pod proa-e2e\/proa-demo was never read from the API server/,
    );
    assert.equal(api.requests.length, 0);
    assert.match(
      log.entries.find((e) => e.level === "warn")?.msg ?? "",
      /failed: (self-signed certificate in certificate chain|unable to verify the first certificate|unable to get local issuer certificate)/,
    );
  });

  test("stopping the watch destroys the request and clears every timer; nothing reconnects afterwards", async () => {
    const { api, cluster } = await start({ pod: notReady });
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const before = timers();
    const stop = stopper();
    const reason = new Error("stopped by the test");
    const watching = (async () => {
      for await (const _ of watchPod(cluster, recordingLog(), stop.signal, fast));
    })();
    await eventually(() => api.requests.length === 2);
    stop.abort(reason);
    await assert.rejects(watching, (error) => error === reason);
    await sleep(50);
    assert.equal(api.requests.length, 2);
    assert.equal(timers(), before);
  });

  test("stopping during a backoff ends at once", async () => {
    const { api, cluster } = await start({ pod: ready });
    api.fail({ on: "list", status: 500 });
    const stop = stopper();
    const watching = (async () => {
      for await (const _ of watchPod(cluster, recordingLog(), stop.signal, { ...fast, backoffBaseMs: 60_000 }));
    })();
    await eventually(() => api.requests.length === 1);
    stop.abort(new Error("stop"));
    await assert.rejects(watching, /^Error: stop$/);
  });
});

describe("waitUntilReady", { timeout: 30_000 }, () => {
  const wait = (
    cluster: Cluster,
    more: Partial<ReadyOptions> = {},
    timing: Partial<Timing> = fast,
    log = recordingLog(),
    signal = stopper().signal,
  ) => {
    const seen: Pod[] = [];
    const promise = waitUntilReady(cluster, { ...options, ...more }, log, signal, (pod) => void seen.push(pod), timing);
    return { promise, seen, log };
  };

  test("resolves with the Pod and proa's container once the sidecars are ready, logging what it waits for", async () => {
    const { api, cluster } = await start({ pod: podWith({ sidecars: ["sidecar-1", "sidecar-2"] }) });
    afterRequest(api, 2, () => {
      api.setPod(podWith({ sidecars: ["sidecar-1", "sidecar-2"], ready: { "sidecar-1": true } }));
      api.setPod(podWith({ sidecars: ["sidecar-1", "sidecar-2"], ready: true }));
    });
    const { promise, log, seen } = wait(cluster);
    const result = await promise;
    assert.equal(result.ownContainer, "main");
    assert.equal(result.pod.metadata?.resourceVersion, "1003");
    assert.equal(seen.length, 3);
    assert.deepEqual(
      log.entries.filter((e) => e.level === "info").map((e) => [e.msg, e.fields?.notReady ?? e.fields?.rule]),
      [
        ["waiting for the other containers of Pod proa-e2e/proa-demo to be ready", undefined],
        [
          "proa runs in container main",
          "the Pod's first container, as the original proa did (set --container to choose)",
        ],
        ["waiting for containers to be ready", ["sidecar-1", "sidecar-2"]],
        ["waiting for containers to be ready", ["sidecar-2"]],
        ["the other containers are ready", undefined],
      ],
    );
  });

  test("waits through the list and watch captured from kube-apiserver until both sidecars are ready", async () => {
    const { api, cluster } = await start({ pod: notReady });
    api.fail(
      { on: "list", status: 200, body: captured("pod-list.json") },
      { on: "watch", chunks: [capturedStream("watch-events.jsonl")], end: "stall" },
    );
    const { promise, log } = wait(cluster);
    assert.equal((await promise).pod.metadata?.resourceVersion, "199");
    assert.deepEqual(
      log.entries.filter((e) => e.fields?.notReady).map((e) => e.fields?.notReady),
      [["sidecar-1", "sidecar-2"], ["sidecar-2"]],
    );
  });

  test("a Pod with only proa's container is ready at once", async () => {
    const { cluster } = await start({ pod: podWith({}) });
    assert.equal((await wait(cluster).promise).ownContainer, "main");
  });

  test("reminds at most once per interval while nothing changes, and not right after a change", async () => {
    const { api, cluster } = await start({ pod: notReady });
    afterRequest(api, 2, () => {
      setTimeout(() => api.setPod(notReady), 150); // a new resourceVersion, the same set: no log
      setTimeout(() => api.setPod(podWith({ sidecars: ["sidecar-1", "sidecar-2"] })), 250); // a change
      setTimeout(() => api.setPod(podWith({ sidecars: ["sidecar-1", "sidecar-2"], ready: true })), 450);
    });
    const { promise, log } = wait(cluster, {}, { ...fast, reminderMs: 100 });
    await promise;
    const progress = log.entries.filter((e) => e.fields?.notReady);
    const reminders = progress.filter((e) => e.msg === "still waiting for containers to be ready");
    assert.ok(reminders.length >= 2, `${reminders.length} reminders`);
    assert.deepEqual(reminders[0]?.fields?.notReady, ["sidecar-1"]);
    assert.deepEqual(reminders.at(-1)?.fields?.notReady, ["sidecar-1", "sidecar-2"]);
    for (let i = 1; i < progress.length; i++) {
      const [before, after] = [progress[i - 1] as Entry, progress[i] as Entry];
      if (after.msg.startsWith("still"))
        assert.ok(after.at - before.at >= 95, `a reminder ${after.at - before.at} ms after the previous progress line`);
    }
  });

  test("a sidecar that terminates in a Pod with restartPolicy Never fails the wait, naming it, and the last Pod is still passed on", async () => {
    const { api, cluster } = await start({ pod: notReady });
    const failed = podWith({ sidecars: ["sidecar-1"], terminated: { "sidecar-1": { exitCode: 2 } } });
    afterRequest(api, 2, () => api.setPod(failed));
    const { promise, seen } = wait(cluster);
    await assert.rejects(
      promise,
      /^Error: container sidecar-1 terminated with exit code 2 \(Error\) before it was ready, and the Pod's restartPolicy is Never/,
    );
    assert.equal(seen.at(-1)?.metadata?.resourceVersion, "1002");
  });

  test("--ready-timeout names the containers that are still not ready", async () => {
    const { cluster } = await start({
      pod: podWith({ sidecars: ["sidecar-1", "sidecar-2"], ready: { "sidecar-1": true } }),
    });
    // 500 ms: long enough for the list to arrive first on a loaded machine, whose answer the message quotes.
    await assert.rejects(
      wait(cluster, { readyTimeoutMs: 500 }).promise,
      /^Error: --ready-timeout \(0.5 s\) passed: containers still not ready: sidecar-2$/,
    );
  });

  test("--wait-for and --ignore choose the containers; an unknown name fails with the Pod's containers", async () => {
    const { cluster } = await start({ pod: podWith({ sidecars: ["a", "b"], ready: { a: true } }) });
    assert.equal((await wait(cluster, { waitFor: ["a"] }).promise).ownContainer, "main");
    assert.equal((await wait(cluster, { ignore: ["b"] }).promise).ownContainer, "main");
    await assert.rejects(wait(cluster, { waitFor: ["c"] }).promise, /--wait-for c: no such container .* are: a, b$/);
    await assert.rejects(
      wait(cluster, { container: "x" }).promise,
      /--container x: the Pod has no such container; its containers are: main, a, b$/,
    );
  });

  test("--container chooses proa's container", async () => {
    const { cluster } = await start({ pod: podWith({ sidecars: ["a"], ready: { main: true } }) });
    const { promise, log } = wait(cluster, { container: "a" });
    assert.equal((await promise).ownContainer, "a");
    assert.ok(log.entries.some((e) => e.msg === "proa runs in container a" && e.fields?.rule === "--container"));
  });

  test("a missing Pod is logged with the downward API fix and ends the wait after the bounded default", async () => {
    const { cluster } = await start({ pod: null });
    const { promise, log } = wait(cluster, {}, { ...fast, giveUpMs: 100 });
    await assert.rejects(
      promise,
      /^Error: giving up after 0.1 s: there is no Pod proa-e2e\/proa-demo; set POD_NAME with the downward API$/,
    );
    assert.match(
      log.entries.find((e) => e.level === "error")?.msg ?? "",
      /there is no Pod proa-e2e\/proa-demo: set POD_NAME and POD_NAMESPACE with the downward API: env: \[\{name: POD_NAME/,
    );
  });

  test("a Pod deleted during the wait ends it with an error that says so", async () => {
    const { api, cluster } = await start({ pod: notReady });
    afterRequest(api, 2, () => api.setPod(null));
    const { promise, log } = wait(cluster, { readyTimeoutMs: 5000 });
    await assert.rejects(
      promise,
      /^Error: Pod proa-e2e\/proa-demo was deleted while proa waited for its containers to be ready$/,
    );
    assert.ok(!log.entries.some((e) => /POD_NAME/.test(e.msg)), "a deleted Pod is not a configuration error");
  });

  test("a list naming another, ready Pod does not end the wait", async () => {
    const { api, cluster } = await start({ pod: notReady });
    const other = { ...ready, metadata: { ...ready.metadata, name: "someone-else", resourceVersion: "900" } };
    api.fail({
      on: "list",
      status: 200,
      body: { kind: "PodList", apiVersion: "v1", metadata: { resourceVersion: "1001" }, items: [other] },
    });
    await assert.rejects(wait(cluster, { readyTimeoutMs: 300 }).promise, /--ready-timeout \(0\.3 s\) passed/);
  });

  test("a missing Pod that appears not ready, and becomes ready only after the give-up time, is waited for", async () => {
    const { api, cluster } = await start({ pod: null });
    afterRequest(api, 2, () => {
      api.setPod(notReady);
      setTimeout(() => api.setPod(ready), 300);
    });
    const { promise } = wait(cluster, {}, { ...fast, giveUpMs: 100 });
    assert.equal((await promise).pod.metadata?.resourceVersion, "1002");
  });

  test("with --ready-timeout, a missing Pod ends the wait at the timeout with an error that says the Pod does not exist", async () => {
    const { cluster } = await start({ pod: null });
    const { promise } = wait(cluster, { readyTimeoutMs: 100 });
    await assert.rejects(
      promise,
      /^Error: --ready-timeout \(0.1 s\) passed: there is no Pod proa-e2e\/proa-demo: set POD_NAME and POD_NAMESPACE/,
    );
  });

  test("a missing Pod that appears in time is waited for", async () => {
    const { api, cluster } = await start({ pod: null });
    afterRequest(api, 2, () => api.setPod(ready));
    assert.equal((await wait(cluster, {}, { ...fast, giveUpMs: 1000 }).promise).pod.metadata?.resourceVersion, "1001");
  });

  test("with --ready-timeout set, a persistent 403 lasts until that timeout, not the default bound", async () => {
    const { api, cluster } = await start({ pod: ready });
    api.fail(...Array.from({ length: 100 }, () => ({ on: "list" as const, status: 403, body: FORBIDDEN })));
    await assert.rejects(
      wait(cluster, { readyTimeoutMs: 200 }, { ...fast, giveUpMs: 50 }).promise,
      /^Error: --ready-timeout \(0.2 s\) passed: Pod proa-e2e\/proa-demo was never read/,
    );
  });

  test("an abort rejects with the signal's reason, and the token never appears in the log", async () => {
    const { api, cluster } = await start({ pod: notReady });
    const stop = stopper();
    const reason = new Error("SIGTERM");
    const { promise, log } = wait(cluster, {}, fast, recordingLog(), stop.signal);
    await eventually(() => api.requests.length === 2);
    stop.abort(reason);
    await assert.rejects(promise, (error) => error === reason);
    assert.ok(!JSON.stringify(log.entries).includes(api.token));
  });
});

describe("the fake API server", () => {
  const fetchJson = (api: FakeApiServer, path: string, token = api.token) =>
    new Promise<{ status?: number; body: unknown }>((resolve, reject) => {
      const headers = { Authorization: `Bearer ${token}` };
      // A body that is not JSON rejects the request, where an async callback's throw left it pending.
      get({ host: api.host, port: api.port, path, ca: TEST_CA, headers }, (res) => {
        json(res).then((body) => resolve({ status: res.statusCode, body }), reject);
      }).on("error", reject);
    });

  test("answers a wrong token with the captured 401, never recording the token itself", async () => {
    const { api } = await start();
    assert.deepEqual(await fetchJson(api, "/api/v1/namespaces/proa-e2e/pods", "wrong"), {
      status: 401,
      body: UNAUTHORIZED,
    });
    assert.deepEqual(Object.keys(api.requests[0] ?? {}), ["method", "url", "authorized", "userAgent", "at"]);
    assert.ok(!JSON.stringify(api.requests).includes(api.token));
  });

  test("serves the Pod by name, and 404 for another name or path", async () => {
    const { api } = await start({ pod: ready });
    assert.deepEqual(await fetchJson(api, "/api/v1/namespaces/proa-e2e/pods/proa-demo"), {
      status: 200,
      body: api.pod(),
    });
    assert.equal((await fetchJson(api, "/api/v1/namespaces/proa-e2e/pods/other")).status, 404);
    assert.equal((await fetchJson(api, "/apis/batch/v1/jobs")).status, 404);
  });

  test("lists only the selected Pod, with the current resourceVersion", async () => {
    const { api } = await start({ pod: ready });
    const list = (name: string) =>
      fetchJson(api, `/api/v1/namespaces/proa-e2e/pods?fieldSelector=metadata.name%3D${name}`);
    assert.deepEqual(await list("proa-demo"), {
      status: 200,
      body: { kind: "PodList", apiVersion: "v1", metadata: { resourceVersion: "1001" }, items: [api.pod()] },
    });
    assert.deepEqual((await list("other")).body, {
      kind: "PodList",
      apiVersion: "v1",
      metadata: { resourceVersion: "1001" },
      items: [],
    });
  });
});
