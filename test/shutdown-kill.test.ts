// --kill and --kill-all against real processes. Each case runs in a fresh PID namespace (unshare, as root), so the
// shutdown step can never signal anything outside it. PID 1 there is a copy of `sleep` named "pause", as in a Pod with
// shareProcessNamespace: true; the sidecars are copies of `sleep` under other names.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import type { LogLine } from "./helpers/shutdown-log.ts";

const dir = mkdtempSync(join(tmpdir(), "proa-shutdown-kill-"));
const bin = (name: string) => join(dir, name);
const helper = join(dir, "helper.mjs");
const unshare = ["--pid", "--fork", "--mount-proc", "--kill-child"];
const skip = spawnSync("unshare", [...unshare, "true"]).status === 0 ? false : "needs `unshare --pid` (root or user namespaces)";

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
async function inNamespace(request: { start: string[]; child?: number; kill?: string[]; killAll?: boolean }, pause = true): Promise<Report> {
  const json = JSON.stringify({ kill: [], killAll: false, ...request, start: request.start.map(bin) });
  const script = pause ? `("$0" "$1" "$2"; true) & exec "$3" 60` : `exec "$0" "$1" "$2"`;
  const child = spawn("unshare", [...unshare, "sh", "-c", script, process.execPath, helper, json, bin("pause")], { stdio: ["ignore", "pipe", "inherit"] });
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

const signalled = (report: Report) => report.logs.filter((line) => line.msg.startsWith("sent SIGTERM")).map((line) => line.msg.slice("sent SIGTERM to ".length));
const warnings = (report: Report) => report.logs.filter((line) => line.level === "warn").map((line) => line.msg);

describe("--kill and --kill-all on real processes", { skip }, () => {
  before(async () => {
    for (const name of ["pause", "sidecar-a", "sidecar-b", "a-very-long-sidecar-name", "program"]) copyFileSync("/usr/bin/sleep", bin(name));
    const entry = fileURLToPath(new URL("./helpers/shutdown-kill.ts", import.meta.url));
    // Plain node, not tsx: tsx starts an esbuild process, which --kill-all would see and signal.
    await build({ entryPoints: [entry], outfile: helper, bundle: true, platform: "node", format: "esm", target: "node20", logLevel: "warning" });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("--kill NAME sends SIGTERM to every process of that name and to no other", async () => {
    const report = await inNamespace({ start: ["sidecar-a", "sidecar-b", "sidecar-a", "program"], child: 3, kill: ["sidecar-a"] });
    assert.deepEqual(report.signals, ["SIGTERM", null, "SIGTERM", null]);
    assert.deepEqual(signalled(report), ["sidecar-a", "sidecar-a"]);
    assert.deepEqual(warnings(report), []);
  });

  test("--kill matches names longer than the kernel's 15-character comm and says which names matched nothing", async () => {
    const report = await inNamespace({ start: ["a-very-long-sidecar-name", "sidecar-b"], kill: ["a-very-long-sidecar-name", "envoy"] });
    assert.deepEqual(report.signals, ["SIGTERM", null]);
    assert.deepEqual(warnings(report), ["no process named envoy is running, so --kill envoy signals nothing"]);
  });

  test("--kill-all signals every other process but not proa, its parent, its child or the pause process", async () => {
    const report = await inNamespace({ start: ["sidecar-a", "sidecar-b", "program"], child: 2, killAll: true });
    assert.deepEqual(report.signals, ["SIGTERM", "SIGTERM", null]);
    assert.deepEqual(signalled(report).sort(), ["sidecar-a", "sidecar-b"]);
    assert.deepEqual(warnings(report), []);
  });

  test("when only the pause process is visible besides proa's own, the log points at shareProcessNamespace", async () => {
    const report = await inNamespace({ start: ["program"], child: 0, killAll: true });
    assert.deepEqual(report.signals, [null]);
    assert.deepEqual(signalled(report), []);
    assert.match(warnings(report).join("\n"), /shareProcessNamespace: true/);
  });

  test("when proa is PID 1 (its own PID namespace), the log points at shareProcessNamespace and --kill reports no missing names", async () => {
    const report = await inNamespace({ start: ["sidecar-a"], kill: ["envoy"] }, false);
    assert.equal(report.pid, 1);
    assert.deepEqual(report.signals, [null]);
    assert.deepEqual(warnings(report).length, 1);
    assert.match(warnings(report)[0] ?? "", /shareProcessNamespace: true/);
  });
});
