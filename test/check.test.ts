// check.ts's judgements, one pure function per check, each shown ok, warn and FAIL over captured Pods and facts as
// gather() records them. The bundle itself, against a fake API server, is in check-bundle.test.ts.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  checkApi,
  checkBudget,
  checkContainers,
  checkEnvironment,
  describeCLibrary,
  checkKill,
  checkCouldBeNative,
  checkKillUnderNever,
  checkNativeSidecars,
  checkOwnContainer,
  checkProgram,
  checkReadyTimeout,
  checkReadyUrl,
  checkRestartPolicy,
  checkShutdownUrls,
  checkSidecarDeaths,
  checkStatus,
  checkTerminationMessage,
  formatReport,
  judge,
  programCandidates,
  rbacYaml,
  type Candidate,
  type Facts,
  type Finding,
  type TerminationLogFacts,
  type Verdict,
} from "../check.ts";
import type { ReadyAnswer } from "../readyurl.ts";
import { KubeError, type Pod, type Probe, type WatchOutcome } from "../kube.ts";
import type { ProcessInfo } from "../shutdown.ts";
import { HELP, parseCommandLine, UsageError } from "../proa.ts";
import { FORBIDDEN, podWith } from "./fake-apiserver.ts";
import { capturedPod, KUBELET_VERSIONS, kubeletPod, withNativeSidecar, withRestartPolicy } from "./fixtures/pods.ts";

const verdicts = (findings: Finding[]) => findings.map((f) => f.verdict);
const only = (findings: Finding[], verdict: Verdict) => findings.filter((f) => f.verdict === verdict);
const one = (findings: Finding[], pattern: RegExp): Finding => {
  const found = findings.filter((f) => pattern.test(f.text));
  assert.equal(found.length, 1, `expected one finding matching ${pattern}, got:\n${formatReport(findings)}`);
  return found[0]!;
};

const CLUSTER = { server: "https://10.96.0.1:443", namespace: "proa-e2e", podName: "proa-demo" };
const ENV = { POD_NAME: "proa-demo" };
const FORBIDDEN_MESSAGE = (FORBIDDEN as { message: string }).message; // User "system:serviceaccount:proa-e2e:proa-nobody" cannot list
/** A failed request as kube.ts words it: "<what> failed: HTTP <code>: <server's message><hint>". */
const failed = (
  verb: "listing" | "watching",
  status: number | undefined,
  message: string,
  cause?: Error,
): WatchOutcome => ({
  kind: "failed",
  at: 0,
  lastedMs: 0,
  error: new KubeError(
    `${verb} Pod proa-e2e/proa-demo at https://10.96.0.1:443 failed: ${status ? `HTTP ${status}: ` : ""}${message}`,
    status,
    undefined,
    { cause },
  ),
});
const listed = (pod: Pod | null): Probe => ({
  list: { kind: "listed", items: pod ? [pod] : [], resourceVersion: "1001" },
  pod,
  watch: ENDED,
});
const ENDED: WatchOutcome = { kind: "ended", lines: 0, lastedMs: 1000 };
const coded = (code: string) => Object.assign(new Error(code), { code });

function withoutProbe(pod: Pod, name: string): Pod {
  const copy = structuredClone(pod);
  for (const c of [...(copy.spec?.containers ?? []), ...(copy.spec?.initContainers ?? [])] as {
    name: string;
    readinessProbe?: unknown;
  }[]) {
    if (c.name === name) delete c.readinessProbe;
  }
  return copy;
}

describe("the report", () => {
  test("one line per finding, starting with its verdict; the fix follows; YAML lines are indented under it", () => {
    const text = formatReport([
      { verdict: "ok", text: "all good" },
      { verdict: "warn", text: "hmm", fix: "do this" },
      { verdict: "FAIL", text: "broken", fix: "apply", more: ["kind: Role", "---"] },
    ]);
    assert.equal(
      text,
      "ok   all good\nwarn hmm; fix: do this\nFAIL broken; fix: apply\n       kind: Role\n       ---\n",
    );
  });

  test("exit status: 1 when any check failed, 0 with warnings or none", () => {
    assert.equal(
      checkStatus([
        { verdict: "ok", text: "" },
        { verdict: "warn", text: "" },
      ]),
      0,
    );
    assert.equal(checkStatus([]), 0);
    assert.equal(
      checkStatus([
        { verdict: "ok", text: "" },
        { verdict: "FAIL", text: "" },
      ]),
      1,
    );
  });
});

describe("the environment", () => {
  const cluster = { ok: true as const, ...CLUSTER, dir: "/sa" };

  test("ok: where the API server, the service account's files and the Pod are, with the rule for each name", () => {
    const findings = checkEnvironment({ env: ENV, nodeVersion: "20.20.2", cluster });
    assert.deepEqual(verdicts(findings), ["ok", "ok"]);
    assert.equal(
      findings[0]!.text,
      "the API server is at https://10.96.0.1:443; the service account's files are in /sa; the Pod is proa-e2e/proa-demo (its name from POD_NAME, its namespace from the service account's namespace file)",
    );
    assert.match(
      checkEnvironment({ env: { POD_NAMESPACE: "proa-e2e" }, nodeVersion: "20.20.2", cluster })[0]!.text,
      /its name from the hostname, its namespace from POD_NAMESPACE/,
    );
  });

  test("FAIL: in-cluster configuration that loadCluster refused, in its words, and a Node.js older than 20", () => {
    const findings = checkEnvironment({
      env: {},
      nodeVersion: "18.19.1",
      cluster: { ok: false, message: 'POD_NAME is not a Pod name (a DNS-1123 subdomain): "Job_Pod"\n; set POD_NAME' },
    });
    assert.deepEqual(verdicts(findings), ["FAIL", "FAIL"]);
    assert.equal(
      findings[0]!.text,
      'POD_NAME is not a Pod name (a DNS-1123 subdomain): "Job_Pod" ; set POD_NAME',
      "quoted: no newline reaches the report",
    );
    assert.match(findings[1]!.text, /^Node\.js 18\.19\.1 is older than 20/);
    assert.equal(checkEnvironment({ env: {}, nodeVersion: "22.0.0", cluster })[1]!.verdict, "ok");
  });

  test("the Node.js line names the node binary and the C library it runs on: the image's, or proa's own folder", () => {
    const runtime = { execPath: "/proa/bin/node", cLibrary: "glibc 2.36 (/proa/lib/libc.so.6)" };
    assert.equal(
      checkEnvironment({ env: {}, nodeVersion: "24.21.0", runtime })[1]!.text,
      "Node.js 24.21.0 (/proa/bin/node), on glibc 2.36 (/proa/lib/libc.so.6)",
    );
    const proaFolder = [
      "linux-vdso.so.1",
      "/proa/lib/libstdc++.so.6",
      "/proa/lib/libc.so.6",
      "/proa/lib/ld-linux-x86-64.so.2",
    ];
    assert.equal(describeCLibrary("2.36", proaFolder), "glibc 2.36 (/proa/lib/libc.so.6)");
    assert.equal(describeCLibrary("2.36", []), "glibc 2.36", "the version alone when no libc.so.6 is listed");
    const alpine = ["/usr/lib/libstdc++.so.6", "/lib/ld-musl-x86_64.so.1"];
    assert.equal(describeCLibrary(undefined, alpine), "musl (/lib/ld-musl-x86_64.so.1)");
    assert.equal(describeCLibrary(undefined, ["/lib/libc.musl-aarch64.so.1"]), "musl (/lib/libc.musl-aarch64.so.1)");
    assert.equal(describeCLibrary(undefined, ["/lib/libc.so.6"]), "a C library Node.js does not name");
  });

  test("warn, not FAIL, for NODE_TLS_REJECT_UNAUTHORIZED, NODE_OPTIONS and NODE_DEBUG: proa neutralises the first and keeps the token out of the last", () => {
    const findings = checkEnvironment({
      env: { NODE_TLS_REJECT_UNAUTHORIZED: "0", NODE_OPTIONS: "--require /x.js", NODE_DEBUG: "http,tls" },
      nodeVersion: "20.1.0",
      cluster,
    });
    assert.deepEqual(verdicts(findings), ["ok", "ok", "warn", "warn", "warn"]);
    assert.match(one(findings, /NODE_TLS_REJECT_UNAUTHORIZED/).text, /proa ignores it and always verifies/);
    assert.match(one(findings, /NODE_DEBUG/).text, /proa keeps the token out of it/);
    assert.match(one(findings, /NODE_OPTIONS/).fix!, /remove it/);
  });
});

describe("the API server: TLS, token, permissions, the Pod", () => {
  const pod = podWith({ sidecars: ["sidecar-1"], ready: true });

  test("ok: TLS verified, token accepted, list and watch allowed, the Pod found", () => {
    const findings = checkApi(ENV, CLUSTER, listed(pod));
    assert.deepEqual(
      findings.map((f) => `${f.verdict} ${f.text}`),
      [
        "ok TLS: https://10.96.0.1:443's certificate verifies against the mounted ca.crt",
        "ok the API server accepts the service account's token",
        "ok the service account may list and watch Pods in namespace proa-e2e (a run's own list and watch)",
        "ok found Pod proa-e2e/proa-demo",
      ],
    );
  });

  test("a watch that delivered an event is allowed; an ERROR event is a warning", () => {
    const event: WatchOutcome = { kind: "event", event: { type: "ADDED", object: pod } };
    assert.deepEqual(only(checkApi(ENV, CLUSTER, { ...listed(pod), watch: event }), "warn"), []);
    const error: WatchOutcome = {
      kind: "event",
      event: { type: "ERROR", object: { code: 500, message: "internal error" } },
    };
    assert.equal(
      one(checkApi(ENV, CLUSTER, { ...listed(pod), watch: error }), /reported an error: internal error/).verdict,
      "warn",
    );
  });

  test("FAIL: 403 to the list and the watch, each in kube.ts's words naming the user; the last with the Role and RoleBinding for that ServiceAccount", () => {
    const findings = checkApi(ENV, CLUSTER, {
      list: failed("listing", 403, FORBIDDEN_MESSAGE),
      watch: failed("watching", 403, FORBIDDEN_MESSAGE.replace("cannot list", "cannot watch")),
    });
    assert.equal(
      one(findings, /accepts the service account's token/).verdict,
      "ok",
      "a 403 means the token was accepted",
    );
    const [list, watch] = only(findings, "FAIL") as [Finding, Finding];
    assert.match(
      list.text,
      /^listing Pod proa-e2e\/proa-demo .*User "system:serviceaccount:proa-e2e:proa-nobody" cannot list/,
    );
    assert.equal(list.more, undefined);
    assert.match(watch.text, /^watching Pod .* cannot watch resource "pods"/);
    assert.equal(watch.fix, "apply this Role and RoleBinding (kubectl apply -n proa-e2e -f -)");
    assert.ok(
      watch.more?.includes("subjects: [{kind: ServiceAccount, name: proa-nobody, namespace: proa-e2e}]"),
      watch.more?.join("\n"),
    );
    assert.ok(
      watch.more?.includes(`rules: [{apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"]}]`),
      "job.yaml's rule",
    );
    assert.equal(checkStatus(findings), 1);
    assert.ok(!findings.some((f) => /may list and watch|found Pod/.test(f.text)));
  });

  test("FAIL: a Role with list but not watch fails the watch only", () => {
    const findings = checkApi(ENV, CLUSTER, {
      ...listed(pod),
      watch: failed("watching", 403, FORBIDDEN_MESSAGE.replace("cannot list", "cannot watch")),
    });
    assert.deepEqual(
      only(findings, "FAIL").map((f) => f.text.split(" ")[0]),
      ["watching"],
    );
    assert.ok(one(findings, /found Pod/));
  });

  test("rbacYaml puts only valid Kubernetes names into the YAML: anything else gets a placeholder or the Pod's namespace", () => {
    const subjects = (message: string, namespace = "ns") =>
      rbacYaml(message, namespace).find((line) => line.startsWith("subjects"));
    assert.equal(
      subjects(`User "system:serviceaccount:ns-1:runner"`),
      "subjects: [{kind: ServiceAccount, name: runner, namespace: ns-1}]",
    );
    assert.equal(
      subjects(`User "system:serviceaccount:ns:x}], evil: [{"`),
      "subjects: [{kind: ServiceAccount, name: SERVICE_ACCOUNT, namespace: ns}]",
    );
    assert.equal(
      subjects(`User "alice" cannot list`),
      "subjects: [{kind: ServiceAccount, name: SERVICE_ACCOUNT, namespace: ns}]",
    );
    for (const bad of ["..", "-sa", "a".repeat(254)])
      assert.equal(
        subjects(`User "system:serviceaccount:ns:${bad}"`),
        "subjects: [{kind: ServiceAccount, name: SERVICE_ACCOUNT, namespace: ns}]",
        bad,
      );
    assert.equal(
      subjects(`User "system:serviceaccount:-x:sa"`, "home"),
      "subjects: [{kind: ServiceAccount, name: sa, namespace: home}]",
    );
    assert.equal(
      subjects(`User "system:serviceaccount:${"a".repeat(64)}:sa"`, "home"),
      "subjects: [{kind: ServiceAccount, name: sa, namespace: home}]",
    );
  });

  test("FAIL: a refused token (401), once for both requests", () => {
    const findings = checkApi(ENV, CLUSTER, {
      list: failed("listing", 401, "Unauthorized"),
      watch: failed("watching", 401, "Unauthorized"),
    });
    assert.deepEqual(verdicts(findings), ["ok", "FAIL"]);
    assert.match(findings[1]!.text, /HTTP 401/);
  });

  test("FAIL, with the fix for each: TLS that does not verify, a server that cannot be reached, an answer that is not one", () => {
    const cert = checkApi(ENV, CLUSTER, {
      list: failed(
        "listing",
        undefined,
        "unable to verify the first certificate",
        coded("UNABLE_TO_VERIFY_LEAF_SIGNATURE"),
      ),
      watch: ENDED,
    });
    assert.deepEqual(verdicts(cert), ["FAIL"]);
    assert.match(cert[0]!.text, /^TLS: listing Pod .* unable to verify the first certificate$/);
    assert.match(cert[0]!.fix!, /mount the cluster's own CA/);
    for (const code of ["SELF_SIGNED_CERT_IN_CHAIN", "ERR_TLS_CERT_ALTNAME_INVALID", "CERT_HAS_EXPIRED"]) {
      assert.match(
        checkApi(ENV, CLUSTER, { list: failed("listing", undefined, code, coded(code)), watch: ENDED })[0]!.fix!,
        /own CA/,
        code,
      );
    }
    const refused = checkApi(ENV, CLUSTER, {
      list: failed("listing", undefined, "connect ECONNREFUSED", coded("ECONNREFUSED")),
      watch: ENDED,
    });
    assert.match(refused[0]!.fix!, /NetworkPolicy/);
    assert.match(
      checkApi(ENV, CLUSTER, { list: failed("listing", undefined, "no data for 10000 ms"), watch: ENDED })[0]!.fix!,
      /NetworkPolicy/,
    );
    assert.equal(
      checkApi(ENV, CLUSTER, {
        list: failed("listing", undefined, "the answer is longer than 65536 bytes", new Error("too long")),
        watch: ENDED,
      })[0]!.fix,
      undefined,
    );
  });

  test("FAIL: a watch that failed for another reason; the list and the token are still ok", () => {
    const findings = checkApi(ENV, CLUSTER, {
      ...listed(pod),
      watch: failed("watching", 500, "etcdserver: leader changed"),
    });
    assert.deepEqual(verdicts(findings), ["ok", "ok", "FAIL", "ok"]);
  });

  test("FAIL: no such Pod, with the rule that named it and the downward API; warn: another Pod in the answer", () => {
    const missing = one(checkApi({}, CLUSTER, listed(null)), /there is no Pod/);
    assert.equal(missing.verdict, "FAIL");
    assert.match(missing.text, /its name from the hostname/);
    assert.match(missing.fix!, /POD_NAME.*fieldPath: metadata\.name/);
    assert.equal(
      one(
        checkApi(ENV, CLUSTER, { ...listed(null), ignored: "the API server sent Pod x/y: ignoring it" }),
        /ignoring it/,
      ).verdict,
      "warn",
    );
  });
});

describe("proa's own container", () => {
  test("ok: chosen by --container, or the only regular container, with the rule", () => {
    assert.deepEqual(checkOwnContainer(podWith({ sidecars: ["proxy"] }), { container: "main" }), {
      name: "main",
      finding: { verdict: "ok", text: "proa's own container is main (--container)" },
    });
    assert.match(checkOwnContainer(podWith({}), {}).finding.text, /the Pod's only regular container/);
  });

  test("warn: fell back to containers[0] in a Pod with several regular containers", () => {
    const { name, finding } = checkOwnContainer(podWith({ sidecars: ["proxy", "logger"] }), {});
    assert.equal(name, "main");
    assert.equal(finding.verdict, "warn");
    assert.match(finding.text, /the first of main, proxy, logger/);
    assert.match(finding.fix!, /--container/);
  });

  test("FAIL: --container naming no container of the Pod", () => {
    const { name, finding } = checkOwnContainer(podWith({ sidecars: ["proxy"] }), { container: "app" });
    assert.equal(name, undefined);
    assert.equal(finding.verdict, "FAIL");
    assert.match(finding.fix!, /main, proxy/);
  });
});

describe("the containers a run waits for", () => {
  const none = { waitFor: [] as string[], ignore: [] as string[] };
  const lines = (pod: Pod, ready = none) =>
    checkContainers(pod, "main", ready).findings.map((f) => `${f.verdict} ${f.text}`);

  test("ok: each with its readiness now (information, not failure) and its readinessProbe", () => {
    const pod = podWith({ sidecars: ["sidecar-1", "sidecar-2"], ready: { "sidecar-1": true } });
    assert.deepEqual(lines(pod), [
      "ok container sidecar-1: ready; it has a readinessProbe",
      "ok container sidecar-2: not ready yet (running); it has a readinessProbe",
    ]);
    assert.deepEqual(checkContainers(pod, "main", none).notReady, ["sidecar-2"]);
  });

  test("warn: a container without a readinessProbe counts as ready once it starts", () => {
    const [finding] = checkContainers(withoutProbe(podWith({ sidecars: ["proxy"] }), "proxy"), "main", none).findings;
    assert.equal(finding!.verdict, "warn");
    assert.match(finding!.text, /^container proxy: .*no readinessProbe/);
    assert.match(finding!.fix!, /give proxy a readinessProbe/);
  });

  test("native sidecars are named so; plain init containers are not waited for", () => {
    const pod = withNativeSidecar(
      podWith({ sidecars: ["proxy", "logger"], initContainers: ["migrate"], ready: true }),
      "logger",
    );
    assert.deepEqual(
      lines(pod).map((l) => l.split(":")[0]),
      ["ok container proxy", "ok native sidecar logger"],
    );
  });

  test("--wait-for and --ignore narrow the set; an unknown name is a FAIL", () => {
    const pod = podWith({ sidecars: ["proxy", "logger"] });
    assert.deepEqual(
      lines(pod, { waitFor: ["proxy"], ignore: [] }).map((l) => l.split(":")[0]),
      ["ok container proxy"],
    );
    assert.deepEqual(
      lines(pod, { waitFor: [], ignore: ["proxy"] }).map((l) => l.split(":")[0]),
      ["ok container logger"],
    );
    const { findings, notReady } = checkContainers(pod, "main", { waitFor: ["proxi"], ignore: [] });
    assert.deepEqual(verdicts(findings), ["FAIL"]);
    assert.match(findings[0]!.text, /--wait-for proxi/);
    assert.equal(notReady, undefined);
  });

  test("warn: a sidecar that terminated under restartPolicy Never means a run now would fail at once", () => {
    const { findings } = checkContainers(
      podWith({ sidecars: ["proxy"], terminated: { proxy: { exitCode: 1 } } }),
      "main",
      none,
    );
    assert.match(one(findings, /^container proxy/).text, /not ready yet \(terminated with exit code 1, Error\)/);
    assert.equal(one(findings, /would fail at once/).verdict, "warn");
    assert.equal(checkStatus(findings), 0);
  });

  test("ok: nothing to wait for in a Pod with one container", () => {
    assert.deepEqual(lines(podWith({})), ["ok no other containers to wait for: a run starts the program at once"]);
  });
});

describe("restartPolicy", () => {
  const pod = podWith({ sidecars: ["proxy"] });
  test("ok under Never: a dead sidecar fails the wait at once", () =>
    assert.equal(checkRestartPolicy(pod, undefined).verdict, "ok"));
  test("warn under OnFailure or Always (the default) without --ready-timeout: the wait has no limit", () => {
    assert.equal(checkRestartPolicy(withRestartPolicy(pod, "OnFailure"), undefined).verdict, "warn");
    const always = checkRestartPolicy({ ...pod, spec: { ...pod.spec, restartPolicy: undefined } }, undefined);
    assert.equal(always.verdict, "warn");
    assert.match(always.text, /restartPolicy Always/);
  });
  test("says what proa does when the program fails, as the run's plan decides", () => {
    assert.match(checkRestartPolicy(pod, undefined).text, /; after a failure: proa shuts the sidecars down$/);
    assert.match(
      checkRestartPolicy(withRestartPolicy(pod, "OnFailure"), undefined).text,
      /one that exits 0 is not.*; after a failure: sidecars left running for the restart \(restartPolicy OnFailure\)$/,
    );
    assert.match(
      checkRestartPolicy(withRestartPolicy(pod, "Always"), 300_000).text,
      /; after a failure: sidecars left running for the restart \(restartPolicy Always\)$/,
    );
  });
  test("a Pod without restartPolicy reads as Always, the API server's default, for the run's plan as for the text", () => {
    const text = checkRestartPolicy({ ...pod, spec: { ...pod.spec, restartPolicy: undefined } }, 300_000).text;
    assert.match(
      text,
      /^restartPolicy Always: .*; after a failure: sidecars left running for the restart \(restartPolicy Always\)$/,
    );
  });
  test("ok under OnFailure with --ready-timeout", () =>
    assert.match(
      checkRestartPolicy(withRestartPolicy(pod, "OnFailure"), 300_000).text,
      /at most --ready-timeout \(300 s\)/,
    ));
});

describe("shutdown URLs and means", () => {
  const noKill = { kill: [], killAll: false };
  const pod = podWith({ sidecars: ["proxy"], ready: true });
  const url = (method: "GET" | "POST", text: string, connect: Facts["urls"][number]["connect"]) => ({
    method,
    url: new URL(text),
    connect,
  });
  const open = { ok: true as const };
  const refused = { ok: false as const, code: "ECONNREFUSED", message: "connection refused" };

  test("ok: something accepts a TCP connection at the URL's host and port; nothing was sent", () => {
    const [finding] = checkShutdownUrls(noKill, [url("POST", "http://localhost:15020/quitquitquit", open)], pod, []);
    assert.equal(finding!.verdict, "ok");
    assert.equal(
      finding!.text,
      "shutdown POST http://localhost:15020/quitquitquit: something accepts TCP connections at localhost:15020 (connected and closed, no request sent)",
    );
    assert.match(
      checkShutdownUrls(noKill, [url("GET", "https://[::1]/stop", open)], pod, [])[0]!.text,
      /at \[::1\]:443/,
    );
    assert.match(
      checkShutdownUrls(noKill, [url("GET", "http://sidecar/stop", open)], pod, [])[0]!.text,
      /at sidecar:80/,
    );
  });

  test("FAIL: refused when every sidecar is ready (or readiness is unknown); only a warning while some are not", () => {
    assert.equal(
      checkShutdownUrls(noKill, [url("POST", "http://127.0.0.1:9091/quit", refused)], pod, [])[0]!.verdict,
      "FAIL",
    );
    const early = checkShutdownUrls(noKill, [url("POST", "http://127.0.0.1:9091/quit", refused)], pod, ["proxy"])[0]!;
    assert.equal(early.verdict, "warn");
    assert.match(early.text, /while proxy is not ready/);
    assert.match(
      checkShutdownUrls(noKill, [url("POST", "http://127.0.0.1:9091/quit", refused)], pod, ["a", "b"])[0]!.text,
      /while a, b are not ready/,
    );
    assert.equal(
      checkShutdownUrls(noKill, [url("POST", "http://127.0.0.1:9091/quit", refused)], undefined)[0]!.verdict,
      "FAIL",
    );
  });

  test("FAIL: a host that does not resolve, even while sidecars are not ready", () => {
    const findings = checkShutdownUrls(
      noKill,
      [
        url("GET", "http://sidecar.invalid:80/x", {
          ok: false,
          code: "ENOTFOUND",
          message: "getaddrinfo ENOTFOUND sidecar.invalid",
        }),
      ],
      pod,
      ["proxy"],
    );
    assert.equal(findings[0]!.verdict, "FAIL");
    assert.match(findings[0]!.text, /cannot connect to sidecar\.invalid:80: getaddrinfo ENOTFOUND/);
  });

  test("warn: GET to /quitquitquit on Envoy's or Istio's admin port; not for POST, nor on another port", () => {
    for (const port of ["9901", "15000", "15020"]) {
      const envoy = one(
        checkShutdownUrls(noKill, [url("GET", `http://localhost:${port}/quitquitquit`, open)], pod, []),
        /only POST/,
      );
      assert.equal(envoy.verdict, "warn");
      assert.equal(envoy.fix, `use --shutdown-http-post http://localhost:${port}/quitquitquit`);
    }
    assert.deepEqual(
      verdicts(checkShutdownUrls(noKill, [url("POST", "http://localhost:15000/quitquitquit", open)], pod, [])),
      ["ok"],
    );
    assert.deepEqual(
      verdicts(checkShutdownUrls(noKill, [url("GET", "http://localhost:9091/quitquitquit", open)], pod, [])),
      ["ok"],
    );
  });

  test("the URL's credentials and query values never reach the report", () => {
    const report = formatReport(
      checkShutdownUrls(
        noKill,
        [url("GET", "http://admin:hunter2@localhost:15020/quitquitquit?token=abc", refused)],
        pod,
        [],
      ),
    );
    assert.ok(!report.includes("hunter2") && !report.includes("abc"), report);
  });

  test("warn: no shutdown means with sidecars to stop; ok when the Pod has no other regular container", () => {
    const [none] = checkShutdownUrls(noKill, [], pod);
    assert.equal(none!.verdict, "warn");
    assert.match(none!.fix!, /--shutdown-http-post URL/);
    assert.equal(checkShutdownUrls(noKill, [], undefined)[0]!.verdict, "warn");
    assert.equal(checkShutdownUrls(noKill, [], podWith({}))[0]!.verdict, "ok");
    assert.deepEqual(checkShutdownUrls({ kill: ["envoy"], killAll: false }, [], pod), []);
    assert.deepEqual(checkShutdownUrls({ kill: [], killAll: true }, [], pod), []);
  });
});

describe("--kill and --kill-all, by shutdown.ts's own selection", () => {
  const shared = (pod: Pod): Pod => ({ ...pod, spec: { ...pod.spec, shareProcessNamespace: true } as Pod["spec"] });
  const pod = podWith({ sidecars: ["proxy"] });
  const own = { pid: 40, ppid: 39, env: { PROA_KILL_SCOPE: "visible" } };
  const processes: ProcessInfo[] = [
    { pid: 1, ppid: 0, startTime: 1, comm: "pause", exe: "pause" },
    { pid: 7, ppid: 1, startTime: 2, exe: "envoy", argv0: "envoy", comm: "envoy" },
    { pid: 8, ppid: 1, startTime: 3, argv0: "pilot-agent", comm: "pilot-agent" }, // exe unreadable: matched by argv[0]
    { pid: 9, ppid: 1, startTime: 4, comm: "cloud-sql-proxy" }, // only comm, cut at 15 characters
    { pid: 10, ppid: 1, startTime: 5, comm: "sql-proxy" }, // only comm, short enough to count
    { pid: 39, ppid: 1, startTime: 6, exe: "sh", argv0: "sh" },
    { pid: 40, ppid: 39, startTime: 7, exe: "node", argv0: "node" },
  ];
  const texts = (findings: Finding[]) => findings.map((f) => `${f.verdict} ${f.text}`);

  test("in a Pod's cgroup: only that Pod's processes would be signalled, the others listed as out of scope; outside any Pod, FAIL", () => {
    const uid = pod.metadata!.uid!;
    const inPod = (cid: string) =>
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid.replaceAll("-", "_")}.slice/cri-containerd-${cid}.scope\n`;
    const idOf = (name: string) =>
      pod.status!.containerStatuses!.find((s) => s.name === name)!.containerID!.replace("containerd://", "");
    // envoy in the proxy container; another outside any Pod; a third in the Pod's cgroup but not a container's (the sandbox)
    const pods = [
      { ...processes[1]!, cgroup: inPod(idOf("proxy")) },
      { ...processes[1]!, pid: 70 },
      { ...processes[1]!, pid: 71, cgroup: inPod("ef".repeat(32)) },
      processes[6]!,
    ];
    const findings = texts(
      checkKill({ kill: ["envoy"], killAll: false }, shared(pod), pods, {
        pid: 40,
        ppid: 39,
        ownCgroup: inPod(idOf("main")),
        env: {},
      }),
    );
    assert.ok(findings.includes("ok --kill envoy would signal envoy (7, by executable)"), findings.join("\n"));
    assert.ok(findings.includes("ok out of scope, outside proa's Pod, never signalled: envoy"), findings.join("\n"));
    const outside = checkKill({ kill: ["envoy"], killAll: false }, shared(pod), pods, {
      pid: 40,
      ppid: 39,
      ownCgroup: "0::/user.slice/user-0.slice/session-1.scope\n",
      env: {},
    });
    assert.match(one(outside, /would signal nothing/).text, /names no Pod cgroup/);
    assert.equal(one(outside, /would signal nothing/).verdict, "FAIL");
  });

  test("FAIL: the Pod does not share its process namespace", () => {
    const findings = checkKill({ kill: ["envoy"], killAll: false }, pod, processes, own);
    assert.equal(findings[0]!.verdict, "FAIL");
    assert.match(findings[0]!.fix!, /shareProcessNamespace: true/);
  });

  test("ok: each --kill NAME with the processes a run would signal and the rule that matched", () => {
    const findings = checkKill(
      { kill: ["envoy", "pilot-agent", "sql-proxy"], killAll: false },
      shared(pod),
      processes,
      own,
    );
    assert.deepEqual(texts(findings), [
      "ok --kill envoy, --kill pilot-agent, --kill sql-proxy: the Pod shares its process namespace (shareProcessNamespace: true)",
      "ok --kill envoy would signal envoy (7, by executable)",
      "ok --kill pilot-agent would signal pilot-agent (8, by argv[0])",
      "ok --kill sql-proxy would signal sql-proxy (10, by comm)",
    ]);
  });

  test("warn: a --kill NAME that matches nothing lists what is visible, never proa, its ancestors or PID 1; comm cut at 15 never matches", () => {
    const finding = one(
      checkKill({ kill: ["cloud-sql-proxy"], killAll: false }, shared(pod), processes, own),
      /matches no visible process/,
    );
    assert.equal(finding.verdict, "warn");
    assert.match(finding.text, /visible: cloud-sql-proxy, envoy, pilot-agent, sql-proxy$/);
    assert.equal(
      one(checkKill({ kill: ["node"], killAll: false }, shared(pod), processes, own), /every program that node runs/)
        .verdict,
      "warn",
    );
  });

  test("--kill-all: what it would signal; a warning when it sees nothing", () => {
    assert.match(
      one(checkKill({ kill: [], killAll: true }, shared(pod), processes, own), /--kill-all would/).text,
      /envoy \(7, by name\), pilot-agent \(8, by name\), cloud-sql-proxy \(9, by name\), sql-proxy \(10, by name\)/,
    );
    const alone = checkKill({ kill: [], killAll: true }, undefined, [processes[0]!, processes[6]!], own);
    assert.deepEqual(texts(alone), [
      "ok --kill-all would signal nothing (never PID 1, proa or its ancestors)",
      "warn proa sees no process but PID 1 and its own",
    ]);
  });

  test("warn: /proc could not be read; without the Pod, shareProcessNamespace is not judged", () => {
    assert.deepEqual(verdicts(checkKill({ kill: ["envoy"], killAll: false }, undefined, { error: "EACCES" }, own)), [
      "warn",
    ]);
  });
});

describe("sidecars that proa stops, under restartPolicy Never; native sidecars", () => {
  type Spec = {
    name: string;
    image?: string;
    command?: string[];
    args?: string[];
    ports?: { containerPort: number; name?: string }[];
    readinessProbe?: unknown;
    startupProbe?: unknown;
  };
  /** The captured Pod (restartPolicy Never; main, sidecar-1, sidecar-2 of busybox) with one container's spec changed. */
  const edited = (pod: Pod, name: string, change: Partial<Spec>): Pod => {
    const copy = structuredClone(pod);
    for (const c of [...(copy.spec?.containers ?? []), ...(copy.spec?.initContainers ?? [])] as Spec[])
      if (c.name === name) Object.assign(c, change);
    return copy;
  };
  const pod = capturedPod("all-ready");
  const SQL = {
    image: "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.8.0",
    args: ["--quitquitquit", "my-project:region:db"],
  };
  const kill = (names: string[], killAll = false) => ({ kill: names, killAll });
  const none = { httpGet: [], httpPost: [], kill: [] };

  test("warn: --kill under Never names the sidecar, by its container's name or its image's, and says the Pod would be Failed", () => {
    const [byName] = checkKillUnderNever(kill(["sidecar-1"]), pod, "main");
    assert.equal(byName!.verdict, "warn");
    assert.match(
      byName!.text,
      /^--kill sidecar-1: container sidecar-1 must exit 0 on SIGTERM, else under restartPolicy Never the Pod, and so the Job, is Failed although the program succeeded$/,
    );
    assert.match(byName!.fix!, /--exit-zero-on-sigterm/);
    const [byImage] = checkKillUnderNever(kill(["cloud-sql-proxy"]), edited(pod, "sidecar-2", SQL), "main");
    assert.match(byImage!.text, /^--kill cloud-sql-proxy: container sidecar-2 must exit 0/);
    const [all] = checkKillUnderNever(kill([], true), pod, "main");
    assert.match(all!.text, /^--kill-all: sidecar-1, sidecar-2 must exit 0 on SIGTERM/);
  });

  test("ok with --exit-zero-on-sigterm in its args; nothing under another restartPolicy, or without --kill", () => {
    const zero = edited(pod, "sidecar-2", { ...SQL, args: ["--exit-zero-on-sigterm", ...SQL.args] });
    assert.deepEqual(verdicts(checkKillUnderNever(kill(["cloud-sql-proxy"]), zero, "main")), ["ok"]);
    assert.deepEqual(checkKillUnderNever(kill(["sidecar-1"]), withRestartPolicy(pod, "OnFailure"), "main"), []);
    assert.deepEqual(checkKillUnderNever(kill([]), pod, "main"), []);
  });

  test("ok with --exit-zero-on-sigterm in its command too, as a manifest that replaces the image's entrypoint gives it", () => {
    const zero = edited(pod, "sidecar-2", { ...SQL, command: ["/cloud-sql-proxy", "--exit-zero-on-sigterm"] });
    const findings = checkKillUnderNever(kill(["cloud-sql-proxy"]), zero, "main");
    assert.deepEqual(verdicts(findings), ["ok"], formatReport(findings));
    assert.match(findings[0]!.text, /^--kill cloud-sql-proxy: container sidecar-2 runs with --exit-zero-on-sigterm/);
  });

  test("--kill-all under Never with no other regular container says nothing: no warning over an empty list", () => {
    const allNative = withNativeSidecar(withNativeSidecar(pod, "sidecar-1"), "sidecar-2");
    assert.deepEqual(checkKillUnderNever(kill([], true), allNative, "main"), [], "only native sidecars");
    assert.deepEqual(checkKillUnderNever(kill([], true), withRestartPolicy(podWith({}), "Never"), "main"), [], "none");
  });

  test("native sidecars: one ok line that proa need not stop them, and nothing of the kind for regular containers", () => {
    assert.deepEqual(checkNativeSidecars(none, pod), []);
    const native = withNativeSidecar(pod, "sidecar-2");
    const findings = checkNativeSidecars(none, native);
    assert.deepEqual(verdicts(findings), ["ok"]);
    assert.match(
      findings[0]!.text,
      /^native sidecars sidecar-2: the kubelet stops them after the regular containers exit, and restarts one that exits early/,
    );
    assert.deepEqual(
      checkKillUnderNever(kill(["sidecar-2"]), native, "main"),
      [],
      "--kill of a native sidecar is not a regular container's exit status",
    );
  });

  test("warn: a shutdown URL on a native sidecar's containerPort or probe port (a named one too), or a --kill of it", () => {
    const native = edited(withNativeSidecar(pod, "sidecar-2"), "sidecar-2", {
      ...SQL,
      ports: [{ containerPort: 9090, name: "health" }],
      readinessProbe: { httpGet: { port: "health", path: "/readiness" } },
    });
    const withPort = edited(native, "sidecar-2", { ports: [{ containerPort: 9091 }] });
    const byPort = checkNativeSidecars(
      { ...none, httpPost: [new URL("http://localhost:9091/quitquitquit")] },
      withPort,
    );
    assert.deepEqual(verdicts(byPort), ["ok", "warn"]);
    assert.match(
      byPort[1]!.text,
      /^the shutdown URL http:\/\/localhost:9091\/quitquitquit is native sidecar sidecar-2's port 9091/,
    );
    assert.deepEqual(
      verdicts(checkNativeSidecars({ ...none, httpGet: [new URL("http://127.0.0.1:9090/quitquitquit")] }, native)),
      ["ok", "warn"],
      "the probe's named port",
    );
    assert.deepEqual(
      verdicts(checkNativeSidecars({ ...none, httpGet: [new URL("http://localhost:9092/")] }, native)),
      ["ok"],
      "another port",
    );
    assert.deepEqual(
      verdicts(checkNativeSidecars({ ...none, httpGet: [new URL("http://db.example:9090/")] }, native)),
      ["ok"],
      "not this Pod",
    );
    const probeOnly = edited(native, "sidecar-2", { ports: [], readinessProbe: { tcpSocket: { port: 9095 } } });
    assert.deepEqual(
      verdicts(checkNativeSidecars({ ...none, httpGet: [new URL("http://localhost:9095/")] }, probeOnly)),
      ["ok", "warn"],
      "a probe's port alone",
    );
    const killed = checkNativeSidecars({ ...none, kill: ["cloud-sql-proxy"] }, native);
    assert.match(killed[1]!.text, /^--kill cloud-sql-proxy targets native sidecar sidecar-2/);
  });

  // A probe's named port is one of the container's ports, which count by themselves: only a number tells the probe's.
  test("warn: a shutdown URL on the port of a native sidecar's startupProbe alone, httpGet or tcpSocket", () => {
    const native = withNativeSidecar(pod, "sidecar-2");
    for (const startupProbe of [{ httpGet: { port: 9096, path: "/startup" } }, { tcpSocket: { port: 9096 } }]) {
      const probed = edited(native, "sidecar-2", { ports: [], readinessProbe: undefined, startupProbe });
      const url = new URL("http://localhost:9096/quitquitquit");
      const findings = checkNativeSidecars({ ...none, httpPost: [url] }, probed);
      assert.deepEqual(
        verdicts(findings),
        ["ok", "warn"],
        `${JSON.stringify(startupProbe)}:\n${formatReport(findings)}`,
      );
      assert.match(findings[1]!.text, /is native sidecar sidecar-2's port 9096: stopping it is the kubelet's job$/);
    }
  });

  test("1.29 or later, regular-container sidecars: one ok line that they could be native, and what proa would still add", () => {
    const v = (major: number, minor: number) => ({ major, minor, gitVersion: `v${major}.${minor}.0` });
    const [line] = checkCouldBeNative(pod, "main", v(1, 29));
    assert.equal(line!.verdict, "ok");
    assert.match(
      line!.text,
      /^the API server is v1\.29\.0, where sidecar-1, sidecar-2 could be native sidecars .*gate the program on their readiness \(the kubelet waits only for started\), bound the wait, and give the exit status and the summary$/,
    );
    assert.equal(checkCouldBeNative(pod, "main", v(2, 0)).length, 1);
    assert.deepEqual(checkCouldBeNative(pod, "main", v(1, 28)), [], "alpha behind a gate in 1.28");
    assert.deepEqual(checkCouldBeNative(pod, "main", undefined), [], "an unknown version says nothing");
    assert.deepEqual(checkCouldBeNative(withNativeSidecar(pod, "sidecar-2"), "main", v(1, 33)), [], "already native");
    assert.deepEqual(checkCouldBeNative(podWith({}), "main", v(1, 33)), [], "no sidecar");
  });
});

describe("a Pod whose only sidecars are native, as 1.33 and 1.35 report it: --check says what a run does", () => {
  const v = (minor: number) => ({ major: 1, minor, gitVersion: `v1.${minor}.0` });

  test("one regular sidecar could be a native sidecar (singular); two could be native sidecars", () => {
    const one = checkCouldBeNative(podWith({ sidecars: ["sidecar"] }), "main", v(33))[0]!.text;
    assert.match(
      one,
      /^the API server is v1\.33\.0, where sidecar could be a native sidecar \(an init container with restartPolicy: Always\) that the kubelet stops;/,
    );
    const two = checkCouldBeNative(podWith({ sidecars: ["a", "b"] }), "main", v(33))[0]!.text;
    assert.match(
      two,
      /where a, b could be native sidecars \(init containers with restartPolicy: Always\) that the kubelet stops;/,
    );
  });

  for (const version of KUBELET_VERSIONS) {
    const pod = kubeletPod(version, "native-ready");
    test(`${version}: restartPolicy's line and the budget's say that a run does not wait for the native sidecar, and claim no shutdown`, () => {
      const policy = checkRestartPolicy(pod, undefined).text;
      assert.match(
        policy,
        /; after a failure: the Pod's only sidecars are native: the kubelet stops them once proa's container has exited, so proa does not wait for them$/,
      );
      assert.doesNotMatch(policy, /proa shuts the sidecars down/);
      const budget = checkBudget(pod, undefined);
      assert.equal(budget.verdict, "ok");
      assert.equal(
        budget.text,
        "a run's shutdown step does not wait: the Pod's only sidecars are native: the kubelet stops them once proa's container has exited, so proa does not wait for them",
      );
      assert.match(checkBudget(kubeletPod(version, "regular-before-delete"), undefined).text, /^shutdown budget 30 s/);
    });
  }
});

describe("ready URLs (--ready-url): one GET each, as a run's wait sends it", () => {
  // Answers as readyurl.ts's askReadyUrl gives them (the words and codes seen from real servers on loopback).
  const status = (code: number, body?: string): ReadyAnswer => ({
    ready: code >= 200 && code < 300,
    text: `HTTP ${code}`,
    level: "info",
    status: code,
    ...(body ? { body } : {}),
  });
  const error = (code: string, text: string): ReadyAnswer => ({
    ready: false,
    text,
    level: code === "ECONNREFUSED" ? "info" : "warn",
    code,
  });
  const ask = (url: string, answer: ReadyAnswer) => checkReadyUrl(new URL(url), answer);
  const ISTIO = "http://localhost:15021/healthz/ready";

  test("ok: a 2xx answer, with its status", () => {
    assert.deepEqual(ask(ISTIO, status(200)), { verdict: "ok", text: `ready URL ${ISTIO}: HTTP 200, ready` });
    assert.equal(ask(ISTIO, status(204)).verdict, "ok");
  });

  test("warn, not FAIL, for what a starting sidecar answers: refused, 5xx (with its body), 429, 408, a timeout, a reset", () => {
    const refused = ask(ISTIO, error("ECONNREFUSED", "connection refused"));
    assert.equal(refused.verdict, "warn");
    assert.equal(
      refused.text,
      `ready URL ${ISTIO}: nothing accepts connections at localhost:15021 yet (connection refused)`,
    );
    assert.match(refused.fix!, /normal while the sidecar starts.*check the port/);
    const starting = ask(ISTIO, status(503, "no healthy upstream"));
    assert.deepEqual(
      [starting.verdict, starting.text],
      ["warn", `ready URL ${ISTIO}: HTTP 503, not ready yet: no healthy upstream`],
    );
    assert.match(starting.fix!, /a run waits for 2xx/);
    for (const code of [500, 502, 429, 408]) assert.equal(ask(ISTIO, status(code)).verdict, "warn", `HTTP ${code}`);
    const slow = ask(ISTIO, error("ETIMEDOUT", "no answer within 1000 ms: timed out waiting for the response headers"));
    assert.equal(slow.verdict, "warn");
    assert.match(slow.fix!, /check that localhost:15021 is the sidecar's HTTP readiness port/);
    assert.match(
      ask(ISTIO, error("ECONNRESET", "the connection was reset")).fix!,
      /if the port serves https, write https:\/\//,
    );
    assert.equal(ask(ISTIO, error("ECONNRESET", "the connection was reset")).verdict, "warn");
  });

  test("FAIL: a redirect, which a run never follows, in the run's own words with where it points", () => {
    const text =
      "HTTP 301, a redirect to https://localhost:15021/healthz/ready, which proa does not follow: give that URL instead";
    const moved = ask(ISTIO, { ready: false, text, level: "warn", status: 301 });
    assert.deepEqual([moved.verdict, moved.text], ["FAIL", `ready URL ${ISTIO}: ${text}`]);
    assert.match(moved.fix!, /path or scheme is wrong/);
  });

  test("FAIL: 404, with the usual readiness path where the port is a common sidecar's and the path is not that one", () => {
    const typo = ask("http://localhost:15021/healthz/readyz", status(404));
    assert.equal(typo.verdict, "FAIL");
    assert.equal(
      typo.text,
      "ready URL http://localhost:15021/healthz/readyz: HTTP 404, nothing is served at that path, so a run would wait until --ready-timeout",
    );
    assert.equal(typo.fix, "on port 15021 the readiness path is usually /healthz/ready (Istio)");
    assert.match(ask("http://localhost:4191/readyz", status(404)).fix!, /usually \/ready \(Linkerd\)$/);
    assert.match(
      ask("http://localhost:15021/healthz", status(404)).fix!,
      /usually \/healthz\/ready \(Istio\)$/,
      "a path that the usual one starts with is still wrong",
    );
    assert.match(ask("http://localhost:9901/healthz", status(404)).fix!, /usually \/ready \(Envoy\)$/);
    assert.match(ask("http://127.0.0.1:9090/ready", status(404)).fix!, /usually \/readiness \(Cloud SQL Auth Proxy\)$/);
    // The usual path itself, or a port no common sidecar uses: no guess.
    assert.equal(ask(ISTIO, status(404)).fix, "check the path against the sidecar's readiness endpoint");
    assert.equal(
      ask("http://localhost:8080/healthz/readyz", status(404)).fix,
      "check the path against the sidecar's readiness endpoint",
    );
    assert.equal(
      ask("http://localhost:9090/readiness/", status(404)).fix,
      "on port 9090 the readiness path is usually /readiness (Cloud SQL Auth Proxy)",
    );
  });

  test("FAIL: other client errors, which waiting does not change; 401 and 403 say how to authenticate", () => {
    for (const code of [400, 401, 403, 405, 410]) {
      const finding = ask(ISTIO, status(code));
      assert.equal(finding.verdict, "FAIL", `HTTP ${code}`);
      assert.match(finding.text, new RegExp(`HTTP ${code}, a request that waiting does not change`));
    }
    for (const code of [401, 403]) {
      const finding = ask(ISTIO, status(code));
      assert.equal(finding.verdict, "FAIL", `HTTP ${code}`);
      assert.match(finding.fix!, /unauthenticated readiness endpoint, or give credentials in the URL/);
    }
  });

  test("FAIL: TLS that does not verify (proa never skips it), https to a plain-http port, an answer that is not HTTP, a host that does not resolve", () => {
    for (const [code, text] of [
      ["DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate"],
      ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate"],
      ["ERR_TLS_CERT_ALTNAME_INVALID", "Hostname/IP does not match"],
      ["CERT_HAS_EXPIRED", "certificate has expired"],
    ]) {
      const finding = ask("https://localhost:8443/ready", error(code!, text!));
      assert.deepEqual(
        [finding.verdict, finding.text],
        ["FAIL", `ready URL https://localhost:8443/ready: TLS: ${text}`],
        code,
      );
      assert.equal(
        finding.fix,
        "proa never skips verification: use the sidecar's plain http endpoint on localhost, or add its CA with NODE_EXTRA_CA_CERTS",
      );
    }
    const plain = ask(
      "https://localhost:15021/healthz/ready",
      error("EPROTO", "write EPROTO 0A00010B:SSL routines:ssl3_get_record:wrong version number\n"),
    );
    assert.equal(plain.verdict, "FAIL");
    assert.match(plain.text, /the port does not speak TLS$/);
    assert.match(plain.fix!, /^write the URL with http:\/\//);
    const junk = ask("http://localhost:15021/", error("HPE_INVALID_CONSTANT", "Parse Error: Expected HTTP/"));
    assert.equal(junk.verdict, "FAIL");
    assert.match(junk.text, /the answer is not HTTP \(Parse Error: Expected HTTP\/\)/);
    const nowhere = ask("http://sidecar.invalid/ready", error("ENOTFOUND", "cannot resolve the host name (ENOTFOUND)"));
    assert.equal(nowhere.verdict, "FAIL");
    assert.match(nowhere.fix!, /a sidecar in the Pod is at localhost/);
  });

  test("the URL's credentials and query values never reach the report", () => {
    const text = formatReport([ask("http://admin:s3cret@localhost:15021/healthz/ready?token=abc", status(503))]);
    assert.ok(!text.includes("s3cret") && !text.includes("abc"), text);
  });

  test("--ready-timeout: ok with it, a warning without (a run cannot see a sidecar that died before it was ready)", () => {
    assert.deepEqual(checkReadyTimeout(300_000), {
      verdict: "ok",
      text: "the wait for the ready URLs ends after --ready-timeout (300 s)",
    });
    const none = checkReadyTimeout(undefined);
    assert.equal(none.verdict, "warn");
    assert.match(none.fix!, /set --ready-timeout/);
  });

  test("no cluster loaded: one ok line that the API is not used, and nothing about the service account", () => {
    const findings = checkEnvironment({ env: {}, nodeVersion: "20.20.2" });
    assert.deepEqual(verdicts(findings), ["ok", "ok"]);
    assert.equal(
      findings[0]!.text,
      "the Kubernetes API is not used with --ready-url, so no service account token, RBAC or KUBERNETES_* variable is needed",
    );
  });
});

describe("the shutdown budget", () => {
  const pod = podWith({ sidecars: ["proxy"] }); // terminationGracePeriodSeconds: 30, as captured
  test("from --shutdown-timeout, the Pod's grace period, or the default, as shutdown.ts takes it", () => {
    assert.equal(
      checkBudget(pod, undefined).text,
      "shutdown budget 30 s, from the Pod's terminationGracePeriodSeconds; after SIGTERM, never past a second before the grace period ends",
    );
    assert.match(checkBudget(pod, 10_000).text, /^shutdown budget 10 s, from --shutdown-timeout;/);
    assert.match(checkBudget(pod, 60_000).text, /^shutdown budget 60 s, from --shutdown-timeout;/);
    assert.match(checkBudget(undefined, undefined).text, /^shutdown budget 30 s, from the default;/);
    assert.match(
      checkBudget({ ...pod, spec: { ...pod.spec, terminationGracePeriodSeconds: 90 } }, undefined).text,
      /^shutdown budget 90 s/,
    );
  });

  test("with --ready-url: --shutdown-timeout, else 30 s, as there is no Pod spec; after SIGTERM the default grace period is assumed", () => {
    assert.equal(
      checkBudget(undefined, undefined, true).text,
      "shutdown budget 30 s, from the default, as with --ready-url a run reads no Pod spec; after SIGTERM, at most 29 s from it, as a run assumes the default grace period of 30 s",
    );
    assert.match(
      checkBudget(undefined, 10_000, true).text,
      /^shutdown budget 10 s, from --shutdown-timeout; after SIGTERM, at most 29 s from it/,
    );
  });
});

describe("the termination message", () => {
  const target = (
    file: TerminationLogFacts["file"],
    change: Partial<TerminationLogFacts> = {},
  ): TerminationLogFacts => ({ path: "/dev/termination-log", from: "the kubelet's default", file, ...change });

  test("ok: the file a run would write, where its path came from, there and empty now", () => {
    assert.deepEqual(checkTerminationMessage(target({ size: 0, regular: true })), {
      verdict: "ok",
      text: "a run writes its summary to the termination message file /dev/termination-log (from the kubelet's default), which exists and is empty",
    });
    const spec = checkTerminationMessage(
      target({ size: 0, regular: true }, { path: "/tmp/msg", from: "the Pod spec", policy: "FallbackToLogsOnError" }),
    );
    assert.match(
      spec.text,
      /^a run writes its summary to the termination message file \/tmp\/msg \(from the Pod spec\), which exists and is empty; when the program fails, the kubelet puts the log's last lines there instead/,
    );
  });

  test("off with --no-termination-message", () => {
    assert.deepEqual(checkTerminationMessage(undefined), {
      verdict: "ok",
      text: "the termination message is off (--no-termination-message): a run writes no summary",
    });
  });

  test("warn: missing (with PROA_TERMINATION_MESSAGE_PATH as the fix where the path is a guess), not empty, not a file, not examinable", () => {
    const missing = checkTerminationMessage(target({ code: "ENOENT" }));
    assert.equal(missing.verdict, "warn");
    assert.match(missing.text, /\/dev\/termination-log \(from the kubelet's default\) does not exist/);
    assert.match(missing.fix!, /set PROA_TERMINATION_MESSAGE_PATH/);
    assert.equal(
      checkTerminationMessage(target({ code: "ENOENT" }, { from: "the Pod spec" })).fix,
      undefined,
      "the Pod spec's path is no guess",
    );
    const written = checkTerminationMessage(target({ size: 12, regular: true }));
    assert.equal(written.verdict, "warn");
    assert.match(written.text, /holds 12 bytes already: a run leaves it as it is/);
    assert.equal(checkTerminationMessage(target({ size: 0, regular: false })).verdict, "warn");
    assert.match(checkTerminationMessage(target({ code: "EACCES" })).text, /cannot be examined \(EACCES\)/);
  });
});

describe("the program after --", () => {
  test("programCandidates: each PATH entry in order, an empty entry meaning the working directory; a name with a slash as it is", () => {
    assert.deepEqual(programCandidates("job", "/usr/local/bin::/bin", "/app"), [
      "/usr/local/bin/job",
      "/app/job",
      "/bin/job",
    ]);
    assert.deepEqual(programCandidates("./job", "/bin", "/app"), ["/app/job"]);
    assert.deepEqual(programCandidates("/opt/job", "/bin", "/app"), ["/opt/job"]);
  });

  const facts = (...candidates: Candidate[]) => ({ name: "job", path: "/a:/b", candidates });

  test("ok: the first executable file on PATH, as spawn would pick it", () => {
    const finding = checkProgram(
      facts({ path: "/a/job", kind: "missing", executable: false }, { path: "/b/job", kind: "file", executable: true }),
    );
    assert.deepEqual(finding, { verdict: "ok", text: "program job is /b/job, executable" });
  });

  test("FAIL 127: nowhere on PATH, or a script whose #! interpreter is missing", () => {
    const missing = checkProgram(facts({ path: "/a/job", kind: "missing", executable: false }));
    assert.equal(missing.verdict, "FAIL");
    assert.match(missing.text, /is not on PATH \(\/a:\/b\): a run would exit 127/);
    const script = checkProgram(
      facts({ path: "/a/job", kind: "file", executable: true, interpreter: { path: "/bin/bash", found: false } }),
    );
    assert.match(script.text, /#! line names \/bin\/bash, which is not in the image: a run would exit 127/);
  });

  test("FAIL 126: found but not executable, or a directory", () => {
    const plain = checkProgram(
      facts(
        { path: "/a/job", kind: "file", executable: false },
        { path: "/b/job", kind: "missing", executable: false },
      ),
    );
    assert.match(plain.text, /\/a\/job has no execute permission: a run would exit 126/);
    assert.match(plain.fix!, /chmod \+x \/a\/job/);
    assert.match(
      checkProgram(facts({ path: "/a/job", kind: "directory", executable: true })).text,
      /is a directory: a run would exit 126/,
    );
  });
});

describe("judge", () => {
  const facts = (change: Partial<Facts> = {}): Facts => ({
    env: ENV,
    nodeVersion: "20.20.2",
    cluster: { ok: true, ...CLUSTER, dir: "/sa" },
    probe: listed(podWith({ sidecars: ["proxy"], ready: true })),
    hints: { container: "main" },
    urls: [],
    own: { pid: 40, ppid: 39 },
    ...change,
  });
  const options = (shutdown: Partial<Parameters<typeof judge>[0]["shutdown"]> = {}) => ({
    command: [],
    readyUrls: [],
    ready: { waitFor: [], ignore: [] },
    terminationMessage: true,
    shutdown: {
      httpGet: [],
      httpPost: [],
      kill: [],
      killAll: false,
      requestTimeoutMs: 5000,
      userAgent: "proa/test",
      ...shutdown,
    },
  });

  test("a good setup gives no FAIL, in the order a run meets each part", () => {
    const findings = judge(
      options(),
      facts({ urls: [{ method: "POST", url: new URL("http://localhost:15020/quitquitquit"), connect: { ok: true } }] }),
    );
    assert.equal(checkStatus(findings), 0, formatReport(findings));
    const order = [
      /^the API server is at/,
      /^Node\.js/,
      /^TLS/,
      /accepts the service account/,
      /may list and watch/,
      /^found Pod/,
      /own container/,
      /^container proxy/,
      /^restartPolicy/,
      /^if sidecar proxy dies while the program runs/,
      /^shutdown POST/,
      /^shutdown budget/,
      /termination message/,
    ];
    assert.deepEqual(
      findings.map((f) => order.findIndex((re) => re.test(f.text))),
      order.map((_, i) => i),
    );
  });

  test("a refused shutdown port is judged against the containers not ready now", () => {
    const refused = [
      {
        method: "POST" as const,
        url: new URL("http://localhost:15020/quitquitquit"),
        connect: { ok: false as const, code: "ECONNREFUSED", message: "connection refused" },
      },
    ];
    assert.equal(
      one(judge(options(), facts({ urls: refused, probe: listed(podWith({ sidecars: ["proxy"] })) })), /^shutdown POST/)
        .verdict,
      "warn",
    );
    assert.equal(one(judge(options(), facts({ urls: refused })), /^shutdown POST/).verdict, "FAIL");
  });

  test("--kill under restartPolicy Never, and native sidecars, are judged once the Pod and proa's container are known", () => {
    const native = withNativeSidecar(podWith({ sidecars: ["proxy", "cloud-sql-proxy"], ready: true }), "proxy");
    const findings = judge(options({ kill: ["cloud-sql-proxy"] }), facts({ probe: listed(native), processes: [] }));
    assert.equal(one(findings, /^--kill cloud-sql-proxy: container cloud-sql-proxy must exit 0/).verdict, "warn");
    assert.equal(one(findings, /^native sidecars proxy:/).verdict, "ok");
  });

  test("without the Pod, the checks that need it say they were not made; the rest still run", () => {
    const findings = judge(
      options({ killAll: true }),
      facts({
        probe: { list: failed("listing", 403, FORBIDDEN_MESSAGE), watch: failed("watching", 403, FORBIDDEN_MESSAGE) },
        processes: [],
      }),
    );
    assert.match(
      one(findings, /not checked/).text,
      /proa's container, the containers waited for, restartPolicy, shareProcessNamespace/,
    );
    assert.ok(findings.some((f) => /--kill-all would signal nothing/.test(f.text)));
    assert.ok(findings.some((f) => /shutdown budget/.test(f.text)));
    assert.equal(checkStatus(findings), 1);
  });

  test("with --ready-url: no API, Pod or container line; each ready URL, the wait's limit, the shutdown URL judged against the URLs not ready", () => {
    const ready = {
      url: new URL("http://localhost:15021/healthz/ready"),
      answer: { ready: true, text: "HTTP 200", level: "info" as const, status: 200 },
    };
    const starting = {
      url: new URL("http://localhost:4191/ready"),
      answer: { ready: false, text: "HTTP 503", level: "info" as const, status: 503 },
    };
    const refused = [
      {
        method: "POST" as const,
        url: new URL("http://localhost:15020/quitquitquit"),
        connect: { ok: false as const, code: "ECONNREFUSED", message: "connection refused" },
      },
    ];
    const urlFacts = (readyUrls: NonNullable<Facts["readyUrls"]>): Facts => ({
      env: {},
      nodeVersion: "20.20.2",
      readyUrls,
      urls: refused,
      own: { pid: 40, ppid: 39 },
    });
    const urlOptions = {
      ...options(),
      readyUrls: [ready.url, starting.url],
      ready: { waitFor: [], ignore: [], readyTimeoutMs: 60_000 },
    };
    const findings = judge(urlOptions, urlFacts([ready, starting]));
    const order = [
      /^the Kubernetes API is not used/,
      /^Node\.js/,
      /^ready URL http:\/\/localhost:15021/,
      /^ready URL http:\/\/localhost:4191/,
      /--ready-timeout \(60 s\)/,
      /^with --ready-url a run watches nothing while the program runs/,
      /^shutdown POST/,
      /^shutdown budget 30 s, from the default, as with --ready-url/,
      /termination message/,
    ];
    assert.deepEqual(
      findings.map((f) => order.findIndex((re) => re.test(f.text))),
      order.map((_, i) => i),
      formatReport(findings),
    );
    assert.match(
      one(findings, /^shutdown POST/).text,
      /yet \(connection refused\), while http:\/\/localhost:4191\/ready is not ready/,
    );
    assert.equal(checkStatus(findings), 0);
    assert.equal(
      one(judge(urlOptions, urlFacts([ready])), /^shutdown POST/).verdict,
      "FAIL",
      "every ready URL answers 2xx: the shutdown port should listen",
    );
  });

  test("with --ready-url and --kill: the processes a run would signal, no shareProcessNamespace verdict; a warning only when no other container's process is visible", () => {
    const urlFacts = (processes: ProcessInfo[]): Facts => ({
      env: { PROA_KILL_SCOPE: "visible" },
      nodeVersion: "20.20.2",
      readyUrls: [],
      urls: [],
      processes,
      own: { pid: 40, ppid: 39 },
    });
    const proxy = { pid: 7, ppid: 1, startTime: 2, exe: "envoy", argv0: "envoy", comm: "envoy" };
    const alone = [
      { pid: 1, ppid: 0, startTime: 1, exe: "pause" },
      { pid: 40, ppid: 1, startTime: 3, exe: "node" },
    ];
    const kill = { ...options({ kill: ["envoy"] }), readyUrls: [new URL("http://localhost:9901/ready")] };
    const seen = judge(kill, urlFacts([...alone, proxy]));
    assert.ok(!seen.some((f) => /shareProcessNamespace/.test(f.text)), formatReport(seen));
    assert.equal(one(seen, /--kill envoy would signal/).text, "--kill envoy would signal envoy (7, by executable)");
    assert.equal(one(judge(kill, urlFacts(alone)), /sees no process but PID 1/).verdict, "warn");
  });

  test("a cluster that could not be configured: its error, and no API check", () => {
    const findings = judge(
      options(),
      facts({
        cluster: { ok: false, message: "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set" },
        probe: undefined,
      }),
    );
    assert.deepEqual(
      only(findings, "FAIL").map((f) => f.text),
      ["KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"],
    );
    assert.ok(one(findings, /not checked/));
  });
});

describe("the --check option", () => {
  test("makes the program optional; without it a program is still required", () => {
    const alone = parseCommandLine(["--check"], {});
    assert.ok(alone.kind === "run" && alone.options.check && alone.options.command.length === 0);
    const withProgram = parseCommandLine(
      ["--check", "-p", "http://localhost:15020/quitquitquit", "--", "my-job", "--check"],
      {},
    );
    assert.ok(withProgram.kind === "run" && withProgram.options.check);
    assert.deepEqual(withProgram.options.command, ["my-job", "--check"]);
    assert.throws(() => parseCommandLine([], {}), UsageError);
  });

  test("after -- it is the program's argument, not proa's", () => {
    const run = parseCommandLine(["--", "--check"], {});
    assert.ok(run.kind === "run" && !run.options.check);
    assert.deepEqual(run.options.command, ["--check"]);
  });

  test("is in --help, with its exit statuses", () => {
    assert.match(HELP, /^ {6}--check {2,}check the setup/m);
    assert.match(HELP, /With --check: 0 when no check failed \(warnings allowed\), 1 when one did, 2 for bad usage/);
    assert.match(HELP, /with --ready-url, sends one GET to each ready URL\s+and nothing to the API/);
  });
});

describe("checkSidecarDeaths: what a run does if each watched sidecar dies, in the decision's own words", () => {
  const pod = (policy: "Never" | "OnFailure" | "Always") =>
    podWith({ sidecars: ["proxy"], nativeSidecars: ["mesh"], ready: true, restartPolicy: policy });
  const texts = (findings: { text: string }[]) => findings.map((f) => f.text);
  const waitAll = { waitFor: [], ignore: [] };
  test("under Never: a regular sidecar's death stops the program, a native one is restarted", () => {
    assert.deepEqual(texts(checkSidecarDeaths(pod("Never"), "main", waitAll)), [
      "if sidecar proxy dies while the program runs: the Pod's restartPolicy is Never, so it will not be restarted: proa stops the program",
      "if native sidecar mesh dies while the program runs: the kubelet restarts native sidecars whatever the Pod's restartPolicy: the program runs on",
    ]);
  });
  test("under OnFailure exit 0 and a failure differ, and are both said", () => {
    assert.equal(
      texts(checkSidecarDeaths(pod("OnFailure"), "main", waitAll))[0],
      "if sidecar proxy dies while the program runs: with exit 0, the Pod's restartPolicy is OnFailure, so it will not be restarted: proa stops the program; with another exit code, the Pod's restartPolicy is OnFailure, so the kubelet restarts it: the program runs on",
    );
  });
  test("the flags change the verdict: --critical, --critical-all, --no-critical", () => {
    const flags = { critical: ["mesh"], criticalAll: false, noCritical: false };
    assert.match(
      texts(checkSidecarDeaths(pod("Always"), "main", waitAll, flags))[1] ?? "",
      /--critical names it: proa stops the program$/,
    );
    assert.match(
      texts(checkSidecarDeaths(pod("Always"), "main", waitAll, { ...flags, critical: [], criticalAll: true }))[0] ?? "",
      /--critical names it/,
    );
    assert.match(
      texts(
        checkSidecarDeaths(pod("Never"), "main", waitAll, { critical: [], criticalAll: false, noCritical: true }),
      )[0] ?? "",
      /--no-critical: the program runs on$/,
    );
  });
  test("an --ignore'd container is not watched, and --critical of a container not watched is a FAIL", () => {
    assert.deepEqual(texts(checkSidecarDeaths(pod("Never"), "main", { waitFor: [], ignore: ["mesh"] })).length, 1);
    const [finding] = checkSidecarDeaths(
      pod("Never"),
      "main",
      { waitFor: ["proxy"], ignore: [] },
      { critical: ["mesh"], criticalAll: false, noCritical: false },
    );
    assert.equal(finding?.verdict, "FAIL");
    assert.match(finding?.text ?? "", /^--critical mesh: a run does not watch such a container/);
  });
});
