// The end-to-end tests' side of a real etcd + kube-apiserver (test/e2e/kube-apiserver.sh): starting and stopping it,
// an admin client over HTTPS that trusts the server's own CA, job.yaml's documents, service-account directories
// holding real TokenRequest tokens, and a stand-in for the kubelet that writes Pod statuses through pods/status.
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ContainerStatus, Pod } from "../../kube.ts";

export const SCRIPT = fileURLToPath(new URL("./kube-apiserver.sh", import.meta.url));
export const JOB_YAML = fileURLToPath(new URL("../../job.yaml", import.meta.url));

// ---------------------------------------------------------------------------------------------------------------
// The server's processes

/** The folder of the Kubernetes binaries the suites run: PROA_E2E_KUBE_BIN, else where kube-apiserver.sh caches the
 * 1.20.2 it builds. */
export function kubeBinDir(env: NodeJS.ProcessEnv = process.env): string {
  return (
    env.PROA_E2E_KUBE_BIN || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "proa", "kube-apiserver-1.20.2")
  );
}

export function apiserverBinary(env: NodeJS.ProcessEnv = process.env): string {
  return join(kubeBinDir(env), "kube-apiserver");
}

export interface KubeVersion {
  minor: number; // of major version 1, the only one
  gitVersion: string; // v1.33.13
}

/** A version as a component's --version prints it ("Kubernetes v1.33.13"), or as the scripts write it to DIR/env. */
export function parseKubeVersion(text: string): KubeVersion | undefined {
  const match = /v1\.(\d+)\.\d+\S*/.exec(text);
  return match ? { minor: Number(match[1]), gitVersion: match[0] } : undefined;
}

/** kube-apiserver's version, for a suite's title: 1.20.2 in CI, else what PROA_E2E_KUBE_BIN holds. */
export function apiserverVersion(env: NodeJS.ProcessEnv = process.env): string {
  return binaryVersion(apiserverBinary(env))?.gitVersion ?? "(not built yet)";
}

/** What a binary says its version is; undefined when it cannot be run (not built yet). */
export function binaryVersion(path: string): KubeVersion | undefined {
  try {
    return parseKubeVersion(execFileSync(path, ["--version"], { encoding: "utf8", timeout: 10_000 }));
  } catch {
    return undefined;
  }
}

/**
 * Why the suite cannot run here, or undefined when it can. In CI (CI=true) nothing is a reason: a suite that cannot
 * get its server must fail there, never skip silently; before() then fails with the script's own error.
 */
export function skipReason(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CI && env.CI !== "false") return undefined;
  if (!existsSync(apiserverBinary(env)))
    return env.PROA_E2E_KUBE_BIN
      ? `no kube-apiserver at ${apiserverBinary(env)} (PROA_E2E_KUBE_BIN)`
      : `no kube-apiserver at ${apiserverBinary(env)}: run \`bash test/e2e/kube-apiserver.sh build\` (or \`npm run test:e2e\`, which does)`;
  return undefined;
}

function script(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("bash", [SCRIPT, ...args], { env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error)
        reject(new Error(`kube-apiserver.sh ${args.join(" ")} failed (${error.message.split("\n")[0]}):\n${stderr}`));
      else resolve(stderr);
    });
  });
}

export interface ServerEnv {
  KUBE_HOST: string;
  KUBE_PORT: string;
  KUBE_URL: string;
  KUBE_CA: string;
  KUBE_ADMIN_TOKEN: string;
  ETCD_URL: string;
  KUBE_VERSION?: string; // kube-apiserver's, as its --version says it (v1.20.2)
}

export class KubeServer {
  readonly ca: Buffer;
  private constructor(
    readonly dir: string,
    readonly env: ServerEnv,
    readonly envText: string,
  ) {
    this.ca = readFileSync(env.KUBE_CA);
  }

  /** Starts etcd and kube-apiserver with their files in dir (~5 s); scriptEnv: kube-apiserver.sh's environment. */
  static async start(dir: string, scriptEnv: NodeJS.ProcessEnv = process.env): Promise<KubeServer> {
    await script(["start", dir], scriptEnv);
    return KubeServer.fromDir(dir);
  }

  /** The server that kube-apiserver.sh (or node.sh) started in dir, from dir/env. */
  static fromDir(dir: string): KubeServer {
    const envText = readFileSync(join(dir, "env"), "utf8");
    const env = Object.fromEntries(
      envText
        .split("\n")
        .filter((line) => line.includes("="))
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
    ) as unknown as ServerEnv;
    for (const key of ["KUBE_HOST", "KUBE_PORT", "KUBE_URL", "KUBE_CA", "KUBE_ADMIN_TOKEN", "ETCD_URL"] as const) {
      if (!env[key]) throw new Error(`${dir}/env has no ${key}`);
    }
    return new KubeServer(dir, env, envText);
  }

  /** Stops both processes and waits until they are gone (also when start failed half-way). */
  static stop(dir: string): Promise<string> {
    return script(["stop", dir]);
  }

  /** SIGTERM to kube-apiserver (SIGKILL after PROA_E2E_STOP_TIMEOUT s), downSeconds of nothing, then the same
   * server again on the same port with the same etcd. Resolves once it answers /readyz. */
  restartApiserver(
    downSeconds = 0,
    stopTimeoutSeconds?: number,
    scriptEnv: NodeJS.ProcessEnv = process.env,
  ): Promise<string> {
    const env =
      stopTimeoutSeconds === undefined
        ? scriptEnv
        : { ...scriptEnv, PROA_E2E_STOP_TIMEOUT: String(stopTimeoutSeconds) };
    return script(["restart-apiserver", this.dir, String(downSeconds)], env);
  }

  // -------------------------------------------------------------------------------------------------------------
  // The admin client (system:masters): plain node:https with the server's CA, since global fetch cannot take one.

  /** One request; a new connection each time (agent: false), so a restarted server never meets a stale socket.
   * Returns the status and the body (parsed when it is JSON). */
  call(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<{ status: number; body: any }> {
    const data = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.env.KUBE_HOST,
          port: Number(this.env.KUBE_PORT),
          method,
          path,
          ca: this.ca,
          agent: false,
          timeout: 15_000,
          // Not curl's user agent: the server pretty-prints JSON for curl.
          headers: {
            Authorization: `Bearer ${this.env.KUBE_ADMIN_TOKEN}`,
            Accept: "application/json",
            "User-Agent": "proa-e2e-admin",
            ...(data === undefined ? {} : { "Content-Type": contentType }),
          },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on("data", (chunk: Buffer) => parts.push(chunk));
          res.on("end", () => {
            const text = Buffer.concat(parts).toString();
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {}
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within 15 s`)));
      req.on("error", reject);
      req.end(data);
    });
  }

  /** As call, but anything other than 2xx is an error that shows the server's message. */
  async api(method: string, path: string, body?: unknown, contentType?: string): Promise<any> {
    const { status, body: answer } = await this.call(method, path, body, contentType);
    if (status < 200 || status > 299)
      throw new Error(
        `${method} ${path}: HTTP ${status}: ${typeof answer === "string" ? answer : (answer?.message ?? JSON.stringify(answer))}`,
      );
    return answer;
  }

  createNamespace(name: string): Promise<unknown> {
    return this.api("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name } });
  }

  /** POSTs one YAML document as it is (the server parses application/yaml) into its collection in namespace. */
  applyYaml(
    namespace: string,
    doc: YamlDocument,
    options: { dryRun?: boolean } = {},
  ): Promise<{ status: number; body: any }> {
    return this.call(
      "POST",
      collectionPath(doc, namespace) + (options.dryRun ? "?dryRun=All" : ""),
      doc.text,
      "application/yaml",
    );
  }

  /** A real, signed token of a ServiceAccount from the TokenRequest API, as the kubelet mounts it. */
  async token(namespace: string, serviceAccount: string): Promise<string> {
    const answer = await this.api("POST", `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds: 3600 },
    });
    const token = answer?.status?.token;
    if (typeof token !== "string" || token === "")
      throw new Error(`the TokenRequest for ${namespace}/${serviceAccount} returned no token`);
    return token;
  }

  /** A directory laid out like /var/run/secrets/kubernetes.io/serviceaccount, for PROA_SERVICE_ACCOUNT_DIR. */
  async serviceAccountDir(dir: string, namespace: string, serviceAccount: string): Promise<string> {
    const token = await this.token(namespace, serviceAccount);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "token"), token, { mode: 0o600 });
    writeFileSync(join(dir, "ca.crt"), this.ca);
    writeFileSync(join(dir, "namespace"), namespace);
    return dir;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// job.yaml, without a YAML library: split into documents, and read the few top-level fields the tests need.

export interface YamlDocument {
  apiVersion: string;
  kind: string;
  name: string;
  text: string;
}

export function jobYamlDocuments(text = readFileSync(JOB_YAML, "utf8")): YamlDocument[] {
  return text
    .split(/^---[ \t]*$/m)
    .filter((doc) => /^kind:/m.test(doc))
    .map((doc) => {
      const field = (re: RegExp, what: string) => {
        const value = re.exec(doc)?.[1];
        if (value === undefined) throw new Error(`a job.yaml document has no ${what}:\n${doc}`);
        return value;
      };
      return {
        apiVersion: field(/^apiVersion:[ \t]*(\S+)/m, "apiVersion"),
        kind: field(/^kind:[ \t]*(\S+)/m, "kind"),
        name: field(/^metadata:[ \t]*\n[ \t]+name:[ \t]*(\S+)/m, "metadata.name"),
        text: doc,
      };
    });
}

/** The namespaced collection a document is POSTed to; only the kinds job.yaml may hold. */
const PLURALS: Record<string, string> = {
  "v1/ConfigMap": "configmaps",
  "v1/ServiceAccount": "serviceaccounts",
  "rbac.authorization.k8s.io/v1/Role": "roles",
  "rbac.authorization.k8s.io/v1/RoleBinding": "rolebindings",
  "batch/v1/Job": "jobs",
};

export function collectionPath(doc: YamlDocument, namespace: string): string {
  const plural = PLURALS[`${doc.apiVersion}/${doc.kind}`];
  if (!plural)
    throw new Error(
      `job.yaml holds a ${doc.apiVersion} ${doc.kind}, which the e2e test does not know how to create; add it to PLURALS`,
    );
  const group = doc.apiVersion.includes("/") ? `/apis/${doc.apiVersion}` : `/api/${doc.apiVersion}`;
  return `${group}/namespaces/${namespace}/${plural}`;
}

/**
 * The mapping keys a YAML document writes (block style, as job.yaml is), leaving out comments and the contents of
 * block scalars (`key: |`). Kubernetes 1.20 drops unknown fields without a word, so a key the server does not
 * echo back is a misspelt or misplaced field.
 */
export function yamlKeys(text: string): Set<string> {
  const keys = new Set<string>();
  let scalarIndent: number | undefined; // set while inside a block scalar: the indentation of the line that opened it
  for (const line of text.split("\n")) {
    const indent = line.length - line.trimStart().length;
    if (scalarIndent !== undefined) {
      if (line.trim() === "" || indent > scalarIndent) continue;
      scalarIndent = undefined;
    }
    if (/^\s*#/.test(line)) continue;
    const match = /^\s*(?:- +)*([A-Za-z_][\w.\-]*):(?:\s|$)/.exec(line);
    if (match) keys.add(match[1]!);
    // `key: |`, `- |` (and `>`, with chomping or indentation indicators) open a block scalar
    if (/(?:^-|:)\s+[|>][-+0-9]*\s*(?:#.*)?$/.test(line.trim())) scalarIndent = indent;
  }
  return keys;
}

/** Every key of every object inside value. */
export function jsonKeys(value: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const item of value) jsonKeys(item, into);
  else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      into.add(key);
      jsonKeys(item, into);
    }
  }
  return into;
}

// ---------------------------------------------------------------------------------------------------------------
// The Pod and a kubelet stand-in: there is no kubelet, so the tests write the container statuses it would.

export type ContainerPhase = { waiting: string } | { running: true; ready: boolean } | { terminated: number };

export function podManifest(
  name: string,
  options: { serviceAccount?: string; gracePeriodSeconds?: number; main?: object } = {},
): object {
  const container = (name: string) => ({ name, image: "busybox:1.36", command: ["sh", "-c", "sleep 3600"] });
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name },
    spec: {
      restartPolicy: "Never",
      terminationGracePeriodSeconds: options.gracePeriodSeconds ?? 10,
      serviceAccountName: options.serviceAccount ?? "proa",
      nodeName: "node-1", // as if scheduled: there is no scheduler either
      containers: [{ ...container("main"), ...options.main }, container("sidecar-1"), container("sidecar-2")],
    },
  };
}

/** Writes Pod statuses through pods/status as the kubelet does, one write at a time (each a GET then a PUT of the
 * whole status, so concurrent changes from two shutdown requests cannot overwrite each other). */
export class Kubelet {
  private readonly containers = new Map<string, ContainerPhase>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly started = new Date().toISOString().replace(/\.\d+Z$/, "Z");

  constructor(
    private readonly server: KubeServer,
    readonly namespace: string,
    readonly pod: string,
    names: string[],
  ) {
    for (const name of names) this.containers.set(name, { waiting: "ContainerCreating" });
  }

  /** Sets these containers' states and writes the whole status; resolves with the time the write was sent and
   * the time the server confirmed it. */
  set(changes: Record<string, ContainerPhase>): Promise<{ sentAt: number; doneAt: number }> {
    const write = this.queue.then(async () => {
      for (const [name, phase] of Object.entries(changes)) {
        if (!this.containers.has(name)) throw new Error(`the Pod has no container ${name}`);
        this.containers.set(name, phase);
      }
      const path = `/api/v1/namespaces/${this.namespace}/pods/${this.pod}`;
      const current = await this.server.api("GET", path);
      const sentAt = Date.now();
      await this.server.api("PUT", `${path}/status`, { ...current, status: this.status() });
      return { sentAt, doneAt: Date.now() };
    });
    this.queue = write.catch(() => {});
    return write;
  }

  private status(): NonNullable<Pod["status"]> & Record<string, unknown> {
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const statuses: ContainerStatus[] = [...this.containers].map(([name, phase]) => {
      const base = { name, restartCount: 0, image: "busybox:1.36", imageID: "", lastState: {} };
      const containerID = `containerd://${Buffer.from(`${this.pod}/${name}`).toString("hex").padEnd(64, "0").slice(0, 64)}`;
      if ("waiting" in phase)
        return { ...base, ready: false, started: false, state: { waiting: { reason: phase.waiting } } };
      if ("running" in phase)
        return {
          ...base,
          ready: phase.ready,
          started: true,
          containerID,
          state: { running: { startedAt: this.started } },
        };
      const reason = phase.terminated === 0 ? "Completed" : "Error";
      return {
        ...base,
        ready: false,
        started: false,
        containerID,
        state: {
          terminated: { exitCode: phase.terminated, reason, startedAt: this.started, finishedAt: now, containerID },
        },
      };
    });
    const anyStarted = statuses.some((s) => !s.state?.waiting);
    return {
      phase: anyStarted ? "Running" : "Pending",
      hostIP: "192.0.2.10",
      startTime: this.started,
      containerStatuses: statuses,
    };
  }
}
