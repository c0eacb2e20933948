// The shutdown step's wait for the sidecars to exit, against the fake API server (test/fake-apiserver.ts): containers
// terminating one after another, the budget running out, and an API server that cannot be reached or goes silent.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { loadCluster, podFeed, type Cluster, type Pod, type PodFeed, type Timing } from "../kube.ts";
import { podExitWatch, shutDownSidecars, type ShutdownContext, type ShutdownOptions } from "../shutdown.ts";
import { podWith, startFakeApiServer, type FakeApiServer, type PodShape } from "./fake-apiserver.ts";
import { recordingLog } from "./helpers/shutdown-log.ts";

const options = (timeoutMs: number | undefined, overrides: Partial<ShutdownOptions> = {}): ShutdownOptions => ({
  httpGet: [],
  httpPost: [],
  kill: [],
  killAll: false,
  timeoutMs,
  requestTimeoutMs: 10_000,
  userAgent: "proa/test",
  ...overrides,
});
const watchTiming: Partial<Timing> = { backoffBaseMs: 20, backoffMaxMs: 50 };
/** The shutdown step's context as main builds it with the Pod read through the API: the Pod's one watch (started here
 * by the step itself, as the wait would have) sees the exits. */
const feeds: PodFeed[] = [];
const podContext = (cluster: Cluster, pod: Pod | null | undefined, watch = watchTiming): ShutdownContext => {
  const feed = podFeed(cluster, recordingLog(), watch);
  feeds.push(feed);
  return { sidecars: podExitWatch({ feed, ownContainer: "main" }), pod: pod ?? undefined };
};
const sidecars: PodShape = { sidecars: ["sidecar-1", "sidecar-2"], nativeSidecars: ["istio-proxy"], ready: true };

let server: FakeApiServer | undefined;
afterEach(async () => {
  for (const feed of feeds.splice(0)) await feed.close();
  await server?.close();
  server = undefined;
});

async function start(shape: PodShape): Promise<{ api: FakeApiServer; cluster: Cluster }> {
  server = await startFakeApiServer({ pod: podWith(shape) });
  return { api: server, cluster: loadCluster(server.env(), "proa/test") };
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

/** A SIGTERM that arrived at `at`, as proa's signal handler reports it. */
function sigtermAt(at: number): AbortSignal {
  const sigterm = new AbortController();
  sigterm.abort(at);
  return sigterm.signal;
}

/** The Pod as the API shows it once deleted, with a grace period of 30 s. */
function beingDeleted(pod: Pod): Pod {
  const deletionTimestamp = new Date(Date.now() + 30_000).toISOString();
  return { ...pod, metadata: { ...pod.metadata, deletionTimestamp, deletionGracePeriodSeconds: 30 } };
}

/** The Pod with another terminationGracePeriodSeconds (fractions let a test run in milliseconds). */
function withGrace(pod: Pod | null, seconds: number): Pod {
  return { ...pod, spec: { ...pod?.spec, terminationGracePeriodSeconds: seconds } };
}

const messages = (log: ReturnType<typeof recordingLog>, level: string) =>
  log.lines.filter((line) => line.level === level).map((line) => line.msg);

describe("waiting for the sidecars to exit", () => {
  test("waits until every regular sidecar has exited, logging each exit and who still runs, but not for native sidecars", async () => {
    const { api, cluster } = await start(sidecars);
    const log = recordingLog();
    const done = timed(() => shutDownSidecars(options(5000), podContext(cluster, api.pod()), log));
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
    assert.deepEqual(exits[0]?.fields, { exited: { "sidecar-1": 0 }, stillRunning: ["sidecar-2"] });
    assert.deepEqual(messages(log, "warn"), []);
  });

  test("when the budget runs out it logs which sidecars are still running and returns", async () => {
    const { api, cluster } = await start(sidecars);
    const log = recordingLog();
    const done = timed(() => shutDownSidecars(options(400), podContext(cluster, api.pod()), log));
    await sleep(100);
    api.setPod(podWith({ ...sidecars, terminated: { "sidecar-2": { exitCode: 0 } } }));
    const elapsed = await done;
    assert.ok(elapsed >= 390 && elapsed < 900, `took ${elapsed} ms`);
    assert.deepEqual(messages(log, "warn"), [
      "the sidecars did not exit within 400 ms; still running: sidecar-1; proa exits anyway",
    ]);
  });

  test("after SIGTERM the budget counts from the signal and ends a second before the kubelet's kill", async () => {
    const { api, cluster } = await start(sidecars);
    const log = recordingLog();
    api.setPod(withGrace(api.pod(), 2));
    const context = { ...podContext(cluster, api.pod()), sigterm: sigtermAt(Date.now() - 600) };
    const elapsed = await timed(() => shutDownSidecars(options(undefined), context, log));
    assert.ok(
      elapsed >= 350 && elapsed < 700,
      `took ${elapsed} ms: 2000 ms grace period - 600 ms since SIGTERM - 1000 ms margin`,
    );
    assert.match(
      messages(log, "warn")[0] ?? "",
      /^the sidecars did not exit within \d+ ms; still running: sidecar-1, sidecar-2/,
    );
  });

  test("a sidecar the kubelet restarts after it exited counts as exited", async () => {
    const { api, cluster } = await start({ ...sidecars, restartPolicy: "OnFailure" });
    const log = recordingLog();
    const done = shutDownSidecars(options(5000), { ...podContext(cluster, api.pod()), status: 0 }, log);
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
    const { api, cluster } = await start({
      ...sidecars,
      terminated: { "sidecar-1": { exitCode: 0 }, "sidecar-2": { exitCode: 0 } },
    });
    for (const pod of [api.pod() ?? undefined, podWith({})]) {
      const elapsed = await timed(() => shutDownSidecars(options(5000), podContext(cluster, pod), recordingLog()));
      assert.ok(elapsed < 100, `took ${elapsed} ms`);
    }
    assert.deepEqual(api.requests, []);
  });

  test("a Pod that disappears from the API ends the wait", async () => {
    const { api, cluster } = await start(sidecars);
    const log = recordingLog();
    const done = timed(() => shutDownSidecars(options(5000), podContext(cluster, api.pod()), log));
    await sleep(100);
    api.setPod(null);
    assert.ok((await done) < 1000);
    assert.ok(log.lines.some((line) => line.msg.startsWith("the Pod is gone")));
  });
});

describe("the grace period is a hard limit, whatever the flags", () => {
  test("SIGTERM while the program ran, with --shutdown-timeout far longer than the grace period: the step ends a second before the kubelet's kill", async () => {
    const { api, cluster } = await start(sidecars);
    const log = recordingLog();
    api.setPod(withGrace(api.pod(), 1.5));
    const context = { ...podContext(cluster, api.pod()), sigterm: sigtermAt(Date.now() - 100) };
    const elapsed = await timed(() => shutDownSidecars(options(20_000), context, log));
    assert.ok(elapsed < 1000, `took ${elapsed} ms: 1500 ms grace period - 100 ms since SIGTERM - 1000 ms margin`);
    assert.match(
      messages(log, "warn").at(-1) ?? "",
      /^the sidecars did not exit within \d+ ms; still running: sidecar-1, sidecar-2/,
    );
  });

  test("SIGTERM during the step brings its end forward, cutting a request that hangs", async () => {
    const { api, cluster } = await start(sidecars);
    const hanging = createServer(() => {}).listen(0, "127.0.0.1");
    await new Promise((resolve) => hanging.once("listening", resolve));
    const url = new URL(`http://127.0.0.1:${(hanging.address() as AddressInfo).port}/quitquitquit`);
    const sigterm = new AbortController();
    const log = recordingLog();
    api.setPod(withGrace(api.pod(), 1.5));
    const context = { ...podContext(cluster, api.pod()), sigterm: sigterm.signal };
    const done = timed(() =>
      shutDownSidecars(options(20_000, { httpPost: [url] }), context, log, { minRequestMs: 100 }),
    );
    await sleep(100);
    sigterm.abort(Date.now());
    const elapsed = await done;
    hanging.closeAllConnections();
    hanging.close();
    assert.ok(
      elapsed >= 550 && elapsed < 1200,
      `took ${elapsed} ms: 100 ms, then SIGTERM + 1500 ms grace period - 1000 ms margin`,
    );
    assert.ok(log.lines.some((line) => /^received SIGTERM: the shutdown step now ends in \d+ ms/.test(line.msg)));
    assert.match(
      messages(log, "warn").join("\n"),
      /sidecar shutdown request failed: the shutdown budget ran out after \d+ ms, in the headers phase/,
    );
  });

  test("a deletion that first appears in the step's own watch shortens the deadline to its grace period", async () => {
    const { api, cluster } = await start(sidecars);
    const log = recordingLog();
    const context = { ...podContext(cluster, api.pod()), sigterm: sigtermAt(Date.now()) };
    const done = timed(() => shutDownSidecars(options(undefined), context, log));
    await sleep(100);
    const deleting = podWith(sidecars);
    deleting.metadata = {
      ...deleting.metadata,
      deletionTimestamp: new Date(Date.now() + 1500).toISOString(),
      deletionGracePeriodSeconds: 1.5,
    };
    api.setPod(deleting);
    const elapsed = await done;
    assert.ok(
      elapsed < 1200,
      `took ${elapsed} ms: SIGTERM + 1500 ms deletion grace period - 1000 ms margin, not the spec's 30 s`,
    );
    assert.ok(
      log.lines.some((line) =>
        /^the Pod is being deleted, with a grace period of 1.5 s: the shutdown step now ends in/.test(line.msg),
      ),
    );
  });
});

describe("the exits, said once and truthfully", () => {
  test("two sidecars seen exiting in the same Pod update make one line that says all have exited", async () => {
    const { api, cluster } = await start(sidecars);
    const log = recordingLog();
    const done = shutDownSidecars(options(5000), podContext(cluster, api.pod()), log);
    await sleep(100);
    api.setPod(podWith({ ...sidecars, terminated: { "sidecar-1": { exitCode: 0 }, "sidecar-2": { exitCode: 143 } } }));
    const report = await done;
    const exits = log.lines.filter((line) => line.msg.includes(" exited"));
    assert.deepEqual(
      exits.map((line) => line.msg),
      ["sidecar-1 exited with 0, sidecar-2 exited with 143; all sidecars have exited"],
    );
    assert.deepEqual(exits[0]?.fields, { exited: { "sidecar-1": 0, "sidecar-2": 143 }, stillRunning: [] });
    assert.deepEqual(
      report.exits.map(({ name, exitCode }) => [name, exitCode]),
      [
        ["sidecar-1", 0],
        ["sidecar-2", 143],
      ],
    );
    assert.deepEqual(report.wait, { outcome: "all exited", stillRunning: [] });
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
    const context = podContext({ ...cluster, port }, api.pod());
    const elapsed = await timed(() => shutDownSidecars(options(300), context, log));
    assert.ok(elapsed < 800, `took ${elapsed} ms`);
    assert.equal(
      messages(log, "warn").at(-1),
      "the sidecars did not exit within 300 ms; still running: sidecar-1, sidecar-2; proa exits anyway",
    );
  });

  test("an API server that accepts the connection and then goes silent, with a shutdown request that hangs too", async () => {
    const { api, cluster } = await start(sidecars);
    api.fail({ on: "list", chunks: [], end: "stall" });
    const hanging = createServer(() => {}).listen(0, "127.0.0.1");
    await new Promise((resolve) => hanging.once("listening", resolve));
    const url = new URL(`http://127.0.0.1:${(hanging.address() as AddressInfo).port}/quitquitquit`);
    const log = recordingLog();
    const context = podContext(cluster, api.pod());
    const elapsed = await timed(() =>
      shutDownSidecars(options(300, { httpPost: [url] }), context, log, { minRequestMs: 200 }),
    );
    hanging.closeAllConnections();
    hanging.close();
    assert.ok(elapsed < 800, `took ${elapsed} ms`);
    const [request, wait, ...more] = messages(log, "warn").sort();
    assert.match(
      request ?? "",
      /^sidecar shutdown request failed: no answer within \d+ ms: timed out waiting for the response headers \(the rest of the shutdown budget\)$/,
    );
    assert.equal(
      wait,
      "the sidecars did not exit within 300 ms; still running: sidecar-1, sidecar-2; proa exits anyway",
    );
    assert.deepEqual(more, []);
  });

  test("a watch that fails for good (403 past its give-up time) is logged and ends the wait", async () => {
    const { api, cluster } = await start(sidecars);
    api.fail(...Array.from({ length: 20 }, () => ({ status: 403 })));
    const log = recordingLog();
    const context = podContext(cluster, api.pod(), { ...watchTiming, giveUpMs: 100 });
    const elapsed = await timed(() => shutDownSidecars(options(5000), context, log));
    assert.ok(elapsed < 1000, `took ${elapsed} ms`);
    const stopped = log.lines.find((line) => line.msg.startsWith("stopped waiting"));
    assert.deepEqual(stopped?.fields.stillRunning, ["sidecar-1", "sidecar-2"]);
  });
});

/** A sidecar's shutdown endpoint on loopback that answers 200 and counts what it was sent. */
async function shutdownEndpoint() {
  const received: string[] = [];
  const endpoint = createServer((request, response) => {
    received.push(`${request.method} ${request.url}`);
    response.end("OK");
  }).listen(0, "127.0.0.1");
  await new Promise((resolve) => endpoint.once("listening", resolve));
  return {
    url: new URL(`http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/quitquitquit`),
    received,
    close: () => new Promise((resolve) => endpoint.closeAllConnections() ?? endpoint.close(resolve)),
  };
}

describe("whether proa's container runs again decides the step", () => {
  test("SIGTERM on a Pod whose deletion the watch delivered: no read of the Pod, the requests go out, and no wait for exits the kubelet hides", async () => {
    const { api, cluster } = await start(sidecars);
    const endpoint = await shutdownEndpoint();
    try {
      const deleting = beingDeleted(podWith(sidecars)); // the kubelet hides the statuses: the sidecars look running
      api.setPod(deleting);
      const log = recordingLog();
      const context = { ...podContext(cluster, api.pod()), sigterm: sigtermAt(Date.now()), status: 0 };
      let report: Awaited<ReturnType<typeof shutDownSidecars>> | undefined;
      const elapsed = await timed(
        async () => (report = await shutDownSidecars(options(undefined, { httpPost: [endpoint.url] }), context, log)),
      );
      assert.ok(elapsed < 1000, `took ${elapsed} ms: not the 29 s left of the grace period`);
      assert.deepEqual(endpoint.received, ["POST /quitquitquit"]);
      assert.deepEqual(api.requests, [], "no list, no watch: the step went by the watch's latest Pod");
      assert.equal(report?.plan.reason, "the Pod is being deleted: the kubelet stops the sidecars");
      assert.deepEqual(report?.wait, { outcome: "not watched", stillRunning: [] });
      assert.deepEqual(messages(log, "warn"), []);
    } finally {
      await endpoint.close();
    }
  });

  test("after SIGTERM nothing waits on a read of the Pod: with an API server that never answers, the request goes out at once", async () => {
    const { api, cluster } = await start(sidecars);
    api.fail({ hang: true }, { hang: true }, { hang: true });
    const endpoint = await shutdownEndpoint();
    try {
      const log = recordingLog();
      const context = { ...podContext(cluster, api.pod()), sigterm: sigtermAt(Date.now()), status: 0 };
      const began = Date.now();
      const step = shutDownSidecars(options(400, { httpPost: [endpoint.url] }), context, log);
      while (endpoint.received.length === 0 && Date.now() - began < 1000) await sleep(5);
      const sentAfterMs = Date.now() - began;
      await step;
      assert.deepEqual(endpoint.received, ["POST /quitquitquit"]);
      assert.ok(sentAfterMs < 200, `the request went out ${sentAfterMs} ms after the step began`);
    } finally {
      await endpoint.close();
    }
  });

  test("a deletion the watch delivers after SIGTERM stops the retry of a refused shutdown request", async () => {
    const { api, cluster } = await start(sidecars);
    const closed = createServer().listen(0, "127.0.0.1");
    await new Promise((resolve) => closed.once("listening", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const log = recordingLog();
    const context = { ...podContext(cluster, api.pod()), sigterm: sigtermAt(Date.now()), status: 0 };
    const refused = new URL(`http://127.0.0.1:${port}/quitquitquit`);
    // Retries 300 ms apart: the deletion, delivered at 100 ms, must end them at the second refusal.
    const step = shutDownSidecars(options(5000, { httpPost: [refused] }), context, log, {
      refusedRetryDelaysMs: [300, 300, 300, 300, 300, 300],
    });
    await sleep(100);
    api.setPod(beingDeleted(podWith(sidecars)));
    const report = await step;
    assert.equal(report.requests[0]?.attempts, 2, "the retry after the deletion was the last");
    assert.match(report.requests[0]?.error ?? "", /the Pod is being deleted/);
    assert.equal(report.plan.reason, "the Pod is being deleted: the kubelet stops the sidecars");
  });

  test("a deletion first seen in the step's own watch ends the wait at once, not at the end of its grace period", async () => {
    const { api, cluster } = await start(sidecars);
    const log = recordingLog();
    const done = timed(() =>
      shutDownSidecars(options(undefined), { ...podContext(cluster, api.pod()), status: 0 }, log),
    );
    await sleep(100);
    const deleting = podWith(sidecars);
    deleting.metadata = {
      ...deleting.metadata,
      deletionTimestamp: new Date(Date.now() + 30_000).toISOString(),
      deletionGracePeriodSeconds: 30,
    };
    api.setPod(deleting);
    const elapsed = await done;
    assert.ok(elapsed < 1000, `took ${elapsed} ms`);
    assert.ok(
      log.lines.some(
        ({ msg }) =>
          msg ===
          "the Pod is being deleted: the kubelet stops the sidecars: proa stops waiting for their exits, which it cannot see",
      ),
    );
    assert.deepEqual(messages(log, "warn"), []);
  });

  test("OnFailure and a failed program: no request, no wait, and the plan says the sidecars are left running for the restart", async () => {
    const { api, cluster } = await start({ ...sidecars, restartPolicy: "OnFailure" });
    const endpoint = await shutdownEndpoint();
    try {
      const log = recordingLog();
      const context = { ...podContext(cluster, api.pod()), status: 3 };
      let report: Awaited<ReturnType<typeof shutDownSidecars>> | undefined;
      const elapsed = await timed(
        async () => (report = await shutDownSidecars(options(5000, { httpPost: [endpoint.url] }), context, log)),
      );
      assert.ok(elapsed < 200, `took ${elapsed} ms`);
      assert.deepEqual(endpoint.received, []);
      assert.deepEqual(api.requests, []);
      assert.deepEqual(report?.plan, {
        shutDown: false,
        waitForExit: false,
        reason: "sidecars left running for the restart (restartPolicy OnFailure)",
      });
      assert.ok(
        log.lines.some(({ msg }) =>
          msg.startsWith(
            "sidecars left running for the restart (restartPolicy OnFailure): proa sends no shutdown request",
          ),
        ),
      );
    } finally {
      await endpoint.close();
    }
  });

  test("a Pod read without restartPolicy is taken as the API server defaults it, Always: after a failure, no request and no wait", async () => {
    const { api, cluster } = await start(sidecars);
    const endpoint = await shutdownEndpoint();
    try {
      const pod = api.pod()!;
      const withoutPolicy: Pod = { ...pod, spec: { ...pod.spec, restartPolicy: undefined } };
      const report = await shutDownSidecars(
        options(5000, { httpPost: [endpoint.url] }),
        { ...podContext(cluster, withoutPolicy), status: 1 },
        recordingLog(),
      );
      assert.deepEqual(endpoint.received, []);
      assert.deepEqual(report.plan, {
        shutDown: false,
        waitForExit: false,
        reason: "sidecars left running for the restart (restartPolicy Always)",
      });
    } finally {
      await endpoint.close();
    }
  });

  test("OnFailure and a program that succeeded: shut down and wait for the exits, as under Never", async () => {
    const { api, cluster } = await start({ ...sidecars, restartPolicy: "OnFailure" });
    const endpoint = await shutdownEndpoint();
    try {
      const log = recordingLog();
      const done = shutDownSidecars(
        options(5000, { httpPost: [endpoint.url] }),
        { ...podContext(cluster, api.pod()), status: 0 },
        log,
      );
      await sleep(100);
      api.setPod(
        podWith({
          ...sidecars,
          restartPolicy: "OnFailure",
          terminated: { "sidecar-1": { exitCode: 0 }, "sidecar-2": { exitCode: 0 } },
        }),
      );
      const report = await done;
      assert.deepEqual(endpoint.received, ["POST /quitquitquit"]);
      assert.equal(report.plan.waitForExit, true);
      assert.deepEqual(report.wait, { outcome: "all exited", stillRunning: [] });
    } finally {
      await endpoint.close();
    }
  });
});
