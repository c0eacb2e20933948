// The fleet: what N proas cost one real kube-apiserver (1.20.2 with etcd, as the end-to-end suite runs it: test/e2e/
// kube-apiserver.sh), side by side with the floor (N minimal list-then-watch clients, floor/fleet-lifecycle.js), and
// what happens when that API server restarts under N waiting proas (the herd).
//
// Each client is a node process with its own Pod (N Pods over a handful of namespaces, job.yaml's ServiceAccount, Role
// and RoleBinding, a real TokenRequest token and the server's CA). There is no kubelet: the benchmark writes the
// container statuses through pods/status, one JSON merge PATCH per change, as the e2e suite's kubelet stand-in does.
// Its program `sh -c 'date +%s%N > STAMP'` writes the moment it runs; its one shutdown URL is a server in this process
// that answers and then marks both sidecars terminated.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { jobYamlDocuments, KubeServer, podManifest, skipReason } from "../test/e2e/cluster.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PROA_BUNDLE = join(ROOT, "dist", "proa.js");
const FLOOR = join(ROOT, "bench", "floor", "fleet-lifecycle.js");
const NAMESPACES = 5;
const SIDECARS = ["sidecar-1", "sidecar-2"];
const READY_INTERVAL_MS = 50; // between two Pods' ready changes: 20 status changes per second
const PHASE_TIMEOUT_MS = 180_000; // any one wait of a phase: a broken client cannot hang the benchmark
const HERD_WINDOW_MS = 30_000; // after the restarted server's first request
const STOP_TIMEOUT_S = 5; // the e2e suite's: SIGTERM, open watches kept (silent) this long, then SIGKILL

// Ratios to the floor measured in the same run: requests 4 per Pod against the floor's 2, the p99 reaction 200 ms
// against the quiet run's floor of 55.3 ms (3.6×, rounded down), so that a slower machine moves both alike.
export const FLEET_TARGETS = { requestsVsFloor: 2, cpuVsFloor: 1.5, reactionP99VsFloor: 3.5, herdShareOfN: 0.5 };

const now = () => performance.timeOrigin + performance.now(); // ms since the epoch, sub-ms: comparable with `date +%s%N`
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const percentile = (xs: number[], p: number) => {
  const s = sorted(xs);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

// ---------------------------------------------------------------------------------------------------------------
// CPU time from /proc (clock ticks, 100 per second on Linux)

const TICK_MS = 10;
function statFields(pid: number | "self"): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}
/** utime + stime of a running process, in ms. */
const cpuMs = (pid: number) => (Number(statFields(pid)[11]) + Number(statFields(pid)[12])) * TICK_MS;
/** cutime + cstime of this process: the CPU of every child it has reaped (and of their reaped children), in ms. */
const childrenCpuMs = () => (Number(statFields("self")[13]) + Number(statFields("self")[14])) * TICK_MS;

// ---------------------------------------------------------------------------------------------------------------
// The API server's metrics: apiserver_request_total on pods, by verb and subresource; open watches on pods

type Counts = Record<string, number>; // "LIST", "WATCH", "PATCH status"...
function podRequestCounts(metrics: string): Counts {
  const counts: Counts = {};
  for (const line of metrics.split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (labels.resource !== "pods" || labels.scope !== "namespace") continue; // cluster scope: the server's own informers
    const key = labels.subresource ? `${labels.verb} ${labels.subresource}` : labels.verb!;
    counts[key] = (counts[key] ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return counts;
}
/** Open watches of Pods in a namespace (the server's own informers watch them cluster-wide). */
function openPodWatches(metrics: string): number {
  const line = metrics
    .split("\n")
    .find(
      (l) =>
        l.startsWith("apiserver_longrunning_gauge{") &&
        ['resource="pods"', 'verb="WATCH"', 'subresource=""', 'scope="namespace"'].every((label) => l.includes(label)),
    );
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}
const diff = (after: Counts, before: Counts): Counts =>
  Object.fromEntries(
    Object.keys(after)
      .map((k) => [k, after[k]! - (before[k] ?? 0)])
      .filter(([, v]) => v !== 0),
  );

// ---------------------------------------------------------------------------------------------------------------
// The fleet's world: the server, namespaces, Pods, the shutdown server, the clients

interface Client {
  pod: string;
  namespace: string;
  stamp: string; // the program writes `date +%s%N` here
  child: ChildProcess;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

type Phase = { running: true; ready: boolean } | { terminated: number };
function containerStatuses(pod: string, sidecars: Phase): object[] {
  const started = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace(".000Z", "Z");
  const status = (name: string, phase: Phase) => {
    const base = {
      name,
      restartCount: 0,
      image: "busybox:1.36",
      imageID: "",
      containerID: `containerd://${Buffer.from(`${pod}/${name}`).toString("hex").padEnd(64, "0").slice(0, 64)}`,
    };
    if ("running" in phase)
      return { ...base, ready: phase.ready, started: true, state: { running: { startedAt: started } } };
    return {
      ...base,
      ready: false,
      started: false,
      state: {
        terminated: { exitCode: phase.terminated, reason: "Completed", startedAt: started, finishedAt: started },
      },
    };
  };
  return [status("main", { running: true, ready: true }), ...SIDECARS.map((name) => status(name, sidecars))];
}

class Fleet {
  readonly clients: Client[] = [];
  private shutdownServer?: Server;
  shutdownUrl = "";
  private readonly serviceAccounts = new Map<string, string>();
  private readonly problems: string[] = [];

  constructor(
    readonly server: KubeServer,
    readonly scratch: string,
  ) {}

  static async start(scratch: string): Promise<Fleet> {
    const server = await KubeServer.start(join(scratch, "server"));
    const fleet = new Fleet(server, scratch);
    const docs = jobYamlDocuments();
    for (let i = 1; i <= NAMESPACES; i++) {
      const ns = `fleet-${i}`;
      await server.createNamespace(ns);
      for (const kind of ["ServiceAccount", "Role", "RoleBinding"]) {
        const { status, body } = await server.applyYaml(
          ns,
          docs.find((d) => d.kind === kind)!,
        );
        if (status !== 201)
          throw new Error(`creating job.yaml's ${kind} in ${ns}: HTTP ${status}: ${JSON.stringify(body)}`);
      }
      const account = docs.find((d) => d.kind === "ServiceAccount")!.name;
      fleet.serviceAccounts.set(ns, await server.serviceAccountDir(join(scratch, ns, "serviceaccount"), ns, account));
    }
    // The sidecars' one shutdown URL: answers, then the "kubelet" reports both sidecars terminated with 0.
    fleet.shutdownServer = createServer((req, res) => {
      const [, ns, pod] = (req.url ?? "").split("/");
      req.resume();
      res.end(
        "bye\n",
        () =>
          void fleet
            .setSidecars(ns!, pod!, { terminated: 0 })
            .catch((error: Error) => fleet.problems.push(error.message)),
      );
    });
    await new Promise<void>((resolve) => fleet.shutdownServer!.listen(0, "127.0.0.1", resolve));
    fleet.shutdownUrl = `http://127.0.0.1:${(fleet.shutdownServer.address() as AddressInfo).port}`;
    return fleet;
  }

  /** One JSON merge PATCH of pods/status: the whole containerStatuses list replaced. Resolves with when it was sent. */
  async setSidecars(namespace: string, pod: string, phase: Phase): Promise<number> {
    const sentAt = now();
    await this.server.api(
      "PATCH",
      `/api/v1/namespaces/${namespace}/pods/${pod}/status`,
      { status: { phase: "Running", containerStatuses: containerStatuses(pod, phase) } },
      "application/merge-patch+json",
    );
    return sentAt;
  }

  /** count Pods named prefix-i, spread over the namespaces, each with its sidecars running but not ready. */
  async createPods(prefix: string, count: number): Promise<{ namespace: string; pod: string }[]> {
    const pods = Array.from({ length: count }, (_, i) => ({
      namespace: `fleet-${(i % NAMESPACES) + 1}`,
      pod: `${prefix}-${i}`,
    }));
    await inBatches(pods, 10, async ({ namespace, pod }) => {
      const main = { terminationMessagePath: join(this.scratch, "no-such-directory", "termination-log") };
      await this.server.api("POST", `/api/v1/namespaces/${namespace}/pods`, podManifest(pod, { main }));
      await this.setSidecars(namespace, pod, { running: true, ready: false });
    });
    return pods;
  }

  launch(
    kind: "proa" | "floor",
    { namespace, pod }: { namespace: string; pod: string },
    port = this.server.env.KUBE_PORT,
  ): Client {
    const stamp = join(this.scratch, `${pod}.stamp`);
    const program = ["sh", "-c", 'date +%s%N > "$0"', stamp];
    const url = `${this.shutdownUrl}/${namespace}/${pod}`;
    const args =
      kind === "proa" ? [PROA_BUNDLE, "--shutdown-http-post", url, "--", ...program] : [FLOOR, url, "--", ...program];
    const env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      KUBERNETES_SERVICE_HOST: this.server.env.KUBE_HOST,
      KUBERNETES_SERVICE_PORT: port,
      PROA_SERVICE_ACCOUNT_DIR: this.serviceAccounts.get(namespace)!,
      POD_NAME: pod,
      POD_NAMESPACE: namespace,
      PROA_CONTAINER: "main", // no container to detect outside a container, as in the e2e suite
    };
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (text: string) => void (stderr = (stderr + text).slice(-4000)));
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on("exit", (code, signal) => resolve({ code, signal })),
    );
    const client = {
      pod,
      namespace,
      stamp,
      child,
      exit,
      stderr: () => `${kind} ${namespace}/${pod} stderr:\n${stderr}`,
    };
    this.clients.push(client);
    return client;
  }

  metrics = async () => String((await this.server.api("GET", "/metrics")) ?? "");
  apiserverPid = () => Number(readFileSync(join(this.server.dir, "kube-apiserver.pid"), "utf8"));
  etcdPid = () => Number(readFileSync(join(this.server.dir, "etcd.pid"), "utf8"));

  async untilWatching(clients: Client[], what: string): Promise<void> {
    const count = clients.length;
    const deadline = Date.now() + PHASE_TIMEOUT_MS;
    for (let open = 0; (open = openPodWatches(await this.metrics())) < count; await sleep(200)) {
      if (Date.now() > deadline) throw new Error(`timed out: ${what} (${open} watching)`);
      const gone = clients.find((c) => c.child.exitCode !== null || c.child.signalCode !== null);
      if (gone) throw new Error(`a client exited while the others were starting: ${gone.stderr()}`);
    }
  }

  checkProblems(): void {
    if (this.problems.length > 0) throw new Error(`status writes failed: ${this.problems.slice(0, 3).join("; ")}`);
  }

  /** Kills every client still running and stops the server: also on failure and on Ctrl-C. */
  async stop(): Promise<void> {
    for (const client of this.clients)
      if (client.child.exitCode === null && client.child.signalCode === null) client.child.kill("SIGKILL");
    this.shutdownServer?.closeAllConnections();
    this.shutdownServer?.close();
    await KubeServer.stop(this.server.dir).catch(() => {});
  }
}

async function inBatches<T>(items: T[], size: number, run: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(run));
}

async function exitedWithin(client: Client, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${client.stderr()}`)), ms)),
  );
  try {
    const { code, signal } = await Promise.race([client.exit, timeout]);
    if (code !== 0) throw new Error(`exited with ${code ?? signal}, not 0: ${client.stderr()}`);
    return code;
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// One quiet lifecycle of N clients: start, all watching, ready one Pod every READY_INTERVAL_MS, all exited

export interface LifecycleFigures {
  clients: number;
  requests: Counts; // on pods, by verb (and subresource), during the phase: the clients' and the benchmark's
  clientRequestsPerPod: Record<string, number>; // LIST, WATCH, GET of pods (the benchmark makes none)
  clientRequestsPerPodTotal: number;
  apiserverCpuMsPerPod: number;
  etcdCpuMsPerPod: number;
  clientCpuMsPerPod: number; // the client process and its program (sh, date), from this process's cutime + cstime
  reactionMs: { p50: number; p99: number; max: number; p99FirstHalf: number };
  seconds: number;
}

async function lifecycle(fleet: Fleet, kind: "proa" | "floor", count: number): Promise<LifecycleFigures> {
  const pods = await fleet.createPods(kind, count);
  await sleep(1000); // the creation's own work settles before the figures start
  const [metricsBefore, apiBefore, etcdBefore, childrenBefore, began] = [
    podRequestCounts(await fleet.metrics()),
    cpuMs(fleet.apiserverPid()),
    cpuMs(fleet.etcdPid()),
    childrenCpuMs(),
    now(),
  ];
  const clients = pods.map((pod) => fleet.launch(kind, pod));
  await fleet.untilWatching(clients, `${count} ${kind} clients watching`);
  await sleep(500);
  const sent: number[] = [];
  for (const client of clients) {
    if (client.child.exitCode !== null) throw new Error(`exited before its sidecars were ready: ${client.stderr()}`);
    sent.push(await fleet.setSidecars(client.namespace, client.pod, { running: true, ready: true }));
    await sleep(READY_INTERVAL_MS);
  }
  for (const client of clients) await exitedWithin(client, PHASE_TIMEOUT_MS);
  fleet.checkProblems();
  const deadline = Date.now() + 30_000; // a watch is counted when its handler returns
  while (openPodWatches(await fleet.metrics()) > 0 && Date.now() < deadline) await sleep(200);
  const [metricsAfter, apiAfter, etcdAfter, childrenAfter] = [
    podRequestCounts(await fleet.metrics()),
    cpuMs(fleet.apiserverPid()),
    cpuMs(fleet.etcdPid()),
    childrenCpuMs(),
  ];
  const requests = diff(metricsAfter, metricsBefore);
  const perPod = Object.fromEntries(
    ["LIST", "WATCH", "GET"].map((verb) => [verb, round((requests[verb] ?? 0) / count, 3)]),
  );
  const reactions = clients.map((client, i) => Number(readFileSync(client.stamp, "utf8").trim()) / 1e6 - sent[i]!);
  const r = (x: number) => round(x, 1);
  return {
    clients: count,
    requests,
    clientRequestsPerPod: perPod,
    clientRequestsPerPodTotal: round(
      Object.values(perPod).reduce((a, b) => a + b, 0),
      3,
    ),
    apiserverCpuMsPerPod: round((apiAfter - apiBefore) / count),
    etcdCpuMsPerPod: round((etcdAfter - etcdBefore) / count),
    clientCpuMsPerPod: round((childrenAfter - childrenBefore) / count),
    reactionMs: {
      p50: r(percentile(reactions, 50)),
      p99: r(percentile(reactions, 99)),
      max: r(Math.max(...reactions)),
      p99FirstHalf: r(percentile(reactions.slice(0, count >> 1), 99)),
    },
    seconds: round((now() - began) / 1000, 1),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The herd: N proas watching, kube-apiserver restarted (with its audit log on), requests counted per 100 ms from it

interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  requestURI: string;
  user?: { username?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
}

export interface HerdFigures {
  clients: number;
  restartSeconds: number; // from SIGTERM until the restarted server answered /readyz
  downSeconds: number; // from the old server's last watch reset (SIGKILL) to the new server's first request
  requests: number; // proas' requests to the new server, until all watched again (at least 30 s)
  requestsByVerb: Record<string, number>;
  requestsByCode: Record<string, number>;
  peakRequestsPerSecond: number;
  peakRequestsPer100Ms: number;
  peakReconnectsPerSecond: number; // proas whose first request to the new server fell in the same second
  peakReconnectsPer100Ms: number;
  reconnectSpreadMs: { first: number; p50: number; last: number }; // each proa's first request, from the first of all
  reconnectsPerSecond: number[]; // each proa's first request to the new server: how many fell in each second
  readyzAfterMs: number; // when the restart helper saw /readyz answer, from the new server's first request
  allWatchingAfterMs: number; // from the new server's first request until every proa's watch was open
  exited: number; // proas that exited during the herd (must be 0)
}

/** With a gate, the proas reach the server through a load balancer's stand-in (startGate): it refuses connections until
 * the server answers /readyz. Without one they connect to it directly, and its listen backlog holds what comes early. */
async function herd(fleet: Fleet, count: number, gated: boolean): Promise<HerdFigures> {
  const prefix = gated ? "gated" : "herd";
  const pods = await fleet.createPods(prefix, count);
  const gate = gated ? await startGate(fleet.server) : undefined;
  try {
    return await herdRestart(
      fleet,
      pods.map((pod) => fleet.launch("proa", pod, gate?.port)),
      new Set(pods.map((p) => p.pod)),
    );
  } finally {
    gate?.close();
  }
}

/** A TCP proxy on loopback in front of kube-apiserver that, as a load balancer's health check would, refuses every
 * connection (closes it at once) while the server's /readyz does not answer 200, checked every 500 ms. */
async function startGate(server: KubeServer): Promise<{ port: string; close(): void }> {
  const [host, upstreamPort] = [server.env.KUBE_HOST, Number(server.env.KUBE_PORT)];
  let ready = true;
  let stopped = false;
  const sockets = new Set<Socket>();
  const proxy = createTcpServer((client) => {
    if (!ready) return void client.destroy();
    const upstream = connect(upstreamPort, host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {}).on("close", () => (sockets.delete(socket), client.destroy(), upstream.destroy()));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  void (async () => {
    while (!stopped) {
      ready = await server.call("GET", "/readyz").then(
        ({ status }) => status === 200,
        () => false,
      );
      await sleep(500);
    }
  })();
  return {
    port: String((proxy.address() as AddressInfo).port),
    close() {
      stopped = true;
      for (const socket of sockets) socket.destroy();
      proxy.close();
    },
  };
}

async function herdRestart(fleet: Fleet, clients: Client[], ours: Set<string>): Promise<HerdFigures> {
  const count = clients.length;
  await fleet.untilWatching(clients, `${count} proas watching before the restart`);
  await sleep(3000); // past proa's minWatchMs: each watch has lasted, as in a real fleet
  const audit = join(fleet.server.dir, "audit.log");
  const restartBegan = Date.now();
  await fleet.server.restartApiserver(0, STOP_TIMEOUT_S, { ...process.env, PROA_E2E_AUDIT: "1" });
  const readyAt = Date.now();
  // Until every proa has an open watch on the new server: proa's backoff is capped at 30 s, so that can take longer
  // than the 30 s window after the server is back.
  const deadline = readyAt + HERD_WINDOW_MS + 45_000;
  let watchingAt: number | undefined;
  while (Date.now() < deadline) {
    if (openPodWatches(await fleet.metrics()) >= count) {
      watchingAt = Date.now();
      break;
    }
    await sleep(250);
  }
  const firstAudited = auditEvents(audit).find(
    (e) =>
      e.user?.username?.startsWith("system:serviceaccount:") && Date.parse(e.requestReceivedTimestamp) >= restartBegan,
  );
  if (firstAudited)
    await sleep(Math.max(0, Date.parse(firstAudited.requestReceivedTimestamp) + HERD_WINDOW_MS - Date.now())); // the whole window
  const exited = clients.filter((c) => c.child.exitCode !== null || c.child.signalCode !== null).length;

  // The proas' requests to the new server (one per auditID, at the time it was received), until all were watching.
  const requests = new Map<string, { at: number; verb: string; pod: string; code?: number; completed: boolean }>();
  for (const event of auditEvents(audit)) {
    const pod = decodeURIComponent(/fieldSelector=([^&]*)/.exec(event.requestURI)?.[1] ?? "").replace(
      "metadata.name=",
      "",
    );
    if (
      !event.user?.username?.startsWith("system:serviceaccount:") ||
      !ours.has(pod) ||
      Date.parse(event.requestReceivedTimestamp) < restartBegan
    )
      continue;
    const known = requests.get(event.auditID);
    const completed = (known?.completed ?? false) || event.stage === "ResponseComplete" || event.stage === "Panic";
    requests.set(event.auditID, {
      at: Date.parse(event.requestReceivedTimestamp),
      verb: event.verb,
      pod,
      code: event.responseStatus?.code ?? known?.code,
      completed,
    });
  }
  const all = [...requests.values()].sort((a, b) => a.at - b.at);
  const start = all[0]?.at ?? readyAt; // "back": the new server's first request from a proa (it serves before /readyz)
  const until = Math.max(start + HERD_WINDOW_MS, watchingAt ?? Date.now());
  const inWindow = all.filter((r) => r.at <= until);
  const buckets = (xs: number[], ms: number) => {
    const counts = new Array(Math.ceil((until - start + 1) / ms)).fill(0) as number[];
    for (const x of xs) counts[Math.floor((x - start) / ms)]!++;
    return counts;
  };
  const firstOf = new Map<string, number>();
  for (const r of inWindow) if (!firstOf.has(r.pod)) firstOf.set(r.pod, r.at);
  const reconnects = [...firstOf.values()];
  // Each proa's open watch: received and not completed by then (the server logs a watch's start only with its
  // first event; the gauge above counted it as open in the watch handler).
  const openWatch = new Map<string, number>();
  for (const r of inWindow) if (r.verb === "watch" && !r.completed) openWatch.set(r.pod, r.at);
  const countBy = (key: (r: (typeof inWindow)[number]) => string) =>
    inWindow.reduce<Record<string, number>>((acc, r) => ((acc[key(r)] = (acc[key(r)] ?? 0) + 1), acc), {});
  const killedAt = restartBegan + STOP_TIMEOUT_S * 1000; // the old server kept the watches open until its SIGKILL
  const relative = (x: number) => Math.round(x - start);
  const figures: HerdFigures = {
    clients: count,
    restartSeconds: round((readyAt - restartBegan) / 1000, 1),
    downSeconds: round((start - killedAt) / 1000, 1),
    requests: inWindow.length,
    requestsByVerb: countBy((r) => r.verb),
    requestsByCode: countBy((r) => String(r.code ?? "none")),
    peakRequestsPerSecond: Math.max(
      ...buckets(
        inWindow.map((r) => r.at),
        1000,
      ),
    ),
    peakRequestsPer100Ms: Math.max(
      ...buckets(
        inWindow.map((r) => r.at),
        100,
      ),
    ),
    peakReconnectsPerSecond: Math.max(...buckets(reconnects, 1000)),
    peakReconnectsPer100Ms: Math.max(...buckets(reconnects, 100)),
    reconnectSpreadMs: {
      first: relative(Math.min(...reconnects)),
      p50: relative(percentile(reconnects, 50)),
      last: relative(Math.max(...reconnects)),
    },
    reconnectsPerSecond: buckets(reconnects, 1000),
    readyzAfterMs: relative(readyAt),
    allWatchingAfterMs:
      watchingAt !== undefined && openWatch.size >= count ? relative(Math.max(...openWatch.values())) : NaN,
    exited,
  };
  if (exited > 0)
    throw Object.assign(
      new Error(
        `${exited} proas exited during the herd; first: ${clients.find((c) => c.child.exitCode !== null)!.stderr()}`,
      ),
      { figures },
    );
  if (watchingAt === undefined)
    throw Object.assign(
      new Error(
        `not every proa was watching again ${(deadline - readyAt) / 1000} s after the restarted server was ready`,
      ),
      { figures },
    );
  // The rest of the lifecycle: every proa runs its program and exits 0.
  for (const client of clients) {
    await fleet.setSidecars(client.namespace, client.pod, { running: true, ready: true });
    await sleep(READY_INTERVAL_MS / 2);
  }
  for (const client of clients) await exitedWithin(client, PHASE_TIMEOUT_MS);
  fleet.checkProblems();
  return figures;
}

function auditEvents(path: string): AuditEvent[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as AuditEvent);
}

// ---------------------------------------------------------------------------------------------------------------

export interface FleetFigures {
  pods: number;
  idleApiserverCpuMsPerS: number; // the server alone, doing nothing asked, for scale
  proa: LifecycleFigures;
  floor: LifecycleFigures;
  herd: HerdFigures; // proas connected to the server directly
  gatedHerd: HerdFigures; // proas behind the readyz-gated proxy, as behind a load balancer
  loadAverageBefore: string;
}

/** The whole fleet figure: proa's lifecycle, the floor's, the herd; stops everything it started, also on Ctrl-C. */
export async function fleet(
  count: number,
  progress: (line: string) => void,
): Promise<FleetFigures | { skipped: string }> {
  const skip = skipReason();
  if (skip) return { skipped: skip };
  const loadAverageBefore = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  const scratch = mkdtempSync(join(tmpdir(), "proa-fleet-"));
  mkdirSync(join(scratch, "server"));
  let world: Fleet | undefined;
  const stopEverything = async (signal: NodeJS.Signals) => {
    progress(`fleet: ${signal}: stopping the clients and the API server`);
    await world?.stop();
    if (!world) await KubeServer.stop(join(scratch, "server")).catch(() => {});
    rmSync(scratch, { recursive: true, force: true });
  };
  // Whatever the stop met, the bench ends: a Ctrl-C must never leave it running.
  const interrupted = (signal: NodeJS.Signals) => void stopEverything(signal).finally(() => process.exit(130));
  process.once("SIGINT", interrupted).once("SIGTERM", interrupted);
  try {
    world = await Fleet.start(scratch).catch(async (error: unknown) => {
      await KubeServer.stop(join(scratch, "server")).catch(() => {});
      throw error;
    });
    const [idleBefore, idleBegan] = [cpuMs(world.apiserverPid()), now()];
    await sleep(3000);
    const idleApiserverCpuMsPerS = round(((cpuMs(world.apiserverPid()) - idleBefore) * 1000) / (now() - idleBegan), 1);
    progress(`fleet: ${count} proas...`);
    const proa = await lifecycle(world, "proa", count);
    progress(`fleet: ${count} floor clients...`);
    const floor = await lifecycle(world, "floor", count);
    progress(`fleet: the herd, ${count} proas and a restart...`);
    const herdFigures = await herd(world, count, false);
    progress(`fleet: the herd behind a readyz-gated proxy, ${count} proas and a restart...`);
    const gatedHerd = await herd(world, count, true);
    return { pods: count, idleApiserverCpuMsPerS, proa, floor, herd: herdFigures, gatedHerd, loadAverageBefore };
  } finally {
    process.off("SIGINT", interrupted).off("SIGTERM", interrupted);
    await world?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

export type FleetRow = {
  scenario: string;
  proa: string;
  floor: string;
  vsFloor: string;
  target: string;
  met: boolean | null;
};

export function fleetRows(f: FleetFigures): FleetRow[] {
  const t = FLEET_TARGETS;
  const n = f.pods;
  const verbs = (x: LifecycleFigures) =>
    `${x.clientRequestsPerPodTotal} (${Object.entries(x.clientRequestsPerPod)
      .filter(([, v]) => v > 0)
      .map(([k, v]) => `${v} ${k}`)
      .join(", ")})`;
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  return [
    {
      scenario: `fleet of ${n}: API requests per Pod lifecycle, by verb`,
      proa: verbs(f.proa),
      floor: verbs(f.floor),
      vsFloor: ratio(f.proa.clientRequestsPerPodTotal, f.floor.clientRequestsPerPodTotal),
      target: `≤ ${t.requestsVsFloor}× floor`,
      met: f.proa.clientRequestsPerPodTotal <= t.requestsVsFloor * f.floor.clientRequestsPerPodTotal,
    },
    {
      scenario: `fleet of ${n}: API server CPU per Pod lifecycle`,
      proa: ms(f.proa.apiserverCpuMsPerPod),
      floor: ms(f.floor.apiserverCpuMsPerPod),
      vsFloor: ratio(f.proa.apiserverCpuMsPerPod, f.floor.apiserverCpuMsPerPod),
      target: `≤ ${t.cpuVsFloor}× floor`,
      met: f.proa.apiserverCpuMsPerPod <= t.cpuVsFloor * f.floor.apiserverCpuMsPerPod,
    },
    {
      scenario: `fleet of ${n}: etcd CPU per Pod lifecycle`,
      proa: ms(f.proa.etcdCpuMsPerPod),
      floor: ms(f.floor.etcdCpuMsPerPod),
      vsFloor: ratio(f.proa.etcdCpuMsPerPod, f.floor.etcdCpuMsPerPod),
      target: "",
      met: null,
    },
    {
      scenario: `fleet of ${n}: client CPU per Pod (the process and its program)`,
      proa: ms(f.proa.clientCpuMsPerPod),
      floor: ms(f.floor.clientCpuMsPerPod),
      vsFloor: ratio(f.proa.clientCpuMsPerPod, f.floor.clientCpuMsPerPod),
      target: "",
      met: null,
    },
    {
      scenario: `fleet of ${n}: reaction, status PATCH → program running, p50 (p99)`,
      proa: `${ms(f.proa.reactionMs.p50)} (${ms(f.proa.reactionMs.p99)})`,
      floor: `${ms(f.floor.reactionMs.p50)} (${ms(f.floor.reactionMs.p99)})`,
      vsFloor: ratio(f.proa.reactionMs.p99, f.floor.reactionMs.p99),
      target: `p99 ≤ ${t.reactionP99VsFloor}× floor`,
      met: f.proa.reactionMs.p99 <= t.reactionP99VsFloor * f.floor.reactionMs.p99,
    },
    ...(
      [
        ["direct", f.herd],
        ["behind a readyz-gated proxy", f.gatedHerd],
      ] as const
    ).flatMap(([how, h]) => [
      {
        scenario: `herd of ${n}, ${how}: restart under waiting proas, peak reconnects per second (per 100 ms)`,
        proa: `${h.peakReconnectsPerSecond} (${h.peakReconnectsPer100Ms})`,
        floor: "–",
        vsFloor: "–",
        target: `≤ ${t.herdShareOfN * n} (half of N), none exits`,
        met: h.peakReconnectsPerSecond <= t.herdShareOfN * n && h.exited === 0,
      },
      {
        scenario: `herd of ${n}, ${how}: peak requests per second (per 100 ms), until all watch`,
        proa: `${h.peakRequestsPerSecond} (${h.peakRequestsPer100Ms})`,
        floor: "–",
        vsFloor: "–",
        target: "",
        met: null,
      },
      {
        scenario: `herd of ${n}, ${how}: every proa watching again, after the server's first request`,
        proa: `${(h.allWatchingAfterMs / 1000).toFixed(1)} s`,
        floor: "–",
        vsFloor: "–",
        target: "",
        met: null,
      },
    ]),
  ];
}
