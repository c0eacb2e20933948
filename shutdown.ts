// The shutdown step: once the program has exited, and unless proa's container will be restarted, ask the sidecars to
// stop (HTTP requests, SIGTERM by process name) and wait until they have exited, so that the Pod (typically a Job) can
// complete. Nothing here is fatal: every
// problem is logged on its own line, proa still exits with the program's status, and the step returns a plain record
// of what it did (ShutdownReport).
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from "node:fs";
import { basename } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { hostPort, httpRequest, HttpError, type HttpPhase } from "./http.ts";
import { restartPolicyOf, runningContainers, runsAgain, type Pod, type PodFeed } from "./kube.ts";
import { quote, redactUrl, type Log } from "./log.ts";

export interface ShutdownOptions {
  httpGet: URL[]; // parsed, and checked to be http(s), by the command line
  httpPost: URL[];
  kill: string[];
  killAll: boolean;
  timeoutMs?: number; // --shutdown-timeout: may shorten the step, never lengthen it past the kubelet's kill
  requestTimeoutMs: number; // --shutdown-request-timeout
  userAgent: string;
}

export interface ShutdownContext {
  status?: number; // proa's own exit status: with the Pod's restartPolicy, whether its container runs again
  sidecars?: ExitWatch; // how the step sees the sidecars exit; undefined: it does not wait for them
  pod?: Pod; // the watch's latest Pod (grace period, deletionTimestamp); none with --ready-url
  childPid?: number; // never signalled
  /** Aborted when proa receives SIGTERM, with the time it arrived (ms since the epoch) as its reason: the kubelet's
   * grace period runs from then. It may abort before the step or while it runs. */
  sigterm?: AbortSignal;
}

/** What the step did, for the run's summary: plain data, with URLs already redacted. */
export interface ShutdownReport {
  plan: ShutdownPlan; // what the step set out to do, and why
  startedAt: number; // ms since the epoch
  budgetMs: number; // from the start to the deadline, as it stood at the end (SIGTERM or a deletion can move it)
  requests: RequestRecord[];
  signals: SignalRecord[];
  unmatched: string[]; // --kill names that matched no visible process
  refused?: string; // why --kill/--kill-all signalled nothing at all: proa could not tell which processes are its Pod's
  exits: ExitRecord[];
  /** How the wait for exit ended; stillRunning lists who had not exited then (empty when all had). */
  wait: { outcome: WaitOutcome; stillRunning: string[] };
  durationMs: number;
}
export interface RequestRecord {
  method: "GET" | "POST";
  url: string; // redacted: no user info, query values replaced
  status?: number; // the answer's, when there was one
  location?: string; // a redirect's target, redacted; never followed
  error?: string; // why there was no answer
  phase?: HttpPhase;
  attempts: number;
  durationMs: number;
}
export interface SignalRecord {
  pid: number;
  name: string;
  rule: MatchRule | "--kill-all";
  sent: boolean;
  error?: string;
}
export interface ExitRecord {
  name: string; // the sidecar: its container, or with --ready-url its URL's host:port
  exitCode?: number;
  afterMs: number; // since the step started
}
export type WaitOutcome = "all exited" | "pod gone" | "budget spent" | "watch failed" | "not watched";

/** How the shutdown step sees the sidecars exit: by following the Pod's watch (podExitWatch), or by their ready URLs'
 * ports refusing connections (readyurl.ts). Either way the wait ends when `until` aborts (the deadline), and a Pod
 * snapshot, when the source has one, goes to `seen` (a deletion moves the deadline). */
export interface ExitWatch {
  /** `from`: the Pod as the step last saw it, whose running sidecars the wait starts from. */
  waitForExit(
    until: AbortSignal,
    seen: (pod: Pod) => void,
    startedAt: number,
    log: Log,
    from?: Pod,
  ): Promise<WaitResult>;
}
export interface WaitResult {
  outcome: WaitOutcome;
  stillRunning: string[];
  exits: ExitRecord[];
}

// ---------------------------------------------------------------------------------------------------------------
// The plan (pure): whether proa's container runs again decides whether the sidecars are shut down

export interface ShutdownPlan {
  shutDown: boolean; // send the shutdown requests and --kill signals
  waitForExit: boolean; // wait until the sidecars are seen to exit
  reason: string; // for the log, the summary and the termination message
}

/** What the Pod's spec says of proa's sidecars: other regular containers; only native sidecars (init containers with
 * restartPolicy Always); or no other container at all. Undefined without a Pod (--ready-url, or never read). */
export type SidecarKinds = "regular" | "native only" | "none";

export function sidecarKinds(pod: Pod | undefined): SidecarKinds | undefined {
  const containers = pod?.spec?.containers;
  if (!containers) return undefined;
  if (containers.length > 1) return "regular"; // proa's own is one of them
  return (pod.spec?.initContainers ?? []).some((c) => c.restartPolicy === "Always") ? "native only" : "none";
}

/**
 * When the kubelet will restart proa's container (OnFailure after a failure, Always), the sidecars are left running
 * so that the restarted proa finds them ready. A deleted Pod's sidecars are stopped by the kubelet, which hides their
 * statuses until all have stopped (kubernetes/kubernetes#106896), so proa asks them to stop but cannot watch them.
 * Native sidecars are stopped by the kubelet only once proa's container has exited, so with no regular sidecar there
 * is nothing to wait for. An unknown policy (no Pod: --ready-url, or the Pod never read; see restartPolicyOf) keeps
 * the original proa's behaviour.
 */
export function shutdownPlan(
  restartPolicy: string | undefined,
  succeeded: boolean,
  deleting: boolean,
  sidecars?: SidecarKinds,
): ShutdownPlan {
  if (deleting)
    return { shutDown: true, waitForExit: false, reason: "the Pod is being deleted: the kubelet stops the sidecars" };
  if (restartPolicy === "Always" || (restartPolicy === "OnFailure" && !succeeded)) {
    return {
      shutDown: false,
      waitForExit: false,
      reason: `sidecars left running for the restart (restartPolicy ${restartPolicy})`,
    };
  }
  if (sidecars === "native only")
    return {
      shutDown: true,
      waitForExit: false,
      reason:
        "the Pod's only sidecars are native: the kubelet stops them once proa's container has exited, so proa does not wait for them",
    };
  if (sidecars === "none")
    return { shutDown: true, waitForExit: false, reason: "the Pod has no other container: no sidecar to wait for" };
  if (restartPolicy === "Never" || restartPolicy === "OnFailure") {
    const why = restartPolicy === "Never" ? "restartPolicy Never" : "restartPolicy OnFailure and the program succeeded";
    return {
      shutDown: true,
      waitForExit: true,
      reason: `${why}: proa's container will not run again, so the sidecars are shut down`,
    };
  }
  return {
    shutDown: true,
    waitForExit: true,
    reason:
      "the Pod's restartPolicy is unknown, so the sidecars are shut down as if proa's container will not run again",
  };
}

// After SIGTERM the kubelet kills the container when the grace period ends: proa exits this much earlier, so that the
// Pod still reports the program's status rather than 137.
export const BEFORE_KUBELET_KILL_MS = 1000;
// Read at most this much of an answer: enough for its reason, and an endless body costs nothing.
export const MAX_ANSWER_BYTES = 4096;
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface ShutdownTiming {
  /** Delays before retrying a refused connection (the sidecar may be restarting), as long as the budget allows. */
  refusedRetryDelaysMs: number[];
  /** Each request gets at least this long (or --shutdown-request-timeout if smaller), however little budget is left. */
  minRequestMs: number;
}

export const DEFAULT_TIMING: ShutdownTiming = { refusedRetryDelaysMs: [100, 250, 500, 1000], minRequestMs: 1000 };

/** Never throws; logs each problem on its own line and returns what it did. The plan (shutdownPlan) decides whether
 * the requests and signals go out and whether the step waits for the exits; that wait ends at the deadline
 * (shutdownDeadline), or when the Pod is seen being deleted. */
export async function shutDownSidecars(
  options: ShutdownOptions,
  context: ShutdownContext,
  log: Log,
  timing: Partial<ShutdownTiming> = {},
): Promise<ShutdownReport> {
  const t = { ...DEFAULT_TIMING, ...timing };
  const startedAt = Date.now();
  let pod = context.pod;
  const deadline = new Deadline(() => shutdownDeadline(startedAt, options.timeoutMs, pod, sigtermAt(context.sigterm)));
  const report: ShutdownReport = {
    plan: shutdownPlan(undefined, false, false),
    startedAt,
    budgetMs: 0,
    requests: [],
    signals: [],
    unmatched: [],
    exits: [],
    wait: { outcome: "not watched", stillRunning: [] },
    durationMs: 0,
  };
  const moved = (why: string) => {
    if (deadline.recompute())
      log.info(`${why}: the shutdown step now ends in ${deadline.leftMs()} ms, before the kubelet's kill`, {
        budgetMs: deadline.leftMs(),
      });
  };
  const onSigterm = () => moved("received SIGTERM");
  context.sigterm?.addEventListener("abort", onSigterm);
  try {
    // The Pod is the watch's latest: a deletion it delivers later, while the step waits, reaches `seen` below.
    report.plan = shutdownPlan(restartPolicyOf(pod), context.status === 0, isDeleting(pod), sidecarKinds(pod));
    if (isDeleting(pod))
      moved(`the Pod is being deleted, with a grace period of ${pod?.metadata?.deletionGracePeriodSeconds} s`);
    if (!report.plan.shutDown) {
      log.info(`${report.plan.reason}: proa sends no shutdown request and signals nothing`, {
        restartPolicy: restartPolicyOf(pod),
        status: context.status,
      });
      return finished(report, deadline, startedAt);
    }
    const requests = [
      ...options.httpGet.map((url) => ({ method: "GET" as const, url })),
      ...options.httpPost.map((url) => ({ method: "POST" as const, url })),
    ];
    const noMeans = requests.length === 0 && options.kill.length === 0 && !options.killAll;
    if (noMeans && !report.plan.waitForExit && !isDeleting(pod) && sidecarKinds(pod) !== "regular") {
      // Nothing to stop and nothing to wait for: not a missing option, so no budget to speak of either.
      log.info(`${report.plan.reason}; proa sends no shutdown request`, { sidecars: sidecarKinds(pod) });
    } else if (noMeans) {
      const means = "--shutdown-http-get, --shutdown-http-post, --kill or --kill-all";
      const then = report.plan.waitForExit
        ? "so it can only wait for them to exit"
        : "and does not wait for their exits";
      log.info(`proa has no way to stop the sidecars (no ${means}), ${then}`, {
        budgetMs: deadline.leftMs(),
        why: report.plan.reason,
      });
    } else {
      log.info("shutting the sidecars down", { budgetMs: deadline.leftMs(), why: report.plan.reason });
    }
    const deleting = () => isDeleting(pod);
    const sent = Promise.all(
      requests.map(({ method, url }) => {
        // Read from the latest Pod at each attempt: the wait for exit may show the sidecar's death meanwhile.
        const target = urlContainer(pod, url);
        const gone = () => ("name" in target ? goneForGood(pod, target.name) : undefined);
        return sendShutdownRequest(method, url, options, deadline, t, log, deleting, { target, gone });
      }),
    );
    if (options.kill.length > 0 || options.killAll)
      Object.assign(report, signalProcesses(options, context.childPid, pod, log));
    // A deletion seen while waiting ends the wait: from then on the kubelet hides the sidecars' exits.
    const stopWaiting = new AbortController(); // at the deadline, or on the deletion (AbortSignal.any needs Node 20.3)
    deadline.spent.signal.addEventListener("abort", () => stopWaiting.abort(), { once: true });
    if (deadline.spent.signal.aborted) stopWaiting.abort();
    const seen = (next: Pod) => {
      const wasDeleting = isDeleting(pod);
      pod = next;
      if (wasDeleting || !isDeleting(pod)) return;
      moved(`the Pod is being deleted, with a grace period of ${pod.metadata?.deletionGracePeriodSeconds} s`);
      report.plan = shutdownPlan(restartPolicyOf(pod), context.status === 0, true, sidecarKinds(pod));
      log.info(`${report.plan.reason}: proa stops waiting for their exits, which it cannot see`);
      stopWaiting.abort();
    };
    const notWatched: WaitResult = { outcome: "not watched", stillRunning: [], exits: [] };
    const watched =
      (report.plan.waitForExit && context.sidecars?.waitForExit(stopWaiting.signal, seen, startedAt, log, pod)) ||
      Promise.resolve(notWatched);
    const [answers, wait] = await Promise.all([sent, watched]);
    report.requests = answers;
    report.exits = wait.exits;
    report.wait = report.plan.waitForExit
      ? { outcome: wait.outcome, stillRunning: wait.stillRunning }
      : { outcome: "not watched", stillRunning: [] };
    if (report.plan.waitForExit && wait.outcome === "budget spent") {
      const budgetMs = Math.max(0, deadline.at - startedAt);
      log.warn(
        `the sidecars did not exit within ${budgetMs} ms; still running: ${wait.stillRunning.join(", ")}; proa exits anyway`,
        { stillRunning: wait.stillRunning, budgetMs },
      );
    }
  } catch (error) {
    log.error("shutting the sidecars down failed unexpectedly", { error: String(error) });
  } finally {
    context.sigterm?.removeEventListener("abort", onSigterm);
    deadline.stop();
  }
  return finished(report, deadline, startedAt);
}

const finished = (report: ShutdownReport, deadline: Deadline, startedAt: number): ShutdownReport => ({
  ...report,
  budgetMs: Math.max(0, deadline.at - startedAt),
  durationMs: Date.now() - startedAt,
});

// ---------------------------------------------------------------------------------------------------------------
// The deadline

/** The Pod's own grace period for its containers: the deletion's when it is being deleted. */
export function gracePeriodMs(pod: Pod | undefined): number {
  const deleting = isDeleting(pod) ? pod?.metadata?.deletionGracePeriodSeconds : undefined;
  return (deleting ?? pod?.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
}

const isDeleting = (pod: Pod | undefined) => Boolean(pod?.metadata?.deletionTimestamp);

/**
 * When the step must end: --shutdown-timeout, else the grace period, from the step's start. Once proa has received
 * SIGTERM, never later than a second before the kubelet's kill (SIGTERM + the grace period), whatever the flags.
 */
export function shutdownDeadline(
  startedAt: number,
  timeoutMs: number | undefined,
  pod: Pod | undefined,
  sigtermAt: number | undefined,
): number {
  const own = startedAt + (timeoutMs ?? gracePeriodMs(pod));
  return sigtermAt === undefined ? own : Math.min(own, sigtermAt + gracePeriodMs(pod) - BEFORE_KUBELET_KILL_MS);
}

function sigtermAt(signal: AbortSignal | undefined): number | undefined {
  return signal?.aborted && typeof signal.reason === "number" ? signal.reason : undefined;
}

/** The step's deadline, recomputed on demand; `spent` aborts when it passes. */
class Deadline {
  readonly spent = new AbortController();
  at: number;
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly compute: () => number) {
    this.at = compute();
    this.arm();
  }
  leftMs(): number {
    return Math.max(0, this.at - Date.now());
  }
  /** True when the deadline moved. */
  recompute(): boolean {
    const next = this.compute();
    if (next === this.at) return false;
    this.at = next;
    this.arm();
    return true;
  }
  stop(): void {
    clearTimeout(this.timer);
  }
  private arm(): void {
    clearTimeout(this.timer);
    if (this.spent.signal.aborted) return;
    // setTimeout fires at once for 2^31 ms or more: re-arm until the deadline is really reached.
    this.timer = setTimeout(
      () => (Date.now() >= this.at ? this.spent.abort() : this.arm()),
      Math.min(this.leftMs(), MAX_TIMER_MS),
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP shutdown requests

/** deleting() tells whether the Pod is being deleted: then no container is restarted, and a refused connection means
 * the sidecar has already exited (on the kubelet's SIGTERM), so it is not retried. sidecar.gone() tells why the URL's
 * container will not answer again (the Pod shows it terminated, not to be restarted): then the request is not sent,
 * or not retried. */
async function sendShutdownRequest(
  method: "GET" | "POST",
  url: URL,
  options: ShutdownOptions,
  deadline: Deadline,
  t: ShutdownTiming,
  log: Log,
  deleting: () => boolean,
  sidecar: { target: ReturnType<typeof urlContainer>; gone: () => string | undefined },
): Promise<RequestRecord> {
  const shown = redactUrl(url);
  const fields = { method, url: shown };
  const began = Date.now();
  const minimumMs = Math.min(t.minRequestMs, options.requestTimeoutMs);
  const done = (attempts: number, outcome: Partial<RequestRecord>): RequestRecord => ({
    method,
    url: shown,
    ...outcome,
    attempts,
    durationMs: Date.now() - began,
  });
  for (let attempt = 1; ; attempt++) {
    // Before each attempt: the Pod, as the wait for exit updates it, may show the sidecar dead by now.
    const gone = sidecar.gone();
    if (gone !== undefined && attempt === 1) {
      log.info(`sidecar shutdown request not sent: ${gone}`, { ...fields, attempts: 0 });
      return done(0, { error: `not sent: ${gone}` });
    }
    if (gone !== undefined) {
      const reason = `connection refused, not retried: ${gone}`;
      log.info(`sidecar shutdown request not answered: ${reason}`, { ...fields, attempts: attempt - 1 });
      return done(attempt - 1, { error: reason, phase: "connect" });
    }
    // However little budget is left, the request goes out and gets its minimum; the deadline cuts it no earlier.
    const attemptStart = Date.now();
    const timeoutMs = Math.max(
      minimumMs - (attemptStart - began),
      Math.min(options.requestTimeoutMs, deadline.leftMs()),
    );
    // When SIGTERM or a deletion brings the deadline forward, cut the request there (but not before its minimum);
    // a request planned to end about now is left to its own timer.
    const cut = new AbortController();
    let cutTimer: NodeJS.Timeout | undefined;
    const onSpent = () => {
      const cutAt = Math.max(Date.now(), began + minimumMs);
      if (cutAt < attemptStart + timeoutMs - 50) cutTimer = setTimeout(() => cut.abort(), cutAt - Date.now());
    };
    deadline.spent.signal.addEventListener("abort", onSpent);
    if (deadline.spent.signal.aborted) onSpent();
    try {
      const answer = await httpRequest({
        method,
        url,
        timeoutMs,
        userAgent: options.userAgent,
        maxBodyBytes: MAX_ANSWER_BYTES,
        signal: cut.signal,
      });
      const { status } = answer;
      if (status >= 200 && status < 300) {
        log.info(`sidecar shutdown request answered ${status}`, { ...fields, status });
        return done(attempt, { status });
      }
      if (status >= 300 && status < 400) {
        // A Location that does not parse is still an answer: a request the sidecar answered has not failed.
        const location =
          answer.location === undefined
            ? undefined
            : URL.canParse(answer.location, url.href)
              ? redactUrl(new URL(answer.location, url))
              : "(not a URL)";
        const where = location ? ` to ${location}` : "";
        log.warn(
          `sidecar shutdown request answered ${status}, a redirect${where}: proa follows no redirects, so nothing more was sent; give the URL that answers`,
          { ...fields, status, location },
        );
        return done(attempt, { status, ...(location ? { location } : {}) });
      }
      const hint =
        status === 405 && method === "GET"
          ? "; if this is Envoy's /quitquitquit, which only takes POST, use --shutdown-http-post"
          : "";
      log.warn(`sidecar shutdown request answered ${status}${hint}`, { ...fields, status, body: quote(answer.body) });
      return done(attempt, { status });
    } catch (error) {
      const failure = error instanceof HttpError ? error : new HttpError(String(error), "connect");
      const delayMs = t.refusedRetryDelaysMs[attempt - 1];
      const refused = failure.code === "ECONNREFUSED";
      if (refused && deleting()) {
        // (the termination message quotes 100 characters of it)
        const reason = "connection refused (the Pod is being deleted: the sidecar has exited on the kubelet's SIGTERM)";
        log.info(`sidecar shutdown request not answered: ${reason}`, { ...fields, attempts: attempt });
        return done(attempt, { error: reason, phase: failure.phase });
      }
      if (refused && delayMs !== undefined && delayMs < deadline.leftMs()) {
        // The sidecar may be restarting; when proa cannot tell which container the URL reaches, it cannot see
        // whether that container has exited for good, and says why once.
        if (attempt === 1 && "unknown" in sidecar.target)
          log.info(
            `sidecar refused the shutdown request's connection; retrying, as proa cannot tell whether it has exited: ${sidecar.target.unknown}`,
            { ...fields, delayMs },
          );
        else log.debug("sidecar refused the shutdown request's connection; retrying", { ...fields, delayMs });
        await sleep(delayMs);
        continue;
      }
      const reason = cut.signal.aborted
        ? `the shutdown budget ran out after ${Date.now() - attemptStart} ms, in the ${failure.phase} phase`
        : describeFailure(failure, timeoutMs, options.requestTimeoutMs);
      log.warn(`sidecar shutdown request failed: ${reason}`, { ...fields, attempts: attempt });
      return done(attempt, { error: reason, phase: failure.phase });
    } finally {
      deadline.spent.signal.removeEventListener("abort", onSpent);
      clearTimeout(cutTimer);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Which container a shutdown URL reaches, and whether it is gone for good (pure)

/** A URL host that is the Pod's own network namespace (URL.hostname keeps IPv6's brackets). */
export const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/;

type Probe = { httpGet?: { port?: number | string }; tcpSocket?: { port?: number | string } };
/** A container's spec with the fields that name its ports (kube.ts's Pod type leaves them out). */
export type PortsSpec = {
  name: string;
  ports?: { containerPort?: number; name?: string }[];
} & Partial<Record<"readinessProbe" | "livenessProbe" | "startupProbe", Probe>>;

/** The ports a container declares: its containerPorts, and the ports its probes reach (named ports resolved). */
export function declaredPorts(container: PortsSpec): Set<number> {
  const resolve = (port: number | string | undefined) =>
    typeof port === "string" ? container.ports?.find((p) => p.name === port)?.containerPort : port;
  const probes = [container.readinessProbe, container.livenessProbe, container.startupProbe].map((probe) =>
    resolve(probe?.httpGet?.port ?? probe?.tcpSocket?.port),
  );
  const all = [...(container.ports ?? []).map((p) => p.containerPort), ...probes];
  return new Set(all.filter((port): port is number => port !== undefined));
}

/** The container of proa's Pod a shutdown URL reaches: a loopback URL whose port exactly one container declares. When
 * proa cannot tell, the reason, for the log. */
export function urlContainer(pod: Pod | undefined, url: URL): { name: string } | { unknown: string } {
  if (!pod?.spec) return { unknown: "proa has not read its Pod" };
  if (!LOOPBACK.test(url.hostname)) return { unknown: `${url.hostname} is not localhost, the Pod's own address` };
  const { port } = hostPort(url);
  const all = [...(pod.spec.containers ?? []), ...(pod.spec.initContainers ?? [])] as PortsSpec[];
  const owners = all.filter((c) => declaredPorts(c).has(port)).map((c) => c.name);
  if (owners.length === 1) return { name: owners[0]! };
  if (owners.length === 0)
    return { unknown: `no container of the Pod declares port ${port} (as a containerPort or a probe's port)` };
  return { unknown: `containers ${owners.join(", ")} all declare port ${port}` };
}

/** Why a container will not answer again, if the Pod shows it so: terminated, and the kubelet will not restart it (a
 * regular container under restartPolicy Never, or under OnFailure after exit 0). A native sidecar is always restarted,
 * and a killed one shows terminated for a second before it is (Kubernetes 1.33 and later). */
export function goneForGood(pod: Pod | undefined, container: string): string | undefined {
  if (!pod?.spec?.containers?.some(({ name }) => name === container)) return undefined;
  const terminated = pod.status?.containerStatuses?.find(({ name }) => name === container)?.state?.terminated;
  if (!terminated) return undefined;
  const policy = restartPolicyOf(pod);
  if (runsAgain(policy, false, terminated.exitCode)) return undefined;
  return `${container} exited ${terminated.exitCode ?? "(code unknown)"} and will not be restarted (restartPolicy ${policy})`;
}

function describeFailure(error: HttpError, timeoutMs: number, requestTimeoutMs: number): string {
  if (error.code === "ECONNREFUSED")
    return "connection refused (is the URL's port right? the sidecar may also have exited already)";
  if (error.code === "ETIMEDOUT" && timeoutMs < requestTimeoutMs)
    return `${error.message} (the rest of the shutdown budget)`;
  return error.message;
}

// ---------------------------------------------------------------------------------------------------------------
// Signals by process name (needs shareProcessNamespace: true to see the sidecars' processes). Only processes in
// proa's own Pod are targets: with hostPID: true, or outside a container, /proc also shows the node's processes.

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** /proc/PID/stat field 22, in clock ticks since boot: with the pid, it tells a process from a later one reusing it. */
  startTime: number;
  /** File name of /proc/PID/exe; unreadable without ptrace access (another user's process, no CAP_SYS_PTRACE). */
  exe?: string;
  /** File name of argv[0] from /proc/PID/cmdline, which anyone may read (readArgv0: nothing after it is read). */
  argv0?: string;
  /** /proc/PID/comm: the kernel cuts it to 15 characters. */
  comm?: string;
  /** /proc/PID/cgroup, as proa's cgroup namespace shows it: which Pod and container hold the process. */
  cgroup?: string;
}

/** Every visible process, as /proc shows it; one that exits while being read is left out. */
export function readProcesses(procDir = "/proc"): ProcessInfo[] {
  const processes: ProcessInfo[] = [];
  for (const entry of readdirSync(procDir).filter((name) => /^\d+$/.test(name))) {
    const stat = readStat(procDir, Number(entry));
    if (!stat) continue;
    const exe = attempt(() => basename(readlinkSync(`${procDir}/${entry}/exe`).replace(/ \(deleted\)$/, "")));
    const argv0 = attempt(() => readArgv0(`${procDir}/${entry}/cmdline`));
    const comm = attempt(() => readFileSync(`${procDir}/${entry}/comm`, "utf8").replace(/\n$/, ""));
    const cgroup = attempt(() => readBounded(`${procDir}/${entry}/cgroup`, MAX_CGROUP_BYTES));
    processes.push({
      pid: Number(entry),
      ...stat,
      ...(exe ? { exe } : {}),
      ...(argv0 ? { argv0: basename(argv0) } : {}),
      ...(comm ? { comm } : {}),
      ...(cgroup ? { cgroup } : {}),
    });
  }
  return processes;
}

// A cgroup v1 text has a line per hierarchy, each a few hundred bytes at most.
const MAX_CGROUP_BYTES = 16384;

/** At most maxBytes of a file, in one read (procfs answers these files in one). */
function readBounded(path: string, maxBytes: number): string {
  const fd = openSync(path, "r");
  try {
    const buffer = Buffer.alloc(maxBytes);
    return buffer.subarray(0, readSync(fd, buffer, 0, maxBytes, 0)).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

/** At most this much of /proc/PID/cmdline is read: argv[0] names a program, and no path is longer (PATH_MAX). */
export const MAX_ARGV0_BYTES = 4096;

/** argv[0] from a /proc/PID/cmdline, read only up to its NUL: the other arguments are none of proa's business (a
 * sidecar's may hold its secrets) and can be megabytes long. undefined when it does not end within MAX_ARGV0_BYTES;
 * a process that rewrote its command line (setproctitle) may leave no NUL, and then it is all argv[0]. */
export function readArgv0(path: string): string | undefined {
  const fd = openSync(path, "r");
  try {
    const buffer = Buffer.alloc(MAX_ARGV0_BYTES);
    let length = 0;
    while (length < buffer.length) {
      const read = readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) return buffer.toString("utf8", 0, length);
      const end = buffer.subarray(0, length + read).indexOf(0, length);
      if (end !== -1) return buffer.toString("utf8", 0, end);
      length += read;
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}

const uid = (dash: string) => [8, 4, 4, 4, 12].map((n) => `[0-9a-f]{${n}}`).join(dash);
// The kubelet's Pod cgroup, below a kubepods one: cgroupfs driver `pod<UID>`, systemd driver
// `kubepods[-<qos>]-pod<UID with underscores>.slice`. A guaranteed Pod has no QoS level.
const CGROUPFS_POD = new RegExp(`^pod(${uid("-")})$`);
const SYSTEMD_POD = new RegExp(`^kubepods(?:-[a-z]+)?-pod(${uid("_")})\\.slice$`);

/** Each hierarchy's path in a /proc/PID/cgroup text: cgroup v1 has a line per hierarchy (`N:controllers:/path`),
 * v2 one line, `0::/path`. */
function cgroupLines(cgroup: string): { hierarchy: string; path: string }[] {
  return cgroup
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const second = line.indexOf(":", line.indexOf(":") + 1);
      return { hierarchy: line.slice(0, second), path: line.slice(second + 1) };
    });
}

/** The Pod cgroup a /proc/PID/cgroup text names, with the segment right below it (the container's cgroup, "" for a
 * process in the Pod's own), or undefined when it names none, or hierarchies disagree. */
function podCgroupOf(cgroup: string): { podUid: string; leaf: string } | undefined {
  const found = new Set<string>();
  let place: { podUid: string; leaf: string } | undefined;
  for (const { path } of cgroupLines(cgroup)) {
    const segments = path.split("/");
    const kubepods = segments.findIndex((segment) => segment === "kubepods" || segment === "kubepods.slice");
    if (kubepods === -1) continue;
    for (let i = kubepods + 1; i < segments.length; i++) {
      const podUid = CGROUPFS_POD.exec(segments[i]!)?.[1] ?? SYSTEMD_POD.exec(segments[i]!)?.[1]?.replaceAll("_", "-");
      if (podUid) {
        place = { podUid, leaf: segments[i + 1] ?? "" };
        found.add(`${podUid}/${place.leaf}`);
        break;
      }
    }
  }
  return found.size === 1 ? place : undefined;
}

/** The UID of the Pod whose cgroup a /proc/PID/cgroup text names, or undefined. */
export function podUidOf(cgroup: string): string | undefined {
  return podCgroupOf(cgroup)?.podUid;
}

/** The names the runtimes give the cgroups of the Pod's containers (status.containerStatuses and
 * initContainerStatuses, `<runtime>://<64 hex>`): containerd `cri-containerd-<id>.scope` (systemd driver) or
 * `<id>` (cgroupfs); CRI-O `crio-<id>.scope` or `crio-<id>`; Docker `docker-<id>.scope` or `<id>`. CRI-O's
 * monitor, conmon, sits beside them as `crio-conmon-<id>.scope` and the sandbox (pause) has no status: neither is
 * a container of the Pod's. */
export function containerCgroupNames(pod: Pod | undefined): Set<string> {
  const names = new Set<string>();
  for (const { containerID } of [
    ...(pod?.status?.containerStatuses ?? []),
    ...(pod?.status?.initContainerStatuses ?? []),
  ]) {
    const [, runtime, id] = /^(containerd|cri-o|docker):\/\/([0-9a-f]{64})$/.exec(containerID ?? "") ?? [];
    if (runtime === "containerd") names.add(`cri-containerd-${id}.scope`).add(id!);
    if (runtime === "cri-o") names.add(`crio-${id}.scope`).add(`crio-${id}`);
    if (runtime === "docker") names.add(`docker-${id}.scope`).add(id!);
  }
  return names;
}

/** Which processes --kill/--kill-all may reach, or none, with the reason:
 * - podUid: proa sees the node's cgroup paths (cgroup v1, or v2 in the host's cgroup namespace): processes in that
 *   Pod's cgroup, in one of its containers' when the API names them;
 * - privateNamespace: proa's container has its own cgroup namespace (containerd and CRI-O on cgroup v2), so its
 *   /proc/self/cgroup is `0::/`: processes at or below `/`, its own container, or in `/../<name>`, a sibling named
 *   as one of the Pod's containers;
 * - "visible": PROA_KILL_SCOPE=visible, every visible process. */
export type KillScope =
  | { podUid: string; containers: Set<string> }
  | { privateNamespace: true; containers: Set<string> }
  | "visible"
  | { refused: string };

/** proa's own Pod, from its /proc/self/cgroup and the Pod the API gave (its UID checked, its containers' ids). */
export function killScope(ownCgroup: string | undefined, pod: Pod | undefined, env: NodeJS.ProcessEnv): KillScope {
  if (env.PROA_KILL_SCOPE === "visible") return "visible";
  const containers = containerCgroupNames(pod);
  if (ownCgroup !== undefined && isPrivateNamespaceRoot(ownCgroup)) {
    if (pod?.metadata?.uid === undefined) {
      return {
        refused:
          "proa's /proc/self/cgroup is 0::/ (its own cgroup namespace), and without its Pod from the API (as with --ready-url) it cannot tell the Pod's containers from others; set PROA_KILL_SCOPE=visible to signal every visible process",
      };
    }
    return { privateNamespace: true, containers };
  }
  const podUid = ownCgroup === undefined ? undefined : podUidOf(ownCgroup);
  if (podUid === undefined) {
    return {
      refused:
        "proa's /proc/self/cgroup names no Pod cgroup (not in a Kubernetes Pod, or a runtime proa does not know), so it cannot tell the Pod's processes from others; set PROA_KILL_SCOPE=visible to signal every visible process",
    };
  }
  const apiUid = pod?.metadata?.uid;
  if (apiUid !== undefined && apiUid !== podUid)
    return { refused: `proa's cgroup is Pod ${podUid}'s, but the API says proa's Pod is ${quote(apiUid, 40)}` };
  return { podUid, containers };
}

/** cgroup v2 alone, at the root of its namespace: a container in a private cgroup namespace. (With cgroup v1 lines
 * beside it, `0::/` is the unused v2 hierarchy of a v1 host, as on the project's real node.) */
function isPrivateNamespaceRoot(cgroup: string): boolean {
  const lines = cgroupLines(cgroup);
  return lines.length === 1 && lines[0]!.hierarchy === "0:" && lines[0]!.path === "/";
}

/** Whether a process's /proc/PID/cgroup text puts it in the scope's Pod (never "visible" or refused here). */
export function inKillScope(
  cgroup: string | undefined,
  scope: Exclude<KillScope, "visible" | { refused: string }>,
): boolean {
  if (cgroup === undefined) return false;
  if ("privateNamespace" in scope) {
    const lines = cgroupLines(cgroup);
    if (lines.length !== 1 || lines[0]!.hierarchy !== "0:" || !lines[0]!.path.startsWith("/")) return false;
    const [first, second] = lines[0]!.path.slice(1).split("/");
    if (first !== "..") return true; // at or below proa's own container's cgroup
    return second !== undefined && scope.containers.has(second);
  }
  const place = podCgroupOf(cgroup);
  if (place?.podUid !== scope.podUid) return false;
  return scope.containers.size === 0
    ? place.leaf !== "" && !place.leaf.startsWith("crio-conmon-")
    : scope.containers.has(place.leaf);
}

/** ppid (field 4) and start time (field 22) from /proc/PID/stat; comm, field 2, may hold spaces and parentheses. */
function readStat(procDir: string, pid: number): { ppid: number; startTime: number } | undefined {
  const stat = attempt(() => readFileSync(`${procDir}/${pid}/stat`, "utf8"));
  const fields = stat?.slice(stat.lastIndexOf(")") + 2).split(" ");
  const [ppid, startTime] = [Number(fields?.[1]), Number(fields?.[19])];
  return Number.isInteger(ppid) && Number.isInteger(startTime) ? { ppid, startTime } : undefined;
}

function attempt<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined; // unreadable, or the process exited meanwhile
  }
}

/** The name a log line gives a process: the best one readable. */
export const processName = (p: ProcessInfo) => p.exe ?? p.argv0 ?? p.comm ?? "?";

export type MatchRule = "executable" | "argv[0]" | "comm";

/** How --kill NAME matches a process, if it does. comm only as a last resort: the kernel cuts it to 15 characters,
 * so a shorter NAME is needed to tell cloud-sql-proxy from cloud-sql-proxy-v2. */
export function matchRule(p: ProcessInfo, name: string): MatchRule | undefined {
  if (p.exe === name) return "executable";
  if (p.argv0 === name) return "argv[0]";
  if (p.exe === undefined && p.argv0 === undefined && name.length < 15 && p.comm === name) return "comm";
  return undefined;
}

/** Names that match every program the interpreter runs, not one sidecar. */
const INTERPRETERS = ["node", "python", "python3", "java", "sh", "bash", "ruby"];

export interface OwnProcesses {
  pid: number; // proa
  ppid: number; // what started proa (tini, a shell): the first of the ancestors that are spared
  childPid?: number; // the wrapped program
}

export interface Target {
  process: ProcessInfo;
  name: string;
  rule: MatchRule | "--kill-all";
}

export interface Selection {
  targets: Target[];
  /** --kill names that match no visible process. */
  unmatched: string[];
  /** --kill names that are interpreters. */
  interpreters: string[];
  /** False when nothing but PID 1 and proa's own processes is visible: no shared process namespace. */
  sidecarsVisible: boolean;
  /** Visible processes outside proa's Pod (or all, when the scope is refused), never signalled. */
  outOfScope: ProcessInfo[];
}

/** Which processes --kill NAME and --kill-all signal: only those in scope, and never PID 1, proa, its child or any
 * of proa's ancestors. */
export function selectProcesses(
  processes: ProcessInfo[],
  kill: string[],
  killAll: boolean,
  own: OwnProcesses,
  scope: KillScope,
): Selection {
  const byPid = new Map(processes.map((p) => [p.pid, p]));
  const spared = new Set([1, own.pid, ...(own.childPid === undefined ? [] : [own.childPid])]);
  for (let pid = own.ppid; pid > 1 && !spared.has(pid); pid = byPid.get(pid)?.ppid ?? 0) spared.add(pid);
  const inScope = (p: ProcessInfo) => scope === "visible" || (!("refused" in scope) && inKillScope(p.cgroup, scope));
  const visible = processes.filter(({ pid }) => !spared.has(pid));
  const others = visible.filter(inScope);
  const targets: Target[] = [];
  for (const process of others) {
    if (killAll) {
      targets.push({ process, name: processName(process), rule: "--kill-all" });
      continue;
    }
    for (const name of kill) {
      const rule = matchRule(process, name);
      if (rule) {
        targets.push({ process, name, rule });
        break;
      }
    }
  }
  return {
    targets,
    unmatched: kill.filter((name) => !others.some((process) => matchRule(process, name))),
    interpreters: kill.filter((name) => INTERPRETERS.includes(name)),
    // Without shareProcessNamespace, proa (or its wrapper) is PID 1 of its own container.
    sidecarsVisible: own.pid !== 1 && others.length > 0,
    outOfScope: visible.filter((p) => !inScope(p)),
  };
}

function signalProcesses(
  options: ShutdownOptions,
  childPid: number | undefined,
  pod: Pod | undefined,
  log: Log,
  procDir = "/proc",
): Pick<ShutdownReport, "signals" | "unmatched" | "refused"> {
  const scope = killScope(
    attempt(() => readFileSync(`${procDir}/self/cgroup`, "utf8")),
    pod,
    process.env,
  );
  if (typeof scope === "object" && "refused" in scope) {
    log.warn(`--kill and --kill-all signal nothing: ${scope.refused}`);
    return { signals: [], unmatched: [], refused: scope.refused };
  }
  let processes: ProcessInfo[];
  try {
    processes = readProcesses(procDir);
  } catch (error) {
    log.warn("cannot list processes for --kill/--kill-all", { error: String(error) });
    return { signals: [], unmatched: options.kill };
  }
  const own = { pid: process.pid, ppid: process.ppid, childPid };
  const { targets, unmatched, interpreters, sidecarsVisible, outOfScope } = selectProcesses(
    processes,
    options.kill,
    options.killAll,
    own,
    scope,
  );
  if (outOfScope.length > 0)
    log.debug("processes outside proa's Pod are never signalled", {
      outOfScope: outOfScope.map((p) => `${p.pid} ${quote(processName(p), 100)}`),
    });
  for (const name of interpreters) {
    log.warn(
      `--kill ${quote(name, 100)} matches every program that ${quote(name, 100)} runs, not one sidecar; name the sidecar's own executable if you can`,
    );
  }
  if (!sidecarsVisible) {
    log.warn(
      "proa cannot see the sidecars' processes, so --kill and --kill-all reach nothing; the Pod probably lacks shareProcessNamespace: true",
      {
        visible: processes.map((p) => `${p.pid} ${quote(processName(p), 100)}`),
      },
    );
  } else {
    const visible = [...new Set(processes.map((p) => quote(processName(p), 100)))]; // any process chooses its name
    for (const name of unmatched.map((name) => quote(name, 100)))
      log.warn(`no process named ${name} is running, so --kill ${name} signals nothing`, { visible });
  }
  return { signals: signalTargets(targets, log, procDir), unmatched };
}

/** SIGTERM to each target that is still the process that was read: same pid, same start time. */
export function signalTargets(targets: Target[], log: Log, procDir = "/proc"): SignalRecord[] {
  return targets.map(({ process: target, name, rule }) => {
    const record = { pid: target.pid, name, rule };
    const shown = quote(name, 100); // any process can choose its name: it must not forge or disguise a line
    // Between this check and kill() the pid could still be reused, but only within microseconds rather than the
    // whole step; Node offers no pidfd_send_signal to close that window.
    if (readStat(procDir, target.pid)?.startTime !== target.startTime) {
      log.debug(`${shown} exited before proa signalled it`, { pid: target.pid });
      return { ...record, sent: false, error: "exited" };
    }
    try {
      process.kill(target.pid, "SIGTERM");
      log.info(`sent SIGTERM to ${shown}`, { pid: target.pid, rule });
      return { ...record, sent: true };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "ESRCH") {
        const hint =
          code === "EPERM"
            ? ": it runs as another user; run proa's container as the sidecar's user (securityContext.runAsUser)"
            : "";
        log.warn(`cannot send SIGTERM to ${shown}${hint}`, { pid: target.pid, rule, error: String(error) });
      }
      return { ...record, sent: false, error: code ?? String(error) };
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Waiting for the sidecars to exit, by watching the Pod

/** What proa knows of its Pod: the one watch of it (once the API is loaded), and proa's own container. */
export interface PodSeen {
  feed?: PodFeed;
  ownContainer?: string;
}

/** Each regular sidecar counts as exited once the Pod shows it terminated. */
export function podExitWatch(known: PodSeen): ExitWatch {
  return { waitForExit: (until, seen, startedAt, log, from) => waitForExit(known, until, seen, startedAt, log, from) };
}

/**
 * Follows the Pod's watch until every regular sidecar has exited, the Pod is gone, or `until` aborts (the deadline).
 * Each Pod seen is passed to `seen` (a deletion may move the deadline).
 */
async function waitForExit(
  context: PodSeen,
  until: AbortSignal,
  seen: (pod: Pod) => void,
  startedAt: number,
  log: Log,
  from: Pod | undefined,
): Promise<WaitResult> {
  const { feed, ownContainer } = context;
  const exits: ExitRecord[] = [];
  if (!feed || !ownContainer) {
    log.info("not waiting for the sidecars to exit: proa did not get to know its Pod and its own container");
    return { outcome: "not watched", stillRunning: [], exits };
  }
  let running = from ? runningContainers(from, ownContainer) : undefined;
  if (running?.length === 0) return { outcome: "all exited", stillRunning: [], exits };
  if (until.aborted) return { outcome: "budget spent", stillRunning: running ?? ["unknown"], exits };
  // The watch retries an unreachable API on its own; aborting it at the deadline is what bounds the wait.
  const stop = new AbortController();
  const abort = () => stop.abort(new Error("the shutdown budget is spent"));
  until.addEventListener("abort", abort);
  try {
    for await (const pod of feed.follow(stop.signal)) {
      if (pod === null) {
        log.info("the Pod is gone, so there are no sidecars left to wait for");
        return { outcome: "pod gone", stillRunning: [], exits };
      }
      seen(pod);
      // A container counts as exited once seen terminated, even if the kubelet restarts it afterwards.
      const now = runningContainers(pod, ownContainer).filter((name) => running?.includes(name) ?? true);
      const gone = running?.filter((name) => !now.includes(name)) ?? [];
      if (gone.length > 0) {
        const exited = gone.map((name) => ({ name, exitCode: exitCode(pod, name), afterMs: Date.now() - startedAt }));
        exits.push(...exited);
        const what = exited
          .map(({ name, exitCode }) => `${name} exited${exitCode === undefined ? "" : ` with ${exitCode}`}`)
          .join(", ");
        const rest = now.length > 0 ? `still running: ${now.join(", ")}` : "all sidecars have exited";
        log.info(`${what}; ${rest}`, {
          exited: Object.fromEntries(exited.map(({ name, exitCode }) => [name, exitCode ?? null])),
          stillRunning: now,
        });
      }
      running = now;
      if (running.length === 0) return { outcome: "all exited", stillRunning: [], exits };
    }
  } catch (error) {
    if (!stop.signal.aborted) {
      const message = error instanceof Error ? error.message : String(error);
      log.warn("stopped waiting for the sidecars to exit: watching the Pod failed", {
        error: message,
        stillRunning: running,
      });
      return { outcome: "watch failed", stillRunning: running ?? ["unknown"], exits };
    }
  } finally {
    until.removeEventListener("abort", abort);
    stop.abort();
  }
  return { outcome: "budget spent", stillRunning: running ?? ["unknown"], exits };
}

function exitCode(pod: Pod, container: string): number | undefined {
  const status = pod.status?.containerStatuses?.find(({ name }) => name === container);
  return status?.state?.terminated?.exitCode ?? status?.lastState?.terminated?.exitCode;
}
