// kube.ts's pure parts: configuration, framing, the watch's step function, own-container detection, readiness.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  apiServer,
  backoffMs,
  beyondJsonLimits,
  checkPod,
  containerFromMountinfo,
  containerIdFromCgroup,
  defaultTiming,
  KubeError,
  lineSplitter,
  loadCluster,
  MAX_JSON_CONTAINERS,
  MAX_JSON_DEPTH,
  nextWatchState,
  nodeEnvironmentWarnings,
  ownContainerName,
  parseWatchEvent,
  restartPolicyOf,
  readiness,
  runningContainers,
  type Pod,
  type PodName,
  type Timing,
  type WatchOutcome,
  type WatchState,
} from "../kube.ts";
import { retryAfter } from "../http.ts";
import { podWith } from "./fake-apiserver.ts";
import { capturedPod, capturedStream, withNativeSidecar, withRestartPolicy } from "./fixtures/pods.ts";

describe("in-cluster configuration", () => {
  test("apiServer keeps an IPv4 host and port as they are", () => {
    assert.deepEqual(apiServer("10.96.0.1", "443"), { host: "10.96.0.1", port: 443, server: "https://10.96.0.1:443" });
  });

  test("apiServer brackets an IPv6 host in the URL only, whether or not it came with brackets", () => {
    const expected = { host: "fd00:10:96::1", port: 443, server: "https://[fd00:10:96::1]:443" };
    assert.deepEqual(apiServer("fd00:10:96::1", "443"), expected);
    assert.deepEqual(apiServer("[fd00:10:96::1]", "443"), expected);
  });

  test("apiServer rejects a port that is not a number", () => {
    assert.throws(() => apiServer("10.96.0.1", "https"), /KUBERNETES_SERVICE_PORT is not a port number: https/);
  });

  const dir = mkdtempSync(join(tmpdir(), "proa-kube-test-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const serviceAccount = (files: Record<string, string>) => {
    const sa = mkdtempSync(join(dir, "sa-"));
    for (const [name, content] of Object.entries(files)) writeFileSync(join(sa, name), content);
    return sa;
  };
  const env = (sa: string, more: Record<string, string> = {}) => ({
    KUBERNETES_SERVICE_HOST: "10.96.0.1",
    KUBERNETES_SERVICE_PORT: "443",
    PROA_SERVICE_ACCOUNT_DIR: sa,
    ...more,
  });

  test("loadCluster reads the namespace file, takes the Pod name from the hostname, and re-reads the token from its path", () => {
    const sa = serviceAccount({ token: "t", "ca.crt": "not parsed until the first request", namespace: "jobs\n" });
    const cluster = loadCluster(env(sa), "proa/1.2.3");
    assert.equal(cluster.namespace, "jobs");
    assert.equal(cluster.podName, hostname().split(".")[0]);
    assert.equal(cluster.tokenFile, join(sa, "token"));
    assert.equal(cluster.userAgent, "proa/1.2.3");
    assert.equal(cluster.server, "https://10.96.0.1:443");
  });

  test("loadCluster prefers POD_NAME and POD_NAMESPACE, and then needs no namespace file", () => {
    const sa = serviceAccount({ token: "t", "ca.crt": "x" });
    const cluster = loadCluster(env(sa, { POD_NAME: "job-x", POD_NAMESPACE: "ns" }), "proa/1");
    assert.equal(cluster.podName, "job-x");
    assert.equal(cluster.namespace, "ns");
  });

  test("loadCluster refuses a POD_NAME or POD_NAMESPACE that Kubernetes would not accept as a name, before any request", () => {
    const sa = serviceAccount({ token: "t", "ca.crt": "x", namespace: "jobs" });
    for (const [variable, value] of <[string, string][]>[
      ["POD_NAMESPACE", ".."],
      ["POD_NAMESPACE", "a/b"],
      ["POD_NAMESPACE", "a.b"],
      ["POD_NAMESPACE", "x".repeat(64)],
      ["POD_NAME", "p/../x"],
      ["POD_NAME", "P"],
      ["POD_NAME", "p?watch=1"],
      ["POD_NAME", `${"a".repeat(250)}.bcd`],
    ]) {
      assert.throws(
        () => loadCluster(env(sa, { POD_NAME: "p", [variable]: value }), "proa/1"),
        new RegExp(
          `^Error: ${variable} is not a (namespace|Pod name) .*set POD_NAME and POD_NAMESPACE with the downward API`,
        ),
        `${variable}=${value}`,
      );
    }
    const longest = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`;
    assert.equal(loadCluster(env(sa, { POD_NAME: longest, POD_NAMESPACE: "x".repeat(63) }), "proa/1").podName, longest);
    assert.equal(loadCluster(env(sa, { POD_NAME: "job-x-1.a" }), "proa/1").podName, "job-x-1.a");
  });

  test("loadCluster's agent verifies certificates whatever NODE_TLS_REJECT_UNAUTHORIZED says", () => {
    const sa = serviceAccount({ token: "t", "ca.crt": "x", namespace: "jobs" });
    assert.equal(loadCluster(env(sa, { POD_NAME: "p" }), "proa/1").agent.options.rejectUnauthorized, true);
  });

  test("the variables through which Node.js acts on proa are each named in one warning", () => {
    assert.deepEqual(nodeEnvironmentWarnings({ PATH: "/bin" }), []);
    const warnings = nodeEnvironmentWarnings({
      NODE_TLS_REJECT_UNAUTHORIZED: "0",
      NODE_OPTIONS: "--require /x.js",
      NODE_DEBUG: "http",
    });
    assert.equal(warnings.length, 3);
    assert.match(warnings[0] ?? "", /^NODE_TLS_REJECT_UNAUTHORIZED is set: proa ignores it/);
    assert.match(warnings[1] ?? "", /^NODE_OPTIONS is set/);
    assert.match(warnings[2] ?? "", /^NODE_DEBUG is set/);
    assert.ok(!warnings.join().includes("/x.js"), "values are not quoted: they may hold anything");
  });

  test("loadCluster without the service variables says that proa must run in a Pod", () => {
    assert.throws(() => loadCluster({}, "proa/1"), /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set/);
  });

  test("loadCluster without a token or CA file names automountServiceAccountToken", () => {
    assert.throws(
      () => loadCluster(env(serviceAccount({ "ca.crt": "x", namespace: "n" })), "proa/1"),
      /service account token .*automountServiceAccountToken: true/,
    );
    assert.throws(
      () => loadCluster(env(serviceAccount({ token: "t", namespace: "n" })), "proa/1"),
      /service account ca\.crt .*automountServiceAccountToken: true/,
    );
  });

  test("loadCluster without a namespace file or POD_NAMESPACE shows the downward API snippet", () => {
    assert.throws(
      () => loadCluster(env(serviceAccount({ token: "t", "ca.crt": "x" })), "proa/1"),
      /POD_NAMESPACE with the downward API: env: \[\{name: POD_NAME, valueFrom: \{fieldRef: \{fieldPath: metadata\.name\}\}\}/,
    );
  });
});

describe("line splitting", () => {
  const bytes = (text: string) => Buffer.from(text, "utf8");
  const splitAll = (chunks: Buffer[], max?: number) => {
    const splitter = lineSplitter(max);
    return { lines: chunks.flatMap((chunk) => splitter.push(chunk)), pendingBytes: splitter.pendingBytes() };
  };

  test("several lines in one chunk come out in order", () => {
    assert.deepEqual(splitAll([bytes('{"a":1}\n{"b":2}\n{"c":3}\n')]), {
      lines: ['{"a":1}', '{"b":2}', '{"c":3}'],
      pendingBytes: 0,
    });
  });

  test("one line across many chunks comes out once, when its newline arrives", () => {
    assert.deepEqual(splitAll([bytes('{"a":'), bytes("12"), bytes("34}"), bytes("\n")]), {
      lines: ['{"a":1234}'],
      pendingBytes: 0,
    });
  });

  test("multi-byte characters split byte by byte across chunks are decoded intact", () => {
    const text = '{"note":"café 日本 🚀 ü"}\n{"x":"ß"}\n';
    const chunks = [...bytes(text)].map((byte) => Buffer.from([byte]));
    assert.deepEqual(splitAll(chunks).lines, ['{"note":"café 日本 🚀 ü"}', '{"x":"ß"}']);
  });

  test("a partial last line stays pending (the caller treats it as a cut stream)", () => {
    assert.deepEqual(splitAll([bytes('{"a":1}\n{"b"')]), { lines: ['{"a":1}'], pendingBytes: 4 });
  });

  test("any chunking of the same bytes gives the same lines", () => {
    const events = Array.from({ length: 50 }, (_, i) =>
      JSON.stringify({ type: "MODIFIED", object: { i, text: "é€😀".repeat(i) } }),
    );
    const all = bytes(events.map((e) => `${e}\n`).join(""));
    for (let seed = 1; seed <= 20; seed++) {
      const chunks: Buffer[] = [];
      for (let at = 0, size = seed; at < all.length; at += size, size = ((size * 7919) % 97) + 1)
        chunks.push(all.subarray(at, at + size));
      assert.deepEqual(splitAll(chunks).lines, events);
    }
  });

  test("a line of exactly the cap is accepted, also while it waits for a newline that comes in a later chunk", () => {
    assert.deepEqual(splitAll([bytes("12345678"), bytes("\n")], 8), { lines: ["12345678"], pendingBytes: 0 });
    assert.deepEqual(splitAll([bytes("1234"), bytes("5678"), bytes("\nab")], 8), {
      lines: ["12345678"],
      pendingBytes: 2,
    });
    assert.deepEqual(splitAll([bytes("x\n12345678")], 8), { lines: ["x"], pendingBytes: 8 });
  });

  test("a line longer than the cap is an error, whether it arrives whole or in pieces", () => {
    assert.deepEqual(splitAll([bytes("12345678\n")], 8).lines, ["12345678"]);
    assert.throws(() => splitAll([bytes("123456789\n")], 8), /a line longer than 8 bytes/);
    assert.throws(() => splitAll([bytes("12345"), bytes("6789")], 8), /a line longer than 8 bytes/);
    assert.throws(() => splitAll([bytes("12345"), bytes("6789\n")], 8), /a line longer than 8 bytes/);
  });

  test("parseWatchEvent refuses a line that is not JSON or not a watch event, instead of skipping it", () => {
    assert.deepEqual(parseWatchEvent('{"type":"ADDED","object":{"metadata":{"resourceVersion":"5"}}}'), {
      type: "ADDED",
      object: { metadata: { resourceVersion: "5" } },
    });
    assert.throws(() => parseWatchEvent('{"type":"ADDED","object":'), /not JSON \(25 characters\)/);
    assert.throws(() => parseWatchEvent('{"kind":"Status"}'), /not a watch event/);
    assert.throws(() => parseWatchEvent('{"type":"SURPRISE","object":{}}'), /not a watch event: type "SURPRISE"/);
  });

  test("beyondJsonLimits counts the depth and the arrays and objects outside strings only, before anything is parsed", () => {
    const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
    assert.equal(beyondJsonLimits(nested(5), 5, 10), undefined);
    assert.equal(beyondJsonLimits(nested(6), 5, 10), "nests arrays and objects deeper than 5 levels");
    assert.equal(beyondJsonLimits(`[${"{},".repeat(9)}{}]`, 5, 10), "holds more than 10 arrays and objects");
    assert.equal(beyondJsonLimits(`[${"{},".repeat(8)}{}]`, 5, 10), undefined);
    // Brackets in strings are text, whatever escapes come before the closing quote.
    assert.equal(
      beyondJsonLimits(JSON.stringify({ a: "[[[[[[[[{{{{{{", b: '\\"[[[[[[[[[[', c: "\\" }), 2, 2),
      undefined,
    );
    assert.equal(
      beyondJsonLimits(JSON.stringify({ a: "\\" }) + "[[[", 2, 5),
      "nests arrays and objects deeper than 2 levels",
    );
    // Not JSON: left to JSON.parse, which says so.
    assert.equal(beyondJsonLimits('["unterminated [[[[[[', 2, 2), undefined);
  });

  test("parseWatchEvent refuses a line nested deeper than MAX_JSON_DEPTH or holding more than MAX_JSON_CONTAINERS arrays and objects", () => {
    // The event and its object are 2 levels and 2 objects.
    const deep = (levels: number) => `{"type":"ADDED","object":{"spare":${"[".repeat(levels)}${"]".repeat(levels)}}}`;
    assert.equal(parseWatchEvent(deep(MAX_JSON_DEPTH - 2)).type, "ADDED");
    assert.throws(
      () => parseWatchEvent(deep(MAX_JSON_DEPTH - 1)),
      new RegExp(`^Error: the watch sent a line that nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels$`),
    );
    const wide = (count: number) => `{"type":"ADDED","object":{"spare":[${Array(count).fill("{}").join(",")}]}}`;
    assert.equal(parseWatchEvent(wide(MAX_JSON_CONTAINERS - 3)).type, "ADDED");
    assert.throws(
      () => parseWatchEvent(wide(MAX_JSON_CONTAINERS - 2)),
      /^Error: the watch sent a line that holds more than 100,000 arrays and objects$/,
    );
  });

  test("parseWatchEvent checks the fields proa reads: a malformed Pod or Status is one clear error naming the field", () => {
    const line = (type: string, object: unknown) => JSON.stringify({ type, object });
    const notAPod = /^Error: the API server's answer was not a Pod: /;
    assert.throws(
      () => parseWatchEvent(line("MODIFIED", { status: { containerStatuses: 5 } })),
      /not a Pod: status\.containerStatuses is a number, not a list$/,
    );
    assert.throws(
      () => parseWatchEvent(line("ADDED", { status: { containerStatuses: [{ name: "a", ready: "yes" }] } })),
      /not a Pod: status\.containerStatuses\[0\]\.ready is a string, not a boolean$/,
    );
    assert.throws(
      () => parseWatchEvent(line("ADDED", { spec: { containers: [null] } })),
      /not a Pod: spec\.containers\[0\] is null$/,
    );
    assert.throws(
      () => parseWatchEvent(line("ADDED", { spec: { containers: [{ name: "A".repeat(1000) }] } })),
      /not a Pod: spec\.containers\[0\]\.name is not a container name: A{80}… \(920 more characters\)$/,
    );
    assert.throws(
      () => parseWatchEvent(line("DELETED", { metadata: [] })),
      /not a Pod: metadata is a list, not an object$/,
    );
    // Where proa writes its termination message: a path, never an object or a number handed to open().
    assert.throws(
      () => parseWatchEvent(line("ADDED", { spec: { containers: [{ name: "main", terminationMessagePath: 3 }] } })),
      /not a Pod: spec\.containers\[0\]\.terminationMessagePath is a number, not a string$/,
    );
    assert.throws(
      () => parseWatchEvent(line("ADDED", { spec: { containers: [{ name: "main", terminationMessagePolicy: {} }] } })),
      /not a Pod: spec\.containers\[0\]\.terminationMessagePolicy is a object, not a string$/,
    );
    assert.throws(() => parseWatchEvent(line("ADDED", [])), notAPod);
    assert.throws(
      () => parseWatchEvent(line("ERROR", { code: "410" })),
      /ERROR event that is not a Status: code is a string, not a number$/,
    );
    // As the API server sends them: null for empty fields, and bookmarks with hardly anything in them.
    for (const stream of ["watch-events.jsonl", "watch-expired.jsonl"]) {
      for (const text of capturedStream(stream).toString().trim().split("\n"))
        assert.doesNotThrow(() => parseWatchEvent(text));
    }
    assert.doesNotThrow(() =>
      parseWatchEvent(line("BOOKMARK", { metadata: { resourceVersion: "5" }, spec: { containers: null }, status: {} })),
    );
    for (const state of [
      "all-ready",
      "deleting",
      "init-done",
      "init-running",
      "onfailure-restarted",
      "sidecar-failed",
      "sidecars-not-ready",
      "sidecars-terminated",
      "succeeded",
      "waiting",
    ]) {
      assert.doesNotThrow(() => checkPod(capturedPod(state)), state);
    }
  });
});

describe("the watch's step function", () => {
  const timing: Timing = {
    ...defaultTiming,
    backoffBaseMs: 100,
    backoffMaxMs: 1000,
    giveUpMs: 60_000,
    minWatchMs: 1000,
    random: () => 1,
  };
  const want: PodName = { namespace: "ns", name: "p" };
  const pod = (resourceVersion: string, metadata: Pod["metadata"] = {}): Pod => ({
    metadata: { namespace: "ns", name: "p", uid: "u1", resourceVersion, ...metadata },
  });
  type Trouble = { since: number; error: string };
  const watching = (
    resourceVersion: string,
    more: Partial<{ failures: number; delivered: string; trouble: Trouble; uid: string }> = {},
  ): WatchState =>
    ({
      kind: "watching",
      resourceVersion,
      failures: 0,
      ...more,
    }) as WatchState;
  const listing = (more: Partial<{ failures: number; delivered: string; trouble: Trouble; uid: string }> = {}) =>
    ({ kind: "listing", failures: 0, ...more }) as WatchState;
  const error403 = (since: number): Trouble => ({ since, error: "HTTP 403" });
  const troubled = (since: number) => ({ since, error: new KubeError("HTTP 403", 403) });
  const failed = (status: number | undefined, at = 0, retryAfterMs?: number, lastedMs = 0): WatchOutcome => ({
    kind: "failed",
    error: new KubeError(`HTTP ${status}`, status, retryAfterMs),
    at,
    lastedMs,
  });
  const event = (type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK", object: Pod): WatchOutcome => ({
    kind: "event",
    event: { type, object },
  });
  const errorEvent = (code: number, reason: string): WatchOutcome => ({
    kind: "event",
    event: { type: "ERROR", object: { code, reason } },
  });
  const backingOff = (delayMs: number, then: object, failures: number, more: object = {}) =>
    ({ kind: "backingOff", delayMs, then, failures, ...more }) as WatchState;
  const listed = (items: Pod[], resourceVersion = "9"): WatchOutcome => ({ kind: "listed", items, resourceVersion });

  const cases: {
    name: string;
    state: WatchState;
    outcome: WatchOutcome;
    next: WatchState;
    deliver?: Pod | null;
    ignored?: RegExp;
  }[] = [
    {
      name: "a list delivers the Pod, keeps its uid, and watches from the list's resourceVersion",
      state: listing(),
      outcome: listed([pod("7")]),
      next: watching("9", { delivered: "7", uid: "u1" }),
      deliver: pod("7"),
    },
    {
      name: "an empty list delivers null",
      state: listing(),
      outcome: listed([]),
      next: watching("9", { delivered: "absent" }),
      deliver: null,
    },
    {
      name: "a relist that finds the Pod already delivered delivers nothing",
      state: listing({ failures: 1, delivered: "7", uid: "u1" }),
      outcome: listed([pod("7")], "12"),
      next: watching("12", { failures: 1, delivered: "7", uid: "u1" }),
    },
    {
      name: "a list of another Pod delivers null and says why",
      state: listing(),
      outcome: listed([pod("7", { name: "q" })]),
      next: watching("9", { delivered: "absent" }),
      deliver: null,
      ignored: /sent Pod ns\/q when asked for ns\/p: ignoring it/,
    },
    {
      name: "a list of a Pod in another namespace delivers null",
      state: listing(),
      outcome: listed([pod("7", { namespace: "other" })]),
      next: watching("9", { delivered: "absent" }),
      deliver: null,
      ignored: /sent Pod other\/p/,
    },
    {
      name: "a list of the same name with another uid delivers null: proa's Pod is gone",
      state: listing({ failures: 1, delivered: "7", uid: "u1" }),
      outcome: listed([pod("8", { uid: "u2" })]),
      next: watching("9", { failures: 1, delivered: "absent", uid: "u1" }),
      deliver: null,
      ignored: /another Pod named ns\/p \(uid u2, not u1\)/,
    },
    {
      name: "MODIFIED delivers the Pod and moves to its resourceVersion, keeping the failure count",
      state: watching("9", { failures: 2 }),
      outcome: event("MODIFIED", pod("10")),
      next: watching("10", { failures: 2, delivered: "10", uid: "u1" }),
      deliver: pod("10"),
    },
    {
      name: "MODIFIED of another Pod changes nothing and says why",
      state: watching("9", { uid: "u1" }),
      outcome: event("MODIFIED", pod("10", { name: "q" })),
      next: watching("9", { uid: "u1" }),
      ignored: /sent Pod ns\/q/,
    },
    {
      name: "MODIFIED of another uid changes nothing",
      state: watching("9", { uid: "u1" }),
      outcome: event("MODIFIED", pod("10", { uid: "u2" })),
      next: watching("9", { uid: "u1" }),
      ignored: /uid u2, not u1/,
    },
    {
      name: "DELETED delivers null",
      state: watching("9", { delivered: "8", uid: "u1" }),
      outcome: event("DELETED", pod("10")),
      next: watching("10", { delivered: "absent", uid: "u1" }),
      deliver: null,
    },
    {
      name: "DELETED of another uid changes nothing",
      state: watching("9", { delivered: "8", uid: "u1" }),
      outcome: event("DELETED", pod("10", { uid: "u2" })),
      next: watching("9", { delivered: "8", uid: "u1" }),
      ignored: /uid u2/,
    },
    {
      name: "a BOOKMARK only advances the resourceVersion",
      state: watching("9", { delivered: "8" }),
      outcome: event("BOOKMARK", { metadata: { resourceVersion: "15" } }),
      next: watching("15", { delivered: "8" }),
    },
    {
      name: "a clean end of a watch that lasted watches again at once from the same resourceVersion, without a list",
      state: watching("10", { failures: 3, delivered: "10" }),
      outcome: { kind: "ended", lines: 0, lastedMs: 1000 },
      next: watching("10", { delivered: "10" }),
    },
    {
      name: "a clean end of a short watch backs off, whatever it delivered",
      state: watching("10", { delivered: "10" }),
      outcome: { kind: "ended", lines: 3, lastedMs: 999 },
      next: backingOff(100, { kind: "watching", resourceVersion: "10" }, 1, { delivered: "10" }),
    },
    {
      name: "ERROR 410 Expired lists again at once",
      state: watching("10", { delivered: "10" }),
      outcome: errorEvent(410, "Expired"),
      next: listing({ failures: 1, delivered: "10" }),
    },
    {
      name: "ERROR 410 Gone lists again at once: the code decides, not the reason",
      state: watching("10"),
      outcome: errorEvent(410, "Gone"),
      next: listing({ failures: 1 }),
    },
    {
      name: "a 410 right after a relist backs off before listing again",
      state: watching("10", { failures: 1 }),
      outcome: errorEvent(410, "Expired"),
      next: backingOff(200, { kind: "listing" }, 2),
    },
    {
      name: "another ERROR event backs off, then lists",
      state: watching("10"),
      outcome: errorEvent(500, "InternalError"),
      next: backingOff(100, { kind: "listing" }, 1),
    },
    {
      name: "HTTP 410 on the watch lists again",
      state: watching("10"),
      outcome: failed(410),
      next: listing({ failures: 1 }),
    },
    {
      name: "a cut watch backs off, then watches from the same resourceVersion",
      state: watching("10", { failures: 2 }),
      outcome: failed(undefined),
      next: backingOff(400, { kind: "watching", resourceVersion: "10" }, 3),
    },
    {
      name: "a watch cut after it lasted starts a new streak",
      state: watching("10", { failures: 5 }),
      outcome: failed(undefined, 0, undefined, 1000),
      next: backingOff(100, { kind: "watching", resourceVersion: "10" }, 1),
    },
    {
      name: "a failed list backs off, then lists",
      state: listing(),
      outcome: failed(500),
      next: backingOff(100, { kind: "listing" }, 1),
    },
    {
      name: "Retry-After lengthens the delay",
      state: listing(),
      outcome: failed(429, 0, 700),
      next: backingOff(700, { kind: "listing" }, 1),
    },
    {
      name: "Retry-After never shortens the delay",
      state: listing({ failures: 3 }),
      outcome: failed(503, 0, 100),
      next: backingOff(800, { kind: "listing" }, 4),
    },
    {
      name: "Retry-After is capped at the maximum backoff",
      state: listing(),
      outcome: failed(503, 0, 3_600_000),
      next: backingOff(1000, { kind: "listing" }, 1),
    },
    {
      name: "the backoff is capped",
      state: listing({ failures: 30 }),
      outcome: failed(500),
      next: backingOff(1000, { kind: "listing" }, 31),
    },
    {
      name: "403 starts the give-up clock and backs off",
      state: listing(),
      outcome: failed(403, 5000),
      next: backingOff(100, { kind: "listing" }, 1, { trouble: error403(5000) }),
    },
    {
      name: "401 within the give-up time backs off, but never past the give-up moment",
      state: listing({ failures: 3, trouble: troubled(5000) as never }),
      outcome: failed(401, 64_900),
      next: backingOff(100, { kind: "listing" }, 4, { trouble: { since: 5000, error: "HTTP 401" } }),
    },
    {
      name: "another failure during a run of 403 keeps the give-up clock",
      state: listing({ failures: 1, trouble: troubled(5000) as never }),
      outcome: failed(500, 6000),
      next: backingOff(200, { kind: "listing" }, 2, { trouble: error403(5000) }),
    },
    {
      name: "a list succeeding clears the give-up clock",
      state: listing({ failures: 3, trouble: troubled(5000) as never }),
      outcome: listed([pod("1")], "2"),
      next: watching("2", { failures: 3, delivered: "1", uid: "u1" }),
      deliver: pod("1"),
    },
    {
      name: "the end of a backoff resumes what it interrupted",
      state: backingOff(5, { kind: "watching", resourceVersion: "10" }, 2, { delivered: "9" }),
      outcome: { kind: "waited", at: 0 },
      next: watching("10", { failures: 2, delivered: "9" }),
    },
    {
      name: "the end of a backoff during 403 resumes, keeping the give-up clock",
      state: backingOff(5, { kind: "listing" }, 2, { trouble: troubled(5000) }),
      outcome: { kind: "waited", at: 64_999 },
      next: listing({ failures: 2, trouble: error403(5000) }),
    },
  ];
  const plain = (state: WatchState) =>
    JSON.parse(JSON.stringify(state, (_, value) => (value instanceof Error ? value.message : value)));
  for (const c of cases) {
    test(c.name, () => {
      const step = nextWatchState(c.state, c.outcome, timing, want);
      assert.deepEqual(plain(step.state), c.next);
      assert.deepEqual(step.deliver, "deliver" in c ? { pod: c.deliver } : undefined);
      if (c.ignored) assert.match(step.ignored ?? "", c.ignored);
      else assert.equal(step.ignored, undefined);
    });
  }

  for (const [what, state, outcome] of [
    ["a 401 or 403", listing({ failures: 3, trouble: troubled(5000) as never }), failed(403, 65_000)],
    [
      "any failure during a run of 403",
      listing({ failures: 3, trouble: troubled(5000) as never }),
      failed(undefined, 65_000),
    ],
    [
      "the end of a backoff",
      backingOff(100, { kind: "listing" }, 3, { trouble: troubled(5000) }),
      { kind: "waited", at: 65_000 },
    ],
  ] as const) {
    test(`${what} at the give-up moment stops the watch with the server's message`, () => {
      const step = nextWatchState(state, outcome as WatchOutcome, timing, want);
      assert.equal(step.state.kind, "stopped");
      assert.match(step.state.kind === "stopped" ? step.state.error.message : "", /^giving up after 60 s: HTTP 403$/);
    });
  }

  test("a stopped watch stays stopped", () => {
    const stopped: WatchState = { kind: "stopped", error: new Error("x") };
    assert.equal(nextWatchState(stopped, { kind: "waited", at: 0 }, timing, want).state, stopped);
  });

  test("backoff doubles from base/2..base, with jitter, up to the cap", () => {
    const at = (random: number, failures: number) => backoffMs(failures, { ...timing, random: () => random });
    assert.deepEqual(
      [at(0, 0), at(1, 0), at(0, 1), at(1, 1), at(1, 3), at(0, 20), at(1, 20)],
      [50, 100, 100, 200, 800, 500, 1000],
    );
  });

  test("Retry-After counts only as a positive number of seconds, or an HTTP date still to come", () => {
    const now = Date.parse("Wed, 21 Oct 2026 07:28:00 GMT");
    const parse = (header: string | undefined) => retryAfter(header, now);
    assert.deepEqual(["1", " 30 ", "0", "", "-1", "1.5", "soon", undefined].map(parse), [
      1000,
      30_000,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    assert.deepEqual(
      [
        "Wed, 21 Oct 2026 07:28:02 GMT",
        "Wed, 21 Oct 2026 07:28:00 GMT",
        "Tue, 20 Oct 2026 07:28:00 GMT",
        "2026-10-21T07:28:05Z",
      ].map(parse),
      [2000, undefined, undefined, undefined],
    );
  });
});

describe("which container is proa's own", () => {
  const pod = capturedPod("all-ready"); // containers main, sidecar-1, sidecar-2
  const uid = pod.metadata?.uid as string;
  const idOf = (name: string) =>
    pod.status?.containerStatuses?.find((s) => s.name === name)?.containerID?.replace("containerd://", "") as string;
  // /proc/self/mountinfo of a container under containerd (the usual mounts, a few left out).
  const mountinfo = (
    name: string,
    podUid = uid,
  ) => `1489 1298 0:317 / / rw,relatime master:421 - overlay overlay rw,lowerdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/112/fs,upperdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/113/fs,workdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/113/work
1490 1489 0:320 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1491 1489 0:321 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
1495 1494 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw
1496 1489 254:1 /var/lib/kubelet/pods/${podUid}/etc-hosts /etc/hosts rw,relatime - ext4 /dev/vda1 rw
1497 1491 254:1 /var/lib/kubelet/pods/${podUid}/containers/${name}/6c1f0e2a /dev/termination-log rw,relatime - ext4 /dev/vda1 rw
1498 1489 254:1 /var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/3a7b9c0d1e2f/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw
1501 1489 0:314 / /var/run/secrets/kubernetes.io/serviceaccount ro,relatime - tmpfs tmpfs rw,size=7901800k
`;
  const cgroupV1 = (id: string) =>
    `12:pids:/kubepods/besteffort/pod${uid}/${id}\n11:memory:/kubepods/besteffort/pod${uid}/${id}\n0::/\n`;
  const cgroupSystemd = (id: string) =>
    `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid.replaceAll("-", "_")}.slice/cri-containerd-${id}.scope\n`;
  const fallback = "the Pod's first container, as the original proa did (set --container to choose)";

  test("--container wins over everything", () => {
    assert.deepEqual(ownContainerName(pod, { container: "sidecar-2", mountinfo: mountinfo("main") }), {
      name: "sidecar-2",
      rule: "--container",
    });
  });

  test("--container naming no container is an error that lists the Pod's containers", () => {
    assert.throws(
      () => ownContainerName(pod, { container: "mian" }),
      /--container mian: the Pod has no such container; its containers are: main, sidecar-1, sidecar-2$/,
    );
  });

  test("the termination log mount names the container", () => {
    assert.deepEqual(ownContainerName(pod, { mountinfo: mountinfo("main") }), {
      name: "main",
      rule: "the termination log mount in /proc/self/mountinfo",
    });
    assert.equal(ownContainerName(pod, { mountinfo: mountinfo("sidecar-2") }).name, "sidecar-2");
    assert.equal(containerFromMountinfo(mountinfo("main").replaceAll("/var/lib/kubelet", ""), uid), "main"); // the kubelet's directory on its own filesystem
  });

  test("a termination log mount of another Pod, or of no container of this Pod, is ignored", () => {
    assert.equal(containerFromMountinfo(mountinfo("main", "11111111-2222-3333-4444-555555555555"), uid), undefined);
    assert.equal(ownContainerName(pod, { mountinfo: mountinfo("gone") }).rule, fallback);
  });

  test("the container id in /proc/self/cgroup is matched against the statuses' containerID", () => {
    assert.equal(containerIdFromCgroup(cgroupV1(idOf("main"))), idOf("main"));
    assert.equal(containerIdFromCgroup(cgroupSystemd(idOf("main"))), idOf("main"));
    assert.deepEqual(ownContainerName(pod, { mountinfo: "", cgroup: cgroupSystemd(idOf("main")) }), {
      name: "main",
      rule: "the container id in /proc/self/cgroup",
    });
    assert.equal(ownContainerName(pod, { cgroup: cgroupV1(idOf("sidecar-2")) }).name, "sidecar-2");
  });

  test("cgroup v2 with a private cgroup namespace shows no id, and a status without containerID matches nothing", () => {
    assert.equal(containerIdFromCgroup("0::/\n"), undefined);
    assert.equal(ownContainerName(capturedPod("waiting"), { cgroup: cgroupV1(idOf("sidecar-2")) }).rule, fallback); // no containerIDs yet
  });

  test("the only regular container is proa's, even beside native sidecars", () => {
    assert.deepEqual(ownContainerName(withNativeSidecar(withNativeSidecar(pod, "sidecar-1"), "sidecar-2"), {}), {
      name: "main",
      rule: "the Pod's only regular container",
    });
  });

  test("otherwise the first container, as the original proa chose", () => {
    assert.deepEqual(ownContainerName(pod, { mountinfo: "", cgroup: "0::/\n" }), { name: "main", rule: fallback });
    assert.throws(() => ownContainerName({}, {}), /the Pod's spec lists no containers/);
  });
});

describe("restartPolicyOf: a Pod read from the API has the server's default, Always", () => {
  test("the Pod's own policy; Always when the field is missing; unknown (undefined) only without a Pod", () => {
    assert.equal(restartPolicyOf({ spec: { restartPolicy: "OnFailure" } }), "OnFailure");
    assert.equal(restartPolicyOf({ spec: {} }), "Always");
    assert.equal(restartPolicyOf({}), "Always");
    assert.equal(restartPolicyOf(undefined), undefined);
  });
});

describe("readiness, over Pods captured from a real API server", () => {
  const check = (pod: Pod, waitFor: string[] = [], ignore: string[] = []) => readiness(pod, "main", waitFor, ignore);
  // The captured watch: sidecar-1 ready at [1], both at [2] (test/fixtures/README.md).
  const watched = capturedStream("watch-events.jsonl")
    .toString()
    .trim()
    .split("\n")
    .map((line) => parseWatchEvent(line).object as Pod);
  const oneReady = watched[1] as Pod;

  test("no sidecar ready, while the containers are created or running", () => {
    assert.deepEqual(check(capturedPod("waiting")), { notReady: ["sidecar-1", "sidecar-2"] });
    assert.deepEqual(check(capturedPod("sidecars-not-ready")), { notReady: ["sidecar-1", "sidecar-2"] });
  });

  test("one sidecar ready, then all", () => {
    assert.deepEqual(check(oneReady), { notReady: ["sidecar-2"] });
    assert.deepEqual(check(capturedPod("all-ready")), { notReady: [] });
  });

  test("a Pod with only proa's container is ready at once", () => {
    assert.deepEqual(check(podWith({})), { notReady: [] });
  });

  test("proa's own container is never waited for, wherever it is in the list", () => {
    assert.deepEqual(readiness(oneReady, "sidecar-2", [], []), { notReady: [] });
    assert.deepEqual(readiness(capturedPod("sidecars-not-ready"), "sidecar-1", [], []), { notReady: ["sidecar-2"] });
  });

  test("a sidecar that terminated fails the wait when the restartPolicy is Never, naming it, its exit code and reason", () => {
    assert.deepEqual(check(capturedPod("sidecar-failed")), {
      notReady: ["sidecar-1", "sidecar-2"],
      failed:
        "container sidecar-1 terminated with exit code 1 (Error) before it was ready, and the Pod's restartPolicy is Never, so it will not be restarted",
    });
  });

  test("a terminated sidecar's reason, written by whoever wrote the status, is quoted in at most 80 characters", () => {
    const pod = podWith({
      sidecars: ["sidecar-1"],
      terminated: { "sidecar-1": { exitCode: 1, reason: `Error\n${"x".repeat(5000)}` } },
    });
    const failed = check(pod).failed ?? "";
    assert.match(
      failed,
      /^container sidecar-1 terminated with exit code 1 \(Error x+… \(4926 more characters\)\) before it was ready/,
    );
    assert.ok(failed.length < 300, `${failed.length} characters`);
  });

  for (const restartPolicy of ["OnFailure", "Always"] as const) {
    test(`a sidecar that terminated is waited for when the restartPolicy is ${restartPolicy}: the kubelet restarts it`, () => {
      assert.deepEqual(check(withRestartPolicy(capturedPod("sidecar-failed"), restartPolicy)), {
        notReady: ["sidecar-1", "sidecar-2"],
      });
    });
  }

  test("a sidecar that exited 0 fails the wait under OnFailure, at once and naming it: the kubelet never restarts it", () => {
    assert.deepEqual(check(withRestartPolicy(capturedPod("sidecars-terminated"), "OnFailure")), {
      notReady: ["sidecar-1", "sidecar-2"],
      failed:
        "container sidecar-1 terminated with exit code 0 (Completed) before it was ready, and the Pod's restartPolicy is OnFailure, so it will not be restarted",
    });
    assert.deepEqual(check(withRestartPolicy(capturedPod("sidecars-terminated"), "Always")), {
      notReady: ["sidecar-1", "sidecar-2"],
    });
    assert.deepEqual(
      check(
        withNativeSidecar(withRestartPolicy(capturedPod("sidecars-terminated"), "OnFailure"), "sidecar-1"),
      ).failed?.split(" ")[1],
      "sidecar-2",
    );
  });

  test("a sidecar restarted after a failure (OnFailure) is waited for", () => {
    assert.deepEqual(check(capturedPod("onfailure-restarted")), { notReady: ["sidecar-1"] });
  });

  test("native sidecars are waited for, and one that terminated is restarted by the kubelet whatever the Pod's policy", () => {
    assert.deepEqual(check(withNativeSidecar(oneReady, "sidecar-2")), { notReady: ["sidecar-2"] });
    assert.deepEqual(check(withNativeSidecar(capturedPod("all-ready"), "sidecar-2")), { notReady: [] });
    assert.deepEqual(check(withNativeSidecar(capturedPod("sidecar-failed"), "sidecar-1")), {
      notReady: ["sidecar-2", "sidecar-1"],
    });
  });

  test("plain init containers are not sidecars, running or completed", () => {
    assert.deepEqual(check(capturedPod("init-running")), { notReady: ["sidecar-1", "sidecar-2"] });
    assert.deepEqual(check(capturedPod("init-done")), { notReady: ["sidecar-1", "sidecar-2"] });
    assert.deepEqual(check(podWith({ initContainers: ["migrate"], sidecars: ["sidecar-1"], ready: true })), {
      notReady: [],
    });
  });

  test("--wait-for narrows the set and --ignore removes from it", () => {
    assert.deepEqual(check(oneReady, ["sidecar-1"]), { notReady: [] });
    assert.deepEqual(check(oneReady, ["sidecar-1", "sidecar-2"]), { notReady: ["sidecar-2"] });
    assert.deepEqual(check(oneReady, [], ["sidecar-2"]), { notReady: [] });
    assert.deepEqual(check(oneReady, ["sidecar-2"], ["sidecar-2"]), { notReady: [] });
  });

  test("an unknown --wait-for or --ignore name is an error that lists the Pod's other containers", () => {
    const pod = withNativeSidecar(capturedPod("init-done"), "sidecar-2");
    assert.throws(
      () => check(pod, ["sidecar-3"]),
      /^Error: --wait-for sidecar-3: no such container besides proa's own \(main\); the Pod's other containers are: sidecar-1, sidecar-2$/,
    );
    assert.throws(() => check(pod, [], ["init"]), /^Error: --ignore init: no such container/);
    assert.throws(() => check(pod, ["main"]), /^Error: --wait-for main: no such container besides proa's own \(main\)/);
  });

  test("missing status fields count as not ready", () => {
    const { spec } = capturedPod("all-ready");
    assert.deepEqual(check({ spec }), { notReady: ["sidecar-1", "sidecar-2"] });
    assert.deepEqual(check({ spec, status: { phase: "Pending" } }), { notReady: ["sidecar-1", "sidecar-2"] });
    assert.deepEqual(
      check({ spec, status: { containerStatuses: [{ name: "sidecar-1" }, { name: "sidecar-2", ready: true }] } }),
      { notReady: ["sidecar-1"] },
    );
    assert.deepEqual(check({}), { notReady: [] });
  });

  test("runningContainers lists the regular containers but proa's own that have not terminated", () => {
    assert.deepEqual(runningContainers(capturedPod("all-ready"), "main"), ["sidecar-1", "sidecar-2"]);
    assert.deepEqual(runningContainers(capturedPod("sidecar-failed"), "main"), ["sidecar-2"]);
    assert.deepEqual(runningContainers(capturedPod("sidecars-terminated"), "main"), []);
    assert.deepEqual(runningContainers(withNativeSidecar(capturedPod("all-ready"), "sidecar-2"), "main"), [
      "sidecar-1",
    ]);
    assert.deepEqual(runningContainers({ spec: capturedPod("all-ready").spec }, "main"), ["sidecar-1", "sidecar-2"]);
  });
});
