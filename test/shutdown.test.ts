// The shutdown step's HTTP requests against real local servers (and scripted ones that send exactly the bytes a test
// chooses), and its decisions: the deadline, which processes --kill matches, the start-time check before a signal.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import {
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { Pod } from "../kube.ts";
import {
  containerCgroupNames,
  gracePeriodMs,
  inKillScope,
  killScope,
  type KillScope,
  MAX_ARGV0_BYTES,
  podExitWatch,
  podUidOf,
  readArgv0,
  readProcesses,
  selectProcesses,
  shutDownSidecars,
  shutdownDeadline,
  goneForGood,
  shutdownPlan,
  sidecarKinds,
  urlContainer,
  type SidecarKinds,
  signalTargets,
  type OwnProcesses,
  type ProcessInfo,
  type ShutdownOptions,
} from "../shutdown.ts";
import { recordRun, terminationMessage } from "../summary.ts";
import { sendEndless500 } from "./helpers/endless-body.ts";
import { recordingLog } from "./helpers/shutdown-log.ts";
import { podWith } from "./fake-apiserver.ts";
import { KUBELET_VERSIONS, kubeletPod, withRestartPolicy } from "./fixtures/pods.ts";

type Urls = { httpGet?: string[]; httpPost?: string[] };
const options = ({
  httpGet = [],
  httpPost = [],
  ...overrides
}: Partial<Omit<ShutdownOptions, keyof Urls>> & Urls): ShutdownOptions => ({
  httpGet: httpGet.map((url) => new URL(url)),
  httpPost: httpPost.map((url) => new URL(url)),
  kill: [],
  killAll: false,
  requestTimeoutMs: 2000,
  userAgent: "proa/1.2.3",
  ...overrides,
});
const fast = { refusedRetryDelaysMs: [10, 20, 30] };

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
}

/**
 * A real HTTP server on 127.0.0.1 that records each request and answers with `handle` (which may never answer);
 * `late` makes it start listening on that port only after a while, like a sidecar that is restarting.
 */
async function serve(
  handle: (request: IncomingMessage, response: ServerResponse) => void,
  late?: { port: number; afterMs: number },
) {
  const received: Received[] = [];
  const server = createServer((request, response) => {
    received.push({ method: request.method ?? "", url: request.url ?? "", headers: request.headers });
    handle(request, response);
  });
  const lateTimer = late ? setTimeout(() => server.listen(late.port, "127.0.0.1"), late.afterMs) : undefined;
  if (!late) await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = late?.port ?? (server.address() as AddressInfo).port;
  return {
    url: (path = "/") => `http://127.0.0.1:${port}${path}`,
    received,
    close: () => {
      clearTimeout(lateTimer); // a test that failed early must not leave a server to start listening later
      server.closeAllConnections();
      return new Promise((resolve) => (server.listening ? server.close(resolve) : resolve(undefined)));
    },
  };
}

const answer =
  (status: number, body = "") =>
  (_request: IncomingMessage, response: ServerResponse) =>
    response.writeHead(status).end(body);

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

describe("HTTP shutdown requests", () => {
  test("every --shutdown-http-get URL gets a GET and every --shutdown-http-post URL a POST, with proa's User-Agent", async () => {
    const server = await serve(answer(200, "OK"));
    const log = recordingLog();
    await shutDownSidecars(
      options({ httpGet: [server.url("/get")], httpPost: [server.url("/quitquitquit")] }),
      {},
      log,
    );
    await server.close();
    const seen = server.received.map(({ method, url, headers }) => `${method} ${url} ${headers["user-agent"]}`).sort();
    assert.deepEqual(seen, ["GET /get proa/1.2.3", "POST /quitquitquit proa/1.2.3"]);
    const answered = log.lines.filter((line) => line.msg === "sidecar shutdown request answered 200");
    assert.deepEqual(answered.map((line) => line.fields.url).sort(), [server.url("/get"), server.url("/quitquitquit")]);
    assert.deepEqual(
      log.lines.filter((line) => line.level !== "info" && line.level !== "debug"),
      [],
    );
  });

  test("ten URLs each answering after 300 ms take about 300 ms in all, not 3 s: the requests go out at once", async () => {
    const server = await serve((_request, response) => void setTimeout(() => response.end("OK"), 300));
    const urls = Array.from({ length: 10 }, (_, i) => server.url(`/quit/${i}`));
    const elapsed = await timed(() => shutDownSidecars(options({ httpPost: urls }), {}, recordingLog()));
    await server.close();
    assert.equal(server.received.length, 10);
    assert.ok(elapsed < 900, `took ${elapsed} ms`);
  });

  test("a server that never answers is given up after --shutdown-request-timeout, and the step moves on", async () => {
    const server = await serve(() => {});
    const log = recordingLog();
    const elapsed = await timed(() =>
      shutDownSidecars(options({ httpGet: [server.url()], requestTimeoutMs: 200 }), {}, log),
    );
    await server.close();
    assert.ok(elapsed >= 190 && elapsed < 700, `took ${elapsed} ms`);
    assert.deepEqual(
      log.lines.filter((line) => line.level === "warn").map((line) => line.msg),
      ["sidecar shutdown request failed: no answer within 200 ms: timed out waiting for the response headers"],
    );
  });

  test("the shutdown budget cuts a request short when it is shorter than the request timeout", async () => {
    const server = await serve(() => {});
    const log = recordingLog();
    const elapsed = await timed(() =>
      shutDownSidecars(options({ httpPost: [server.url()], requestTimeoutMs: 10_000, timeoutMs: 200 }), {}, log, {
        minRequestMs: 100,
      }),
    );
    await server.close();
    assert.ok(elapsed < 700, `took ${elapsed} ms`);
    assert.match(
      log.lines.find((line) => line.level === "warn")?.msg ?? "",
      /no answer within (19\d|200) ms: timed out waiting for the response headers \(the rest of the shutdown budget\)$/,
    );
  });

  test("a refused connection is retried a few times with backoff, then logged, and is not fatal", async () => {
    const url = `http://127.0.0.1:${await closedPort()}/quitquitquit`;
    const log = recordingLog();
    await shutDownSidecars(options({ httpPost: [url] }), {}, log, fast);
    assert.equal(log.lines.filter((line) => line.msg.includes("retrying")).length, 3);
    const failed = log.lines.filter((line) => line.level === "warn");
    assert.equal(failed.length, 1);
    assert.match(failed[0]?.msg ?? "", /connection refused/);
    assert.deepEqual(failed[0]?.fields, { method: "POST", url, attempts: 4 });
  });

  test("on a Pod being deleted a refused connection is not retried: the sidecar exited on the kubelet's SIGTERM, and nothing restarts it", async () => {
    const url = `http://127.0.0.1:${await closedPort()}/quitquitquit`;
    const log = recordingLog();
    const pod: Pod = {
      metadata: { deletionTimestamp: new Date(Date.now() + 30_000).toISOString(), deletionGracePeriodSeconds: 30 },
      spec: { restartPolicy: "Never" },
    };
    let report: Awaited<ReturnType<typeof shutDownSidecars>> | undefined;
    const elapsed = await timed(
      async () =>
        (report = await shutDownSidecars(options({ httpPost: [url] }), { pod, status: 0 }, log, {
          refusedRetryDelaysMs: [500],
        })),
    );
    assert.ok(elapsed < 400, `took ${elapsed} ms: the refused connection was retried`);
    assert.deepEqual(
      log.lines.filter((line) => line.msg.includes("retrying")),
      [],
    );
    assert.deepEqual(
      log.lines.filter((line) => line.level === "warn"),
      [],
      "the expected outcome on a deleted Pod is no warning",
    );
    assert.equal(report?.requests[0]?.attempts, 1);
    assert.match(
      report?.requests[0]?.error ?? "",
      /^connection refused \(the Pod is being deleted: the sidecar has exited on the kubelet's SIGTERM\)$/,
    );
    // Whole in the termination message, which quotes at most 100 characters of a request's error.
    const message = terminationMessage(recordRun("my-job", "pod").finish(["sidecar"], report!, 0));
    assert.ok(message.includes(`POST ${url}: ${report?.requests[0]?.error} in `), message);
  });

  test("a sidecar that starts listening a moment later (restarting) still gets the request", async () => {
    const server = await serve(answer(200), { port: await closedPort(), afterMs: 100 });
    const log = recordingLog();
    await shutDownSidecars(options({ httpPost: [server.url()] }), {}, log, {
      refusedRetryDelaysMs: [40, 40, 40, 40, 40, 40],
    });
    await server.close();
    assert.equal(server.received.length, 1);
    assert.ok(log.lines.some((line) => line.msg.includes("retrying")));
    assert.ok(log.lines.some((line) => line.msg === "sidecar shutdown request answered 200"));
  });

  test("a 500 answer is logged with its status and the start of its body (300 characters), and is not retried", async () => {
    const server = await serve(answer(500, `upstream connect error ${"x".repeat(1000)}`));
    const log = recordingLog();
    await shutDownSidecars(options({ httpGet: [server.url("/shutdown")] }), {}, log, fast);
    await server.close();
    assert.equal(server.received.length, 1);
    const [warning, ...more] = log.lines.filter((line) => line.level === "warn");
    assert.equal(more.length, 0);
    assert.equal(warning?.msg, "sidecar shutdown request answered 500");
    assert.equal(warning?.fields.status, 500);
    assert.equal(warning?.fields.body, `upstream connect error ${"x".repeat(300 - 23)}… (723 more characters)`);
  });

  test("a 405 answer to a GET suggests --shutdown-http-post (Envoy's /quitquitquit); a 405 to a POST does not", async () => {
    const server = await serve(answer(405, "method not allowed"));
    const log = recordingLog();
    await shutDownSidecars(
      options({ httpGet: [server.url("/quitquitquit")], httpPost: [server.url("/other")] }),
      {},
      log,
    );
    await server.close();
    const warnings = log.lines.filter((line) => line.level === "warn");
    const get = warnings.find((line) => line.fields.method === "GET");
    const post = warnings.find((line) => line.fields.method === "POST");
    assert.match(get?.msg ?? "", /answered 405; .*use --shutdown-http-post/);
    assert.equal(post?.msg, "sidecar shutdown request answered 405");
  });

  test("credentials in a URL are sent as Basic authentication (percent-decoded, a stray % kept as is) and never logged", async () => {
    const server = await serve(answer(200));
    const log = recordingLog();
    const url = server.url("/quit").replace("http://", "http://admin:s%40cret@");
    const stray = server.url("/quit").replace("http://", "http://admin:100%cret@");
    await shutDownSidecars(options({ httpPost: [url, stray] }), {}, log);
    await server.close();
    const sent = server.received
      .map(({ headers }) => Buffer.from(headers.authorization?.replace("Basic ", "") ?? "", "base64").toString())
      .sort();
    assert.deepEqual(sent, ["admin:100%cret", "admin:s@cret"]);
    const logged = JSON.stringify(log.lines);
    assert.ok(!logged.includes("cret") && !logged.includes("admin"), logged);
    assert.ok(log.lines.some((line) => line.fields.url === server.url("/quit")));
  });
});

describe("a shutdown request to a sidecar the Pod shows gone for good", () => {
  // The 1.33 capture: the regular sidecar (readinessProbe on 8080) SIGKILLed mid-run under restartPolicy Never, on the
  // port of a server of the test's own.
  const onPort = (pod: Pod, port: number): Pod => {
    const copy = structuredClone(pod);
    const sidecar = copy.spec?.containers?.find((c) => c.name === "sidecar") as unknown as {
      readinessProbe: { httpGet: { port: number } };
    };
    sidecar.readinessProbe.httpGet.port = port;
    return copy;
  };

  test("is not sent, and the log and the record say why", async () => {
    const server = await serve(answer(200));
    const port = Number(new URL(server.url()).port);
    const log = recordingLog();
    const pod = onPort(kubeletPod("1.33", "regular-sidecar-terminated-mid-run"), port);
    const report = await shutDownSidecars(options({ httpPost: [server.url("/shutdown")] }), { pod, status: 0 }, log);
    await server.close();
    assert.deepEqual(server.received, []);
    assert.equal(report.requests[0]?.attempts, 0);
    assert.equal(
      report.requests[0]?.error,
      "not sent: sidecar exited 137 and will not be restarted (restartPolicy Never)",
    );
    assert.ok(
      log.lines.some(
        ({ msg }) =>
          msg ===
          "sidecar shutdown request not sent: sidecar exited 137 and will not be restarted (restartPolicy Never)",
      ),
      JSON.stringify(log.lines),
    );
    const message = terminationMessage(recordRun("program", "pod").finish(["sidecar"], report, 0));
    assert.match(message, /^ {2}POST http:\/\/127\.0\.0\.1:\d+\/shutdown: not sent: sidecar exited 137/m, message);
  });

  test("is not retried once the wait for exit shows that sidecar terminated, though the Pod showed it running when the step began", async () => {
    const port = await closedPort();
    const log = recordingLog();
    const running = onPort(kubeletPod("1.33", "regular-before-delete"), port);
    const dead = onPort(kubeletPod("1.33", "regular-sidecar-terminated-mid-run"), port);
    // As the Pod watch does: the kubelet's update arrives a few ms into the step.
    const sidecars = {
      async waitForExit(_until: AbortSignal, seen: (pod: Pod) => void) {
        await sleep(5);
        seen(dead);
        return {
          outcome: "all exited" as const,
          stillRunning: [],
          exits: [{ name: "sidecar", exitCode: 137, afterMs: 5 }],
        };
      },
    };
    const report = await shutDownSidecars(
      options({ httpPost: [`http://localhost:${port}/shutdown`] }),
      { pod: running, status: 0, sidecars },
      log,
      { refusedRetryDelaysMs: [50, 50, 50, 50, 50] },
    );
    const [request] = report.requests;
    assert.ok((request?.attempts ?? 0) <= 2, `retried ${request?.attempts} times: ${JSON.stringify(request)}`);
    assert.equal(
      request?.error,
      "connection refused, not retried: sidecar exited 137 and will not be restarted (restartPolicy Never)",
    );
    assert.ok(
      log.lines.some(({ msg }) =>
        msg.startsWith("sidecar shutdown request not answered: connection refused, not retried"),
      ),
    );
  });

  test("a URL proa cannot map to a container is retried as before, and the log says why once", async () => {
    const port = await closedPort();
    const log = recordingLog();
    const pod = kubeletPod("1.33", "regular-sidecar-terminated-mid-run"); // nothing declares the closed port
    const report = await shutDownSidecars(
      options({ httpPost: [`http://localhost:${port}/shutdown`] }),
      { pod, status: 0 },
      log,
      { ...fast },
    );
    assert.equal(report.requests[0]?.attempts, 4);
    const why = log.lines.filter(({ msg }) => msg.includes("cannot tell whether it has exited"));
    assert.equal(why.length, 1, JSON.stringify(log.lines));
    assert.match(why[0]!.msg, new RegExp(`no container of the Pod declares port ${port}`));
    assert.equal(why[0]!.fields.delayMs, 10, "said at the first refusal, before the first retry");
  });
});

describe("shutDownSidecars without means or knowledge", () => {
  test("with no URL, no --kill and no --kill-all, the log says proa has no way to stop the sidecars and can only wait", async () => {
    const log = recordingLog();
    await shutDownSidecars(options({}), {}, log);
    assert.match(log.lines[0]?.msg ?? "", /no way to stop the sidecars .* can only wait/);
  });

  test("with no means in a Pod whose only sidecars are native, the log says the kubelet stops them: no claimed wait, no budget, not watched", async () => {
    for (const version of KUBELET_VERSIONS) {
      const log = recordingLog();
      let watched = false;
      const sidecars = {
        waitForExit: async () => ((watched = true), { outcome: "all exited" as const, stillRunning: [], exits: [] }),
      };
      const pod = kubeletPod(version, "native-ready");
      const report = await shutDownSidecars(options({}), { pod, status: 0, sidecars }, log);
      assert.equal(watched, false, "the step did not wait");
      assert.deepEqual(report.wait, { outcome: "not watched", stillRunning: [] });
      assert.equal(report.plan.waitForExit, false);
      assert.deepEqual(
        log.lines.map(({ msg }) => msg),
        [
          "the Pod's only sidecars are native: the kubelet stops them once proa's container has exited, so proa does not wait for them; proa sends no shutdown request",
        ],
      );
      assert.equal(log.lines[0]?.fields.budgetMs, undefined);
    }
  });

  test("with no means on a Pod being deleted, the log says proa does not wait for the exits, which the kubelet hides", async () => {
    const log = recordingLog();
    const pod: Pod = {
      metadata: { deletionTimestamp: "2025-01-01T00:00:10Z", deletionGracePeriodSeconds: 30 },
      spec: { restartPolicy: "Never" },
    };
    await shutDownSidecars(options({}), { pod, status: 0 }, log);
    const line = log.lines.find(({ msg }) => msg.includes("no way to stop the sidecars"));
    assert.match(line?.msg ?? "", /no way to stop the sidecars .* does not wait for their exits/);
  });

  test("without a cluster, a Pod or an own container it returns at once: there is nothing to wait for", async () => {
    const pod: Pod = { spec: { containers: [{ name: "main" }, { name: "sidecar-1" }] } };
    for (const context of [{}, { pod }, { pod, sidecars: podExitWatch({ ownContainer: "main" }) }]) {
      const elapsed = await timed(() => shutDownSidecars(options({}), context, recordingLog()));
      assert.ok(elapsed < 100, `took ${elapsed} ms`);
    }
  });
});

/** A TCP server that runs `script` on each connection once the request's head has arrived: the test chooses every byte. */
async function raw(script: (socket: Socket) => void) {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createTcpServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on("error", () => {});
    let head = "";
    const onData = (chunk: Buffer) => {
      head += chunk;
      if (!head.includes("\r\n\r\n")) return;
      socket.off("data", onData);
      script(socket);
    };
    socket.on("data", onData);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: (path = "/") => `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`,
    connections: () => connections,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

describe("HTTP shutdown requests under faults and attack", () => {
  test("a redirect is logged as an answer with its Location, and nothing is sent to where it points", async () => {
    const elsewhere = await serve(answer(200, "third party"));
    const server = await serve((_request, response) =>
      response.writeHead(307, { location: elsewhere.url("/other?token=abc") }).end(),
    );
    const log = recordingLog();
    const report = await shutDownSidecars(options({ httpPost: [server.url("/quitquitquit")] }), {}, log);
    await Promise.all([server.close(), elsewhere.close()]);
    assert.equal(elsewhere.received.length, 0);
    const [warning, ...more] = log.lines.filter((line) => line.level === "warn");
    assert.deepEqual(more, []);
    assert.match(
      warning?.msg ?? "",
      /^sidecar shutdown request answered 307, a redirect to .*other\?REDACTED: proa follows no redirects/,
    );
    assert.equal(warning?.fields.url, server.url("/quitquitquit"));
    assert.equal(report.requests[0]?.status, 307);
    assert.equal(report.requests[0]?.location, elsewhere.url("/other?REDACTED"));
  });

  test("an endless 500 body is read only a few KiB: the answer is logged at once and the connection closed", async () => {
    let closed = () => false;
    const server = await raw((socket) => (closed = sendEndless500(socket)));
    const log = recordingLog();
    const before = process.memoryUsage().rss;
    const elapsed = await timed(() =>
      shutDownSidecars(options({ httpGet: [server.url()], requestTimeoutMs: 3000 }), {}, log),
    );
    const grownMiB = (process.memoryUsage().rss - before) / 2 ** 20;
    for (let i = 0; i < 100 && !closed(); i++) await sleep(10);
    await server.close();
    assert.ok(elapsed < 1000, `took ${elapsed} ms`);
    assert.ok(closed(), "the connection was closed");
    assert.ok(grownMiB < 50, `RSS grew by ${grownMiB} MiB`);
    const warning = log.lines.find((line) => line.level === "warn");
    assert.equal(warning?.msg, "sidecar shutdown request answered 500");
    assert.match(String(warning?.fields.body), /^x{300}… \(\d+ more characters\)$/);
  });

  test("a timeout says which phase ran out: headers, or the body", async () => {
    const silent = await raw(() => {});
    const stalling = await raw((socket) => socket.write("HTTP/1.1 500 Oops\r\ncontent-length: 100\r\n\r\nabc"));
    const log = recordingLog();
    await shutDownSidecars(
      options({ httpGet: [silent.url()], httpPost: [stalling.url()], requestTimeoutMs: 200 }),
      {},
      log,
    );
    await Promise.all([silent.close(), stalling.close()]);
    const warnings = log.lines.filter((line) => line.level === "warn");
    assert.equal(
      warnings.find((line) => line.fields.method === "GET")?.msg,
      "sidecar shutdown request failed: no answer within 200 ms: timed out waiting for the response headers",
    );
    assert.equal(
      warnings.find((line) => line.fields.method === "POST")?.msg,
      "sidecar shutdown request failed: no answer within 200 ms: timed out waiting for the rest of the body",
    );
  });

  test("with --shutdown-timeout 0 the requests still go out, and get their minimum time to be answered", async () => {
    const server = await serve((_request, response) => void setTimeout(() => response.end("OK"), 100));
    const log = recordingLog();
    const report = await shutDownSidecars(options({ httpPost: [server.url("/quitquitquit")], timeoutMs: 0 }), {}, log, {
      minRequestMs: 500,
    });
    await server.close();
    assert.equal(server.received.length, 1);
    assert.ok(
      log.lines.some((line) => line.msg === "sidecar shutdown request answered 200"),
      JSON.stringify(log.lines),
    );
    assert.equal(report.requests[0]?.status, 200);
  });

  test("after SIGTERM with the budget already spent, the requests still go out and are answered", async () => {
    const server = await serve((_request, response) => void setTimeout(() => response.end("OK"), 100));
    const sigterm = new AbortController();
    sigterm.abort(Date.now() - 1500); // a 2 s grace period: the step should have ended 500 ms ago
    const pod: Pod = { spec: { restartPolicy: "Never", terminationGracePeriodSeconds: 2 } };
    const log = recordingLog();
    const report = await shutDownSidecars(options({ httpGet: [server.url()] }), { pod, sigterm: sigterm.signal }, log, {
      minRequestMs: 500,
    });
    await server.close();
    assert.equal(server.received.length, 1);
    assert.equal(report.requests[0]?.status, 200);
  });

  test("the minimum time is a floor, not a wait: a request that never answers is cut at the minimum when the budget is spent", async () => {
    const server = await serve(() => {});
    const log = recordingLog();
    const elapsed = await timed(() =>
      shutDownSidecars(options({ httpPost: [server.url()], timeoutMs: 0 }), {}, log, { minRequestMs: 200 }),
    );
    await server.close();
    assert.ok(elapsed >= 190 && elapsed < 700, `took ${elapsed} ms`);
    assert.equal(server.received.length, 1);
  });

  test("a URL's query is logged only as REDACTED, and user info is never logged", async () => {
    const server = await serve(answer(200));
    const log = recordingLog();
    const url = server.url("/quit?access_token=s3cr3t-value&mode=now").replace("http://", "http://admin:hunter2@");
    const report = await shutDownSidecars(options({ httpPost: [url] }), {}, log);
    await server.close();
    assert.equal(server.received[0]?.url, "/quit?access_token=s3cr3t-value&mode=now", "the sidecar gets the real URL");
    const logged = JSON.stringify(log.lines) + JSON.stringify(report);
    for (const secret of ["s3cr3t", "hunter2", "admin"]) assert.ok(!logged.includes(secret), logged);
    assert.equal(log.lines.find((line) => line.msg.includes("answered 200"))?.fields.url, server.url("/quit?REDACTED"));
  });

  test("an answer that echoes the request's Authorization header is quoted with the credentials masked", async () => {
    const server = await serve((request, response) =>
      response
        .writeHead(400)
        .end(`bad request; you sent authorization: ${request.headers.authorization} and Bearer abc.def.ghi`),
    );
    const log = recordingLog();
    await shutDownSidecars(options({ httpPost: [server.url().replace("http://", "http://admin:hunter2@")] }), {}, log);
    await server.close();
    const body = String(log.lines.find((line) => line.level === "warn")?.fields.body);
    assert.equal(body, "bad request; you sent authorization: Basic [redacted] and Bearer [redacted]");
    assert.ok(!JSON.stringify(log.lines).includes(Buffer.from("admin:hunter2").toString("base64")));
  });
});

describe("the deadline", () => {
  const deleting = (graceS: number): Pod => ({
    metadata: { deletionTimestamp: "2025-01-01T00:00:10Z", deletionGracePeriodSeconds: graceS },
    spec: { terminationGracePeriodSeconds: 120 },
  });
  const grace: [string, Pod | undefined, number][] = [
    ["no Pod known: 30 s", undefined, 30_000],
    ["no grace period in the spec: 30 s", { spec: {} }, 30_000],
    ["the spec's terminationGracePeriodSeconds", { spec: { terminationGracePeriodSeconds: 120 } }, 120_000],
    ["a grace period of 0", { spec: { terminationGracePeriodSeconds: 0 } }, 0],
    ["a Pod being deleted: its deletionGracePeriodSeconds", deleting(10), 10_000],
    [
      "deletionGracePeriodSeconds left over without a deletionTimestamp is ignored",
      { metadata: { deletionGracePeriodSeconds: 10 }, spec: { terminationGracePeriodSeconds: 120 } },
      120_000,
    ],
  ];
  for (const [name, pod, expected] of grace)
    test(`grace period: ${name}`, () => assert.equal(gracePeriodMs(pod), expected));

  const start = 1_000_000;
  const fiveSeconds: Pod = { spec: { terminationGracePeriodSeconds: 5 } };
  const deadlines: [string, number | undefined, Pod | undefined, number | undefined, number][] = [
    ["no SIGTERM: the grace period from the step's start", undefined, fiveSeconds, undefined, start + 5000],
    [
      "no SIGTERM: --shutdown-timeout from the step's start, even past the grace period",
      20_000,
      fiveSeconds,
      undefined,
      start + 20_000,
    ],
    [
      "SIGTERM while the program ran: a second before SIGTERM + the grace period",
      undefined,
      fiveSeconds,
      start - 2000,
      start + 2000,
    ],
    [
      "SIGTERM while the program ran, --shutdown-timeout 20s, grace period 5 s: still 4 s after SIGTERM",
      20_000,
      fiveSeconds,
      start - 100,
      start + 3900,
    ],
    ["SIGTERM: a shorter --shutdown-timeout still shortens it", 1000, fiveSeconds, start - 100, start + 1000],
    ["SIGTERM to a Pod being deleted: the deletion's grace period", 20_000, deleting(3), start, start + 2000],
    [
      "SIGTERM long ago: a deadline in the past (the requests still go out)",
      undefined,
      fiveSeconds,
      start - 10_000,
      start - 6000,
    ],
  ];
  for (const [name, timeoutMs, pod, sigtermAt, expected] of deadlines) {
    test(`deadline: ${name}`, () => assert.equal(shutdownDeadline(start, timeoutMs, pod, sigtermAt), expected));
  }
});

describe("selectProcesses", () => {
  const own: OwnProcesses = { pid: 40, ppid: 1, childPid: 41 };
  const ps = (...entries: [number, Partial<ProcessInfo>][]): ProcessInfo[] =>
    entries.map(([pid, names]) => ({ pid, ppid: 1, startTime: 1000 + pid, ...names }));
  const exe = (name: string) => ({ exe: name, argv0: name, comm: name.slice(0, 15) });
  const shared = ps(
    [1, exe("pause")],
    [7, exe("envoy")],
    [8, exe("pilot-agent")],
    [9, exe("envoy")],
    [40, exe("node")],
    [41, exe("program")],
  );
  interface Case {
    name: string;
    processes: ProcessInfo[];
    kill?: string[];
    killAll?: boolean;
    own?: OwnProcesses;
    expected: { targets: [number, string][]; unmatched?: string[]; interpreters?: string[]; sidecarsVisible?: boolean };
  }
  const cases: Case[] = [
    {
      name: "--kill NAME picks every process of that name",
      processes: shared,
      kill: ["envoy"],
      expected: {
        targets: [
          [7, "executable"],
          [9, "executable"],
        ],
      },
    },
    {
      name: "--kill NAME that matches nothing is reported",
      processes: shared,
      kill: ["envoy", "cloud-sql-proxy"],
      expected: {
        targets: [
          [7, "executable"],
          [9, "executable"],
        ],
        unmatched: ["cloud-sql-proxy"],
      },
    },
    {
      name: "--kill-all picks all but PID 1, proa and its child",
      processes: shared,
      killAll: true,
      expected: {
        targets: [
          [7, "--kill-all"],
          [8, "--kill-all"],
          [9, "--kill-all"],
        ],
      },
    },
    {
      name: "--kill never picks proa itself or its child, even by name, and warns for an interpreter",
      processes: shared,
      kill: ["node", "program"],
      expected: { targets: [], unmatched: ["node", "program"], interpreters: ["node"] },
    },
    {
      name: "--kill-all spares PID 1 (a shell, not pause) and every ancestor of proa",
      processes: ps(
        [1, exe("sh")],
        [5, { ...exe("tini"), ppid: 1 }],
        [6, { ...exe("bash"), ppid: 5 }],
        [40, { ...exe("node"), ppid: 6 }],
        [50, exe("envoy")],
      ),
      killAll: true,
      own: { pid: 40, ppid: 6 },
      expected: { targets: [[50, "--kill-all"]] },
    },
    {
      name: "--kill NAME spares an ancestor of that name too",
      processes: ps(
        [1, exe("pause")],
        [5, { ...exe("sh"), ppid: 1 }],
        [40, { ...exe("node"), ppid: 5 }],
        [50, exe("sh")],
      ),
      kill: ["sh"],
      own: { pid: 40, ppid: 5 },
      expected: { targets: [[50, "executable"]], interpreters: ["sh"] },
    },
    {
      name: "--kill NAME never picks an executable whose name only begins with NAME",
      processes: ps([1, exe("pause")], [7, exe("cloud-sql-proxy")], [8, exe("cloud-sql-proxy-v2")]),
      kill: ["cloud-sql-proxy"],
      expected: { targets: [[7, "executable"]] },
    },
    {
      name: "an unreadable executable falls back to argv[0] from cmdline",
      processes: ps(
        [1, { comm: "pause" }],
        [7, { argv0: "cloud-sql-proxy", comm: "cloud-sql-proxy" }],
        [8, { argv0: "cloud-sql-proxy-v2", comm: "cloud-sql-proxy" }],
      ),
      kill: ["cloud-sql-proxy"],
      expected: { targets: [[7, "argv[0]"]] },
    },
    {
      name: "argv[0] matches even when the executable is readable (a busybox applet)",
      processes: ps([1, exe("pause")], [7, { exe: "busybox", argv0: "httpd", comm: "httpd" }]),
      kill: ["httpd"],
      expected: { targets: [[7, "argv[0]"]] },
    },
    {
      name: "a comm cut to 15 characters never matches a longer or a different name",
      processes: ps([1, exe("pause")], [7, { comm: "cloud-sql-proxy" }], [8, { comm: "a-very-long-sid" }]),
      kill: ["cloud-sql-proxy", "a-very-long-sidecar", "a-very-long-sid"],
      expected: { targets: [], unmatched: ["cloud-sql-proxy", "a-very-long-sidecar", "a-very-long-sid"] },
    },
    {
      name: "comm matches a name shorter than 15 characters when nothing better is readable",
      processes: ps([1, exe("pause")], [7, { comm: "envoy" }], [8, { exe: "other", comm: "envoy" }]),
      kill: ["envoy"],
      expected: { targets: [[7, "comm"]] },
    },
    {
      name: "only PID 1 and proa's own processes: the namespace is not shared",
      processes: ps([1, exe("pause")], [40, exe("node")], [41, exe("program")]),
      kill: ["envoy"],
      killAll: true,
      expected: { targets: [], unmatched: ["envoy"], sidecarsVisible: false },
    },
    {
      name: "proa is PID 1: its own namespace, not shared",
      processes: ps([1, exe("node")], [12, exe("daemon")]),
      killAll: true,
      own: { pid: 1, ppid: 0 },
      expected: { targets: [[12, "--kill-all"]], sidecarsVisible: false },
    },
  ];
  for (const { name, processes, kill = [], killAll = false, own: self = own, expected } of cases) {
    test(name, () => {
      const selection = selectProcesses(processes, kill, killAll, self, "visible");
      const targets = selection.targets.map(({ process, rule }) => [process.pid, rule]);
      assert.deepEqual(
        { ...selection, targets },
        { unmatched: [], interpreters: [], sidecarsVisible: true, outOfScope: [], ...expected },
      );
    });
  }
});

describe("readProcesses", () => {
  test("reads the executable's and argv[0]'s file names, comm, the parent and the start time; skips vanished processes", () => {
    const proc = mkdtempSync(join(tmpdir(), "proa-proc-"));
    try {
      const add = (pid: string, files: { exe?: string; cmdline?: string; comm?: string; stat?: string }) => {
        mkdirSync(join(proc, pid));
        if (files.exe) symlinkSync(files.exe, join(proc, pid, "exe"));
        if (files.cmdline !== undefined) writeFileSync(join(proc, pid, "cmdline"), files.cmdline);
        if (files.comm) writeFileSync(join(proc, pid, "comm"), `${files.comm}\n`);
        if (files.stat) writeFileSync(join(proc, pid, "stat"), files.stat);
      };
      // Fields 3 onwards of /proc/PID/stat, from the state to the start time (field 22).
      const stat = (pid: number, comm: string, ppid: number, start: number) =>
        `${pid} (${comm}) S ${ppid} ${"0 ".repeat(17)}${start} 100 200\n`;
      add("1", { comm: "pause", cmdline: "", stat: stat(1, "pause", 0, 5) }); // another user's process: no readable exe; a kernel thread's empty cmdline
      add("7", {
        exe: "/usr/local/bin/envoy",
        cmdline: "/usr/local/bin/envoy\0-c\0/etc/envoy.yaml\0",
        comm: "envoy",
        stat: stat(7, "envoy", 1, 70),
      });
      add("8", {
        cmdline: "/cloud-sql-proxy-v2\0--port\0",
        comm: "cloud-sql-proxy",
        stat: stat(8, "cloud-sql-proxy", 1, 80),
      });
      add("9", { exe: "/usr/bin/odd (deleted)", comm: "a) b (c", stat: stat(9, "a) b (c", 7, 90) }); // comm may hold ") "
      add("10", { exe: "/usr/bin/gone" }); // exited while being read: no stat
      add("self", { exe: "/usr/bin/node" });
      mkdirSync(join(proc, "sys"));
      const processes = readProcesses(proc).sort((a, b) => a.pid - b.pid);
      assert.deepEqual(processes, [
        { pid: 1, ppid: 0, startTime: 5, comm: "pause" },
        { pid: 7, ppid: 1, startTime: 70, exe: "envoy", argv0: "envoy", comm: "envoy" },
        { pid: 8, ppid: 1, startTime: 80, argv0: "cloud-sql-proxy-v2", comm: "cloud-sql-proxy" },
        { pid: 9, ppid: 7, startTime: 90, exe: "odd", comm: "a) b (c" },
      ]);
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });

  test("readArgv0: argv[0] up to its NUL, the whole text when a rewritten command line has none, nothing when it runs past MAX_ARGV0_BYTES", () => {
    const dir = mkdtempSync(join(tmpdir(), "proa-cmdline-"));
    try {
      const argv0 = (cmdline: string) => (
        writeFileSync(join(dir, "cmdline"), cmdline),
        readArgv0(join(dir, "cmdline"))
      );
      assert.equal(argv0("/usr/local/bin/envoy\0-c\0/etc/envoy.yaml\0"), "/usr/local/bin/envoy");
      assert.equal(argv0(`/bin/sidecar\0--password=${"x".repeat(10 * MAX_ARGV0_BYTES)}\0`), "/bin/sidecar");
      assert.equal(argv0("nginx: master process /usr/sbin/nginx"), "nginx: master process /usr/sbin/nginx");
      assert.equal(argv0(""), "");
      assert.equal(argv0(`/${"a".repeat(MAX_ARGV0_BYTES - 2)}\0next`), `/${"a".repeat(MAX_ARGV0_BYTES - 2)}`);
      assert.equal(argv0(`/${"a".repeat(MAX_ARGV0_BYTES - 1)}\0next`), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("readArgv0 reads nothing after argv[0]'s NUL: a command line that never ends (a FIFO held open) still gives argv[0] at once", async (t) => {
    // The read runs in a child: a read to the end would block it for good, and the test kills it and fails.
    const dir = mkdtempSync(join(tmpdir(), "proa-cmdline-fifo-"));
    const fifo = join(dir, "cmdline");
    execFileSync("mkfifo", [fifo]);
    const writer = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK); // a writer that never closes, without waiting for a reader
    t.after(() => (closeSync(writer), rmSync(dir, { recursive: true, force: true })));
    writeSync(writer, "/usr/bin/sidecar\0--token=");
    const code = `process.stdout.write(String(require(${JSON.stringify(fileURLToPath(new URL("../shutdown.ts", import.meta.url)))}).readArgv0(${JSON.stringify(fifo)})))`;
    const child = spawn(process.execPath, ["--import", "tsx", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
    const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    t.after(() => (clearTimeout(killer), child.kill("SIGKILL")));
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk));
    const [status, signal] = (await once(child, "exit")) as [number | null, string | null];
    assert.deepEqual({ status, signal, stdout }, { status: 0, signal: null, stdout: "/usr/bin/sidecar" });
  });

  test("reads the real /proc: this test's own process is there, named after node's executable, with its parent", () => {
    const self = readProcesses().find(({ pid }) => pid === process.pid);
    assert.equal(self?.exe, basename(process.execPath));
    assert.equal(self?.ppid, process.ppid);
    assert.ok((self?.startTime ?? 0) > 0);
  });
});

describe("signalTargets", () => {
  test("signals a process only while it still has the start time read with it: a reused PID is not hit", async (t) => {
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    t.after(() => child.kill("SIGKILL"));
    await once(child, "spawn");
    const read = readProcesses().find(({ pid }) => pid === child.pid)!;
    const log = recordingLog();
    const [stale] = signalTargets(
      [{ process: { ...read, startTime: read.startTime - 1 }, name: "sleep", rule: "executable" }],
      log,
    );
    await sleep(50);
    assert.equal(child.exitCode ?? child.signalCode, null, "the process whose start time differs was not signalled");
    assert.deepEqual(stale, { pid: child.pid, name: "sleep", rule: "executable", sent: false, error: "exited" });
    const [sent] = signalTargets([{ process: read, name: "sleep", rule: "executable" }], log);
    await once(child, "exit");
    assert.equal(child.signalCode, "SIGTERM");
    assert.equal(sent?.sent, true);
    assert.deepEqual(log.lines.find((line) => line.msg === "sent SIGTERM to sleep")?.fields, {
      pid: child.pid,
      rule: "executable",
    });
  });
});

describe("the shutdown plan: whether proa's container runs again, and whether there is anything to wait for", () => {
  // restartPolicy × program succeeded × Pod being deleted × the Pod's sidecars → shut down?, wait for exit?, reason
  type Row = [string | undefined, boolean, boolean, SidecarKinds | undefined, boolean, boolean, RegExp];
  const table: Row[] = [];
  const NATIVE =
    /^the Pod's only sidecars are native: the kubelet stops them once proa's container has exited, so proa does not wait for them$/;
  for (const policy of ["Never", "OnFailure", "Always", undefined])
    for (const succeeded of [true, false])
      for (const sidecars of ["regular", "native only", "none", undefined] as const) {
        const restarts = policy === "Always" || (policy === "OnFailure" && !succeeded);
        table.push([
          policy,
          succeeded,
          true,
          sidecars,
          true,
          false,
          /^the Pod is being deleted: the kubelet stops the sidecars$/,
        ]);
        if (restarts)
          table.push([
            policy,
            succeeded,
            false,
            sidecars,
            false,
            false,
            new RegExp(`^sidecars left running for the restart \\(restartPolicy ${policy}\\)$`),
          ]);
        else if (sidecars === "native only") table.push([policy, succeeded, false, sidecars, true, false, NATIVE]);
        else if (sidecars === "none")
          table.push([
            policy,
            succeeded,
            false,
            sidecars,
            true,
            false,
            /^the Pod has no other container: no sidecar to wait for$/,
          ]);
        else
          table.push([
            policy,
            succeeded,
            false,
            sidecars,
            true,
            true,
            policy === undefined
              ? /restartPolicy is unknown/
              : policy === "Never"
                ? /^restartPolicy Never: proa's container will not run again/
                : /^restartPolicy OnFailure and the program succeeded/,
          ]);
      }
  for (const [policy, succeeded, deleting, sidecars, shutDown, waitForExit, reason] of table) {
    test(`${policy ?? "unknown"}, program ${succeeded ? "succeeded" : "failed"}${deleting ? ", Pod being deleted" : ""}, sidecars ${sidecars ?? "unknown"}: ${shutDown ? "shut down" : "left running"}${waitForExit ? ", wait" : ""}`, () => {
      const plan = shutdownPlan(policy, succeeded, deleting, sidecars);
      assert.deepEqual({ shutDown: plan.shutDown, waitForExit: plan.waitForExit }, { shutDown, waitForExit });
      assert.match(plan.reason, reason);
    });
  }
  test("the table covers every combination", () =>
    assert.equal(new Set(table.map(([p, s, d, k]) => `${p}/${s}/${d}/${k}`)).size, 64));

  test("sidecarKinds reads the Pod's spec: other regular containers, only native sidecars, or none; unknown without a Pod", () => {
    assert.equal(sidecarKinds(kubeletPod("1.33", "regular-before-delete")), "regular");
    assert.equal(sidecarKinds(kubeletPod("1.33", "native-ready")), "native only");
    assert.equal(sidecarKinds(kubeletPod("1.35", "native-ready")), "native only");
    assert.equal(sidecarKinds({ spec: { containers: [{ name: "main" }] } }), "none");
    assert.equal(
      sidecarKinds({ spec: { containers: [{ name: "main" }], initContainers: [{ name: "setup" }] } }),
      "none",
    );
    assert.equal(sidecarKinds(undefined), undefined);
    assert.equal(sidecarKinds({}), undefined);
  });
});

describe("which container a shutdown URL reaches, and whether it has gone for good", () => {
  const regular = kubeletPod("1.33", "regular-sidecar-terminated-mid-run"); // sidecar: readinessProbe on 8080, no ports
  test("a loopback URL on the port of one container's probe or containerPort (named ports resolved) is that container's", () => {
    for (const host of ["localhost", "127.0.0.1", "[::1]"])
      assert.deepEqual(urlContainer(regular, new URL(`http://${host}:8080/shutdown`)), { name: "sidecar" });
    const pod: Pod = {
      spec: {
        containers: [
          { name: "main" },
          {
            name: "proxy",
            ports: [{ containerPort: 15000, name: "admin" }],
            livenessProbe: { tcpSocket: { port: "admin" } },
          } as never,
          { name: "db", ports: [{ containerPort: 9090 }] } as never,
        ],
        initContainers: [
          { name: "mesh", restartPolicy: "Always", startupProbe: { httpGet: { port: 15021 } } } as never,
        ],
      },
    };
    assert.deepEqual(urlContainer(pod, new URL("http://localhost:15000/quitquitquit")), { name: "proxy" });
    assert.deepEqual(urlContainer(pod, new URL("http://localhost:9090/quit")), { name: "db" });
    assert.deepEqual(urlContainer(pod, new URL("http://localhost:15021/")), { name: "mesh" });
  });
  test("otherwise proa cannot tell, and says why", () => {
    const unknown = (pod: Pod | undefined, url: string) => {
      const found = urlContainer(pod, new URL(url));
      return "unknown" in found ? found.unknown : `mapped to ${found.name}`;
    };
    assert.match(unknown(regular, "http://localhost:9999/x"), /^no container of the Pod declares port 9999/);
    assert.match(unknown(regular, "http://localhost/x"), /declares port 80 /);
    assert.match(unknown(regular, "http://10.0.0.7:8080/x"), /^10\.0\.0\.7 is not localhost/);
    assert.match(unknown(undefined, "http://localhost:8080/x"), /has not read its Pod/);
    const twice: Pod = {
      spec: {
        containers: [
          { name: "a", ports: [{ containerPort: 80 }] },
          { name: "b", ports: [{ containerPort: 80 }] },
        ] as never,
      },
    };
    assert.match(unknown(twice, "http://localhost/x"), /^containers a, b all declare port 80$/);
  });
  test("gone for good: a regular container terminated under Never, or under OnFailure after exit 0; never a native sidecar", () => {
    assert.equal(goneForGood(regular, "sidecar"), "sidecar exited 137 and will not be restarted (restartPolicy Never)");
    assert.equal(goneForGood(regular, "main"), undefined, "running");
    assert.equal(goneForGood(kubeletPod("1.33", "regular-before-delete"), "sidecar"), undefined, "running");
    const under = (policy: "OnFailure" | "Always", exitCode: number) =>
      goneForGood(withRestartPolicy(podWith({ sidecars: ["s"], terminated: { s: { exitCode } } }), policy), "s");
    assert.equal(under("OnFailure", 1), undefined, "the kubelet restarts it");
    assert.match(under("OnFailure", 0) ?? "", /^s exited 0 and will not be restarted \(restartPolicy OnFailure\)$/);
    assert.equal(under("Always", 0), undefined);
    for (const version of KUBELET_VERSIONS) {
      // A killed native sidecar shows terminated 137 with restartCount 0 for a second before the kubelet restarts it.
      assert.equal(goneForGood(kubeletPod(version, "native-killed-terminated-before-restart"), "sidecar"), undefined);
      assert.match(
        goneForGood(kubeletPod(version, "regular-sidecar-terminated-mid-run"), "sidecar") ?? "",
        /exited 137/,
      );
    }
    assert.equal(goneForGood(undefined, "sidecar"), undefined);
  });
});

describe("which Pod a process's cgroup is in", () => {
  const uid = "6f1c5a3e-2b7d-4c9e-8a01-3d5e7f9b1c2a";
  const fixture = (name: string) =>
    readFileSync(fileURLToPath(new URL(`./fixtures/cgroup/${name}`, import.meta.url)), "utf8");
  for (const name of [
    "v1-cgroupfs-docker-burstable.txt",
    "v1-cgroupfs-guaranteed.txt",
    "v1-systemd-containerd.txt",
    "v2-cgroupfs-containerd.txt",
    "v2-systemd-containerd-guaranteed.txt",
    "v2-systemd-crio.txt",
  ]) {
    test(`${name}: the Pod's UID`, () => assert.equal(podUidOf(fixture(name)), uid));
  }
  for (const name of ["this-machine.txt", "v2-private-cgroupns.txt"])
    test(`${name}: no Pod`, () => assert.equal(podUidOf(fixture(name)), undefined));
  test("no Pod: a pod-like segment outside kubepods, a UID cut short, hierarchies naming different Pods", () => {
    assert.equal(podUidOf(`0::/system.slice/pod${uid}/x\n`), undefined);
    assert.equal(podUidOf(`0::/kubepods/pod${uid.slice(0, -1)}/x\n`), undefined);
    assert.equal(podUidOf(`0::/kubepods/pod${uid}0/x\n`), undefined);
    assert.equal(
      podUidOf(`2:memory:/kubepods/pod${uid}/x\n1:name=systemd:/kubepods/pod${uid.replace("6f", "7f")}/x\n`),
      undefined,
    );
  });
  const podWithIds = (ids: Record<string, string>): Pod => ({
    metadata: { uid },
    status: {
      containerStatuses: Object.entries(ids).map(([name, containerID]) => ({ name, ready: true, containerID })),
    },
  });
  test("the scope: the cgroup's Pod, checked against the API's UID; refused outside a Pod; PROA_KILL_SCOPE=visible", () => {
    const own = fixture("v2-systemd-crio.txt");
    assert.deepEqual(killScope(own, { metadata: { uid } }, {}), { podUid: uid, containers: new Set() });
    assert.deepEqual(killScope(own, undefined, {}), { podUid: uid, containers: new Set() });
    assert.match(
      (killScope(own, { metadata: { uid: uid.replace("6f", "7f") } }, {}) as { refused: string }).refused,
      /but the API says/,
    );
    assert.match(
      (killScope(fixture("this-machine.txt"), undefined, {}) as { refused: string }).refused,
      /names no Pod cgroup/,
    );
    assert.match(
      (
        killScope(
          fixture("real-node-containerd-v1-cgroupfs.txt").replace(/pod[0-9a-f-]{36}/g, "podX"),
          { metadata: { uid } },
          {},
        ) as { refused: string }
      ).refused,
      /names no Pod cgroup/,
    );
    assert.match(
      (killScope(undefined, { metadata: { uid } }, {}) as { refused: string }).refused,
      /names no Pod cgroup/,
    );
    assert.equal(killScope(undefined, undefined, { PROA_KILL_SCOPE: "visible" }), "visible");
  });
  test("the containers' cgroup names from the API: containerd's, CRI-O's and Docker's for each driver; other ids and runtimes name none", () => {
    const id = "ab".repeat(32);
    assert.deepEqual(
      [...containerCgroupNames(podWithIds({ a: `containerd://${id}` }))],
      [`cri-containerd-${id}.scope`, id],
    );
    assert.deepEqual([...containerCgroupNames(podWithIds({ a: `cri-o://${id}` }))], [`crio-${id}.scope`, `crio-${id}`]);
    assert.deepEqual([...containerCgroupNames(podWithIds({ a: `docker://${id}` }))], [`docker-${id}.scope`, id]);
    assert.deepEqual(
      [
        ...containerCgroupNames(
          podWithIds({
            a: `containerd://${id.slice(1)}`,
            b: "containerd://..",
            c: `containerd://${id}/x`,
            d: `kata://${id}`,
            e: "",
          }),
        ),
      ],
      [],
    );
  });

  describe("in a private cgroup namespace (containerd and CRI-O on cgroup v2): proa's own container and the Pod's others by id", () => {
    // Texts made to the kernel's cgroup-v2.rst ("Namespace": paths outside the cgroupns root show a "/.." per level)
    // and the runtimes' cgroup names; proa's own /proc/self/cgroup there is "0::/".
    const privateFixture = (name: string) => fixture(`private-cgroupns/${name}.txt`);
    const pod = JSON.parse(
      readFileSync(fileURLToPath(new URL("./fixtures/cgroup/private-cgroupns/pod.json", import.meta.url)), "utf8"),
    ) as Pod;
    const crioPod = JSON.parse(JSON.stringify(pod).replaceAll("containerd://", "cri-o://")) as Pod;
    const scope = killScope(privateFixture("own"), pod, {});
    const crioScope = killScope(privateFixture("own"), crioPod, {});
    const inScope = (text: string, within = scope) =>
      inKillScope(text, within as Exclude<KillScope, "visible" | { refused: string }>);
    test("0::/ alone is a private namespace; beside cgroup v1 lines it is not (a v1 host's unused v2 hierarchy)", () => {
      assert.ok(typeof scope === "object" && "privateNamespace" in scope, JSON.stringify(scope));
      assert.match(
        (killScope(fixture("this-machine.txt"), pod, {}) as { refused: string }).refused,
        /names no Pod cgroup/,
      );
    });
    test("without the Pod from the API (--ready-url), refused: nothing would tell the Pod's containers from others", () => {
      assert.match(
        (killScope(privateFixture("own"), undefined, {}) as { refused: string }).refused,
        /0::\/ \(its own cgroup namespace\)/,
      );
    });
    for (const name of [
      "own",
      "own-child",
      "sibling-containerd-systemd",
      "sibling-containerd-cgroupfs",
      "sibling-native-sidecar-child",
    ]) {
      test(`containerd: ${name} is in scope`, () => assert.equal(inScope(privateFixture(name)), true));
    }
    for (const name of ["sibling-crio-systemd", "sibling-crio-cgroupfs"]) {
      test(`CRI-O: ${name} is in scope, and not in a containerd Pod's`, () => {
        assert.equal(inScope(privateFixture(name), crioScope), true);
        assert.equal(inScope(privateFixture(name)), false);
      });
    }
    for (const name of ["conmon-crio", "sandbox-pause", "pod-cgroup", "other-pod", "host-service", "host-root"]) {
      test(`${name} is out of scope`, () => {
        assert.equal(inScope(privateFixture(name)), false);
        assert.equal(inScope(privateFixture(name), crioScope), false);
      });
    }
    test("out of scope: a cgroup v1 text, /.. twice over a name, no text at all", () => {
      assert.equal(inScope(`1:name=systemd:/\n0::/\n`), false);
      assert.equal(
        inScope(
          `0::/../../cri-containerd-${"9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d"}.scope\n`,
        ),
        false,
      );
      assert.equal(inKillScope(undefined, scope as Exclude<KillScope, "visible" | { refused: string }>), false);
    });
  });

  test("the real node's texts (kubelet 1.20.2, containerd, cgroup v1, cgroupfs driver, hostPID): the sidecar in scope, the host's process not", () => {
    const realUid = "44b6551b-2ec5-4bcc-9064-773a40680a8b";
    const own = fixture("real-node-containerd-v1-cgroupfs.txt");
    const sidecar = fixture("real-node-containerd-v1-cgroupfs-sidecar.txt");
    const idIn = (text: string) => /[0-9a-f]{64}$/m.exec(text)![0];
    const pod: Pod = {
      metadata: { uid: realUid },
      status: {
        containerStatuses: [
          { name: "main", ready: true, containerID: `containerd://${idIn(own)}` },
          { name: "victim", ready: true, containerID: `containerd://${idIn(sidecar)}` },
        ],
      },
    };
    const scope = killScope(own, pod, {});
    assert.deepEqual(scope, { podUid: realUid, containers: containerCgroupNames(pod) });
    const inScope = (text: string) => inKillScope(text, scope as Exclude<KillScope, "visible" | { refused: string }>);
    assert.equal(inScope(sidecar), true);
    assert.equal(inScope(own), true);
    assert.equal(inScope(fixture("real-node-host-process.txt")), false);
    assert.match(
      (killScope(fixture("real-node-host-process.txt"), pod, {}) as { refused: string }).refused,
      /names no Pod cgroup/,
      "its 0::/ sits beside v1 lines: no private namespace",
    );
  });

  test("in the host's view, with the Pod's container ids from the API: only its containers, not its sandbox (pause) or CRI-O's conmon", () => {
    const id = "4a7b9c1d2e3f40516273849a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8";
    const scope = killScope(
      fixture("v2-systemd-crio.txt"),
      podWithIds({ main: `cri-o://${id}`, sidecar: `cri-o://${"cd".repeat(32)}` }),
      {},
    );
    const at = (leaf: string) =>
      `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid.replaceAll("-", "_")}.slice/${leaf}\n`;
    const inScope = (text: string) => inKillScope(text, scope as Exclude<KillScope, "visible" | { refused: string }>);
    assert.equal(inScope(fixture("v2-systemd-crio.txt")), true);
    assert.equal(inScope(at(`crio-${"cd".repeat(32)}.scope`)), true);
    assert.equal(inScope(at(`crio-conmon-${"cd".repeat(32)}.scope`)), false);
    assert.equal(inScope(at(`crio-${"ef".repeat(32)}.scope`)), false, "the sandbox, whose id no status carries");
    assert.equal(inScope(at("")), false, "the Pod's own cgroup");
    // Without ids (a Pod read before the kubelet reported them), the Pod's cgroup decides, conmon still left out.
    const byPod = killScope(fixture("v2-systemd-crio.txt"), undefined, {}) as Exclude<
      KillScope,
      "visible" | { refused: string }
    >;
    assert.equal(inKillScope(at(`crio-${"ef".repeat(32)}.scope`), byPod), true);
    assert.equal(inKillScope(at(`crio-conmon-${"cd".repeat(32)}.scope`), byPod), false);
  });
  test("in a fake /proc: of two processes of one name, only the one in proa's Pod is a target; argv[0] is read no further than its NUL", () => {
    const proc = mkdtempSync(join(tmpdir(), "proa-proc-"));
    try {
      const stat = (pid: number, ppid: number) => `${pid} (envoy) S ${ppid} ${"0 ".repeat(17)}${pid * 10} 100 200\n`;
      const add = (pid: number, cgroup: string) => {
        mkdirSync(join(proc, String(pid)));
        writeFileSync(join(proc, String(pid), "stat"), stat(pid, 1));
        writeFileSync(join(proc, String(pid), "cmdline"), `/usr/bin/envoy\0--token\0${"x".repeat(10000)}`);
        writeFileSync(join(proc, String(pid), "cgroup"), cgroup);
      };
      add(7, fixture("v2-systemd-crio.txt"));
      add(8, fixture("this-machine.txt"));
      add(9, fixture("v1-cgroupfs-guaranteed.txt").replaceAll("6f1c", "7f1c"));
      const near = `${uid.slice(0, -1)}b`; // another Pod whose UID differs only in its last digit
      add(10, `0::/kubepods/burstable/pod${near}/c\n`);
      const processes = readProcesses(proc);
      assert.deepEqual(
        processes
          .map((p) => [p.pid, p.argv0, p.cgroup && podUidOf(p.cgroup)])
          .sort((a, b) => Number(a[0]) - Number(b[0])),
        [
          [7, "envoy", uid],
          [8, "envoy", undefined],
          [9, "envoy", uid.replace("6f1c", "7f1c")],
          [10, "envoy", near],
        ],
      );
      const selection = selectProcesses(
        processes,
        ["envoy"],
        false,
        { pid: 40, ppid: 39 },
        killScope(fixture("v1-systemd-containerd.txt"), { metadata: { uid } }, {}),
      );
      assert.deepEqual(
        selection.targets.map((t) => t.process.pid),
        [7],
      );
      assert.deepEqual(
        selection.outOfScope.map((p) => p.pid).sort((a, b) => a - b),
        [8, 9, 10],
      );
      const all = selectProcesses(
        processes,
        [],
        true,
        { pid: 40, ppid: 39 },
        killScope(fixture("v1-systemd-containerd.txt"), { metadata: { uid } }, {}),
      );
      assert.deepEqual(
        all.targets.map((t) => t.process.pid),
        [7],
      );
      const refused = selectProcesses(
        processes,
        [],
        true,
        { pid: 40, ppid: 39 },
        killScope(fixture("this-machine.txt"), undefined, {}),
      );
      assert.deepEqual(refused.targets, []);
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });
});
