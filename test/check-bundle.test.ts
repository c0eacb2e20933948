// proa --check as a black box: the bundle as a real process against the fake API server over HTTPS, a TCP server
// standing in for a shutdown endpoint, and real files for the program. What it must never do is checked as closely as
// what it reports: no program run, no shutdown request (a connection, no byte), no signal, nothing but a list and a watch.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  FORBIDDEN,
  OTHER_CA,
  podWith,
  startFakeApiServer,
  UNAUTHORIZED,
  type FakeApiServer,
} from "./fake-apiserver.ts";
import { BUNDLE, startProa } from "./helpers/proa-process.ts";
import { startTcpCounter, type TcpCounter } from "./helpers/tcp-counter.ts";

const scratch = mkdtempSync(join(tmpdir(), "proa-check-"));
const RECORDER = fileURLToPath(new URL("./helpers/record-io.cjs", import.meta.url));
const pod = () => podWith({ sidecars: ["sidecar-1", "sidecar-2"], ready: { "sidecar-1": true } });
const VERDICT_OR_YAML = /^(ok |warn|FAIL|       )/;
const unshareMount =
  spawnSync("unshare", ["--mount", "true"]).status === 0 ? false : "needs `unshare --mount` (root or user namespaces)";

let api: FakeApiServer;
let endpoint: TcpCounter;
before(async () => {
  api = await startFakeApiServer({ pod: pod() });
  endpoint = await startTcpCounter();
});
after(async () => {
  await endpoint.close();
  await api.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** Runs `proa --check ARGS` in the fake Pod as container main; resolves with its exit status, report and log. */
function check(
  args: string[],
  env: Record<string, string> = {},
  server: FakeApiServer = api,
  nodeWritesStderr = false,
  command?: string[],
) {
  return checkWith({ ...server.env(), PROA_CONTAINER: "main", ...env }, args, nodeWritesStderr, command);
}

/** Runs `proa --check ARGS` with exactly this environment (and PATH). */
async function checkWith(env: Record<string, string>, args: string[], nodeWritesStderr = false, command?: string[]) {
  const proa = startProa(["--check", ...args], env, command);
  const timer = setTimeout(() => proa.child.kill("SIGKILL"), 20_000); // a hang fails, never blocks the suite
  const { code } = await proa.exit.finally(() => clearTimeout(timer));
  const report = proa.stdout;
  assert.deepEqual(
    report.filter((line) => !VERDICT_OR_YAML.test(line)),
    [],
    "every stdout line is a verdict line or indented YAML",
  );
  if (!nodeWritesStderr)
    assert.deepEqual(
      proa.logs.filter((r) => r.level === "NOT JSON"),
      [],
      "stderr is JSON lines",
    );
  const line = (pattern: RegExp) => {
    const found = report.filter((l) => pattern.test(l));
    assert.equal(found.length, 1, `expected one report line matching ${pattern}:\n${report.join("\n")}`);
    return found[0]!;
  };
  return { code, report, text: report.join("\n"), line, stderr: proa.stderr() };
}

describe("proa --check against a fake API server", { timeout: 60_000 }, () => {
  test("a working setup: exit 0; it names proa's container, both sidecars, the shutdown URL's host:port; nothing is run or sent", async () => {
    const marker = join(scratch, "ran");
    const requestsBefore = api.requests.length;
    const connectionsBefore = endpoint.connections;
    const url = endpoint.url("/quitquitquit");
    const r = await check([
      "--shutdown-http-post",
      url,
      "--",
      process.execPath,
      "-e",
      `require("fs").writeFileSync(${JSON.stringify(marker)}, "ran")`,
    ]);
    assert.equal(r.code, 0, r.text);
    assert.match(r.line(/own container/), /^ok +proa's own container is main \(--container\)$/);
    assert.match(r.line(/container sidecar-1/), /^ok +container sidecar-1: ready; it has a readinessProbe$/);
    assert.match(
      r.line(/container sidecar-2/),
      /^ok +container sidecar-2: not ready yet \(running\); it has a readinessProbe$/,
    );
    assert.match(
      r.line(/^\w+ +shutdown POST/),
      new RegExp(
        `^ok +shutdown POST ${url}: something accepts TCP connections at ${endpoint.hostPort} \\(connected and closed, no request sent\\)$`,
      ),
    );
    assert.match(r.line(/^ok +program /), new RegExp(`is ${process.execPath}, executable`));
    assert.match(r.line(/may list and watch/), /^ok /);

    assert.equal(existsSync(marker), false, "the program never runs");
    await endpoint.settled(connectionsBefore + 1);
    assert.equal(endpoint.connections - connectionsBefore, 1, "one connection to the shutdown endpoint");
    assert.equal(endpoint.bytes, 0, "and not one byte sent on it");
    const all = api.requests.slice(requestsBefore);
    assert.equal(all.filter((q) => q.url === "/version").length, 1, "one GET /version, for the could-be-native line");
    const requests = all.filter((q) => q.url !== "/version");
    assert.deepEqual(
      all.map((q) => q.method),
      ["GET", "GET", "GET"],
      "a list, a watch and /version, nothing else",
    );
    assert.match(requests[0]!.url, /^\/api\/v1\/namespaces\/proa-e2e\/pods\?fieldSelector=metadata\.name%3Dproa-demo$/);
    const listed = api.pod()!.metadata!.resourceVersion!; // no bookmarks here: the list's resourceVersion is the Pod's
    assert.match(
      requests[1]!.url,
      new RegExp(`&watch=1&resourceVersion=${listed}&allowWatchBookmarks=true&timeoutSeconds=1$`),
      "the watch starts from the list's resourceVersion",
    );
    assert.ok(requests.every((q) => q.authorized && q.userAgent?.startsWith("proa/")));
  });

  test("without a program after --, the check runs and skips only the program's line", async () => {
    const r = await check(["-p", endpoint.url("/quit")]);
    assert.equal(r.code, 0, r.text);
    assert.ok(!r.report.some((l) => /^\S+ +program /.test(l)));
  });

  test("a refused shutdown port: a warning while sidecar-2 is not ready, a FAIL once every sidecar is", async () => {
    const closed = await startTcpCounter();
    const url = closed.url("/quit");
    await closed.close();
    const early = await check(["-p", url]);
    assert.equal(early.code, 0, early.text);
    assert.match(
      early.line(/shutdown POST/),
      new RegExp(
        `^warn shutdown POST ${url}: nothing accepts TCP connections at ${closed.hostPort} yet \\(connection refused\\), while sidecar-2 is not ready`,
      ),
    );
    api.setPod(podWith({ sidecars: ["sidecar-1", "sidecar-2"], ready: true }));
    try {
      const late = await check(["-p", url]);
      assert.equal(late.code, 1, late.text);
      assert.match(
        late.line(/shutdown POST/),
        new RegExp(
          `^FAIL shutdown POST ${url}: cannot connect to ${closed.hostPort}: connection refused; fix: check the URL's host and port`,
        ),
      );
    } finally {
      api.setPod(pod());
    }
  });

  test(
    "proa's own container from the kubelet's termination-log mount in /proc/self/mountinfo (in a mount namespace)",
    { skip: unshareMount },
    async () => {
      // Laid out as the kubelet's bind mount of a container's termination log: .../pods/<Pod uid>/containers/<name>/<id>.
      const source = join(scratch, "kubelet", "pods", api.pod()!.metadata!.uid!, "containers", "sidecar-1", "4c7f0e21");
      mkdirSync(dirname(source), { recursive: true });
      writeFileSync(source, "");
      const target = join(scratch, "termination-log");
      writeFileSync(target, "");
      const inNamespace = [
        "unshare",
        "--mount",
        "sh",
        "-c",
        'mount --bind "$1" "$2" && shift 2 && exec "$@"',
        "sh",
        source,
        target,
        process.execPath,
        BUNDLE,
      ];
      const r = await check(["-p", endpoint.url("/q")], { PROA_CONTAINER: "" }, api, false, inNamespace);
      assert.match(
        r.line(/own container/),
        /^ok +proa's own container is sidecar-1 \(the termination log mount in \/proc\/self\/mountinfo\)$/,
      );
      assert.deepEqual(
        r.report.filter((l) => / container (main|sidecar-\d):/.test(l)).map((l) => /container (\S+):/.exec(l)![1]),
        ["main", "sidecar-2"],
      );
    },
  );

  test("bad usage is still exit 2, with the usage error on stderr and no report", async () => {
    const r = await check(["--shutdown-timeout", "soon"]);
    assert.equal(r.code, 2);
    assert.deepEqual(r.report, []);
    assert.match(r.stderr, /--shutdown-timeout needs a duration/);
  });

  test("403 to the list and the watch: a FAIL for each naming the user, the Role and RoleBinding to apply, exit 1", async () => {
    const watchForbidden = {
      ...FORBIDDEN,
      message: (FORBIDDEN as { message: string }).message.replace("cannot list", "cannot watch"),
    };
    api.fail({ on: "list", status: 403, body: FORBIDDEN }, { on: "watch", status: 403, body: watchForbidden });
    const r = await check(["-p", endpoint.url("/quit")]);
    assert.equal(r.code, 1, r.text);
    assert.match(
      r.line(/^\w+ +listing Pod/),
      /^FAIL listing Pod proa-e2e\/proa-demo at .* failed: HTTP 403: .*User "system:serviceaccount:proa-e2e:proa-nobody" cannot list/,
    );
    assert.match(
      r.line(/^\w+ +watching Pod/),
      /^FAIL watching Pod .*cannot watch resource "pods".*; fix: apply this Role and RoleBinding \(kubectl apply -n proa-e2e -f -\)$/,
    );
    assert.ok(
      r.report.includes(`       rules: [{apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"]}]`),
      r.text,
    );
    assert.ok(
      r.report.includes("       subjects: [{kind: ServiceAccount, name: proa-nobody, namespace: proa-e2e}]"),
      r.text,
    );
    assert.match(r.line(/^warn +not checked/), /the Pod could not be read/);
  });

  test("a hostile 403: a 60 KB message with newlines, fake report lines and a bearer token is capped, flattened and masked", async () => {
    const message = `no\nFAIL forged line\r\nok forged\u001b[2J Authorization: Bearer eyJforged.token.value ${"A".repeat(60_000)}`;
    api.fail(
      { on: "list", status: 403, body: { ...FORBIDDEN, message } },
      { on: "watch", status: 403, body: "plain\ntext\n".repeat(1000) },
    );
    const r = await check([]);
    assert.equal(r.code, 1);
    assert.ok(r.text.length < 8000, `the report is ${r.text.length} characters`);
    assert.ok(!r.text.includes("eyJforged"), "the token in the answer is masked");
    assert.ok(!r.text.includes("\u001b"), "no control characters reach the terminal");
    assert.ok(!r.report.some((l) => /^(FAIL|ok) +(forged|forged line)/.test(l)));
  });

  test("an answer longer than kube.ts reads (64 KiB) is a FAIL that says so, not a crash", async () => {
    api.fail({ on: "list", status: 403, body: { ...FORBIDDEN, message: "x".repeat(100_000) } });
    const r = await check([]);
    assert.equal(r.code, 1);
    assert.match(r.line(/listing Pod/), /^FAIL .*longer than 65536 bytes$/);
  });

  test("401: FAIL, the token refused", async () => {
    api.fail(
      { on: "list", status: 401, body: UNAUTHORIZED },
      { on: "list", status: 401, body: UNAUTHORIZED },
      { on: "watch", status: 401, body: UNAUTHORIZED },
      { on: "watch", status: 401, body: UNAUTHORIZED },
    );
    const r = await check([]);
    assert.equal(r.code, 1);
    assert.match(
      r.line(/HTTP 401/),
      /^FAIL listing Pod .* failed: HTTP 401: Unauthorized; the token at .* was re-read and still refused/,
    );
  });

  test("NODE_DEBUG for every module that could print the token: a warning that proa keeps it out, and it is in neither the report nor stderr", async () => {
    const r = await check(["-p", endpoint.url("/q")], { NODE_DEBUG: "http,https,net,tls,http2" }, api, true);
    assert.equal(r.code, 0, r.text);
    assert.match(r.line(/NODE_DEBUG/), /^warn NODE_DEBUG is set: .*\(proa keeps the token out of it\)/);
    assert.match(r.stderr, /HTTPS|HTTP|TLS|NET/, "Node.js did write its debugging to stderr");
    assert.ok(
      !r.text.includes(api.token) && !r.stderr.includes(api.token),
      "the token is neither in the report nor on stderr",
    );
  });

  test("a CA that did not sign the API server's certificate: TLS FAIL, exit 1, no request reached the server", async () => {
    const other = await startFakeApiServer({ pod: pod(), ca: OTHER_CA });
    try {
      const r = await check([], {}, other);
      assert.equal(r.code, 1);
      assert.match(
        r.line(/^FAIL TLS/),
        /^FAIL TLS: listing Pod .* failed: .*certificate.*; fix: mount the cluster's own CA as ca\.crt/,
      );
      assert.deepEqual(other.requests, [], "no request reached the server: TLS failed first");
    } finally {
      await other.close();
    }
  });

  test("NODE_TLS_REJECT_UNAUTHORIZED=0 is a warning that proa ignores it, and true: with a CA that did not sign the server's certificate, TLS still fails", async () => {
    const other = await startFakeApiServer({ pod: pod(), ca: OTHER_CA });
    try {
      const r = await check([], { NODE_TLS_REJECT_UNAUTHORIZED: "0" }, other, true);
      assert.equal(r.code, 1);
      assert.match(
        r.line(/NODE_TLS_REJECT_UNAUTHORIZED/),
        /^warn NODE_TLS_REJECT_UNAUTHORIZED is set: proa ignores it/,
      );
      assert.match(r.line(/^\w+ +TLS/), /^FAIL TLS: /);
      assert.deepEqual(other.requests, [], "no request reached the server");
    } finally {
      await other.close();
    }
  });

  test("a list that holds another Pod: by the run's own rule it is not taken for this one, a warning says so, and there is no Pod", async () => {
    const other = podWith({ sidecars: ["sidecar-1"], name: "someone-else" });
    api.fail({
      on: "list",
      chunks: [
        JSON.stringify({ kind: "PodList", apiVersion: "v1", metadata: { resourceVersion: "7" }, items: [other] }),
      ],
      end: "clean",
    });
    const r = await check(["-p", endpoint.url("/q")]);
    assert.equal(r.code, 1, r.text);
    assert.match(
      r.line(/someone-else/),
      /^warn the API server sent Pod proa-e2e\/someone-else when asked for proa-e2e\/proa-demo: ignoring it/,
    );
    assert.match(r.line(/there is no Pod/), /^FAIL there is no Pod proa-e2e\/proa-demo \(its name from POD_NAME\)/);
    assert.ok(!r.report.some((l) => /own container|sidecar-1/.test(l)), r.text);
  });

  test("it writes nothing, and connects only to the API server and the shutdown URL's host and port (recorded by a preload)", async () => {
    const record = join(scratch, "io.jsonl");
    writeFileSync(record, "");
    const r = await check(["-p", endpoint.url("/q"), "--", "node"], { PROA_TEST_IO_RECORD: record }, api, false, [
      process.execPath,
      "--require",
      RECORDER,
      BUNDLE,
    ]);
    assert.equal(r.code, 0, r.text);
    const io = readFileSync(record, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { kind: string; target: string });
    assert.deepEqual(
      io.filter((e) => e.kind === "write"),
      [],
    );
    assert.deepEqual(
      [...new Set(io.filter((e) => e.kind === "connect").map((e) => e.target))].sort(),
      [`${api.host}:${api.port}`, endpoint.hostPort].sort(),
    );
  });

  test("a POD_NAME that names no Pod: FAIL with the rule and the downward API, exit 1", async () => {
    const r = await check([], { POD_NAME: "no-such-pod" });
    assert.equal(r.code, 1);
    assert.match(
      r.line(/there is no Pod/),
      /^FAIL there is no Pod proa-e2e\/no-such-pod \(its name from POD_NAME\); fix: .*fieldPath: metadata\.name/,
    );
  });

  test("outside a Pod: FAIL naming the missing variables, exit 1, no stack trace", async () => {
    const r = await check([], { KUBERNETES_SERVICE_HOST: "" });
    assert.equal(r.code, 1);
    assert.match(
      r.line(/KUBERNETES_SERVICE_HOST/),
      /^FAIL KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set/,
    );
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test("the program: 127 when missing, 126 when not executable or a directory, 127 when its #! interpreter is missing", async () => {
    const plain = join(scratch, "plain.sh");
    writeFileSync(plain, "#!/bin/sh\ntrue\n");
    chmodSync(plain, 0o644);
    const orphan = join(scratch, "orphan.sh");
    writeFileSync(orphan, "#!/no/such/interpreter\ntrue\n");
    chmodSync(orphan, 0o755);
    const good = join(scratch, "good.sh");
    writeFileSync(good, "#!/bin/sh\ntouch ran\n");
    chmodSync(good, 0o755);
    const cases: [string[], Record<string, string>, RegExp][] = [
      [["no-such-program-x"], {}, /^FAIL program no-such-program-x is not on PATH .*a run would exit 127/],
      [[plain], {}, /^FAIL .*has no execute permission: a run would exit 126/],
      [[scratch], {}, /^FAIL .*is a directory: a run would exit 126/],
      [[orphan], {}, /^FAIL .*#! line names \/no\/such\/interpreter, which is not in the image: a run would exit 127/],
      [
        ["good.sh"],
        { PATH: `/nonexistent:${scratch}` },
        new RegExp(`^ok +program good\\.sh is ${scratch}/good\\.sh, executable`),
      ],
    ];
    for (const [program, env, expected] of cases) {
      const r = await check(["-p", endpoint.url("/q"), "--", ...program], env);
      assert.match(r.line(/^\S+ +program /), expected);
      assert.equal(r.code, expected.source.startsWith("^FAIL") ? 1 : 0, r.text);
    }
    assert.equal(existsSync(join(process.cwd(), "ran")), false);
  });

  test("the termination message: the Pod spec's path for proa's container, there and empty; a file already written is a warning; off with --no-termination-message", async () => {
    const terminationLog = join(scratch, "api-termination-log");
    writeFileSync(terminationLog, "");
    const withLog = pod();
    withLog.spec!.containers!.find((c) => c.name === "main")!.terminationMessagePath = terminationLog;
    api.setPod(withLog);
    try {
      const empty = await check(["-p", endpoint.url("/q")]);
      assert.equal(
        empty.line(/termination message/),
        `ok   a run writes its summary to the termination message file ${terminationLog} (from the Pod spec), which exists and is empty`,
      );
      writeFileSync(terminationLog, "written");
      const written = await check(["-p", endpoint.url("/q")]);
      assert.match(
        written.line(/termination message/),
        /^warn the termination message file .* \(from the Pod spec\) holds 7 bytes already: a run leaves it as it is/,
      );
      assert.equal(readFileSync(terminationLog, "utf8"), "written", "the check leaves it as it is");
      const off = await check(["-p", endpoint.url("/q"), "--no-termination-message"]);
      assert.equal(
        off.line(/termination message/),
        "ok   the termination message is off (--no-termination-message): a run writes no summary",
      );
    } finally {
      api.setPod(pod());
    }
  });

  test("--kill: FAIL without shareProcessNamespace, and the process it names is not signalled", async () => {
    const sleeper = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      const r = await check(["--kill", "sleep"], { PROA_KILL_SCOPE: "visible" }); // this machine is no Pod
      assert.equal(r.code, 1);
      assert.match(
        r.line(/shareProcessNamespace/),
        /^FAIL --kill sleep: the Pod spec does not set shareProcessNamespace: true/,
      );
      assert.match(r.line(/--kill sleep would/), new RegExp(`sleep \\(${sleeper.pid}, by executable\\)`));
      assert.equal(sleeper.exitCode, null);
      assert.equal(sleeper.signalCode, null, "the check sends no signal");
    } finally {
      sleeper.kill("SIGKILL");
    }
  });
});

describe(
  "proa --check --ready-url in a Pod with no API access: no service account, no KUBERNETES_* variable",
  { timeout: 60_000 },
  () => {
    // A sidecar's admin port: ready, still starting, or wrong at other paths; it records every request it gets.
    const requests: { method: string; url: string; userAgent: string }[] = [];
    let connections = 0;
    const sidecar = createServer((request, response) => {
      requests.push({
        method: request.method ?? "",
        url: request.url ?? "",
        userAgent: String(request.headers["user-agent"]),
      });
      response.statusCode = ({ "/ready": 200, "/starting": 503 } as Record<string, number>)[request.url ?? ""] ?? 404;
      response.end(response.statusCode === 503 ? "starting" : "");
    });
    sidecar.on("connection", () => connections++);
    let base: string;
    before(async () => {
      await new Promise<void>((resolve) => sidecar.listen(0, "127.0.0.1", resolve));
      base = `http://127.0.0.1:${(sidecar.address() as { port: number }).port}`;
    });
    after(() => {
      sidecar.close();
      sidecar.closeAllConnections();
    });
    const NO_API = {}; // no KUBERNETES_*, POD_*, PROA_SERVICE_ACCOUNT_DIR: the default service account directory does not exist here either

    test("a ready URL answering 200 and one answering 503: ok and warn, exit 0; the shutdown endpoint is connected to and gets no request", async () => {
      requests.length = 0;
      const connectionsBefore = connections;
      const r = await checkWith(NO_API, [
        "--ready-url",
        `${base}/ready`,
        "--ready-url",
        `${base}/starting`,
        "-p",
        `${base}/quitquitquit`,
        "--ready-timeout",
        "5m",
      ]);
      assert.equal(r.code, 0, r.text);
      const order = [
        /^ok +the Kubernetes API is not used with --ready-url/,
        /^ok +Node\.js/,
        /^ok +ready URL .*\/ready: HTTP 200, ready$/,
        /^warn ready URL .*\/starting: HTTP 503, not ready yet: starting; fix: /,
        /^ok +the wait for the ready URLs ends after --ready-timeout \(300 s\)$/,
        /^ok +with --ready-url a run watches nothing while the program runs/,
        /^ok +shutdown POST .*\/quitquitquit: something accepts TCP connections/,
        /^ok +shutdown budget 30 s, from the default, as with --ready-url/,
        /^warn the termination message file/,
      ];
      assert.deepEqual(
        r.report.map((line) => order.findIndex((re) => re.test(line))),
        order.map((_, i) => i),
        r.text,
      );
      assert.equal(r.line(/ready URL .*\/ready:/), `ok   ready URL ${base}/ready: HTTP 200, ready`);
      assert.deepEqual(
        requests.map((q) => `${q.method} ${q.url}`).sort(),
        ["GET /ready", "GET /starting"],
        "one GET per ready URL, and nothing to the shutdown URL",
      );
      assert.ok(requests.every((q) => q.userAgent.startsWith("proa/")));
      // The accept may lag proa's exit: wait for the third connection, then check no fourth came.
      for (const until = Date.now() + 5000; connections - connectionsBefore < 3 && Date.now() < until;)
        await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(connections - connectionsBefore, 3, "a connection per GET, and the shutdown port's connect");
    });

    test("a ready URL that accepts and never answers: a warning after the run's own 1 s per request, exit 0", async () => {
      const silent = await startTcpCounter();
      try {
        const r = await checkWith(NO_API, ["--ready-url", silent.url("/ready")]);
        assert.equal(r.code, 0, r.text);
        assert.match(
          r.line(/^\w+ +ready URL /),
          new RegExp(
            `^warn ready URL ${silent.url("/ready")}: no answer within 1000 ms: timed out waiting for the response headers; fix: .*check that ${silent.hostPort} is the sidecar's HTTP readiness port$`,
          ),
        );
      } finally {
        await silent.close();
      }
    });

    test("a ready URL answering 404: FAIL naming it, exit 1", async () => {
      const r = await checkWith(NO_API, ["--ready-url", `${base}/healthz/readyz`, "--ready-url", `${base}/ready`]);
      assert.equal(r.code, 1, r.text);
      assert.equal(
        r.line(/readyz/),
        `FAIL ready URL ${base}/healthz/readyz: HTTP 404, nothing is served at that path, so a run would wait until --ready-timeout; fix: check the path against the sidecar's readiness endpoint`,
      );
      assert.match(r.line(/^\w+ +ready URL .*\/ready:/), /^ok /);
    });

    test("nothing read: no file, no KUBERNETES_*, POD_* or service-account variable; the termination log stat'ed, not opened; connects only to the sidecar", async () => {
      const record = join(scratch, "ready-url-io.jsonl");
      writeFileSync(record, "");
      const terminationLog = join(scratch, "ready-url-termination-log");
      writeFileSync(terminationLog, "");
      const r = await checkWith(
        { PROA_TEST_IO_RECORD: record, PROA_TERMINATION_MESSAGE_PATH: terminationLog },
        ["--ready-url", `${base}/ready`, "-p", `${base}/quitquitquit`],
        false,
        [process.execPath, "--require", RECORDER, BUNDLE],
      );
      assert.equal(r.code, 0, r.text);
      assert.equal(
        r.line(/termination message/),
        `ok   a run writes its summary to the termination message file ${terminationLog} (from PROA_TERMINATION_MESSAGE_PATH), which exists and is empty`,
      );
      const io = readFileSync(record, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { kind: string; target: string })
        .filter((e) => e.target !== BUNDLE);
      const of = (kind: string) => [...new Set(io.filter((e) => e.kind === kind).map((e) => e.target))].sort();
      assert.deepEqual(of("read"), [], "no service account file, no /proc/self/mountinfo");
      assert.deepEqual(of("write"), []);
      assert.deepEqual(of("stat"), [terminationLog]);
      assert.deepEqual(of("connect"), [new URL(base).host]);
      assert.deepEqual(
        of("env").filter((name) => /^(KUBERNETES_|POD_)/.test(name) || name === "PROA_SERVICE_ACCOUNT_DIR"),
        [],
      );
      assert.ok(of("env").includes("PROA_TERMINATION_MESSAGE_PATH"), of("env").join(", "));
      assert.equal(readFileSync(terminationLog, "utf8"), "");
    });

    test("usage errors unchanged: --container, --wait-for or --ignore with --ready-url is exit 2 with no report", async () => {
      for (const option of [
        ["--container", "main"],
        ["--wait-for", "istio-proxy"],
        ["--ignore", "istio-proxy"],
      ]) {
        const r = await checkWith(NO_API, ["--ready-url", `${base}/ready`, ...option]);
        assert.equal(r.code, 2, option[0]);
        assert.deepEqual(r.report, []);
        assert.match(r.stderr, new RegExp(`${option[0]} cannot be combined with --ready-url`));
      }
    });
  },
);
