// check.ts: `proa --check`, a read-only report on a Pod's setup. gather() does every read-only part of a run once, with
// the run's own code, and keeps what it found as plain facts; the checks are pure functions that judge those facts ok,
// warn or FAIL, with the fix. With --ready-url it does what a run in that mode does: no Kubernetes API, one GET per
// ready URL. Nothing here starts the program, sends a shutdown request (only a TCP connect and close), signals or writes.
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { resolve } from "node:path";
import {
  DNS_LABEL,
  DNS_SUBDOMAIN,
  DOWNWARD_API,
  loadCluster,
  nodeEnvironmentWarnings,
  ownContainerHints,
  ownContainerName,
  probePod,
  readiness,
  restartPolicyOf,
  serverVersion,
  sidecarVerdict,
  waitedFor,
  watchedSidecars,
  type Cluster,
  type ContainerState,
  type OwnContainerHints,
  type Pod,
  type Probe,
  type ReadyOptions,
  type RunOptions,
  type Timing,
} from "./kube.ts";
import {
  BEFORE_KUBELET_KILL_MS,
  declaredPorts,
  gracePeriodMs,
  killScope,
  LOOPBACK,
  processName,
  readProcesses,
  selectProcesses,
  shutdownPlan,
  sidecarKinds,
  type OwnProcesses,
  type PortsSpec,
  type ProcessInfo,
  type ShutdownOptions,
} from "./shutdown.ts";
import { askReadyUrl, defaultReadyUrlTiming, type ReadyAnswer } from "./readyurl.ts";
import { terminationLog, type TerminationLog } from "./summary.ts";
import { connectOnce, hostPort, type ConnectAttempt } from "./http.ts";
import { quote, redactUrl, type Log } from "./log.ts";

/** The parts of a run's options the check reads (proa.ts's Options has them all). */
export interface CheckOptions {
  command: string[];
  readyUrls: URL[]; // --ready-url: the URL mode, with no Kubernetes API
  ready: ReadyOptions;
  run?: RunOptions; // what a sidecar's death does while the program runs (default: no flag)
  shutdown: ShutdownOptions;
  terminationMessage: boolean;
}

// ---------------------------------------------------------------------------------------------------------------
// The report

export type Verdict = "ok" | "warn" | "FAIL";
export interface Finding {
  verdict: Verdict;
  text: string; // what was found
  fix?: string; // what to change
  more?: string[]; // lines printed indented under it (YAML to apply)
}

const ok = (text: string): Finding => ({ verdict: "ok", text });
const warn = (text: string, fix?: string): Finding => ({ verdict: "warn", text, ...(fix ? { fix } : {}) });
const fail = (text: string, fix?: string, more?: string[]): Finding => ({
  verdict: "FAIL",
  text,
  ...(fix ? { fix } : {}),
  ...(more ? { more } : {}),
});

/** One line per finding, starting with its verdict; a FAIL's YAML follows it, indented. */
export function formatReport(findings: Finding[]): string {
  return findings
    .map(
      (f) =>
        `${f.verdict.padEnd(4)} ${f.text}${f.fix ? `; fix: ${f.fix}` : ""}\n${(f.more ?? []).map((line) => `       ${line}\n`).join("")}`,
    )
    .join("");
}

/** 1 when any check failed, else 0 (warnings allowed). */
export const checkStatus = (findings: Finding[]) => (findings.some((f) => f.verdict === "FAIL") ? 1 : 0);

// ---------------------------------------------------------------------------------------------------------------
// The facts: everything gather() found, as plain data

export interface Facts {
  env: NodeJS.ProcessEnv;
  nodeVersion: string; // process.versions.node
  runtime?: Runtime; // which node binary and C library this process runs on
  // In the API mode: loadCluster's verdict, the Pod as a run reads it, and the hints to proa's own container.
  cluster?:
    { ok: true; server: string; namespace: string; podName: string; dir: string } | { ok: false; message: string };
  probe?: Probe; // a run's list, and a watch the server ends after a second
  hints?: OwnContainerHints;
  version?: { major: number; minor: number; gitVersion: string }; // GET /version; absent when unknown
  readyUrls?: { url: URL; answer: ReadyAnswer }[]; // in the URL mode instead: one GET each, as a run's wait sends it
  urls: { method: "GET" | "POST"; url: URL; connect: ConnectAttempt }[]; // a TCP connect and close, no byte sent
  processes?: ProcessInfo[] | { error: string }; // read only for --kill and --kill-all
  ownCgroup?: string; // proa's /proc/self/cgroup, likewise: which Pod's processes --kill may reach
  own: OwnProcesses;
  program?: ProgramFacts;
  terminationLog?: TerminationLogFacts; // absent with --no-termination-message
}

/** The node binary and the C library this process runs on: the image's own, or proa's folder (/proa/bin/node). */
export interface Runtime {
  execPath: string;
  cLibrary: string; // "glibc 2.36 (/proa/lib/libc.so.6)", "musl (/lib/ld-musl-x86_64.so.1)"
}

/** Names the C library from Node's report: glibc's version is in its header, and the loaded objects say which file. */
export function describeCLibrary(glibcVersionRuntime: string | undefined, sharedObjects: string[]): string {
  const file = (pattern: RegExp) => sharedObjects.find((path) => pattern.test(path.slice(path.lastIndexOf("/") + 1)));
  const glibc = file(/^libc\.so\.6$/);
  if (glibcVersionRuntime) return `glibc ${glibcVersionRuntime}${glibc ? ` (${glibc})` : ""}`;
  const musl = file(/^(ld-musl-.*|libc\.musl-.*)\.so\.1$/);
  return musl ? `musl (${musl})` : "a C library Node.js does not name";
}

function readRuntime(): Runtime {
  // excludeNetwork (Node 22.13 and later): the report lists no sockets, so it never waits for a reverse lookup.
  (process.report as { excludeNetwork?: boolean }).excludeNetwork = true;
  const report = process.report.getReport() as { header?: { glibcVersionRuntime?: string }; sharedObjects?: string[] };
  return {
    execPath: process.execPath,
    cLibrary: describeCLibrary(report.header?.glibcVersionRuntime, report.sharedObjects ?? []),
  };
}

export interface TerminationLogFacts extends TerminationLog {
  file: { size: number; regular: boolean } | { code: string }; // its stat, or the error of the stat
}

export interface ProgramFacts {
  name: string;
  path: string; // the PATH searched
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
  const findings = checkEnvironment(facts);
  if (facts.cluster?.ok && facts.probe) findings.push(...checkApi(facts.env, facts.cluster, facts.probe));
  const pod = facts.probe?.pod ?? undefined;
  let notReady: string[] | undefined;
  let ownName: string | undefined;
  if (facts.readyUrls) {
    findings.push(
      ...facts.readyUrls.map(({ url, answer }) => checkReadyUrl(url, answer)),
      checkReadyTimeout(options.ready.readyTimeoutMs),
      ok(
        "with --ready-url a run watches nothing while the program runs: a sidecar that dies then is not noticed, as proa cannot tell a death from a restart without the Pod",
      ),
    );
    notReady = facts.readyUrls.filter(({ answer }) => !answer.ready).map(({ url }) => redactUrl(url));
  } else if (pod) {
    const own = checkOwnContainer(pod, facts.hints ?? {});
    findings.push(own.finding);
    ownName = own.name;
    if (own.name !== undefined) {
      const containers = checkContainers(pod, own.name, options.ready);
      findings.push(
        ...containers.findings,
        checkRestartPolicy(pod, options.ready.readyTimeoutMs),
        ...checkSidecarDeaths(pod, own.name, options.ready, options.run),
      );
      notReady = containers.notReady;
    }
  } else {
    findings.push(
      warn(
        "not checked, as the Pod could not be read: proa's container, the containers waited for, restartPolicy, shareProcessNamespace",
        "fix the FAIL above and run --check again",
      ),
    );
  }
  findings.push(...checkShutdownUrls(options.shutdown, facts.urls, pod, notReady));
  if (options.shutdown.kill.length > 0 || options.shutdown.killAll)
    findings.push(
      ...checkKill(options.shutdown, pod, facts.processes, {
        ...facts.own,
        ownCgroup: facts.ownCgroup,
        env: facts.env,
      }),
    );
  if (pod && ownName !== undefined)
    findings.push(
      ...checkKillUnderNever(options.shutdown, pod, ownName),
      ...checkNativeSidecars(options.shutdown, pod),
      ...checkCouldBeNative(pod, ownName, facts.version),
    );
  findings.push(checkBudget(pod, options.shutdown.timeoutMs, facts.readyUrls !== undefined));
  if (facts.program) findings.push(checkProgram(facts.program));
  findings.push(checkTerminationMessage(facts.terminationLog));
  return findings;
}

/** loadCluster's verdict (its error names the fix), or none loaded with --ready-url; Node.js, and the variables
 * through which Node changes proa. */
export function checkEnvironment({
  env,
  nodeVersion,
  runtime,
  cluster,
}: Pick<Facts, "env" | "nodeVersion" | "runtime" | "cluster">): Finding[] {
  const from = (variable: string, otherwise: string) => (env[variable] ? variable : otherwise);
  const findings = [
    !cluster
      ? ok(
          "the Kubernetes API is not used with --ready-url, so no service account token, RBAC or KUBERNETES_* variable is needed",
        )
      : cluster.ok
        ? ok(
            `the API server is at ${cluster.server}; the service account's files are in ${cluster.dir}; the Pod is ${cluster.namespace}/${cluster.podName} (its name from ${from("POD_NAME", "the hostname")}, its namespace from ${from("POD_NAMESPACE", "the service account's namespace file")})`,
          )
        : fail(quote(cluster.message, 400)),
    Number(nodeVersion.split(".")[0]) >= 20
      ? ok(`Node.js ${nodeVersion}${runtime ? ` (${runtime.execPath}), on ${runtime.cLibrary}` : ""}`)
      : fail(`Node.js ${nodeVersion} is older than 20, which proa needs`, "use Node.js 20 or later in the image"),
  ];
  for (const warning of nodeEnvironmentWarnings(env))
    findings.push(warn(warning, "remove it from the container's env unless you need it there"));
  return findings;
}

// OpenSSL's and Node's codes for a TLS handshake or a certificate that failed.
const TLS_ERROR = /CERT|SIGNATURE|ISSUER|SELF_SIGNED|TLS|SSL/;

/** TLS and the token, the permissions (a line for each of the list and the watch that failed), and the Pod the run
 * would take. kube.ts's messages name the request, quote the server and, for 401 and 403, say what to grant. */
export function checkApi(
  env: NodeJS.ProcessEnv,
  cluster: { server: string; namespace: string; podName: string },
  probe: Probe,
): Finding[] {
  const { list, watch } = probe;
  if (list.kind === "failed" && list.error.status === undefined) {
    // No HTTP answer: TLS failed (OpenSSL's codes), or the server could not be reached, or its answer was malformed.
    const cause = list.error.cause as NodeJS.ErrnoException | undefined;
    if (TLS_ERROR.test(cause?.code ?? "")) {
      return [
        fail(
          `TLS: ${list.error.message}`,
          "mount the cluster's own CA as ca.crt (the service account volume does), and reach the API server directly, not through a proxy that re-signs TLS",
        ),
      ];
    }
    return [
      fail(
        list.error.message,
        cause?.code || !cause
          ? "check KUBERNETES_SERVICE_HOST/PORT and any NetworkPolicy that blocks egress to the API server"
          : undefined,
      ),
    ];
  }
  const findings = [ok(`TLS: ${cluster.server}'s certificate verifies against the mounted ca.crt`)];
  const failed = [list, watch].flatMap((outcome) => (outcome.kind === "failed" ? [outcome.error] : []));
  const refused = failed.find((error) => error.status === 401);
  findings.push(refused ? fail(refused.message) : ok("the API server accepts the service account's token"));
  const lastForbidden = failed.filter((error) => error.status === 403).at(-1);
  for (const error of failed.filter((error) => error.status !== 401)) {
    const yaml = error === lastForbidden ? rbacYaml(error.message, cluster.namespace) : undefined;
    findings.push(
      fail(error.message, yaml && `apply this Role and RoleBinding (kubectl apply -n ${cluster.namespace} -f -)`, yaml),
    );
  }
  if (watch.kind === "event" && watch.event.type === "ERROR") {
    findings.push(
      warn(
        `the watch reported an error: ${quote(String(watch.event.object.message ?? watch.event.object.code))}`,
        "a run lists again and carries on; run --check again if it persists",
      ),
    );
  }
  if (failed.length === 0)
    findings.push(
      ok(`the service account may list and watch Pods in namespace ${cluster.namespace} (a run's own list and watch)`),
    );
  if (probe.ignored) findings.push(warn(probe.ignored, "check that KUBERNETES_SERVICE_HOST is the API server itself"));
  const pod = `${cluster.namespace}/${cluster.podName}`;
  if (probe.pod === null)
    findings.push(
      fail(
        `there is no Pod ${pod} (its name from ${env.POD_NAME ? "POD_NAME" : "the hostname"})`,
        `set POD_NAME and POD_NAMESPACE with the downward API: ${DOWNWARD_API}`,
      ),
    );
  else if (probe.pod) findings.push(ok(`found Pod ${pod}`));
  return findings;
}

/** The Role and RoleBinding, with job.yaml's rule, for the ServiceAccount a 403 names; a name that is not a valid
 * Kubernetes name never reaches the YAML. */
export function rbacYaml(message: string, namespace: string): string[] {
  const [, saNamespace = "", name = ""] = /User "system:serviceaccount:([^:"]+):([^:"]+)"/.exec(message) ?? [];
  return [
    "apiVersion: rbac.authorization.k8s.io/v1",
    "kind: Role",
    "metadata: {name: proa}",
    `rules: [{apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"]}]`,
    "---",
    "apiVersion: rbac.authorization.k8s.io/v1",
    "kind: RoleBinding",
    "metadata: {name: proa}",
    `subjects: [{kind: ServiceAccount, name: ${DNS_SUBDOMAIN.test(name) ? name : "SERVICE_ACCOUNT"}, namespace: ${DNS_LABEL.test(saNamespace) ? saNamespace : namespace}}]`,
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: proa}",
  ];
}

export function checkOwnContainer(pod: Pod, hints: OwnContainerHints): { finding: Finding; name?: string } {
  const regular = (pod.spec?.containers ?? []).map((c) => c.name);
  try {
    const { name, rule } = ownContainerName(pod, hints);
    if (regular.length > 1 && rule.includes("first container")) {
      return {
        name,
        finding: warn(
          `proa's own container is taken to be ${name}, the first of ${regular.join(", ")}: it could not be detected`,
          "set --container NAME (or PROA_CONTAINER) to the container proa runs in",
        ),
      };
    }
    return { name, finding: ok(`proa's own container is ${name} (${rule})`) };
  } catch (error) {
    return { finding: fail((error as Error).message, `set --container to one of: ${regular.join(", ")}`) };
  }
}

type SpecContainer = { name: string; restartPolicy?: string; readinessProbe?: unknown };

/** Each container a run waits for: its readiness now (information only), its readinessProbe, native or not. */
export function checkContainers(
  pod: Pod,
  own: string,
  ready: Pick<ReadyOptions, "waitFor" | "ignore">,
): { findings: Finding[]; notReady?: string[] } {
  let now;
  try {
    now = readiness(pod, own, ready.waitFor, ready.ignore);
  } catch (error) {
    return { findings: [fail((error as Error).message, "name containers of this Pod in --wait-for and --ignore")] };
  }
  // readiness() of the Pod without its status: every container it would wait for is "not ready".
  const waited = readiness({ ...pod, status: {} }, own, ready.waitFor, ready.ignore).notReady;
  if (waited.length === 0)
    return { findings: [ok("no other containers to wait for: a run starts the program at once")], notReady: [] };
  const spec = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])] as SpecContainer[];
  const statuses = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])];
  const findings = waited.map((name) => {
    const container = spec.find((c) => c.name === name);
    const status = statuses.find((s) => s.name === name);
    const what = `${container?.restartPolicy === "Always" ? "native sidecar" : "container"} ${name}: ${status?.ready ? "ready" : `not ready yet (${describeState(status?.state)})`}`;
    if (container?.readinessProbe !== undefined) return ok(`${what}; it has a readinessProbe`);
    return warn(
      `${what}; it has no readinessProbe, so it counts as ready as soon as it starts, before it may serve`,
      `give ${name} a readinessProbe that succeeds once it serves`,
    );
  });
  if (now.failed)
    findings.push(
      warn(
        `a run in this Pod now would fail at once: ${now.failed}`,
        "see kubectl logs and kubectl describe pod for why it terminated",
      ),
    );
  return { findings, notReady: now.notReady };
}

const NO_FLAGS: RunOptions = { critical: [], criticalAll: false, noCritical: false };

/** What a run does if each sidecar it watches dies while the program runs: sidecarVerdict's own words, for a failure
 * and, where the two differ (a regular sidecar under OnFailure), for exit 0. */
export function checkSidecarDeaths(
  pod: Pod,
  own: string,
  ready: Pick<ReadyOptions, "waitFor" | "ignore">,
  run: RunOptions = NO_FLAGS,
): Finding[] {
  let watched: string[];
  try {
    readiness(pod, own, ready.waitFor, ready.ignore); // checks the names: checkContainers reports them
    watched = waitedFor(pod, own, ready.waitFor, ready.ignore);
  } catch {
    return [];
  }
  const unknown = run.critical.find((name) => !watched.includes(name));
  if (unknown !== undefined)
    return [
      fail(
        `--critical ${unknown}: a run does not watch such a container, and would fail its wait; it watches those it waits for: ${watched.join(", ") || "none"}`,
        "name one of them, or drop --critical",
      ),
    ];
  return watchedSidecars(pod, watched).map(({ name, native }) => {
    const flags = { critical: run.criticalAll || run.critical.includes(name), noCritical: run.noCritical };
    const died = (exitCode: number) =>
      sidecarVerdict(
        restartPolicyOf(pod),
        native,
        { name },
        { name, state: { terminated: { exitCode } } },
        flags,
        false,
      );
    const [failed, succeeded] = [died(1), died(0)];
    const what = `if ${native ? "native sidecar" : "sidecar"} ${name} dies while the program runs`;
    return ok(
      failed.why === succeeded.why
        ? `${what}: ${failed.why}`
        : `${what}: with exit 0, ${succeeded.why}; with another exit code, ${failed.why}`,
    );
  });
}

function describeState(state: ContainerState | undefined): string {
  if (state?.running) return "running";
  if (state?.terminated)
    return `terminated with exit code ${state.terminated.exitCode ?? "unknown"}${state.terminated.reason ? `, ${quote(state.terminated.reason, 80)}` : ""}`;
  if (state?.waiting) return `waiting${state.waiting.reason ? `: ${quote(state.waiting.reason, 80)}` : ""}`;
  return "no status yet";
}

export function checkRestartPolicy(pod: Pod, readyTimeoutMs: number | undefined): Finding {
  const policy = restartPolicyOf(pod);
  // What the run's shutdown step will do, from the same plan and the same reading of the Pod.
  const onFailure = shutdownPlan(policy, false, false, sidecarKinds(pod));
  const after = `; after a failure: ${onFailure.shutDown && onFailure.waitForExit ? "proa shuts the sidecars down" : onFailure.reason}`;
  if (policy === "Never")
    return ok(
      `restartPolicy Never: a sidecar that terminates before it is ready fails the wait at once (exit 1)${after}`,
    );
  const dies =
    policy === "OnFailure"
      ? "a sidecar that fails is restarted (one that exits 0 is not, and fails the wait at once)"
      : "a sidecar that dies is restarted";
  const text = `restartPolicy ${policy}: ${dies}, and proa keeps waiting for it`;
  if (readyTimeoutMs !== undefined) return ok(`${text}, at most --ready-timeout (${readyTimeoutMs / 1000} s)${after}`);
  return warn(
    `${text}, with no limit${after}`,
    "use restartPolicy: Never for a Job's Pod, or set --ready-timeout so that the wait ends",
  );
}

// The readiness paths of common sidecars on their usual ports (the README's table): a 404 there is a wrong path.
const READY_PATHS: Record<string, string> = {
  "15021": "/healthz/ready (Istio)",
  "4191": "/ready (Linkerd)",
  "9901": "/ready (Envoy)",
  "9090": "/readiness (Cloud SQL Auth Proxy)",
};

/** One GET, as a run's wait sends it. What a starting sidecar answers (refused, 5xx, a timeout) is a warning, since
 * a run waits it out; what no wait gets past (a redirect, a 4xx, TLS that does not verify, an answer that is not
 * HTTP, a host that does not resolve) is a FAIL. */
export function checkReadyUrl(url: URL, answer: ReadyAnswer): Finding {
  const target = `ready URL ${redactUrl(url)}`;
  const { status, code = "", text } = answer;
  const port = portOf(url);
  const never = "so a run would wait until --ready-timeout";
  if (answer.ready) return ok(`${target}: ${text}, ready`);
  if (status !== undefined && status >= 300 && status < 400)
    return fail(`${target}: ${text}`, "a redirect means the URL's path or scheme is wrong");
  if (status === 404) {
    const usual = READY_PATHS[port];
    return fail(
      `${target}: HTTP 404, nothing is served at that path, ${never}`,
      usual && !usual.startsWith(`${url.pathname} `)
        ? `on port ${port} the readiness path is usually ${usual}`
        : "check the path against the sidecar's readiness endpoint",
    );
  }
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
    const fix =
      status === 401 || status === 403
        ? "use the sidecar's unauthenticated readiness endpoint, or give credentials in the URL (http://user:password@host/...)"
        : "check the URL against the sidecar's readiness endpoint";
    return fail(`${target}: HTTP ${status}, a request that waiting does not change, ${never}`, fix);
  }
  if (status !== undefined)
    return warn(
      `${target}: HTTP ${status}, not ready yet${answer.body ? `: ${answer.body}` : ""}`,
      "normal while the sidecar starts (a run waits for 2xx); if it persists, see the sidecar's log",
    );
  if (code === "ECONNREFUSED")
    return warn(
      `${target}: nothing accepts connections at ${url.hostname}:${port} yet (connection refused)`,
      "normal while the sidecar starts (a run waits); if it persists, check the port against the sidecar's",
    );
  if (code === "EPROTO")
    return fail(
      `${target}: the TLS handshake failed (EPROTO): the port does not speak TLS`,
      "write the URL with http://, as a sidecar's port on localhost usually is",
    );
  if (TLS_ERROR.test(code))
    return fail(
      `${target}: TLS: ${text}`,
      "proa never skips verification: use the sidecar's plain http endpoint on localhost, or add its CA with NODE_EXTRA_CA_CERTS",
    );
  if (code.startsWith("HPE_"))
    return fail(
      `${target}: the answer is not HTTP (${quote(text, 200)}), ${never}`,
      "check the port against the sidecar's HTTP readiness port",
    );
  if (code === "ENOTFOUND")
    return fail(`${target}: ${text}`, "check the URL's host; a sidecar in the Pod is at localhost");
  if (code === "ETIMEDOUT")
    return warn(
      `${target}: ${text}`,
      `a run asks again every ${defaultReadyUrlTiming.pollMs} ms; if it persists, check that ${url.hostname}:${port} is the sidecar's HTTP readiness port`,
    );
  return warn(`${target}: ${quote(text, 200)}`, "if the port serves https, write https://; else run --check again");
}

/** Without the Pod, a run cannot see a sidecar that died before it was ready: only --ready-timeout ends the wait. */
export function checkReadyTimeout(readyTimeoutMs: number | undefined): Finding {
  if (readyTimeoutMs !== undefined)
    return ok(`the wait for the ready URLs ends after --ready-timeout (${readyTimeoutMs / 1000} s)`);
  return warn(
    "the wait for the ready URLs has no limit: with --ready-url a run cannot see a sidecar that died before it was ready",
    "set --ready-timeout so that the wait ends",
  );
}

const portOf = (url: URL) => String(hostPort(url).port);

// Envoy's admin /quitquitquit takes only POST: on Envoy's usual admin port, Istio's (15000) and pilot-agent's (15020).
const ENVOY_ADMIN_PORTS = new Set(["9901", "15000", "15020"]);

/** notReady: the containers not ready yet, which may not listen yet either (a refused port is then a warning). */
export function checkShutdownUrls(
  shutdown: Pick<ShutdownOptions, "kill" | "killAll">,
  urls: Facts["urls"],
  pod: Pod | undefined,
  notReady?: string[],
): Finding[] {
  const findings: Finding[] = [];
  for (const { method, url, connect } of urls) {
    const target = `shutdown ${method} ${redactUrl(url)}`;
    const port = portOf(url);
    const at = `${url.hostname}:${port}`;
    if (connect.ok)
      findings.push(
        ok(`${target}: something accepts TCP connections at ${at} (connected and closed, no request sent)`),
      );
    else if (connect.code === "ECONNREFUSED" && notReady?.length)
      findings.push(
        warn(
          `${target}: nothing accepts TCP connections at ${at} yet (connection refused), while ${notReady.join(", ")} ${notReady.length === 1 ? "is" : "are"} not ready`,
          "run --check again once the sidecars are ready",
        ),
      );
    else
      findings.push(
        fail(
          `${target}: cannot connect to ${at}: ${quote(connect.message, 200)}`,
          "check the URL's host and port against the sidecar's; a sidecar in the Pod is at localhost",
        ),
      );
    if (method === "GET" && url.pathname === "/quitquitquit" && ENVOY_ADMIN_PORTS.has(port)) {
      findings.push(
        warn(
          `${target}: Envoy's and Istio's /quitquitquit take only POST, and answer a GET 405 without stopping`,
          `use --shutdown-http-post ${redactUrl(url)}`,
        ),
      );
    }
  }
  if (urls.length === 0 && shutdown.kill.length === 0 && !shutdown.killAll) {
    if (pod?.spec?.containers?.length === 1)
      findings.push(
        ok(
          "no shutdown means given, and none needed: the Pod has no other regular container (the kubelet stops native sidecars)",
        ),
      );
    else
      findings.push(
        warn(
          "no shutdown means given: after the program exits, the sidecars keep running, proa waits for them until the shutdown budget ends, and a Job's Pod does not complete",
          "add --shutdown-http-post URL for each sidecar with a shutdown endpoint, or --kill NAME with shareProcessNamespace: true",
        ),
      );
  }
  return findings;
}

/** shareProcessNamespace, and what a run would signal now, chosen by shutdown.ts's own killScope and selectProcesses. */
export function checkKill(
  shutdown: Pick<ShutdownOptions, "kill" | "killAll">,
  pod: Pod | undefined,
  processes: Facts["processes"],
  own: OwnProcesses & { ownCgroup?: string; env?: NodeJS.ProcessEnv },
): Finding[] {
  const findings: Finding[] = [];
  const options = [...shutdown.kill.map((name) => `--kill ${name}`), ...(shutdown.killAll ? ["--kill-all"] : [])].join(
    ", ",
  );
  const shared = (pod?.spec as { shareProcessNamespace?: boolean } | undefined)?.shareProcessNamespace === true;
  if (pod && !shared)
    findings.push(
      fail(
        `${options}: the Pod spec does not set shareProcessNamespace: true, so proa sees only its own container's processes`,
        "add shareProcessNamespace: true to the Pod spec (a Job's spec.template.spec)",
      ),
    );
  else if (pod) findings.push(ok(`${options}: the Pod shares its process namespace (shareProcessNamespace: true)`));
  if (processes === undefined) return findings;
  if ("error" in processes)
    return [
      ...findings,
      warn(
        `cannot list the processes: ${quote(processes.error, 200)}`,
        "run --check where /proc is readable, as proa runs",
      ),
    ];
  const scope = killScope(own.ownCgroup, pod, own.env ?? {});
  if (typeof scope === "object" && "refused" in scope)
    return [
      ...findings,
      fail(`${options} would signal nothing: ${scope.refused}`, "run proa in the Pod it is meant for"),
    ];
  const { targets, unmatched, interpreters, sidecarsVisible, outOfScope } = selectProcesses(
    processes,
    shutdown.kill,
    shutdown.killAll,
    own,
    scope,
  );
  const signalled = (by: string) =>
    targets
      .filter((t) => (t.rule === "--kill-all" ? "--kill-all" : t.name) === by)
      .map((t) => `${processName(t.process)} (${t.process.pid}, by ${t.rule === "--kill-all" ? "name" : t.rule})`);
  const visible = () =>
    quote(
      [...new Set(selectProcesses(processes, [], true, own, scope).targets.map((t) => t.name))].sort().join(", ") ||
        "none",
      300,
    );
  if (outOfScope.length > 0)
    findings.push(
      ok(
        `out of scope, outside proa's Pod, never signalled: ${quote([...new Set(outOfScope.map(processName))].sort().join(", "), 300)}`,
      ),
    );
  for (const name of shutdown.kill) {
    if (unmatched.includes(name))
      findings.push(
        warn(
          `--kill ${name} matches no visible process; visible: ${visible()}`,
          "name the sidecar's executable as the list shows it",
        ),
      );
    else if (!shutdown.killAll)
      findings.push(ok(`--kill ${name} would signal ${quote(signalled(name).join(", "), 300)}`));
  }
  if (shutdown.killAll)
    findings.push(
      ok(
        `--kill-all would signal ${quote(signalled("--kill-all").join(", ") || "nothing", 300)} (never PID 1, proa or its ancestors)`,
      ),
    );
  for (const name of interpreters)
    findings.push(
      warn(
        `--kill ${name} matches every program that ${name} runs, not one sidecar`,
        "name the sidecar's own executable if you can",
      ),
    );
  if (!sidecarsVisible && (shared || !pod))
    findings.push(
      warn("proa sees no process but PID 1 and its own", "add shareProcessNamespace: true to the Pod spec"),
    );
  return findings;
}

type SidecarSpec = PortsSpec & { image?: string; command?: string[]; args?: string[]; restartPolicy?: string };

/** The image's own name, without registry, tag or digest: gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.8 is cloud-sql-proxy. */
const imageName = (image = "") =>
  image
    .replace(/@.*$/, "")
    .replace(/:[^/]*$/, "")
    .split("/")
    .at(-1) ?? "";
/** The container a --kill NAME clearly targets: one named so, or whose image is. */
const killTarget = (containers: SidecarSpec[], name: string) =>
  containers.find((c) => c.name === name || imageName(c.image) === name);

/** Under restartPolicy Never a regular container that exits non-zero makes the Pod, and so the Job, Failed although
 * the program succeeded, and many programs exit 143 on SIGTERM (the v2 Cloud SQL Auth Proxy unless it runs with
 * --exit-zero-on-sigterm). Native sidecars are the kubelet's to stop, and checkNativeSidecars speaks of them. */
export function checkKillUnderNever(
  shutdown: Pick<ShutdownOptions, "kill" | "killAll">,
  pod: Pod,
  own: string,
): Finding[] {
  if (restartPolicyOf(pod) !== "Never") return [];
  const regular = ((pod.spec?.containers ?? []) as SidecarSpec[]).filter((c) => c.name !== own);
  const fix =
    "give the sidecar a shutdown endpoint that exits 0 (--shutdown-http-post), or make it exit 0 on SIGTERM (the Cloud SQL Auth Proxy v2: --exit-zero-on-sigterm)";
  const consequence =
    "else under restartPolicy Never the Pod, and so the Job, is Failed although the program succeeded";
  const findings: Finding[] = [];
  for (const name of shutdown.kill) {
    const target = killTarget(regular, name);
    if (!target && killTarget((pod.spec?.initContainers ?? []) as SidecarSpec[], name)) continue;
    const sidecar = target ? `container ${target.name}` : `the sidecar it stops`;
    if (target && [...(target.command ?? []), ...(target.args ?? [])].includes("--exit-zero-on-sigterm"))
      findings.push(ok(`--kill ${name}: ${sidecar} runs with --exit-zero-on-sigterm, so it exits 0 when signalled`));
    else findings.push(warn(`--kill ${name}: ${sidecar} must exit 0 on SIGTERM, ${consequence}`, fix));
  }
  if (shutdown.killAll && regular.length > 0)
    findings.push(
      warn(`--kill-all: ${regular.map((c) => c.name).join(", ")} must exit 0 on SIGTERM, ${consequence}`, fix),
    );
  return findings;
}

/** Native sidecars (init containers with restartPolicy Always) are stopped by the kubelet after the regular
 * containers exit, and restarted if one exits early: proa's shutdown requests and --kill are not needed for them, and
 * one aimed at a native sidecar (by the port of its probes or a containerPort, or by its name) stops it too early. */
export function checkNativeSidecars(
  shutdown: Pick<ShutdownOptions, "httpGet" | "httpPost" | "kill">,
  pod: Pod,
): Finding[] {
  const native = ((pod.spec?.initContainers ?? []) as SidecarSpec[]).filter((c) => c.restartPolicy === "Always");
  if (native.length === 0) return [];
  const findings = [
    ok(
      `native sidecars ${native.map((c) => c.name).join(", ")}: the kubelet stops them after the regular containers exit, and restarts one that exits early, so proa's shutdown requests and --kill are not needed for them`,
    ),
  ];
  const fix = "leave native sidecars to the kubelet: drop the option";
  for (const url of [...shutdown.httpGet, ...shutdown.httpPost]) {
    const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    const target = LOOPBACK.test(url.hostname) ? native.find((c) => declaredPorts(c).has(port)) : undefined;
    if (target)
      findings.push(
        warn(
          `the shutdown URL ${redactUrl(url)} is native sidecar ${target.name}'s port ${port}: stopping it is the kubelet's job`,
          fix,
        ),
      );
  }
  for (const name of shutdown.kill) {
    const target = killTarget(native, name);
    if (target)
      findings.push(
        warn(`--kill ${name} targets native sidecar ${target.name}: stopping it is the kubelet's job`, fix),
      );
  }
  return findings;
}

/** Native sidecars are beta and on by default from Kubernetes 1.29 (KEP-753). Regular-container sidecars there could be
 * native; proa would still add what the kubelet does not do for them. An unknown version says nothing. */
export function checkCouldBeNative(pod: Pod, own: string, version: Facts["version"]): Finding[] {
  const regular = (pod.spec?.containers ?? []).map((c) => c.name).filter((name) => name !== own);
  const native = (pod.spec?.initContainers ?? []).some((c) => c.restartPolicy === "Always");
  if (!version || version.major < 1 || (version.major === 1 && version.minor < 29) || native || regular.length === 0)
    return [];
  return [
    ok(
      `the API server is ${version.gitVersion}, where ${regular.join(", ")} could be ${regular.length === 1 ? "a native sidecar (an init container" : "native sidecars (init containers"} with restartPolicy: Always) that the kubelet stops; proa would still gate the program on their readiness (the kubelet waits only for started), bound the wait, and give the exit status and the summary`,
    ),
  ];
}

/** The budget a run's shutdown step starts with: shutdown.ts's rule. With --ready-url there is no Pod spec, so
 * the default grace period stands in for the Pod's. */
export function checkBudget(pod: Pod | undefined, timeoutMs: number | undefined, urlMode = false): Finding {
  const source =
    timeoutMs !== undefined
      ? "--shutdown-timeout"
      : urlMode
        ? "the default, as with --ready-url a run reads no Pod spec"
        : pod?.spec?.terminationGracePeriodSeconds !== undefined
          ? "the Pod's terminationGracePeriodSeconds"
          : "the default";
  const grace = gracePeriodMs(undefined);
  // A run's plan after the program succeeds, as the shutdown step makes it: with only native sidecars, no wait.
  const plan = pod && shutdownPlan(restartPolicyOf(pod), true, false, sidecarKinds(pod));
  if (plan?.shutDown && !plan.waitForExit) return ok(`a run's shutdown step does not wait: ${plan.reason}`);
  const sigterm = urlMode
    ? `after SIGTERM, at most ${(grace - BEFORE_KUBELET_KILL_MS) / 1000} s from it, as a run assumes the default grace period of ${grace / 1000} s`
    : "after SIGTERM, never past a second before the grace period ends";
  return ok(`shutdown budget ${(timeoutMs ?? gracePeriodMs(pod)) / 1000} s, from ${source}; ${sigterm}`);
}

/** As spawn (libuv's execvp) resolves it: the first executable file wins; EACCES from any candidate means 126. */
export function checkProgram(program: ProgramFacts): Finding {
  const name = quote(program.name, 200);
  const found = program.candidates.find((c) => c.kind === "file" && c.executable);
  if (found?.interpreter && !found.interpreter.found) {
    return fail(
      `program ${name} is ${found.path}, whose #! line names ${quote(found.interpreter.path, 200)}, which is not in the image: a run would exit 127`,
      "install that interpreter in the image, or change the script's #! line",
    );
  }
  if (found) return ok(`program ${name} is ${found.path}, executable`);
  const denied = program.candidates.find((c) => c.kind !== "missing");
  if (denied) {
    const why =
      denied.kind === "file"
        ? "has no execute permission"
        : `is a ${denied.kind === "directory" ? "directory" : "special file"}`;
    return fail(
      `program ${name}: ${denied.path} ${why}: a run would exit 126`,
      `chmod +x ${denied.path} in the image, or give the program's full path`,
    );
  }
  const where = program.name.includes("/") ? "does not exist" : `is not on PATH (${quote(program.path, 200)})`;
  return fail(
    `program ${name} ${where}: a run would exit 127`,
    "install it in the image, or give its full path after --",
  );
}

/** Where a run would leave its summary for kubectl describe, and whether that file is there and empty now. */
export function checkTerminationMessage(target: TerminationLogFacts | undefined): Finding {
  if (!target) return ok("the termination message is off (--no-termination-message): a run writes no summary");
  const where = `the termination message file ${quote(target.path, 200)} (from ${target.from})`;
  const fallback =
    target.policy === "FallbackToLogsOnError"
      ? "; when the program fails, the kubelet puts the log's last lines there instead (FallbackToLogsOnError)"
      : "";
  const { file } = target;
  if ("size" in file && file.regular && file.size === 0)
    return ok(`a run writes its summary to ${where}, which exists and is empty${fallback}`);
  if ("size" in file && file.regular)
    return warn(`${where} holds ${file.size} bytes already: a run leaves it as it is and writes no summary`);
  if ("size" in file)
    return warn(
      `${where} is not a regular file: a run writes no summary there`,
      "point terminationMessagePath at a file (the kubelet's default is /dev/termination-log)",
    );
  const fix =
    target.from === "the Pod spec"
      ? undefined
      : "if the container's terminationMessagePath is another path, set PROA_TERMINATION_MESSAGE_PATH to it";
  if (file.code === "ENOENT") return warn(`${where} does not exist (as outside a Pod): a run writes no summary`, fix);
  return warn(`${where} cannot be examined (${file.code}): a run would write no summary`, fix);
}

/** The paths spawn tries for a program name: the name itself when it has a slash, else each PATH entry in turn. */
export function programCandidates(name: string, path: string, cwd: string): string[] {
  if (name.includes("/")) return [resolve(cwd, name)];
  return path.split(":").map((dir) => resolve(cwd, dir, name));
}

// ---------------------------------------------------------------------------------------------------------------
// Gathering: the only I/O, all of it read-only

export interface GatherTiming {
  connectMs: number; // a shutdown URL's TCP connect
  readyRequestMs: number; // a ready URL's GET
  api: Partial<Timing>; // passed to probePod
  versionMs: number; // GET /version, which only adds an information line
}
const DEFAULT_GATHER: GatherTiming = {
  connectMs: 5000,
  readyRequestMs: defaultReadyUrlTiming.requestTimeoutMs,
  api: { idleMarginMs: 10_000 },
  versionMs: 5000,
};

export async function gather(
  options: CheckOptions,
  env: NodeJS.ProcessEnv,
  log: Log,
  timing: Partial<GatherTiming> = {},
): Promise<Facts> {
  const t = { ...DEFAULT_GATHER, ...timing };
  // Before any socket is open: Node 20's report, which has no excludeNetwork, would look each one's peer up.
  const runtime = readRuntime();
  // With --ready-url a run loads no in-cluster configuration and reads no Pod, and neither does the check.
  const urlMode = options.readyUrls.length > 0;
  let cluster: Cluster | undefined;
  let clusterFacts: Facts["cluster"];
  if (!urlMode) {
    try {
      cluster = loadCluster(env, options.shutdown.userAgent);
      clusterFacts = {
        ok: true,
        server: cluster.server,
        namespace: cluster.namespace,
        podName: cluster.podName,
        dir: cluster.tokenFile.replace(/\/token$/, ""),
      };
    } catch (error) {
      clusterFacts = { ok: false, message: (error as Error).message };
    }
  }
  const requests = [
    ...options.shutdown.httpGet.map((url) => ({ method: "GET" as const, url })),
    ...options.shutdown.httpPost.map((url) => ({ method: "POST" as const, url })),
  ];
  const connectMs = Math.min(options.shutdown.requestTimeoutMs, t.connectMs);
  try {
    const [probe, version, answers, connects] = await Promise.all([
      cluster && probePod(cluster, log, t.api),
      cluster && serverVersion(cluster, log, t.versionMs),
      Promise.all(
        options.readyUrls.map((url) => askReadyUrl(url, options.shutdown.userAgent, undefined, t.readyRequestMs)),
      ),
      Promise.all(requests.map(({ url }) => connectOnce(url, connectMs))),
    ]);
    const hints = urlMode ? undefined : ownContainerHints(options.ready.container);
    const facts: Facts = {
      env,
      nodeVersion: process.versions.node,
      runtime,
      ...(urlMode
        ? { readyUrls: options.readyUrls.map((url, i) => ({ url, answer: answers[i]! })) }
        : { cluster: clusterFacts, hints }),
      ...(probe ? { probe } : {}),
      ...(version ? { version } : {}),
      urls: requests.map((request, i) => ({ ...request, connect: connects[i]! })),
      own: { pid: process.pid, ppid: process.ppid },
    };
    if (options.shutdown.kill.length > 0 || options.shutdown.killAll) {
      try {
        facts.processes = readProcesses();
        facts.ownCgroup = readFileSync("/proc/self/cgroup", "utf8");
      } catch (error) {
        facts.processes = { error: String(error) };
      }
    }
    // libuv's search path when the environment has no PATH (_PATH_DEFPATH).
    if (options.command[0]) facts.program = programFacts(options.command[0], env.PATH ?? "/usr/bin:/bin");
    if (options.terminationMessage)
      facts.terminationLog = terminationLogFacts(terminationLog(ownContainerSpec(probe?.pod, hints), env));
    return facts;
  } finally {
    cluster?.agent.destroy();
  }
}

/** proa's own container in the Pod spec, by a run's rule, for its terminationMessagePath; none when it is unknown. */
function ownContainerSpec(pod: Pod | null | undefined, hints: OwnContainerHints | undefined) {
  if (!pod || !hints) return undefined;
  try {
    const { name } = ownContainerName(pod, hints);
    return pod.spec?.containers?.find((c) => c.name === name);
  } catch {
    return undefined; // checkOwnContainer reports why
  }
}

/** The termination log's stat, never an open: a run opens it for writing only at its end. */
function terminationLogFacts(target: TerminationLog): TerminationLogFacts {
  try {
    const stat = statSync(target.path);
    return { ...target, file: { size: stat.size, regular: stat.isFile() } };
  } catch (error) {
    return { ...target, file: { code: (error as NodeJS.ErrnoException).code ?? String(error) } };
  }
}

function programFacts(name: string, path: string): ProgramFacts {
  const candidates = programCandidates(name, path, process.cwd()).map((file): Candidate => {
    const stat = statSync(file, { throwIfNoEntry: false });
    if (!stat) return { path: file, kind: "missing", executable: false };
    const candidate: Candidate = {
      path: file,
      kind: stat.isFile() ? "file" : stat.isDirectory() ? "directory" : "other",
      executable: (stat.mode & 0o111) !== 0,
    };
    const interpreter = candidate.kind === "file" && candidate.executable ? shebang(file) : undefined;
    if (interpreter)
      candidate.interpreter = {
        path: interpreter,
        found: statSync(resolve(interpreter), { throwIfNoEntry: false })?.isFile() === true,
      };
    return candidate;
  });
  return { name, path, candidates };
}

/** The interpreter a script's #! line names, if the file starts with one. */
function shebang(file: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const head = Buffer.alloc(256);
    const text = head.subarray(0, readSync(fd, head, 0, head.length, 0)).toString("latin1");
    return /^#!\s*(\S+)/.exec(text)?.[1];
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The mode

/** Gathers, judges, prints the report on stdout; returns 1 when a check failed, else 0. */
export async function runCheck(
  options: CheckOptions,
  env: NodeJS.ProcessEnv,
  log: Log,
  write = (text: string) => void process.stdout.write(text),
): Promise<number> {
  log.info(
    `checking the setup: nothing is run or signalled, and no shutdown request is sent${options.readyUrls.length > 0 ? " (one GET to each ready URL)" : ""}`,
  );
  const findings = judge(options, await gather(options, env, log));
  write(formatReport(findings));
  const count = (verdict: Verdict) => findings.filter((f) => f.verdict === verdict).length;
  log.info("check finished", { ok: count("ok"), warn: count("warn"), fail: count("FAIL") });
  return checkStatus(findings);
}
