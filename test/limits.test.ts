// Every limit README.md and SECURITY.md promise, in one place: each is read from the one exported constant the docs
// name, its real value is pinned once (a test that only derives from the constant cannot see it change), and the
// built bundle is run against it as a black box at that value.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, describe, test } from "node:test";
import { DEFAULT_MAX_BODY_BYTES, httpRequest } from "../http.ts";
import { defaultTiming, MAX_JSON_CONTAINERS, MAX_JSON_DEPTH, MAX_LINE_BYTES, type Pod } from "../kube.ts";
import { REPEAT_WINDOW_MS } from "../log.ts";
import { HELP, parseCommandLine } from "../proa.ts";
import { defaultReadyUrlTiming } from "../readyurl.ts";
import {
  BEFORE_KUBELET_KILL_MS,
  DEFAULT_TIMING,
  gracePeriodMs,
  MAX_ANSWER_BYTES,
  shutdownDeadline,
} from "../shutdown.ts";
import { MAX_MESSAGE_BYTES } from "../summary.ts";
import { podWith, startFakeApiServer, watchEvent, type FakeApiServer } from "./fake-apiserver.ts";
import { sendEndless500 } from "./helpers/endless-body.ts";
import { startProa, type ProaProcess } from "./helpers/proa-process.ts";

const NODE = process.execPath;
const scratch = mkdtempSync(join(tmpdir(), "proa-limits-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

// Everything a test starts, stopped after it whether it passed or not.
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
function run(args: string[], env: Record<string, string>): ProaProcess {
  const proa = startProa(args, env);
  cleanups.push(() => proa.child.kill("SIGKILL"));
  return proa;
}
async function apiServer(pod: Pod | null = podWith({ sidecars: ["sidecar-1"], ready: true })): Promise<FakeApiServer> {
  const api = await startFakeApiServer({ pod });
  cleanups.push(() => api.close());
  return api;
}
async function listen<T extends Server | import("node:net").Server>(server: T): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as { port: number }).port;
}
const exited = podWith({ sidecars: ["sidecar-1"], terminated: { "sidecar-1": { exitCode: 0 } } });

describe("the real values", () => {
  test("a sidecar's answer is read to 4 KiB, as README and SECURITY.md promise", () => {
    assert.equal(MAX_ANSWER_BYTES, 4096);
    assert.equal(DEFAULT_MAX_BODY_BYTES, 4096);
  });

  test("the termination message is at most 4096 bytes, because the kubelet keeps 4096 bytes of it", () => {
    assert.equal(MAX_MESSAGE_BYTES, 4096);
  });

  test("the API server's list answer and each watch line are capped at 2 MiB, above etcd's 1.5 MiB for any object", () => {
    assert.equal(MAX_LINE_BYTES, 2 * 1024 * 1024);
  });

  test("an answer may nest 100 levels and hold 100,000 arrays and objects, checked before it is parsed", () => {
    assert.equal(MAX_JSON_DEPTH, 100);
    assert.equal(MAX_JSON_CONTAINERS, 100_000);
  });
});

describe("the durations README and SECURITY.md give", () => {
  test("the API: backoff capped at 30 s, a watch shorter than 2 s is an error, reminders every 30 s, 401/403/no Pod given up after 5 minutes", () => {
    assert.equal(defaultTiming.backoffMaxMs, 30_000);
    assert.equal(defaultTiming.minWatchMs, 2000);
    assert.equal(defaultTiming.reminderMs, 30_000);
    assert.equal(defaultTiming.giveUpMs, 5 * 60_000);
  });

  test("a list not complete within 60 s is abandoned and sent again", () => {
    assert.equal(defaultTiming.listTimeoutMs, 60_000);
  });

  test("a warning a loop repeats is written once, then counted in one line per 30 s at most", () => {
    assert.equal(REPEAT_WINDOW_MS, 30_000);
    assert.equal(defaultTiming.repeatWindowMs, REPEAT_WINDOW_MS);
  });

  test("--ready-url: each URL polled every 50 ms, each request limited to 1 s, reminders every 30 s, a Retry-After honoured up to 30 s", () => {
    assert.deepEqual(defaultReadyUrlTiming, {
      pollMs: 50,
      requestTimeoutMs: 1000,
      reminderMs: 30_000,
      retryAfterMaxMs: 30_000,
    });
  });

  test("each shutdown request: 5 s unless --shutdown-request-timeout says otherwise, in the help too, and at least 1 s of what the budget leaves", () => {
    const parsed = parseCommandLine(["--", "true"], {});
    assert.equal(parsed.kind === "run" && parsed.options.shutdown.requestTimeoutMs, 5000);
    assert.match(HELP, /timeout of each shutdown request \(default: 5s\)/);
    assert.equal(DEFAULT_TIMING.minRequestMs, 1000);
  });

  test("the shutdown budget: the grace period, else 30 s; after SIGTERM, it ends 1 s before the kubelet's kill", () => {
    assert.equal(gracePeriodMs(undefined), 30_000);
    assert.match(HELP, /default: the Pod's grace period, else 30s/);
    assert.equal(BEFORE_KUBELET_KILL_MS, 1000);
    assert.equal(shutdownDeadline(0, undefined, undefined, 0), 29_000);
  });
});

describe("each limit, in the built bundle", () => {
  test("an endless shutdown answer is read to at most MAX_ANSWER_BYTES, then the connection is closed", async () => {
    const api = await apiServer();
    const sockets: Socket[] = [];
    const sidecar = createTcpServer((socket) => {
      sockets.push(socket);
      socket.on("error", () => {}); // proa resets the connection it stopped reading: that is the point
      socket.once("data", () => {
        api.setPod(exited);
        sendEndless500(socket);
      });
    });
    const port = await listen(sidecar);
    const proa = run(
      ["-g", `http://127.0.0.1:${port}/quitquitquit`, "--shutdown-request-timeout", "2s", "--", NODE, "-e", "0"],
      { ...api.env(), PROA_CONTAINER: "main" },
    );
    assert.equal((await proa.exit).code, 0, proa.stderr());
    const answer = proa.logs.find((record) => record.msg.startsWith("sidecar shutdown request answered 500"));
    assert.ok(answer, proa.stderr());
    assert.ok(String(answer.body).length <= MAX_ANSWER_BYTES, `${String(answer.body).length} characters quoted`);
    // What the sidecar managed to write is what proa read plus what the loopback's socket buffers held (a few MiB);
    // reading the endless body until the 2 s timeout would be hundreds of MiB.
    assert.equal(sockets.length, 1);
    assert.ok(sockets[0]!.bytesWritten < 16 * 1024 * 1024, `${sockets[0]!.bytesWritten} bytes written`);
    assert.ok(sockets[0]!.destroyed || sockets[0]!.closed, "proa closed the connection");
  });

  test("http.ts reads DEFAULT_MAX_BODY_BYTES of a longer body when the caller gives no limit", async () => {
    const server = createServer((_request, response) => response.end("x".repeat(4 * DEFAULT_MAX_BODY_BYTES)));
    const port = await listen(server);
    const answer = await httpRequest({
      method: "GET",
      url: new URL(`http://127.0.0.1:${port}/`),
      timeoutMs: 5000,
      userAgent: "limits-test",
    });
    assert.equal(answer.body.length, DEFAULT_MAX_BODY_BYTES);
  });

  /** A list answer of exactly `bytes` bytes holding the fake server's Pod, padded with an annotation. */
  function listOf(api: FakeApiServer, bytes: number): object {
    const pod = api.pod()! as Pod & { metadata: { annotations?: Record<string, string> } };
    const list = (padding: string) => ({
      kind: "PodList",
      apiVersion: "v1",
      metadata: { resourceVersion: pod.metadata!.resourceVersion },
      items: [{ ...pod, metadata: { ...pod.metadata, annotations: { ...pod.metadata.annotations, padding } } }],
    });
    const list0 = list("");
    const padded = list("x".repeat(bytes - Buffer.byteLength(JSON.stringify(list0))));
    assert.equal(Buffer.byteLength(JSON.stringify(padded)), bytes);
    return padded;
  }

  // The Pod's sidecar exits at once (its shutdown step is not what is tested here), so proa exits on its own.
  const listRequests = (api: FakeApiServer) =>
    api.requests.filter((request) => !request.url.includes("watch=1")).length;

  test("a list answer of exactly MAX_LINE_BYTES is accepted: the program runs after one list", async () => {
    const api = await apiServer();
    api.fail({ on: "list", status: 200, body: listOf(api, MAX_LINE_BYTES) });
    const proa = run(["--shutdown-timeout", "100ms", "--", NODE, "-e", "0"], { ...api.env(), PROA_CONTAINER: "main" });
    await proa.waitForLog((record) => record.msg === "the other containers are ready");
    assert.equal(listRequests(api), 1);
    assert.equal((await proa.exit).code, 0, proa.stderr());
    assert.ok(!proa.logs.some((record) => /longer than/.test(record.msg)), proa.stderr());
  });

  test("a list answer one byte over MAX_LINE_BYTES is refused, and the next list is used", async () => {
    const api = await apiServer();
    api.fail({ on: "list", status: 200, body: listOf(api, MAX_LINE_BYTES + 1) });
    const proa = run(["--shutdown-timeout", "100ms", "--", NODE, "-e", "0"], { ...api.env(), PROA_CONTAINER: "main" });
    const refused = await proa.waitForLog((record) => /longer than/.test(record.msg));
    assert.match(refused.msg, new RegExp(`^listing Pod .* failed: the answer is longer than ${MAX_LINE_BYTES} bytes$`));
    await proa.waitForLog((record) => record.msg === "the other containers are ready");
    assert.equal(listRequests(api), 2);
    assert.equal((await proa.exit).code, 0, proa.stderr());
  });

  /** The fake server's list with a spare field in its Pod's spec, for the nesting and counting limits. */
  function listWithSpare(api: FakeApiServer, spare: unknown): object {
    const pod = api.pod()!;
    return {
      kind: "PodList",
      apiVersion: "v1",
      metadata: { resourceVersion: pod.metadata!.resourceVersion },
      items: [{ ...pod, spec: { ...pod.spec, spare } }],
    };
  }
  const depthOf = (value: unknown): number =>
    typeof value === "object" && value !== null ? 1 + Math.max(0, ...Object.values(value).map(depthOf)) : 0;
  const containersIn = (value: unknown): number =>
    typeof value === "object" && value !== null
      ? 1 + Object.values(value).reduce((sum: number, inner) => sum + containersIn(inner), 0)
      : 0;
  /** Arrays nested `levels` deep. */
  const nested = (levels: number): unknown => (levels === 0 ? 0 : [nested(levels - 1)]);

  test("a list answer nested exactly MAX_JSON_DEPTH deep is accepted; one level deeper is refused unparsed, and the next list is used", async () => {
    const api = await apiServer();
    const spareAt = 4; // inside the list, its items, the Pod and its spec
    const atLimit = listWithSpare(api, nested(MAX_JSON_DEPTH - spareAt));
    assert.equal(depthOf(atLimit), MAX_JSON_DEPTH);
    const over = listWithSpare(api, nested(MAX_JSON_DEPTH - spareAt + 1));
    api.fail({ on: "list", status: 200, body: over }, { on: "list", status: 200, body: atLimit });
    const proa = run(["--shutdown-timeout", "100ms", "--", NODE, "-e", "0"], { ...api.env(), PROA_CONTAINER: "main" });
    const refused = await proa.waitForLog((record) => /deeper than/.test(record.msg));
    assert.match(
      refused.msg,
      new RegExp(`^listing Pod .* failed: the answer nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels$`),
    );
    await proa.waitForLog((record) => record.msg === "the other containers are ready");
    assert.equal(listRequests(api), 2);
    assert.equal((await proa.exit).code, 0, proa.stderr());
  });

  test("a list answer of exactly MAX_JSON_CONTAINERS arrays and objects is accepted; one more is refused unparsed, and the next list is used", async () => {
    const api = await apiServer();
    const atLimit = listWithSpare(
      api,
      Array.from({ length: MAX_JSON_CONTAINERS - containersIn(listWithSpare(api, [])) }, () => ({})),
    );
    assert.equal(containersIn(atLimit), MAX_JSON_CONTAINERS);
    const over = listWithSpare(
      api,
      Array.from({ length: MAX_JSON_CONTAINERS - containersIn(listWithSpare(api, [])) + 1 }, () => ({})),
    );
    api.fail({ on: "list", status: 200, body: over }, { on: "list", status: 200, body: atLimit });
    const proa = run(["--shutdown-timeout", "100ms", "--", NODE, "-e", "0"], { ...api.env(), PROA_CONTAINER: "main" });
    const refused = await proa.waitForLog((record) => /arrays and objects/.test(record.msg));
    assert.match(refused.msg, /^listing Pod .* failed: the answer holds more than 100,000 arrays and objects$/);
    await proa.waitForLog((record) => record.msg === "the other containers are ready");
    assert.equal(listRequests(api), 2);
    assert.equal((await proa.exit).code, 0, proa.stderr());
  });

  /** A watch line (newline excluded) of exactly `bytes` bytes: the fake server's Pod turned ready, at a newer
   * resourceVersion, padded with an annotation. */
  function readyEventOf(api: FakeApiServer, bytes: number): string {
    const ready = podWith({ sidecars: ["sidecar-1"], ready: true }) as Pod & {
      metadata: { annotations?: Record<string, string> };
    };
    const event = (padding: string) =>
      watchEvent("MODIFIED", {
        ...ready,
        metadata: {
          ...ready.metadata,
          resourceVersion: String(Number(api.pod()!.metadata!.resourceVersion) + 1),
          annotations: { padding },
        },
      });
    const line = event("x".repeat(bytes - (Buffer.byteLength(event("")) - 1)));
    assert.equal(Buffer.byteLength(line) - 1, bytes);
    return line;
  }

  test("a watch line of exactly MAX_LINE_BYTES is accepted: the Pod it holds turns ready", async () => {
    const api = await apiServer(podWith({ sidecars: ["sidecar-1"], ready: false }));
    api.fail({ on: "watch", chunks: [readyEventOf(api, MAX_LINE_BYTES)], end: "stall" });
    const proa = run(["--shutdown-timeout", "100ms", "--", NODE, "-e", "0"], { ...api.env(), PROA_CONTAINER: "main" });
    await proa.waitForLog((record) => record.msg === "the other containers are ready");
    assert.equal(api.requests.filter((request) => request.url.includes("watch=1")).length, 1);
    assert.equal((await proa.exit).code, 0, proa.stderr());
    assert.ok(!proa.logs.some((record) => /longer than/.test(record.msg)), proa.stderr());
  });

  test("a watch line one byte over MAX_LINE_BYTES is refused, and the watch is opened again", async () => {
    const api = await apiServer(podWith({ sidecars: ["sidecar-1"], ready: false }));
    api.fail({ on: "watch", chunks: [readyEventOf(api, MAX_LINE_BYTES + 1)], end: "stall" });
    const proa = run(["--shutdown-timeout", "100ms", "--", NODE, "-e", "0"], { ...api.env(), PROA_CONTAINER: "main" });
    const refused = await proa.waitForLog((record) => /longer than/.test(record.msg));
    assert.match(
      refused.msg,
      new RegExp(`^watching Pod .* failed: .*the API server sent a line longer than ${MAX_LINE_BYTES} bytes$`),
    );
    assert.ok(
      !proa.logs.some((record) => record.msg === "the other containers are ready"),
      "the refused line's Pod was not used",
    );
    api.setPod(podWith({ sidecars: ["sidecar-1"], ready: true }));
    await proa.waitForLog((record) => record.msg === "the other containers are ready");
    assert.equal((await proa.exit).code, 0, proa.stderr());
  });

  test("a watch streaming thousands of events about another Pod writes one warning and one count, not a line per event", async () => {
    const api = await apiServer(podWith({ sidecars: ["sidecar-1"], ready: false }));
    const ours = api.pod()!;
    const other = { ...ours, metadata: { ...ours.metadata, name: "someone-else" } };
    const events = Array.from({ length: 5000 }, (_, i) =>
      watchEvent("MODIFIED", { ...other, metadata: { ...other.metadata, resourceVersion: String(2000 + i) } }),
    );
    const ready = podWith({ sidecars: ["sidecar-1"], ready: true });
    const readyEvent = watchEvent("MODIFIED", { ...ready, metadata: { ...ours.metadata, resourceVersion: "9000" } });
    const chunks = Array.from({ length: 10 }, (_, i) => events.slice(i * 500, (i + 1) * 500).join(""));
    api.fail({ on: "watch", chunks: [...chunks, readyEvent], end: "stall" });
    const proa = run(["--shutdown-timeout", "100ms", "--", NODE, "-e", "0"], { ...api.env(), PROA_CONTAINER: "main" });
    await proa.waitForLog((record) => record.msg === "the other containers are ready");
    const count = await proa.waitForLog((record) => record.msg.startsWith("ignored "));
    assert.match(count.msg, /^ignored 4,999 events about another Pod in the last \d+ s$/);
    assert.equal(proa.logs.filter((record) => /someone-else/.test(record.msg)).length, 1, proa.stderr());
    assert.equal((await proa.exit).code, 0, proa.stderr());
    assert.ok(Buffer.byteLength(proa.stderr()) < 8192, `${Buffer.byteLength(proa.stderr())} bytes of log`);
  });

  /** A termination log holding `content`, and a fake Pod whose container "main" names it. */
  async function podWithTerminationLog(content: string) {
    const path = join(scratch, `termination-log-${Math.random().toString(36).slice(2)}`);
    writeFileSync(path, content);
    const withPath = (pod: Pod) => {
      Object.assign(pod.spec!.containers![0]!, { terminationMessagePath: path, terminationMessagePolicy: "File" });
      return pod;
    };
    const api = await apiServer(withPath(podWith({ sidecars: ["sidecar-1"], ready: true })));
    return {
      api,
      path,
      exit: () =>
        api.setPod(withPath(podWith({ sidecars: ["sidecar-1"], terminated: { "sidecar-1": { exitCode: 0 } } }))),
    };
  }

  test("a summary longer than MAX_MESSAGE_BYTES is written cut at a line, within MAX_MESSAGE_BYTES; the log line has it all", async () => {
    const { api, path, exit } = await podWithTerminationLog("");
    const sidecar = createServer((_request, response) => {
      exit();
      response.end("bye");
    });
    const port = await listen(sidecar);
    // 40 requests of some 140 characters each: about 5,600 bytes of message before the cut.
    const urls = Array.from(
      { length: 40 },
      (_, i) => `http://127.0.0.1:${port}/${String(i).padStart(2, "0")}/${"p".repeat(100)}`,
    );
    const proa = run([...urls.flatMap((url) => ["-g", url]), "--", NODE, "-e", "0"], {
      ...api.env(),
      PROA_CONTAINER: "main",
    });
    assert.equal((await proa.exit).code, 0, proa.stderr());
    const message = readFileSync(path);
    assert.ok(message.length <= MAX_MESSAGE_BYTES, `${message.length} bytes`);
    assert.ok(
      message.length > MAX_MESSAGE_BYTES - 200,
      `${message.length} bytes: cut at the last line that fits, not sooner`,
    );
    assert.ok(!message.toString().includes(urls.at(-1)!), "the last request did not fit");
    const summary = proa.logs.find((record) => record.msg === "summary") as
      { shutdown: { requests: unknown[] } } | undefined;
    assert.equal(summary?.shutdown.requests.length, urls.length);
  });

  test("a termination message file holding one byte is not empty: it is left as it is", async () => {
    const { api, path, exit } = await podWithTerminationLog("x");
    const sidecar = createServer((_request, response) => {
      exit();
      response.end("bye");
    });
    const port = await listen(sidecar);
    const proa = run(["-g", `http://127.0.0.1:${port}/quitquitquit`, "--", NODE, "-e", "0"], {
      ...api.env(),
      PROA_CONTAINER: "main",
    });
    assert.equal((await proa.exit).code, 0, proa.stderr());
    assert.equal(readFileSync(path, "utf8"), "x");
    assert.ok(
      proa.logs.some((record) => /the program wrote its own/.test(record.msg)),
      proa.stderr(),
    );
  });
});
