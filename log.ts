// log.ts: proa's logging, one JSON object per line on stderr, and the redaction of every secret in one place a
// reviewer can find. Imports nothing of proa's, so every module can use it without an import circle.

export type Fields = Record<string, unknown>;
export type Level = "error" | "warn" | "info" | "debug";
export type Log = Record<Level, (msg: string, fields?: Fields) => void>;

const LEVELS: readonly Level[] = ["error", "warn", "info", "debug"];

/** PROA_LOG, else the level RUST_LOG gives proa (`proa=debug` or a bare `debug`), else info. */
export function logLevel(env: NodeJS.ProcessEnv): Level {
  const own = env.PROA_LOG?.trim().toLowerCase();
  if (own && (LEVELS as string[]).includes(own)) return own as Level;
  const directives = (env.RUST_LOG ?? "")
    .toLowerCase()
    .split(",")
    .map((d) => d.trim());
  const directive = directives.find((d) => d.startsWith("proa=")) ?? directives.find((d) => !d.includes("="));
  const level = directive?.replace(/^proa=/, "");
  if (level === "trace") return "debug";
  if (level === "off") return "error";
  return level && (LEVELS as string[]).includes(level) ? (level as Level) : "info";
}

/** Keys whose values are never written, whoever passes them: a second line of defence for the token. */
const SECRET_KEY = /authorization|token|password|secret|cookie/i;

/** A log line on stderr. One that cannot be written (its reader went away: EPIPE; a full device: ENOSPC) is dropped:
 * Node reports the failure as an 'error' event, which without a listener would end proa with status 1. Logging
 * never decides proa's status. */
function writeStderr(line: string): void {
  if (process.stderr.listenerCount("error") === 0) process.stderr.on("error", () => {});
  process.stderr.write(line);
}

export function createLog(level: Level, write: (line: string) => void = writeStderr): Log {
  const threshold = LEVELS.indexOf(level);
  const entry = (at: Level) => (msg: string, fields?: Fields) => {
    if (LEVELS.indexOf(at) > threshold) return;
    const record = { time: new Date().toISOString(), level: at, msg, ...fields };
    const safe = (key: string, value: unknown) => {
      if (SECRET_KEY.test(key)) return "[redacted]";
      const text = value instanceof Error ? value.message : value;
      return typeof text === "string" ? withoutSecrets(text) : text;
    };
    write(JSON.stringify(record, safe) + "\n");
  };
  return { error: entry("error"), warn: entry("warn"), info: entry("info"), debug: entry("debug") };
}

// ---------------------------------------------------------------------------------------------------------------
// Redaction: what proa quotes from a URL or from a server's answer

/** The secrets proa holds (the service account's token, and each one it replaced): kept so that no text it writes
 * can carry one, wherever the text came from (a server may echo the token in an error). */
const secrets = new Set<string>();
const MIN_SECRET_CHARS = 8;

/** Called with each secret as it is read, before anything could quote it. */
export function registerSecret(secret: string): void {
  // Service account tokens are JWTs of hundreds of characters; a few characters would match ordinary words, and an
  // empty string everywhere.
  if (secret.length >= MIN_SECRET_CHARS) secrets.add(secret);
}

/** text with every secret proa holds replaced: applied by the log writer, quote and the termination message. */
export function withoutSecrets(text: string): string {
  let safe = text;
  for (const secret of secrets) safe = safe.split(secret).join("[redacted]");
  return safe;
}

/** How much of any server's answer a log line quotes: enough to read the reason, never a flood. */
export const MAX_QUOTE_CHARS = 300;

/** A URL as proa may log it: no user info, and of its query and fragment only that there was one. A key can be
 * the secret itself (`?SECRET`), and so can a fragment, so neither is kept. */
export function redactUrl(url: URL | string): string {
  let copy: URL;
  try {
    copy = new URL(url);
  } catch {
    return "(not a URL)"; // whatever it was may hold a secret: never quote it
  }
  copy.username = copy.password = "";
  if (copy.search) copy.search = "REDACTED";
  if (copy.hash) copy.hash = "REDACTED";
  return copy.href;
}

/** Characters that could forge, disguise or hide text: C0 and C1 controls (newlines, ANSI escapes), the line and
 * paragraph separators (U+2028/9), the marks and overrides that reorder text on screen (U+061C, U+200E/F,
 * U+202A–E, U+2066–9), and the invisible ones (soft hyphen U+00AD, U+180E, zero-width U+200B–D, U+2060–4, U+FEFF). */
const UNSAFE_CHARS =
  /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]+/g;

/** Text from outside proa (a server's answer, a process or container name): credentials masked, control characters flattened, at most max characters.
 * Secrets are replaced before the text is cut, so that no part of one is left. */
export function quote(text: string, max = MAX_QUOTE_CHARS): string {
  const masked = withoutSecrets(text)
    .replace(/\b(Basic|Bearer)\s+[^\s"',;]+/gi, "$1 [redacted]")
    .replace(UNSAFE_CHARS, " ");
  return masked.length > max ? `${masked.slice(0, max)}… (${masked.length - max} more characters)` : masked;
}

// ---------------------------------------------------------------------------------------------------------------
// Repeats: a warning a loop can write without end (a watch streaming events about another Pod) is written once, then
// counted, so that no server can flood the log.

/** How often a repeated warning's count is written, at most. */
export const REPEAT_WINDOW_MS = 30_000;

export interface RepeatedWarnings {
  /** Writes msg the first time for kind; within windowMs of the last line written for kind, only counts it; after
   * that, writes summary(count, seconds) for what was counted, this one included, or msg again if nothing was.
   * At warn level, or at info for what is no mistake (a sidecar still starting). */
  warn(
    kind: string,
    msg: string,
    summary: (count: string, seconds: number) => string,
    fields?: Fields,
    level?: "warn" | "info",
  ): void;
  /** Writes the count of every kind still held back: before the loop ends, so that no count is lost. */
  flush(): void;
}

interface Held {
  since: number; // when the last line for this kind was written
  held: number; // how many since then were only counted
  last: string; // the latest of them, written with the count
  summary: (count: string, seconds: number) => string;
  level: "warn" | "info";
}

export function repeatedWarnings(
  log: Log,
  windowMs = REPEAT_WINDOW_MS,
  now: () => number = Date.now,
): RepeatedWarnings {
  const kinds = new Map<string, Held>();
  const write = (state: Held, at: number) =>
    log[state.level](state.summary(state.held.toLocaleString("en-US"), Math.round((at - state.since) / 1000)), {
      last: state.last,
    });
  return {
    warn(kind, msg, summary, fields, level = "warn") {
      const at = now();
      const state = kinds.get(kind);
      if (state && at - state.since < windowMs) {
        Object.assign(state, { held: state.held + 1, last: msg, summary, level });
      } else if (state && state.held > 0) {
        Object.assign(state, { held: state.held + 1, last: msg, summary, level });
        write(state, at);
        Object.assign(state, { since: at, held: 0 });
      } else {
        log[level](msg, fields);
        kinds.set(kind, { since: at, held: 0, last: msg, summary, level });
      }
    },
    flush() {
      const at = now();
      for (const state of kinds.values()) if (state.held > 0) write(state, at);
      kinds.clear();
    },
  };
}
