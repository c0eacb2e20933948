// check.ts's judgements, one pure function per check, each shown ok, warn and FAIL over captured Pods and facts as
// gather() records them. The bundle itself, against a fake API server, is in check-bundle.test.ts.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  checkApi, checkBudget, checkContainers, checkEnvironment, checkKill, checkOwnContainer, checkProgram, checkRestartPolicy,
  checkShutdownUrls, checkStatus, formatReport, judge, programCandidates, rbacYaml, type Candidate, type Facts, type Finding, type Verdict,
} from "../check.ts";
import { KubeError, type Pod, type Probe, type WatchOutcome } from "../kube.ts";
import type { ProcessInfo } from "../shutdown.ts";
import { HELP, parseCommandLine, UsageError } from "../proa.ts";
import { FORBIDDEN, podWith } from "./fake-apiserver.ts";
import { withNativeSidecar, withRestartPolicy } from "./fixtures/pods.ts";

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
const failed = (verb: "listing" | "watching", status: number | undefined, message: string, cause?: Error): WatchOutcome => ({
  kind: "failed",
  at: 0,
  lastedMs: 0,
  error: new KubeError(`${verb} Pod proa-e2e/proa-demo at https://10.96.0.1:443 failed: ${status ? `HTTP ${status}: ` : ""}${message}`, status, undefined, { cause }),
});
const listed = (pod: Pod | null): Probe => ({ list: { kind: "listed", items: pod ? [pod] : [], resourceVersion: "1001" }, pod, watch: ENDED });
const ENDED: WatchOutcome = { kind: "ended", lines: 0, lastedMs: 1000 };
const coded = (code: string) => Object.assign(new Error(code), { code });

function withoutProbe(pod: Pod, name: string): Pod {
  const copy = structuredClone(pod);
  for (const c of [...(copy.spec?.containers ?? []), ...(copy.spec?.initContainers ?? [])] as { name: string; readinessProbe?: unknown }[]) {
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
    assert.equal(text, "ok   all good\nwarn hmm; fix: do this\nFAIL broken; fix: apply\n       kind: Role\n       ---\n");
  });

  test("exit status: 1 when any check failed, 0 with warnings or none", () => {
    assert.equal(checkStatus([{ verdict: "ok", text: "" }, { verdict: "warn", text: "" }]), 0);
    assert.equal(checkStatus([]), 0);
    assert.equal(checkStatus([{ verdict: "ok", text: "" }, { verdict: "FAIL", text: "" }]), 1);
  });
});

describe("the environment", () => {
  const cluster = { ok: true as const, ...CLUSTER, dir: "/sa" };

  test("ok: where the API server, the service account's files and the Pod are, with the rule for each name", () => {
    const findings = checkEnvironment({ env: ENV, nodeVersion: "20.20.2", cluster });
    assert.deepEqual(verdicts(findings), ["ok", "ok"]);
    assert.equal(findings[0]!.text, "the API server is at https://10.96.0.1:443; the service account's files are in /sa; the Pod is proa-e2e/proa-demo (its name from POD_NAME, its namespace from the service account's namespace file)");
    assert.match(checkEnvironment({ env: { POD_NAMESPACE: "proa-e2e" }, nodeVersion: "20.20.2", cluster })[0]!.text, /its name from the hostname, its namespace from POD_NAMESPACE/);
  });

  test("FAIL: in-cluster configuration that loadCluster refused, in its words, and a Node.js older than 20", () => {
    const findings = checkEnvironment({ env: {}, nodeVersion: "18.19.1", cluster: { ok: false, message: "POD_NAME is not a Pod name (a DNS-1123 subdomain): \"Job_Pod\"\n; set POD_NAME" } });
    assert.deepEqual(verdicts(findings), ["FAIL", "FAIL"]);
    assert.equal(findings[0]!.text, "POD_NAME is not a Pod name (a DNS-1123 subdomain): \"Job_Pod\" ; set POD_NAME", "quoted: no newline reaches the report");
    assert.match(findings[1]!.text, /^Node\.js 18\.19\.1 is older than 20/);
    assert.equal(checkEnvironment({ env: {}, nodeVersion: "22.0.0", cluster })[1]!.verdict, "ok");
  });

  test("warn, not FAIL, for NODE_TLS_REJECT_UNAUTHORIZED, NODE_OPTIONS and NODE_DEBUG: proa neutralises the first and keeps the token out of the last", () => {
    const findings = checkEnvironment({ env: { NODE_TLS_REJECT_UNAUTHORIZED: "0", NODE_OPTIONS: "--require /x.js", NODE_DEBUG: "http,tls" }, nodeVersion: "20.1.0", cluster });
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
    assert.deepEqual(findings.map((f) => `${f.verdict} ${f.text}`), [
      "ok TLS: https://10.96.0.1:443's certificate verifies against the mounted ca.crt",
      "ok the API server accepts the service account's token",
      "ok the service account may list and watch Pods in namespace proa-e2e (a run's own list and watch)",
      "ok found Pod proa-e2e/proa-demo",
    ]);
  });

  test("a watch that delivered an event is allowed; an ERROR event is a warning", () => {
    const event: WatchOutcome = { kind: "event", event: { type: "ADDED", object: pod } };
    assert.deepEqual(only(checkApi(ENV, CLUSTER, { ...listed(pod), watch: event }), "warn"), []);
    const error: WatchOutcome = { kind: "event", event: { type: "ERROR", object: { code: 500, message: "internal error" } } };
    assert.equal(one(checkApi(ENV, CLUSTER, { ...listed(pod), watch: error }), /reported an error: internal error/).verdict, "warn");
  });

  test("FAIL: 403 to the list and the watch, each in kube.ts's words naming the user; the last with the Role and RoleBinding for that ServiceAccount", () => {
    const findings = checkApi(ENV, CLUSTER, { list: failed("listing", 403, FORBIDDEN_MESSAGE), watch: failed("watching", 403, FORBIDDEN_MESSAGE.replace("cannot list", "cannot watch")) });
    assert.equal(one(findings, /accepts the service account's token/).verdict, "ok", "a 403 means the token was accepted");
    const [list, watch] = only(findings, "FAIL") as [Finding, Finding];
    assert.match(list.text, /^listing Pod proa-e2e\/proa-demo .*User "system:serviceaccount:proa-e2e:proa-nobody" cannot list/);
    assert.equal(list.more, undefined);
    assert.match(watch.text, /^watching Pod .* cannot watch resource "pods"/);
    assert.equal(watch.fix, "apply this Role and RoleBinding (kubectl apply -n proa-e2e -f -)");
    assert.ok(watch.more?.includes("subjects: [{kind: ServiceAccount, name: proa-nobody, namespace: proa-e2e}]"), watch.more?.join("\n"));
    assert.ok(watch.more?.includes(`rules: [{apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"]}]`), "job.yaml's rule");
    assert.equal(checkStatus(findings), 1);
    assert.ok(!findings.some((f) => /may list and watch|found Pod/.test(f.text)));
  });

  test("FAIL: a Role with list but not watch fails the watch only", () => {
    const findings = checkApi(ENV, CLUSTER, { ...listed(pod), watch: failed("watching", 403, FORBIDDEN_MESSAGE.replace("cannot list", "cannot watch")) });
    assert.deepEqual(only(findings, "FAIL").map((f) => f.text.split(" ")[0]), ["watching"]);
    assert.ok(one(findings, /found Pod/));
  });

  test("rbacYaml puts only valid Kubernetes names into the YAML: anything else gets a placeholder or the Pod's namespace", () => {
    const subjects = (message: string, namespace = "ns") => rbacYaml(message, namespace).find((line) => line.startsWith("subjects"));
    assert.equal(subjects(`User "system:serviceaccount:ns-1:runner"`), "subjects: [{kind: ServiceAccount, name: runner, namespace: ns-1}]");
    assert.equal(subjects(`User "system:serviceaccount:ns:x}], evil: [{"`), "subjects: [{kind: ServiceAccount, name: SERVICE_ACCOUNT, namespace: ns}]");
    assert.equal(subjects(`User "alice" cannot list`), "subjects: [{kind: ServiceAccount, name: SERVICE_ACCOUNT, namespace: ns}]");
    for (const bad of ["..", "-sa", "a".repeat(254)]) assert.equal(subjects(`User "system:serviceaccount:ns:${bad}"`), "subjects: [{kind: ServiceAccount, name: SERVICE_ACCOUNT, namespace: ns}]", bad);
    assert.equal(subjects(`User "system:serviceaccount:-x:sa"`, "home"), "subjects: [{kind: ServiceAccount, name: sa, namespace: home}]");
    assert.equal(subjects(`User "system:serviceaccount:${"a".repeat(64)}:sa"`, "home"), "subjects: [{kind: ServiceAccount, name: sa, namespace: home}]");
  });

  test("FAIL: a refused token (401), once for both requests", () => {
    const findings = checkApi(ENV, CLUSTER, { list: failed("listing", 401, "Unauthorized"), watch: failed("watching", 401, "Unauthorized") });
    assert.deepEqual(verdicts(findings), ["ok", "FAIL"]);
    assert.match(findings[1]!.text, /HTTP 401/);
  });

  test("FAIL, with the fix for each: TLS that does not verify, a server that cannot be reached, an answer that is not one", () => {
    const cert = checkApi(ENV, CLUSTER, { list: failed("listing", undefined, "unable to verify the first certificate", coded("UNABLE_TO_VERIFY_LEAF_SIGNATURE")), watch: ENDED });
    assert.deepEqual(verdicts(cert), ["FAIL"]);
    assert.match(cert[0]!.text, /^TLS: listing Pod .* unable to verify the first certificate$/);
    assert.match(cert[0]!.fix!, /mount the cluster's own CA/);
    for (const code of ["SELF_SIGNED_CERT_IN_CHAIN", "ERR_TLS_CERT_ALTNAME_INVALID", "CERT_HAS_EXPIRED"]) {
      assert.match(checkApi(ENV, CLUSTER, { list: failed("listing", undefined, code, coded(code)), watch: ENDED })[0]!.fix!, /own CA/, code);
    }
    const refused = checkApi(ENV, CLUSTER, { list: failed("listing", undefined, "connect ECONNREFUSED", coded("ECONNREFUSED")), watch: ENDED });
    assert.match(refused[0]!.fix!, /NetworkPolicy/);
    assert.match(checkApi(ENV, CLUSTER, { list: failed("listing", undefined, "no data for 10000 ms"), watch: ENDED })[0]!.fix!, /NetworkPolicy/);
    assert.equal(checkApi(ENV, CLUSTER, { list: failed("listing", undefined, "the answer is longer than 65536 bytes", new Error("too long")), watch: ENDED })[0]!.fix, undefined);
  });

  test("FAIL: a watch that failed for another reason; the list and the token are still ok", () => {
    const findings = checkApi(ENV, CLUSTER, { ...listed(pod), watch: failed("watching", 500, "etcdserver: leader changed") });
    assert.deepEqual(verdicts(findings), ["ok", "ok", "FAIL", "ok"]);
  });

  test("FAIL: no such Pod, with the rule that named it and the downward API; warn: another Pod in the answer", () => {
    const missing = one(checkApi({}, CLUSTER, listed(null)), /there is no Pod/);
    assert.equal(missing.verdict, "FAIL");
    assert.match(missing.text, /its name from the hostname/);
    assert.match(missing.fix!, /POD_NAME.*fieldPath: metadata\.name/);
    assert.equal(one(checkApi(ENV, CLUSTER, { ...listed(null), ignored: "the API server sent Pod x/y: ignoring it" }), /ignoring it/).verdict, "warn");
  });
});

describe("proa's own container", () => {
  test("ok: chosen by --container, or the only regular container, with the rule", () => {
    assert.deepEqual(checkOwnContainer(podWith({ sidecars: ["proxy"] }), { container: "main" }), { name: "main", finding: { verdict: "ok", text: "proa's own container is main (--container)" } });
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
  const lines = (pod: Pod, ready = none) => checkContainers(pod, "main", ready).findings.map((f) => `${f.verdict} ${f.text}`);

  test("ok: each with its readiness now (information, not failure) and its readinessProbe", () => {
    const pod = podWith({ sidecars: ["sidecar-1", "sidecar-2"], ready: { "sidecar-1": true } });
    assert.deepEqual(lines(pod), ["ok container sidecar-1: ready; it has a readinessProbe", "ok container sidecar-2: not ready yet (running); it has a readinessProbe"]);
    assert.deepEqual(checkContainers(pod, "main", none).notReady, ["sidecar-2"]);
  });

  test("warn: a container without a readinessProbe counts as ready once it starts", () => {
    const [finding] = checkContainers(withoutProbe(podWith({ sidecars: ["proxy"] }), "proxy"), "main", none).findings;
    assert.equal(finding!.verdict, "warn");
    assert.match(finding!.text, /^container proxy: .*no readinessProbe/);
    assert.match(finding!.fix!, /give proxy a readinessProbe/);
  });

  test("native sidecars are named so; plain init containers are not waited for", () => {
    const pod = withNativeSidecar(podWith({ sidecars: ["proxy", "logger"], initContainers: ["migrate"], ready: true }), "logger");
    assert.deepEqual(lines(pod).map((l) => l.split(":")[0]), ["ok container proxy", "ok native sidecar logger"]);
  });

  test("--wait-for and --ignore narrow the set; an unknown name is a FAIL", () => {
    const pod = podWith({ sidecars: ["proxy", "logger"] });
    assert.deepEqual(lines(pod, { waitFor: ["proxy"], ignore: [] }).map((l) => l.split(":")[0]), ["ok container proxy"]);
    assert.deepEqual(lines(pod, { waitFor: [], ignore: ["proxy"] }).map((l) => l.split(":")[0]), ["ok container logger"]);
    const { findings, notReady } = checkContainers(pod, "main", { waitFor: ["proxi"], ignore: [] });
    assert.deepEqual(verdicts(findings), ["FAIL"]);
    assert.match(findings[0]!.text, /--wait-for proxi/);
    assert.equal(notReady, undefined);
  });

  test("warn: a sidecar that terminated under restartPolicy Never means a run now would fail at once", () => {
    const { findings } = checkContainers(podWith({ sidecars: ["proxy"], terminated: { proxy: { exitCode: 1 } } }), "main", none);
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
  test("ok under Never: a dead sidecar fails the wait at once", () => assert.equal(checkRestartPolicy(pod, undefined).verdict, "ok"));
  test("warn under OnFailure or Always (the default) without --ready-timeout: the wait has no limit", () => {
    assert.equal(checkRestartPolicy(withRestartPolicy(pod, "OnFailure"), undefined).verdict, "warn");
    const always = checkRestartPolicy({ ...pod, spec: { ...pod.spec, restartPolicy: undefined } }, undefined);
    assert.equal(always.verdict, "warn");
    assert.match(always.text, /restartPolicy Always/);
  });
  test("ok under OnFailure with --ready-timeout", () => assert.match(checkRestartPolicy(withRestartPolicy(pod, "OnFailure"), 300_000).text, /at most --ready-timeout \(300 s\)/));
});

describe("shutdown URLs and means", () => {
  const noKill = { kill: [], killAll: false };
  const pod = podWith({ sidecars: ["proxy"], ready: true });
  const url = (method: "GET" | "POST", text: string, connect: Facts["urls"][number]["connect"]) => ({ method, url: new URL(text), connect });
  const open = { ok: true as const };
  const refused = { ok: false as const, code: "ECONNREFUSED", message: "connection refused" };

  test("ok: something accepts a TCP connection at the URL's host and port; nothing was sent", () => {
    const [finding] = checkShutdownUrls(noKill, [url("POST", "http://localhost:15020/quitquitquit", open)], pod, []);
    assert.equal(finding!.verdict, "ok");
    assert.equal(finding!.text, "shutdown POST http://localhost:15020/quitquitquit: something accepts TCP connections at localhost:15020 (connected and closed, no request sent)");
    assert.match(checkShutdownUrls(noKill, [url("GET", "https://[::1]/stop", open)], pod, [])[0]!.text, /at \[::1\]:443/);
    assert.match(checkShutdownUrls(noKill, [url("GET", "http://sidecar/stop", open)], pod, [])[0]!.text, /at sidecar:80/);
  });

  test("FAIL: refused when every sidecar is ready (or readiness is unknown); only a warning while some are not", () => {
    assert.equal(checkShutdownUrls(noKill, [url("POST", "http://127.0.0.1:9091/quit", refused)], pod, [])[0]!.verdict, "FAIL");
    const early = checkShutdownUrls(noKill, [url("POST", "http://127.0.0.1:9091/quit", refused)], pod, ["proxy"])[0]!;
    assert.equal(early.verdict, "warn");
    assert.match(early.text, /while proxy is not ready/);
    assert.match(checkShutdownUrls(noKill, [url("POST", "http://127.0.0.1:9091/quit", refused)], pod, ["a", "b"])[0]!.text, /while a, b are not ready/);
    assert.equal(checkShutdownUrls(noKill, [url("POST", "http://127.0.0.1:9091/quit", refused)], undefined)[0]!.verdict, "FAIL");
  });

  test("FAIL: a host that does not resolve, even while sidecars are not ready", () => {
    const findings = checkShutdownUrls(noKill, [url("GET", "http://sidecar.invalid:80/x", { ok: false, code: "ENOTFOUND", message: "getaddrinfo ENOTFOUND sidecar.invalid" })], pod, ["proxy"]);
    assert.equal(findings[0]!.verdict, "FAIL");
    assert.match(findings[0]!.text, /cannot connect to sidecar\.invalid:80: getaddrinfo ENOTFOUND/);
  });

  test("warn: GET to /quitquitquit on Envoy's or Istio's admin port; not for POST, nor on another port", () => {
    for (const port of ["9901", "15000", "15020"]) {
      const envoy = one(checkShutdownUrls(noKill, [url("GET", `http://localhost:${port}/quitquitquit`, open)], pod, []), /only POST/);
      assert.equal(envoy.verdict, "warn");
      assert.equal(envoy.fix, `use --shutdown-http-post http://localhost:${port}/quitquitquit`);
    }
    assert.deepEqual(verdicts(checkShutdownUrls(noKill, [url("POST", "http://localhost:15000/quitquitquit", open)], pod, [])), ["ok"]);
    assert.deepEqual(verdicts(checkShutdownUrls(noKill, [url("GET", "http://localhost:9091/quitquitquit", open)], pod, [])), ["ok"]);
  });

  test("the URL's credentials and query values never reach the report", () => {
    const report = formatReport(checkShutdownUrls(noKill, [url("GET", "http://admin:hunter2@localhost:15020/quitquitquit?token=abc", refused)], pod, []));
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
  const own = { pid: 40, ppid: 39 };
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

  test("FAIL: the Pod does not share its process namespace", () => {
    const findings = checkKill({ kill: ["envoy"], killAll: false }, pod, processes, own);
    assert.equal(findings[0]!.verdict, "FAIL");
    assert.match(findings[0]!.fix!, /shareProcessNamespace: true/);
  });

  test("ok: each --kill NAME with the processes a run would signal and the rule that matched", () => {
    const findings = checkKill({ kill: ["envoy", "pilot-agent", "sql-proxy"], killAll: false }, shared(pod), processes, own);
    assert.deepEqual(texts(findings), [
      "ok --kill envoy, --kill pilot-agent, --kill sql-proxy: the Pod shares its process namespace (shareProcessNamespace: true)",
      "ok --kill envoy would signal envoy (7, by executable)",
      "ok --kill pilot-agent would signal pilot-agent (8, by argv[0])",
      "ok --kill sql-proxy would signal sql-proxy (10, by comm)",
    ]);
  });

  test("warn: a --kill NAME that matches nothing lists what is visible, never proa, its ancestors or PID 1; comm cut at 15 never matches", () => {
    const finding = one(checkKill({ kill: ["cloud-sql-proxy"], killAll: false }, shared(pod), processes, own), /matches no visible process/);
    assert.equal(finding.verdict, "warn");
    assert.match(finding.text, /visible: cloud-sql-proxy, envoy, pilot-agent, sql-proxy$/);
    assert.equal(one(checkKill({ kill: ["node"], killAll: false }, shared(pod), processes, own), /every program that node runs/).verdict, "warn");
  });

  test("--kill-all: what it would signal; a warning when it sees nothing", () => {
    assert.match(one(checkKill({ kill: [], killAll: true }, shared(pod), processes, own), /--kill-all would/).text, /envoy \(7, by name\), pilot-agent \(8, by name\), cloud-sql-proxy \(9, by name\), sql-proxy \(10, by name\)/);
    const alone = checkKill({ kill: [], killAll: true }, undefined, [processes[0]!, processes[6]!], own);
    assert.deepEqual(texts(alone), ["ok --kill-all would signal nothing (never PID 1, proa or its ancestors)", "warn proa sees no process but PID 1 and its own"]);
  });

  test("warn: /proc could not be read; without the Pod, shareProcessNamespace is not judged", () => {
    assert.deepEqual(verdicts(checkKill({ kill: ["envoy"], killAll: false }, undefined, { error: "EACCES" }, own)), ["warn"]);
  });
});

describe("the shutdown budget", () => {
  const pod = podWith({ sidecars: ["proxy"] }); // terminationGracePeriodSeconds: 30, as captured
  test("from --shutdown-timeout, the Pod's grace period, or the default, as shutdown.ts takes it", () => {
    assert.equal(checkBudget(pod, undefined).text, "shutdown budget 30 s, from the Pod's terminationGracePeriodSeconds; after SIGTERM, never past a second before the grace period ends");
    assert.match(checkBudget(pod, 10_000).text, /^shutdown budget 10 s, from --shutdown-timeout;/);
    assert.match(checkBudget(pod, 60_000).text, /^shutdown budget 60 s, from --shutdown-timeout;/);
    assert.match(checkBudget(undefined, undefined).text, /^shutdown budget 30 s, from the default;/);
    assert.match(checkBudget({ ...pod, spec: { ...pod.spec, terminationGracePeriodSeconds: 90 } }, undefined).text, /^shutdown budget 90 s/);
  });
});

describe("the program after --", () => {
  test("programCandidates: each PATH entry in order, an empty entry meaning the working directory; a name with a slash as it is", () => {
    assert.deepEqual(programCandidates("job", "/usr/local/bin::/bin", "/app"), ["/usr/local/bin/job", "/app/job", "/bin/job"]);
    assert.deepEqual(programCandidates("./job", "/bin", "/app"), ["/app/job"]);
    assert.deepEqual(programCandidates("/opt/job", "/bin", "/app"), ["/opt/job"]);
  });

  const facts = (...candidates: Candidate[]) => ({ name: "job", path: "/a:/b", candidates });

  test("ok: the first executable file on PATH, as spawn would pick it", () => {
    const finding = checkProgram(facts({ path: "/a/job", kind: "missing", executable: false }, { path: "/b/job", kind: "file", executable: true }));
    assert.deepEqual(finding, { verdict: "ok", text: "program job is /b/job, executable" });
  });

  test("FAIL 127: nowhere on PATH, or a script whose #! interpreter is missing", () => {
    const missing = checkProgram(facts({ path: "/a/job", kind: "missing", executable: false }));
    assert.equal(missing.verdict, "FAIL");
    assert.match(missing.text, /is not on PATH \(\/a:\/b\): a run would exit 127/);
    const script = checkProgram(facts({ path: "/a/job", kind: "file", executable: true, interpreter: { path: "/bin/bash", found: false } }));
    assert.match(script.text, /#! line names \/bin\/bash, which is not in the image: a run would exit 127/);
  });

  test("FAIL 126: found but not executable, or a directory", () => {
    const plain = checkProgram(facts({ path: "/a/job", kind: "file", executable: false }, { path: "/b/job", kind: "missing", executable: false }));
    assert.match(plain.text, /\/a\/job has no execute permission: a run would exit 126/);
    assert.match(plain.fix!, /chmod \+x \/a\/job/);
    assert.match(checkProgram(facts({ path: "/a/job", kind: "directory", executable: true })).text, /is a directory: a run would exit 126/);
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
    shutdown: { httpGet: [], httpPost: [], kill: [], killAll: false, requestTimeoutMs: 5000, userAgent: "proa/test", ...shutdown },
  });

  test("a good setup gives no FAIL, in the order a run meets each part", () => {
    const findings = judge(options(), facts({ urls: [{ method: "POST", url: new URL("http://localhost:15020/quitquitquit"), connect: { ok: true } }] }));
    assert.equal(checkStatus(findings), 0, formatReport(findings));
    const order = [/^the API server is at/, /^Node\.js/, /^TLS/, /accepts the service account/, /may list and watch/, /^found Pod/, /own container/, /^container proxy/, /^restartPolicy/, /^shutdown POST/, /^shutdown budget/, /termination message/];
    assert.deepEqual(findings.map((f) => order.findIndex((re) => re.test(f.text))), order.map((_, i) => i));
  });

  test("a refused shutdown port is judged against the containers not ready now", () => {
    const refused = [{ method: "POST" as const, url: new URL("http://localhost:15020/quitquitquit"), connect: { ok: false as const, code: "ECONNREFUSED", message: "connection refused" } }];
    assert.equal(one(judge(options(), facts({ urls: refused, probe: listed(podWith({ sidecars: ["proxy"] })) })), /^shutdown POST/).verdict, "warn");
    assert.equal(one(judge(options(), facts({ urls: refused })), /^shutdown POST/).verdict, "FAIL");
  });

  test("without the Pod, the checks that need it say they were not made; the rest still run", () => {
    const findings = judge(options({ killAll: true }), facts({ probe: { list: failed("listing", 403, FORBIDDEN_MESSAGE), watch: failed("watching", 403, FORBIDDEN_MESSAGE) }, processes: [] }));
    assert.match(one(findings, /not checked/).text, /proa's container, the containers waited for, restartPolicy, shareProcessNamespace/);
    assert.ok(findings.some((f) => /--kill-all would signal nothing/.test(f.text)));
    assert.ok(findings.some((f) => /shutdown budget/.test(f.text)));
    assert.equal(checkStatus(findings), 1);
  });

  test("a cluster that could not be configured: its error, and no API check", () => {
    const findings = judge(options(), facts({ cluster: { ok: false, message: "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set" }, probe: undefined }));
    assert.deepEqual(only(findings, "FAIL").map((f) => f.text), ["KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"]);
    assert.ok(one(findings, /not checked/));
  });
});

describe("the --check option", () => {
  test("makes the program optional; without it a program is still required", () => {
    const alone = parseCommandLine(["--check"], {});
    assert.ok(alone.kind === "run" && alone.options.check && alone.options.command.length === 0);
    const withProgram = parseCommandLine(["--check", "-p", "http://localhost:15020/quitquitquit", "--", "my-job", "--check"], {});
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
  });
});
