// http.ts: the one HTTP client for requests to the sidecars (shutdown requests, ready URLs), over node:http and
// node:https. Bounded in every way a sidecar could stall or flood proa: one time limit over connect, headers and
// body that names the phase that ran out; a capped body; no redirects followed; TLS always verified.
import { X509Certificate } from "node:crypto";
import { Agent as PlainAgent, request as plainRequest, type ClientRequest, type IncomingMessage } from "node:http";
import { Agent as TlsAgent, request as tlsRequest } from "node:https";
import { connect, isIPv6 } from "node:net";
import { checkServerIdentity as nodeCheckServerIdentity, type PeerCertificate } from "node:tls";

export interface HttpRequest {
  method: "GET" | "POST";
  url: URL; // credentials in it are sent as Basic authentication and never logged
  timeoutMs: number; // for the whole exchange: connecting, the response headers and the body
  userAgent: string;
  maxBodyBytes?: number; // read at most this much of the body, then close the connection (default 4 KiB)
  signal?: AbortSignal;
  connection?: KeptConnection; // reuse one connection from request to request (keptConnection); default: a fresh one
}

/** One connection kept open between requests to the same host, for a poll: at most one socket, never more. */
export type KeptConnection = PlainAgent;

/** For requests to url's host that follow one another (never concurrently): the next reuses the connection the last
 * one left open, which saves a connect (and a TLS handshake) per request. destroy() it when done. */
export function keptConnection(url: URL): KeptConnection {
  const options = { keepAlive: true, maxSockets: 1, maxFreeSockets: 1, maxTotalSockets: 1 };
  return url.protocol === "https:" ? new TlsAgent(options) : new PlainAgent(options);
}

export interface HttpAnswer {
  status: number;
  location?: string; // a 3xx is an answer like any other: proa sends nothing to where it points
  retryAfter?: string; // the Retry-After header as sent, for the caller to judge (see retryAfter)
  body: string; // at most maxBodyBytes, decoded as UTF-8
  truncated: boolean;
}

export type HttpPhase = "connect" | "headers" | "body";

/** A request that got no complete answer, named for the phase it failed in; code is the socket error's, if any. */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    message: string,
    readonly phase: HttpPhase,
    readonly code?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const PHASE_TEXT: Record<HttpPhase, string> = {
  connect: "to connect",
  headers: "for the response headers",
  body: "for the rest of the body",
};
// setTimeout fires at once for a delay of 2^31 ms or more (with a warning on stderr): never let it.
const MAX_TIMER_MS = 2 ** 31 - 1;
// What is read of a body unless the caller says otherwise: enough for a sidecar's reason.
export const DEFAULT_MAX_BODY_BYTES = 4096;

/**
 * Node's tls.checkServerIdentity, except that an IPv6 address is looked up among the certificate's IP addresses by
 * OpenSSL (X509Certificate.checkIP): Node 22.23.3's own check refuses an IPv6 address the certificate names, where
 * 20.20.2's and 24.21.0's accept it (test/ipv6-identity.test.ts; reported upstream as nodejs/node#64144). The
 * certificate chain is verified as before either way.
 */
export function checkServerIdentity(host: string, cert: PeerCertificate): Error | undefined {
  if (!isIPv6(host)) return nodeCheckServerIdentity(host, cert);
  if (new X509Certificate(cert.raw).checkIP(host) !== undefined) return undefined;
  return Object.assign(
    new Error(
      `Hostname/IP does not match certificate's altnames: IP: ${host} is not in the cert's altnames: ${cert.subjectaltname ?? "none"}`,
    ),
    {
      code: "ERR_TLS_CERT_ALTNAME_INVALID",
    },
  );
}

/** Retry-After in milliseconds from `now`: a positive number of seconds, or an HTTP date still to come (the API
 * server sends seconds; a sidecar's web framework may send either). Anything else, "0", "" and a past date included,
 * is no advice at all. Callers cap it: a server cannot make proa wait longer than it would anyway. */
export function retryAfter(header: string | undefined, now = Date.now()): number | undefined {
  const text = header?.trim() ?? "";
  if (/^\d+$/.test(text)) return Number(text) > 0 ? Number(text) * 1000 : undefined;
  // An IMF-fixdate, "Wed, 21 Oct 2026 07:28:00 GMT", the only form RFC 9110 lets a sender generate.
  if (!/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text)) return undefined;
  const ms = Date.parse(text) - now;
  return ms > 0 ? ms : undefined;
}

export function httpRequest(options: HttpRequest): Promise<HttpAnswer> {
  const { method, url, timeoutMs, userAgent, maxBodyBytes = DEFAULT_MAX_BODY_BYTES, signal, connection } = options;
  const send = url.protocol === "https:" ? tlsRequest : plainRequest;
  return new Promise((resolve, reject) => {
    let phase: HttpPhase = "connect";
    // agent: false, a connection of its own that closes after the answer, so nothing keeps proa alive at exit (a kept
    // connection is its owner's to destroy). rejectUnauthorized is set explicitly, so that NODE_TLS_REJECT_UNAUTHORIZED in the environment cannot turn it off.
    const req: ClientRequest = send({
      method,
      protocol: url.protocol,
      host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      agent: connection ?? false,
      rejectUnauthorized: true,
      checkServerIdentity,
      signal,
      headers: { "user-agent": userAgent, accept: "*/*", ...(method === "POST" ? { "content-length": "0" } : {}) },
    });
    // Set after the request is created: the options object is what NODE_DEBUG=http prints, the header is not.
    if (url.username || url.password)
      req.setHeader(
        "authorization",
        `Basic ${Buffer.from(`${decode(url.username)}:${decode(url.password)}`).toString("base64")}`,
      );
    const timer = setTimeout(
      () => {
        req.destroy(
          new HttpError(`no answer within ${timeoutMs} ms: timed out waiting ${PHASE_TEXT[phase]}`, phase, "ETIMEDOUT"),
        );
      },
      Math.min(Math.max(0, timeoutMs), MAX_TIMER_MS),
    );
    const fail = (error: Error & { code?: string }) => {
      clearTimeout(timer);
      reject(error instanceof HttpError ? error : new HttpError(describe(error), phase, error.code, { cause: error }));
    };
    req.on("socket", (socket) => {
      const connected = () => phase === "connect" && (phase = "headers");
      if (req.reusedSocket) connected();
      else socket.once(url.protocol === "https:" ? "secureConnect" : "connect", connected);
    });
    req.on("error", fail);
    req.on("response", (res: IncomingMessage) => {
      phase = "body";
      const parts: Buffer[] = [];
      let length = 0;
      let truncated = false;
      const finish = () => {
        clearTimeout(timer);
        const { location, "retry-after": retryAfter } = res.headers;
        resolve({
          status: res.statusCode ?? 0,
          ...(location ? { location } : {}),
          ...(retryAfter ? { retryAfter } : {}),
          body: Buffer.concat(parts, length).toString("utf8"),
          truncated,
        });
      };
      res.on("data", (chunk: Buffer) => {
        const room = maxBodyBytes - length;
        parts.push(chunk.subarray(0, room));
        length += Math.min(room, chunk.length);
        if (chunk.length > room) {
          truncated = true;
          finish();
          res.destroy(); // the rest is never read: an endless body costs nothing
        }
      });
      res.on("end", finish);
      res.on("error", (error) => truncated || fail(error));
    });
    req.end();
  });
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // a stray % is taken literally
  }
}

function describe(error: Error & { code?: string }): string {
  switch (error.code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ECONNRESET":
      return "the connection was reset";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `cannot resolve the host name (${error.code})`;
    case "ABORT_ERR":
      return "aborted";
    default:
      return error.message;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// A bare TCP connect, for whether something listens at a URL's host and port without sending it a byte

export type ConnectAttempt = { ok: true } | { ok: false; code: string; message: string };

/** The URL's host (without IPv6 brackets) and port (the scheme's default when it names none). */
export function hostPort(url: URL): { host: string; port: number } {
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: Number(url.port || (url.protocol === "https:" ? 443 : 80)),
  };
}

/** Connects to the URL's host and port and closes at once, writing nothing: a request could shut a sidecar down.
 * Settles when connected, refused or failed, after timeoutMs, or when signal aborts (code ABORT_ERR). */
export function connectOnce(url: URL, timeoutMs: number, signal?: AbortSignal): Promise<ConnectAttempt> {
  return new Promise((settle) => {
    const socket = connect({ ...hostPort(url), timeout: timeoutMs });
    const done = (attempt: ConnectAttempt) => {
      signal?.removeEventListener("abort", cut);
      socket.destroy();
      settle(attempt);
    };
    const cut = () => done({ ok: false, code: "ABORT_ERR", message: "aborted" });
    signal?.addEventListener("abort", cut);
    if (signal?.aborted) return cut();
    socket.once("connect", () => done({ ok: true }));
    socket.once("timeout", () =>
      done({ ok: false, code: "ETIMEDOUT", message: `no connection within ${timeoutMs} ms` }),
    );
    socket.once("error", (error: NodeJS.ErrnoException) =>
      done({ ok: false, code: error.code ?? "", message: describe(error) }),
    );
  });
}
