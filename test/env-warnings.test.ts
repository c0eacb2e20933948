// The variables Node.js reads at start that change which certificates proa accepts: NODE_EXTRA_CA_CERTS and
// OPENSSL_CONF get a warning in the log and in --check, like NODE_OPTIONS and NODE_TLS_REJECT_UNAUTHORIZED.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { checkEnvironment } from "../check.ts";
import { nodeEnvironmentWarnings } from "../kube.ts";
import { podWith, startFakeApiServer, type FakeApiServer } from "./fake-apiserver.ts";
import { startProa, type ProaProcess } from "./helpers/proa-process.ts";

const scratch = mkdtempSync(join(tmpdir(), "proa-env-warnings-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
// Real files, so that the Node.js that runs the bundle loads them as it would in a container: the test CA, and an
// OpenSSL configuration that changes nothing.
const EXTRA_CA = fileURLToPath(new URL("fixtures/tls/other-ca.crt", import.meta.url));
const OPENSSL_CONF = join(scratch, "openssl.cnf");
writeFileSync(OPENSSL_CONF, "# empty: only its presence matters here\n");

describe("nodeEnvironmentWarnings", () => {
  test("NODE_EXTRA_CA_CERTS and OPENSSL_CONF each get a warning that says what they change", () => {
    const warnings = nodeEnvironmentWarnings({ NODE_EXTRA_CA_CERTS: EXTRA_CA, OPENSSL_CONF });
    assert.equal(warnings.length, 2, warnings.join("\n"));
    assert.match(warnings[0]!, /^NODE_EXTRA_CA_CERTS is set: .*https sidecar URLs \(not for the API server/);
    assert.match(warnings[1]!, /^OPENSSL_CONF is set: .*providers/);
  });

  test("an empty value still counts: Node.js reads the variable when it is set at all", () => {
    assert.equal(nodeEnvironmentWarnings({ NODE_EXTRA_CA_CERTS: "", OPENSSL_CONF: "" }).length, 2);
    assert.deepEqual(nodeEnvironmentWarnings({}), []);
  });

  test("--check shows them as warnings, not failures, with the fix to remove them", () => {
    const cluster = {
      ok: true as const,
      server: "https://10.96.0.1:443",
      namespace: "proa-e2e",
      podName: "proa-demo",
      dir: "/sa",
    };
    const findings = checkEnvironment({
      env: { POD_NAME: "proa-demo", NODE_EXTRA_CA_CERTS: EXTRA_CA, OPENSSL_CONF },
      nodeVersion: "24.21.0",
      cluster,
    });
    const named = findings.filter((finding) => /NODE_EXTRA_CA_CERTS|OPENSSL_CONF/.test(finding.text));
    assert.deepEqual(
      named.map((finding) => finding.verdict),
      ["warn", "warn"],
    );
    for (const finding of named) assert.match(finding.fix ?? "", /remove it/);
  });
});

describe("the bundle", () => {
  let api: FakeApiServer;
  let proa: ProaProcess | undefined;
  before(async () => {
    api = await startFakeApiServer({ pod: podWith({ sidecars: ["sidecar-1"], ready: true }) });
  });
  afterEach(async () => {
    if (proa && proa.child.exitCode === null && proa.child.signalCode === null) proa.child.kill("SIGKILL");
    await proa?.exit;
    proa = undefined;
  });
  after(async () => {
    await api.close();
  });

  test("names NODE_EXTRA_CA_CERTS and OPENSSL_CONF in warnings at start, and runs with both set", async () => {
    proa = startProa(["--kill", "no-such-process-name", "--", process.execPath, "-e", "process.exit(0)"], {
      ...api.env(),
      PROA_CONTAINER: "main",
      NODE_EXTRA_CA_CERTS: EXTRA_CA,
      OPENSSL_CONF,
    });
    assert.equal((await proa.exit).code, 0, proa.stderr());
    const warnings = proa.logs.filter((record) => record.level === "warn").map((record) => record.msg);
    assert.ok(
      warnings.some((msg) => /^NODE_EXTRA_CA_CERTS is set/.test(msg)),
      proa.stderr(),
    );
    assert.ok(
      warnings.some((msg) => /^OPENSSL_CONF is set/.test(msg)),
      proa.stderr(),
    );
  });
});
