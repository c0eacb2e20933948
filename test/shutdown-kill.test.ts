// --kill and --kill-all against real processes. Each case runs in a fresh PID namespace (unshare, as root), so the
// shutdown step can never signal anything outside it. PID 1 there is a copy of `sleep` named "pause", as in a Pod with
// shareProcessNamespace: true; the sidecars are copies of `sleep` under other names.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { podUidOf } from "../shutdown.ts";
import type { LogLine } from "./helpers/shutdown-log.ts";

const dir = mkdtempSync(join(tmpdir(), "proa-shutdown-kill-"));
const bin = (name: string) => join(dir, name);
const helper = join(dir, "helper.mjs");
const unshare = ["--pid", "--fork", "--mount-proc", "--kill-child"];
const skip =
  spawnSync("unshare", [...unshare, "true"]).status === 0 ? false : "needs `unshare --pid` (root or user namespaces)";

interface Report {
  pid: number;
  signals: (string | null)[];
  logs: LogLine[];
}

/**
 * Runs test/helpers/shutdown-kill.ts in a new PID namespace. With `pause`, PID 1 is the pause process and the helper
 * runs in a subshell (so neither is the helper's parent); without, the helper is PID 1 as in a Pod without
 * shareProcessNamespace.
 */
async function inNamespace(
  request: { start: string[]; child?: number; kill?: string[]; killAll?: boolean; uid?: number },
  pid1: "pause" | "proa" | "shell" = "pause",
  env: NodeJS.ProcessEnv = { PROA_KILL_SCOPE: "visible" },
): Promise<Report> {
  const json = JSON.stringify({ kill: [], killAll: false, ...request, start: request.start.map(bin) });
  // "shell": PID 1 is a shell, and proa runs under three layers of wrapper scripts, as under an init wrapper.
  const scripts = {
    pause: `("$0" "$1" "$2"; true) & exec "$3" 60`,
    proa: `exec "$0" "$1" "$2"`,
    shell: `"$4" 2 "$0" "$1" "$2"; true`,
  };
  const script = scripts[pid1];
  const args = [...unshare, "sh", "-c", script, process.execPath, helper, json, bin("pause"), bin("wrapper")];
  // These tests run in no Pod: PROA_KILL_SCOPE=visible lets the step signal what the fresh namespace shows.
  const { PROA_KILL_SCOPE: _, ...inherited } = process.env;
  const child = spawn("unshare", args, { stdio: ["ignore", "pipe", "inherit"], env: { ...inherited, ...env } });
  let output = "";
  child.stdout.setEncoding("utf8");
  for await (const chunk of child.stdout) {
    output += chunk;
    if (output.includes("\n")) break;
  }
  // unshare ignores SIGTERM while it waits; SIGKILL ends it, --kill-child then SIGKILLs the namespace's PID 1, and
  // the kernel every other process inside.
  child.kill("SIGKILL");
  await once(child, "close");
  return JSON.parse(output) as Report;
}

const signalled = (report: Report) =>
  report.logs
    .filter((line) => line.msg.startsWith("sent SIGTERM"))
    .map((line) => line.msg.slice("sent SIGTERM to ".length));
const warnings = (report: Report) => report.logs.filter((line) => line.level === "warn").map((line) => line.msg);

describe("--kill and --kill-all on real processes", { skip }, () => {
  before(async () => {
    for (const name of ["pause", "sidecar-a", "sidecar-a-v2", "sidecar-b", "a-very-long-sidecar-name", "program"])
      copyFileSync("/usr/bin/sleep", bin(name));
    // Executable but not readable: a process started from them is not dumpable, so even its own user cannot read
    // its /proc/PID/exe (as without CAP_SYS_PTRACE); only cmdline and the 15-character comm are left.
    for (const name of ["cloud-sql-proxy", "cloud-sql-proxy-v2"]) {
      copyFileSync("/usr/bin/sleep", bin(name));
      chmodSync(bin(name), 0o711);
    }
    chmodSync(dir, 0o755);
    writeFileSync(
      bin("wrapper"),
      `#!/bin/sh\n# wrapper N command...: N more wrappers, then the command\nn=$1; shift\nif [ "$n" -gt 0 ]; then "$0" $((n - 1)) "$@"; else "$@"; fi\ntrue\n`,
    );
    chmodSync(bin("wrapper"), 0o755);
    const entry = fileURLToPath(new URL("./helpers/shutdown-kill.ts", import.meta.url));
    // Plain node, not tsx: tsx starts an esbuild process, which --kill-all would see and signal.
    await build({
      entryPoints: [entry],
      outfile: helper,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      logLevel: "warning",
    });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("--kill NAME sends SIGTERM to every process of that name and to no other", async () => {
    const report = await inNamespace({
      start: ["sidecar-a", "sidecar-b", "sidecar-a", "program"],
      child: 3,
      kill: ["sidecar-a"],
    });
    assert.deepEqual(report.signals, ["SIGTERM", null, "SIGTERM", null]);
    assert.deepEqual(signalled(report), ["sidecar-a", "sidecar-a"]);
    assert.deepEqual(warnings(report), []);
  });

  const inPod =
    podUidOf(readFileSync("/proc/self/cgroup", "utf8")) === undefined ? false : "the tests run in a Pod's cgroup";
  test(
    "outside any Pod's cgroup, and without PROA_KILL_SCOPE=visible, --kill and --kill-all signal nothing and say why",
    { skip: inPod },
    async () => {
      const report = await inNamespace(
        { start: ["sidecar-a", "sidecar-b"], kill: ["sidecar-a"], killAll: true },
        "pause",
        {},
      );
      assert.deepEqual(report.signals, [null, null]);
      assert.deepEqual(warnings(report), [
        "--kill and --kill-all signal nothing: proa's /proc/self/cgroup names no Pod cgroup (not in a Kubernetes Pod, or a runtime proa does not know), so it cannot tell the Pod's processes from others; set PROA_KILL_SCOPE=visible to signal every visible process",
      ]);
    },
  );

  test("--kill matches names longer than the kernel's 15-character comm and says which names matched nothing", async () => {
    const report = await inNamespace({
      start: ["a-very-long-sidecar-name", "sidecar-b"],
      kill: ["a-very-long-sidecar-name", "envoy"],
    });
    assert.deepEqual(report.signals, ["SIGTERM", null]);
    assert.deepEqual(warnings(report), ["no process named envoy is running, so --kill envoy signals nothing"]);
  });

  test("--kill-all signals every other process but not proa, its parent, its child or the pause process", async () => {
    const report = await inNamespace({ start: ["sidecar-a", "sidecar-b", "program"], child: 2, killAll: true });
    assert.deepEqual(report.signals, ["SIGTERM", "SIGTERM", null]);
    assert.deepEqual(signalled(report).sort(), ["sidecar-a", "sidecar-b"]);
    assert.deepEqual(warnings(report), []);
  });

  test("--kill NAME does not hit a readable executable whose name only begins with NAME", async () => {
    const report = await inNamespace({ start: ["sidecar-a-v2", "sidecar-a"], kill: ["sidecar-a"] });
    assert.deepEqual(report.signals, [null, "SIGTERM"]);
    assert.deepEqual(
      report.logs.filter((line) => line.msg.startsWith("sent SIGTERM")).map((line) => line.fields.rule),
      ["executable"],
    );
  });

  test("--kill NAME does not hit a longer name that shares its first 15 characters when /proc/PID/exe is unreadable", async () => {
    const report = await inNamespace({
      start: ["cloud-sql-proxy-v2", "cloud-sql-proxy"],
      kill: ["cloud-sql-proxy"],
      uid: 65534,
    });
    assert.deepEqual(report.signals, [null, "SIGTERM"]);
    assert.deepEqual(
      report.logs.filter((line) => line.msg.startsWith("sent SIGTERM")).map((line) => line.fields.rule),
      ["argv[0]"],
    );
    assert.deepEqual(warnings(report), []);
  });

  test("--kill-all never signals PID 1 (here a shell, not pause) or any of proa's ancestors", async () => {
    const report = await inNamespace({ start: ["sidecar-a", "sidecar-b"], killAll: true }, "shell");
    assert.deepEqual(report.signals, ["SIGTERM", "SIGTERM"]);
    assert.deepEqual(signalled(report).sort(), ["sidecar-a", "sidecar-b"]);
  });

  test("--kill with an interpreter's name warns that it matches every program that interpreter runs", async () => {
    const report = await inNamespace({ start: ["sidecar-a"], kill: ["node"] });
    assert.deepEqual(report.signals, [null]);
    assert.match(warnings(report).join("\n"), /--kill node matches every program that node runs/);
  });

  test("when only the pause process is visible besides proa's own, the log points at shareProcessNamespace", async () => {
    const report = await inNamespace({ start: ["program"], child: 0, killAll: true });
    assert.deepEqual(report.signals, [null]);
    assert.deepEqual(signalled(report), []);
    assert.match(warnings(report).join("\n"), /shareProcessNamespace: true/);
  });

  test("when proa is PID 1 (its own PID namespace), the log points at shareProcessNamespace and --kill reports no missing names", async () => {
    const report = await inNamespace({ start: ["sidecar-a"], kill: ["envoy"] }, "proa");
    assert.equal(report.pid, 1);
    assert.deepEqual(report.signals, [null]);
    assert.deepEqual(warnings(report).length, 1);
    assert.match(warnings(report)[0] ?? "", /shareProcessNamespace: true/);
  });
});
