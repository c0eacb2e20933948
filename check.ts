// check.ts: `proa --check`, a read-only report on a Pod's setup. gather() does every read-only part of a run once and
// keeps what it found as plain facts; the checks are pure functions that judge those facts ok, warn or FAIL, with the
// fix. Nothing here starts the program, sends a shutdown request (only a TCP connect and close), signals or writes.
import { X509Certificate } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { connect as tcpConnect, isIP } from "node:net";
import { resolve } from "node:path";
import { connect as tlsConnect } from "node:tls";
import {
  DOWNWARD_API, loadCluster, ownContainerName, probePod, readiness, SERVICE_ACCOUNT_DIR,
  type Cluster, type ContainerState, type OwnContainerHints, type Pod, type ReadyOptions, type Timing, type WatchOutcome,
} from "./kube.ts";
import { readProcesses, selectProcesses, shutdownBudgetMs, type OwnProcesses, type ProcessInfo, type ShutdownOptions } from "./shutdown.ts";
import { quote, redactUrl, type Log } from "./log.ts";

/** The parts of a run's options the check reads (proa.ts's Options has them all). */
export interface CheckOptions {
  command: string[];
  ready: ReadyOptions;
  shutdown: ShutdownOptions;
}

// ---------------------------------------------------------------------------------------------------------------
// The report

export type Verdict = "ok" | "warn" | "FAIL";
export interface Finding {
  verdict: Verdict;
  text: string; // what was found
  fix?: string; // for warn and FAIL: what to change
  more?: string[]; // lines printed indented under it (YAML to apply)
}

const ok = (text: string): Finding => ({ verdict: "ok", text });
const warn = (text: string, fix: string): Finding => ({ verdict: "warn", text, fix });
const fail = (text: string, fix: string, more?: string[]): Finding => ({ verdict: "FAIL", text, fix, ...(more ? { more } : {}) });

/** One line per finding, starting with its verdict; a FAIL's YAML follows it, indented. */
export function formatReport(findings: Finding[]): string {
  return findings
    .map((f) => `${f.verdict.padEnd(4)} ${f.text}${f.fix ? `; fix: ${f.fix}` : ""}\n${(f.more ?? []).map((line) => `       ${line}\n`).join("")}`)
    .join("");
}

/** 1 when any check failed, else 0 (warnings allowed). */
export function checkStatus(findings: Finding[]): number {
  return findings.some((f) => f.verdict === "FAIL") ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------------------
// The facts: everything gather() found, as plain data

export type Attempt = { ok: true } | { ok: false; code: string; message: string };
export type FileFact<T> = ({ ok: true } & T) | { ok: false; code: string };

export interface Facts {
  env: NodeJS.ProcessEnv;
  nodeVersion: string; // process.versions.node
  serviceAccount: {
    dir: string;
    token: FileFact<{ bytes: number }>; // never the token itself
    ca: FileFact<{ subject?: string; validTo?: string; expired?: boolean; error?: string }>;
    namespace: FileFact<{ value: string }>;
  };
  cluster: ({ ok: true } & ClusterFacts) | { ok: false; message: string };
  tls?: Attempt; // a TLS handshake with the API server, verified against ca.crt whatever the environment says
  api?: { list: WatchOutcome; watch: WatchOutcome }; // a run's list, and a watch the server ends after a second
  hints: OwnContainerHints;
  urls: { method: "GET" | "POST"; url: URL; connect: Attempt }[]; // a TCP connect and close, no byte sent
  processes?: ProcessInfo[] | { error: string }; // read only for --kill and --kill-all
  own: OwnProcesses;
  program?: ProgramFacts;
}

export interface ClusterFacts {
  server: string;
  namespace: string;
  podName: string;
  podNameRule: string; // where the name came from: POD_NAME or the hostname
}

export interface ProgramFacts {
  name: string;
  path: string; // the PATH searched (unset: the default libuv uses)
  candidates: Candidate[]; // in the order spawn tries them
}
export interface Candidate {
  path: string;
  kind: "missing" | "file" | "directory" | "other";
  executable: boolean; // some execute bit is set
  interpreter?: { path: string; found: boolean }; // a script's #! line
}

// ---------------------------------------------------------------------------------------------------------------
// The checks, in the order a run meets what they check. Each is pure; judge() calls them all.

export function judge(options: CheckOptions, facts: Facts): Finding[] {
  const findings = [...checkEnvironment(facts), ...checkServiceAccount(facts)];
  if (facts.cluster.ok) findings.push(...checkApi(facts.cluster, facts.tls, facts.api));
  else if (checkStatus(findings) === 0) findings.push(fail(quote(facts.cluster.message, 300), "fix what it names, then run --check again"));
  const pod = facts.api?.list.kind === "listed" ? (facts.api.list.pod ?? undefined) : undefined;
  if (pod) {
    const own = checkOwnContainer(pod, facts.hints);
    findings.push(own.finding);
    if (own.name !== undefined) findings.push(...checkContainers(pod, own.name, options.ready), checkRestartPolicy(pod, options.ready.readyTimeoutMs));
  } else {
    findings.push(warn("not checked, as the Pod could not be read: proa's container, the containers waited for, restartPolicy, shareProcessNamespace", "fix the FAIL above and run --check again"));
  }
  findings.push(...checkShutdownMeans(options.shutdown, facts.urls, pod, notReadyNow(pod, options.ready, facts.hints)));
  if (options.shutdown.kill.length > 0 || options.shutdown.killAll) findings.push(...checkKill(options.shutdown, pod, facts.processes, facts.own));
  findings.push(checkBudget(pod, options.shutdown.timeoutMs));
  if (facts.program) findings.push(checkProgram(facts.program));
  return findings;
}

// DNS-1123: a namespace is a label, a Pod's name a subdomain (k8s.io/apimachinery/pkg/util/validation).
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const isSubdomain = (name: string) => name.length <= 253 && name.split(".").every((part) => DNS1123_LABEL.test(part));
const isLabel = (name: string) => name.length <= 63 && DNS1123_LABEL.test(name);

export function checkEnvironment({ env, nodeVersion }: Pick<Facts, "env" | "nodeVersion">): Finding[] {
  const findings: Finding[] = [];
  const { KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port } = env;
  if (!host || !port) {
    findings.push(fail("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: this is not a container of a Pod", "run proa --check inside the Pod's container (kubectl exec POD -c CONTAINER -- node /proa/proa.js --check ...)"));
  } else if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    findings.push(fail(`KUBERNETES_SERVICE_PORT is not a port number: ${quote(port, 40)}`, "leave KUBERNETES_SERVICE_PORT as the kubelet sets it"));
  } else {
    findings.push(ok(`the API server is at ${quote(host, 100)}:${port} (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT)`));
  }
  const major = Number(/^v?(\d+)/.exec(nodeVersion)?.[1]);
  findings.push(major >= 20 ? ok(`Node.js ${nodeVersion}`) : fail(`Node.js ${nodeVersion} is older than 20, which proa needs`, "use a Node.js 20 or later in the image (see the Dockerfile)"));

  const tlsOff = env.NODE_TLS_REJECT_UNAUTHORIZED;
  if (tlsOff === "0") {
    findings.push(fail("NODE_TLS_REJECT_UNAUTHORIZED=0 turns TLS verification off for every connection that does not turn it on itself, proa's requests to the API server included", "remove NODE_TLS_REJECT_UNAUTHORIZED from the container's env"));
  } else if (tlsOff !== undefined) {
    findings.push(warn(`NODE_TLS_REJECT_UNAUTHORIZED is set (to ${quote(tlsOff, 40)}): only 0 changes anything, and 0 turns TLS verification off`, "remove NODE_TLS_REJECT_UNAUTHORIZED from the container's env"));
  }
  if (env.NODE_OPTIONS) {
    findings.push(warn(`NODE_OPTIONS is set (${quote(env.NODE_OPTIONS, 100)}): Node.js applies it to proa as well as to your program, and it can load code into proa (--require, --import)`, "set it only where your program starts, or remove it"));
  }
  if (env.NODE_DEBUG) {
    const fix = "remove NODE_DEBUG from the container's env";
    const modules = debugModules(env.NODE_DEBUG, ["http", "https", "http2", "net", "tls"]);
    if (modules.length > 0) findings.push(fail(`NODE_DEBUG is set (${quote(env.NODE_DEBUG, 100)}): Node.js writes its debugging of ${modules.join(", ")} to proa's stderr, which shows proa's requests to the API server with their Authorization header`, fix));
    else findings.push(warn(`NODE_DEBUG is set (${quote(env.NODE_DEBUG, 100)}): Node.js writes its internal debugging to proa's stderr`, fix));
  }
  if (env.POD_NAME && !isSubdomain(env.POD_NAME)) {
    findings.push(fail(`POD_NAME is not a Pod name (lowercase letters, digits, - and .): ${quote(env.POD_NAME, 80)}`, `set it with the downward API: ${DOWNWARD_API}`));
  }
  if (env.POD_NAMESPACE && !isLabel(env.POD_NAMESPACE)) {
    findings.push(fail(`POD_NAMESPACE is not a namespace name (lowercase letters, digits and -, at most 63): ${quote(env.POD_NAMESPACE, 80)}`, `set it with the downward API: ${DOWNWARD_API}`));
  }
  return findings;
}

/** Which of these modules NODE_DEBUG turns on: it is a comma-separated list of names, in which * matches anything. */
export function debugModules(nodeDebug: string, modules: string[]): string[] {
  const patterns = nodeDebug
    .split(",")
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry !== "");
  const matches = (pattern: string, name: string) => new RegExp(`^${pattern.split("*").map((part) => part.replace(/[^a-z0-9]/g, "\\$&")).join(".*")}$`).test(name);
  return modules.filter((name) => patterns.some((pattern) => matches(pattern, name)));
}

const AUTOMOUNT = "keep automountServiceAccountToken at true (its default) in the Pod spec and its ServiceAccount";

export function checkServiceAccount({ env, serviceAccount: sa }: Pick<Facts, "env" | "serviceAccount">): Finding[] {
  const findings: Finding[] = [];
  const where = (file: string) => `${sa.dir}/${file}`;
  const unreadable = (file: string, code: string) => `cannot read the service account's ${file} at ${where(file)} (${code})`;
  if (!sa.token.ok) findings.push(fail(unreadable("token", sa.token.code), AUTOMOUNT));
  else if (sa.token.bytes === 0) findings.push(fail(`the service account's token at ${where("token")} is empty`, AUTOMOUNT));
  else findings.push(ok(`the service account's token is at ${where("token")} (${sa.token.bytes} bytes; never printed)`));

  if (!sa.ca.ok) findings.push(fail(unreadable("ca.crt", sa.ca.code), AUTOMOUNT));
  else if (sa.ca.error !== undefined) findings.push(fail(`${where("ca.crt")} is not a PEM certificate: ${quote(sa.ca.error, 120)}`, AUTOMOUNT));
  else if (sa.ca.expired) findings.push(fail(`the CA certificate in ${where("ca.crt")} expired on ${sa.ca.validTo}`, "mount the cluster's current CA (the kubelet does, from the kube-root-ca.crt ConfigMap)"));
  else findings.push(ok(`ca.crt holds the certificate of ${quote(sa.ca.subject ?? "", 100)}, valid until ${sa.ca.validTo}`));

  const { POD_NAMESPACE: fromEnv } = env;
  if (!sa.namespace.ok) {
    if (!fromEnv) findings.push(fail(`${unreadable("namespace", sa.namespace.code)}, and POD_NAMESPACE is not set`, `${AUTOMOUNT}, or set POD_NAMESPACE with the downward API: ${DOWNWARD_API}`));
  } else if (fromEnv && fromEnv !== sa.namespace.value) {
    findings.push(warn(`POD_NAMESPACE is ${quote(fromEnv, 80)}, but the service account is in namespace ${quote(sa.namespace.value, 80)}, and a Pod's ServiceAccount is always in the Pod's namespace`, `set POD_NAMESPACE with the downward API: ${DOWNWARD_API}`));
  }
  return findings;
}

/** TLS, the token, the permissions (one line for the list, one for the watch) and the Pod itself. */
export function checkApi(cluster: ClusterFacts, tls: Attempt | undefined, api: Facts["api"]): Finding[] {
  const findings: Finding[] = [];
  const pod = `${cluster.namespace}/${cluster.podName}`;
  if (tls?.ok) findings.push(ok(`TLS: ${cluster.server}'s certificate verifies against the mounted ca.crt`));
  else if (tls && CONNECT_CODES.has(tls.code)) findings.push(fail(`cannot connect to the API server at ${cluster.server}: ${quote(tls.message, 200)}`, "check KUBERNETES_SERVICE_HOST/PORT and any NetworkPolicy that blocks egress to the API server"));
  else if (tls) findings.push(fail(`TLS: ${cluster.server}'s certificate does not verify against the mounted ca.crt: ${quote(tls.message, 200)}`, "mount the cluster's own CA as ca.crt (the default service account volume does), and reach the API server directly, not through a proxy that re-signs TLS"));
  if (!api) return findings;

  const requests = [["list", api.list], ["watch", api.watch]] as const;
  const status = (outcome: WatchOutcome) => (outcome.kind === "failed" ? outcome.error.status : undefined);
  if (requests.some(([, outcome]) => status(outcome) === 401)) findings.push(fail("the API server refused the token (401 Unauthorized), also when read again", `check that the Pod's ServiceAccount exists, and ${AUTOMOUNT}`));
  else if (api.list.kind === "listed" || requests.some(([, outcome]) => status(outcome) === 403)) findings.push(ok("the API server accepts the service account's token"));

  const forbidden = requests.flatMap(([verb, outcome]) => (outcome.kind === "failed" && outcome.error.status === 403 ? [{ verb, message: outcome.error.message }] : []));
  for (const [verb, outcome] of requests) {
    if (outcome.kind === "failed" && outcome.error.status !== 401 && outcome.error.status !== 403) {
      findings.push(fail(`the ${verb} of Pod ${pod} failed: ${quote(outcome.error.message, 300)}`, "check that the API server is reachable from the Pod; proa's log on stderr has the details"));
    } else if (outcome.kind === "event" && outcome.event.type === "ERROR") {
      findings.push(warn(`the watch of Pod ${pod} reported an error: ${quote(outcome.event.object.message ?? String(outcome.event.object.code), 200)}`, "a run lists again and carries on; run --check again if it persists"));
    }
  }
  forbidden.forEach(({ verb, message }, i) => {
    const text = `the ${verb} of Pod ${pod} was answered 403 Forbidden: ${quote(serverMessage(message), 300)}`;
    if (i < forbidden.length - 1) return findings.push(fail(text, "the Role and RoleBinding below"));
    const rbac = rbacFix(message, cluster.namespace);
    findings.push(fail(text, `grant ${quote(rbac.subject, 120)} get, list and watch on pods with this Role and RoleBinding (kubectl apply -n ${cluster.namespace} -f -)`, rbac.yaml));
  });
  if (api.list.kind === "listed" && api.watch.kind !== "failed") {
    findings.push(ok(`the service account may list and watch Pods in namespace ${cluster.namespace} (checked with a run's own list and watch)`));
  }

  if (api.list.kind === "listed" && api.list.pod === null) {
    findings.push(fail(`there is no Pod ${pod} (its name from ${cluster.podNameRule})`, `set POD_NAME and POD_NAMESPACE with the downward API: ${DOWNWARD_API}`));
  } else if (api.list.kind === "listed") {
    findings.push(ok(`found Pod ${pod} (its name from ${cluster.podNameRule})`));
  }
  return findings;
}

const CONNECT_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

/** The server's own words inside a KubeError's message ("... failed: HTTP 403: <message>; grant ..."). */
function serverMessage(message: string): string {
  return /HTTP \d+: ([\s\S]*?)(?:; grant [\s\S]*)?$/.exec(message)?.[1] ?? message;
}

/** The Role and RoleBinding for the user the 403 names; names that are not DNS-1123 never reach the YAML. */
export function rbacFix(message: string, namespace: string): { subject: string; yaml: string[] } {
  const user = /User "(system:serviceaccount:([a-z0-9.-]+):([a-z0-9.-]+))"/.exec(message);
  const saNamespace = user && isLabel(user[2]!) ? user[2]! : namespace;
  const sa = user && isSubdomain(user[3]!) ? user[3]! : "SERVICE_ACCOUNT";
  return {
    subject: user ? user[1]! : `the Pod's ServiceAccount (system:serviceaccount:${namespace}:SERVICE_ACCOUNT)`,
    yaml: [
      "apiVersion: rbac.authorization.k8s.io/v1",
      "kind: Role",
      "metadata: {name: proa}",
      `rules: [{apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"]}]`,
      "---",
      "apiVersion: rbac.authorization.k8s.io/v1",
      "kind: RoleBinding",
      "metadata: {name: proa}",
      `subjects: [{kind: ServiceAccount, name: ${sa}, namespace: ${saNamespace}}]`,
      "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: proa}",
    ],
  };
}

export function checkOwnContainer(pod: Pod, hints: OwnContainerHints): { finding: Finding; name?: string } {
  const regular = (pod.spec?.containers ?? []).map((c) => c.name);
  try {
    const { name, rule } = ownContainerName(pod, hints);
    if (regular.length > 1 && rule.includes("first container")) {
      return { name, finding: warn(`proa's own container is taken to be ${name}, the first of ${regular.join(", ")}: it could not be detected`, `set --container NAME (or PROA_CONTAINER) to the container proa runs in`) };
    }
    return { name, finding: ok(`proa's own container is ${name} (${rule})`) };
  } catch (error) {
    return { finding: fail(quote((error as Error).message, 300), `set --container to one of: ${regular.join(", ")}`) };
  }
}

type SpecContainer = { name: string; restartPolicy?: string; readinessProbe?: unknown };

/** Each container a run waits for: its readiness now (information only), its readinessProbe, native or not. */
export function checkContainers(pod: Pod, own: string, ready: Pick<ReadyOptions, "waitFor" | "ignore">): Finding[] {
  let now;
  try {
    now = readiness(pod, own, ready.waitFor, ready.ignore);
  } catch (error) {
    return [fail(quote((error as Error).message, 300), "name containers of this Pod in --wait-for and --ignore")];
  }
  // readiness() of the Pod without its status: every container it would wait for is "not ready".
  const waited = readiness({ ...pod, status: {} }, own, ready.waitFor, ready.ignore).notReady;
  if (waited.length === 0) return [ok(`no other containers to wait for: a run starts the program at once`)];
  const spec = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])] as SpecContainer[];
  const statuses = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])];
  const findings = waited.map((name) => {
    const container = spec.find((c) => c.name === name);
    const kind = container?.restartPolicy === "Always" ? "native sidecar" : "container";
    const status = statuses.find((s) => s.name === name);
    const state = status?.ready ? "ready" : `not ready yet (${describeState(status?.state)})`;
    if (container?.readinessProbe === undefined) {
      return warn(`${kind} ${name}: ${state}; it has no readinessProbe, so it counts as ready as soon as it starts, before it may serve`, `give ${name} a readinessProbe (an httpGet or exec that succeeds once it serves)`);
    }
    return ok(`${kind} ${name}: ${state}; it has a readinessProbe`);
  });
  if (now.failed) findings.push(warn(`a run in this Pod now would fail at once: ${quote(now.failed, 300)}`, "see kubectl logs and kubectl describe pod for why it terminated"));
  return findings;
}

function describeState(state: ContainerState | undefined): string {
  if (state?.running) return "running";
  if (state?.terminated) return `terminated with exit code ${state.terminated.exitCode ?? "unknown"}${state.terminated.reason ? `, ${state.terminated.reason}` : ""}`;
  if (state?.waiting) return `waiting${state.waiting.reason ? `: ${state.waiting.reason}` : ""}`;
  return "no status yet";
}

export function checkRestartPolicy(pod: Pod, readyTimeoutMs: number | undefined): Finding {
  const policy = pod.spec?.restartPolicy ?? "Always";
  if (policy === "Never") return ok("restartPolicy Never: a sidecar that terminates before it is ready fails the wait at once (exit 1)");
  const text = `restartPolicy ${policy}: a sidecar that dies is restarted, and proa keeps waiting for it`;
  if (readyTimeoutMs !== undefined) return ok(`${text}, at most --ready-timeout (${readyTimeoutMs / 1000} s)`);
  return warn(`${text}, with no limit`, "use restartPolicy: Never for a Job's Pod, or set --ready-timeout so that the wait ends");
}

/** The containers a run would still wait for now; undefined when that cannot be told. */
function notReadyNow(pod: Pod | undefined, ready: ReadyOptions, hints: OwnContainerHints): string[] | undefined {
  try {
    return pod ? readiness(pod, ownContainerName(pod, hints).name, ready.waitFor, ready.ignore).notReady : undefined;
  } catch {
    return undefined; // reported by checkOwnContainer or checkContainers
  }
}

// Envoy's admin /quitquitquit takes only POST: on Envoy's usual admin port, Istio's (15000) and pilot-agent's (15020).
const ENVOY_ADMIN_PORTS = new Set(["9901", "15000", "15020"]);

/** notReady: the containers not ready yet, which may not listen yet either (a refused port is then a warning). */
export function checkShutdownMeans(shutdown: Pick<ShutdownOptions, "kill" | "killAll">, urls: Facts["urls"], pod: Pod | undefined, notReady?: string[]): Finding[] {
  const findings: Finding[] = [];
  for (const { method, url, connect } of urls) {
    const port = url.port || (url.protocol === "https:" ? "443" : "80");
    const target = `${method} ${redactUrl(url)}`;
    const hostPort = `${url.hostname}:${port}`;
    if (connect.ok) findings.push(ok(`shutdown ${target}: something accepts TCP connections at ${hostPort} (connected and closed, no request sent)`));
    else if (connect.code === "ECONNREFUSED" && notReady?.length) findings.push(warn(`shutdown ${target}: nothing accepts TCP connections at ${hostPort} yet (connection refused), while ${notReady.join(", ")} ${notReady.length === 1 ? "is" : "are"} not ready`, "run --check again once the sidecars are ready; if it is still refused, check the URL's port against the sidecar's"));
    else if (connect.code === "ECONNREFUSED") findings.push(fail(`shutdown ${target}: nothing accepts TCP connections at ${hostPort} (connection refused)`, "check the URL's port against the sidecar's"));
    else findings.push(fail(`shutdown ${target}: cannot connect to ${hostPort}: ${quote(connect.message, 200)}`, "check the URL's host and port; a sidecar in the Pod is at localhost"));
    if (method === "GET" && url.pathname === "/quitquitquit" && ENVOY_ADMIN_PORTS.has(port)) {
      findings.push(warn(`shutdown ${target}: Envoy's and Istio's /quitquitquit take only POST, and answer a GET 405 without stopping`, `use --shutdown-http-post ${redactUrl(url)}`));
    }
  }
  if (urls.length === 0 && shutdown.kill.length === 0 && !shutdown.killAll) {
    const regular = pod === undefined ? undefined : (pod.spec?.containers ?? []).length;
    if (regular === 1) findings.push(ok("no shutdown means given, and none needed: the Pod has no other regular container (the kubelet stops native sidecars)"));
    else findings.push(warn("no shutdown means given (--shutdown-http-post, --shutdown-http-get, --kill, --kill-all): after the program exits, the sidecars keep running and proa waits for them until the shutdown budget ends, and a Job's Pod does not complete", "add --shutdown-http-post URL for each sidecar with a shutdown endpoint, or --kill NAME with shareProcessNamespace: true"));
  }
  return findings;
}

/** The one place the check uses shutdown.ts's process selection (the rule a run signals by). */
function wouldSignal(processes: ProcessInfo[], kill: string[], killAll: boolean, own: OwnProcesses) {
  return selectProcesses(processes, kill, killAll, own);
}

export function checkKill(shutdown: Pick<ShutdownOptions, "kill" | "killAll">, pod: Pod | undefined, processes: Facts["processes"], own: OwnProcesses): Finding[] {
  const findings: Finding[] = [];
  const options = [...shutdown.kill.map((name) => `--kill ${name}`), ...(shutdown.killAll ? ["--kill-all"] : [])].join(", ");
  const shared = (pod?.spec as { shareProcessNamespace?: boolean } | undefined)?.shareProcessNamespace === true;
  if (pod && !shared) findings.push(fail(`${options}: the Pod spec does not set shareProcessNamespace: true, so proa sees only its own container's processes`, "add shareProcessNamespace: true to the Pod spec (a Job's spec.template.spec)"));
  else if (pod) findings.push(ok(`${options}: the Pod shares its process namespace (shareProcessNamespace: true)`));
  if (processes === undefined) return findings;
  if ("error" in processes) return [...findings, warn(`cannot list the processes: ${quote(processes.error, 200)}`, "run --check where /proc is readable, as proa runs")];
  const show = (list: ProcessInfo[]) => list.map(({ pid, name }) => `${name} (${pid})`).join(", ");
  const names = (list: ProcessInfo[]) => [...new Set(list.map(({ name }) => name))].sort().join(", ") || "none";
  for (const name of shutdown.kill) {
    const { targets } = wouldSignal(processes, [name], false, own);
    if (targets.length > 0) findings.push(ok(`--kill ${name} would signal ${show(targets)}`));
    else findings.push(warn(`--kill ${name} matches no visible process; visible: ${quote(names(wouldSignal(processes, [], true, own).targets), 300)}`, "name the sidecar's executable as the list above shows it"));
  }
  if (shutdown.killAll) {
    const { targets } = wouldSignal(processes, [], true, own);
    if (targets.length > 0) findings.push(ok(`--kill-all would signal ${quote(show(targets), 300)} (proa, its program and the pause process excepted)`));
    else findings.push(warn("--kill-all sees no process to signal besides proa's own", "add shareProcessNamespace: true to the Pod spec"));
  }
  return findings;
}

export function checkBudget(pod: Pod | undefined, timeoutMs: number | undefined): Finding {
  const budgetMs = shutdownBudgetMs(pod, timeoutMs);
  const graceS = pod?.spec?.terminationGracePeriodSeconds;
  if (timeoutMs !== undefined && graceS !== undefined && timeoutMs > graceS * 1000) {
    return warn(`shutdown budget ${budgetMs / 1000} s from --shutdown-timeout, longer than the Pod's terminationGracePeriodSeconds (${graceS}): when the Pod is deleted the kubelet kills proa before the budget ends`, `set --shutdown-timeout to at most ${graceS}s, or raise terminationGracePeriodSeconds`);
  }
  const source = timeoutMs !== undefined ? "--shutdown-timeout" : graceS !== undefined ? "the Pod's terminationGracePeriodSeconds" : pod ? "the default, as the Pod sets no terminationGracePeriodSeconds" : "the default; a run takes the Pod's terminationGracePeriodSeconds";
  return ok(`shutdown budget ${budgetMs / 1000} s, from ${source}`);
}

/** As spawn (libuv's execvp) resolves it: the first executable file wins; EACCES from any candidate means 126. */
export function checkProgram(program: ProgramFacts): Finding {
  const name = quote(program.name, 200);
  const found = program.candidates.find((c) => c.kind === "file" && c.executable);
  if (found?.interpreter && !found.interpreter.found) {
    return fail(`program ${name} is ${found.path}, whose #! line names ${quote(found.interpreter.path, 200)}, which is not in the image: a run would exit 127`, "install that interpreter in the image, or change the script's #! line");
  }
  if (found) return ok(`program ${name} is ${found.path}, executable`);
  const denied = program.candidates.find((c) => c.kind !== "missing");
  if (denied) {
    const why = denied.kind === "file" ? "has no execute permission" : `is a ${denied.kind === "directory" ? "directory" : "special file"}`;
    return fail(`program ${name}: ${denied.path} ${why}: a run would exit 126`, `chmod +x ${denied.path} in the image, or give the program's full path`);
  }
  const where = program.name.includes("/") ? "does not exist" : `is not on PATH (${quote(program.path, 200)})`;
  return fail(`program ${name} ${where}: a run would exit 127`, "install it in the image, or give its full path after --");
}

/** The paths spawn tries for a program name: the name itself when it has a slash, else each PATH entry in turn. */
export function programCandidates(name: string, path: string, cwd: string): string[] {
  if (name.includes("/")) return [resolve(cwd, name)];
  return path.split(":").map((dir) => resolve(cwd, dir === "" ? "." : dir, name));
}

// ---------------------------------------------------------------------------------------------------------------
// Gathering: the only I/O, all of it read-only

export interface GatherTiming {
  connectMs: number; // the TLS handshake with the API server
  api: Partial<Timing>; // passed to probePod
}
const DEFAULT_GATHER: GatherTiming = { connectMs: 5000, api: { idleMarginMs: 10_000 } };
// libuv's search path when the environment has no PATH (_PATH_DEFPATH).
const DEFAULT_PATH = "/usr/bin:/bin";

export async function gather(options: CheckOptions, env: NodeJS.ProcessEnv, log: Log, timing: Partial<GatherTiming> = {}): Promise<Facts> {
  const t = { ...DEFAULT_GATHER, ...timing };
  const dir = env.PROA_SERVICE_ACCOUNT_DIR || SERVICE_ACCOUNT_DIR;
  const caBytes = readFile(`${dir}/ca.crt`);
  const facts: Facts = {
    env,
    nodeVersion: process.versions.node,
    serviceAccount: {
      dir,
      token: fileFact(`${dir}/token`, (bytes) => ({ bytes: bytes.toString().trim().length })),
      ca: fileFact(`${dir}/ca.crt`, certificateFacts),
      namespace: fileFact(`${dir}/namespace`, (bytes) => ({ value: bytes.toString().trim() })),
    },
    cluster: { ok: false, message: "" },
    hints: { container: options.ready.container, mountinfo: readText("/proc/self/mountinfo"), cgroup: readText("/proc/self/cgroup") },
    urls: [],
    own: { pid: process.pid, ppid: process.ppid },
  };
  let cluster: Cluster | undefined;
  try {
    cluster = loadCluster(env, options.shutdown.userAgent);
    const podNameRule = env.POD_NAME ? "POD_NAME" : "the hostname, as POD_NAME is not set";
    facts.cluster = { ok: true, server: cluster.server, namespace: cluster.namespace, podName: cluster.podName, podNameRule };
  } catch (error) {
    facts.cluster = { ok: false, message: (error as Error).message };
  }
  try {
    const requests = [...options.shutdown.httpGet.map((url) => ({ method: "GET" as const, url })), ...options.shutdown.httpPost.map((url) => ({ method: "POST" as const, url }))];
    const connectMs = Math.min(options.shutdown.requestTimeoutMs, t.connectMs);
    const [tls, api, connects] = await Promise.all([
      cluster && caBytes.ok ? handshake(cluster, caBytes.value, t.connectMs) : undefined,
      cluster ? probePod(cluster, log, new AbortController().signal, t.api) : undefined,
      Promise.all(requests.map(({ url }) => connectAndClose(url, connectMs))),
    ]);
    Object.assign(facts, tls && { tls }, api && { api });
    facts.urls = requests.map((request, i) => ({ ...request, connect: connects[i]! }));
  } finally {
    cluster?.agent.destroy();
  }
  if (options.shutdown.kill.length > 0 || options.shutdown.killAll) {
    try {
      facts.processes = readProcesses();
    } catch (error) {
      facts.processes = { error: String(error) };
    }
  }
  const [name] = options.command;
  if (name) facts.program = programFacts(name, env.PATH ?? DEFAULT_PATH);
  return facts;
}

function readFile(path: string): { ok: true; value: Buffer } | { ok: false; code: string } {
  try {
    return { ok: true, value: readFileSync(path) };
  } catch (error) {
    return { ok: false, code: (error as NodeJS.ErrnoException).code ?? String(error) };
  }
}

function fileFact<T>(path: string, describe: (bytes: Buffer) => T): FileFact<T> {
  const read = readFile(path);
  return read.ok ? { ok: true, ...describe(read.value) } : read;
}

function readText(path: string): string | undefined {
  const read = readFile(path);
  return read.ok ? read.value.toString() : undefined;
}

function certificateFacts(bytes: Buffer): { subject?: string; validTo?: string; expired?: boolean; error?: string } {
  try {
    const cert = new X509Certificate(bytes);
    return { subject: cert.subject.replace(/\n/g, ", "), validTo: cert.validTo, expired: Date.parse(cert.validTo) < Date.now() };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

/** A TLS handshake verified against ca.crt, explicitly, so that no environment variable can turn verification off. */
function handshake(cluster: Cluster, ca: Buffer, timeoutMs: number): Promise<Attempt> {
  return new Promise((settle) => {
    const socket = tlsConnect({ host: cluster.host, port: cluster.port, ca, rejectUnauthorized: true, ...(isIP(cluster.host) ? {} : { servername: cluster.host }) });
    const done = (attempt: Attempt) => {
      clearTimeout(timer);
      socket.destroy();
      settle(attempt);
    };
    const timer = setTimeout(() => done({ ok: false, code: "ETIMEDOUT", message: `no TLS handshake within ${timeoutMs} ms` }), timeoutMs);
    socket.once("secureConnect", () => done({ ok: true }));
    socket.once("error", (error: NodeJS.ErrnoException) => done({ ok: false, code: error.code ?? "", message: error.message }));
  });
}

/** Connects to the URL's host and port and closes at once, writing nothing: a request could shut a sidecar down. */
function connectAndClose(url: URL, timeoutMs: number): Promise<Attempt> {
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  return new Promise((settle) => {
    const socket = tcpConnect({ host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port });
    const done = (attempt: Attempt) => {
      clearTimeout(timer);
      socket.destroy();
      settle(attempt);
    };
    const timer = setTimeout(() => done({ ok: false, code: "ETIMEDOUT", message: `no connection within ${timeoutMs} ms` }), timeoutMs);
    socket.once("connect", () => done({ ok: true }));
    socket.once("error", (error: NodeJS.ErrnoException) => done({ ok: false, code: error.code ?? "", message: error.code === "ECONNREFUSED" ? "connection refused" : error.message }));
  });
}

function programFacts(name: string, path: string): ProgramFacts {
  const candidates = programCandidates(name, path, process.cwd()).map((file): Candidate => {
    try {
      const stat = statSync(file);
      const kind = stat.isFile() ? "file" : stat.isDirectory() ? "directory" : "other";
      const candidate: Candidate = { path: file, kind, executable: (stat.mode & 0o111) !== 0 };
      const interpreter = kind === "file" && candidate.executable ? shebang(file) : undefined;
      if (interpreter) candidate.interpreter = { path: interpreter, found: isFile(resolve(interpreter)) };
      return candidate;
    } catch {
      return { path: file, kind: "missing", executable: false };
    }
  });
  return { name, path, candidates };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The interpreter a script's #! line names, if the file starts with one. */
function shebang(file: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const head = Buffer.alloc(256);
    const length = readSync(fd, head, 0, head.length, 0);
    const text = head.subarray(0, length).toString("latin1");
    return text.startsWith("#!") ? /^#!\s*(\S+)/.exec(text)?.[1] : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The mode

/** Gathers, judges, prints the report on stdout; returns 1 when a check failed, else 0. */
export async function runCheck(options: CheckOptions, env: NodeJS.ProcessEnv, log: Log, write = (text: string) => void process.stdout.write(text)): Promise<number> {
  log.info("checking the setup: nothing is run, sent or signalled");
  const findings = judge(options, await gather(options, env, log));
  write(formatReport(findings));
  const count = (verdict: Verdict) => findings.filter((f) => f.verdict === verdict).length;
  log.info("check finished", { ok: count("ok"), warn: count("warn"), fail: count("FAIL") });
  return checkStatus(findings);
}
