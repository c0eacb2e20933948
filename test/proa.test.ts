// proa as a black box, as tini's tests run tini: the bundle as a real process against a fake API server over HTTPS,
// with real wrapped programs. Each test's name is a one-sentence specification.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import {
  FORBIDDEN,
  OTHER_CA,
  podWith,
  startFakeApiServer,
  UNAUTHORIZED,
  type FakeApiServer,
} from "./fake-apiserver.ts";
import { BUNDLE, SIGNAL_REPORTER, startProa, type ProaProcess } from "./helpers/proa-process.ts";

const NODE = process.execPath;
const scratch = mkdtempSync(join(tmpdir(), "proa-test-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const ready = () => podWith({ sidecars: ["sidecar-1"], ready: true });
const notReady = () => podWith({ sidecars: ["sidecar-1"], ready: false });
const exited = () => podWith({ sidecars: ["sidecar-1"], terminated: { "sidecar-1": { exitCode: 0 } } });

/** sidecar-1's shutdown endpoint: records each request and, as the real sidecar would, exits (in the fake Pod). */
function shutdownEndpoint() {
  const received: string[] = [];
  const server: Server = createServer((request, response) => {
    received.push(`${request.method} ${request.url}`);
    response.end("bye");
    api.setPod(exited());
  });
  const listening = new Promise<string>((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve(`http://127.0.0.1:${(server.address() as { port: number }).port}/quitquitquit`),
    ),
  );
  return { received, url: listening, close: () => server.close() };
}

let api: FakeApiServer;
let endpoint: ReturnType<typeof shutdownEndpoint>;
let proa: ProaProcess | undefined;
before(async () => {
  api = await startFakeApiServer({ pod: ready() });
  endpoint = shutdownEndpoint();
});
after(async () => {
  endpoint.close();
  await api.close();
});
afterEach(() => {
  proa?.child.kill("SIGKILL");
  proa = undefined;
  endpoint.received.length = 0;
});

/** Runs proa in the fake Pod as container "main", with sidecar-1's shutdown endpoint. */
async function runProa(args: string[], command: string[] = [process.execPath, BUNDLE], server = api) {
  proa = startProa(["-g", await endpoint.url, ...args], { ...server.env(), PROA_CONTAINER: "main" }, command);
  return proa;
}

describe("exit status", () => {
  for (const code of [0, 1, 5]) {
    test(`proa exits ${code} when the program exits ${code}`, async () => {
      api.setPod(ready());
      const { code: status } = await (await runProa(["--", NODE, "-e", `process.exit(${code})`])).exit;
      assert.equal(status, code);
      assert.deepEqual(endpoint.received, ["GET /quitquitquit"], "the sidecar was asked to shut down");
    });
  }

  test("an exit code above 255 is reported as the kernel truncates it (300 -> 44)", async () => {
    api.setPod(ready());
    assert.equal((await (await runProa(["--", NODE, "-e", "process.exit(300)"])).exit).code, 44);
  });

  for (const [signal, status] of [
    ["SIGKILL", 137],
    ["SIGTERM", 143],
  ] as const) {
    test(`a program killed by ${signal} makes proa exit ${status}`, async () => {
      api.setPod(ready());
      assert.equal(
        (await (await runProa(["--", NODE, "-e", `process.kill(process.pid, "${signal}")`])).exit).code,
        status,
      );
    });
  }

  test("a program that is not found makes proa exit 127 with an error naming it", async () => {
    api.setPod(ready());
    const run = await runProa(["--", "no-such-program-proa-test"]);
    assert.equal((await run.exit).code, 127);
    assert.ok(
      run.logs.some((record) => record.level === "error" && /no-such-program-proa-test was not found/.test(record.msg)),
      run.stderr(),
    );
    assert.deepEqual(endpoint.received, ["GET /quitquitquit"], "the sidecar was asked to shut down");
  });

  test("a program that is not executable makes proa exit 126 with an error naming it", async () => {
    const script = join(scratch, "not-executable.sh");
    writeFileSync(script, "#!/bin/sh\nexit 0\n");
    chmodSync(script, 0o644);
    api.setPod(ready());
    const run = await runProa(["--", script]);
    assert.equal((await run.exit).code, 126);
    assert.ok(
      run.logs.some((record) => record.level === "error" && record.msg.includes(`${script} cannot be executed`)),
      run.stderr(),
    );
    assert.deepEqual(endpoint.received, ["GET /quitquitquit"], "the sidecar was asked to shut down");
  });

  test("the program's own stdout passes through untouched and proa's log lines are all JSON", async () => {
    api.setPod(ready());
    const run = await runProa(["--", NODE, "-e", "process.stdout.write('plain output\\n'); process.stderr.write('')"]);
    await run.exit;
    assert.deepEqual(run.stdout, ["plain output"]);
    assert.deepEqual(
      run.logs.filter((record) => record.level === "NOT JSON"),
      [],
    );
  });
});

describe("the API server", () => {
  test("an API server at an IPv6 address, as in an IPv6 cluster, is reached and its certificate verified", async (t) => {
    const ipv6 = await startFakeApiServer({ pod: podWith({ sidecars: [] }), host: "::1" });
    t.after(() => ipv6.close());
    proa = startProa(["--ready-timeout", "5s", "--", NODE, "-e", "process.exit(7)"], {
      ...ipv6.env(),
      PROA_CONTAINER: "main",
    });
    assert.equal((await proa.exit).code, 7, proa.stderr());
    assert.ok(
      proa.logs.some((record) => record.msg === "program started"),
      proa.stderr(),
    );
    assert.equal(proa.logs.filter((record) => record.level === "warn").length, 0, proa.stderr());
    assert.ok(ipv6.requests.length > 0);
  });
});
// The README's contract, written out here rather than taken from the code under test.
const DOCUMENTED_SIGNALS: NodeJS.Signals[] = [
  "SIGTERM",
  "SIGINT",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
  "SIGWINCH",
];

describe("signals", () => {
  for (const signal of DOCUMENTED_SIGNALS.filter((name) => name !== "SIGTERM")) {
    test(`${signal} sent to proa while the program runs reaches the program`, async () => {
      api.setPod(ready());
      const run = await runProa(["--", NODE, SIGNAL_REPORTER, "7"]);
      await run.waitForStdout("ready");
      run.child.kill(signal);
      await run.waitForStdout(signal);
      run.child.kill("SIGTERM");
      assert.equal((await run.exit).code, 7);
    });
  }

  test("SIGTERM sent to proa reaches the program, and proa exits with the program's status", async () => {
    api.setPod(ready());
    const run = await runProa(["--", NODE, SIGNAL_REPORTER, "42"]);
    await run.waitForStdout("ready");
    run.child.kill("SIGTERM");
    assert.equal((await run.exit).code, 42);
    assert.deepEqual(run.stdout, ["ready", "SIGTERM"]);
    const shutdown = run.logs.find((record) => record.msg === "shutting the sidecars down");
    assert.ok(
      Number(shutdown?.budgetMs) <= 29_000,
      "the 30 s grace period counts from SIGTERM, less a second before the kubelet's kill",
    );
  });

  test("a signal before the program started ends the wait: the program never runs, shutdown still runs, and proa exits 128+N", async () => {
    api.setPod(notReady());
    const marker = join(scratch, "started-before-signal");
    const run = await runProa(["--", NODE, "-e", `require("fs").writeFileSync(${JSON.stringify(marker)}, "")`]);
    await run.waitForLog((record) => record.msg === "waiting for containers to be ready");
    run.child.kill("SIGINT");
    assert.equal((await run.exit).code, 130);
    assert.deepEqual(endpoint.received, ["GET /quitquitquit"]);
    assert.equal(existsSync(marker), false, "the program must not have started");
  });
});

describe("signals before the program starts and during shutdown", () => {
  /** proa in a Pod whose sidecar never exits and whose grace period is 1.5 s, with --shutdown-timeout 20s. */
  function graceRun(program: string[]) {
    const pod = ready();
    pod.spec = { ...pod.spec, terminationGracePeriodSeconds: 1.5 };
    api.setPod(pod);
    proa = startProa(["--shutdown-timeout", "20s", "--", ...program], { ...api.env(), PROA_CONTAINER: "main" });
    return proa;
  }
  const within = <T>(promise: Promise<T>, ms: number, what: string) =>
    Promise.race([
      promise,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms).unref(),
      ),
    ]);

  test("SIGWINCH, SIGUSR1 and SIGUSR2 before the program starts are ignored: the wait goes on and the program runs", async () => {
    api.setPod(notReady());
    const run = await runProa(["--", NODE, "-e", "process.exit(0)"]);
    await run.waitForLog((record) => record.msg === "waiting for containers to be ready");
    for (const signal of ["SIGWINCH", "SIGUSR1", "SIGUSR2"] as const) run.child.kill(signal);
    await new Promise((resolve) => setTimeout(resolve, 100));
    api.setPod(ready());
    assert.equal((await run.exit).code, 0, run.stderr());
    assert.ok(run.logs.some((record) => record.msg === "program started"));
  });

  test("SIGTERM while the program runs ends the shutdown step a second before the grace period does, despite --shutdown-timeout 20s", async () => {
    const run = graceRun([NODE, SIGNAL_REPORTER, "42"]);
    await run.waitForStdout("ready");
    const sent = Date.now();
    run.child.kill("SIGTERM");
    assert.equal((await within(run.exit, 5000, "proa to exit")).code, 42);
    const tookMs = Date.now() - sent;
    assert.ok(tookMs < 1500, `proa exited ${tookMs} ms after SIGTERM; the kubelet would kill it at 1500 ms`);
  });

  test("SIGTERM during the shutdown step ends it a second before the grace period does, despite --shutdown-timeout 20s", async () => {
    const run = graceRun([NODE, "-e", "process.exit(3)"]);
    await run.waitForLog((record) => record.msg.startsWith("proa has no way to stop the sidecars"));
    const sent = Date.now();
    run.child.kill("SIGTERM");
    assert.equal((await within(run.exit, 5000, "proa to exit")).code, 3);
    const tookMs = Date.now() - sent;
    assert.ok(tookMs < 1500, `proa exited ${tookMs} ms after SIGTERM; the kubelet would kill it at 1500 ms`);
  });
});

describe("when the wait fails, the program never runs, the sidecars are still shut down, and proa exits 1", () => {
  async function failedWait(
    args: string[],
    during: (run: ProaProcess) => Promise<void> = async () => {},
    server = api,
  ) {
    const marker = join(scratch, `started-${Math.random()}`);
    const run = await runProa(
      [...args, "--", NODE, "-e", `require("fs").writeFileSync(${JSON.stringify(marker)}, "")`],
      undefined,
      server,
    );
    await during(run);
    assert.equal((await run.exit).code, 1, run.stderr());
    assert.equal(existsSync(marker), false, "the program must not have started");
    assert.deepEqual(endpoint.received, ["GET /quitquitquit"], "the sidecar was asked to shut down");
    return run.logs.filter((record) => record.level === "error").map((record) => record.msg);
  }

  test("a sidecar that terminates during the wait (restartPolicy Never) fails it, naming the container and its exit code", async () => {
    api.setPod(notReady());
    const errors = await failedWait([], async (run) => {
      await run.waitForLog((record) => record.msg === "waiting for containers to be ready");
      api.setPod(podWith({ sidecars: ["sidecar-1"], terminated: { "sidecar-1": { exitCode: 3 } } }));
    });
    assert.ok(
      errors.some((msg) => msg.includes("sidecar-1") && msg.includes("3")),
      errors.join("\n"),
    );
  });

  test("--ready-timeout ends the wait with an error naming the containers that are not ready", async () => {
    api.setPod(notReady());
    const errors = await failedWait(["--ready-timeout", "300ms"]);
    assert.ok(
      errors.some((msg) => /ready-timeout/.test(msg) && msg.includes("sidecar-1")),
      errors.join("\n"),
    );
  });

  test("an API error that persists until --ready-timeout ends the wait, after the log named the RBAC fix", async () => {
    const forbidding = await startFakeApiServer({ pod: ready() });
    forbidding.fail(...Array.from({ length: 20 }, () => ({ status: 403, body: FORBIDDEN })));
    const errors = await failedWait(["--ready-timeout", "300ms"], undefined, forbidding).finally(() =>
      forbidding.close(),
    );
    assert.ok(
      errors.some((msg) => msg.includes(`verbs: ["list", "watch"]`) && msg.includes(`resources: ["pods"]`)),
      errors.join("\n"),
    );
  });
});

describe("the shutdown step", () => {
  test("proa waits for a sidecar that exits a few hundred ms after its shutdown request, and logs that exit before its own", async (t) => {
    let answeredAt = 0;
    const late = createServer((_, response) => {
      response.end("bye");
      answeredAt = Date.now();
      setTimeout(() => api.setPod(exited()), 400);
    });
    t.after(() => late.close());
    await new Promise<void>((resolve) => late.listen(0, "127.0.0.1", resolve));
    api.setPod(ready());
    proa = startProa(
      [
        "-g",
        `http://127.0.0.1:${(late.address() as { port: number }).port}/quitquitquit`,
        "--",
        NODE,
        "-e",
        "process.exit(3)",
      ],
      { ...api.env(), PROA_CONTAINER: "main" },
    );
    const { code } = await proa.exit;
    const exitedAt = Date.now();
    assert.equal(code, 3, proa.stderr());
    assert.ok(
      exitedAt - answeredAt >= 400,
      `proa exited ${exitedAt - answeredAt} ms after the request, before the sidecar did`,
    );
    const messages = proa.logs.map((record) => record.msg);
    const sidecarExit = messages.findIndex((msg) => /^sidecar-1 exited with 0/.test(msg));
    assert.ok(sidecarExit !== -1 && sidecarExit < messages.indexOf("exiting"), proa.stderr());
  });

  test("without a way to stop the sidecars, proa waits for them as long as the Pod's own grace period, not the default 30 s", async () => {
    const pod = podWith({ sidecars: ["sidecar-1"], ready: true });
    api.setPod({ ...pod, spec: { ...pod.spec, terminationGracePeriodSeconds: 1 } });
    const started = Date.now();
    proa = startProa(["--", NODE, "-e", "process.exit(0)"], { ...api.env(), PROA_CONTAINER: "main" });
    assert.equal((await proa.exit).code, 0, proa.stderr());
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1000 && elapsed < 10_000, `proa exited after ${elapsed} ms; the Pod's grace period is 1 s`);
    assert.ok(
      proa.logs.some((record) => record.level === "warn" && record.msg.includes("sidecar-1")),
      proa.stderr(),
    );
  });
});

describe("the shutdown step, with the Pod read through the API", () => {
  test("waits until the Pod shows the sidecar exited, within the budget the Pod's grace period sets", async () => {
    const pod = ready();
    pod.spec = { ...pod.spec, terminationGracePeriodSeconds: 7 };
    api.setPod(pod);
    const run = await runProa(["--", NODE, "-e", "process.exit(0)"]);
    assert.equal((await run.exit).code, 0, run.stderr());
    const budgetMs = Number(run.logs.find((record) => record.msg === "shutting the sidecars down")?.budgetMs);
    assert.ok(budgetMs > 6900 && budgetMs <= 7000, `budget ${budgetMs} ms, not the Pod's 7 s`);
    assert.ok(
      run.logs.some((record) => record.msg === "sidecar-1 exited with 0; all sidecars have exited"),
      run.stderr(),
    );
  });
});

describe("secrets", () => {
  test("nothing proa logs contains the token or an Authorization header, even at debug level through a token rotation", async () => {
    api.setPod(ready());
    const oldToken = api.token;
    api.fail({ on: "list", status: 401, body: UNAUTHORIZED });
    api.rotateToken("rotated-token-0123456789abcdef");
    const run = startProa(["-g", await endpoint.url, "--", NODE, "-e", "process.exit(0)"], {
      ...api.env(),
      PROA_CONTAINER: "main",
      PROA_LOG: "debug",
    });
    assert.equal((await run.exit).code, 0, run.stderr());
    assert.ok(
      run.logs.some((record) => record.level === "debug"),
      "debug lines were written",
    );
    for (const secret of [oldToken, api.token, "Bearer", "authorization"])
      assert.ok(!run.stderr().toLowerCase().includes(secret.toLowerCase()), `the log contains ${secret}`);
  });
});

describe("the environment that Node.js itself reads", () => {
  test("NODE_TLS_REJECT_UNAUTHORIZED=0 does not make proa trust another CA: no request, and a warning that it is ignored", async () => {
    const untrusted = await startFakeApiServer({ pod: ready(), ca: OTHER_CA });
    try {
      proa = startProa(["--ready-timeout", "300ms", "--", NODE, "-e", "process.exit(0)"], {
        ...untrusted.env(),
        PROA_CONTAINER: "main",
        NODE_TLS_REJECT_UNAUTHORIZED: "0",
      });
      assert.equal((await proa.exit).code, 1, proa.stderr());
      assert.equal(untrusted.requests.length, 0, "the token was sent to a server proa must not trust");
      assert.ok(
        proa.logs.some(
          (record) => record.level === "warn" && /NODE_TLS_REJECT_UNAUTHORIZED .*ignores it/.test(record.msg),
        ),
        proa.stderr(),
      );
    } finally {
      await untrusted.close();
    }
  });

  test("NODE_DEBUG=http,https,net,tls prints no token, and proa warns that NODE_DEBUG is set", async () => {
    api.setPod(ready());
    api.fail({ on: "list", status: 401, body: UNAUTHORIZED }); // a second request, with the token read again
    proa = startProa(["-g", await endpoint.url, "--", NODE, "-e", "process.exit(0)"], {
      ...api.env(),
      PROA_CONTAINER: "main",
      NODE_DEBUG: "http,https,net,tls",
    });
    assert.equal((await proa.exit).code, 0, proa.stderr());
    assert.match(proa.stderr(), /HTTP \d+: /, "Node's debug output was written");
    assert.ok(!proa.stderr().includes(api.token), "the token is in stderr");
    assert.ok(
      proa.logs.some((record) => record.level === "warn" && /NODE_DEBUG/.test(record.msg)),
      proa.stderr(),
    );
  });

  test("NODE_OPTIONS is named in a warning at start, for an auditor reading the log", async () => {
    api.setPod(ready());
    proa = startProa(["-g", await endpoint.url, "--", NODE, "-e", "process.exit(0)"], {
      ...api.env(),
      PROA_CONTAINER: "main",
      NODE_OPTIONS: "--max-old-space-size=200",
    });
    assert.equal((await proa.exit).code, 0, proa.stderr());
    const warnings = proa.logs.filter((record) => record.level === "warn").map((record) => record.msg);
    assert.ok(
      warnings.some((msg) => /NODE_OPTIONS/.test(msg)),
      proa.stderr(),
    );
    assert.ok(!warnings.some((msg) => /NODE_DEBUG|NODE_TLS/.test(msg)), "only the variables that are set are named");
  });

  for (const [variable, value] of [
    ["POD_NAMESPACE", ".."],
    ["POD_NAME", "proa-demo/../../x"],
    ["POD_NAME", "Proa_Demo"],
  ] as const) {
    test(`${variable}=${value} is refused before any request, and the program never runs`, async () => {
      const before = api.requests.length;
      proa = startProa(["-g", await endpoint.url, "--ready-timeout", "2s", "--", NODE, "-e", "process.exit(0)"], {
        ...api.env(),
        PROA_CONTAINER: "main",
        [variable]: value,
      });
      assert.equal((await proa.exit).code, 1, proa.stderr());
      assert.equal(api.requests.length, before, "a request was sent");
      assert.ok(
        proa.logs.some(
          (record) => record.level === "error" && record.msg.includes(variable) && !record.msg.includes("stack"),
        ),
        proa.stderr(),
      );
      assert.ok(!proa.logs.some((record) => record.msg === "program started"));
    });
  }
});

describe("as PID 1", () => {
  const canUnshare = spawnSync("unshare", ["--pid", "--fork", "--mount-proc", "true"]).status === 0;

  test(
    "proa as PID 1 passes SIGTERM to the program and exits with its status",
    { skip: !canUnshare && "needs root for unshare --pid" },
    async () => {
      api.setPod(ready());
      const unshare = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", NODE, BUNDLE];
      proa = await runProa(["--", NODE, SIGNAL_REPORTER, "9"], unshare);
      await proa.waitForStdout("ready");
      // unshare forks proa and waits for it: signal proa itself, unshare's only child, PID 1 in its own namespace.
      const proaPid = Number(readFileSync(`/proc/${proa.child.pid}/task/${proa.child.pid}/children`, "utf8").trim());
      assert.match(readFileSync(`/proc/${proaPid}/status`, "utf8"), /^NSpid:\s+\d+\s+1$/m);
      process.kill(proaPid, "SIGTERM");
      assert.equal((await proa.exit).code, 9);
      assert.deepEqual(proa.stdout, ["ready", "SIGTERM"]);
    },
  );
});

describe("Jobs, restarts and deletion", () => {
  const summary = (run: ProaProcess) =>
    run.logs.find((record) => record.msg === "summary") as
      { shutdown?: { plan?: { reason?: string }; wait?: unknown } } | undefined;

  test("only native sidecars and no shutdown option: the log and the summary say the kubelet stops them, claim no wait, and proa exits at once", async () => {
    api.setPod(podWith({ sidecars: [], nativeSidecars: ["sidecar-1"], ready: true }));
    const run = (proa = startProa(["--", NODE, "-e", "process.exit(0)"], { ...api.env(), PROA_CONTAINER: "main" }));
    assert.equal((await run.exit).code, 0, run.stderr());
    const native =
      "the Pod's only sidecars are native: the kubelet stops them once proa's container has exited, so proa does not wait for them";
    assert.ok(
      run.logs.some((record) => record.msg === `${native}; proa sends no shutdown request`),
      run.stderr(),
    );
    assert.ok(!run.logs.some((record) => /no way to stop|can only wait/.test(record.msg)), run.stderr());
    const shutdown = (summary(run) as { shutdown?: { plan?: object; wait?: object; exits?: unknown[] } }).shutdown;
    assert.deepEqual(shutdown?.plan, { shutDown: true, waitForExit: false, reason: native });
    assert.deepEqual(shutdown?.wait, { outcome: "not watched", stillRunning: [] });
    assert.deepEqual(shutdown?.exits, []);
  });

  test("OnFailure and a failed program: proa sends no shutdown request, says the sidecars are left running, and exits with the program's status", async () => {
    api.setPod(podWith({ sidecars: ["sidecar-1"], ready: true, restartPolicy: "OnFailure" }));
    const run = await runProa(["--", NODE, "-e", "process.exit(3)"]);
    assert.equal((await run.exit).code, 3);
    assert.deepEqual(endpoint.received, []);
    assert.equal(
      summary(run)?.shutdown?.plan?.reason,
      "sidecars left running for the restart (restartPolicy OnFailure)",
      run.stderr(),
    );
  });

  test("OnFailure and a program that succeeded: the sidecars are shut down as under Never", async () => {
    api.setPod(podWith({ sidecars: ["sidecar-1"], ready: true, restartPolicy: "OnFailure" }));
    const run = await runProa(["--", NODE, "-e", "process.exit(0)"]);
    assert.equal((await run.exit).code, 0);
    assert.deepEqual(endpoint.received, ["GET /quitquitquit"]);
    assert.match(summary(run)?.shutdown?.plan?.reason ?? "", /^restartPolicy OnFailure and the program succeeded/);
  });

  test("SIGTERM on a Pod being deleted: the program gets it, the sidecar its request, and proa exits with the program's status without waiting for exits", async () => {
    api.setPod(ready());
    const run = await runProa(["--", NODE, SIGNAL_REPORTER, "0"]);
    await run.waitForStdout("ready");
    const deleting = ready(); // the kubelet shows no container status change while it stops them
    deleting.metadata = {
      ...deleting.metadata,
      deletionTimestamp: new Date(Date.now() + 30_000).toISOString(),
      deletionGracePeriodSeconds: 30,
    };
    api.setPod(deleting);
    run.child.kill("SIGTERM");
    assert.equal((await run.exit).code, 0);
    assert.deepEqual(run.stdout, ["ready", "SIGTERM"]);
    assert.deepEqual(endpoint.received, ["GET /quitquitquit"]);
    assert.equal(
      summary(run)?.shutdown?.plan?.reason,
      "the Pod is being deleted: the kubelet stops the sidecars",
      run.stderr(),
    );
    assert.deepEqual(summary(run)?.shutdown?.wait, { outcome: "not watched", stillRunning: [] });
  });

  test("a sidecar that exited 0 under OnFailure fails the wait at once, naming it, and is not asked to stop again", async () => {
    api.setPod(
      podWith({ sidecars: ["sidecar-1"], restartPolicy: "OnFailure", terminated: { "sidecar-1": { exitCode: 0 } } }),
    );
    const run = await runProa(["--", NODE, "-e", "process.exit(0)"]);
    assert.equal((await run.exit).code, 1);
    const error = run.logs.find((record) => record.level === "error");
    assert.match(
      error?.msg ?? "",
      /^container sidecar-1 terminated with exit code 0 \(Completed\) before it was ready, and the Pod's restartPolicy is OnFailure, so it will not be restarted$/,
      run.stderr(),
    );
    assert.deepEqual(endpoint.received, []);
  });
});
