// What a sidecar's death or restart while the program runs means: sidecarVerdict, one pure function, as a table over
// every combination (restartPolicy × native or regular × how its status changed × the flags × the Pod being stopped),
// then over the Pods real 1.33 and 1.35 kubelets reported (test/fixtures/k8s-*, copied from the shared captures).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { checkPod, runVerdicts, sidecarVerdict, type ContainerStatus, type Pod, type RunOptions } from "../kube.ts";
import { captured } from "./fixtures/pods.ts";

const running = (restartCount = 0, lastExit?: number): ContainerStatus => ({
  name: "proxy",
  ready: true,
  restartCount,
  state: { running: { startedAt: "2026-12-07T10:50:26Z" } },
  ...(lastExit === undefined ? {} : { lastState: { terminated: { exitCode: lastExit, reason: "Error" } } }),
});
const terminated = (exitCode: number, restartCount = 0): ContainerStatus => ({
  name: "proxy",
  ready: false,
  restartCount,
  state: {
    terminated: {
      exitCode,
      reason: exitCode === 0 ? "Completed" : "OOMKilled",
      finishedAt: "2026-12-07T10:51:00Z",
    },
  },
});

// How the status changed between two Pods: [name, before, after, the event it is (or none)].
const changes: [string, ContainerStatus, ContainerStatus, "terminated 0" | "terminated 137" | "restarted" | "none"][] =
  [
    ["still running", running(), running(), "none"],
    ["running, then terminated with exit 0", running(), terminated(0), "terminated 0"],
    ["running, then terminated with exit 137", running(), terminated(137), "terminated 137"],
    [
      "running, then running again with restartCount 1 (the terminated moment unseen)",
      running(),
      running(1, 137),
      "restarted",
    ],
    ["terminated (told already), then running with restartCount 1", terminated(137), running(1, 137), "none"],
    ["terminated, still terminated", terminated(137), terminated(137), "none"],
    ["running after one restart, then terminated again", running(1, 137), terminated(1, 1), "terminated 137"],
  ];
const policies = ["Never", "OnFailure", "Always", undefined] as const;
const flagSets = [
  ["no flag", { critical: false, noCritical: false }],
  ["--critical", { critical: true, noCritical: false }],
  ["--no-critical", { critical: false, noCritical: true }],
] as const;

/** The rule, stated as the README's table states it. */
function expected(
  policy: string | undefined,
  native: boolean,
  change: (typeof changes)[number][3],
  flags: { critical: boolean; noCritical: boolean },
  ending: boolean,
): { action: string; kind?: string } {
  if (change === "none") return { action: "none" };
  const comesBack =
    change === "restarted" ||
    native ||
    policy === "Always" ||
    policy === undefined || // the API server defaults a missing restartPolicy to Always
    (policy === "OnFailure" && change !== "terminated 0");
  const kind = change === "restarted" ? "restarted" : comesBack ? "restarting" : "died";
  if (ending) return { action: "none", kind };
  if (!comesBack) return { action: flags.noCritical ? "report" : "stop", kind };
  return { action: flags.critical ? "stop" : "report", kind };
}

describe("sidecarVerdict: every combination", () => {
  for (const policy of policies)
    for (const native of [false, true])
      for (const [what, before, after, change] of changes)
        for (const [flagName, flags] of flagSets)
          for (const ending of [false, true]) {
            const want = expected(policy, native, change, flags, ending);
            test(`${policy ?? "no restartPolicy"}, ${native ? "native" : "regular"}, ${what}, ${flagName}${ending ? ", Pod being stopped" : ""}: ${want.action}`, () => {
              const verdict = sidecarVerdict(policy ?? "Always", native, before, after, flags, ending);
              assert.equal(verdict.action, want.action, verdict.reason);
              assert.equal(verdict.event?.kind, want.kind, verdict.reason);
              assert.ok(verdict.reason.length > 0);
            });
          }
});

describe("sidecarVerdict: its reasons, in words", () => {
  const none = { critical: false, noCritical: false };
  test("a regular sidecar killed under Never stops the program, and says why", () => {
    const verdict = sidecarVerdict("Never", false, running(), terminated(137), none, false);
    assert.deepEqual(verdict, {
      action: "stop",
      reason:
        "sidecar proxy terminated with exit code 137 (OOMKilled) and the Pod's restartPolicy is Never, so it will not be restarted: proa stops the program",
      why: "the Pod's restartPolicy is Never, so it will not be restarted: proa stops the program",
      event: {
        name: "proxy",
        kind: "died",
        exitCode: 137,
        reason: "OOMKilled",
        finishedAt: "2026-12-07T10:51:00Z",
        restartCount: 0,
      },
    });
  });
  test("under OnFailure, exit 0 is a death and exit 1 a restart", () => {
    assert.match(
      sidecarVerdict("OnFailure", false, running(), terminated(0), none, false).reason,
      /will not be restarted: proa stops the program$/,
    );
    assert.match(
      sidecarVerdict("OnFailure", false, running(), terminated(1), none, false).reason,
      /so the kubelet restarts it: the program runs on$/,
    );
  });
  test("a restart seen only by its restartCount is told with its last exit code", () => {
    assert.equal(
      sidecarVerdict("Always", false, running(), running(1, 2), none, false).reason,
      "sidecar proxy was restarted after exit code 2 (Error); the Pod's restartPolicy is Always, so the kubelet restarts it: the program runs on",
    );
  });
  test("--critical and --no-critical say so", () => {
    assert.match(
      sidecarVerdict("Always", true, running(), terminated(137), { critical: true, noCritical: false }, false).reason,
      /, but --critical names it: proa stops the program$/,
    );
    assert.match(
      sidecarVerdict("Never", false, running(), terminated(137), { critical: false, noCritical: true }, false).reason,
      /; --no-critical: the program runs on$/,
    );
  });
  test("while the Pod is being stopped, a termination is not a death", () => {
    assert.equal(
      sidecarVerdict("Never", false, running(), terminated(137), none, true).reason,
      "sidecar proxy terminated with exit code 137 (OOMKilled) as its Pod is being stopped: not a death",
    );
  });
  test("a reason the kubelet reports is quoted, so it cannot forge a log line", () => {
    const forged = terminated(1);
    forged.state!.terminated!.reason = "Error\nproa exited 0";
    assert.ok(!sidecarVerdict("Never", false, running(), forged, none, false).reason.includes("\n"));
  });
});

const options: RunOptions = { critical: [], criticalAll: false, noCritical: false };
const fixture = (version: string, name: string): Pod => checkPod(captured(`k8s-${version}/${name}.json`));

for (const version of ["1.33", "1.35"]) {
  describe(`runVerdicts over what a real ${version} kubelet reported`, () => {
    const ready = fixture(version, "native-ready");
    const killed = fixture(version, "native-killed-terminated-before-restart");
    const restarting = fixture(version, "native-restarting-laststate");
    const readyAgain = fixture(version, "native-restarted-ready-again");

    test("a native sidecar killed under Never, terminated with restartCount 0 and no lastState: a restart to come, never a death", () => {
      const [verdict] = runVerdicts(ready, killed, ["sidecar"], options, false);
      assert.equal(verdict?.action, "report", verdict?.reason);
      assert.deepEqual([verdict?.event?.kind, verdict?.event?.exitCode], ["restarting", 137]);
    });
    test("then restarting (restartCount 1, lastState 137) and ready again: nothing more to tell", () => {
      assert.equal(runVerdicts(killed, restarting, ["sidecar"], options, false)[0]?.action, "none");
      assert.equal(runVerdicts(restarting, readyAgain, ["sidecar"], options, false)[0]?.action, "none");
    });
    test("the restart seen without its terminated moment: reported once, from its restartCount", () => {
      const [verdict] = runVerdicts(ready, restarting, ["sidecar"], options, false);
      assert.deepEqual([verdict?.action, verdict?.event?.kind, verdict?.event?.exitCode], ["report", "restarted", 137]);
    });
    test("--critical-all makes the killed native sidecar end the run", () => {
      const [verdict] = runVerdicts(ready, killed, ["sidecar"], { ...options, criticalAll: true }, false);
      assert.equal(verdict?.action, "stop");
    });

    const midRun = fixture(version, "regular-sidecar-terminated-mid-run");
    // Derived: the same Pod a moment before, its sidecar still running (the capture polled only the moment after).
    const before = structuredClone(midRun);
    const sidecar = before.status!.containerStatuses!.find((s) => s.name === "sidecar")!;
    sidecar.state = { running: { startedAt: "2026-12-07T10:50:54Z" } };
    test("a regular sidecar killed under Never mid-run: the run ends", () => {
      const [verdict] = runVerdicts(before, midRun, ["sidecar"], options, false);
      assert.equal(verdict?.action, "stop", verdict?.reason);
      assert.deepEqual([verdict?.event?.kind, verdict?.event?.exitCode], ["died", 137]);
    });
    test("the same death with proa's SIGTERM received: not a death", () => {
      assert.equal(runVerdicts(before, midRun, ["sidecar"], options, true)[0]?.action, "none");
    });
    test("a Pod being deleted, its containers terminated in the kubelet's update: not a death", () => {
      const verdicts = runVerdicts(
        fixture(version, "regular-before-delete"),
        fixture(version, "pod-being-deleted-2"),
        ["sidecar"],
        options,
        false,
      );
      assert.equal(verdicts[0]?.action, "none", verdicts[0]?.reason);
    });
  });
}
