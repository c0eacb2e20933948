// kube.ts: proa's view of its own Pod through the Kubernetes API. In-cluster configuration, a list+watch over raw
// HTTPS that recovers like client-go's reflector and kube-rs's watcher, and the readiness decisions as pure functions.
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { Agent, request } from "node:https";
import { isIPv6 } from "node:net";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { checkServerIdentity, retryAfter } from "./http.ts";
import { quote, registerSecret, REPEAT_WINDOW_MS, repeatedWarnings, type Log, type RepeatedWarnings } from "./log.ts";

// ---------------------------------------------------------------------------------------------------------------
// The Pod, as plain JSON: every field optional, as the API server may omit any of them.

export interface Pod {
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string } & {
    deletionTimestamp?: string; // these two for the shutdown step
    deletionGracePeriodSeconds?: number;
  };
  spec?: {
    containers?: { name: string; terminationMessagePath?: string; terminationMessagePolicy?: string }[];
    initContainers?: { name: string; restartPolicy?: string }[];
    restartPolicy?: string;
    terminationGracePeriodSeconds?: number;
  };
  status?: { phase?: string; containerStatuses?: ContainerStatus[]; initContainerStatuses?: ContainerStatus[] };
}
export interface ContainerStatus {
  name: string;
  ready?: boolean;
  restartCount?: number; // for the run: a sidecar restarted since proa last looked
  containerID?: string;
  state?: ContainerState;
  lastState?: ContainerState;
}
export interface ContainerState {
  running?: { startedAt?: string };
  waiting?: { reason?: string; message?: string };
  terminated?: { exitCode?: number; reason?: string; signal?: number; finishedAt?: string };
}

/** Every duration the watch and the wait use, injectable so that tests run in milliseconds. */
export interface Timing {
  backoffBaseMs: number; // the first retry waits base/2..base, doubling with each failure in a row
  backoffMaxMs: number; // cap on the backoff, and on a server's Retry-After
  watchTimeoutSeconds: number; // asked of the server per watch, jittered up by up to 10%
  idleMarginMs: number; // limit for connecting, for headers, for a silent list; a watch may be silent (or open) this much longer than its timeoutSeconds
  listTimeoutMs: number; // a list not complete by then is abandoned, however steadily its bytes come
  reminderMs: number; // "still waiting" reminder while nothing changes
  giveUpMs: number; // how long 401, 403 or a missing Pod is retried when --ready-timeout is unset
  minWatchMs: number; // a watch that ends sooner counts as a failure, whatever it delivered
  repeatWindowMs: number; // a warning repeated within this is counted, not written (log.ts's repeatedWarnings)
  random: () => number; // jitter source
}
// giveUpMs: 5 minutes, long enough for RBAC created moments after the Pod (or a slow token mount) to take effect,
// short enough that a misconfigured Job fails visibly instead of hanging.
export const defaultTiming: Timing = {
  backoffBaseMs: 1000,
  backoffMaxMs: 30_000,
  watchTimeoutSeconds: 300, // so a watch held for the whole run costs at most 12 requests an hour
  idleMarginMs: 30_000,
  listTimeoutMs: 60_000, // generous for one Pod: at most 2 MiB, and a few KiB in practice
  reminderMs: 30_000,
  giveUpMs: 5 * 60_000,
  minWatchMs: 2000,
  repeatWindowMs: REPEAT_WINDOW_MS,
  random: Math.random,
};

// ---------------------------------------------------------------------------------------------------------------
// In-cluster configuration

export interface Cluster {
  host: string; // IPv6 without brackets: https.request's host option wants it bare
  port: number;
  server: string; // https://host:port for messages, IPv6 in brackets
  namespace: string;
  podName: string;
  tokenFile: string; // re-read for every request: the kubelet rewrites bound tokens about hourly
  agent: Agent; // keep-alive, unlike Node 20's global agent (5 s); trusts the service account's CA and nothing else
  userAgent: string;
}

// PROA_SERVICE_ACCOUNT_DIR points proa at another directory holding token, ca.crt and namespace (for tests).
const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
export const DOWNWARD_API =
  "env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}, " +
  "{name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}]";

export function loadCluster(env: NodeJS.ProcessEnv, userAgent: string): Cluster {
  const { KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port } = env;
  if (!host || !port) {
    throw new Error(
      "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: proa must run in a Kubernetes Pod, where the kubelet sets them",
    );
  }
  const dir = env.PROA_SERVICE_ACCOUNT_DIR || SERVICE_ACCOUNT_DIR;
  const read = (file: string, alternative = "") => {
    try {
      return readFileSync(`${dir}/${file}`);
    } catch (error) {
      const fix = "set automountServiceAccountToken: true in the Pod spec (or its ServiceAccount)";
      throw new Error(`cannot read the service account ${file} at ${dir}/${file}: ${fix}${alternative}`, {
        cause: error,
      });
    }
  };
  const ca = read("ca.crt");
  registerSecret(read("token").toString().trim()); // fail now rather than at the first request
  const namespace =
    env.POD_NAMESPACE ||
    read("namespace", `, or set POD_NAMESPACE with the downward API: ${DOWNWARD_API}`).toString().trim();
  const podName = env.POD_NAME || hostname().split(".")[0] || "";
  checkName(
    namespace,
    DNS_LABEL,
    env.POD_NAMESPACE ? "POD_NAMESPACE" : `the namespace in ${dir}/namespace`,
    "a namespace (a DNS-1123 label)",
  );
  checkName(
    podName,
    DNS_SUBDOMAIN,
    env.POD_NAME ? "POD_NAME" : "the hostname, taken as the Pod's name,",
    "a Pod name (a DNS-1123 subdomain)",
  );
  // rejectUnauthorized is explicit, so that NODE_TLS_REJECT_UNAUTHORIZED in the environment cannot turn it off.
  const agent = new Agent({ keepAlive: true, ca, rejectUnauthorized: true, checkServerIdentity });
  return { ...apiServer(host, port), namespace, podName, tokenFile: `${dir}/token`, agent, userAgent };
}

// Kubernetes' own rules for these names: nothing else can name a Pod, so nothing else goes into a request's path.
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
export const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function checkName(value: string, rule: RegExp, source: string, kind: string): void {
  if (rule.test(value)) return;
  throw new Error(
    `${source} is not ${kind}: ${quote(JSON.stringify(value), 80)}; set POD_NAME and POD_NAMESPACE with the downward API: ${DOWNWARD_API}`,
  );
}

/** The variables through which Node.js itself, rather than proa, can change what proa does: one warning each, so that
 * an auditor reading the log sees them. proa sets TLS verification explicitly, so the first one changes nothing. */
export function nodeEnvironmentWarnings(env: NodeJS.ProcessEnv): string[] {
  const warnings: string[] = [];
  if (env.NODE_TLS_REJECT_UNAUTHORIZED !== undefined)
    warnings.push(
      "NODE_TLS_REJECT_UNAUTHORIZED is set: proa ignores it and always verifies certificates (the API server's against the service account's CA, https sidecar URLs' against Node.js's CAs)",
    );
  if (env.NODE_OPTIONS !== undefined)
    warnings.push("NODE_OPTIONS is set: Node.js applies it to proa as well as to the program");
  if (env.NODE_DEBUG !== undefined)
    warnings.push(
      "NODE_DEBUG is set: Node.js writes its debug output for proa to stderr as well as the program's (proa keeps the token out of it)",
    );
  // Node.js reads these three at start, before proa can look: they change which certificates proa's connections accept.
  if (env.NODE_EXTRA_CA_CERTS !== undefined)
    warnings.push(
      "NODE_EXTRA_CA_CERTS is set: Node.js trusts its CAs, besides its own, for https sidecar URLs (not for the API server, whose certificate proa checks against the service account's ca.crt alone)",
    );
  if (env.NODE_USE_SYSTEM_CA !== undefined)
    warnings.push(
      "NODE_USE_SYSTEM_CA is set: Node.js 22 and later trust the system's CAs (OpenSSL's default store, which SSL_CERT_FILE and SSL_CERT_DIR move), besides their own, for https sidecar URLs (not for the API server, whose certificate proa checks against the service account's ca.crt alone)",
    );
  if (env.OPENSSL_CONF !== undefined)
    warnings.push(
      "OPENSSL_CONF is set: Node.js loaded that OpenSSL configuration at start, and with it can load providers and change what TLS proa's connections accept",
    );
  return warnings;
}

/** The API server's address from the service variables; an IPv6 host gets brackets in the URL only. */
export function apiServer(host: string, port: string): { host: string; port: number; server: string } {
  const bare = host.replace(/^\[(.*)\]$/, "$1");
  // A zone ID names a link-local address's interface: no certificate can hold it, and Node.js's IP check throws on
  // it mid-handshake. The kubelet sets a Service's ClusterIP here, which never has one.
  const zone = /%.*$/.exec(bare)?.[0];
  if (zone !== undefined && isIPv6(bare.slice(0, -zone.length))) {
    throw new Error(
      `KUBERNETES_SERVICE_HOST is an IPv6 address with a zone ID (${quote(host, 80)}), which no certificate can name: set it to the API server's address without ${quote(zone, 40)}, as the kubelet does`,
    );
  }
  const number = Number(port);
  if (!Number.isInteger(number) || number < 1 || number > 65535)
    throw new Error(`KUBERNETES_SERVICE_PORT is not a port number: ${port}`);
  return { host: bare, port: number, server: `https://${bare.includes(":") ? `[${bare}]` : bare}:${number}` };
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP: one GET, as a stream of body chunks

/** A failed request, named for where it failed, with the HTTP status when there was one. */
export class KubeError extends Error {
  override name = "KubeError";
  constructor(
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** GETs path and yields the body's chunks (status 200 only; otherwise throws a KubeError). Cuts the request when
 * the headers take longer than headersMs, when the body is silent for idleMs, when the whole exchange takes longer
 * than totalMs (a byte now and then restarts the idle timer, not this one), or when the consumer stops early. */
async function* get(
  cluster: Cluster,
  log: Log,
  path: string,
  headersMs: number,
  idleMs: number,
  totalMs: number,
  signal: AbortSignal,
  what: string,
): AsyncGenerator<Buffer> {
  let current: { destroy(error?: Error): unknown } | undefined;
  const cut = (ms: number) =>
    setTimeout(
      () => current?.destroy(new KubeError(`${what} failed: no data from ${cluster.server} for ${ms} ms`)),
      ms,
    );
  let idle = cut(headersMs);
  const total = setTimeout(
    () => current?.destroy(new KubeError(`${what} failed: the answer was not complete within ${totalMs} ms`)),
    totalMs,
  );
  try {
    let res = await send(cluster, path, signal, (req) => (current = req));
    if (res.statusCode === 401) {
      // The kubelet may have rotated the token since it was read: retry once with the file's new content.
      log.debug("the API server refused the token: reading it again and retrying once", {
        tokenFile: cluster.tokenFile,
      });
      res.resume();
      res = await send(cluster, path, signal, (req) => (current = req));
    }
    current = res;
    clearTimeout(idle);
    idle = cut(idleMs);
    if (res.statusCode !== 200) throw await statusError(res, what, cluster);
    for await (const chunk of res) {
      idle.refresh();
      yield chunk as Buffer;
    }
  } finally {
    clearTimeout(idle);
    clearTimeout(total);
    current?.destroy(); // a no-op once the response has ended; otherwise it closes the connection
  }
}

function send(
  cluster: Cluster,
  path: string,
  signal: AbortSignal,
  onRequest: (req: { destroy(): unknown }) => void,
): Promise<IncomingMessage> {
  const token = readFileSync(cluster.tokenFile, "utf8").trim();
  registerSecret(token); // before any answer could echo it; a rotated-out token stays registered too
  const headers = { Accept: "application/json", "User-Agent": cluster.userAgent };
  return new Promise((resolve, reject) => {
    const req = request(
      { host: cluster.host, port: cluster.port, path, agent: cluster.agent, headers, signal },
      resolve,
    );
    // Set after the request is created: NODE_DEBUG=http prints the options object, never a header set this way.
    req.setHeader("Authorization", `Bearer ${token}`);
    req.on("error", reject).end();
    onRequest(req);
  });
}

async function statusError(res: IncomingMessage, what: string, cluster: Cluster): Promise<KubeError> {
  const code = res.statusCode ?? 0;
  const text = (await collect(res, 64 * 1024)).toString();
  let message = text.trim();
  try {
    const status = (beyondJsonLimits(text) ? undefined : JSON.parse(text)) as { message?: unknown } | undefined; // a Status object...
    if (typeof status?.message === "string") message = status.message;
  } catch {} // ...but a 429 from the max-in-flight filter or a proxy is plain text
  message = quote(message);
  let hint = "";
  if (code === 401)
    hint = `; the token at ${cluster.tokenFile} was re-read and still refused: check that the Pod's ServiceAccount exists`;
  if (code === 403) {
    const user = /User "([^"]+)"/.exec(message)?.[1] ?? "the Pod's service account";
    const rule = `{apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"]}`;
    hint = `; grant ${user} a Role in namespace ${cluster.namespace} with the rule ${rule} and a RoleBinding to it`;
  }
  // As client-go's checkWait: kube-apiserver sends Retry-After with a 429 (max-in-flight, priority and fairness) and
  // with 5xx other than 503 too (a 500 ServerTimeout when etcd is unreachable, a 504 for a resourceVersion too large).
  const retryAfterMs = code === 429 || code >= 500 ? retryAfter(res.headers["retry-after"]) : undefined;
  return new KubeError(`${what} failed: HTTP ${code}: ${message}${hint}`, code, retryAfterMs);
}

async function collect(chunks: AsyncIterable<Buffer>, maxBytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of chunks) {
    if ((length += chunk.length) > maxBytes) throw new Error(`the answer is longer than ${maxBytes} bytes`);
    parts.push(chunk);
  }
  return Buffer.concat(parts, length);
}

// ---------------------------------------------------------------------------------------------------------------
// Framing: a watch is a stream of JSON lines

// The cap on a list answer and on each watch line: etcd stores no object over 1.5 MiB, so no Pod comes near it, and
// no answer within it takes proa past 150 MiB (bench/hostile.ts: 2 MiB of `{}` items is the costliest).
export const MAX_LINE_BYTES = 2 * 1024 * 1024;
// What JSON.parse may build of one answer: a Pod, its managedFields included, nests a few dozen levels and holds an
// array or object per 34 bytes or so (some 60,000 in 2 MiB). Megabytes of `[` cost JSON.parse hundreds of MiB before
// it fails, and each `{}` about 110 bytes: 2 MiB of them would take proa to 150 MiB.
export const MAX_JSON_DEPTH = 100;
export const MAX_JSON_CONTAINERS = 100_000;

/** What in text is past MAX_JSON_DEPTH or MAX_JSON_CONTAINERS, or undefined: a scan of its brackets outside strings,
 * cheap next to JSON.parse, which runs only when this finds nothing. */
export function beyondJsonLimits(
  text: string,
  maxDepth = MAX_JSON_DEPTH,
  maxContainers = MAX_JSON_CONTAINERS,
): string | undefined {
  let depth = 0;
  let containers = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: jump to its closing quote, the first one preceded by an even number of backslashes.
      for (;;) {
        i = text.indexOf('"', i + 1);
        if (i === -1) return undefined; // unterminated: not JSON, as JSON.parse will say
        let backslashes = 0;
        while (text.charCodeAt(i - 1 - backslashes) === 0x5c) backslashes++;
        if (backslashes % 2 === 0) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return `nests arrays and objects deeper than ${maxDepth} levels`;
      if (++containers > maxContainers)
        return `holds more than ${maxContainers.toLocaleString("en-US")} arrays and objects`;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return undefined;
}

/** Splits a byte stream on the newline byte and decodes each whole line as UTF-8: a newline byte never occurs inside
 * a multi-byte character, so a character split across chunks stays intact. A partial line is kept as references
 * to its chunks and joined once, when its newline arrives: each byte is copied at most once. */
export function lineSplitter(maxLineBytes = MAX_LINE_BYTES) {
  let parts: Buffer[] = [];
  let pending = 0;
  const tooLong = () => new Error(`the API server sent a line longer than ${maxLineBytes} bytes`);
  return {
    pendingBytes: () => pending,
    push(chunk: Buffer): string[] {
      const lines: string[] = [];
      let start = 0;
      for (let end = chunk.indexOf(10); end !== -1; start = end + 1, end = chunk.indexOf(10, start)) {
        const length = pending + end - start;
        if (length > maxLineBytes) throw tooLong();
        if (pending === 0) lines.push(chunk.toString("utf8", start, end));
        else lines.push(Buffer.concat([...parts, chunk.subarray(start, end)], length).toString("utf8"));
        parts = [];
        pending = 0;
      }
      if (start < chunk.length) {
        if ((pending += chunk.length - start) > maxLineBytes) throw tooLong();
        parts.push(chunk.subarray(start));
      }
      return lines;
    },
  };
}

export type WatchEvent =
  | { type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK"; object: Pod }
  | { type: "ERROR"; object: { code?: number; reason?: string; message?: string } };

/** One line of a watch; a line that is not a watch event is an error, never skipped. */
export function parseWatchEvent(line: string): WatchEvent {
  let event: { type?: unknown; object?: unknown };
  const beyond = beyondJsonLimits(line);
  if (beyond) throw new Error(`the watch sent a line that ${beyond}`);
  try {
    event = JSON.parse(line);
  } catch (error) {
    throw new Error(`the watch sent a line that is not JSON (${line.length} characters)`, { cause: error });
  }
  const types = ["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"];
  if (!types.includes(event?.type as string) || typeof event.object !== "object" || event.object === null) {
    throw new Error(
      `the watch sent a line that is not a watch event: type ${quote(String(JSON.stringify(event?.type)))}`,
    );
  }
  if (event.type === "ERROR") {
    const problem = shapeProblem(event.object, STATUS_SHAPE, "");
    if (problem) throw new Error(`the watch sent an ERROR event that is not a Status: ${problem}`);
  } else {
    checkPod(event.object);
  }
  return event as WatchEvent;
}

// ---------------------------------------------------------------------------------------------------------------
// The shape of what proa reads from a Pod, checked once where the answer is parsed, so that the decisions can trust it.

type Shape = "string" | "number" | "boolean" | "label" | { [field: string]: Shape } | [Shape];
const CONTAINER_STATE: Shape = {
  running: {},
  waiting: { reason: "string", message: "string" },
  terminated: { exitCode: "number", reason: "string", signal: "number", finishedAt: "string" },
};
const CONTAINER_STATUS: Shape = {
  name: "label",
  ready: "boolean",
  restartCount: "number",
  containerID: "string",
  state: CONTAINER_STATE,
  lastState: CONTAINER_STATE,
};
const POD_SHAPE: Shape = {
  metadata: {
    name: "string",
    namespace: "string",
    uid: "string",
    resourceVersion: "string",
    deletionTimestamp: "string",
    deletionGracePeriodSeconds: "number",
  },
  spec: {
    containers: [{ name: "label", terminationMessagePath: "string", terminationMessagePolicy: "string" }],
    initContainers: [{ name: "label", restartPolicy: "string" }],
    restartPolicy: "string",
    terminationGracePeriodSeconds: "number",
  },
  status: { phase: "string", containerStatuses: [CONTAINER_STATUS], initContainerStatuses: [CONTAINER_STATUS] },
};
const STATUS_SHAPE: Shape = { code: "number", reason: "string", message: "string" };

/** The object as a Pod, or an error saying which field is not what a Pod has there. */
export function checkPod(object: unknown): Pod {
  const problem = object === null || object === undefined ? "it is null" : shapeProblem(object, POD_SHAPE, "");
  if (problem) throw new Error(`the API server's answer was not a Pod: ${problem}`);
  return object as Pod;
}

/** Where value departs from shape, or undefined. An absent field and null (which the API server sends for some empty
 * fields) are both accepted: every field of a Pod is optional to proa. */
function shapeProblem(value: unknown, shape: Shape, path: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  const [where, kind] = [path || "it", Array.isArray(value) ? "a list" : `a ${typeof value}`];
  if (shape === "label")
    return typeof value === "string" && DNS_LABEL.test(value)
      ? undefined
      : `${where} is not a container name: ${quote(String(value), 80)}`;
  if (typeof shape === "string") return typeof value === shape ? undefined : `${where} is ${kind}, not a ${shape}`;
  if (Array.isArray(shape)) {
    if (!Array.isArray(value)) return `${where} is ${kind}, not a list`;
    for (const [i, item] of value.entries()) {
      const problem = item === null ? `${path}[${i}] is null` : shapeProblem(item, shape[0], `${path}[${i}]`);
      if (problem) return problem;
    }
    return undefined;
  }
  if (typeof value !== "object" || Array.isArray(value)) return `${where} is ${kind}, not an object`;
  for (const [field, inner] of Object.entries(shape)) {
    const problem = shapeProblem((value as Record<string, unknown>)[field], inner, path ? `${path}.${field}` : field);
    if (problem) return problem;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// The watch: one state, one step function; watchPod's loop only does the I/O.

/** The Pod proa asked for: any other object in an answer is ignored, never acted on. */
export interface PodName {
  namespace: string;
  name: string;
}

type Resume = { kind: "listing" } | { kind: "watching"; resourceVersion: string };
interface Memo {
  failures: number; // in a row: failed requests and watches shorter than timing.minWatchMs; sets the backoff
  trouble?: { since: number; error: KubeError }; // the current run of 401/403: when it began and the latest, for giving up
  delivered?: string; // resourceVersion of the last Pod delivered ("absent": none), so nothing is delivered twice
  uid?: string; // the Pod's uid once seen: a Pod deleted and created again under the same name is another Pod
}
export type WatchState =
  (Memo & (Resume | { kind: "backingOff"; delayMs: number; then: Resume })) | { kind: "stopped"; error: Error };

export type WatchOutcome =
  | { kind: "listed"; items: Pod[]; resourceVersion: string }
  | { kind: "event"; event: WatchEvent }
  | { kind: "ended"; lines: number; lastedMs: number } // the server closed the watch cleanly (its timeoutSeconds)
  | { kind: "failed"; error: KubeError; at: number; lastedMs: number }
  | { kind: "waited"; at: number };

export interface WatchStep {
  state: WatchState;
  deliver?: { pod: Pod | null };
  ignored?: string; // why an object in the answer was not taken for proa's Pod
}

export function nextWatchState(state: WatchState, outcome: WatchOutcome, timing: Timing, want: PodName): WatchStep {
  if (state.kind === "stopped") return { state };
  const { failures, trouble, delivered, uid } = state;
  const resume: Resume =
    state.kind === "watching" ? { kind: "watching", resourceVersion: state.resourceVersion } : { kind: "listing" };
  const backOff = (
    then: Resume,
    streak = failures,
    delayMs = backoffMs(streak, timing),
    troubled?: Memo["trouble"],
    at = 0,
  ): WatchStep => {
    // While 401/403 lasts, no wait reaches past the give-up moment: the give-up comes on time, not a backoff late.
    const left = troubled ? troubled.since + timing.giveUpMs - at : Infinity;
    return {
      state: {
        kind: "backingOff",
        delayMs: Math.min(delayMs, left),
        then,
        failures: streak + 1,
        trouble: troubled,
        delivered,
        uid,
      },
    };
  };
  // 410: that resourceVersion is gone for good. List again, at once the first time; a server stuck on 410 gets backoff.
  const relist = (streak: number): WatchStep =>
    streak === 0 ? { state: { kind: "listing", failures: 1, delivered, uid } } : backOff({ kind: "listing" }, streak);
  const deliver = (next: Memo & Resume, pod: Pod | null, ignored?: string): WatchStep => {
    const key = pod === null ? "absent" : pod.metadata?.resourceVersion;
    const step: WatchStep =
      key !== undefined && key === delivered
        ? { state: next }
        : { state: { ...next, delivered: key }, deliver: { pod } };
    return ignored ? { ...step, ignored } : step;
  };
  const giveUp = (since: NonNullable<Memo["trouble"]>): WatchStep => ({
    state: {
      kind: "stopped",
      error: new Error(`giving up after ${seconds(timing.giveUpMs)}: ${since.error.message}`, { cause: since.error }),
    },
  });

  switch (outcome.kind) {
    case "waited":
      if (trouble && outcome.at - trouble.since >= timing.giveUpMs) return giveUp(trouble);
      return { state: state.kind === "backingOff" ? { ...state.then, failures, trouble, delivered, uid } : state };
    case "listed": {
      // The first of each kind only: a list may hold hundreds of thousands of items, and a reason is a string to build.
      const pod = outcome.items.find((item) => isOurs(item, want, uid)) ?? null;
      const other = outcome.items.find((item) => !isOurs(item, want, uid));
      const foreign = other && foreignPod(other, want, uid);
      return deliver(
        {
          kind: "watching",
          resourceVersion: outcome.resourceVersion,
          failures,
          delivered,
          uid: pod?.metadata?.uid ?? uid,
        },
        pod,
        foreign,
      );
    }
    case "ended": // watch again from the same resourceVersion, at once unless the watch was short: no server can make proa loop
      return outcome.lastedMs >= timing.minWatchMs
        ? { state: { ...resume, failures: 0, delivered, uid } }
        : backOff(resume);
    case "event": {
      const { type, object } = outcome.event;
      if (type === "ERROR") return object.code === 410 ? relist(failures) : backOff({ kind: "listing" });
      const ignored = type === "BOOKMARK" ? undefined : foreignPod(object, want, uid);
      if (ignored) return { state, ignored };
      const resourceVersion = object.metadata?.resourceVersion;
      const ours = type === "BOOKMARK" ? uid : (object.metadata?.uid ?? uid);
      const watching: Memo & Resume = resourceVersion
        ? { kind: "watching", resourceVersion, failures, delivered, uid: ours }
        : { ...resume, failures, delivered, uid: ours };
      return type === "BOOKMARK" ? { state: watching } : deliver(watching, type === "DELETED" ? null : object);
    }
    case "failed": {
      const { error, at } = outcome;
      // A watch that lasted shows that the server works: its end starts a new streak.
      const streak = state.kind === "watching" && outcome.lastedMs >= timing.minWatchMs ? 0 : failures;
      if (error.status === 410) return relist(streak);
      const since = error.status === 401 || error.status === 403 ? { since: trouble?.since ?? at, error } : trouble;
      if (since && at - since.since >= timing.giveUpMs) return giveUp(since);
      // A server's Retry-After may lengthen the backoff, never shorten it.
      const delayMs = Math.max(backoffMs(streak, timing), Math.min(error.retryAfterMs ?? 0, timing.backoffMaxMs));
      return backOff(resume, streak, delayMs, since, at);
    }
  }
}

function isOurs(pod: Pod, want: PodName, uid: string | undefined): boolean {
  const { namespace, name, uid: its } = pod.metadata ?? {};
  return namespace === want.namespace && name === want.name && (uid === undefined || its === uid);
}

/** Why pod is not proa's Pod (another name or namespace, or another uid than the one seen first), or undefined. */
function foreignPod(pod: Pod, want: PodName, uid: string | undefined): string | undefined {
  const { namespace, name, uid: its } = pod.metadata ?? {};
  if (namespace !== want.namespace || name !== want.name) {
    return `the API server sent Pod ${quote(`${namespace}/${name}`, 120)} when asked for ${want.namespace}/${want.name}: ignoring it`;
  }
  if (uid !== undefined && its !== uid)
    return `the API server sent another Pod named ${want.namespace}/${want.name} (uid ${quote(String(its), 80)}, not ${uid}): ignoring it`;
  return undefined;
}

/** Exponential with "equal jitter": never below half the step, so retries never bunch up near zero. */
export function backoffMs(failures: number, timing: Timing): number {
  const step = Math.min(timing.backoffMaxMs, timing.backoffBaseMs * 2 ** failures);
  return Math.round(step / 2 + (timing.random() * step) / 2);
}

/** Yields each new state of the Pod (null: there is no such Pod), never the same resourceVersion twice. Ends by
 * throwing: signal.reason when aborted, or an Error when 401/403 lasted past timing.giveUpMs. */
export async function* watchPod(
  cluster: Cluster,
  log: Log,
  signal: AbortSignal,
  timing: Partial<Timing> = {},
): AsyncGenerator<Pod | null, never> {
  const t = { ...defaultTiming, ...timing };
  const want = { namespace: cluster.namespace, name: cluster.podName };
  const path = podsPath(cluster);
  const repeats = repeatedWarnings(log, t.repeatWindowMs);
  let state: WatchState = { kind: "listing", failures: 0 };
  try {
    while (state.kind !== "stopped") {
      signal.throwIfAborted();
      for await (const outcome of perform(cluster, log, path, state, t, signal)) {
        const step = nextWatchState(state, outcome, t, want);
        state = step.state;
        logOutcome(log, repeats, outcome, state);
        if (step.ignored) {
          const what = outcome.kind === "event" ? "events" : "lists";
          repeats.warn(
            `${what} about another Pod`,
            step.ignored,
            (count, seconds) => `ignored ${count} ${what} about another Pod in the last ${seconds} s`,
          );
        }
        if (step.deliver) yield step.deliver.pod;
        if (state.kind !== "watching") break; // an ERROR event ends this watch
      }
    }
  } finally {
    repeats.flush();
  }
  throw state.error;
}

/** One watch of proa's Pod for its whole life: the wait, the run and the shutdown step each follow it, none opens its
 * own. Started by the first follow(); each Pod watchPod delivers goes to onPod, then to every follower in order. */
export interface PodFeed {
  /** The latest Pod delivered (null: there is no such Pod); undefined before the first. */
  latest(): Pod | null | undefined;
  /** The latest Pod, if any, then each one after. Throws signal.reason when aborted, or the watch's error once it
   * gives up (401/403 past timing.giveUpMs). Leaving it early leaves the watch running for the other phases. */
  follow(signal: AbortSignal): AsyncGenerator<Pod | null, never>;
  /** Ends the watch and its request; resolves once both are gone, its timers cleared. */
  close(): Promise<void>;
}

export function podFeed(
  cluster: Cluster,
  log: Log,
  timing: Partial<Timing> = {},
  onPod: (pod: Pod | null) => void = () => {},
): PodFeed {
  const stop = new AbortController();
  const followers = new Set<{ queue: (Pod | null)[]; wake: () => void }>();
  let latest: Pod | null | undefined;
  let failure: { error: unknown } | undefined;
  let pumping: Promise<void> | undefined;
  const pump = async () => {
    try {
      for await (const pod of watchPod(cluster, log, stop.signal, timing)) {
        latest = pod;
        onPod(pod);
        for (const follower of followers) {
          follower.queue.push(pod);
          follower.wake();
        }
      }
    } catch (error) {
      failure = { error };
      for (const follower of followers) follower.wake();
    }
  };
  return {
    latest: () => latest,
    async *follow(signal) {
      pumping ??= pump();
      const follower = { queue: latest === undefined ? [] : [latest], wake: () => {} };
      followers.add(follower);
      try {
        for (;;) {
          signal.throwIfAborted();
          const next = follower.queue.shift();
          if (next !== undefined) yield next;
          else if (failure) throw failure.error;
          else await woken(follower, signal);
        }
      } finally {
        followers.delete(follower);
      }
    },
    close: () => {
      stop.abort(new Error("proa has finished with its Pod"));
      return pumping ?? Promise.resolve();
    },
  };
}

/** Resolves at the follower's next wake() or when signal aborts (the loop then throws its reason). */
function woken(follower: { wake: () => void }, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      signal.removeEventListener("abort", done);
      follower.wake = () => {};
      resolve();
    };
    follower.wake = done;
    signal.addEventListener("abort", done);
  });
}

function podsPath(cluster: Cluster): string {
  const selector = encodeURIComponent(`metadata.name=${cluster.podName}`);
  return `/api/v1/namespaces/${encodeURIComponent(cluster.namespace)}/pods?fieldSelector=${selector}`;
}

export interface Probe {
  list: WatchOutcome;
  pod?: Pod | null; // what a run would take for its Pod from the list (null: there is none)
  ignored?: string; // why an object in the list was not taken for it
  watch: WatchOutcome;
}

/** For --check: a run's first list, read by the run's own rule, and one watch from its resourceVersion that the server
 * ends after a second, each with watchPod's requests. After a failed list the watch starts from "0", so that both
 * permissions are tried. Each request is made once; the first outcome of each is kept. */
export async function probePod(cluster: Cluster, log: Log, timing: Partial<Timing> = {}): Promise<Probe> {
  const t = { ...defaultTiming, ...timing, watchTimeoutSeconds: 1, random: () => 0 };
  const once = async (state: WatchState): Promise<WatchOutcome> => {
    for await (const outcome of perform(cluster, log, podsPath(cluster), state, t, new AbortController().signal))
      return outcome; // return closes the request
    throw new Error("the request gave no outcome");
  };
  const listing: WatchState = { kind: "listing", failures: 0 };
  const list = await once(listing);
  const { deliver, ignored } = nextWatchState(listing, list, t, {
    namespace: cluster.namespace,
    name: cluster.podName,
  });
  const resourceVersion = list.kind === "listed" ? list.resourceVersion : "0";
  return {
    list,
    ...deliver,
    ...(ignored ? { ignored } : {}),
    watch: await once({ kind: "watching", resourceVersion, failures: 0 }),
  };
}

/** For --check: the API server's release (GET /version, with a run's own requests), or undefined when it cannot be
 * read within ms: a provider's minor may carry a suffix ("29+"), so only its leading digits count. */
export async function serverVersion(
  cluster: Cluster,
  log: Log,
  ms: number,
): Promise<{ major: number; minor: number; gitVersion: string } | undefined> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  try {
    const text = (
      await collect(
        get(cluster, log, "/version", ms, ms, ms, controller.signal, "reading the API server's version"),
        64 * 1024,
      )
    ).toString();
    const beyond = beyondJsonLimits(text);
    if (beyond) throw new Error(`the answer ${beyond}`);
    const body = JSON.parse(text) as Record<string, unknown>;
    const [major, minor] = [body.major, body.minor].map((part) => Number(/^\d+/.exec(String(part))?.[0] ?? NaN));
    if (!Number.isInteger(major) || !Number.isInteger(minor)) return undefined;
    return { major: major!, minor: minor!, gitVersion: quote(String(body.gitVersion ?? `v${major}.${minor}`), 40) };
  } catch (error) {
    log.debug("the API server's version is unknown", { error: quote(String(error)) });
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** Failures at warn (the same one again only counted, see repeatedWarnings), or error for 401/403 (which need the
 * user's fix, and are given up on) unless proa was let in before; the rest at debug. */
function logOutcome(log: Log, repeats: RepeatedWarnings, outcome: WatchOutcome, next: WatchState): void {
  const again = (message: string) => (count: string, seconds: number) =>
    `${message} (${count} times in the last ${seconds} s)`;
  switch (outcome.kind) {
    case "listed":
      return log.debug("listed the Pod", { resourceVersion: outcome.resourceVersion, found: outcome.items.length > 0 });
    case "ended":
      return log.debug("the API server ended the watch", { events: outcome.lines, lastedMs: outcome.lastedMs });
    case "event": {
      const { type, object } = outcome.event;
      if (type !== "ERROR")
        return log.debug(`watch event ${type}`, { resourceVersion: object.metadata?.resourceVersion });
      const message = `the watch of the Pod reported ${object.code} ${quote(String(object.reason), 80)}: listing it again`;
      if (object.code === 410) return log.debug(message, { message: quote(String(object.message)) });
      return repeats.warn(message, message, again(message), { message: quote(String(object.message)) });
    }
    case "failed": {
      if (next.kind === "stopped") return; // thrown instead
      if (next.kind !== "backingOff") return log.debug(outcome.error.message); // 410: listing again at once
      const { message, status } = outcome.error;
      if (status === 401 || status === 403) {
        // Refused after proa was let in: a restarted API server answers so until its authorizer has caught up.
        if (next.delivered === undefined) return log.error(message, { retryInMs: next.delayMs });
        const afterAccess = `${message} (allowed before: the API server may still be starting, or the permission was removed; retrying)`;
        return repeats.warn(afterAccess, afterAccess, again(afterAccess), { retryInMs: next.delayMs });
      }
      return repeats.warn(message, message, again(message), { retryInMs: next.delayMs });
    }
    case "waited":
      return; // the back-off was logged with the failure that started it
  }
}

/** The I/O for one state: what happened, as outcomes (a watch yields one per event). */
async function* perform(
  cluster: Cluster,
  log: Log,
  path: string,
  state: WatchState,
  t: Timing,
  signal: AbortSignal,
): AsyncGenerator<WatchOutcome> {
  const what = `${state.kind === "watching" ? "watching" : "listing"} Pod ${cluster.namespace}/${cluster.podName} at ${cluster.server}`;
  const started = Date.now();
  try {
    if (state.kind === "listing") {
      const body = await collect(
        get(cluster, log, path, t.idleMarginMs, t.idleMarginMs, t.listTimeoutMs, signal, what),
        MAX_LINE_BYTES,
      );
      const text = body.toString();
      const beyond = beyondJsonLimits(text);
      if (beyond) throw new KubeError(`${what} failed: the answer ${beyond}`);
      const list = JSON.parse(text);
      const resourceVersion = list?.metadata?.resourceVersion;
      if (typeof resourceVersion !== "string" || !Array.isArray(list.items))
        throw new KubeError(`${what} failed: the answer is not a PodList`);
      for (const item of list.items) checkPod(item); // in place: no copy of a list that may be long
      yield { kind: "listed", items: list.items as Pod[], resourceVersion };
    } else if (state.kind === "backingOff") {
      await sleep(state.delayMs, undefined, { signal });
      yield { kind: "waited", at: Date.now() };
    } else if (state.kind === "watching") {
      // Jittered upwards: proas started together spread their renewals, and none renews sooner than asked.
      const timeoutSeconds = Math.round(t.watchTimeoutSeconds * (1 + t.random() / 10));
      const query = `&watch=1&resourceVersion=${encodeURIComponent(state.resourceVersion)}&allowWatchBookmarks=true&timeoutSeconds=${timeoutSeconds}`;
      const lines = lineSplitter();
      let count = 0;
      // The server ends a watch at its timeoutSeconds: one still open well after that (a margin later than a silent
      // one is cut) is as stuck as a silent one, whatever trickles in.
      const idleMs = timeoutSeconds * 1000 + t.idleMarginMs;
      for await (const chunk of get(
        cluster,
        log,
        path + query,
        t.idleMarginMs,
        idleMs,
        idleMs + t.idleMarginMs,
        signal,
        what,
      )) {
        for (const line of lines.push(chunk)) {
          count++;
          yield { kind: "event", event: parseWatchEvent(line) };
        }
      }
      if (lines.pendingBytes() > 0) throw new KubeError(`${what} failed: the stream ended in the middle of an event`);
      yield { kind: "ended", lines: count, lastedMs: Date.now() - started };
    }
  } catch (error) {
    signal.throwIfAborted();
    // Node says only "aborted" when the server resets a response mid-stream.
    const reason =
      (error as NodeJS.ErrnoException).code === "ECONNRESET"
        ? "the API server closed the connection"
        : (error as Error).message;
    const failure =
      error instanceof KubeError
        ? error
        : new KubeError(`${what} failed: ${reason}`, undefined, undefined, { cause: error });
    yield { kind: "failed", error: failure, at: Date.now(), lastedMs: Date.now() - started };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Which container is proa's own (pure; the caller reads the /proc files)

export interface OwnContainerHints {
  container?: string; // --container / PROA_CONTAINER
  mountinfo?: string; // contents of /proc/self/mountinfo
  cgroup?: string; // contents of /proc/self/cgroup
}

/** --container when given; otherwise the /proc files that show the kubelet's mounts and the container's id. */
export function ownContainerHints(container: string | undefined): OwnContainerHints {
  return container !== undefined
    ? { container }
    : { mountinfo: readProc("/proc/self/mountinfo"), cgroup: readProc("/proc/self/cgroup") };
}

export function ownContainerName(pod: Pod, hints: OwnContainerHints): { name: string; rule: string } {
  const regular = (pod.spec?.containers ?? []).map((c) => c.name);
  const known = (name: string | undefined): name is string => name !== undefined && regular.includes(name);
  if (hints.container !== undefined) {
    if (known(hints.container)) return { name: hints.container, rule: "--container" };
    throw new Error(
      `--container ${hints.container}: the Pod has no such container; its containers are: ${regular.join(", ")}`,
    );
  }
  const mounted =
    hints.mountinfo === undefined ? undefined : containerFromMountinfo(hints.mountinfo, pod.metadata?.uid);
  if (known(mounted)) return { name: mounted, rule: "the termination log mount in /proc/self/mountinfo" };
  const id = hints.cgroup === undefined ? undefined : containerIdFromCgroup(hints.cgroup);
  const byId =
    id === undefined
      ? undefined
      : pod.status?.containerStatuses?.find((s) => s.containerID?.endsWith(`://${id}`))?.name;
  if (known(byId)) return { name: byId, rule: "the container id in /proc/self/cgroup" };
  const [first] = regular;
  if (first === undefined) throw new Error("the Pod's spec lists no containers");
  if (regular.length === 1) return { name: first, rule: "the Pod's only regular container" };
  return { name: first, rule: "the Pod's first container, as the original proa did (set --container to choose)" };
}

/** The kubelet bind-mounts each container's termination log from .../pods/<pod uid>/containers/<name>/<id>; the
 * mount's root (the 4th field) shows that host path. */
export function containerFromMountinfo(mountinfo: string, podUid: string | undefined): string | undefined {
  const names = new Set<string>();
  for (const line of mountinfo.split("\n")) {
    const match = /\/pods\/([^/]+)\/containers\/([^/]+)\/[^/]+$/.exec(line.split(" ")[3] ?? "");
    if (match?.[2] && (podUid === undefined || match[1] === podUid)) names.add(match[2]);
  }
  return names.size === 1 ? [...names][0] : undefined;
}

/** The 64-hex container id in a cgroup path (cgroup v1, or v2 without a private cgroup namespace; with one, "0::/"). */
export function containerIdFromCgroup(cgroup: string): string | undefined {
  return /[0-9a-f]{64}/.exec(cgroup)?.[0];
}

// ---------------------------------------------------------------------------------------------------------------
// Readiness (pure)

export interface Readiness {
  notReady: string[]; // the containers waited for that are not ready yet
  failed?: string; // set when one of them will never become ready: the user-facing reason
}

/** The restartPolicy of a Pod read from the API, which defaults a missing one to Always (so does this, for a server
 * that left it out); undefined only when there is no Pod (--ready-url, or the Pod was never read). */
export function restartPolicyOf(pod: Pod | undefined): string | undefined {
  return pod && (pod.spec?.restartPolicy ?? "Always");
}

/** Whether the kubelet runs a container again after it terminated with exitCode: a native sidecar always, whatever
 * the Pod's policy; a regular one under Always, and under OnFailure after a failure; never under Never (as a sidecar
 * that an earlier proa shut down exits 0, OnFailure does not restart it). The wait, the run and the shutdown step
 * all ask this one rule. */
export function runsAgain(restartPolicy: string | undefined, native: boolean, exitCode: number | undefined): boolean {
  return native || restartPolicy === "Always" || (restartPolicy === "OnFailure" && exitCode !== 0);
}

/** Waits for every container but proa's own: the regular ones and the native sidecars (init containers with
 * restartPolicy Always, whose readiness the kubelet does not wait for). Plain init containers have finished. */
export function readiness(pod: Pod, ownContainer: string, waitFor: string[], ignore: string[]): Readiness {
  const regular = (pod.spec?.containers ?? []).map((c) => c.name);
  const others = otherContainers(pod, ownContainer);
  for (const [option, names] of [
    ["--wait-for", waitFor],
    ["--ignore", ignore],
  ] as const) {
    const unknown = names.find((name) => !others.includes(name));
    if (unknown === undefined) continue;
    throw new Error(
      `${option} ${unknown}: no such container besides proa's own (${ownContainer}); the Pod's other containers are: ${others.join(", ") || "none"}`,
    );
  }
  const watched = waitedFor(pod, ownContainer, waitFor, ignore);
  const statuses = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])];
  const status = (name: string) => statuses.find((s) => s.name === name);
  const notReady = watched.filter((name) => status(name)?.ready !== true);
  const policy = restartPolicyOf(pod);
  for (const name of notReady.filter((name) => regular.includes(name))) {
    const terminated = status(name)?.state?.terminated;
    if (!terminated || runsAgain(policy, false, terminated.exitCode)) continue;
    const how = `exit code ${terminated.exitCode ?? "unknown"}${terminated.reason ? ` (${quote(terminated.reason, 80)})` : ""}`;
    return {
      notReady,
      failed: `container ${name} terminated with ${how} before it was ready, and the Pod's restartPolicy is ${policy}, so it will not be restarted`,
    };
  }
  return { notReady };
}

/** The containers the wait watches: the other regular containers and the native sidecars, narrowed by --wait-for
 * and --ignore (checked by readiness). */
export function waitedFor(pod: Pod, ownContainer: string, waitFor: string[], ignore: string[]): string[] {
  return (waitFor.length > 0 ? waitFor : otherContainers(pod, ownContainer)).filter((name) => !ignore.includes(name));
}

function otherContainers(pod: Pod, ownContainer: string): string[] {
  const regular = (pod.spec?.containers ?? []).map((c) => c.name);
  const native = (pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === "Always").map((c) => c.name);
  return [...regular, ...native].filter((name) => name !== ownContainer);
}

/** Regular containers other than proa's own that have not terminated. Native sidecars are left out: the kubelet
 * stops them only after the regular containers have exited, so the shutdown step must not wait for them. */
export function runningContainers(pod: Pod, ownContainer: string): string[] {
  const statuses = pod.status?.containerStatuses ?? [];
  return (pod.spec?.containers ?? [])
    .map((c) => c.name)
    .filter((name) => name !== ownContainer && !statuses.find((s) => s.name === name)?.state?.terminated);
}

// ---------------------------------------------------------------------------------------------------------------
// A sidecar's death or restart while the program runs (pure)

/** What the user said about deaths: --critical NAME / --critical-all, and --no-critical. */
export interface DeathFlags {
  critical: boolean; // this container was named by --critical, or --critical-all was given
  noCritical: boolean; // --no-critical: a death is reported, never stops the program
}

/** What happened to one sidecar between two Pods, as the log, the summary and the termination message tell it. */
export interface SidecarEvent {
  name: string;
  kind: "died" | "restarting" | "restarted"; // terminated for good; terminated, to be restarted; seen running again
  exitCode?: number;
  reason?: string; // the kubelet's: Error, OOMKilled, Completed
  finishedAt?: string;
  restartCount: number;
}

export interface SidecarVerdict {
  action: "none" | "report" | "stop"; // stop: SIGTERM to the program, then the shutdown step, and exit SIDECAR_DIED
  reason: string; // in words, for the log, the summary and the termination message
  why: string; // the reason without what happened ("the Pod's restartPolicy is Never, ...: proa stops the program"), for --check
  event?: SidecarEvent; // absent when nothing happened
}

/**
 * The kubelet restarts a native sidecar (an init container with restartPolicy Always) whatever the Pod's policy, even
 * while it shows it terminated with restartCount 0 and no lastState (about a second, on 1.33 and 1.35); a regular one
 * under Always, and under OnFailure after a failure. One that will not run again stops the program unless --no-critical;
 * one that comes back is reported unless --critical names it. Nothing is a death once the Pod is being deleted, proa
 * has received SIGTERM or the shutdown step has begun (`ending`): then the kubelet or proa is stopping the sidecars.
 */
export function sidecarVerdict(
  restartPolicy: string | undefined,
  native: boolean,
  before: ContainerStatus | undefined,
  after: ContainerStatus | undefined,
  flags: DeathFlags,
  ending: boolean,
): SidecarVerdict {
  const name = after?.name ?? before?.name ?? "?";
  const restarts = (status: ContainerStatus | undefined) => status?.restartCount ?? 0;
  const terminated = after?.state?.terminated;
  const wasTerminated = Boolean(before?.state?.terminated);
  const restarted = restarts(after) > restarts(before);
  // One event per run that ended: its termination, or (when no Pod showed that) its restart.
  const kind =
    terminated && (!wasTerminated || restarted) ? "terminated" : restarted && !wasTerminated ? "restarted" : undefined;
  if (!after || !kind) return { action: "none", reason: `${name}: no change`, why: "no change" };
  const ended = kind === "terminated" ? terminated : after.lastState?.terminated;
  const how = `exit code ${ended?.exitCode ?? "unknown"}${ended?.reason ? ` (${quote(ended.reason, 80)})` : ""}`;
  const comesBack = kind === "restarted" || runsAgain(restartPolicy, native, terminated?.exitCode);
  const event: SidecarEvent = {
    name,
    kind: kind === "restarted" ? "restarted" : comesBack ? "restarting" : "died",
    ...(ended?.exitCode !== undefined ? { exitCode: ended.exitCode } : {}),
    ...(ended?.reason ? { reason: quote(ended.reason, 80) } : {}),
    ...(ended?.finishedAt ? { finishedAt: quote(ended.finishedAt, 40) } : {}),
    restartCount: restarts(after),
  };
  const what = `${native ? "native " : ""}sidecar ${name} ${kind === "restarted" ? `was restarted after ${how}` : `terminated with ${how}`}`;
  const verdict = (action: SidecarVerdict["action"], joint: string, why: string): SidecarVerdict => ({
    action,
    reason: `${what}${joint}${why}`,
    why,
    event,
  });
  if (ending) return verdict("none", " ", "as its Pod is being stopped: not a death");
  const policy = native
    ? "the kubelet restarts native sidecars whatever the Pod's restartPolicy"
    : `the Pod's restartPolicy is ${restartPolicy ?? "unknown"}, so ${comesBack ? "the kubelet restarts it" : "it will not be restarted"}`;
  if (!comesBack && flags.noCritical)
    return verdict("report", " and ", `${policy}; --no-critical: the program runs on`);
  if (!comesBack) return verdict("stop", " and ", `${policy}: proa stops the program`);
  if (flags.critical && !flags.noCritical)
    return verdict("stop", "; ", `${policy}, but --critical names it: proa stops the program`);
  return verdict("report", "; ", `${policy}: the program runs on`);
}

// ---------------------------------------------------------------------------------------------------------------
// The wait

export interface ReadyOptions {
  container?: string; // --container / PROA_CONTAINER
  waitFor: string[]; // --wait-for
  ignore: string[]; // --ignore
  readyTimeoutMs?: number; // --ready-timeout; undefined: no bound, as in the original proa
}
/** The wait ended because --ready-timeout passed (named plain "Error", as the wait's other errors). */
export class ReadyTimeoutError extends Error {}

export interface ReadyPod {
  pod: Pod;
  ownContainer: string;
}

/** The watch's timing for a wait: with --ready-timeout, 401/403 and a missing Pod are retried until it passes. */
export const waitTiming = (options: ReadyOptions, timing: Partial<Timing> = {}): Partial<Timing> =>
  options.readyTimeoutMs === undefined ? timing : { ...timing, giveUpMs: Infinity };

/** Follows the Pod (feed, else a watch of its own) until every container but proa's own is ready. onPod receives
 * every snapshot with the container chosen as proa's own. Rejects with a user-facing Error, or with signal.reason when
 * aborted. */
export async function waitUntilReady(
  cluster: Cluster,
  options: ReadyOptions,
  log: Log,
  signal: AbortSignal,
  onPod?: (pod: Pod, ownContainer: string) => void,
  timing: Partial<Timing> = {},
  feed?: PodFeed,
): Promise<ReadyPod> {
  signal.throwIfAborted();
  const t = { ...defaultTiming, ...timing };
  const ownFeed = feed ? undefined : podFeed(cluster, log, waitTiming(options, timing));
  const pod = `${cluster.namespace}/${cluster.podName}`;
  const hints = ownContainerHints(options.container);
  const bounded = options.readyTimeoutMs !== undefined;
  const started = Date.now();
  let notReady: string[] | undefined; // undefined until the Pod has been seen
  let missing = false; // the API server answered that there is no such Pod
  let own: string | undefined;

  // Whatever ends the wait from outside the watch aborts the watch with the reason to reject with.
  const stop = new AbortController();
  const abort = () => stop.abort(signal.reason);
  signal.addEventListener("abort", abort);
  const readyTimer = bounded
    ? setTimeout(() => {
        const what = notReady
          ? `containers still not ready: ${notReady.join(", ")}`
          : missing
            ? `there is no Pod ${pod}: set POD_NAME and POD_NAMESPACE with the downward API`
            : `Pod ${pod} was never read from the API server (see the errors above)`;
        stop.abort(new ReadyTimeoutError(`--ready-timeout (${seconds(options.readyTimeoutMs)}) passed: ${what}`));
      }, options.readyTimeoutMs)
    : undefined;
  let missingTimer: NodeJS.Timeout | undefined;
  const reminder = setInterval(() => {
    const waitedS = Math.round((Date.now() - started) / 1000);
    if (notReady) log.info("still waiting for containers to be ready", { notReady, waitedS });
    else log.info(`still waiting to read Pod ${pod} from the API server`, { waitedS });
  }, t.reminderMs);

  log.info(`waiting for the other containers of Pod ${pod} to be ready`, {
    server: cluster.server,
    waitFor: options.waitFor,
    ignore: options.ignore,
  });
  try {
    for await (const seen of (feed ?? ownFeed!).follow(stop.signal)) {
      missing = seen === null;
      // Seen once, then gone: deleted. The uid is kept, so a Pod created again under its name cannot bring it back.
      if (seen === null && own !== undefined)
        throw new Error(`Pod ${pod} was deleted while proa waited for its containers to be ready`);
      if (seen === null) {
        log.error(`there is no Pod ${pod}: set POD_NAME and POD_NAMESPACE with the downward API: ${DOWNWARD_API}`);
        const giveUp = () =>
          stop.abort(
            new Error(
              `giving up after ${seconds(t.giveUpMs)}: there is no Pod ${pod}; set POD_NAME with the downward API`,
            ),
          );
        if (!bounded) missingTimer ??= setTimeout(giveUp, t.giveUpMs);
        continue;
      }
      clearTimeout(missingTimer);
      missingTimer = undefined;
      const chosen = ownContainerName(seen, hints);
      if (chosen.name !== own) log.info(`proa runs in container ${(own = chosen.name)}`, { rule: chosen.rule });
      onPod?.(seen, own);
      const state = readiness(seen, own, options.waitFor, options.ignore);
      if (state.failed) throw new Error(state.failed);
      if (state.notReady.length === 0) {
        log.info("the other containers are ready", { waitedMs: Date.now() - started });
        return { pod: seen, ownContainer: own };
      }
      if (state.notReady.join() !== notReady?.join()) {
        notReady = state.notReady;
        log.info("waiting for containers to be ready", { notReady });
        reminder.refresh();
      }
    }
    throw new Error("the watch of the Pod ended"); // unreachable: watchPod ends only by throwing
  } finally {
    await ownFeed?.close();
    signal.removeEventListener("abort", abort);
    clearTimeout(readyTimer);
    clearTimeout(missingTimer);
    clearInterval(reminder);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The run: the same watch, asking whether a sidecar died or restarted

export interface RunOptions {
  critical: string[]; // --critical NAME
  criticalAll: boolean; // --critical-all
  noCritical: boolean; // --no-critical
  stopTimeoutMs?: number; // --program-stop-timeout: SIGTERM to SIGKILL after a death (default: the grace period)
}

/** A sidecar's event as the run's record keeps it: when, since the program started, and whether it stopped the run. */
export interface RunEvent extends SidecarEvent {
  afterMs: number;
  stopped: boolean;
}

/** The containers the run watches (those the wait watched) with whether each is a native sidecar. */
export function watchedSidecars(pod: Pod, watched: string[]): { name: string; native: boolean }[] {
  const native = (pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === "Always").map((c) => c.name);
  return watched.map((name) => ({ name, native: native.includes(name) }));
}

/** Each sidecar's verdict between two Pods, for the containers watched. */
export function runVerdicts(
  before: Pod,
  after: Pod,
  watched: string[],
  options: RunOptions,
  ending: boolean,
): SidecarVerdict[] {
  const statuses = (pod: Pod) => [
    ...(pod.status?.containerStatuses ?? []),
    ...(pod.status?.initContainerStatuses ?? []),
  ];
  const find = (pod: Pod, name: string) => statuses(pod).find((s) => s.name === name);
  const deleting = ending || Boolean(after.metadata?.deletionTimestamp);
  return watchedSidecars(after, watched).map(({ name, native }) =>
    sidecarVerdict(
      restartPolicyOf(after),
      native,
      find(before, name),
      find(after, name),
      { critical: options.criticalAll || options.critical.includes(name), noCritical: options.noCritical },
      deleting,
    ),
  );
}

/**
 * Follows the Pod while the program runs, from `ready` (the Pod the wait ended on): logs each sidecar's death or
 * restart at once, and calls stop once, on the first that ends the run. Resolves with the events when `until` aborts.
 * A watch that gives up (401/403 for good) is logged: the program runs on, unwatched.
 */
export async function watchTheRun(
  feed: PodFeed,
  ready: Pod,
  watched: string[],
  options: RunOptions,
  ending: () => boolean,
  until: AbortSignal,
  log: Log,
  stop: (verdict: SidecarVerdict) => void,
): Promise<RunEvent[]> {
  const started = Date.now();
  const events: RunEvent[] = [];
  let before = ready;
  let stopped = false;
  try {
    for await (const pod of feed.follow(until)) {
      if (pod === null) continue; // gone: the shutdown step says so
      for (const verdict of runVerdicts(before, pod, watched, options, ending())) {
        if (!verdict.event) continue;
        const fields = { ...verdict.event, afterMs: Date.now() - started };
        // A sidecar stopping with its Pod is the kubelet's business, not an event of the run: logged, not recorded.
        if (verdict.action === "none") {
          log.info(verdict.reason, fields);
          continue;
        }
        const stopsNow = verdict.action === "stop" && !stopped;
        events.push({ ...fields, stopped: stopsNow });
        if (verdict.action === "report") log.warn(verdict.reason, fields);
        else log.error(verdict.reason, fields);
        if (stopsNow) {
          stopped = true;
          stop(verdict);
        }
      }
      before = pod;
    }
  } catch (error) {
    if (!until.aborted)
      log.warn("proa stopped watching the sidecars while the program runs: the watch of the Pod failed", {
        error: error instanceof Error ? error.message : String(error),
      });
  }
  return events;
}

const seconds = (ms = 0) => `${ms / 1000} s`;

function readProc(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined; // not Linux, or no procfs: the detection falls back to the Pod's spec
  }
}
