// Hostile answers: proa's peak RSS (VmHWM in /proc/PID/status) and CPU time when the API server sends the worst it
// can within proa's bounds (and the issue #23 answers beyond them), measured once the program runs after proa has
// refused or survived them. The bound SECURITY.md states is 150 MiB; see bench/README.md.
//
// Run from the repository's root: `npm run build && node --import tsx bench/hostile.ts`. BENCH_CANDIDATE=path/to/proa.js
// measures another build as well (such as the one before a fix), in the same run.
import { execFileSync, spawn } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { MAX_JSON_CONTAINERS, MAX_LINE_BYTES, type Pod } from "../kube.ts";
import { podWith, startFakeApiServer, watchEvent, type FakeApiServer } from "../test/fake-apiserver.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RESULTS = join(ROOT, "bench", "hostile-results.json");
const builds: Record<string, string> = { proa: join(ROOT, "dist", "proa.js") };
if (process.env.BENCH_CANDIDATE) builds.candidate = process.env.BENCH_CANDIDATE;
const RUN_TIMEOUT_MS = 180_000; // the issue's 16 MiB list took 12 to 60 s of CPU before the fix
const ISSUE_BYTES = 16 * 1024 * 1024; // the cap before #23, and the size of the issue's answers
const MIB = 2 ** 20;

/** A PodList whose items are `count` empty objects (the most objects per byte a list can hold), or as many as fill
 * `bytes`. */
function emptyItemsList(size: { bytes: number } | { count: number }): string {
  const head = '{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[';
  const count = "count" in size ? size.count : Math.floor((size.bytes - head.length - 2 + 1) / 3);
  return head + "{},".repeat(count - 1) + "{}]}";
}
/** `bytes` of `[`: the deepest nesting a body of that size can hold. */
const nested = (bytes: number) => "[".repeat(bytes);
/** The fake server's own Pod, padded with an annotation to a list of exactly `bytes` bytes: the largest real answer. */
function paddedPodList(api: FakeApiServer, bytes: number): string {
  const pod = api.pod()! as Pod & { metadata: { annotations?: Record<string, string> } };
  const list = (padding: string) =>
    JSON.stringify({
      kind: "PodList",
      apiVersion: "v1",
      metadata: { resourceVersion: pod.metadata.resourceVersion },
      items: [{ ...pod, metadata: { ...pod.metadata, annotations: { padding } } }],
    });
  return list("x".repeat(bytes - list("").length));
}
/** A watch line about another Pod whose spare field holds `count` empty objects. */
function otherPodLine(count: number): string {
  const head = `{"type":"MODIFIED","object":{"metadata":{"namespace":"elsewhere","name":"other","resourceVersion":"5"},"spare":[`;
  return head + "{},".repeat(count - 1) + "{}]}}\n";
}

/** The fake server's Pod turned ready, at the next resourceVersion. */
function readyEvent(api: FakeApiServer): string {
  const metadata = {
    ...api.pod()!.metadata,
    resourceVersion: String(Number(api.pod()!.metadata!.resourceVersion) + 1),
  };
  return watchEvent("MODIFIED", { ...ready, metadata });
}
const STREAM_LINES = 200;

interface Case {
  name: string;
  pod: Pod; // the Pod the fake server starts with; the bench makes it ready at the second watch
  fault(api: FakeApiServer): Parameters<FakeApiServer["fail"]>[0];
}
const ready = podWith({ sidecars: ["sidecar-1"], ready: true });
const waiting = podWith({ sidecars: ["sidecar-1"], ready: false });
const ONLY = process.env.HOSTILE_ONLY;
const allCases: Case[] = [
  {
    name: "list of 16 MiB, empty items (#23)",
    pod: ready,
    fault: () => ({ on: "list", status: 200, body: emptyItemsList({ bytes: ISSUE_BYTES }) }),
  },
  {
    name: "list at the cap, empty items",
    pod: ready,
    fault: () => ({ on: "list", status: 200, body: emptyItemsList({ bytes: MAX_LINE_BYTES }) }),
  },
  // The list, its metadata and its items are 3 of the arrays and objects allowed.
  {
    name: "list at the limits, the most empty items allowed",
    pod: ready,
    fault: () => ({ on: "list", status: 200, body: emptyItemsList({ count: MAX_JSON_CONTAINERS - 3 }) }),
  },
  { name: "list of 8 MB of [ (#23)", pod: ready, fault: () => ({ on: "list", status: 200, body: nested(8_000_000) }) },
  {
    name: "list at the cap, all [",
    pod: ready,
    fault: () => ({ on: "list", status: 200, body: nested(MAX_LINE_BYTES) }),
  },
  {
    name: "list at the cap, the Pod padded",
    pod: ready,
    fault: (api) => ({ on: "list", status: 200, body: paddedPodList(api, MAX_LINE_BYTES) }),
  },
  // The event, its object, the metadata and the spare field are 4 of them. The stream ends with the Pod turned ready.
  {
    name: `watch of ${STREAM_LINES} lines, each the most empty objects allowed, about another Pod`,
    pod: waiting,
    fault: (api) => ({
      on: "watch",
      chunks: [...Array(STREAM_LINES).fill(otherPodLine(MAX_JSON_CONTAINERS - 4)), readyEvent(api)],
      end: "stall",
    }),
  },
];
const cases = ONLY ? allCases.filter((c) => c.name.includes(ONLY)) : allCases;

const statusKiB = (pid: number, field: string) =>
  Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
/** utime + stime, in ms (the kernel counts in 10 ms ticks). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const scratch = mkdtempSync(join(tmpdir(), "proa-hostile-"));

async function measure(bundle: string, c: Case): Promise<{ hwmMiB: number; cpuMs: number; logBytes: number }> {
  const api = await startFakeApiServer({ pod: c.pod });
  api.fail(c.fault(api));
  let watches = 0;
  api.onRequest = (request) => {
    if (request.url.includes("watch=1") && ++watches === 2 && c.pod === waiting) setImmediate(() => api.setPod(ready));
  };
  const fifo = join(scratch, `fifo-${Math.random().toString(36).slice(2)}`);
  execFileSync("mkfifo", [fifo]);
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", ...api.env(), PROA_CONTAINER: "main" };
  const nodeArgs = process.env.HOSTILE_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, bundle, "--", "sh", "-c", `echo > ${fifo}; exec sleep 30`], {
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let logBytes = 0;
  let tail = "";
  child.stderr!.on(
    "data",
    (chunk: Buffer) => ((logBytes += chunk.length), (tail = (tail + chunk.toString()).slice(-4000))),
  );
  const timer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
  try {
    const exited = new Promise<never>((_, reject) =>
      child.on("exit", (code, signal) =>
        reject(new Error(`${c.name}: proa exited (${code ?? signal}) before the program ran\n${tail}`)),
      ),
    );
    await Promise.race([open(fifo, "r").then((file) => file.close()), exited]);
    await sleep(200);
    if (process.env.HOSTILE_SHOW_LOG) process.stderr.write(`\n${tail}\n`);
    return { hwmMiB: statusKiB(child.pid!, "VmHWM") / 1024, cpuMs: cpuMs(child.pid!), logBytes };
  } finally {
    clearTimeout(timer);
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {} // no reader waiting
    // SIGTERM, which proa passes on to the program's sleep, and the sidecar's exit end the run; SIGKILL if not.
    api.setPod(podWith({ sidecars: ["sidecar-1"], terminated: { "sidecar-1": { exitCode: 0 } } }));
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await Promise.race([gone, sleep(5000).then(() => child.kill("SIGKILL"))]);
    }
    await api.close();
  }
}

async function main(): Promise<void> {
  const rows: { case: string; build: string; hwmMiB: number; cpuMs: number; logBytes: number }[] = [];
  for (const c of cases) {
    for (const [build, bundle] of Object.entries(builds)) {
      process.stderr.write(`hostile: ${build}: ${c.name}...`);
      const figures = await measure(bundle, c);
      process.stderr.write(` ${figures.hwmMiB.toFixed(1)} MiB\n`);
      rows.push({ case: c.name, build, ...figures, hwmMiB: Math.round(figures.hwmMiB * 10) / 10 });
    }
  }
  if (!ONLY)
    writeFileSync(
      RESULTS,
      JSON.stringify(
        { date: new Date().toISOString(), node: process.version, maxLineBytes: MAX_LINE_BYTES, builds, rows },
        null,
        2,
      ) + "\n",
    );
  process.stdout.write(`\n| answer | build | peak RSS | CPU | log |\n| --- | --- | --- | --- | --- |\n`);
  for (const r of rows)
    process.stdout.write(`| ${r.case} | ${r.build} | ${r.hwmMiB.toFixed(1)} MiB | ${r.cpuMs} ms | ${r.logBytes} B |\n`);
  process.stdout.write(`\nnode ${process.version}; cap ${MAX_LINE_BYTES / MIB} MiB; figures in ${RESULTS}\n`);
}

main()
  .catch((error: unknown) => {
    process.stderr.write(`hostile: failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(() => rmSync(scratch, { recursive: true, force: true }));
