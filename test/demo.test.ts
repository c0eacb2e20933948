// The README's first command runs the demo; this keeps it working.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

test("the demo runs proa's whole job against the API stand-in and a real sidecar, and ends by itself with status 0", () => {
  const demo = fileURLToPath(new URL("../demo/demo.ts", import.meta.url));
  const run = spawnSync(process.execPath, ["--import", "tsx", demo], {
    env: { ...process.env, DEMO_READY_AFTER_MS: "300" },
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.equal(run.status, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /program: the sidecar says: 42 rows/);
  assert.match(run.stdout, /db-proxy +exited with 0/);
  assert.match(run.stdout, /Everything behaved\./);
});

test("the demo's --ready-url variant runs the same job with no API at all, and ends by itself with status 0", () => {
  const demo = fileURLToPath(new URL("../demo/demo.ts", import.meta.url));
  const run = spawnSync(process.execPath, ["--import", "tsx", demo, "--ready-url"], {
    env: { ...process.env, DEMO_READY_AFTER_MS: "300" },
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.equal(run.status, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /program: the sidecar says: 42 rows/);
  assert.match(run.stdout, /requests to the API stand-in +0/);
  assert.match(run.stdout, /Everything behaved\./);
});
