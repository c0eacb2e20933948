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
import { defaultTiming } from "../kube.ts";
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

// Ratios to the floor measured in the same run, so that a slower machine moves both alike: requests 3 per Pod (one
// list, one watch; #33) against the floor's 2, the p99 reaction 200 ms against the quiet run's floor of 55.3 ms
// (3.6×, rounded down). The run phase's requests are a count set by proa's watch length, not a speed: at most 12 an
// hour (a watch renewed no more often than every 5 minutes); its server CPU is a ratio to the same churn alone.
export const FLEET_TARGETS = {
  requestsVsFloor: 1.5,
  cpuVsFloor: 1.5,
  reactionP99VsFloor: 3.5,
  herdShareOfN: 0.5,
  runRequestsPerPodPerHour: 12,
  runCpuVsChurnAlone: 1.2,
};

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

  /** A client for this Pod. sleepSeconds: the program sleeps this long after writing its stamp (the run phase);
   * bundle: another build of proa (the idle figure's before and after). */
  launch(
    kind: "proa" | "floor",
    { namespace, pod }: { namespace: string; pod: string },
    { port = this.server.env.KUBE_PORT, bundle = PROA_BUNDLE, sleepSeconds = 0 } = {},
  ): Client {
    const stamp = join(this.scratch, `${pod}.stamp`);
    const program =
      sleepSeconds > 0
        ? ["sh", "-c", 'date +%s%N > "$0"; exec sleep "$1"', stamp, String(sleepSeconds)]
        : ["sh", "-c", 'date +%s%N > "$0"', stamp];
    const url = `${this.shutdownUrl}/${namespace}/${pod}`;
    const args =
      kind === "proa" ? [bundle, "--shutdown-http-post", url, "--", ...program] : [FLOOR, url, "--", ...program];
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
      pods.map((pod) => fleet.launch("proa", pod, { port: gate?.port })),
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
// The run phase: N proas whose programs run (sleep) while other Pods of the same namespaces change status, beside the
// same churn with no proa watching; and one proa's own CPU while its program runs and nothing changes at all.

const CHURN_PODS = 50; // Pods without a client, 10 in each namespace, whose status the churn changes in turn
// Before each window: the server's work from what came before (creating 250 Pods, 200 proas starting) is done, and
// so are the proas' own (V8 collects about 8 s after start-up), so that each window holds only its churn and watches.
const RUN_SETTLE_MS = 20_000;
export const CHURN_PER_SECOND = 20; // status changes (one PATCH each) a second, on a fixed schedule
/** How long proa asks each watch to last (kube.ts): watchTimeoutSeconds, jittered up by up to 10%. */
const WATCH_SECONDS = { min: defaultTiming.watchTimeoutSeconds, max: defaultTiming.watchTimeoutSeconds * 1.1 };

/** The 1-minute load average, sampled every 5 s until stop(): the machine is shared, so each window says how busy it was. */
function loadSampler(): { stop(): { first: number; last: number; mean: number; max: number } } {
  const read = () => Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
  const samples = [read()];
  const timer = setInterval(() => samples.push(read()), 5000);
  return {
    stop() {
      clearInterval(timer);
      samples.push(read());
      const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
      return { first: samples[0]!, last: samples.at(-1)!, mean: round(mean), max: Math.max(...samples) };
    },
  };
}

/** Sum and count of apiserver_request_duration_seconds for watches of Pods in a namespace: a watch is observed when it
 * ends, so the difference over a window gives how long the watches that ended in it had lasted. */
function podWatchDurations(metrics: string): { sum: number; count: number } {
  const pick = (name: string) =>
    metrics
      .split("\n")
      .filter(
        (l) =>
          l.startsWith(`${name}{`) &&
          ['resource="pods"', 'verb="WATCH"', 'subresource=""', 'scope="namespace"'].every((label) =>
            l.includes(label),
          ),
      )
      .reduce((total, l) => total + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
  return {
    sum: pick("apiserver_request_duration_seconds_sum"),
    count: pick("apiserver_request_duration_seconds_count"),
  };
}

/** Changes the churn Pods' status on a fixed schedule (CHURN_PER_SECOND) until stop(); resolves with the count. */
function churn(fleet: Fleet, pods: { namespace: string; pod: string }[]): { stop(): Promise<number> } {
  let stopped = false;
  let changes = 0;
  const began = now();
  const done = (async () => {
    while (!stopped) {
      const { namespace, pod } = pods[changes % pods.length]!;
      const ready = Math.floor(changes / pods.length) % 2 === 0;
      await fleet.setSidecars(namespace, pod, { running: true, ready });
      changes++;
      await sleep(Math.max(0, began + (changes * 1000) / CHURN_PER_SECOND - now()));
    }
    return changes;
  })();
  return {
    async stop() {
      stopped = true;
      return done;
    },
  };
}

export interface ChurnWindow {
  seconds: number;
  statusChanges: number; // the churn's PATCHes in the window
  apiserverCpuMs: number;
  etcdCpuMs: number;
  load: { first: number; last: number; mean: number; max: number };
}

/** One window of churn: the server's and etcd's CPU, the changes made, the load. */
async function churnWindow(
  fleet: Fleet,
  pods: { namespace: string; pod: string }[],
  seconds: number,
  during: () => Promise<void> = () => sleep(seconds * 1000),
): Promise<ChurnWindow> {
  const load = loadSampler();
  const [apiBefore, etcdBefore, began] = [cpuMs(fleet.apiserverPid()), cpuMs(fleet.etcdPid()), now()];
  const changes = churn(fleet, pods);
  await during();
  const statusChanges = await changes.stop();
  return {
    seconds: round((now() - began) / 1000, 1),
    statusChanges,
    apiserverCpuMs: cpuMs(fleet.apiserverPid()) - apiBefore,
    etcdCpuMs: cpuMs(fleet.etcdPid()) - etcdBefore,
    load: load.stop(),
  };
}

export interface RunPhaseFigures {
  clients: number;
  churnPods: number;
  churnPerSecond: number; // as scheduled; each window's statusChanges / seconds is what was done
  baseline: ChurnWindow; // the churn alone, no client watching
  run: ChurnWindow; // the same churn while N proas' programs run
  openWatchesDuringRun: number; // apiserver_longrunning_gauge at the window's end: proas still watching
  requests: Counts; // proas' requests on pods during the run window (counted when each ends, so: renewals)
  requestsPerPodPerHour: number; // requests / N, scaled from the window to an hour
  watchesEnded: number; // watches of Pods that ended in the window
  meanWatchSeconds: number; // how long those had lasted (apiserver_request_duration_seconds): NaN if none ended
  renewalsPerHourFromWatchLength: number; // 3600 / meanWatchSeconds: the steady rate, whatever the window
  apiserverCpuVsBaseline: number;
  proaCpuMs: { mean: number; max: number }; // each proa's own utime + stime over the run window
}

/** N proas hold their watch while their programs sleep, beside churn elsewhere in their namespaces. The churn alone
 * comes first, for the same number of seconds, then the same churn with the proas. */
async function runPhase(fleet: Fleet, count: number, seconds: number): Promise<RunPhaseFigures> {
  const churnPods = await fleet.createPods("churn", CHURN_PODS);
  const pods = await fleet.createPods("run", count);
  await sleep(RUN_SETTLE_MS);
  const baseline = await churnWindow(fleet, churnPods, seconds);

  // The proas: each waits, is let in, runs `sleep` (longer than the window), and watches on, or not, as it does.
  const clients = pods.map((pod) => fleet.launch("proa", pod, { sleepSeconds: seconds + 300 }));
  await fleet.untilWatching(clients, `${count} proas waiting before the run phase`);
  await inBatches(clients, 10, (c) => fleet.setSidecars(c.namespace, c.pod, { running: true, ready: true }));
  for (const deadline = Date.now() + PHASE_TIMEOUT_MS; !clients.every((c) => existsSync(c.stamp)); await sleep(200)) {
    if (Date.now() > deadline) throw new Error("timed out: the run phase's programs did not all start");
    const gone = clients.find((c) => c.child.exitCode !== null || c.child.signalCode !== null);
    if (gone) throw new Error(`a proa exited before its program ran: ${gone.stderr()}`);
  }
  await sleep(RUN_SETTLE_MS);
  const [metricsBefore, proaBefore] = [await fleet.metrics(), clients.map((c) => cpuMs(c.child.pid!))];
  let metricsAfter = "";
  let proaAfter: number[] = [];
  const run = await churnWindow(fleet, churnPods, seconds, async () => {
    await sleep(seconds * 1000);
    metricsAfter = await fleet.metrics();
    proaAfter = clients.map((c) => cpuMs(c.child.pid!));
  });
  const gone = clients.filter((c) => c.child.exitCode !== null || c.child.signalCode !== null);
  if (gone.length > 0) throw new Error(`${gone.length} proas exited during the run phase: ${gone[0]!.stderr()}`);

  // The end: SIGTERM to each proa, which passes it on to its program and shuts the sidecars down.
  for (const c of clients) c.child.kill("SIGTERM");
  await Promise.all(clients.map((c) => Promise.race([c.exit, sleep(60_000)])));
  for (const deadline = Date.now() + 30_000; openPodWatches(await fleet.metrics()) > 0 && Date.now() < deadline;)
    await sleep(200);

  const requests = diff(podRequestCounts(metricsAfter), podRequestCounts(metricsBefore));
  const clientRequests = ["LIST", "WATCH", "GET"].reduce((total, verb) => total + (requests[verb] ?? 0), 0);
  const [before, after] = [podWatchDurations(metricsBefore), podWatchDurations(metricsAfter)];
  const watchesEnded = after.count - before.count;
  const meanWatchSeconds = watchesEnded > 0 ? (after.sum - before.sum) / watchesEnded : NaN;
  const proaCpu = proaAfter.map((x, i) => x - proaBefore[i]!);
  return {
    clients: count,
    churnPods: CHURN_PODS,
    churnPerSecond: CHURN_PER_SECOND,
    baseline,
    run,
    openWatchesDuringRun: openPodWatches(metricsAfter),
    requests,
    requestsPerPodPerHour: round((clientRequests / count) * (3600 / run.seconds)),
    watchesEnded,
    meanWatchSeconds: round(meanWatchSeconds, 1),
    renewalsPerHourFromWatchLength: round(3600 / meanWatchSeconds),
    apiserverCpuVsBaseline: round(run.apiserverCpuMs / run.seconds / (baseline.apiserverCpuMs / baseline.seconds), 3),
    proaCpuMs: { mean: round(proaCpu.reduce((a, b) => a + b, 0) / count, 1), max: Math.max(...proaCpu) },
  };
}

export interface IdleFigures {
  seconds: number; // how long the program ran while proa's CPU was read
  cpuMs: Record<string, number>; // by build: "proa" (dist/proa.js) and "candidate" (BENCH_CANDIDATE) if given
  cpuMsEvery10s: Record<string, number[]>; // by build, the CPU spent so far, 10 s, 20 s... into the window
  load: { first: number; last: number; mean: number; max: number };
}

/** proa's own CPU (utime + stime from /proc) while its program sleeps and nothing about its Pod changes, against a
 * real kube-apiserver with no other client: one Pod per build, all at once, from one second after the program started
 * for `seconds`. */
export function idle(
  seconds: number,
  builds: Record<string, string>,
  progress: (line: string) => void,
): Promise<IdleFigures | { skipped: string }> {
  return inWorld(progress, async (world) => {
    const names = Object.keys(builds);
    const pods = await world.createPods("idle", names.length);
    const clients = names.map((name, i) =>
      world.launch("proa", pods[i]!, { bundle: builds[name]!, sleepSeconds: seconds + 120 }),
    );
    await world.untilWatching(clients, "the idle proas waiting");
    for (const c of clients) await world.setSidecars(c.namespace, c.pod, { running: true, ready: true });
    for (const deadline = Date.now() + PHASE_TIMEOUT_MS; !clients.every((c) => existsSync(c.stamp)); await sleep(100))
      if (Date.now() > deadline) throw new Error(`the idle programs did not start: ${clients[0]!.stderr()}`);
    await sleep(1000);
    progress(`idle: ${names.join(" and ")}, ${seconds} s...`);
    const [load, began] = [loadSampler(), now()];
    const before = clients.map((c) => cpuMs(c.child.pid!));
    const timeline: number[][] = clients.map(() => []); // each build's CPU so far, every 10 s: where it was spent
    for (let t = 10; t < seconds; t += 10) {
      await sleep(Math.max(0, began + t * 1000 - now()));
      clients.forEach((c, i) => timeline[i]!.push(cpuMs(c.child.pid!) - before[i]!));
    }
    await sleep(Math.max(0, began + seconds * 1000 - now()));
    const after = clients.map((c) => cpuMs(c.child.pid!));
    const gone = clients.find((c) => c.child.exitCode !== null || c.child.signalCode !== null);
    if (gone) throw new Error(`a proa exited while its program ran: ${gone.stderr()}`);
    for (const c of clients) c.child.kill("SIGTERM");
    await Promise.all(clients.map((c) => Promise.race([c.exit, sleep(30_000)])));
    return {
      seconds,
      cpuMs: Object.fromEntries(names.map((name, i) => [name, after[i]! - before[i]!])),
      cpuMsEvery10s: Object.fromEntries(names.map((name, i) => [name, timeline[i]!])),
      load: load.stop(),
    };
  });
}

// ---------------------------------------------------------------------------------------------------------------

export const FLEET_PHASES = ["lifecycle", "run", "herd"] as const;
export type FleetPhase = (typeof FLEET_PHASES)[number];

export interface FleetFigures {
  pods: number;
  idleApiserverCpuMsPerS: number; // the server alone, doing nothing asked, for scale
  proa?: LifecycleFigures;
  floor?: LifecycleFigures;
  run?: RunPhaseFigures; // proas whose programs run, beside churn in their namespaces
  herd?: HerdFigures; // proas connected to the server directly
  gatedHerd?: HerdFigures; // proas behind the readyz-gated proxy, as behind a load balancer
  loadAverageBefore: string;
}

/** A fleet's world (a real kube-apiserver and etcd, namespaces, the shutdown server) for use(), stopped afterwards
 * with every client, also when use() fails and on Ctrl-C. */
async function inWorld<T>(
  progress: (line: string) => void,
  use: (world: Fleet) => Promise<T>,
): Promise<T | { skipped: string }> {
  const skip = skipReason();
  if (skip) return { skipped: skip };
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
    return await use(world);
  } finally {
    process.off("SIGINT", interrupted).off("SIGTERM", interrupted);
    await world?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** The whole fleet figure: proa's lifecycle and the floor's, the run phase (runSeconds of churn alone, then as long
 * with N proas' programs running), the herd; or only the phases given. */
export function fleet(
  count: number,
  { runSeconds, phases = FLEET_PHASES }: { runSeconds: number; phases?: readonly FleetPhase[] },
  progress: (line: string) => void,
): Promise<FleetFigures | { skipped: string }> {
  const loadAverageBefore = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  return inWorld(progress, async (world) => {
    const [idleBefore, idleBegan] = [cpuMs(world.apiserverPid()), now()];
    await sleep(3000);
    const idleApiserverCpuMsPerS = round(((cpuMs(world.apiserverPid()) - idleBefore) * 1000) / (now() - idleBegan), 1);
    const figures: FleetFigures = { pods: count, idleApiserverCpuMsPerS, loadAverageBefore };
    if (phases.includes("lifecycle")) {
      progress(`fleet: ${count} proas...`);
      figures.proa = await lifecycle(world, "proa", count);
      progress(`fleet: ${count} floor clients...`);
      figures.floor = await lifecycle(world, "floor", count);
    }
    if (phases.includes("run")) {
      progress(
        `fleet: the run phase, ${CHURN_PER_SECOND} status changes a second for ${runSeconds} s alone, then as long with ${count} proas...`,
      );
      figures.run = await runPhase(world, count, runSeconds);
    }
    if (phases.includes("herd")) {
      progress(`fleet: the herd, ${count} proas and a restart...`);
      figures.herd = await herd(world, count, false);
      progress(`fleet: the herd behind a readyz-gated proxy, ${count} proas and a restart...`);
      figures.gatedHerd = await herd(world, count, true);
    }
    return figures;
  });
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
  const lifecycleRows = (p: LifecycleFigures, fl: LifecycleFigures): FleetRow[] => [
    {
      scenario: `fleet of ${n}: API requests per Pod lifecycle, by verb`,
      proa: verbs(p),
      floor: verbs(fl),
      vsFloor: ratio(p.clientRequestsPerPodTotal, fl.clientRequestsPerPodTotal),
      target: `≤ ${t.requestsVsFloor}× floor`,
      met: p.clientRequestsPerPodTotal <= t.requestsVsFloor * fl.clientRequestsPerPodTotal,
    },
    {
      scenario: `fleet of ${n}: API server CPU per Pod lifecycle`,
      proa: ms(p.apiserverCpuMsPerPod),
      floor: ms(fl.apiserverCpuMsPerPod),
      vsFloor: ratio(p.apiserverCpuMsPerPod, fl.apiserverCpuMsPerPod),
      target: `≤ ${t.cpuVsFloor}× floor`,
      met: p.apiserverCpuMsPerPod <= t.cpuVsFloor * fl.apiserverCpuMsPerPod,
    },
    {
      scenario: `fleet of ${n}: etcd CPU per Pod lifecycle`,
      proa: ms(p.etcdCpuMsPerPod),
      floor: ms(fl.etcdCpuMsPerPod),
      vsFloor: ratio(p.etcdCpuMsPerPod, fl.etcdCpuMsPerPod),
      target: "",
      met: null,
    },
    {
      scenario: `fleet of ${n}: client CPU per Pod (the process and its program)`,
      proa: ms(p.clientCpuMsPerPod),
      floor: ms(fl.clientCpuMsPerPod),
      vsFloor: ratio(p.clientCpuMsPerPod, fl.clientCpuMsPerPod),
      target: "",
      met: null,
    },
    {
      scenario: `fleet of ${n}: reaction, status PATCH → program running, p50 (p99)`,
      proa: `${ms(p.reactionMs.p50)} (${ms(p.reactionMs.p99)})`,
      floor: `${ms(fl.reactionMs.p50)} (${ms(fl.reactionMs.p99)})`,
      vsFloor: ratio(p.reactionMs.p99, fl.reactionMs.p99),
      target: `p99 ≤ ${t.reactionP99VsFloor}× floor`,
      met: p.reactionMs.p99 <= t.reactionP99VsFloor * fl.reactionMs.p99,
    },
  ];
  const perS = (ms: number, s: number) => `${(ms / s).toFixed(1)} ms/s`;
  const runRows = (r: RunPhaseFigures): FleetRow[] => {
    const churn = `${r.clients} programs running beside ${r.churnPerSecond} status changes a second (${r.churnPods} other Pods)`;
    const clientRequests = ["LIST", "WATCH", "GET"].reduce((total, verb) => total + (r.requests[verb] ?? 0), 0);
    const steady = Number.isFinite(r.renewalsPerHourFromWatchLength)
      ? `; ${r.renewalsPerHourFromWatchLength} an hour from the watches' mean length, ${r.meanWatchSeconds} s`
      : "; no watch ended in the window";
    return [
      {
        scenario: `fleet of ${n}, run phase, ${churn}: API requests per Pod per hour of run`,
        proa: `${r.requestsPerPodPerHour} (${clientRequests} in ${r.run.seconds} s${steady})`,
        floor: "–",
        vsFloor: "–",
        target: `≤ ${t.runRequestsPerPodPerHour} (proa's ${WATCH_SECONDS.min}–${WATCH_SECONDS.max} s watch: ${(3600 / WATCH_SECONDS.max).toFixed(1)}–${(3600 / WATCH_SECONDS.min).toFixed(1)})`,
        met:
          r.requestsPerPodPerHour <= t.runRequestsPerPodPerHour &&
          !(r.renewalsPerHourFromWatchLength > t.runRequestsPerPodPerHour),
      },
      {
        scenario: `fleet of ${n}, run phase: API server CPU (the churn alone)`,
        proa: perS(r.run.apiserverCpuMs, r.run.seconds),
        floor: perS(r.baseline.apiserverCpuMs, r.baseline.seconds),
        vsFloor: `${r.apiserverCpuVsBaseline.toFixed(2)}×`,
        target: `≤ ${t.runCpuVsChurnAlone}× the churn alone`,
        met: r.apiserverCpuVsBaseline <= t.runCpuVsChurnAlone,
      },
      {
        scenario: `fleet of ${n}, run phase: etcd CPU (the churn alone)`,
        proa: perS(r.run.etcdCpuMs, r.run.seconds),
        floor: perS(r.baseline.etcdCpuMs, r.baseline.seconds),
        vsFloor: ratio(r.run.etcdCpuMs / r.run.seconds, r.baseline.etcdCpuMs / r.baseline.seconds),
        target: "",
        met: null,
      },
      {
        scenario: `fleet of ${n}, run phase: each proa's own CPU over ${r.run.seconds} s, mean (max)`,
        proa: `${ms(r.proaCpuMs.mean)} (${ms(r.proaCpuMs.max)})`,
        floor: "–",
        vsFloor: "–",
        target: "",
        met: null,
      },
    ];
  };
  return [
    ...(f.proa && f.floor ? lifecycleRows(f.proa, f.floor) : []),
    ...(f.run ? runRows(f.run) : []),
    ...(
      [
        ["direct", f.herd],
        ["behind a readyz-gated proxy", f.gatedHerd],
      ] as const
    ).flatMap(([how, h]) =>
      !h
        ? []
        : [
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
          ],
    ),
  ];
}
