// check.ts's judgements, one pure function per check, each shown ok, warn and FAIL over captured Pods and facts as
// gather() records them. The bundle itself, against a fake API server, is in check-bundle.test.ts.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  checkApi, checkBudget, checkContainers, checkEnvironment, checkKill, checkOwnContainer, checkProgram, checkRestartPolicy,
  checkServiceAccount, checkShutdownMeans, checkStatus, debugModules, formatReport, judge, programCandidates, rbacFix,
  type Candidate, type ClusterFacts, type Facts, type Finding, type Verdict,
} from "../check.ts";
import { KubeError, type Pod, type WatchOutcome } from "../kube.ts";
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

const CLUSTER: ClusterFacts = { server: "https://10.96.0.1:443", namespace: "proa-e2e", podName: "proa-demo", podNameRule: "POD_NAME" };
const FORBIDDEN_MESSAGE = (FORBIDDEN as { message: string }).message; // User "system:serviceaccount:proa-e2e:proa-nobody" cannot list
/** A failed request as kube.ts reports it: "<what> failed: HTTP <code>: <server's message><hint>". */
const failed = (verb: "listing" | "watching", status: number | undefined, message: string): WatchOutcome => ({
  kind: "failed",
  at: 0,
  error: new KubeError(`${verb} Pod proa-e2e/proa-demo at https://10.96.0.1:443 failed: ${status ? `HTTP ${status}: ` : ""}${message}${status === 403 ? "; grant someone a Role" : ""}`, status),
});
const listed = (pod: Pod | null): WatchOutcome => ({ kind: "listed", pod, resourceVersion: "1001" });
const ENDED: WatchOutcome = { kind: "ended", lines: 0 };

function withoutProbe(pod: Pod, name: string): Pod {
  const copy = structuredClone(pod);
  for (const c of [...(copy.spec?.containers ?? []), ...(copy.spec?.initContainers ?? [])] as { name: string; readinessProbe?: unknown }[]) {
    if (c.name === name) delete c.readinessProbe;
  }
  return copy;
}

describe("the report", () => {
  test("one line per finding, starting with its verdict; the fix follows warn and FAIL; YAML lines are indented under it", () => {
    const text = formatReport([
      { verdict: "ok", text: "all good" },
      { verdict: "warn", text: "hmm", fix: "do this" },
      { verdict: "FAIL", text: "broken", fix: "apply", more: ["kind: Role", "---"] },
    ]);
    assert.equal(text, "ok   all good\nwarn hmm; fix: do this\nFAIL broken; fix: apply\n       kind: Role\n       ---\n");
  });

  test("exit status: 1 when any check failed, 0 with warnings or none", () => {
    assert.equal(checkStatus([{ verdict: "ok", text: "" }, { verdict: "warn", text: "", fix: "" }]), 0);
    assert.equal(checkStatus([]), 0);
    assert.equal(checkStatus([{ verdict: "ok", text: "" }, { verdict: "FAIL", text: "", fix: "" }]), 1);
  });
});

describe("the environment", () => {
  const base = { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" };

  test("ok: the service variables, a Node.js 20 and nothing that changes Node's behaviour", () => {
    const findings = checkEnvironment({ env: { ...base, POD_NAME: "job-x7k2p", POD_NAMESPACE: "batch" }, nodeVersion: "20.20.2" });
    assert.deepEqual(verdicts(findings), ["ok", "ok"]);
    assert.match(findings[0]!.text, /10\.96\.0\.1:443/);
  });

  test("FAIL: outside a Pod, a port that is not a number, an old Node.js", () => {
    assert.match(one(checkEnvironment({ env: {}, nodeVersion: "20.0.0" }), /not set/).fix!, /kubectl exec/);
    assert.equal(one(checkEnvironment({ env: { ...base, KUBERNETES_SERVICE_PORT: "https" }, nodeVersion: "20.0.0" }), /not a port/).verdict, "FAIL");
    assert.equal(one(checkEnvironment({ env: { ...base, KUBERNETES_SERVICE_PORT: "65536" }, nodeVersion: "20.0.0" }), /not a port/).verdict, "FAIL");
    assert.equal(one(checkEnvironment({ env: base, nodeVersion: "18.19.1" }), /Node\.js/).verdict, "FAIL");
  });

  test("NODE_TLS_REJECT_UNAUTHORIZED=0 is a FAIL (it turns verification off); another value a warning", () => {
    const off = one(checkEnvironment({ env: { ...base, NODE_TLS_REJECT_UNAUTHORIZED: "0" }, nodeVersion: "20.1.0" }), /NODE_TLS_REJECT_UNAUTHORIZED/);
    assert.equal(off.verdict, "FAIL");
    assert.match(off.fix!, /remove NODE_TLS_REJECT_UNAUTHORIZED/);
    assert.equal(one(checkEnvironment({ env: { ...base, NODE_TLS_REJECT_UNAUTHORIZED: "1" }, nodeVersion: "20.1.0" }), /NODE_TLS_REJECT_UNAUTHORIZED/).verdict, "warn");
  });

  test("warn: NODE_OPTIONS and NODE_DEBUG, quoted on one line; FAIL: NODE_DEBUG for a module that prints proa's requests", () => {
    const findings = checkEnvironment({ env: { ...base, NODE_OPTIONS: "--require /x.js", NODE_DEBUG: "fs,\nworker" }, nodeVersion: "20.1.0" });
    assert.equal(one(findings, /NODE_OPTIONS/).verdict, "warn");
    assert.match(one(findings, /NODE_OPTIONS/).text, /--require \/x\.js/);
    assert.equal(one(findings, /NODE_DEBUG/).verdict, "warn");
    assert.doesNotMatch(formatReport(findings).trimEnd(), /\n(?!ok |warn|FAIL)/, "every line starts with a verdict");
    for (const value of ["http", "fs,HTTPS", "ht*", "*", " tls "]) {
      assert.equal(one(checkEnvironment({ env: { ...base, NODE_DEBUG: value }, nodeVersion: "20.1.0" }), /NODE_DEBUG/).verdict, "FAIL", value);
    }
  });

  test("debugModules: NODE_DEBUG's names, case-insensitive, * matching anything, nothing else a pattern", () => {
    const modules = ["http", "https", "http2", "net", "tls"];
    assert.deepEqual(debugModules("http", modules), ["http"]);
    assert.deepEqual(debugModules("HTTP*,n?t", modules), ["http", "https", "http2"]);
    assert.deepEqual(debugModules("*", modules), modules);
    assert.deepEqual(debugModules("h.tp,net", modules), ["net"]);
    assert.deepEqual(debugModules("", modules), []);
  });

  test("FAIL: POD_NAME that is not a DNS-1123 subdomain, POD_NAMESPACE that is not a DNS-1123 label, with the downward API", () => {
    for (const name of ["Job_Pod", "-job", "job.", "a".repeat(254), "job/../x"]) {
      const finding = one(checkEnvironment({ env: { ...base, POD_NAME: name }, nodeVersion: "20.1.0" }), /POD_NAME/);
      assert.equal(finding.verdict, "FAIL", name);
      assert.match(finding.fix!, /fieldPath: metadata\.name/);
    }
    for (const ns of ["Batch", "a".repeat(64), "batch.jobs"]) assert.equal(one(checkEnvironment({ env: { ...base, POD_NAMESPACE: ns }, nodeVersion: "20.1.0" }), /POD_NAMESPACE/).verdict, "FAIL", ns);
    assert.equal(checkEnvironment({ env: { ...base, POD_NAME: "a".repeat(63) + ".b", POD_NAMESPACE: "a".repeat(63) }, nodeVersion: "20.1.0" }).length, 2);
  });
});

describe("the service account's files", () => {
  const good: Facts["serviceAccount"] = {
    dir: "/sa",
    token: { ok: true, bytes: 900 },
    ca: { ok: true, subject: "CN=kubernetes", validTo: "Nov  1 13:16:57 2126 GMT", expired: false },
    namespace: { ok: true, value: "batch" },
  };

  test("ok: the token (its size, never its content), the CA's subject, the namespace", () => {
    const findings = checkServiceAccount({ env: {}, serviceAccount: good });
    assert.deepEqual(verdicts(findings), ["ok", "ok"]);
    assert.match(findings[0]!.text, /900 bytes/);
    assert.match(findings[1]!.text, /CN=kubernetes/);
  });

  test("FAIL: no token, an empty token, no ca.crt, a ca.crt that is no certificate or has expired; all with the automount fix", () => {
    const cases: Partial<Facts["serviceAccount"]>[] = [
      { token: { ok: false, code: "ENOENT" } },
      { token: { ok: true, bytes: 0 } },
      { ca: { ok: false, code: "EACCES" } },
      { ca: { ok: true, error: "error:0680007B:asn1 encoding routines::header too long" } },
      { ca: { ok: true, subject: "CN=old", validTo: "Jan  1 00:00:00 2020 GMT", expired: true } },
    ];
    for (const change of cases) {
      const fails = only(checkServiceAccount({ env: {}, serviceAccount: { ...good, ...change } }), "FAIL");
      assert.equal(fails.length, 1, JSON.stringify(change));
    }
    assert.match(only(checkServiceAccount({ env: {}, serviceAccount: { ...good, token: { ok: false, code: "ENOENT" } } }), "FAIL")[0]!.fix!, /automountServiceAccountToken/);
  });

  test("the namespace file: a FAIL only without POD_NAMESPACE; a warning when POD_NAMESPACE names another namespace", () => {
    const missing = { ...good, namespace: { ok: false as const, code: "ENOENT" } };
    assert.equal(one(checkServiceAccount({ env: {}, serviceAccount: missing }), /namespace/).verdict, "FAIL");
    assert.deepEqual(only(checkServiceAccount({ env: { POD_NAMESPACE: "batch" }, serviceAccount: missing }), "FAIL"), []);
    assert.equal(one(checkServiceAccount({ env: { POD_NAMESPACE: "other" }, serviceAccount: good }), /POD_NAMESPACE/).verdict, "warn");
    assert.deepEqual(only(checkServiceAccount({ env: { POD_NAMESPACE: "batch" }, serviceAccount: good }), "warn"), []);
  });
});

describe("the API server: TLS, token, permissions, the Pod", () => {
  const pod = podWith({ sidecars: ["sidecar-1"], ready: true });

  test("ok: TLS verified, token accepted, list and watch allowed, the Pod found with the rule that named it", () => {
    const findings = checkApi(CLUSTER, { ok: true }, { list: listed(pod), watch: ENDED });
    assert.deepEqual(verdicts(findings), ["ok", "ok", "ok", "ok"]);
    assert.match(findings[0]!.text, /verifies against the mounted ca\.crt/);
    assert.match(findings[2]!.text, /may list and watch Pods in namespace proa-e2e/);
    assert.match(findings[3]!.text, /found Pod proa-e2e\/proa-demo \(its name from POD_NAME\)/);
  });

  test("a watch that delivered an event, or ended, is allowed; an ERROR event is a warning", () => {
    const event: WatchOutcome = { kind: "event", event: { type: "ADDED", object: pod } };
    assert.deepEqual(only(checkApi(CLUSTER, { ok: true }, { list: listed(pod), watch: event }), "warn"), []);
    const error: WatchOutcome = { kind: "event", event: { type: "ERROR", object: { code: 500, message: "internal error" } } };
    assert.equal(one(checkApi(CLUSTER, { ok: true }, { list: listed(pod), watch: error }), /reported an error/).verdict, "warn");
  });

  test("FAIL: 403 to the list and the watch names both and the user, and gives the Role and RoleBinding for that ServiceAccount", () => {
    const watchMessage = FORBIDDEN_MESSAGE.replace("cannot list", "cannot watch");
    const findings = checkApi(CLUSTER, { ok: true }, { list: failed("listing", 403, FORBIDDEN_MESSAGE), watch: failed("watching", 403, watchMessage) });
    assert.equal(one(findings, /accepts the service account's token/).verdict, "ok", "a 403 means the token was accepted");
    const [list, watch] = only(findings, "FAIL") as [Finding, Finding];
    assert.match(list.text, /^the list of Pod proa-e2e\/proa-demo was answered 403 Forbidden: pods "proa-demo" is forbidden: User "system:serviceaccount:proa-e2e:proa-nobody" cannot list/);
    assert.match(watch.text, /^the watch of Pod .* cannot watch resource "pods"/);
    assert.doesNotMatch(list.text, /grant someone/, "quotes the server, not kube.ts's own hint");
    assert.match(watch.fix!, /grant system:serviceaccount:proa-e2e:proa-nobody get, list and watch on pods/);
    assert.ok(watch.more?.includes("subjects: [{kind: ServiceAccount, name: proa-nobody, namespace: proa-e2e}]"), watch.more?.join("\n"));
    assert.ok(watch.more?.includes(`rules: [{apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"]}]`));
    assert.equal(checkStatus(findings), 1);
    assert.ok(!findings.some((f) => /may list and watch/.test(f.text)));
  });

  test("FAIL: a Role with list but not watch fails the watch only", () => {
    const findings = checkApi(CLUSTER, { ok: true }, { list: listed(pod), watch: failed("watching", 403, FORBIDDEN_MESSAGE.replace("cannot list", "cannot watch")) });
    assert.deepEqual(only(findings, "FAIL").map((f) => f.text.slice(0, 20)), ["the watch of Pod pro"]);
  });

  test("rbacFix puts only DNS-1123 names into the YAML: a user that is not a ServiceAccount gets a placeholder", () => {
    assert.ok(rbacFix(`User "system:serviceaccount:ns-1:runner"`, "ns-1").yaml.includes("subjects: [{kind: ServiceAccount, name: runner, namespace: ns-1}]"));
    const injected = rbacFix(`User "system:serviceaccount:ns:x}], evil: [{"`, "ns");
    assert.ok(injected.yaml.includes("subjects: [{kind: ServiceAccount, name: SERVICE_ACCOUNT, namespace: ns}]"), injected.yaml.join("\n"));
    assert.match(rbacFix(`User "alice" cannot list`, "ns").subject, /SERVICE_ACCOUNT/);
    for (const bad of ["..", "-sa", "a".repeat(254)]) {
      assert.ok(rbacFix(`User "system:serviceaccount:ns:${bad}"`, "ns").yaml.includes("subjects: [{kind: ServiceAccount, name: SERVICE_ACCOUNT, namespace: ns}]"), bad);
    }
    assert.ok(rbacFix(`User "system:serviceaccount:-x:sa"`, "home").yaml.includes("subjects: [{kind: ServiceAccount, name: sa, namespace: home}]"));
  });

  test("a 403 whose message is huge, has newlines or quotes a token: capped, flattened and masked in the report", () => {
    const message = `forbidden\nFAIL fake line\r\nAuthorization: Bearer eyJhbGciOi.secret.token ${"x".repeat(100_000)}`;
    const findings = checkApi(CLUSTER, { ok: true }, { list: failed("listing", 403, message), watch: ENDED });
    const report = formatReport(findings);
    assert.ok(report.length < 5000, `report is ${report.length} characters`);
    assert.ok(!report.includes("eyJhbGciOi"), "the token is masked");
    for (const line of report.trimEnd().split("\n")) assert.match(line, /^(ok |warn|FAIL|       )/, `a line that is neither a verdict nor indented: ${line.slice(0, 80)}`);
    assert.ok(!report.includes("\nFAIL fake line"));
  });

  test("FAIL: a refused token (401)", () => {
    const findings = checkApi(CLUSTER, { ok: true }, { list: failed("listing", 401, "Unauthorized"), watch: failed("watching", 401, "Unauthorized") });
    assert.deepEqual(verdicts(findings), ["ok", "FAIL"]);
    assert.match(findings[1]!.text, /refused the token/);
  });

  test("FAIL: TLS that does not verify, or a server that cannot be reached, each with its own fix", () => {
    const cert = checkApi(CLUSTER, { ok: false, code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE", message: "unable to verify the first certificate" }, undefined);
    assert.equal(cert[0]!.verdict, "FAIL");
    assert.match(cert[0]!.text, /does not verify against the mounted ca\.crt: unable to verify/);
    const refused = checkApi(CLUSTER, { ok: false, code: "ECONNREFUSED", message: "connect ECONNREFUSED 10.96.0.1:443" }, undefined);
    assert.match(refused[0]!.text, /^cannot connect to the API server/);
    assert.match(refused[0]!.fix!, /NetworkPolicy/);
  });

  test("FAIL: a list or watch that failed for another reason quotes it; the token is then neither ok nor FAIL", () => {
    const findings = checkApi(CLUSTER, { ok: true }, { list: failed("listing", undefined, "no data from https://10.96.0.1:443 for 10000 ms"), watch: failed("watching", 500, "etcdserver: leader changed") });
    assert.deepEqual(verdicts(findings), ["ok", "FAIL", "FAIL"]);
    assert.match(findings[1]!.text, /the list of Pod .* failed: .*no data/);
  });

  test("FAIL: no such Pod, with the rule that named it and the downward API", () => {
    const findings = checkApi({ ...CLUSTER, podNameRule: "the hostname, as POD_NAME is not set" }, { ok: true }, { list: listed(null), watch: ENDED });
    const missing = one(findings, /there is no Pod/);
    assert.equal(missing.verdict, "FAIL");
    assert.match(missing.text, /its name from the hostname, as POD_NAME is not set/);
    assert.match(missing.fix!, /POD_NAME.*fieldPath: metadata\.name/);
  });
});

describe("proa's own container", () => {
  test("ok: chosen by --container, or the only regular container, with the rule", () => {
    const pod = podWith({ sidecars: ["proxy"] });
    assert.deepEqual(checkOwnContainer(pod, { container: "main" }), { name: "main", finding: { verdict: "ok", text: "proa's own container is main (--container)" } });
    assert.match(checkOwnContainer(podWith({}), {}).finding.text, /the Pod's only regular container/);
  });

  test("warn: fell back to containers[0] in a Pod with two regular containers", () => {
    const { finding } = checkOwnContainer(podWith({ sidecars: ["proxy"] }), {});
    assert.equal(finding.verdict, "warn");
    assert.match(finding.text, /the first of main, proxy/);
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
  const none = { waitFor: [], ignore: [] };

  test("ok: each with its readiness now (information, not failure) and its readinessProbe", () => {
    const findings = checkContainers(podWith({ sidecars: ["sidecar-1", "sidecar-2"], ready: { "sidecar-1": true } }), "main", none);
    assert.deepEqual(findings.map((f) => `${f.verdict} ${f.text}`), [
      "ok container sidecar-1: ready; it has a readinessProbe",
      "ok container sidecar-2: not ready yet (running); it has a readinessProbe",
    ]);
  });

  test("warn: a container without a readinessProbe counts as ready once it starts", () => {
    const finding = one(checkContainers(withoutProbe(podWith({ sidecars: ["proxy"] }), "proxy"), "main", none), /proxy/);
    assert.equal(finding.verdict, "warn");
    assert.match(finding.text, /no readinessProbe/);
    assert.match(finding.fix!, /give proxy a readinessProbe/);
  });

  test("native sidecars are named so; plain init containers are not waited for", () => {
    const pod = withNativeSidecar(podWith({ sidecars: ["proxy", "logger"], initContainers: ["migrate"], ready: true }), "logger");
    const findings = checkContainers(pod, "main", none);
    assert.deepEqual(findings.map((f) => f.text.split(":")[0]), ["container proxy", "native sidecar logger"]);
  });

  test("--wait-for and --ignore narrow the set; an unknown name is a FAIL", () => {
    const pod = podWith({ sidecars: ["proxy", "logger"] });
    assert.deepEqual(checkContainers(pod, "main", { waitFor: ["proxy"], ignore: [] }).map((f) => f.text.split(":")[0]), ["container proxy"]);
    assert.deepEqual(checkContainers(pod, "main", { waitFor: [], ignore: ["proxy"] }).map((f) => f.text.split(":")[0]), ["container logger"]);
    const [unknown] = checkContainers(pod, "main", { waitFor: ["proxi"], ignore: [] });
    assert.equal(unknown!.verdict, "FAIL");
    assert.match(unknown!.text, /--wait-for proxi/);
  });

  test("warn: a sidecar that terminated under restartPolicy Never means a run now would fail at once", () => {
    const findings = checkContainers(podWith({ sidecars: ["proxy"], terminated: { proxy: { exitCode: 1 } } }), "main", none);
    assert.match(one(findings, /^container proxy/).text, /not ready yet \(terminated with exit code 1, Error\)/);
    assert.equal(one(findings, /would fail at once/).verdict, "warn");
    assert.equal(checkStatus(findings), 0);
  });

  test("ok: nothing to wait for in a Pod with one container", () => {
    assert.deepEqual(verdicts(checkContainers(podWith({}), "main", none)), ["ok"]);
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
    const [finding] = checkShutdownMeans(noKill, [url("POST", "http://localhost:15020/quitquitquit", open)], pod, []);
    assert.equal(finding!.verdict, "ok");
    assert.match(finding!.text, /^shutdown POST http:\/\/localhost:15020\/quitquitquit: .* at localhost:15020 \(connected and closed, no request sent\)/);
    assert.match(checkShutdownMeans(noKill, [url("GET", "https://[::1]/stop", open)], pod, [])[0]!.text, /at \[::1\]:443/);
  });

  test("FAIL: refused when every sidecar is ready; only a warning while some are not (they may not listen yet)", () => {
    assert.equal(checkShutdownMeans(noKill, [url("POST", "http://127.0.0.1:9091/quit", refused)], pod, [])[0]!.verdict, "FAIL");
    const early = checkShutdownMeans(noKill, [url("POST", "http://127.0.0.1:9091/quit", refused)], pod, ["proxy"])[0]!;
    assert.equal(early.verdict, "warn");
    assert.match(early.text, /while proxy is not ready/);
    assert.equal(checkShutdownMeans(noKill, [url("POST", "http://127.0.0.1:9091/quit", refused)], undefined)[0]!.verdict, "FAIL");
  });

  test("FAIL: a host that does not resolve or a port that never answers", () => {
    const findings = checkShutdownMeans(noKill, [url("GET", "http://sidecar.invalid:80/x", { ok: false, code: "ENOTFOUND", message: "getaddrinfo ENOTFOUND sidecar.invalid" })], pod, ["proxy"]);
    assert.equal(findings[0]!.verdict, "FAIL");
    assert.match(findings[0]!.text, /cannot connect to sidecar\.invalid:80: getaddrinfo ENOTFOUND/);
  });

  test("warn: GET to /quitquitquit on Envoy's or Istio's admin port; not for POST, nor on another port", () => {
    for (const port of ["9901", "15000", "15020"]) {
      const envoy = one(checkShutdownMeans(noKill, [url("GET", `http://localhost:${port}/quitquitquit`, open)], pod, []), /only POST/);
      assert.equal(envoy.verdict, "warn");
      assert.equal(envoy.fix, `use --shutdown-http-post http://localhost:${port}/quitquitquit`);
    }
    assert.deepEqual(verdicts(checkShutdownMeans(noKill, [url("POST", "http://localhost:15000/quitquitquit", open)], pod, [])), ["ok"]);
    assert.deepEqual(verdicts(checkShutdownMeans(noKill, [url("GET", "http://localhost:9091/quitquitquit", open)], pod, [])), ["ok"]);
  });

  test("the URL's credentials and query values never reach the report", () => {
    const report = formatReport(checkShutdownMeans(noKill, [url("POST", "http://admin:hunter2@localhost:8080/quit?token=abc", refused)], pod, []));
    assert.ok(!report.includes("hunter2") && !report.includes("abc"), report);
  });

  test("warn: no shutdown means with sidecars to stop; ok when the Pod has no other regular container", () => {
    const [none] = checkShutdownMeans(noKill, [], pod);
    assert.equal(none!.verdict, "warn");
    assert.match(none!.fix!, /--shutdown-http-post URL/);
    assert.equal(checkShutdownMeans(noKill, [], undefined)[0]!.verdict, "warn");
    assert.equal(checkShutdownMeans(noKill, [], podWith({}))[0]!.verdict, "ok");
    assert.deepEqual(checkShutdownMeans({ kill: ["envoy"], killAll: false }, [], pod), []);
  });
});

describe("--kill and --kill-all", () => {
  const shared = (pod: Pod): Pod => ({ ...pod, spec: { ...pod.spec, shareProcessNamespace: true } as Pod["spec"] });
  const pod = podWith({ sidecars: ["proxy"] });
  const own = { pid: 40, ppid: 39 };
  const processes: ProcessInfo[] = [
    { pid: 1, name: "pause", fromComm: false },
    { pid: 7, name: "envoy", fromComm: false },
    { pid: 8, name: "pilot-agent", fromComm: false },
    { pid: 9, name: "cloud-sql-proxy", fromComm: true }, // unreadable exe: named from comm, which is cut at 15 characters
    { pid: 39, name: "sh", fromComm: false },
    { pid: 40, name: "node", fromComm: false },
  ];

  test("FAIL: the Pod does not share its process namespace", () => {
    const findings = checkKill({ kill: ["envoy"], killAll: false }, pod, processes, own);
    assert.equal(findings[0]!.verdict, "FAIL");
    assert.match(findings[0]!.fix!, /shareProcessNamespace: true/);
  });

  test("ok: each --kill NAME with the processes it would signal, by the run's rule", () => {
    const findings = checkKill({ kill: ["envoy", "cloud-sql-proxy"], killAll: false }, shared(pod), processes, own);
    assert.deepEqual(findings.map((f) => `${f.verdict} ${f.text}`), [
      "ok --kill envoy, --kill cloud-sql-proxy: the Pod shares its process namespace (shareProcessNamespace: true)",
      "ok --kill envoy would signal envoy (7)",
      "ok --kill cloud-sql-proxy would signal cloud-sql-proxy (9)",
    ]);
  });

  test("warn: a --kill NAME that matches nothing lists what is visible, never proa, its parent or pause", () => {
    const finding = one(checkKill({ kill: ["istio-proxy"], killAll: false }, shared(pod), processes, own), /matches no visible process/);
    assert.equal(finding.verdict, "warn");
    assert.match(finding.text, /visible: cloud-sql-proxy, envoy, pilot-agent$/);
  });

  test("--kill-all: what it would signal; a warning when it sees nothing", () => {
    assert.match(one(checkKill({ kill: [], killAll: true }, shared(pod), processes, own), /--kill-all would/).text, /envoy \(7\), pilot-agent \(8\), cloud-sql-proxy \(9\)/);
    const alone = checkKill({ kill: [], killAll: true }, shared(pod), [{ pid: 1, name: "pause", fromComm: false }, { pid: 40, name: "node", fromComm: false }], own);
    assert.equal(one(alone, /sees no process/).verdict, "warn");
  });

  test("warn: /proc could not be read; without the Pod, the namespace is not judged", () => {
    assert.deepEqual(verdicts(checkKill({ kill: ["envoy"], killAll: false }, undefined, { error: "EACCES" }, own)), ["warn"]);
  });
});

describe("the shutdown budget", () => {
  const pod = podWith({ sidecars: ["proxy"] }); // terminationGracePeriodSeconds: 30, as captured
  test("from the Pod's grace period, --shutdown-timeout, or the default", () => {
    assert.equal(checkBudget(pod, undefined).text, "shutdown budget 30 s, from the Pod's terminationGracePeriodSeconds");
    assert.equal(checkBudget(pod, 10_000).text, "shutdown budget 10 s, from --shutdown-timeout");
    assert.match(checkBudget(undefined, undefined).text, /^shutdown budget 30 s, from the default/);
    assert.match(checkBudget({ ...pod, spec: { ...pod.spec, terminationGracePeriodSeconds: 90 } }, undefined).text, /^shutdown budget 90 s/);
  });
  test("warn: --shutdown-timeout longer than the grace period, which the kubelet enforces on deletion", () => {
    const finding = checkBudget(pod, 60_000);
    assert.equal(finding.verdict, "warn");
    assert.match(finding.fix!, /at most 30s/);
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
    env: { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" },
    nodeVersion: "20.20.2",
    serviceAccount: { dir: "/sa", token: { ok: true, bytes: 9 }, ca: { ok: true, subject: "CN=k", validTo: "2126", expired: false }, namespace: { ok: true, value: "proa-e2e" } },
    cluster: { ok: true, ...CLUSTER },
    tls: { ok: true },
    api: { list: listed(podWith({ sidecars: ["proxy"], ready: true })), watch: ENDED },
    hints: { container: "main" },
    urls: [],
    own: { pid: 40, ppid: 39 },
    ...change,
  });
  const options = (shutdown: Partial<Parameters<typeof judge>[0]["shutdown"]> = {}) => ({
    command: [],
    ready: { waitFor: [], ignore: [] },
    shutdown: { httpGet: [], httpPost: [], kill: [], killAll: false, requestTimeoutMs: 5000, userAgent: "proa/test", ...shutdown },
  });

  test("a good setup gives no FAIL, in the order a run meets each part", () => {
    const findings = judge(options(), facts({ urls: [{ method: "POST", url: new URL("http://localhost:15020/quitquitquit"), connect: { ok: true } }] }));
    assert.equal(checkStatus(findings), 0, formatReport(findings));
    const order = [/^the API server is at/, /^Node\.js/, /^the service account's token/, /^ca\.crt/, /^TLS/, /accepts the service account/, /may list and watch/, /^found Pod/, /own container/, /^container proxy/, /^restartPolicy/, /^shutdown POST/, /^shutdown budget/];
    assert.deepEqual(findings.map((f) => order.findIndex((re) => re.test(f.text))), order.map((_, i) => i));
  });

  test("without the Pod, the checks that need it say they were not made; the rest still run", () => {
    const findings = judge(options({ killAll: true }), facts({ api: { list: failed("listing", 403, FORBIDDEN_MESSAGE), watch: failed("watching", 403, FORBIDDEN_MESSAGE) }, processes: [] }));
    assert.match(one(findings, /not checked/).text, /proa's container, the containers waited for, restartPolicy, shareProcessNamespace/);
    assert.ok(findings.some((f) => /--kill-all sees no process/.test(f.text)));
    assert.ok(findings.some((f) => /shutdown budget/.test(f.text)));
    assert.equal(checkStatus(findings), 1);
  });

  test("a cluster that could not be configured: its error, unless an earlier check already failed", () => {
    const alone = judge(options(), facts({ cluster: { ok: false, message: "some other reason" }, api: undefined, tls: undefined }));
    assert.equal(one(alone, /some other reason/).verdict, "FAIL");
    const explained = judge(options(), facts({ env: {}, cluster: { ok: false, message: "KUBERNETES_SERVICE_HOST ..." }, api: undefined, tls: undefined }));
    assert.equal(only(explained, "FAIL").length, 1);
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
