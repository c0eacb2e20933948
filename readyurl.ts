// readyurl.ts: --ready-url, for Pods that may not read themselves through the Kubernetes API. The sidecars are ready
// when each URL answers 2xx, and a sidecar counts as exited once its URL's host and port refuse connections. Nothing
// here reads a service account file or a KUBERNETES_* variable: this mode needs no token and no RBAC.
import { setTimeout as sleep } from "node:timers/promises";
import {
  connectOnce,
  hostPort,
  httpRequest,
  keptConnection,
  retryAfter,
  type HttpError,
  type KeptConnection,
} from "./http.ts";
import { defaultTiming, ReadyTimeoutError } from "./kube.ts";
import { quote, redactUrl, type Level, type Log } from "./log.ts";
import type { WaitResult } from "./shutdown.ts";

/** Every duration of this mode, injectable so that tests run in milliseconds. */
export interface ReadyUrlTiming {
  pollMs: number; // from one request (or connect) to one URL to its next: bounds the reaction time
  requestTimeoutMs: number; // each readiness request, and each connect while waiting for exit
  reminderMs: number; // "still waiting" reminder while nothing changes
  retryAfterMaxMs: number; // cap on a 429's or 503's Retry-After, which lengthens the wait for that URL's next request
}
// A poll every 50 ms starts the program within about 50 ms of the last URL turning ready, for about 1 ms of CPU per
// request (20 ms per second of waiting, see the README). 1 s is the kubelet's default probe timeout.
// A server's Retry-After is capped as the API client caps it.
export const defaultReadyUrlTiming: ReadyUrlTiming = {
  pollMs: 50,
  requestTimeoutMs: 1000,
  reminderMs: 30_000,
  retryAfterMaxMs: defaultTiming.backoffMaxMs,
};

/** The sidecars as their own URLs show them: main's wait and the shutdown step's wait for exit (which has no Pod
 * to pass on, and ends when the step's deadline aborts `until`, as the Pod watch does). */
export function readyUrls(
  urls: URL[],
  readyTimeoutMs: number | undefined,
  userAgent: string,
  log: Log,
  timing: Partial<ReadyUrlTiming> = {},
) {
  const t = { ...defaultReadyUrlTiming, ...timing };
  return {
    waitUntilReady: (signal: AbortSignal) => waitUntilUrlsReady(urls, readyTimeoutMs, userAgent, log, signal, t),
    waitForExit: (until: AbortSignal, _seen: unknown, startedAt: number, exitLog: Log) =>
      waitUntilPortsClose(urls, until, startedAt, exitLog, t),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The wait: GET each URL until it answers 2xx

/** One answer of a ready URL, as the wait judges it (and --check reports it). */
export interface ReadyAnswer {
  ready: boolean;
  text: string; // "HTTP 503", "connection refused", ...: what the progress lines show, and what "changed" compares
  level: Level; // info for what a sidecar that is starting answers; warn for what suggests a mistake
  body?: string;
  status?: number; // the HTTP status, when there was an answer
  code?: string; // the socket's or TLS's error code, when there was none
  retryAfterMs?: number; // a 429's or 503's Retry-After: how long the server asked to be left alone
}

interface Probe {
  url: URL;
  shown: string; // redacted: no credentials, no query values
  last: ReadyAnswer;
}

/** Resolves once every URL has answered 2xx (once is enough). Rejects with signal.reason when aborted, or with a
 * user-facing Error when --ready-timeout passes. Never more than one request in flight per URL. */
export async function waitUntilUrlsReady(
  urls: URL[],
  readyTimeoutMs: number | undefined,
  userAgent: string,
  log: Log,
  signal: AbortSignal,
  t: ReadyUrlTiming = defaultReadyUrlTiming,
): Promise<{ waitFor: string[]; waitedMs: number }> {
  signal.throwIfAborted();
  const started = Date.now();
  const probes: Probe[] = urls.map((url) => ({
    url,
    shown: redactUrl(url),
    last: { ready: false, text: "not asked yet", level: "info" },
  }));
  const notReady = () => probes.filter((probe) => !probe.last.ready);
  const fields = () => ({ notReady: notReady().map((p) => p.shown), lastAnswers: notReady().map((p) => p.last.text) });

  // Whatever ends the wait from outside the polls aborts them with the reason to reject with.
  const stop = new AbortController();
  const abort = () => stop.abort(signal.reason);
  signal.addEventListener("abort", abort);
  const readyTimer =
    readyTimeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          stop.abort(
            new ReadyTimeoutError(
              `--ready-timeout (${readyTimeoutMs / 1000} s) passed: URLs still not ready: ${describe(notReady())}`,
            ),
          );
        }, readyTimeoutMs);
  const reminder = setInterval(() => {
    log.info("still waiting for URLs to be ready", { ...fields(), waitedS: Math.round((Date.now() - started) / 1000) });
  }, t.reminderMs);
  let reported = "";
  const report = () => {
    const now = notReady()
      .map((probe) => `${probe.shown} ${probe.last.text}`)
      .join("\n");
    if (now === reported || now === "") return;
    reported = now;
    const level = notReady().some((probe) => probe.last.level === "warn") ? "warn" : "info";
    const bodies = notReady().flatMap((probe) => (probe.last.body ? [probe.last.body] : []));
    log[level](`waiting for URLs to be ready: ${describe(notReady())}`, {
      ...fields(),
      ...(bodies.length > 0 ? { bodies } : {}),
    });
    reminder.refresh();
  };

  log.info("waiting for the sidecars' ready URLs to answer 2xx", { waitFor: probes.map((probe) => probe.shown) });
  try {
    const polls = await Promise.allSettled(probes.map((probe) => poll(probe, userAgent, stop.signal, t, report)));
    if (stop.signal.aborted) throw stop.signal.reason;
    for (const poll of polls) if (poll.status === "rejected") throw poll.reason;
    const waitedMs = Date.now() - started;
    log.info("the sidecars are ready: every ready URL answered 2xx", {
      waitFor: probes.map((probe) => probe.shown),
      waitedMs,
    });
    return { waitFor: probes.map((probe) => probe.shown), waitedMs };
  } finally {
    signal.removeEventListener("abort", abort);
    stop.abort(); // a no-op when already aborted; otherwise nothing is in flight any more
    clearTimeout(readyTimer);
    clearInterval(reminder);
  }
}

/** Asks one URL until it answers 2xx or the wait is stopped; a request starts at most every pollMs. The requests
 * follow one another over one kept connection: a fresh one per poll cost 30% more CPU over http, 3 times as much over
 * https (a TLS handshake every 50 ms). */
async function poll(
  probe: Probe,
  userAgent: string,
  stop: AbortSignal,
  t: ReadyUrlTiming,
  report: () => void,
): Promise<void> {
  const connection = keptConnection(probe.url);
  try {
    while (!stop.aborted) {
      const began = Date.now();
      probe.last = await askReadyUrl(probe.url, userAgent, stop, t.requestTimeoutMs, connection);
      if (stop.aborted || probe.last.ready) return;
      report();
      // A Retry-After counts from the answer, and may lengthen the wait, never shorten it below pollMs: "Retry-After: 0"
      // is no busy loop. The ready timeout aborts stop, so no Retry-After keeps proa waiting past it.
      const nextAt = Math.max(began + t.pollMs, Date.now() + Math.min(probe.last.retryAfterMs ?? 0, t.retryAfterMaxMs));
      await sleep(Math.max(0, nextAt - Date.now()), undefined, { signal: stop }).catch(() => {});
    }
  } finally {
    connection.destroy();
  }
}

/** One GET of a ready URL; never rejects. Without a kept connection, on a connection of its own (as --check sends it). */
export async function askReadyUrl(
  url: URL,
  userAgent: string,
  signal: AbortSignal | undefined,
  timeoutMs: number,
  connection?: KeptConnection,
): Promise<ReadyAnswer> {
  try {
    const {
      status,
      location,
      retryAfter: retryAfterHeader,
      body,
    } = await httpRequest({ method: "GET", url, timeoutMs, userAgent, maxBodyBytes: 512, signal, connection });
    if (status >= 200 && status < 300) return { ready: true, text: `HTTP ${status}`, level: "info", status };
    // Only 429 and 503 ask the client to wait (RFC 9110 gives Retry-After to 503 and 3xx; RFC 6585 to 429). The API
    // client honours it on any 5xx, as client-go does: kube-apiserver sends it with a 500 and a 504 of its own.
    const retryAfterMs = status === 429 || status === 503 ? retryAfter(retryAfterHeader) : undefined;
    const answered = {
      status,
      ...(body.trim() ? { body: quote(body.trim(), 100) } : {}),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    };
    if (status >= 300 && status < 400) {
      // A redirect from a readiness endpoint is a wrong URL (often http that redirects to https): say where it points.
      const target =
        location !== undefined && URL.canParse(location, url.href)
          ? redactUrl(new URL(location, url))
          : "an unusable Location";
      return {
        ready: false,
        text: `HTTP ${status}, a redirect to ${target}, which proa does not follow: give that URL instead`,
        level: "warn",
        ...answered,
      };
    }
    return { ready: false, text: `HTTP ${status}`, level: "info", ...answered };
  } catch (error) {
    const { message, code } = error as HttpError;
    // Refused: the sidecar has not started listening yet, which is normal. A timeout, a TLS or DNS error is not.
    return { ready: false, text: message, level: code === "ECONNREFUSED" ? "info" : "warn", ...(code ? { code } : {}) };
  }
}

const describe = (probes: Probe[]) => probes.map((probe) => `${probe.shown} (${probe.last.text})`).join(", ");

// ---------------------------------------------------------------------------------------------------------------
// The wait for exit: each URL's host and port, until it refuses connections

/** Tries each URL's host:port every pollMs until every one refuses connections, or `until` aborts (the deadline). */
export async function waitUntilPortsClose(
  urls: URL[],
  until: AbortSignal,
  startedAt: number,
  log: Log,
  t: ReadyUrlTiming = defaultReadyUrlTiming,
): Promise<WaitResult> {
  const ports = new Map(urls.map((url) => [`${url.hostname}:${hostPort(url).port}`, url]));
  let listening = [...ports.keys()];
  const exits: WaitResult["exits"] = []; // each sidecar named by its host:port
  await Promise.all(
    [...ports].map(async ([address, url]) => {
      while (!until.aborted) {
        const began = Date.now();
        // Only a refusal shows that the sidecar has exited: a connection accepted, a timeout or an unreachable host
        // does not, and neither does a connect cut short by the deadline.
        const attempt = await connectOnce(url, t.requestTimeoutMs, until);
        if (!attempt.ok && attempt.code === "ECONNREFUSED") {
          listening = listening.filter((other) => other !== address);
          exits.push({ name: address, afterMs: Date.now() - startedAt });
          const rest =
            listening.length > 0 ? `still listening: ${listening.join(", ")}` : "all sidecars have stopped listening";
          log.info(`nothing listens on ${address} any more; ${rest}`, { address, stillRunning: listening });
          return;
        }
        await sleep(Math.max(0, began + t.pollMs - Date.now()), undefined, { signal: until }).catch(() => {});
      }
    }),
  );
  return listening.length === 0
    ? { outcome: "all exited", stillRunning: [], exits }
    : { outcome: "budget spent", stillRunning: listening, exits };
}
