// KUBERNETES_SERVICE_HOST with an IPv6 zone ID (::1%lo): no certificate can name it, and Node.js's IP check threw
// on it mid-handshake, which crashed proa with a stack trace, no shutdown step and no summary. It is a configuration
// error like any other: the wait fails with a message saying what to do.
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { apiServer } from "../kube.ts";
import { podWith, startFakeApiServer, type FakeApiServer } from "./fake-apiserver.ts";
import { startProa, type ProaProcess } from "./helpers/proa-process.ts";

const ZONED = "::1%lo";
const MESSAGE =
  /^KUBERNETES_SERVICE_HOST is an IPv6 address with a zone ID \(::1%lo\), which no certificate can name: set it to the API server's address without %lo/;
const scratch = mkdtempSync(join(tmpdir(), "proa-ipv6-zone-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe("apiServer", () => {
  test("refuses an IPv6 address with a zone ID, bracketed or not, and still takes one without", () => {
    for (const host of [ZONED, `[${ZONED}]`, "fe80::1%eth0"])
      assert.throws(() => apiServer(host, "443"), /KUBERNETES_SERVICE_HOST is an IPv6 address with a zone ID/);
    assert.equal(apiServer("::1", "443").server, "https://[::1]:443");
  });
});

describe("the bundle, with KUBERNETES_SERVICE_HOST=::1%lo and an API server listening on ::1", () => {
  let api: FakeApiServer;
  const shutdownRequests: string[] = [];
  const shutdownServer = createServer((req, res) => {
    shutdownRequests.push(`${req.method} ${req.url}`);
    res.end();
  });
  let shutdownUrl: string;
  let proa: ProaProcess | undefined;
  before(async () => {
    // Where the zoned address leads: without the check, the handshake with it is what crashed proa.
    api = await startFakeApiServer({ pod: podWith({ sidecars: ["sidecar-1"], ready: true }), host: "::1" });
    shutdownServer.listen(0, "127.0.0.1");
    await once(shutdownServer, "listening");
    shutdownUrl = `http://127.0.0.1:${(shutdownServer.address() as AddressInfo).port}/quitquitquit`;
  });
  afterEach(async () => {
    if (proa && proa.child.exitCode === null && proa.child.signalCode === null) proa.child.kill("SIGKILL");
    await proa?.exit;
    proa = undefined;
  });
  after(async () => {
    shutdownServer.close();
    await api.close();
  });

  test("a run exits 1 with the message, no stack trace, still asks the sidecars to shut down, and writes its summary", async () => {
    const terminationLog = join(scratch, "termination-log");
    writeFileSync(terminationLog, "");
    proa = startProa(["-g", shutdownUrl, "--", process.execPath, "-e", "process.exit(0)"], {
      ...api.env(),
      KUBERNETES_SERVICE_HOST: ZONED,
      PROA_CONTAINER: "main",
      PROA_TERMINATION_MESSAGE_PATH: terminationLog,
    });
    const timer = setTimeout(() => proa?.child.kill("SIGKILL"), 20_000); // a hang fails, never blocks the suite
    const { code } = await proa.exit.finally(() => clearTimeout(timer));
    assert.equal(code, 1, proa.stderr());
    assert.deepEqual(
      proa.logs.filter((record) => record.level === "NOT JSON"),
      [],
      "stderr is JSON lines: no stack trace",
    );
    assert.ok(
      proa.logs.some((record) => record.level === "error" && MESSAGE.test(String(record.msg))),
      proa.stderr(),
    );
    assert.deepEqual(shutdownRequests, ["GET /quitquitquit"], "the shutdown step ran");
    const summary = proa.logs.find((record) => record.msg === "summary") as
      { wait?: { ending?: string; reason?: string } } | undefined;
    assert.equal(summary?.wait?.ending, "failed", proa.stderr());
    assert.match(summary?.wait?.reason ?? "", MESSAGE);
    assert.match(readFileSync(terminationLog, "utf8"), /zone ID/, "the termination message was written");
  });

  test("--check prints a FAIL line for it, and no stack trace", async () => {
    proa = startProa(["--check", "-g", shutdownUrl, "--", process.execPath], {
      ...api.env(),
      KUBERNETES_SERVICE_HOST: ZONED,
      PROA_CONTAINER: "main",
    });
    const timer = setTimeout(() => proa?.child.kill("SIGKILL"), 20_000);
    const { code } = await proa.exit.finally(() => clearTimeout(timer));
    assert.equal(code, 1, proa.stderr());
    assert.deepEqual(
      proa.logs.filter((record) => record.level === "NOT JSON"),
      [],
      "stderr is JSON lines: no stack trace",
    );
    const fails = proa.stdout.filter((line) => line.startsWith("FAIL "));
    assert.ok(
      fails.some((line) => MESSAGE.test(line.slice("FAIL ".length))),
      proa.stdout.join("\n"),
    );
  });
});
