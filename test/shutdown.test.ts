// The shutdown step's HTTP requests against real local servers, and its pure decisions (budget, process selection).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { describe, test } from "node:test";
import type { Pod } from "../kube.ts";
import { podExitWatch, readProcesses, selectProcesses, shutDownSidecars, shutdownBudgetMs, type OwnProcesses, type ProcessInfo, type ShutdownOptions } from "../shutdown.ts";
import { recordingLog } from "./helpers/shutdown-log.ts";

type Urls = { httpGet?: string[]; httpPost?: string[] };
const options = ({ httpGet = [], httpPost = [], ...overrides }: Partial<Omit<ShutdownOptions, keyof Urls>> & Urls): ShutdownOptions => ({
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
async function serve(handle: (request: IncomingMessage, response: ServerResponse) => void, late?: { port: number; afterMs: number }) {
  const received: Received[] = [];
  const server = createServer((request, response) => {
    received.push({ method: request.method ?? "", url: request.url ?? "", headers: request.headers });
    handle(request, response);
  });
  if (late) setTimeout(() => server.listen(late.port, "127.0.0.1"), late.afterMs);
  else await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = late?.port ?? (server.address() as AddressInfo).port;
  return {
    url: (path = "/") => `http://127.0.0.1:${port}${path}`,
    received,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => (server.listening ? server.close(resolve) : resolve(undefined)));
    },
  };
}

const answer = (status: number, body = "") => (_request: IncomingMessage, response: ServerResponse) => response.writeHead(status).end(body);

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function timed(run: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

describe("HTTP shutdown requests", () => {
  test("every --shutdown-http-get URL gets a GET and every --shutdown-http-post URL a POST, with proa's User-Agent", async () => {
    const server = await serve(answer(200, "OK"));
    const log = recordingLog();
    await shutDownSidecars(options({ httpGet: [server.url("/get")], httpPost: [server.url("/quitquitquit")] }), {}, log);
    await server.close();
    const seen = server.received.map(({ method, url, headers }) => `${method} ${url} ${headers["user-agent"]}`).sort();
    assert.deepEqual(seen, ["GET /get proa/1.2.3", "POST /quitquitquit proa/1.2.3"]);
    const answered = log.lines.filter((line) => line.msg === "sidecar shutdown request answered 200");
    assert.deepEqual(answered.map((line) => line.fields.url).sort(), [server.url("/get"), server.url("/quitquitquit")]);
    assert.deepEqual(log.lines.filter((line) => line.level !== "info" && line.level !== "debug"), []);
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
    const elapsed = await timed(() => shutDownSidecars(options({ httpGet: [server.url()], requestTimeoutMs: 200 }), {}, log));
    await server.close();
    assert.ok(elapsed >= 190 && elapsed < 700, `took ${elapsed} ms`);
    assert.deepEqual(log.lines.filter((line) => line.level === "warn").map((line) => line.msg), ["sidecar shutdown request failed: no answer within 200 ms"]);
  });

  test("the shutdown budget cuts a request short when it is shorter than the request timeout", async () => {
    const server = await serve(() => {});
    const log = recordingLog();
    const elapsed = await timed(() => shutDownSidecars(options({ httpPost: [server.url()], requestTimeoutMs: 10_000, timeoutMs: 200 }), {}, log));
    await server.close();
    assert.ok(elapsed < 700, `took ${elapsed} ms`);
    assert.match(log.lines.find((line) => line.level === "warn")?.msg ?? "", /no answer within (19\d|200) ms \(the rest of the shutdown budget\)$/);
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

  test("a sidecar that starts listening a moment later (restarting) still gets the request", async () => {
    const server = await serve(answer(200), { port: await closedPort(), afterMs: 100 });
    const log = recordingLog();
    await shutDownSidecars(options({ httpPost: [server.url()] }), {}, log, { refusedRetryDelaysMs: [40, 40, 40, 40, 40, 40] });
    await server.close();
    assert.equal(server.received.length, 1);
    assert.ok(log.lines.some((line) => line.msg.includes("retrying")));
    assert.ok(log.lines.some((line) => line.msg === "sidecar shutdown request answered 200"));
  });

  test("a 500 answer is logged with its status and the start of its body, and is not retried", async () => {
    const server = await serve(answer(500, `upstream connect error ${"x".repeat(1000)}`));
    const log = recordingLog();
    await shutDownSidecars(options({ httpGet: [server.url("/shutdown")] }), {}, log, fast);
    await server.close();
    assert.equal(server.received.length, 1);
    const [warning, ...more] = log.lines.filter((line) => line.level === "warn");
    assert.equal(more.length, 0);
    assert.equal(warning?.msg, "sidecar shutdown request answered 500");
    assert.equal(warning?.fields.status, 500);
    assert.equal(warning?.fields.body, `upstream connect error ${"x".repeat(200 - 23)}`);
  });

  test("a 405 answer to a GET suggests --shutdown-http-post (Envoy's /quitquitquit); a 405 to a POST does not", async () => {
    const server = await serve(answer(405, "method not allowed"));
    const log = recordingLog();
    await shutDownSidecars(options({ httpGet: [server.url("/quitquitquit")], httpPost: [server.url("/other")] }), {}, log);
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
    const sent = server.received.map(({ headers }) => Buffer.from(headers.authorization?.replace("Basic ", "") ?? "", "base64").toString()).sort();
    assert.deepEqual(sent, ["admin:100%cret", "admin:s@cret"]);
    const logged = JSON.stringify(log.lines);
    assert.ok(!logged.includes("cret") && !logged.includes("admin"), logged);
    assert.ok(log.lines.some((line) => line.fields.url === server.url("/quit")));
  });
});

describe("shutDownSidecars without means or knowledge", () => {
  test("with no URL, no --kill and no --kill-all, the log says proa has no way to stop the sidecars and can only wait", async () => {
    const log = recordingLog();
    await shutDownSidecars(options({}), {}, log);
    assert.match(log.lines[0]?.msg ?? "", /no way to stop the sidecars .* can only wait/);
  });

  test("without a cluster, a Pod or an own container it returns at once: there is nothing to wait for", async () => {
    const pod: Pod = { spec: { containers: [{ name: "main" }, { name: "sidecar-1" }] } };
    for (const context of [{}, { pod }, { pod, sidecars: podExitWatch({ pod, ownContainer: "main" }) }]) {
      const elapsed = await timed(() => shutDownSidecars(options({}), context, recordingLog()));
      assert.ok(elapsed < 100, `took ${elapsed} ms`);
    }
  });
});

describe("shutdownBudgetMs", () => {
  const cases: [string, Pod | undefined, number | undefined, number][] = [
    ["no Pod known: 30 s", undefined, undefined, 30_000],
    ["no grace period in the spec: 30 s", { spec: {} }, undefined, 30_000],
    ["the spec's terminationGracePeriodSeconds", { spec: { terminationGracePeriodSeconds: 120 } }, undefined, 120_000],
    ["a grace period of 0", { spec: { terminationGracePeriodSeconds: 0 } }, undefined, 0],
    [
      "a Pod being deleted: its deletionGracePeriodSeconds",
      { metadata: { deletionTimestamp: "2025-01-01T00:00:10Z", deletionGracePeriodSeconds: 10 }, spec: { terminationGracePeriodSeconds: 120 } },
      undefined,
      10_000,
    ],
    [
      "deletionGracePeriodSeconds left over without a deletionTimestamp is ignored",
      { metadata: { deletionGracePeriodSeconds: 10 }, spec: { terminationGracePeriodSeconds: 120 } },
      undefined,
      120_000,
    ],
    ["--shutdown-timeout overrides the Pod", { metadata: { deletionTimestamp: "2025-01-01T00:00:10Z", deletionGracePeriodSeconds: 10 } }, 5_000, 5_000],
    ["--shutdown-timeout without a Pod", undefined, 1_500, 1_500],
  ];
  for (const [name, pod, timeoutMs, expected] of cases) {
    test(name, () => assert.equal(shutdownBudgetMs(pod, timeoutMs), expected));
  }
});

describe("selectProcesses", () => {
  const own: OwnProcesses = { pid: 40, ppid: 0, childPid: 41 };
  const ps = (...entries: [number, string, boolean?][]): ProcessInfo[] => entries.map(([pid, name, fromComm = false]) => ({ pid, name, fromComm }));
  const shared = ps([1, "pause", true], [7, "envoy"], [8, "pilot-agent"], [9, "envoy"], [40, "node"], [41, "program"]);
  interface Case {
    name: string;
    processes: ProcessInfo[];
    kill?: string[];
    killAll?: boolean;
    own?: OwnProcesses;
    expected: { targets: number[]; unmatched?: string[]; sidecarsVisible?: boolean };
  }
  const cases: Case[] = [
    { name: "--kill NAME picks every process of that name", processes: shared, kill: ["envoy"], expected: { targets: [7, 9] } },
    {
      name: "--kill NAME that matches nothing is reported",
      processes: shared,
      kill: ["envoy", "cloud-sql-proxy"],
      expected: { targets: [7, 9], unmatched: ["cloud-sql-proxy"] },
    },
    { name: "--kill-all picks all but proa, its child and pause", processes: shared, killAll: true, expected: { targets: [7, 8, 9] } },
    {
      name: "--kill never picks proa itself or its child, even by name",
      processes: shared,
      kill: ["node", "program"],
      expected: { targets: [], unmatched: ["node", "program"] },
    },
    {
      name: "--kill-all spares proa's parent (tini, a shell)",
      processes: ps([1, "tini"], [5, "sh"], [40, "node"], [50, "envoy"]),
      killAll: true,
      own: { pid: 40, ppid: 5 },
      expected: { targets: [1, 50] },
    },
    { name: "--kill-all signals a PID 1 that is not pause", processes: ps([1, "sleep"], [40, "node"]), killAll: true, expected: { targets: [1] } },
    {
      name: "a name from comm, which the kernel truncates, matches the first 15 characters",
      processes: ps([1, "pause"], [7, "cloud-sql-proxy", true], [8, "a-very-long-sid", true]),
      kill: ["a-very-long-sidecar"],
      expected: { targets: [8] },
    },
    {
      name: "a name from the executable must match in full",
      processes: ps([1, "pause"], [7, "a-very-long-sid"]),
      kill: ["a-very-long-sidecar"],
      expected: { targets: [], unmatched: ["a-very-long-sidecar"] },
    },
    {
      name: "only pause and proa's own processes: the namespace is not shared",
      processes: ps([1, "pause"], [40, "node"], [41, "program"]),
      kill: ["envoy"],
      killAll: true,
      expected: { targets: [], unmatched: ["envoy"], sidecarsVisible: false },
    },
    {
      name: "proa is PID 1: its own namespace, not shared",
      processes: ps([1, "node"], [12, "daemon"]),
      killAll: true,
      own: { pid: 1, ppid: 0 },
      expected: { targets: [12], sidecarsVisible: false },
    },
  ];
  for (const { name, processes, kill = [], killAll = false, own: self = own, expected } of cases) {
    test(name, () => {
      const selection = selectProcesses(processes, kill, killAll, self);
      const targets = selection.targets.map(({ pid }) => pid);
      assert.deepEqual({ ...selection, targets }, { unmatched: [], sidecarsVisible: true, ...expected });
    });
  }
});

describe("readProcesses", () => {
  test("names each process after its executable, falls back to comm when exe is unreadable, and skips vanished ones", () => {
    const proc = mkdtempSync(join(tmpdir(), "proa-proc-"));
    try {
      const add = (pid: string, files: { exe?: string; comm?: string }) => {
        mkdirSync(join(proc, pid));
        if (files.exe) symlinkSync(files.exe, join(proc, pid, "exe"));
        if (files.comm) writeFileSync(join(proc, pid, "comm"), `${files.comm}\n`);
      };
      add("1", { comm: "pause" }); // another user's process: no readable exe
      add("7", { exe: "/usr/local/bin/envoy", comm: "envoy" });
      add("8", {}); // exited while being read
      add("self", { exe: "/usr/bin/node" });
      mkdirSync(join(proc, "sys"));
      const processes = readProcesses(proc).sort((a, b) => a.pid - b.pid);
      assert.deepEqual(processes, [
        { pid: 1, name: "pause", fromComm: true },
        { pid: 7, name: "envoy", fromComm: false },
      ]);
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });

  test("reads the real /proc: this test's own process is there, named after node's executable", () => {
    const self = readProcesses().find(({ pid }) => pid === process.pid);
    assert.deepEqual(self, { pid: process.pid, name: basename(process.execPath), fromComm: false });
  });
});
