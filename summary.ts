// summary.ts: the run's story as one plain record, told twice at exit: as the `summary` log line, and as a short
// message for people in the container's termination message, which `kubectl describe pod` shows after the logs are
// gone. Building both is pure; writeTerminationMessage is the one place proa writes a file.
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  realpathSync,
  statSync,
  writeSync,
  type Stats,
} from "node:fs";
import { quote, redactUrl, withoutSecrets, type Fields, type Log } from "./log.ts";
import type { RunEvent } from "./kube.ts";
import type { ShutdownReport } from "./shutdown.ts";

// ---------------------------------------------------------------------------------------------------------------
// The record

export type ProgramOutcome =
  | { kind: "exited"; code: number }
  | { kind: "killed"; signal: NodeJS.Signals }
  | { kind: "not-started"; errno: string }; // ENOENT: not found; anything else: cannot be executed

/** How the wait for readiness ended. */
export type WaitEnding =
  | { kind: "ready" }
  | { kind: "failed"; reason: string }
  | { kind: "timeout"; reason: string } // --ready-timeout passed
  | { kind: "signal"; signal: NodeJS.Signals }; // a signal arrived before the program started

export interface WaitRecord {
  mode: "pod" | "urls"; // the Pod's containers through the API, or the sidecars' own URLs (--ready-url)
  names: string[]; // what was waited for: container names, or URLs (redacted here all the same)
  durationMs: number;
  ending: WaitEnding;
}

export interface RunRecord {
  wait: WaitRecord;
  program: { name: string; outcome?: ProgramOutcome; durationMs?: number }; // no outcome: it never ran (see wait)
  sidecars?: RunEvent[]; // deaths and restarts seen while the program ran; one with `stopped` ended the run
  shutdown: ShutdownReport; // the shutdown step's own record of what it did
  status: number; // proa's own exit status
}

/** Notes the times and endings as main goes through its story; finish() gives the record. */
export function recordRun(program: string, mode: WaitRecord["mode"], now: () => number = Date.now) {
  const began = now();
  let wait: Omit<WaitRecord, "mode" | "names"> | undefined;
  let programRecord: RunRecord["program"] = { name: program };
  let sidecars: RunEvent[] = [];
  const waitEnded = (ending: WaitEnding) => (wait = { durationMs: now() - began, ending });
  return {
    waitEnded,
    programEnded(outcome: ProgramOutcome, events: RunEvent[] = []) {
      programRecord = { name: program, outcome, durationMs: now() - began - (wait?.durationMs ?? 0) };
      sidecars = events;
    },
    finish(names: string[], shutdown: ShutdownReport, status: number): RunRecord {
      const ended = wait ?? waitEnded({ kind: "failed", reason: "proa did not record how the wait ended" });
      return { wait: { mode, names, ...ended }, program: programRecord, sidecars, shutdown, status };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The summary log line

/** The record as the summary line's fields (JSON leaves out what is undefined). The shutdown report's URLs are
 * already redacted; they, and every error quoted, are made safe again here, where the story leaves the process. */
export function summaryFields({ wait, program, sidecars = [], shutdown, status }: RunRecord): Fields {
  const { ending } = wait;
  return {
    status,
    wait: {
      for: waitedNames(wait),
      by: wait.mode,
      ms: wait.durationMs,
      ending: ending.kind,
      reason: "reason" in ending ? quote(ending.reason) : undefined,
      signal: "signal" in ending ? ending.signal : undefined,
    },
    program: { name: quote(program.name), ...(program.outcome ?? { kind: "never ran" }), ms: program.durationMs },
    sidecars: sidecars.length > 0 ? sidecars.map((event) => ({ ...event, name: quote(event.name, 100) })) : undefined,
    shutdown: {
      ...shutdown,
      requests: shutdown.requests.map((request) => ({
        ...request,
        url: redactUrl(request.url),
        location: request.location && redactUrl(request.location),
        error: request.error && quote(request.error),
      })),
      signals: shutdown.signals.map((signal) => ({ ...signal, error: signal.error && quote(signal.error) })),
    },
  };
}

const waitedNames = (wait: WaitRecord) =>
  wait.mode === "urls" ? wait.names.map(redactUrl) : wait.names.map((name) => quote(name, 100));

// ---------------------------------------------------------------------------------------------------------------
// The termination message: short lines for people, what matters most first

/** What the kubelet keeps of a container's termination message. */
export const MAX_MESSAGE_BYTES = 4096;
const MAX_LINE_CHARS = 160; // `kubectl describe` indents each line by some 20 columns
const HEADLINE_SIDECARS = 5; // more are counted, not named, in the first line

export function terminationMessage(record: RunRecord): string {
  const { wait, shutdown, status } = record;
  const lines = [...deathLine(record), headline(record), ...sidecarFailures(record), ...restartLines(record)];
  const names = waitedNames(wait);
  const waited = `waited ${duration(wait.durationMs)}${names.length > 0 ? ` for ${names.join(", ")}` : ""}`;
  if (wait.ending.kind === "ready") lines.push(`${waited}: ready`);
  else if (wait.ending.kind === "signal")
    lines.push(`${waited}: ${wait.ending.signal} arrived before the program started`);
  else
    lines.push(
      `${waited}: ${wait.ending.kind === "timeout" ? "gave up (--ready-timeout)" : "failed"}`,
      ...wrap(quote(wait.ending.reason, 1000)),
    );

  lines.push(`shutdown: ${duration(shutdown.durationMs)} of a ${duration(shutdown.budgetMs)} budget`);
  for (const { method, url, status: answer, location, error, durationMs } of shutdown.requests) {
    const redirect = location === undefined ? "" : ` (redirect to ${redactUrl(location)}, not followed)`;
    lines.push(
      `  ${method} ${redactUrl(url)}: ${answer === undefined ? quote(error ?? "no answer", 100) : `${answer}${redirect}`} in ${duration(durationMs)}`,
    );
  }
  // Names from outside proa are quoted: any process can choose its name, and a line in it could forge the story.
  for (const { name, pid, sent, error } of shutdown.signals)
    lines.push(`  SIGTERM to ${quote(name, 100)} (pid ${pid})${sent ? "" : `: not sent (${quote(error ?? "", 100)})`}`);
  if (shutdown.refused !== undefined)
    lines.push(
      "  --kill/--kill-all: nothing signalled",
      ...wrap(quote(shutdown.refused, 1000)).map((line) => `  ${line}`),
    );
  for (const name of shutdown.unmatched) lines.push(`  --kill ${quote(name, 100)}: no such process visible`);
  for (const { name, exitCode } of shutdown.exits) lines.push(`  ${quote(name, 100)} ${exitText(exitCode, wait.mode)}`);
  const { outcome, stillRunning } = shutdown.wait;
  if (stillRunning.length > 0)
    lines.push(
      `  still running: ${stillRunning.map((name) => quote(name, 100)).join(", ")}${outcome === "watch failed" ? " (watching them failed)" : ""}`,
    );
  if (outcome === "pod gone") lines.push("  the Pod is gone");
  if (!shutdown.plan.waitForExit) lines.push(`  ${shutdown.plan.reason}`);
  else if (outcome === "not watched") lines.push("  the sidecars' exit was not watched");
  lines.push(`proa exited ${status}`);
  // Secrets are replaced before lines are cut, so that no part of one is left.
  return fit(
    lines.map((line) => cut(withoutSecrets(line), MAX_LINE_CHARS)),
    MAX_MESSAGE_BYTES,
  );
}

/** A sidecar that exited non-zero after proa asked it to stop, while the program succeeded: under restartPolicy Never
 * that regular container makes the Pod, and so the Job, Failed (the v2 Cloud SQL Auth Proxy exits 143 on SIGTERM
 * without --exit-zero-on-sigterm). With --ready-url no exit code is known, so nothing is flagged. */
export function sidecarFailures({ wait, program, shutdown }: RunRecord): string[] {
  const asked = shutdown.requests.length > 0 || shutdown.signals.some(({ sent }) => sent);
  if (wait.mode !== "pod" || !asked || program.outcome?.kind !== "exited" || program.outcome.code !== 0) return [];
  return shutdown.exits
    .filter(({ exitCode }) => exitCode !== undefined && exitCode !== 0)
    .map(
      ({ name, exitCode }) =>
        `sidecar ${name} exited ${exitCode}: the Pod is Failed although the program exited 0 (with restartPolicy Never)`,
    );
}

/** The sidecar whose death ended the run, first: it is why proa's status is not the program's. */
function deathLine({ sidecars = [], status }: RunRecord): string[] {
  return sidecars
    .filter(({ stopped }) => stopped)
    .map((event) => `sidecar ${eventText(event)}: proa stopped the program and exits ${status}`);
}

/** The other deaths and restarts seen while the program ran, which it ran on through. */
function restartLines({ sidecars = [] }: RunRecord): string[] {
  return sidecars.filter(({ stopped }) => !stopped).map((event) => `sidecar ${eventText(event)}`);
}

/** "db-proxy died 1m02s into the program (exit 137, OOMKilled, at 2026-12-07T10:51:00Z)" */
function eventText({ name, kind, exitCode, reason, finishedAt, afterMs }: RunEvent): string {
  const what = kind === "died" ? "died" : kind === "restarting" ? "terminated, to be restarted," : "restarted";
  const details = [
    `exit ${exitCode ?? "unknown"}`,
    ...(reason ? [quote(reason, 40)] : []),
    ...(finishedAt ? [`at ${quote(finishedAt, 40)}`] : []),
  ];
  return `${quote(name, 100)} ${what} ${duration(afterMs)} into the program (${details.join(", ")})`;
}

/** The first line: how the program ended (or why it never ran), then how the sidecars ended. */
function headline({ wait, program, shutdown, status }: RunRecord): string {
  let first: string;
  if (program.outcome?.kind === "not-started")
    first = `program ${quote(program.name, 100)} ${programText(program.outcome)}`;
  else if (program.outcome) first = `program ${programText(program.outcome, program.durationMs)}`;
  else if (wait.ending.kind === "signal")
    first = `program never ran: ${wait.ending.signal} after waiting ${duration(wait.durationMs)} for the sidecars`;
  else if (wait.ending.kind === "timeout")
    first = `program never ran: sidecars not ready after ${duration(wait.durationMs)} (--ready-timeout)`;
  else first = `program never ran: the wait for the sidecars failed after ${duration(wait.durationMs)}`;
  if (program.outcome?.kind !== "exited") first += ` (exit ${status})`;
  const sidecars = sidecarsText(shutdown, wait.mode);
  return sidecars ? `${first}; ${sidecars}` : first;
}

function programText(outcome: ProgramOutcome, durationMs = 0): string {
  switch (outcome.kind) {
    case "exited":
      return `exited ${outcome.code} after ${duration(durationMs)}`;
    case "killed":
      return `killed by ${outcome.signal} after ${duration(durationMs)}`;
    case "not-started":
      return outcome.errno === "ENOENT" ? "not found" : `cannot be executed (${outcome.errno})`;
  }
}

/** How the sidecars ended. One means of shutdown and one sidecar are told together: `istio-proxy (POST 200, exited 0)`. */
function sidecarsText(
  { plan, exits, wait, requests, signals }: ShutdownReport,
  mode: WaitRecord["mode"],
): string | undefined {
  if (!plan.waitForExit) return plan.reason; // left running, or stopped by the kubelet out of proa's sight
  const { stillRunning } = wait;
  const means = [
    ...requests.map(
      ({ method, status, attempts }) => `${method} ${status ?? (attempts === 0 ? "not sent" : "failed")}`,
    ),
    ...signals.filter(({ sent }) => sent).map(() => "SIGTERM"),
  ];
  const paired = means.length === 1 && exits.length + stillRunning.length === 1 ? `${means[0]}, ` : "";
  const names = (list: string[]) => {
    const shown = list.slice(0, HEADLINE_SIDECARS).join(", ");
    return list.length > HEADLINE_SIDECARS ? `${shown} and ${list.length - HEADLINE_SIDECARS} more` : shown;
  };
  if (stillRunning.length > 0) {
    const detail = paired ? ` (${paired.slice(0, -2)})` : "";
    return `sidecars still running when proa gave up: ${names(stillRunning.map((name) => quote(name, 100)))}${detail}`;
  }
  if (exits.length === 0) return undefined;
  return `sidecars stopped: ${names(exits.map(({ name, exitCode }) => `${quote(name, 100)} (${paired}${exitText(exitCode, mode)})`))}`;
}

/** With --ready-url a sidecar is known to have exited only by its port refusing connections, with no exit code. */
function exitText(exitCode: number | undefined, mode: WaitRecord["mode"]): string {
  if (mode === "urls") return "stopped listening";
  return exitCode === undefined ? "exited" : `exited ${exitCode}`;
}

/** 850ms, 4.2s, 12m04s, 1h02m03s */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(1))}s`;
  const total = Math.round(ms / 1000);
  const [h, m, s] = [Math.floor(total / 3600), Math.floor((total % 3600) / 60), total % 60];
  const two = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h}h${two(m)}m${two(s)}s` : `${m}m${two(s)}s`;
}

/** Long text as indented lines of at most about 100 characters, broken at spaces. */
function wrap(text: string, width = 100): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(`  ${line}`);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(`  ${line}`);
  return lines;
}

/** At most max characters, never splitting a character. */
function cut(line: string, max: number): string {
  const chars = Array.from(line);
  return chars.length > max ? `${chars.slice(0, max - 1).join("")}…` : line;
}

/** Whole lines while they fit in maxBytes, then a line saying how many were left out; a first line that is itself
 * too long is cut on a UTF-8 character boundary. */
export function fit(lines: string[], maxBytes: number): string {
  const text = lines.join("\n");
  if (Buffer.byteLength(text) <= maxBytes) return text;
  const more = (n: number) => `… ${n} more lines in proa's summary log line`;
  let used = 0;
  let keep = 0;
  for (const line of lines) {
    const next = used + Buffer.byteLength(line) + 1;
    if (next + Buffer.byteLength(more(lines.length - keep - 1)) > maxBytes) break;
    used = next;
    keep++;
  }
  if (keep === 0) return cutBytes(lines[0] ?? "", maxBytes);
  return [...lines.slice(0, keep), more(lines.length - keep)].join("\n");
}

function cutBytes(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text);
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // bytes[end] continues a character: start it on the next
  return bytes.subarray(0, end).toString("utf8");
}

// ---------------------------------------------------------------------------------------------------------------
// Writing it where the kubelet reads it

export const DEFAULT_TERMINATION_LOG = "/dev/termination-log";

export interface TerminationLog {
  path: string;
  policy?: string; // terminationMessagePolicy; unknown without the Pod spec
  from: string; // where the path came from, for the log
}

/** The container's terminationMessagePath and Policy from its spec; without one (no API, or the Pod never read),
 * PROA_TERMINATION_MESSAGE_PATH, else the kubelet's default. */
export function terminationLog(
  container: { terminationMessagePath?: string; terminationMessagePolicy?: string } | undefined,
  env: NodeJS.ProcessEnv,
): TerminationLog {
  if (container?.terminationMessagePath)
    return { path: container.terminationMessagePath, policy: container.terminationMessagePolicy, from: "the Pod spec" };
  if (env.PROA_TERMINATION_MESSAGE_PATH)
    return { path: env.PROA_TERMINATION_MESSAGE_PATH, from: "PROA_TERMINATION_MESSAGE_PATH" };
  return { path: DEFAULT_TERMINATION_LOG, from: "the kubelet's default" };
}

/**
 * Writes message to the termination log only when it exists, is a writable regular file with no other hard link, not
 * a kernel's (procfs, sysfs), and is empty (a message the program wrote is never changed), and not when FallbackToLogsOnError will put the last log lines there instead
 * (the kubelet does so when the file is empty and the container failed). Never creates a file; never throws.
 * open is openSync but in tests, which swap another file in between the checks and the open.
 */
export function writeTerminationMessage(
  message: string,
  target: TerminationLog,
  status: number,
  log: Log,
  open: (path: string, flags: number) => number = openSync,
): void {
  const fields = { path: target.path, from: target.from };
  if (target.policy === "FallbackToLogsOnError" && status !== 0) {
    log.info(
      "not writing the termination message: with terminationMessagePolicy FallbackToLogsOnError the kubelet puts the last log lines there",
      fields,
    );
    return;
  }
  // lstat first: a device, a FIFO or a symlink is never opened at all (opening some devices does something).
  let found: Stats;
  try {
    found = lstatSync(target.path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT")
      log.debug("not writing the termination message: there is no such file (not in a Pod?)", fields);
    else log.warn(`not writing the termination message: cannot stat ${target.path} (${code})`, fields);
    return;
  }
  const refusal = found.isSymbolicLink()
    ? "is a symlink, which proa does not follow"
    : !found.isFile()
      ? "is not a regular file"
      : kernelFile(target.path, found);
  if (refusal) return log.warn(`not writing the termination message: ${target.path} ${refusal}`, fields);
  let fd: number;
  try {
    // No O_CREAT: only a file the kubelet mounted. O_NONBLOCK: a FIFO put there since the lstat fails instead of
    // hanging proa. O_NOFOLLOW: a symlink put there since is not followed. O_NOCTTY: a terminal never becomes proa's.
    fd = open(
      target.path,
      constants.O_WRONLY | constants.O_APPEND | constants.O_NONBLOCK | constants.O_NOFOLLOW | constants.O_NOCTTY,
    );
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT")
      log.debug("not writing the termination message: there is no such file (not in a Pod?)", fields);
    else log.warn(`not writing the termination message: cannot open ${target.path} for writing (${code})`, fields);
    return;
  }
  try {
    // The opened file itself: the one lstat saw, and one name for it alone, so that the write cannot land elsewhere.
    const stat = fstatSync(fd);
    if (stat.dev !== found.dev || stat.ino !== found.ino || !stat.isFile()) {
      log.warn(`not writing the termination message: ${target.path} was replaced while proa opened it`, fields);
    } else if (stat.size > 0) {
      log.info("not writing the termination message: the program wrote its own, which is left as it is", {
        ...fields,
        bytes: stat.size,
      });
    } else if (stat.nlink !== 1) {
      log.warn(
        `not writing the termination message: ${target.path} has ${stat.nlink} hard links, so it is not only the kubelet's file`,
        fields,
      );
    } else {
      const bytes = Buffer.from(withoutSecrets(message)); // whoever built the message
      for (let written = 0; written < bytes.length;) written += writeSync(fd, bytes, written);
      log.info(`wrote the run's summary to ${target.path}`, { ...fields, bytes: bytes.length });
    }
  } catch (error) {
    log.warn(`writing the termination message failed: ${(error as Error).message}`, fields);
  } finally {
    try {
      closeSync(fd);
    } catch {} // a failed close cannot undo the write, and must not cost proa the program's exit status
  }
}

/** Why a regular file is a kernel's (procfs, sysfs: `/proc/self/comm` looks like an empty file), if it is: where
 * it resolves to, or the filesystem it is on. The kubelet's file is on a real filesystem. */
function kernelFile(path: string, stat: Stats): string | undefined {
  const real = attempt(() => realpathSync(path)) ?? path;
  for (const root of PSEUDO_FILESYSTEMS) {
    if (real === root || real.startsWith(`${root}/`) || attempt(() => statSync(root).dev) === stat.dev)
      return `is on ${root}, a kernel file`;
  }
  return undefined;
}

const PSEUDO_FILESYSTEMS = ["/proc", "/sys"];

function attempt<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** Logs the summary line, then writes the termination message unless it is turned off (target undefined). */
export function tellTheStory(record: RunRecord, target: TerminationLog | undefined, log: Log): void {
  log.info("summary", summaryFields(record));
  if (target) writeTerminationMessage(terminationMessage(record), target, record.status, log);
}
