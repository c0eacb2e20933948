// Each bounded wait clears its own timer once it has settled: one left behind holds proa's event loop (and its exit)
// for up to its timeout, which nothing else would show but a slower test suite.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import { afterEach, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { httpRequest } from "../http.ts";
import { waitUntilUrlsReady } from "../readyurl.ts";
import { shutDownSidecars } from "../shutdown.ts";
import { recordingLog } from "./helpers/shutdown-log.ts";

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

async function serve(status: number): Promise<string> {
  const server = createServer((_, res) => res.writeHead(status).end());
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// Only ref'ed timers are listed: the ones that keep the process alive. The test runner's own stay the same around a call.
const pendingTimers = () => process.getActiveResourcesInfo().filter((resource) => resource === "Timeout").length;

/** Starts `call`, checks that it armed a timer (or the comparison would prove nothing), and that none is left once it settled. */
async function assertLeavesNoTimer<T>(
  call: () => Promise<T>,
  whileRunning: () => void = () => {},
): Promise<PromiseSettledResult<T>> {
  const before = pendingTimers();
  const running = call();
  assert.ok(pendingTimers() > before, "the call armed no timer: this test would pass whatever it left");
  whileRunning();
  const [settled] = await Promise.allSettled([running]);
  assert.equal(pendingTimers(), before, "a timer is still pending after the call settled");
  return settled!;
}

// Far longer than any of these calls takes, so that a timer left armed shows rather than fires; short, so that a
// leaked one holds this file for seconds only.
const BOUND_MS = 5000;

describe("no timer is left pending", { timeout: 20_000 }, () => {
  test("by httpRequest once it has its answer", async () => {
    const url = new URL(`${await serve(200)}/`);
    const settled = await assertLeavesNoTimer(() =>
      httpRequest({ method: "GET", url, timeoutMs: BOUND_MS, userAgent: "proa/test" }),
    );
    assert.equal(settled.status === "fulfilled" && settled.value.status, 200);
  });

  test("by httpRequest once it has failed", async () => {
    const url = new URL(`http://127.0.0.1:${await closedPort()}/`);
    const settled = await assertLeavesNoTimer(() =>
      httpRequest({ method: "GET", url, timeoutMs: BOUND_MS, userAgent: "proa/test" }),
    );
    assert.equal(settled.status === "rejected" && settled.reason.phase, "connect");
  });

  test("by the ready-URL wait once every URL is ready", async () => {
    const url = new URL(`${await serve(200)}/ready`);
    const settled = await assertLeavesNoTimer(() =>
      waitUntilUrlsReady([url], BOUND_MS, "proa/test", recordingLog(), new AbortController().signal),
    );
    assert.equal(settled.status, "fulfilled");
  });

  test("by the ready-URL wait once it is aborted", async () => {
    const url = new URL(`${await serve(503)}/ready`);
    const stop = new AbortController();
    const settled = await assertLeavesNoTimer(
      () =>
        waitUntilUrlsReady([url], BOUND_MS, "proa/test", recordingLog(), stop.signal, {
          pollMs: 10,
          requestTimeoutMs: 500,
          reminderMs: BOUND_MS,
          retryAfterMaxMs: BOUND_MS,
        }),
      () => void sleep(50).then(() => stop.abort("SIGTERM")),
    );
    assert.equal(settled.status === "rejected" && settled.reason, "SIGTERM");
  });

  test("by the shutdown step once it has ended", async () => {
    const options = {
      httpGet: [],
      httpPost: [],
      kill: [],
      killAll: false,
      timeoutMs: BOUND_MS,
      requestTimeoutMs: 500,
      userAgent: "proa/test",
    };
    const settled = await assertLeavesNoTimer(() => shutDownSidecars(options, {}, recordingLog()));
    assert.equal(settled.status === "fulfilled" && settled.value.wait.outcome, "not watched");
  });
});
