// --ready-url honours a 429's or 503's Retry-After (the API client also a 500's or 504's: kube-watch.test.ts): a
// real loopback server counts the requests it gets while it asks proa to wait.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type OutgoingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, test } from "node:test";
import { ReadyTimeoutError } from "../kube.ts";
import { waitUntilUrlsReady, type ReadyUrlTiming } from "../readyurl.ts";
import { recordingLog } from "./helpers/shutdown-log.ts";

const fast: ReadyUrlTiming = { pollMs: 20, requestTimeoutMs: 500, reminderMs: 60_000, retryAfterMaxMs: 30_000 };
const safetyNet = () => AbortSignal.timeout(8000);
const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

/** A ready URL that answers `status` with `headers` to its first `refusals` requests, then 200; it records when each
 * request came. */
async function sidecar(
  status: number,
  headers: OutgoingHttpHeaders | (() => OutgoingHttpHeaders),
  refusals = Infinity,
) {
  const requests: number[] = [];
  const server = createServer((_req, res) => {
    requests.push(Date.now());
    if (requests.length > refusals) return res.writeHead(200).end();
    res.writeHead(status, typeof headers === "function" ? headers() : headers).end("slow down");
  });
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/ready`), requests };
}

const gaps = (times: number[]) => times.slice(1).map((time, i) => time - times[i]!);

describe("--ready-url and Retry-After", () => {
  for (const status of [429, 503]) {
    test(`HTTP ${status} with Retry-After: 1 is asked again only a second later, not every poll`, async () => {
      const { url, requests } = await sidecar(status, { "retry-after": "1" }, 2);
      await waitUntilUrlsReady([url], 8000, "proa/test", recordingLog(), safetyNet(), fast);
      assert.equal(requests.length, 3, "two refusals, then the 200");
      for (const gap of gaps(requests))
        assert.ok(gap >= 950, `asked again after ${gap} ms, not the 1000 ms the server asked for`);
    });
  }

  test("an HTTP date is honoured too", async () => {
    // Whole seconds: the date is rounded down, so the wait is between 1 and 2 s.
    const { url, requests } = await sidecar(
      429,
      () => ({ "retry-after": new Date(Date.now() + 2000).toUTCString() }),
      1,
    );
    await waitUntilUrlsReady([url], 8000, "proa/test", recordingLog(), safetyNet(), fast);
    assert.equal(requests.length, 2);
    assert.ok(gaps(requests)[0]! >= 900, `asked again after ${gaps(requests)[0]} ms`);
  });

  test("capped by retryAfterMaxMs, as the API client caps it", async () => {
    const { url, requests } = await sidecar(503, { "retry-after": "3600" }, 1);
    await waitUntilUrlsReady([url], 8000, "proa/test", recordingLog(), safetyNet(), { ...fast, retryAfterMaxMs: 300 });
    assert.equal(requests.length, 2);
    assert.ok(
      gaps(requests)[0]! < 2000,
      `asked again after ${gaps(requests)[0]} ms: an hour's Retry-After was not capped`,
    );
  });

  test("never past --ready-timeout: a long Retry-After still ends the wait at the timeout", async () => {
    const { url, requests } = await sidecar(429, { "retry-after": "20" });
    const started = Date.now();
    await assert.rejects(
      waitUntilUrlsReady([url], 500, "proa/test", recordingLog(), safetyNet(), fast),
      ReadyTimeoutError,
    );
    assert.ok(Date.now() - started < 2000, `the wait ended ${Date.now() - started} ms after it began`);
    assert.equal(requests.length, 1);
  });

  test("Retry-After: 0 keeps the poll interval: no busy loop", async () => {
    const { url, requests } = await sidecar(429, { "retry-after": "0" });
    await assert.rejects(
      waitUntilUrlsReady([url], 500, "proa/test", recordingLog(), safetyNet(), fast),
      ReadyTimeoutError,
    );
    assert.ok(
      requests.length <= 500 / fast.pollMs + 2,
      `${requests.length} requests in 500 ms at one per ${fast.pollMs} ms`,
    );
    assert.ok(requests.length >= 5, `${requests.length} requests: the poll went on`);
  });

  test("other statuses' Retry-After is no advice: a 500 is asked again at the next poll", async () => {
    const { url, requests } = await sidecar(500, { "retry-after": "5" }, 3);
    await waitUntilUrlsReady([url], 8000, "proa/test", recordingLog(), safetyNet(), fast);
    assert.equal(requests.length, 4);
    assert.ok(requests.at(-1)! - requests[0]! < 2000, "the server's Retry-After was followed for a 500");
  });
});
