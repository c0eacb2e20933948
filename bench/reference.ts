// The wrapper a TypeScript developer would write without proa, with the official client: watch the Pod until the
// other containers are ready, spawn the program, POST to the sidecars' shutdown URLs, exit with the program's status.
// Written plainly, as a user would, for the benchmarks only: `reference [-p URL]... -- program args...`.
import { spawn } from "node:child_process";
import { KubeConfig, Watch, type V1Pod } from "@kubernetes/client-node";

const argv = process.argv.slice(2);
const split = argv.indexOf("--");
const [program, ...args] = argv.slice(split + 1);
const shutdownUrls = argv.slice(0, split).filter((_, i, all) => all[i - 1] === "-p");
if (split === -1 || !program) {
  console.error("usage: reference [-p URL]... -- program args...");
  process.exit(2);
}

// In a Pod this is kc.loadFromCluster(): KUBERNETES_SERVICE_HOST/PORT, and the token and ca.crt at the fixed
// /var/run/secrets/kubernetes.io/serviceaccount. Outside one, the benchmark passes loadFromCluster's own pathPrefix
// argument: a folder holding var/run/secrets/kubernetes.io/serviceaccount linked to the fake API server's files.
const kc = new KubeConfig();
kc.loadFromCluster(process.env.BENCH_PATH_PREFIX ?? "");
const namespace = process.env.POD_NAMESPACE ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";
const podName = process.env.POD_NAME!;
const ownContainer = process.env.PROA_CONTAINER ?? "main";

let started = false;
let watching: Promise<AbortController> | undefined;

function othersReady(pod: V1Pod): boolean {
  const statuses = pod.status?.containerStatuses ?? [];
  return (pod.spec?.containers ?? [])
    .filter((container) => container.name !== ownContainer)
    .every((container) => statuses.find((status) => status.name === container.name)?.ready === true);
}

function watchPod(): void {
  watching = new Watch(kc).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    { fieldSelector: `metadata.name=${podName}` },
    (type: string, pod: V1Pod) => {
      if (started || type === "DELETED" || type === "ERROR" || !othersReady(pod)) return;
      started = true;
      void watching?.then((request) => request.abort());
      run();
    },
    (error: unknown) => {
      if (started) return;
      if (error) console.error("watch failed, retrying in 1s:", error);
      setTimeout(watchPod, error ? 1000 : 0);
    },
  );
}

function run(): void {
  const child = spawn(program!, args, { stdio: "inherit" });
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => child.kill(signal));
  child.on("error", (error) => console.error(`cannot run ${program}:`, error.message));
  child.on("close", (code, signal) => {
    const exit = () => process.exit(code ?? (signal === "SIGTERM" ? 143 : 1));
    const posts = shutdownUrls.map((url) =>
      fetch(url, { method: "POST" }).then(
        (response) => response.text(),
        (error) => console.error(`POST ${url} failed:`, error),
      ),
    );
    Promise.all(posts).then(exit, exit);
  });
}

watchPod();
