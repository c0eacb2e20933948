// The real-node suite's side of test/e2e/node.sh: a single-node cluster with a real kubelet and containerd, and
// what the tests read back from it: Pods as the kubelet reports them (through a watch, so no update is missed, not
// even the last one before a deleted Pod vanishes), events, and container logs.
import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Pod } from "../../kube.ts";
import { binaryVersion, kubeBinDir, KubeServer, parseKubeVersion, type KubeVersion } from "./cluster.ts";

export const NODE_SCRIPT = fileURLToPath(new URL("./node.sh", import.meta.url));

/** The binaries `kube-apiserver.sh build all` caches next to kube-apiserver (or PROA_E2E_KUBE_BIN holds). */
export function nodeBinaries(env: NodeJS.ProcessEnv = process.env): string[] {
  return ["kubelet", "kube-controller-manager", "kube-scheduler"].map((name) => join(kubeBinDir(env), name));
}

/** The kubelet's version, read from its binary (undefined until it is built): what the suite's title names and what
 * decides which scenarios can run. */
export function kubeletVersion(env: NodeJS.ProcessEnv = process.env): KubeVersion | undefined {
  return binaryVersion(join(kubeBinDir(env), "kubelet"));
}

/** Native sidecars (KEP-753) run by default from 1.29 (beta; GA in 1.33): why a kubelet cannot run them, if so. */
export function nativeSidecarSkipReason(version: KubeVersion | undefined): string | undefined {
  if (version === undefined) return "the kubelet's version is unknown (not built yet)";
  if (version.minor < 29)
    return `kubelet ${version.gitVersion} has no native sidecars (init containers with restartPolicy: Always run by default from 1.29): give PROA_E2E_KUBE_BIN a folder of 1.29 or later binaries`;
  return undefined;
}

/**
 * Why the real-node suite cannot run here, or undefined when it can. In CI (CI=true) nothing is a reason: a missing
 * capability must fail there, and before() then fails with node.sh's own message.
 */
export function nodeSkipReason(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CI && env.CI !== "false") return undefined;
  const missing = nodeBinaries(env).filter((path) => !existsSync(path));
  if (missing.length > 0)
    return `no ${missing.join(", ")}: run \`bash test/e2e/kube-apiserver.sh build all\` (or \`npm run test:e2e\`, which does)`;
  try {
    execFileSync("bash", [NODE_SCRIPT, "check"], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? "").trim();
    return `this machine cannot run a real node (the suite needs root, cgroup v1 controllers, overlayfs and bridges): ${stderr.replaceAll("\n", "; ")}`;
  }
  return undefined;
}

function nodeScript(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("bash", [NODE_SCRIPT, ...args], { maxBuffer: 16 * 1024 * 1024 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`node.sh ${args.join(" ")} failed (${error.message.split("\n")[0]}):\n${stderr}`));
      else resolve(stderr);
    });
  });
}

export class NodeCluster {
  private constructor(
    readonly dir: string,
    readonly server: KubeServer,
    readonly appImage: string,
    readonly kubeletVersion: KubeVersion,
  ) {}

  /** Starts etcd, kube-apiserver, containerd (with the images imported), kube-controller-manager, kube-scheduler and
   * the kubelet, and waits until the Node is Ready: about 20 s once everything is built. */
  static async start(dir: string): Promise<NodeCluster> {
    await nodeScript(["start", dir]);
    const server = KubeServer.fromDir(dir);
    const appImage = /^APP_IMAGE=(.+)$/m.exec(server.envText)?.[1];
    if (!appImage) throw new Error(`${dir}/env has no APP_IMAGE`);
    const version = parseKubeVersion(/^KUBELET_VERSION=(.+)$/m.exec(server.envText)?.[1] ?? "");
    if (!version) throw new Error(`${dir}/env has no KUBELET_VERSION`);
    return new NodeCluster(dir, server, appImage, version);
  }

  /** Stops everything by PID, removes every container and restores the host (also after a failed start). */
  static stop(dir: string): Promise<string> {
    return nodeScript(["stop", dir]);
  }

  /** Imports proa's portable image (the folder of dist/portable/proa-linux-amd64.tar at /proa) and an image of static
   * busybox alone (`node.sh portable-images`), for the init-container install; returns their names. */
  portableImages(): Promise<{ proa: string; busybox: string }> {
    return new Promise((resolve, reject) => {
      execFile("bash", [NODE_SCRIPT, "portable-images", this.dir], (error, stdout, stderr) => {
        const [proa, busybox] = stdout.trim().split("\n");
        if (error || !proa || !busybox)
          reject(new Error(`node.sh portable-images failed: ${error?.message}\n${stderr}`));
        else resolve({ proa, busybox });
      });
    });
  }

  /** A namespace whose default ServiceAccount exists, with its token Secret before 1.24 (until the controller-manager
   * has made them, the ServiceAccount admission plugin refuses Pods), and which holds kube-root-ca.crt (for projected
   * token volumes). */
  async namespace(name: string): Promise<void> {
    await this.server.createNamespace(name);
    await this.waitForTokens(name, ["default"]);
    for (let deadline = Date.now() + 60_000; ;) {
      const { status } = await this.server.call("GET", `/api/v1/namespaces/${name}/configmaps/kube-root-ca.crt`);
      if (status === 200) break;
      if (Date.now() > deadline)
        throw new Error(
          `no ConfigMap ${name}/kube-root-ca.crt after 60 s (kube-controller-manager's root-ca-cert-publisher)`,
        );
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Until each ServiceAccount exists and, before 1.24 (which made a token Secret for each, and whose admission mounts
   * it), has its token Secret. Later versions make none: the Pods' projected tokens come from the TokenRequest API. */
  async waitForTokens(namespace: string, serviceAccounts: string[], timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const secrets = this.kubeletVersion.minor < 24;
    for (const sa of serviceAccounts) {
      for (;;) {
        const { status, body } = await this.server.call("GET", `/api/v1/namespaces/${namespace}/serviceaccounts/${sa}`);
        if (status === 200 && (!secrets || (body?.secrets?.length ?? 0) > 0)) break;
        if (Date.now() > deadline)
          throw new Error(
            `ServiceAccount ${namespace}/${sa} ${secrets ? "has no token Secret" : "does not exist"} after ${timeoutMs / 1000} s`,
          );
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  /** Watches the Pods matching selector (a labelSelector or fieldSelector query) until done(pods) holds for the
   * latest version of each (and the names of those deleted); every version seen, in order, is in the returned history. */
  watchPods(
    namespace: string,
    selector: string,
    done: (pods: Map<string, Pod>, gone: Set<string>) => boolean,
    timeoutMs: number,
  ): Promise<PodHistory> {
    return watchPods(this.server, namespace, selector, done, timeoutMs);
  }

  /** SIGKILL to a container from the host, by the containerID its Pod reports (containerd://ID), as `ctr tasks kill`
   * does: a sidecar killed as the OOM killer or a crash would, not stopped by the kubelet. */
  killContainer(containerID: string): Promise<void> {
    const id = containerID.replace(/^containerd:\/\//, "");
    const socket = join(this.dir, "containerd", "containerd.sock");
    return new Promise((resolve, reject) =>
      execFile(
        "ctr",
        ["--address", socket, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id],
        (error, _out, stderr) =>
          error ? reject(new Error(`ctr tasks kill ${id} failed: ${stderr || error.message}`)) : resolve(),
      ),
    );
  }

  /** A container's log, through the apiserver and the kubelet (as `kubectl logs`). */
  async logs(namespace: string, pod: string, container: string): Promise<string> {
    const { status, body } = await this.server.call(
      "GET",
      `/api/v1/namespaces/${namespace}/pods/${pod}/log?container=${container}`,
    );
    if (status !== 200)
      throw new Error(
        `logs of ${namespace}/${pod}/${container}: HTTP ${status}: ${typeof body === "string" ? body : JSON.stringify(body)}`,
      );
    return typeof body === "string" ? body : JSON.stringify(body);
  }

  /** A running container's log from its start until it exits (`kubectl logs -f`), for what is gone once it has: a
   * deleted Pod's logs, a restarted container's earlier run (the kubelet removes it when the Pod ends). stop() ends
   * the stream early; either way text resolves with what arrived, at the latest after timeoutMs. */
  followLog(
    namespace: string,
    pod: string,
    container: string,
    timeoutMs: number,
  ): { text: Promise<string>; stop: () => void } {
    const { server } = this;
    let stop = () => {};
    const text = new Promise<string>((resolve, reject) => {
      let received = "";
      const finish = () => {
        clearTimeout(timer);
        req.destroy();
        resolve(received);
      };
      stop = finish;
      const timer = setTimeout(finish, timeoutMs);
      const path = `/api/v1/namespaces/${namespace}/pods/${pod}/log?container=${container}&follow=true`;
      const req = request(
        {
          host: server.env.KUBE_HOST,
          port: Number(server.env.KUBE_PORT),
          path,
          ca: server.ca,
          agent: false,
          headers: { Authorization: `Bearer ${server.env.KUBE_ADMIN_TOKEN}`, "User-Agent": "proa-e2e-admin" },
        },
        (res) => {
          res.setEncoding("utf8");
          if (res.statusCode !== 200) {
            res.on("data", (chunk: string) => (received += chunk));
            res.on("end", () => {
              clearTimeout(timer);
              reject(new Error(`following ${namespace}/${pod}/${container}: HTTP ${res.statusCode}: ${received}`));
            });
            return;
          }
          res.on("data", (chunk: string) => (received += chunk));
          res.on("end", finish);
          res.on("error", finish);
        },
      );
      req.on("error", (error) => {
        clearTimeout(timer);
        reject(error); // (after finish, which has resolved already, this changes nothing)
      });
      req.end();
    });
    return { text, stop: () => stop() };
  }

  /** The events about an object, oldest first. */
  async events(
    namespace: string,
    name: string,
  ): Promise<{ reason: string; message: string; fieldPath?: string; count?: number; time?: string }[]> {
    const list = await this.server.api(
      "GET",
      `/api/v1/namespaces/${namespace}/events?fieldSelector=involvedObject.name=${name}`,
    );
    return (list.items ?? []).map((e: any) => ({
      reason: e.reason,
      message: e.message,
      fieldPath: e.involvedObject?.fieldPath,
      count: e.count,
      time: e.firstTimestamp ?? e.eventTime,
    }));
  }
}

export interface PodHistory {
  /** Every version of every matching Pod, in the order the server sent them. */
  versions: Pod[];
  /** The latest version of each Pod, by name (a deleted Pod keeps its last version). */
  latest: Map<string, Pod>;
  /** The Pods the server said are deleted (gone from the API, not just being deleted). */
  gone: Set<string>;
}

/** List, then watch from the list's resourceVersion; a watch the server ends is resumed from the last version. */
async function watchPods(
  server: KubeServer,
  namespace: string,
  selector: string,
  done: (pods: Map<string, Pod>, gone: Set<string>) => boolean,
  timeoutMs: number,
): Promise<PodHistory> {
  const history: PodHistory = { versions: [], latest: new Map(), gone: new Set() };
  const deadline = Date.now() + timeoutMs;
  const path = `/api/v1/namespaces/${namespace}/pods?${selector}`;
  const seen = (pod: Pod) => {
    history.versions.push(pod);
    history.latest.set(pod.metadata?.name ?? "", pod);
  };
  const list = await server.api("GET", path);
  for (const pod of list.items ?? []) seen(pod);
  let resourceVersion: string = list.metadata.resourceVersion;
  while (!done(history.latest, history.gone)) {
    const left = deadline - Date.now();
    if (left <= 0) throw new WatchTimeout(timeoutMs, history);
    resourceVersion = await watchOnce(
      server,
      `${path}&watch=1&allowWatchBookmarks=true&resourceVersion=${resourceVersion}&timeoutSeconds=${Math.max(1, Math.ceil(left / 1000))}`,
      left,
      (type, object) => {
        if (type === "ERROR") throw new Error(`watch of ${path}: ${JSON.stringify(object)}`);
        if (type !== "BOOKMARK") seen(object as Pod);
        if (type === "DELETED") history.gone.add((object as Pod).metadata?.name ?? "");
        return done(history.latest, history.gone);
      },
      resourceVersion,
    );
  }
  return history;
}

export class WatchTimeout extends Error {
  constructor(
    timeoutMs: number,
    readonly history: PodHistory,
  ) {
    const last = [...history.latest.values()]
      .map((pod) => `${pod.metadata?.name}: ${JSON.stringify(pod.status)}`)
      .join("\n");
    super(`the Pods did not get there within ${timeoutMs / 1000} s; their last status:\n${last || "(no Pod)"}`);
  }
}

/** One watch request: calls onEvent per event until it returns true or the stream ends; resolves with the last
 * resourceVersion seen. */
function watchOnce(
  server: KubeServer,
  path: string,
  timeoutMs: number,
  onEvent: (type: string, object: any) => boolean,
  resourceVersion: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = "";
    let finished = false;
    const finish = (error?: unknown) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      req.destroy();
      if (error) reject(error);
      else resolve(resourceVersion);
    };
    const timer = setTimeout(() => finish(), timeoutMs);
    const req = request(
      {
        host: server.env.KUBE_HOST,
        port: Number(server.env.KUBE_PORT),
        path,
        ca: server.ca,
        agent: false,
        headers: {
          Authorization: `Bearer ${server.env.KUBE_ADMIN_TOKEN}`,
          Accept: "application/json",
          "User-Agent": "proa-e2e-admin",
        },
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          finish(new Error(`watch ${path}: HTTP ${res.statusCode}`));
          return;
        }
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buffered += chunk;
          let newline: number;
          while (!finished && (newline = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, newline);
            buffered = buffered.slice(newline + 1);
            if (line.trim() === "") continue;
            try {
              const event = JSON.parse(line);
              resourceVersion = event.object?.metadata?.resourceVersion ?? resourceVersion;
              if (onEvent(event.type, event.object)) finish();
            } catch (error) {
              finish(error);
            }
          }
        });
        res.on("end", () => finish());
        res.on("error", finish);
      },
    );
    req.on("error", finish);
    req.end();
  });
}
