// `npm run demo`: proa's whole job on a laptop, no cluster needed. A stand-in for the Kubernetes API (the tests' fake
// server, over HTTPS with its test CA) holds a Pod with two containers: "main", where proa runs, and "db-proxy", a
// real sidecar process that becomes ready after a couple of seconds. This script plays the kubelet: it probes the
// sidecar and writes what it sees into the Pod's status. Then dist/proa.js runs exactly as it would in the Pod.
// `npm run demo -- --ready-url` runs the same job as in a Pod with no API access: no kubelet stand-in, and proa, though
// told where the API stand-in is, must not send it a single request; it polls the sidecar's own /ready and, at
// shutdown, waits for the sidecar's port to close.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { podWith, startFakeApiServer } from "../test/fake-apiserver.ts";

const BUNDLE = fileURLToPath(new URL("../dist/proa.js", import.meta.url));
const SIDECAR = fileURLToPath(new URL("./sidecar.mjs", import.meta.url));
const READY_AFTER_MS = Number(process.env.DEMO_READY_AFTER_MS ?? 2000);
const READY_URL_MODE = process.argv.includes("--ready-url");
const PROGRAM = `
  const response = await fetch(process.env.SIDECAR_URL + "/work");
  console.log("program: the sidecar says: " + (await response.text()).trim());`;

const dim = (text: string) => (process.stdout.isTTY ? `\x1b[2m${text}\x1b[0m` : text);
const say = (text: string) => process.stdout.write(`demo  │ ${text}\n`);

async function main(): Promise<number> {
  const started = Date.now();
  const pod = (shape: Parameters<typeof podWith>[0]) =>
    podWith({ name: "demo-job-x7k2p", sidecars: ["db-proxy"], ...shape });
  const api = await startFakeApiServer({ pod: pod({ ready: false }) });
  const sidecar = spawn(process.execPath, [SIDECAR], {
    env: { ...process.env, READY_AFTER_MS: String(READY_AFTER_MS) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let proa: ChildProcess | undefined;
  try {
    const [port] = (await once(sidecar.stdout!, "data")) as [Buffer];
    const sidecarUrl = `http://127.0.0.1:${String(port).trim()}`;
    const unused = READY_URL_MODE ? " (which proa must not use)" : "";
    say(
      `API stand-in on https://${api.host}:${api.port}${unused}; sidecar db-proxy on ${sidecarUrl}, ready in ${READY_AFTER_MS} ms`,
    );

    // The kubelet's part: a readiness probe every 100 ms, and the sidecar's exit written into the Pod.
    const sidecarExit = once(sidecar, "exit").then(([code]) => {
      api.setPod(pod({ terminated: { "db-proxy": { exitCode: code ?? 1 } } }));
      say(`db-proxy exited with ${code}${READY_URL_MODE ? "" : "; the kubelet stand-in marks it terminated"}`);
      return code as number | null;
    });
    const probe = setInterval(() => {
      if (READY_URL_MODE) return clearInterval(probe); // no kubelet stand-in: proa asks the sidecar itself
      const passed = () => {
        clearInterval(probe);
        say("db-proxy's readiness probe passed; the kubelet stand-in marks it ready");
        api.setPod(pod({ ready: true }));
      };
      // Not listening yet is a failed probe like a non-2xx answer: the next one comes 100 ms later.
      fetch(`${sidecarUrl}/ready`).then(
        (response) => response.ok && passed(),
        () => {},
      );
    }, 100);

    const wait = READY_URL_MODE ? ["--ready-url", `${sidecarUrl}/ready`] : [];
    const args = [
      ...wait,
      "--shutdown-http-post",
      `${sidecarUrl}/shutdown`,
      "--",
      process.execPath,
      "--input-type=module",
      "-e",
      PROGRAM,
    ];
    say(`running: proa ${args.slice(0, wait.length + 3).join(" ")} node -e <program that calls the sidecar>`);
    proa = spawn(process.execPath, [BUNDLE, ...args], {
      env: { PATH: process.env.PATH ?? "", ...api.env(), PROA_CONTAINER: "main", SIDECAR_URL: sidecarUrl },
      stdio: ["ignore", "inherit", "pipe"],
    });
    const logs: { time: string; msg: string; [field: string]: unknown }[] = [];
    proa.stderr!.setEncoding("utf8");
    let partial = "";
    proa.stderr!.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        process.stdout.write(`proa  │ ${dim(line)}\n`);
        logs.push(JSON.parse(line));
      }
    });
    const [status] = (await once(proa, "close")) as [number];
    clearInterval(probe);
    const sidecarStatus = await Promise.race([
      sidecarExit,
      new Promise<"running">((resolve) => setTimeout(() => resolve("running"), 1000)),
    ]);

    const at = (msg: string) => {
      const record = logs.find((entry) => entry.msg === msg);
      return record ? Date.parse(record.time) : undefined;
    };
    const phase = (from: number | undefined, to: number | undefined) =>
      from && to ? `${((to - from) / 1000).toFixed(2)} s` : "did not happen";
    const programStarted = at("program started");
    const programExited = at("program exited");
    const exiting = at("exiting");
    const shutdownRequests = logs.filter((entry) => /shutdown request answered 2/.test(entry.msg)).length;
    console.log(`
Summary
  waited for db-proxy to be ready   ${phase(started, programStarted)}
  program ran                       ${phase(programStarted, programExited)}
  shut the sidecar down and waited  ${phase(programExited, exiting)}
  shutdown requests answered        ${shutdownRequests}
  db-proxy                          ${sidecarStatus === "running" ? "still running" : `exited with ${sidecarStatus}`}
  proa's exit status                ${status} (the program's)
  total                             ${phase(started, Date.now())}`);
    const untouched = !READY_URL_MODE || api.requests.length === 0;
    if (READY_URL_MODE) console.log(`  requests to the API stand-in      ${api.requests.length}`);
    const behaved =
      status === 0 && sidecarStatus === 0 && shutdownRequests === 1 && programStarted !== undefined && untouched;
    console.log(behaved ? "Everything behaved." : "Something did not behave: see the log lines above.");
    return behaved ? 0 : 1;
  } finally {
    proa?.kill("SIGKILL");
    sidecar.kill("SIGKILL");
    await api.close();
  }
}

main().then(
  (status) => process.exit(status),
  (error: unknown) => {
    console.error("the demo failed:", error);
    process.exit(1);
  },
);
