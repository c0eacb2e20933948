// serverVersion, for --check's "could be native sidecars" line: GET /version with a run's own requests, against the
// fake API server over TLS; anything but a readable version is unknown, within the injected limit.
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { test } from "node:test";
import { loadCluster, serverVersion } from "../kube.ts";
import { startFakeApiServer } from "./fake-apiserver.ts";
import { recordingLog } from "./helpers/shutdown-log.ts";

test('a provider\'s version: major and the leading digits of minor ("29+"), and the request carried the token', async () => {
  const api = await startFakeApiServer({ version: { major: "1", minor: "29+", gitVersion: "v1.29.3-gke.1" } });
  const cluster = loadCluster(api.env(), "proa/test");
  try {
    assert.deepEqual(await serverVersion(cluster, recordingLog(), 2000), {
      major: 1,
      minor: 29,
      gitVersion: "v1.29.3-gke.1",
    });
    const request = api.requests.find((r) => r.url === "/version");
    assert.ok(request?.authorized, JSON.stringify(api.requests));
  } finally {
    cluster.agent.destroy();
    await api.close();
  }
});

test("unknown, never an error: a 404, or a body without numbers", async () => {
  for (const version of [undefined, { major: "", minor: "x" }]) {
    const api = await startFakeApiServer(version ? { version } : {});
    const cluster = loadCluster(api.env(), "proa/test");
    try {
      assert.equal(await serverVersion(cluster, recordingLog(), 2000), undefined);
      assert.ok(
        api.requests.some((r) => r.url === "/version"),
        "the request was made",
      );
    } finally {
      cluster.agent.destroy();
      await api.close();
    }
  }
});

test("unknown after the limit when the server accepts and never answers", async () => {
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => void sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const api = await startFakeApiServer();
  const cluster = loadCluster(
    { ...api.env(), KUBERNETES_SERVICE_PORT: String((silent.address() as { port: number }).port) },
    "proa/test",
  );
  try {
    const started = Date.now();
    assert.equal(await serverVersion(cluster, recordingLog(), 200), undefined);
    const took = Date.now() - started;
    assert.ok(took >= 150 && took < 2000, `took ${took} ms`);
  } finally {
    cluster.agent.destroy();
    for (const socket of sockets) socket.destroy();
    silent.close();
    await api.close();
  }
});

test("leaves no timer armed however it ends: a version, a 404, a body without numbers", async () => {
  // Every timer armed through the global kube.ts uses is kept and cleared at the end, so that one left armed fails
  // the test without keeping the test process alive; the limit is long, so that it is still armed when counted.
  const armed: NodeJS.Timeout[] = [];
  const realSetTimeout = globalThis.setTimeout;
  globalThis.setTimeout = ((...args: Parameters<typeof realSetTimeout>) =>
    armed[armed.push(realSetTimeout(...args)) - 1]) as typeof setTimeout;
  // Only referenced timers keep a process alive, and only they are counted.
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
  try {
    for (const version of [{ major: "1", minor: "33", gitVersion: "v1.33.1" }, undefined, { major: "", minor: "x" }]) {
      const api = await startFakeApiServer(version ? { version } : {});
      const cluster = loadCluster(api.env(), "proa/test");
      try {
        const before = timers();
        await serverVersion(cluster, recordingLog(), 60_000);
        assert.equal(timers() - before, 0, `timers still armed after ${JSON.stringify(version ?? "a 404")}`);
      } finally {
        cluster.agent.destroy();
        await api.close();
      }
    }
  } finally {
    globalThis.setTimeout = realSetTimeout;
    for (const timer of armed) clearTimeout(timer);
  }
});
