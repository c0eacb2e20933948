// An in-process fake Kubernetes API server over real HTTPS (test CA in test/fixtures/tls/), for the faults a real
// server will not produce on demand. It serves the list and the watch of Pods by field selector (and the GET of one
// Pod), checks the bearer token, and plays scripted faults. Its Pods and Status bodies are assembled from the
// responses captured from a real kube-apiserver (test/fixtures/README.md).
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ContainerStatus, Pod } from "../kube.ts";
import { captured, capturedPod } from "./fixtures/pods.ts";

const tls = (file: string) => readFileSync(new URL(`./fixtures/tls/${file}`, import.meta.url));
export const TEST_CA = tls("ca.crt");
export const OTHER_CA = tls("other-ca.crt"); // an unrelated CA, for the "certificate does not match" test

/** A scripted answer to the next request of that kind ("list" or "watch"; either when `on` is unset). */
export type Fault = { on?: "list" | "watch" } & (
  | { status: number; body?: string | object; headers?: Record<string, string> } // an object body is sent as JSON, a string as text/plain
  | { chunks: (string | Uint8Array | number)[]; end: "clean" | "cut" | "stall" } // 200, the body chunks one by one (a number: pause that many ms), then: end, cut the connection, or go silent
  | { destroy: true } // close the connection without an answer
  | { hang: true } // never answer, not even the headers
);

export interface RequestRecord {
  method: string;
  url: string; // path and query
  authorized: boolean; // whether the bearer token matched (the token itself is never kept)
  userAgent: string | undefined;
  at: number; // Date.now()
}

export interface FakeApiServer {
  host: string;
  port: number;
  serviceAccountDir: string; // token, ca.crt and namespace, for PROA_SERVICE_ACCOUNT_DIR
  namespace: string;
  podName: string;
  /** The token the server accepts. Assigning it does not rewrite the token file: see rotateToken. */
  token: string;
  /** Every request received, in order. */
  requests: RequestRecord[];
  /** Called with each request before it is answered (e.g. to rewrite the token file at a precise moment). */
  onRequest?: (request: RequestRecord) => void;
  /** KUBERNETES_SERVICE_HOST/PORT, PROA_SERVICE_ACCOUNT_DIR, POD_NAME, POD_NAMESPACE pointing at this server. */
  env(): Record<string, string>;
  /** The current Pod (with its resourceVersion), or null. */
  pod(): Pod | null;
  /** Replaces the Pod (null removes it): a new resourceVersion, and ADDED/MODIFIED/DELETED on the open watches. */
  setPod(pod: Pod | null): void;
  /** Queues scripted answers for the next matching requests, in order. */
  fail(...faults: Fault[]): void;
  /** Advances the resourceVersion (as other objects' changes do on a real server) and sends it in a BOOKMARK on the open watches. */
  bookmark(): void;
  /** Ends the open watches cleanly, as the server does when their timeoutSeconds pass. */
  endWatches(): void;
  /** Forgets the event history: a watch from an older resourceVersion gets the ERROR 410 Expired event. */
  compact(): void;
  /** Accepts only a new token and writes it to the token file, as the kubelet does. */
  rotateToken(token: string): void;
  close(): Promise<void>;
}

export interface FakeApiServerOptions {
  pod?: Pod | null; // default: podWith({ sidecars: ["sidecar-1"] }), ready
  host?: string; // default 127.0.0.1; "::1" for IPv6
  namespace?: string; // default: the Pod's metadata.namespace
  podName?: string; // default: the Pod's metadata.name
  ca?: Buffer; // the ca.crt written to serviceAccountDir (default: the CA that signed the server's certificate)
  version?: object; // the body of GET /version (default: none, a 404)
}

// Status bodies as the real kube-apiserver sent them (test/fixtures/README.md).
export const UNAUTHORIZED = captured<object>("unauthorized.json");
export const FORBIDDEN = captured<object>("forbidden.json"); // for User "system:serviceaccount:proa-e2e:proa-nobody"
export const EXPIRED = captured<{ object: object }>("watch-expired.jsonl").object; // a watch's ERROR event's Status: 410 Expired
export const GONE = { ...EXPIRED, reason: "Gone" }; // derived: the same 410 with reason Gone (metav1.StatusReasonGone)
const NOT_FOUND = captured<object>("not-found.json");

/** One line of a watch stream, as the API server frames it. */
export function watchEvent(type: string, object: unknown): string {
  return `${JSON.stringify({ type, object })}\n`;
}

export async function startFakeApiServer(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const host = options.host ?? "127.0.0.1";
  const initial = options.pod === undefined ? podWith({ sidecars: ["sidecar-1"], ready: true }) : options.pod;
  const namespace = options.namespace ?? initial?.metadata?.namespace ?? "proa-e2e";
  const podName = options.podName ?? initial?.metadata?.name ?? "proa-demo";
  let resourceVersion = 1000;
  let current: Pod | null = null;
  let oldest = 0; // a watch from below this resourceVersion has expired
  const history: { resourceVersion: number; line: string }[] = [];
  const watches = new Set<ServerResponse>(); // open watches of our Pod, served normally
  const sockets = new Set<Socket>();
  const faults: Fault[] = [];

  const serviceAccountDir = mkdtempSync(join(tmpdir(), "proa-sa-"));
  writeFileSync(join(serviceAccountDir, "ca.crt"), options.ca ?? TEST_CA);
  writeFileSync(join(serviceAccountDir, "namespace"), namespace);
  writeFileSync(join(serviceAccountDir, "token"), "test-token-1");

  const broadcast = (line: string) => {
    for (const res of watches) res.write(line);
  };

  const server = createServer({ cert: tls("server.crt"), key: tls("server.key") }, (req, res) => handle(req, res));
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  const api: FakeApiServer = {
    host,
    port: 0,
    serviceAccountDir,
    namespace,
    podName,
    token: "test-token-1",
    requests: [],
    env: () => ({
      KUBERNETES_SERVICE_HOST: host,
      KUBERNETES_SERVICE_PORT: String(api.port),
      PROA_SERVICE_ACCOUNT_DIR: serviceAccountDir,
      POD_NAME: podName,
      POD_NAMESPACE: namespace,
    }),
    pod: () => structuredClone(current),
    setPod(pod) {
      resourceVersion++;
      const type = pod === null ? "DELETED" : current === null ? "ADDED" : "MODIFIED";
      const next = structuredClone(pod ?? current);
      if (next)
        next.metadata = { ...next.metadata, namespace, name: podName, resourceVersion: String(resourceVersion) };
      current = pod === null ? null : next;
      if (next) {
        const line = watchEvent(type, next);
        history.push({ resourceVersion, line });
        broadcast(line);
      }
    },
    fail: (...more) => void faults.push(...more),
    bookmark() {
      const metadata = { resourceVersion: String(++resourceVersion), creationTimestamp: null }; // as captured in watch-events.jsonl
      broadcast(
        watchEvent("BOOKMARK", { kind: "Pod", apiVersion: "v1", metadata, spec: { containers: null }, status: {} }),
      );
    },
    endWatches() {
      for (const res of watches) res.end();
      watches.clear();
    },
    compact() {
      history.length = 0;
      oldest = resourceVersion;
    },
    rotateToken(token) {
      api.token = token;
      writeFileSync(join(serviceAccountDir, "token"), token);
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
      rmSync(serviceAccountDir, { recursive: true, force: true });
    },
  };

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "https://fake");
    const record: RequestRecord = {
      method: req.method ?? "",
      url: req.url ?? "",
      authorized: req.headers.authorization === `Bearer ${api.token}`,
      userAgent: req.headers["user-agent"],
      at: Date.now(),
    };
    api.requests.push(record);
    api.onRequest?.(record);
    if (!record.authorized) return json(res, 401, UNAUTHORIZED);
    if (url.pathname === "/version" && options.version) return json(res, 200, options.version);
    const path = /^\/api\/v1\/namespaces\/([^/]+)\/pods(?:\/([^/]+))?$/.exec(url.pathname);
    if (req.method !== "GET" || !path) return json(res, 404, NOT_FOUND);
    if (path[2] !== undefined) {
      // GET of one Pod by name
      if (path[1] === namespace && path[2] === podName && current) return json(res, 200, current);
      return json(res, 404, {
        ...NOT_FOUND,
        message: `pods "${path[2]}" not found`,
        details: { name: path[2], kind: "pods" },
      });
    }
    const kind = url.searchParams.get("watch") === "1" || url.searchParams.get("watch") === "true" ? "watch" : "list";
    const scripted = faults.findIndex((fault) => fault.on === undefined || fault.on === kind);
    if (scripted !== -1) return void play(faults.splice(scripted, 1)[0] as Fault, res);

    const ours = path[1] === namespace && url.searchParams.get("fieldSelector") === `metadata.name=${podName}`;
    if (kind === "list") {
      const items = ours && current ? [current] : [];
      return json(res, 200, {
        kind: "PodList",
        apiVersion: "v1",
        metadata: { resourceVersion: String(resourceVersion) },
        items,
      });
    }
    const from = Number(url.searchParams.get("resourceVersion") ?? "0");
    res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-cache, private" });
    if (ours && from < oldest)
      return void res.end(
        watchEvent("ERROR", { ...EXPIRED, message: `too old resource version: ${from} (${oldest})` }),
      );
    res.flushHeaders();
    const timeoutSeconds = Number(url.searchParams.get("timeoutSeconds") ?? "0");
    const timer =
      timeoutSeconds > 0 ? setTimeout(() => (watches.delete(res), res.end()), timeoutSeconds * 1000) : undefined;
    res.on("close", () => (watches.delete(res), clearTimeout(timer)));
    if (!ours) return; // a watch of another Pod: nothing will happen until its timeoutSeconds
    for (const event of history) if (event.resourceVersion > from) res.write(event.line);
    watches.add(res);
  }

  async function play(fault: Fault, res: ServerResponse): Promise<void> {
    if ("destroy" in fault) return void res.socket?.destroy();
    if ("hang" in fault) return;
    if ("status" in fault) {
      const text = typeof fault.body === "string";
      res.writeHead(fault.status, {
        "Content-Type": text ? "text/plain; charset=utf-8" : "application/json",
        ...fault.headers,
      });
      return void res.end(text ? fault.body : JSON.stringify(fault.body ?? {}));
    }
    res.writeHead(200, { "Content-Type": "application/json" });
    res.flushHeaders();
    for (const chunk of fault.chunks) {
      // Paced so that each chunk reaches the client as its own read, not coalesced with the next.
      await new Promise((resolve) => (typeof chunk === "number" ? setTimeout(resolve, chunk) : setImmediate(resolve)));
      if (res.destroyed) return;
      if (typeof chunk !== "number") res.write(chunk);
    }
    await new Promise((resolve) => setImmediate(resolve));
    if (fault.end === "clean") res.end();
    if (fault.end === "cut") res.socket?.destroy();
  }

  if (initial) api.setPod(initial);
  server.listen(0, host);
  await new Promise((resolve, reject) => server.once("listening", resolve).once("error", reject));
  api.port = (server.address() as { port: number }).port;
  return api;
}

function json(res: ServerResponse, code: number, body: object): void {
  res.writeHead(code, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}

/** A path that never exists: see podWith. */
export const NO_TERMINATION_LOG = join(tmpdir(), "proa-test-no-such-directory", "termination-log");

export interface PodShape {
  main?: string; // proa's container, first in spec.containers (default "main"; ready, as a container without probe)
  sidecars?: string[]; // further regular containers
  nativeSidecars?: string[]; // initContainers with restartPolicy Always (derived: Kubernetes 1.20 has none)
  initContainers?: string[]; // plain init containers, completed
  ready?: boolean | Record<string, boolean>; // readiness of the sidecars (default false)
  terminated?: Record<string, { exitCode: number; reason?: string }>; // containers that have exited
  restartPolicy?: "Always" | "OnFailure" | "Never"; // default Never, as in a Job
  name?: string; // default the captured Pod's, proa-demo
  uid?: string;
}

/** A Pod with the given containers, assembled from the captured ones (test/fixtures/pod-*.json): the captured Pod's
 * metadata and spec, its main container, its sidecar-1 as the template of every sidecar, the captured terminated
 * state of a failed sidecar and the captured completed init container. Derived: every container's
 * terminationMessagePath points at NO_TERMINATION_LOG instead of the server's default /dev/termination-log, so that
 * no test writes the machine's own (CI may itself run in a Pod); the termination message's tests name a file. */
export function podWith(shape: PodShape = {}): Pod {
  type Container = { name: string; restartPolicy?: string };
  const pod = capturedPod("all-ready");
  const [mainSpec, sidecarSpec] = pod.spec?.containers as [Container, Container];
  const [mainStatus, running] = pod.status?.containerStatuses as [ContainerStatus, ContainerStatus];
  const failed = capturedPod("sidecar-failed").status?.containerStatuses?.find((s) => s.state?.terminated)?.state
    ?.terminated;
  const init = capturedPod("init-done");
  const [initSpec, initStatus] = [init.spec?.initContainers?.[0], init.status?.initContainerStatuses?.[0]] as [
    Container,
    ContainerStatus,
  ];

  const main = shape.main ?? "main";
  const uid = shape.uid ?? pod.metadata?.uid;
  const id = (name: string) => `containerd://${createHash("sha256").update(`${uid}/${name}`).digest("hex")}`;
  const ready = (name: string) => (typeof shape.ready === "object" ? shape.ready[name] : shape.ready) ?? name === main;
  const status = (template: ContainerStatus, name: string): ContainerStatus => {
    const terminated = shape.terminated?.[name];
    if (!terminated) return { ...template, name, containerID: id(name), ready: ready(name) };
    const state = {
      terminated: {
        ...failed,
        exitCode: terminated.exitCode,
        reason: terminated.reason ?? (terminated.exitCode === 0 ? "Completed" : "Error"),
        containerID: id(name),
      },
    };
    return { ...template, name, containerID: id(name), ready: false, started: false, state } as ContainerStatus;
  };
  const regular = [main, ...(shape.sidecars ?? [])];
  const natives = shape.nativeSidecars ?? [];
  const inits = shape.initContainers ?? [];
  const statuses = [
    ...regular.map((name) => status(name === main ? mainStatus : running, name)),
    ...natives.map((name) => status(running, name)),
  ];
  const unready = statuses.filter((s) => !s.ready).map((s) => s.name);

  pod.metadata = { ...pod.metadata, name: shape.name ?? pod.metadata?.name, uid };
  pod.spec = {
    ...pod.spec,
    containers: regular.map((name) => ({
      ...(name === main ? mainSpec : sidecarSpec),
      name,
      terminationMessagePath: NO_TERMINATION_LOG,
    })),
    initContainers: [
      ...inits.map((name) => ({ ...initSpec, name })),
      ...natives.map((name) => ({ ...sidecarSpec, name, restartPolicy: "Always" })),
    ],
    restartPolicy: shape.restartPolicy ?? "Never",
  };
  const conditions = (pod.status as { conditions: { type: string }[] }).conditions.map((c) =>
    (c.type === "Ready" || c.type === "ContainersReady") && unready.length > 0
      ? {
          ...c,
          status: "False",
          reason: "ContainersNotReady",
          message: `containers with unready status: [${unready.join(" ")}]`,
        }
      : c,
  );
  pod.status = {
    ...pod.status,
    conditions,
    containerStatuses: statuses.slice(0, regular.length),
    initContainerStatuses: [
      ...inits.map((name) => ({ ...initStatus, name, containerID: id(name) })),
      ...statuses.slice(regular.length),
    ],
  } as Pod["status"];
  if (pod.spec.initContainers?.length === 0) delete pod.spec.initContainers;
  if (pod.status?.initContainerStatuses?.length === 0) delete pod.status.initContainerStatuses;
  return pod;
}
