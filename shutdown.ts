// The shutdown step: once the program has exited, ask the sidecars to stop (HTTP requests, SIGTERM by process name)
// and wait until they have exited, so that the Pod (typically a Job) can complete. Nothing here is fatal: every
// problem is logged on its own line and proa still exits with the program's status.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { basename } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { runningContainers, watchPod, type Cluster, type Pod, type Timing } from "./kube.ts";
import type { Log } from "./log.ts";

export interface ShutdownOptions {
  httpGet: URL[]; // parsed, and checked to be http(s), by the command line
  httpPost: URL[];
  kill: string[];
  killAll: boolean;
  timeoutMs?: number; // --shutdown-timeout (overrides the Pod's grace period)
  requestTimeoutMs: number; // --shutdown-request-timeout
  userAgent: string;
}

/** How the shutdown step sees the sidecars exit: by watching the Pod (podExitWatch), or by their ready URLs'
 * ports refusing connections (readyurl.ts). Resolves with the sidecars still running at the deadline. */
export interface ExitWatch {
  waitForExit(deadline: number, log: Log): Promise<string[]>;
}

export interface ShutdownContext {
  sidecars?: ExitWatch; // undefined: no wait for exit
  pod?: Pod; // last Pod snapshot seen (grace period, deletionTimestamp)
  childPid?: number; // excluded from --kill-all
  terminatingSince?: number; // when proa received SIGTERM: the kubelet's grace period started then
}

// After SIGTERM the kubelet kills the container when the grace period ends: proa exits this much earlier, so that the
// Pod still reports the program's status rather than 137.
const BEFORE_KUBELET_KILL_MS = 1000;

export interface ShutdownTiming {
  /** Delays before retrying a refused connection (the sidecar may be restarting), as long as the budget allows. */
  refusedRetryDelaysMs: number[];
}

const DEFAULT_TIMING: ShutdownTiming = { refusedRetryDelaysMs: [100, 250, 500, 1000] };

/** Never throws; logs each problem on its own line. The whole step is bounded by shutdownBudgetMs. */
export async function shutDownSidecars(options: ShutdownOptions, context: ShutdownContext, log: Log, timing: Partial<ShutdownTiming> = {}): Promise<void> {
  try {
    const { refusedRetryDelaysMs } = { ...DEFAULT_TIMING, ...timing };
    const start = context.terminatingSince === undefined ? Date.now() : context.terminatingSince - BEFORE_KUBELET_KILL_MS;
    const deadline = start + shutdownBudgetMs(context.pod, options.timeoutMs);
    const budgetMs = Math.max(0, deadline - Date.now());
    const requests = [...options.httpGet.map((url) => ({ method: "GET", url })), ...options.httpPost.map((url) => ({ method: "POST", url }))];
    if (requests.length === 0 && options.kill.length === 0 && !options.killAll) {
      const means = "--shutdown-http-get, --shutdown-http-post, --kill or --kill-all";
      log.info(`proa has no way to stop the sidecars (no ${means}), so it can only wait for them to exit`, { budgetMs });
    } else {
      log.info("shutting the sidecars down", { budgetMs });
    }
    const sent = Promise.all(requests.map(({ method, url }) => sendShutdownRequest(method, url, options, deadline, refusedRetryDelaysMs, log)));
    if (options.kill.length > 0 || options.killAll) signalProcesses(options, context.childPid, log);
    const [, stillRunning = []] = await Promise.all([sent, context.sidecars?.waitForExit(deadline, log)]);
    if (stillRunning.length > 0) {
      log.warn(`the sidecars did not exit within ${budgetMs} ms; still running: ${stillRunning.join(", ")}; proa exits anyway`, { stillRunning, budgetMs });
    }
  } catch (error) {
    log.error("shutting the sidecars down failed unexpectedly", { error: String(error) });
  }
}

/** The Pod's own deadline for its containers to stop: the deletion's grace period when it is being deleted. */
export function shutdownBudgetMs(pod: Pod | undefined, timeoutMs: number | undefined): number {
  if (timeoutMs !== undefined) return timeoutMs;
  const deleting = pod?.metadata?.deletionTimestamp ? pod.metadata.deletionGracePeriodSeconds : undefined;
  return (deleting ?? pod?.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP shutdown requests

async function sendShutdownRequest(method: string, target: URL, options: ShutdownOptions, deadline: number, retryDelaysMs: number[], log: Log): Promise<void> {
  const url = new URL(target); // a copy: the credentials are taken out below
  const headers: Record<string, string> = { "user-agent": options.userAgent };
  // fetch refuses URLs with credentials; send them as Basic authentication (as curl does), and never log them.
  if (url.username || url.password) {
    const decode = (text: string) => {
      try {
        return decodeURIComponent(text);
      } catch {
        return text; // a stray % is taken literally
      }
    };
    headers.authorization = `Basic ${Buffer.from(`${decode(url.username)}:${decode(url.password)}`).toString("base64")}`;
    url.username = url.password = "";
  }
  const fields = { method, url: url.href };
  for (let attempt = 0; ; attempt++) {
    const timeoutMs = Math.max(0, Math.min(options.requestTimeoutMs, deadline - Date.now()));
    try {
      const response = await fetch(url, { method, headers, signal: AbortSignal.timeout(timeoutMs) });
      if (response.ok) {
        await response.body?.cancel();
        log.info(`sidecar shutdown request answered ${response.status}`, { ...fields, status: response.status });
        return;
      }
      const body = (await response.text()).slice(0, 200);
      const hint = response.status === 405 && method === "GET" ? "; if this is Envoy's /quitquitquit, which only takes POST, use --shutdown-http-post" : "";
      log.warn(`sidecar shutdown request answered ${response.status}${hint}`, { ...fields, status: response.status, body });
      return;
    } catch (error) {
      const delayMs = retryDelaysMs[attempt];
      if (isRefused(error) && delayMs !== undefined && delayMs < deadline - Date.now()) {
        log.debug("sidecar refused the shutdown request's connection; retrying", { ...fields, delayMs });
        await sleep(delayMs);
        continue;
      }
      const limit = `${timeoutMs} ms${timeoutMs < options.requestTimeoutMs ? " (the rest of the shutdown budget)" : ""}`;
      log.warn(`sidecar shutdown request failed: ${describeFailure(error, limit)}`, { ...fields, attempts: attempt + 1 });
      return;
    }
  }
}

// fetch rejects with a TypeError whose cause is the socket error (an AggregateError when several addresses were tried).
function isRefused(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string; errors?: { code?: string }[] } } | undefined)?.cause;
  return (cause?.code ?? cause?.errors?.[0]?.code) === "ECONNREFUSED";
}

function describeFailure(error: unknown, limit: string): string {
  if (isRefused(error)) return "connection refused (is the URL's port right? the sidecar may also have exited already)";
  if (error instanceof Error && error.name === "TimeoutError") return `no answer within ${limit}`;
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? cause.message : String(error instanceof Error ? error.message : error);
}

// ---------------------------------------------------------------------------------------------------------------
// Signals by process name (needs shareProcessNamespace: true to see the sidecars' processes)

export interface ProcessInfo {
  pid: number;
  name: string;
  /** The name came from /proc/PID/comm, which the kernel truncates to 15 characters. */
  fromComm: boolean;
}

/** Every visible process, named after its executable; /proc/PID/exe is unreadable for other users' processes. */
export function readProcesses(procDir = "/proc"): ProcessInfo[] {
  const processes: ProcessInfo[] = [];
  for (const entry of readdirSync(procDir).filter((name) => /^\d+$/.test(name))) {
    try {
      processes.push({ pid: Number(entry), name: basename(readlinkSync(`${procDir}/${entry}/exe`)), fromComm: false });
    } catch {
      try {
        processes.push({ pid: Number(entry), name: readFileSync(`${procDir}/${entry}/comm`, "utf8").trim(), fromComm: true });
      } catch {
        // The process exited while we were reading.
      }
    }
  }
  return processes;
}

export interface OwnProcesses {
  pid: number; // proa
  ppid: number; // what started proa (tini, a shell), never a sidecar
  childPid?: number; // the wrapped program
}

export interface Selection {
  targets: ProcessInfo[];
  /** --kill names that match no visible process. */
  unmatched: string[];
  /** False when only proa's own processes and the pause process are visible: no shared process namespace. */
  sidecarsVisible: boolean;
}

/** Which processes --kill NAME and --kill-all signal: never proa, its parent, its child or the Pod's pause process. */
export function selectProcesses(processes: ProcessInfo[], kill: string[], killAll: boolean, own: OwnProcesses): Selection {
  const others = processes.filter(
    ({ pid, name }) => pid !== own.pid && pid !== own.ppid && pid !== own.childPid && !(pid === 1 && name === "pause"),
  );
  const matches = (process: ProcessInfo, name: string) => process.name === name || (process.fromComm && process.name === name.slice(0, 15));
  return {
    targets: killAll ? others : others.filter((process) => kill.some((name) => matches(process, name))),
    unmatched: kill.filter((name) => !others.some((process) => matches(process, name))),
    // Without shareProcessNamespace, proa is PID 1 of its own container.
    sidecarsVisible: own.pid !== 1 && others.length > 0,
  };
}

function signalProcesses(options: ShutdownOptions, childPid: number | undefined, log: Log): void {
  let processes: ProcessInfo[];
  try {
    processes = readProcesses();
  } catch (error) {
    log.warn("cannot list processes for --kill/--kill-all", { error: String(error) });
    return;
  }
  const own = { pid: process.pid, ppid: process.ppid, childPid };
  const { targets, unmatched, sidecarsVisible } = selectProcesses(processes, options.kill, options.killAll, own);
  if (!sidecarsVisible) {
    log.warn("proa cannot see the sidecars' processes, so --kill and --kill-all reach nothing; the Pod probably lacks shareProcessNamespace: true", {
      visible: processes.map(({ pid, name }) => `${pid} ${name}`),
    });
  } else {
    const visible = [...new Set(processes.map(({ name }) => name))];
    for (const name of unmatched) log.warn(`no process named ${name} is running, so --kill ${name} signals nothing`, { visible });
  }
  for (const { pid, name } of targets) {
    try {
      process.kill(pid, "SIGTERM");
      log.info(`sent SIGTERM to ${name}`, { pid });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ESRCH") continue; // it exited on its own meanwhile
      const hint = code === "EPERM" ? ": it belongs to another user; run proa as that user or as root" : "";
      log.warn(`cannot send SIGTERM to ${name}${hint}`, { pid, error: String(error) });
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Waiting for the sidecars to exit, by watching the Pod

/** What proa knows of its Pod: the API to watch it (once loaded), and the last snapshot with proa's own container. */
export interface PodSeen {
  cluster?: Cluster;
  pod?: Pod;
  ownContainer?: string;
}

/** Each regular sidecar counts as exited once the Pod shows it terminated. */
export function podExitWatch(seen: PodSeen, watchTiming?: Partial<Timing>): ExitWatch {
  return { waitForExit: (deadline, log) => waitForExit(seen, deadline, watchTiming, log) };
}

async function waitForExit(context: PodSeen, deadline: number, watchTiming: Partial<Timing> | undefined, log: Log): Promise<string[]> {
  const { cluster, ownContainer } = context;
  if (!cluster || !ownContainer) {
    log.info("not waiting for the sidecars to exit: proa did not get to know its Pod and its own container");
    return [];
  }
  let running = context.pod ? runningContainers(context.pod, ownContainer) : undefined;
  if (running?.length === 0) return [];
  // The watch retries an unreachable API on its own; aborting it at the deadline is what bounds the wait.
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(new Error("the shutdown budget is spent")), deadline - Date.now());
  try {
    for await (const pod of watchPod(cluster, log, stop.signal, watchTiming)) {
      if (pod === null) {
        log.info("the Pod is gone, so there are no sidecars left to wait for");
        return [];
      }
      // A container counts as exited once seen terminated, even if the kubelet restarts it afterwards.
      const now = runningContainers(pod, ownContainer).filter((name) => running?.includes(name) ?? true);
      for (const name of running?.filter((name) => !now.includes(name)) ?? []) {
        const code = exitCode(pod, name);
        const rest = now.length > 0 ? `still running: ${now.join(", ")}` : "all sidecars have exited";
        log.info(`${name} exited${code === undefined ? "" : ` with ${code}`}; ${rest}`, { container: name, exitCode: code, stillRunning: now });
      }
      running = now;
      if (running.length === 0) return [];
    }
  } catch (error) {
    if (!stop.signal.aborted) {
      const message = error instanceof Error ? error.message : String(error);
      log.warn("stopped waiting for the sidecars to exit: watching the Pod failed", { error: message, stillRunning: running });
      return [];
    }
  } finally {
    clearTimeout(timer);
    stop.abort();
  }
  return running ?? ["unknown"];
}

function exitCode(pod: Pod, container: string): number | undefined {
  const status = pod.status?.containerStatuses?.find(({ name }) => name === container);
  return status?.state?.terminated?.exitCode ?? status?.lastState?.terminated?.exitCode;
}
