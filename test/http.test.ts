// The one HTTP client (http.ts) against real servers on loopback that send exactly the bytes a test chooses.
import assert from "node:assert/strict";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from "node:net";
import { after, describe, test } from "node:test";
import { connect, type PeerCertificate } from "node:tls";
import { checkServerIdentity, connectOnce, hostPort, httpRequest, HttpError, keptConnection } from "../http.ts";
import { sendEndless500 } from "./helpers/endless-body.ts";

const sockets = new Set<Socket>();
const servers: Server[] = [];
after(() => {
  for (const socket of sockets) socket.destroy();
  for (const server of servers) server.close();
});

/** A TCP server that runs `script` on each connection: the test decides every byte, or none. */
async function raw(script: (socket: Socket, request: () => Promise<string>) => void | Promise<void>): Promise<string> {
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    let text = "";
    const request = () =>
      new Promise<string>((resolve) => {
        const check = () =>
          text.includes("\r\n\r\n") ? resolve(text) : socket.once("data", (chunk) => ((text += chunk), check()));
        check();
      });
    // A script that throws drops the connection, so the request under test fails instead of a stray rejection.
    Promise.resolve(script(socket, request)).catch((error: unknown) => socket.destroy(error as Error));
  });
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const get = (url: string, timeoutMs = 2000, maxBodyBytes?: number) =>
  httpRequest({
    method: "GET",
    url: new URL(url),
    timeoutMs,
    userAgent: "proa/test",
    ...(maxBodyBytes ? { maxBodyBytes } : {}),
  });

describe("httpRequest", () => {
  test("returns the status and body of a plain answer", async () => {
    const host = await raw(async (socket, request) => {
      await request();
      socket.end("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    });
    assert.deepEqual(await get(`http://${host}/ready`), { status: 200, body: "ok", truncated: false });
  });

  test("a redirect is an answer with its Location: nothing is sent to where it points", async () => {
    let reached = 0;
    const elsewhere = await raw((socket) => {
      reached++;
      socket.end();
    });
    const host = await raw(async (socket, request) => {
      await request();
      socket.end(`HTTP/1.1 307 Temporary Redirect\r\nlocation: http://${elsewhere}/x\r\ncontent-length: 0\r\n\r\n`);
    });
    const answer = await get(`http://${host}/quitquitquit`);
    assert.equal(answer.status, 307);
    assert.equal(answer.location, `http://${elsewhere}/x`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(reached, 0);
  });

  test("reads at most maxBodyBytes of an endless body, then closes the connection", async () => {
    let closed = () => false;
    const host = await raw(async (socket, request) => {
      await request();
      closed = sendEndless500(socket);
    });
    const answer = await get(`http://${host}/`, 2000, 1000);
    assert.equal(answer.status, 500);
    assert.equal(answer.body.length, 1000);
    assert.equal(answer.truncated, true);
    for (let i = 0; i < 100 && !closed(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.ok(closed(), "the connection was closed after the cap");
  });

  test("a server that never answers times out in the headers phase", async () => {
    const host = await raw(() => {});
    await assert.rejects(
      get(`http://${host}/`, 100),
      (error: HttpError) => error.phase === "headers" && /within 100 ms.*response headers/.test(error.message),
    );
  });

  test("a body that stalls times out in the body phase", async () => {
    const host = await raw(async (socket, request) => {
      await request();
      socket.write("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc");
    });
    await assert.rejects(
      get(`http://${host}/`, 100),
      (error: HttpError) => error.phase === "body" && /rest of the body/.test(error.message),
    );
  });

  test("a TLS server that never completes the handshake times out in the connect phase", async () => {
    const host = await raw(() => {});
    await assert.rejects(
      get(`https://${host}/`, 100),
      (error: HttpError) => error.phase === "connect" && /to connect/.test(error.message),
    );
  });

  test("HTTPS is verified against Node.js's CA list even with NODE_TLS_REJECT_UNAUTHORIZED=0", async () => {
    const dir = new URL("./fixtures/tls/", import.meta.url);
    const server = (await import("node:https")).createServer(
      { key: readFileSync(new URL("server.key", dir)), cert: readFileSync(new URL("server.crt", dir)) },
      (_, res) => res.end("ok"),
    );
    servers.push(server);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const saved = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";
    try {
      await assert.rejects(
        get(`https://127.0.0.1:${(server.address() as AddressInfo).port}/`),
        (error: HttpError) => error.phase === "connect",
      );
    } finally {
      if (saved === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = saved;
    }
  });

  test("a refused connection fails in the connect phase with ECONNREFUSED", async () => {
    const host = await raw(() => {});
    const server = servers.pop()!;
    server.close();
    await once(server, "close");
    await assert.rejects(
      get(`http://${host}/`),
      (error: HttpError) =>
        error.phase === "connect" && error.code === "ECONNREFUSED" && error.message === "connection refused",
    );
  });

  test("credentials in the URL go out as Basic authentication, not in the request line", async () => {
    const seen: { url?: string; authorization?: string } = {};
    const server = createHttpServer((req, res) => {
      Object.assign(seen, { url: req.url, authorization: req.headers.authorization });
      res.end();
    });
    servers.push(server);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    await httpRequest({
      method: "POST",
      url: new URL(`http://admin:p%40ss@127.0.0.1:${port}/quit?now=1`),
      timeoutMs: 2000,
      userAgent: "proa/test",
    });
    assert.equal(seen.url, "/quit?now=1");
    assert.equal(seen.authorization, `Basic ${Buffer.from("admin:p@ss").toString("base64")}`);
  });
});

describe("httpRequest over a kept connection (keptConnection), as the ready URLs are polled", () => {
  test("requests that follow one another share one TCP connection, and the next opens another once the server closed it", async () => {
    let connections = 0;
    const server = createHttpServer((_, res) => res.end("ok"));
    server.on("connection", () => connections++);
    servers.push(server);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/ready`);
    const connection = keptConnection(url);
    try {
      for (let i = 0; i < 3; i++)
        assert.equal(
          (await httpRequest({ method: "GET", url, timeoutMs: 2000, userAgent: "proa/test", connection })).body,
          "ok",
        );
      assert.equal(connections, 1);
      server.closeAllConnections();
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(
        (await httpRequest({ method: "GET", url, timeoutMs: 2000, userAgent: "proa/test", connection })).status,
        200,
      );
      assert.equal(connections, 2);
    } finally {
      connection.destroy();
    }
  });

  test("a request on a reused connection that gets no answer times out in the headers phase, not the connect phase", async () => {
    let requests = 0;
    const host = await raw((socket) => {
      socket.on("data", (chunk) => {
        if (String(chunk).includes("\r\n\r\n") && ++requests === 1)
          socket.write("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
      });
    });
    const url = new URL(`http://${host}/ready`);
    const connection = keptConnection(url);
    try {
      assert.equal(
        (await httpRequest({ method: "GET", url, timeoutMs: 2000, userAgent: "proa/test", connection })).status,
        503,
      );
      await assert.rejects(
        httpRequest({ method: "GET", url, timeoutMs: 100, userAgent: "proa/test", connection }),
        (error: HttpError) => error.phase === "headers" && /response headers/.test(error.message),
      );
      assert.equal(requests, 2, "the second request went over the first one's connection");
    } finally {
      connection.destroy();
    }
  });

  test("a kept HTTPS connection verifies the certificate against Node.js's CA list, even with NODE_TLS_REJECT_UNAUTHORIZED=0", async () => {
    const dir = new URL("./fixtures/tls/", import.meta.url);
    let asked = false;
    const server = (await import("node:https")).createServer(
      { key: readFileSync(new URL("server.key", dir)), cert: readFileSync(new URL("server.crt", dir)) },
      (_, res) => ((asked = true), res.end("ok")),
    );
    servers.push(server);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const url = new URL(`https://127.0.0.1:${(server.address() as AddressInfo).port}/ready`);
    const connection = keptConnection(url);
    const saved = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";
    try {
      for (let i = 0; i < 2; i++) {
        await assert.rejects(
          httpRequest({ method: "GET", url, timeoutMs: 2000, userAgent: "proa/test", connection }),
          (error: HttpError) => error.phase === "connect",
        );
      }
      assert.equal(asked, false);
    } finally {
      if (saved === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = saved;
      connection.destroy();
    }
  });
});

describe("connectOnce: whether something listens, without sending it a byte", () => {
  test("a listening port: connected, closed at once, and not one byte received", async () => {
    let received = 0;
    let accepted!: (socket: Socket) => void;
    const connection = new Promise<Socket>((resolve) => (accepted = resolve));
    const address = await raw((socket) => {
      socket.on("data", (chunk) => (received += chunk.length));
      accepted(socket);
    });
    assert.deepEqual(await connectOnce(new URL(`http://${address}/quitquitquit`), 2000), { ok: true });
    const socket = await connection;
    await new Promise((resolve) => (socket.destroyed ? resolve(undefined) : socket.once("close", resolve)));
    assert.equal(received, 0);
  });

  test("a refused port: ECONNREFUSED, in words", async () => {
    const server = createTcpServer().listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    server.close();
    assert.deepEqual(await connectOnce(new URL(`http://127.0.0.1:${port}/`), 2000), {
      ok: false,
      code: "ECONNREFUSED",
      message: "connection refused",
    });
  });

  test("an abort ends the attempt at once, before it connects, and so does a signal already aborted", async () => {
    const url = new URL(`http://${await raw(() => {})}/`);
    const stop = new AbortController();
    const attempt = connectOnce(url, 2000, stop.signal);
    stop.abort(); // before the connect can complete, which takes at least a turn of the event loop
    assert.deepEqual(await attempt, { ok: false, code: "ABORT_ERR", message: "aborted" });
    assert.equal((await connectOnce(url, 2000, AbortSignal.abort())).ok, false);
  });

  test("hostPort: the scheme's default port, and an IPv6 host without brackets", () => {
    assert.deepEqual(hostPort(new URL("https://localhost/ready")), { host: "localhost", port: 443 });
    assert.deepEqual(hostPort(new URL("http://[::1]:15021/healthz/ready")), { host: "::1", port: 15021 });
    assert.deepEqual(hostPort(new URL("http://sidecar/")), { host: "sidecar", port: 80 });
  });
});

describe("checkServerIdentity", () => {
  /** The certificate as a TLS client receives it from the test server (names: 127.0.0.1, ::1, localhost). */
  async function peerCertificate(): Promise<PeerCertificate> {
    const dir = new URL("./fixtures/tls/", import.meta.url);
    const server = (await import("node:https")).createServer({
      key: readFileSync(new URL("server.key", dir)),
      cert: readFileSync(new URL("server.crt", dir)),
    });
    servers.push(server);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const socket = connect({
      host: "127.0.0.1",
      port: (server.address() as AddressInfo).port,
      ca: readFileSync(new URL("ca.crt", dir)),
    });
    sockets.add(socket);
    await once(socket, "secureConnect");
    const certificate = socket.getPeerCertificate();
    socket.destroy();
    return certificate;
  }

  for (const host of ["::1", "0:0:0:0:0:0:0:1", "127.0.0.1", "localhost"]) {
    test(`accepts ${host}, one of the certificate's names`, async () => {
      assert.equal(checkServerIdentity(host, await peerCertificate()), undefined);
    });
  }
  for (const host of ["::2", "fd00:10:96::1", "::ffff:127.0.0.1", "127.0.0.2", "example.com"]) {
    test(`refuses ${host}, which the certificate does not name`, async () => {
      const error = checkServerIdentity(host, await peerCertificate()) as Error & { code?: string };
      assert.equal(error?.code, "ERR_TLS_CERT_ALTNAME_INVALID");
      assert.match(error.message, new RegExp(host.replace(/[.:]/g, "\\$&")));
    });
  }
});
