// What Node.js's own tls.checkServerIdentity does with an IPv6 address on each Node of the CI matrix, which is why
// proa looks IPv6 addresses up itself (http.ts: checkServerIdentity), and the bundle reaching an https URL at [::1].
import assert from "node:assert/strict";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { X509Certificate } from "node:crypto";
import { checkServerIdentity as nodeCheckServerIdentity } from "node:tls";
import { describe, test } from "node:test";
import { startProa } from "./helpers/proa-process.ts";

const TLS = new URL("fixtures/tls/", import.meta.url);
const CERTIFICATE = new X509Certificate(readFileSync(new URL("server.crt", TLS))); // names 127.0.0.1, ::1, localhost
// Node's own check with ::1, which the certificate names, as seen on each Node CI runs: the machine's 20 and the
// builds ci/node-versions pins. A new pin fails the last test until its line (and SECURITY.md's sentence) is checked.
const NODE_OWN_CHECK_ACCEPTS_IPV6: Record<string, boolean> = { "v20.20.2": true, "v22.23.3": false, "v24.21.0": true };

describe("an IPv6 server's certificate", () => {
  test(`Node.js's own check on ${process.version}, with ::1 which the certificate names`, (t) => {
    const expected = NODE_OWN_CHECK_ACCEPTS_IPV6[process.version];
    if (expected === undefined) return t.skip(`${process.version} is not a Node of the CI matrix`);
    const error = nodeCheckServerIdentity("::1", CERTIFICATE.toLegacyObject());
    assert.equal(error === undefined, expected, `${process.version}: ${error?.message ?? "accepted"}`);
    assert.equal(
      nodeCheckServerIdentity("127.0.0.1", CERTIFICATE.toLegacyObject()),
      undefined,
      "an IPv4 address is accepted everywhere",
    );
  });

  test("the table covers the Node builds ci/node-versions pins", () => {
    const pinned = JSON.parse(readFileSync(new URL("../ci/node-versions/package.json", import.meta.url), "utf8")) as {
      dependencies: Record<string, string>;
    };
    for (const spec of Object.values(pinned.dependencies))
      assert.ok(`v${spec.split("@").pop()}` in NODE_OWN_CHECK_ACCEPTS_IPV6, spec);
  });

  test("the bundle on this Node verifies an https ready URL at [::1] and finds it ready", async () => {
    const server = createServer(
      { key: readFileSync(new URL("server.key", TLS)), cert: readFileSync(new URL("server.crt", TLS)) },
      (_request, response) => response.end("ready"),
    );
    server.listen(0, "::1");
    await once(server, "listening");
    try {
      const url = `https://[::1]:${(server.address() as AddressInfo).port}/ready`;
      const proa = startProa(
        [
          "--ready-url",
          url,
          "--ready-timeout",
          "2s",
          "--shutdown-timeout",
          "200ms",
          "--",
          process.execPath,
          "-e",
          "process.exit(0)",
        ],
        { NODE_EXTRA_CA_CERTS: new URL("ca.crt", TLS).pathname },
      );
      assert.equal((await proa.exit).code, 0, proa.stderr());
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });
});
