// What the variables Node.js itself reads at start do to proa, on the bundle under the Node running this test (CI
// runs it under every Node of the matrix): which ones change whom proa trusts or where it connects, and which cannot.
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { OTHER_CA, podWith, startFakeApiServer, type FakeApiServer } from "./fake-apiserver.ts";
import { startProa, type ProaProcess } from "./helpers/proa-process.ts";

const TLS = new URL("fixtures/tls/", import.meta.url);
// The CA that signed the test servers' certificate (127.0.0.1, ::1, localhost), as a file for SSL_CERT_FILE.
const SERVERS_CA = fileURLToPath(new URL("ca.crt", TLS));
const NODE_MAJOR = Number(process.versions.node.split(".")[0]);
const scratch = mkdtempSync(join(tmpdir(), "proa-node-environment-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

let proa: ProaProcess | undefined;
afterEach(async () => {
  if (proa && proa.child.exitCode === null && proa.child.signalCode === null) proa.child.kill("SIGKILL");
  await proa?.exit;
  proa = undefined;
});

async function listening<T extends Server | ReturnType<typeof createTcpServer>>(
  server: T,
): Promise<T & { port: number }> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return Object.assign(server, { port: (server.address() as AddressInfo).port });
}

describe("the API server is checked against the service account's ca.crt alone", () => {
  // ca.crt names an unrelated CA; each variable offers the CA that did sign the server's certificate.
  for (const [what, env] of [
    ["NODE_EXTRA_CA_CERTS", { NODE_EXTRA_CA_CERTS: SERVERS_CA }],
    ["NODE_USE_SYSTEM_CA=1 with SSL_CERT_FILE", { NODE_USE_SYSTEM_CA: "1", SSL_CERT_FILE: SERVERS_CA }],
    [
      "NODE_OPTIONS=--use-openssl-ca with SSL_CERT_FILE",
      { NODE_OPTIONS: "--use-openssl-ca", SSL_CERT_FILE: SERVERS_CA },
    ],
  ] as const) {
    test(`${what} naming the CA that signed it does not make proa trust it: no request, and a warning`, async () => {
      const untrusted = await startFakeApiServer({
        pod: podWith({ sidecars: ["sidecar-1"], ready: true }),
        ca: OTHER_CA,
      });
      try {
        proa = startProa(["--ready-timeout", "300ms", "--", process.execPath, "-e", "process.exit(0)"], {
          ...untrusted.env(),
          PROA_CONTAINER: "main",
          ...env,
        });
        assert.equal((await proa.exit).code, 1, proa.stderr());
        assert.equal(untrusted.requests.length, 0, "the token was sent to a server proa must not trust");
        const named = Object.keys(env).find((name) => name !== "SSL_CERT_FILE")!;
        assert.ok(
          proa.logs.some((record) => record.level === "warn" && record.msg.startsWith(`${named} is set`)),
          proa.stderr(),
        );
      } finally {
        await untrusted.close();
      }
    });
  }
});

describe("https sidecar URLs are checked against Node.js's own CA list, which the environment can extend", () => {
  let sidecar: Server & { port: number };
  before(async () => {
    sidecar = await listening(
      createHttpsServer(
        { key: readFileSync(new URL("server.key", TLS)), cert: readFileSync(new URL("server.crt", TLS)) },
        (_request, response) => response.end("ready"),
      ),
    );
  });
  after(() => (sidecar.close(), sidecar.closeAllConnections()));
  const runReady = async (env: Record<string, string>) => {
    proa = startProa(
      [
        "--ready-url",
        `https://127.0.0.1:${sidecar.port}/ready`,
        "--ready-timeout",
        "1s",
        "--shutdown-timeout",
        "200ms",
        "--",
        process.execPath,
        "-e",
        "process.exit(0)",
      ],
      env,
    );
    return (await proa.exit).code;
  };

  test("a sidecar whose CA is not in Node.js's list is never ready, whatever SSL_CERT_FILE says", async () => {
    assert.equal(await runReady({ SSL_CERT_FILE: SERVERS_CA }), 1, proa?.stderr());
  });

  test("NODE_EXTRA_CA_CERTS adds its CA: the sidecar is ready, and proa warns", async () => {
    assert.equal(await runReady({ NODE_EXTRA_CA_CERTS: SERVERS_CA }), 0, proa?.stderr());
    assert.ok(
      proa!.logs.some((record) => record.level === "warn" && record.msg.startsWith("NODE_EXTRA_CA_CERTS is set")),
      proa!.stderr(),
    );
  });

  test(`NODE_USE_SYSTEM_CA=1 with SSL_CERT_FILE adds the system's store on Node 22 and later, not on 20 (this is ${process.version}); proa warns`, async () => {
    assert.equal(
      await runReady({ NODE_USE_SYSTEM_CA: "1", SSL_CERT_FILE: SERVERS_CA }),
      NODE_MAJOR >= 22 ? 0 : 1,
      proa?.stderr(),
    );
    assert.ok(
      proa!.logs.some((record) => record.level === "warn" && record.msg.startsWith("NODE_USE_SYSTEM_CA is set")),
      proa!.stderr(),
    );
  });

  test("--use-openssl-ca in NODE_OPTIONS with SSL_CERT_FILE adds that store on every Node; proa warns about NODE_OPTIONS", async () => {
    assert.equal(await runReady({ NODE_OPTIONS: "--use-openssl-ca", SSL_CERT_FILE: SERVERS_CA }), 0, proa?.stderr());
    assert.ok(
      proa!.logs.some((record) => record.level === "warn" && record.msg.startsWith("NODE_OPTIONS is set")),
      proa!.stderr(),
    );
  });
});

describe("variables that cannot move proa's connections or put the token in a file", () => {
  let api: FakeApiServer;
  before(async () => {
    api = await startFakeApiServer({ pod: podWith({ sidecars: ["sidecar-1"], ready: true }) });
  });
  after(() => api.close());

  test("NODE_USE_ENV_PROXY=1 with HTTP_PROXY and HTTPS_PROXY: the API server and the shutdown URL are reached directly, the proxy never", async () => {
    const proxied: Socket[] = [];
    const proxy = await listening(createTcpServer((socket) => (proxied.push(socket), socket.destroy())));
    const requests: string[] = [];
    const sidecar = await listening(
      createHttpServer((request, response) => (requests.push(`${request.method} ${request.url}`), response.end("bye"))),
    );
    try {
      const proxyUrl = `http://127.0.0.1:${proxy.port}`;
      const env = {
        ...api.env(),
        PROA_CONTAINER: "main",
        NODE_USE_ENV_PROXY: "1",
        HTTP_PROXY: proxyUrl,
        HTTPS_PROXY: proxyUrl,
        NO_PROXY: "",
      };
      const requestsBefore = api.requests.length;
      proa = startProa(
        [
          "--shutdown-timeout",
          "200ms",
          "--shutdown-http-post",
          `http://127.0.0.1:${sidecar.port}/quitquitquit`,
          "--",
          process.execPath,
          "-e",
          "process.exit(0)",
        ],
        env,
      );
      assert.equal((await proa.exit).code, 0, proa.stderr());
      assert.ok(api.requests.length > requestsBefore, "the API server was reached");
      assert.deepEqual(requests, ["POST /quitquitquit"]);
      assert.equal(proxied.length, 0, "a connection went to the proxy");
    } finally {
      proxy.close();
      sidecar.close();
      sidecar.closeAllConnections();
    }
  });

  test("NODE_V8_COVERAGE and NODE_COMPILE_CACHE: Node.js writes its files there, and none holds the token", async () => {
    const coverage = join(scratch, "coverage");
    const cache = join(scratch, "compile-cache");
    proa = startProa(["--shutdown-timeout", "200ms", "--", process.execPath, "-e", "process.exit(0)"], {
      ...api.env(),
      PROA_CONTAINER: "main",
      NODE_V8_COVERAGE: coverage,
      NODE_COMPILE_CACHE: cache,
    });
    assert.equal((await proa.exit).code, 0, proa.stderr());
    const written = [coverage, cache].flatMap((dir) => filesUnder(dir));
    assert.ok(
      written.some((file) => file.startsWith(coverage)),
      "Node.js wrote no coverage: the test shows nothing",
    );
    for (const file of written) assert.ok(!readFileSync(file).includes(api.token), `${file} holds the token`);
  });
});

function filesUnder(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir, { recursive: true }) as string[];
  } catch {
    return []; // Node.js 20 has no compile cache
  }
  return names.map((name) => join(dir, name)).filter((path) => statSync(path).isFile());
}
