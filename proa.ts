// proa: the entrypoint of a Pod's main container. Waits until the sidecars are ready, runs the program with
// signals passed through, shuts the sidecars down unless its container will be restarted, and exits with the
// program's status.
import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:os";
import { parseArgs } from "node:util";
import {
  loadCluster,
  nodeEnvironmentWarnings,
  podFeed,
  ReadyTimeoutError,
  waitedFor,
  waitTiming,
  waitUntilReady,
  watchTheRun,
  type Pod,
  type ReadyOptions,
  type RunEvent,
  type RunOptions,
} from "./kube.ts";
import {
  gracePeriodMs,
  podExitWatch,
  shutDownSidecars,
  type ExitWatch,
  type PodSeen,
  type ShutdownContext,
  type ShutdownOptions,
} from "./shutdown.ts";
import { readyUrls } from "./readyurl.ts";
import {
  recordRun,
  tellTheStory,
  terminationLog,
  type ProgramOutcome,
  type TerminationLog,
  type WaitEnding,
  type WaitRecord,
} from "./summary.ts";
import { runCheck } from "./check.ts";
import { createLog, logLevel, redactUrl, type Log } from "./log.ts";

// The build defines PROA_VERSION from package.json, so the bundle needs no file beside it.
declare const PROA_VERSION: string | undefined;
export const VERSION = typeof PROA_VERSION === "string" ? PROA_VERSION : "development";
const USER_AGENT = `proa/${VERSION}`;

// ---------------------------------------------------------------------------------------------------------------
// The story

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const log = createLog(logLevel(env));
  const command = parseOrExplain(argv, env, log);
  if (typeof command === "number") return command;
  const { options } = command;
  if (options.check) return runCheck(options, env, log);

  for (const warning of nodeEnvironmentWarnings(env)) log.warn(warning);
  const lifecycle = trapSignals(log);
  const sidecars = watchSidecars(options, env, log, (pod) => (shutdownContext.pod = pod));
  const shutdownContext: ShutdownContext = { sidecars, sigterm: lifecycle.sigterm };
  const story = recordRun(options.command[0]!, sidecars.mode);
  let status: number;
  try {
    await sidecars.waitUntilReady(lifecycle.beforeStart);
    lifecycle.beforeStart.throwIfAborted(); // a signal that came just as the wait succeeded still wins
    story.waitEnded({ kind: "ready" });
    const run = await runWatched(options, sidecars, lifecycle, shutdownContext, log);
    story.programEnded(run.outcome, run.events);
    status = run.sidecarDied ? SIDECAR_DIED : exitStatus(run.outcome);
  } catch (error) {
    const ending = waitEnding(error, log);
    story.waitEnded(ending);
    status = statusForFailure(ending);
  }
  lifecycle.shuttingDown();
  shutdownContext.status = status; // with the Pod's restartPolicy, whether the sidecars are shut down at all
  const shutdown = await shutDownSidecars(options.shutdown, shutdownContext, log);
  await sidecars.close();
  lifecycle.release();
  const record = story.finish(sidecars.waitedFor(), shutdown, status);
  tellTheStory(record, options.terminationMessage ? sidecars.terminationLog() : undefined, log);
  log.info("exiting", { status });
  return status;
}

/** Runs the program while the Pod's watch looks for a sidecar that dies or restarts; a death that ends the run
 * stops the program (SIGTERM, then SIGKILL after --program-stop-timeout). */
async function runWatched(
  options: Options,
  sidecars: Sidecars,
  lifecycle: ReturnType<typeof trapSignals>,
  context: ShutdownContext,
  log: Log,
): Promise<{ outcome: ProgramOutcome; events: RunEvent[]; sidecarDied: boolean }> {
  const running = new AbortController();
  let watching: Promise<RunEvent[]> = Promise.resolve([]);
  let sidecarDied = false;
  const outcome = await runProgram(options.command, log, (child) => {
    context.childPid = child.pid;
    lifecycle.forwardTo(child);
    const ending = () => lifecycle.sigterm.aborted; // the Pod's deletion is read from the Pod itself
    watching = sidecars.watchRun(options.run, ending, running.signal, () => {
      sidecarDied = true;
      stopProgram(child, Math.min(options.run.stopTimeoutMs ?? Infinity, gracePeriodMs(context.pod)), log);
    });
  });
  running.abort();
  return { outcome, events: await watching, sidecarDied };
}

/** SIGTERM now, SIGKILL after graceMs unless the program has exited by then. */
function stopProgram(child: ChildProcess, graceMs: number, log: Log): void {
  log.warn(`sending SIGTERM to the program; SIGKILL in ${graceMs} ms if it has not exited`, { pid: child.pid });
  child.kill("SIGTERM");
  const timer = setTimeout(() => {
    log.warn(`the program did not exit within ${graceMs} ms of SIGTERM: sending SIGKILL`, { pid: child.pid });
    child.kill("SIGKILL");
  }, graceMs);
  child.once("close", () => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------------------------
// The sidecars, as main and the shutdown step see them: through the Pod, or through their own ready URLs

export interface Sidecars extends ExitWatch {
  mode: WaitRecord["mode"];
  /** Resolves once every sidecar is ready; rejects with signal.reason when aborted, else with a user-facing Error. */
  waitUntilReady(signal: AbortSignal): Promise<unknown>;
  /** While the program runs, until `until` aborts: the sidecars' deaths and restarts; stop() on one that ends the run. */
  watchRun(options: RunOptions, ending: () => boolean, until: AbortSignal, stop: () => void): Promise<RunEvent[]>;
  /** For the summary: the containers (or URLs) the wait watched, as far as proa knows them. */
  waitedFor(): string[];
  /** proa's own termination message file, with its policy. */
  terminationLog(): TerminationLog;
  /** Ends the watch of the Pod, if there is one. */
  close(): Promise<void>;
}

/** With --ready-url, the sidecars' own endpoints and no Kubernetes API at all (nothing is watched while the program
 * runs: see README); otherwise proa's Pod, through one watch from the wait to the end of the shutdown step (in-cluster
 * config is loaded when the wait starts, so that its errors end the wait like any other). */
function watchSidecars(options: Options, env: NodeJS.ProcessEnv, log: Log, onPod: (pod: Pod) => void): Sidecars {
  if (options.readyUrls.length > 0) {
    return {
      mode: "urls",
      ...readyUrls(options.readyUrls, options.ready.readyTimeoutMs, USER_AGENT, log),
      watchRun: async () => [],
      waitedFor: () => options.readyUrls.map(String),
      terminationLog: () => terminationLog(undefined, env), // no Pod spec: the kubelet's default path
      close: async () => {},
    };
  }
  const seen: PodSeen & { ready?: Pod } = {};
  const { waitFor, ignore } = options.ready;
  const latest = () => seen.feed?.latest() ?? undefined;
  const ownSpec = () => latest()?.spec?.containers?.find(({ name }) => name === seen.ownContainer);
  const watched = () => {
    const pod = latest();
    return pod && seen.ownContainer ? waitedFor(pod, seen.ownContainer, waitFor, ignore) : waitFor;
  };
  return {
    mode: "pod",
    async waitUntilReady(signal) {
      const cluster = loadCluster(env, USER_AGENT);
      seen.feed = podFeed(cluster, log, waitTiming(options.ready), (pod) => pod && onPod(pod));
      const ready = await waitUntilReady(
        cluster,
        options.ready,
        log,
        signal,
        (pod, own) => {
          if (seen.ownContainer === undefined)
            checkCritical(options.run.critical, waitedFor(pod, own, waitFor, ignore));
          seen.ownContainer = own;
        },
        {},
        seen.feed,
      );
      seen.ready = ready.pod;
      return ready;
    },
    watchRun: async (run, ending, until, stop) =>
      seen.feed && seen.ready ? watchTheRun(seen.feed, seen.ready, watched(), run, ending, until, log, stop) : [],
    ...podExitWatch(seen),
    // Once proa knew its Pod, the containers the wait watched; before that, those --wait-for named.
    waitedFor: watched,
    terminationLog: () => terminationLog(ownSpec(), env),
    close: async () => seen.feed?.close(),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Exit status: one policy, as tini and shells report it.

export const USAGE_ERROR = 2;
export const WAIT_FAILED = 1;
// sysexits' EX_UNAVAILABLE, "a service is unavailable": a sidecar that cannot come back ended the run. Unlike 1, 2,
// 126, 127 and 128+N, no program's own failure reads as it, so a Job's podFailurePolicy can tell the two apart.
export const SIDECAR_DIED = 69;

export function exitStatus(outcome: ProgramOutcome): number {
  switch (outcome.kind) {
    case "exited":
      return outcome.code & 0xff;
    case "killed":
      return 128 + (constants.signals[outcome.signal] ?? 0);
    case "not-started":
      // 127: not found, 126: found but cannot be executed (POSIX shell conventions, as in tini).
      return outcome.errno === "ENOENT" ? 127 : 126;
  }
}

/** --critical names a container the run watches (as --wait-for and --ignore name the Pod's), or the wait fails. */
function checkCritical(critical: string[], watched: string[]): void {
  const unknown = critical.find((name) => !watched.includes(name));
  if (unknown !== undefined)
    throw new Error(
      `--critical ${unknown}: proa does not watch such a container (it watches those it waits for: ${watched.join(", ") || "none"})`,
    );
}

/** Why the program never ran: a signal (the wait's abort reason), --ready-timeout, or an error, which is logged. */
function waitEnding(error: unknown, log: Log): WaitEnding {
  if (isSignal(error)) return { kind: "signal", signal: error };
  const reason = error instanceof Error ? error.message : String(error);
  log.error(reason);
  return { kind: error instanceof ReadyTimeoutError ? "timeout" : "failed", reason };
}

/** 128+N when signal N ended the wait, as if it had killed the program; 1 when the wait failed. */
function statusForFailure(ending: WaitEnding): number {
  return ending.kind === "signal" ? exitStatus({ kind: "killed", signal: ending.signal }) : WAIT_FAILED;
}

// ---------------------------------------------------------------------------------------------------------------
// Running the program

/** Spawns the program (never through a shell) and settles once, on 'close', when its stdio is flushed. */
export function runProgram(
  command: string[],
  log: Log,
  onSpawn: (child: ChildProcess) => void,
): Promise<ProgramOutcome> {
  const [program, ...args] = command as [string, ...string[]];
  return new Promise((resolve) => {
    const child = spawn(program, args, { stdio: "inherit" });
    onSpawn(child); // at once, so that no signal falls between spawn() and its 'spawn' event
    let spawnError: NodeJS.ErrnoException | undefined;
    child.on("error", (error: NodeJS.ErrnoException) => {
      spawnError = error;
    });
    child.on("spawn", () => log.info("program started", { program, pid: child.pid }));
    child.on("close", (code, signal) => {
      if (spawnError) {
        const outcome: ProgramOutcome = { kind: "not-started", errno: spawnError.code ?? "" };
        const problem =
          exitStatus(outcome) === 127
            ? "was not found (check the path and the image's PATH)"
            : "cannot be executed (check that it is a file with execute permission)";
        log.error(`program ${program} ${problem}`, { program, error: spawnError.code });
        resolve(outcome);
      } else if (signal) {
        log.info("program was killed by a signal", { signal });
        resolve({ kind: "killed", signal });
      } else {
        log.info("program exited", { code });
        resolve({ kind: "exited", code: code ?? 0 });
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Signals

/** The signals passed to the program: an explicit list, never SIGCHLD and friends. */
export const FORWARDED_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH"] as const;

function isSignal(value: unknown): value is NodeJS.Signals {
  return typeof value === "string" && value in constants.signals;
}

/** The signals that stop the wait before the program starts; the others (SIGUSR1, SIGUSR2, a terminal's SIGWINCH)
 * mean nothing until there is a program to pass them to. */
const STOPS_THE_WAIT: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"];

/**
 * Handles the forwarded signals for proa's whole life. A handler is always installed, which also matters as PID 1,
 * where the kernel drops signals that have no handler. Before the program starts a terminating signal aborts the
 * wait; while it runs every signal is passed on; during shutdown it is noted and shutdown carries on. SIGTERM, in any
 * phase, also aborts `sigterm` with its time: the kubelet's grace period runs from then, and the shutdown step
 * listens to it.
 */
function trapSignals(log: Log) {
  const waiting = new AbortController();
  const sigterm = new AbortController();
  let child: ChildProcess | undefined;
  let phase: "waiting" | "running" | "shutting down" = "waiting";
  const onSignal = (signal: NodeJS.Signals) => {
    if (phase === "waiting" && !STOPS_THE_WAIT.includes(signal)) {
      log.debug(`received ${signal} before the program started: ignored`, { signal });
    } else if (phase === "waiting") {
      log.warn(`received ${signal} before the program started: not starting it`, { signal });
      waiting.abort(signal);
    } else if (phase === "running" && child) {
      log.info(`passing ${signal} to the program`, { signal, pid: child.pid });
      child.kill(signal);
    } else {
      log.info(`received ${signal} while shutting down the sidecars: carrying on`, { signal });
    }
    if (signal === "SIGTERM" && !sigterm.signal.aborted) sigterm.abort(Date.now());
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, onSignal);
  return {
    beforeStart: waiting.signal,
    sigterm: sigterm.signal,
    forwardTo(started: ChildProcess) {
      child = started;
      phase = "running";
    },
    shuttingDown() {
      phase = "shutting down";
    },
    release() {
      for (const signal of FORWARDED_SIGNALS) process.off(signal, onSignal);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Command line

export interface Options {
  check: boolean; // --check: report on the setup, run nothing
  command: string[];
  readyUrls: URL[]; // --ready-url: when given, wait on these instead of the Kubernetes API
  ready: ReadyOptions;
  run: RunOptions; // what a sidecar's death or restart does while the program runs
  shutdown: ShutdownOptions;
  terminationMessage: boolean; // false: --no-termination-message
}

export type CommandLine = { kind: "run"; options: Options } | { kind: "help" } | { kind: "version" };

export class UsageError extends Error {}

const OPTIONS = {
  "shutdown-http-get": { type: "string", short: "g", multiple: true },
  "shutdown-http-post": { type: "string", short: "p", multiple: true },
  kill: { type: "string", short: "k", multiple: true },
  "kill-all": { type: "boolean", short: "K" },
  container: { type: "string", short: "c" },
  "wait-for": { type: "string", short: "w", multiple: true },
  ignore: { type: "string", short: "i", multiple: true },
  "ready-url": { type: "string", multiple: true },
  "ready-timeout": { type: "string" },
  critical: { type: "string", multiple: true },
  "critical-all": { type: "boolean" },
  "no-critical": { type: "boolean" },
  "program-stop-timeout": { type: "string" },
  "shutdown-timeout": { type: "string" },
  "shutdown-request-timeout": { type: "string" },
  "no-termination-message": { type: "boolean" },
  check: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

export const HELP = `Usage: proa [options] [--] program [args...]
       proa --check [options] [-- program [args...]]

Waits until every other container of this Pod is ready (or, with --ready-url, until each URL answers 2xx),
runs the program with signals passed through, stops it if a sidecar dies that will not be restarted, shuts the
sidecars down (not when the Pod's restartPolicy will restart proa's container), waits for them to exit (not when the
Pod is being deleted), and exits with the program's status.

Options:
  -g, --shutdown-http-get URL         send GET to URL to shut a sidecar down (repeatable)
  -p, --shutdown-http-post URL        send POST to URL to shut a sidecar down (repeatable)
  -k, --kill NAME                     send SIGTERM to processes of proa's Pod whose executable or argv[0] is NAME
                                      (repeatable; needs shareProcessNamespace)
  -K, --kill-all                      send SIGTERM to every process of proa's Pod but PID 1, proa's ancestors and
                                      program (needs shareProcessNamespace)
                                      (-k, -K: a process is the Pod's by its cgroup; outside a Pod, none: see README)
  -c, --container NAME                proa's own container (default: detected, see README; env PROA_CONTAINER)
  -w, --wait-for NAME                 wait only for this container (repeatable; default: all other containers)
  -i, --ignore NAME                   do not wait for this container (repeatable)
      --ready-url URL                 wait until URL answers 2xx instead of reading the Pod (repeatable); proa then
                                      uses no Kubernetes API, and waits at shutdown until URL's port refuses connections
      --ready-timeout DURATION        give up waiting for readiness after DURATION (default: no limit)
      --critical NAME                 stop the program when this sidecar restarts too, not only when it dies for
                                      good (repeatable; see README: what proa does when a sidecar dies)
      --critical-all                  the same for every sidecar proa waits for
      --no-critical                   never stop the program for a sidecar: a death is logged and summarised only
      --program-stop-timeout DURATION
                                      after a sidecar's death, how long the program has between SIGTERM and SIGKILL
                                      (default and most: the Pod's grace period, else 30s)
      --shutdown-timeout DURATION     how long to wait for the sidecars to exit (default: the Pod's grace period, else 30s;
                                      after SIGTERM never past a second before the grace period ends)
      --shutdown-request-timeout DURATION
                                      timeout of each shutdown request (default: 5s)
      --no-termination-message        do not write the run's summary to the termination message file
      --check                         check the setup with the other options and report on stdout, one line per
                                      check (ok, warn or FAIL, with the fix); runs nothing, sends no shutdown
                                      request, signals nothing; with --ready-url, sends one GET to each ready URL
                                      and nothing to the API; the program after -- is optional and only looked up
  -h, --help                          show this help
  -V, --version                       show the version

An option's value may also follow an equals sign: --kill=NAME, -k=NAME.
DURATION is a number with a unit, like 500ms, 90s, 5m, 1h or 1m30s; a bare number is seconds; at most 596h31m23s.

Environment:
  POD_NAME                  this Pod's name (default: the hostname up to its first dot); set it with the downward API
  POD_NAMESPACE             this Pod's namespace (default: the service account's namespace file)
  PROA_CONTAINER            proa's own container, as --container
  PROA_LOG                  log level: error, warn, info or debug (default: info)
  RUST_LOG                  honoured when PROA_LOG is unset, for the original proa's manifests (e.g. proa=debug)
  KUBERNETES_SERVICE_HOST   the API server, set by Kubernetes
  KUBERNETES_SERVICE_PORT   the API server's port, set by Kubernetes
  PROA_SERVICE_ACCOUNT_DIR  where the token, ca.crt and namespace are (default: /var/run/secrets/kubernetes.io/serviceaccount)
  PROA_TERMINATION_MESSAGE_PATH
                            the termination message file when proa cannot read it from its Pod's spec
                            (default: /dev/termination-log)

Exit status: the program's; 128+N when it was killed by signal N, or when signal N arrived before it started;
127 when it was not found; 126 when it could not be executed; 1 when the sidecars never became ready; 2 for bad usage;
69 when a sidecar that will not be restarted died while the program ran (the program's own status is in the summary).
With --check: 0 when no check failed (warnings allowed), 1 when one did, 2 for bad usage.
`;

/**
 * Everything from the first positional argument (or after "--") is the program and its arguments, untouched, even
 * when they look like options: `proa -g URL sleep 60 -x` runs `sleep 60 -x`.
 */
export function parseCommandLine(argv: string[], env: NodeJS.ProcessEnv): CommandLine {
  const named = withLongNames(argv);
  const split = commandStart(named);
  const ownArgs = named.slice(0, split);
  const command = argv.slice(argv[split] === "--" ? split + 1 : split);
  let values;
  try {
    ({ values } = parseArgs({ args: ownArgs, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new UsageError(describeParseError(error));
  }
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };
  if (!values.check && (command.length === 0 || command[0] === ""))
    throw new UsageError("no program given: put it after the options, as in `proa -- program args`");

  const urls = (option: string, list: string[] | undefined) => (list ?? []).map((url) => httpUrl(option, url));
  const readyUrls = urls("--ready-url", values["ready-url"]);
  const podOnly = (["container", "wait-for", "ignore", "critical", "critical-all", "no-critical"] as const).find(
    (name) => readyUrls.length > 0 && values[name] !== undefined,
  );
  if (podOnly) {
    throw new UsageError(
      `--${podOnly} cannot be combined with --ready-url: with --ready-url proa does not read its Pod, so it knows no containers by name; give one --ready-url per sidecar instead`,
    );
  }
  const critical = values.critical ?? [];
  if (values["no-critical"] && (critical.length > 0 || values["critical-all"]))
    throw new UsageError(
      `--no-critical cannot be combined with --critical${values["critical-all"] ? "-all" : ""}: choose whether a sidecar's death stops the program`,
    );
  const ignored = critical.find((name) => values.ignore?.includes(name));
  if (ignored !== undefined)
    throw new UsageError(
      `--critical ${ignored} cannot be combined with --ignore ${ignored}: proa never watches an ignored container`,
    );
  return {
    kind: "run",
    options: {
      check: values.check ?? false,
      command,
      readyUrls,
      ready: {
        container: values.container ?? (env.PROA_CONTAINER || undefined),
        waitFor: values["wait-for"] ?? [],
        ignore: values.ignore ?? [],
        readyTimeoutMs: optionalDuration("--ready-timeout", values["ready-timeout"]),
      },
      run: {
        critical,
        criticalAll: values["critical-all"] ?? false,
        noCritical: values["no-critical"] ?? false,
        stopTimeoutMs: optionalDuration("--program-stop-timeout", values["program-stop-timeout"]),
      },
      shutdown: {
        httpGet: urls("--shutdown-http-get", values["shutdown-http-get"]),
        httpPost: urls("--shutdown-http-post", values["shutdown-http-post"]),
        kill: values.kill ?? [],
        killAll: values["kill-all"] ?? false,
        timeoutMs: optionalDuration("--shutdown-timeout", values["shutdown-timeout"]),
        requestTimeoutMs: optionalDuration("--shutdown-request-timeout", values["shutdown-request-timeout"]) ?? 5000,
        userAgent: USER_AGENT,
      },
      terminationMessage: !values["no-termination-message"],
    },
  };
}

const LONG_NAMES = new Map<string, string>(
  Object.entries(OPTIONS).flatMap(([long, option]) => ("short" in option ? [[option.short, long]] : [])),
);

/**
 * clap, which parses the original proa's options, reads `-g=URL` as `-g URL`; parseArgs would read the value "=URL",
 * and `-K=1` as the three switches -K, -= and -1. Spelling such an argument `--shutdown-http-get=URL` gives both
 * clap's meaning, and a switch given a value is then reported by its name. One argument in, one out, so indices hold.
 */
function withLongNames(argv: string[]): string[] {
  return argv.map((arg) => {
    const [, short = "", value] = /^-([^-])=(.*)$/s.exec(arg) ?? [];
    const long = LONG_NAMES.get(short);
    return long === undefined ? arg : `--${long}=${value}`;
  });
}

/** Index of the "--" or the first positional argument; a lenient parse knows which options take a value. */
function commandStart(argv: string[]): number {
  const { tokens } = parseArgs({ args: argv, options: OPTIONS, strict: false, allowPositionals: true, tokens: true });
  const first = tokens.find((token) => token.kind === "positional" || token.kind === "option-terminator");
  return first ? first.index : argv.length;
}

function describeParseError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string }).code;
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return `unknown option ${message.match(/'([^']+)'/)?.[1] ?? message}`;
  const [, names = "", problem] =
    /^Option '(.*?)(?: <value>)?' (argument missing|argument is ambiguous|does not take an argument)/.exec(message) ??
    [];
  const long = names.split(", ").at(-1);
  if (problem === "does not take an argument") return `option ${names} takes no value: write ${long} alone`;
  if (problem) return `option ${names} needs a value (write ${long}=VALUE for one that starts with -)`;
  return message.split("\n")[0]!;
}

function httpUrl(option: string, value: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {} // reported below
  if (url?.protocol === "http:" || url?.protocol === "https:") return url;
  // Repeat the value only as a URL with a host, redacted: "admin:pass@host" parses as the scheme "admin:".
  const given = url?.host ? `'${redactUrl(url)}'` : "a value without a scheme and host";
  throw new UsageError(
    `${option} needs an http:// or https:// URL such as http://localhost:15020/quitquitquit, not ${given}`,
  );
}

// Node's timers fire at once for a delay of 2^31 ms or more (about 596 hours): a longer duration is refused, never
// cut short. The longest accepted, in whole seconds, is 596h31m23s.
const MAX_DURATION_MS = 2 ** 31 - 1;

function optionalDuration(option: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined) throw new UsageError(`${option} needs a duration like 90s, 5m or 1m30s, not '${value}'`);
  if (ms > MAX_DURATION_MS) throw new UsageError(`${option} can be at most 596h31m23s, not '${value}'`);
  return ms;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "90s", "5m", "1m30s", "500ms" or a bare number of seconds, in milliseconds; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(amount) * UNIT_MS[unit!]!;
  return Math.round(total);
}

/** Parses the command line, or prints help, the version or a usage error; a number is the exit status. */
function parseOrExplain(argv: string[], env: NodeJS.ProcessEnv, log: Log): { kind: "run"; options: Options } | number {
  try {
    const command = parseCommandLine(argv, env);
    if (command.kind === "help") process.stdout.write(HELP);
    if (command.kind === "version") process.stdout.write(`proa ${VERSION}\n`);
    return command.kind === "run" ? command : 0;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    log.error(`${error.message}; see proa --help`);
    return USAGE_ERROR;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Entry point: run when this file is the program (the bundle), not when a test imports it.

if (require.main === module) {
  main(process.argv.slice(2), process.env).then(
    (status) => process.exit(status),
    (error: unknown) => {
      createLog("error").error(`proa failed unexpectedly: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(WAIT_FAILED);
    },
  );
}
