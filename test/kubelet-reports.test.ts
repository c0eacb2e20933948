// Every decision that reads a Pod, over the Pods real 1.33.13 and 1.35.6 kubelets reported (test/fixtures/k8s-1.33,
// k8s-1.35, copied from the team's captures): the readiness decision, the shutdown plan, and the end of the Pod, as
// proa reads it (runningContainers, the grace period) and as the real-node suite reads it (test/e2e/kubelet-reports.ts),
// so that what the suite and proa assume of a 1.33+ kubelet is checked in CI, where only 1.20.2 runs. The run's own
// decision over these Pods (a killed native sidecar is a restart to come) is the run-phase work's (#33).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { readiness, restartPolicyOf, runningContainers, type Pod } from "../kube.ts";
import { gracePeriodMs, shutdownPlan, sidecarKinds } from "../shutdown.ts";
import {
  allTerminated,
  containerStatus,
  earlierRun,
  mainRanBeforeReady,
  podEnded,
  restarts,
  seenExit,
} from "./e2e/kubelet-reports.ts";
import { KUBELET_VERSIONS, kubeletPod } from "./fixtures/pods.ts";

const deleting = (pod: Pod) => Boolean(pod.metadata?.deletionTimestamp);
/** The plan the shutdown step makes for this Pod, as shutDownSidecars reads it. */
const planFor = (pod: Pod, succeeded: boolean) =>
  shutdownPlan(restartPolicyOf(pod), succeeded, deleting(pod), sidecarKinds(pod));

for (const version of KUBELET_VERSIONS) {
  const pod = (moment: string) => kubeletPod(version, moment);

  describe(`kubelet ${version}: readiness (proa in container main)`, () => {
    const check = (moment: string) => readiness(pod(moment), "main", [], []);
    test("a native sidecar started but not ready (main still waiting: the kubelet gates it on started) is waited for", () =>
      assert.deepEqual(check("native-started-not-ready"), { notReady: ["sidecar"] }));
    test("the same Pod without proa, its program already running: the sidecar is still not ready", () =>
      assert.deepEqual(check("native-plain-main-running-sidecar-not-ready"), { notReady: ["sidecar"] }));
    test("ready, and ready again after a restart", () => {
      assert.deepEqual(check("native-ready"), { notReady: [] });
      assert.deepEqual(check("native-restarted-ready-again"), { notReady: [] });
    });
    test("a killed native sidecar, terminated 137 with restartCount 0 under Never, is not ready but not a failure: the kubelet restarts it", () => {
      assert.deepEqual(check("native-killed-terminated-before-restart"), { notReady: ["sidecar"] });
      assert.deepEqual(check("native-restarting-laststate"), { notReady: ["sidecar"] });
    });
    test("a regular sidecar terminated 137 under Never fails the wait, naming it", () => {
      const { failed } = check("regular-sidecar-terminated-mid-run");
      assert.match(
        failed ?? "",
        /^container sidecar terminated with exit code 137 \(Error\) before it was ready, and the Pod.s restartPolicy is Never/,
      );
    });
    test("a regular sidecar running and ready", () =>
      assert.deepEqual(check("regular-before-delete"), { notReady: [] }));
  });

  describe(`kubelet ${version}: the shutdown plan`, () => {
    const NATIVE = /^the Pod's only sidecars are native: the kubelet stops them once proa's container has exited/;
    test("native only, the program succeeded or failed: no wait (the kubelet stops the sidecar after main)", () => {
      for (const [moment, succeeded] of [
        ["native-main-terminated-sidecar-running", true],
        ["native-killed-pod-ended", true],
        ["native-job-failed-exit3", false],
      ] as const) {
        const plan = planFor(pod(moment), succeeded);
        assert.equal(plan.waitForExit, false, moment);
        assert.match(plan.reason, NATIVE, moment);
      }
    });
    test("a regular sidecar under Never: shut down and waited for, whether or not it died mid-run", () => {
      for (const moment of [
        "regular-before-delete",
        "regular-sidecar-terminated-mid-run",
        "all-terminated-phase-still-running",
      ]) {
        const plan = planFor(pod(moment), true);
        assert.deepEqual([plan.shutDown, plan.waitForExit], [true, true], moment);
        assert.match(plan.reason, /^restartPolicy Never: proa's container will not run again/);
      }
    });
    test("a Pod being deleted, and the last version the watch delivered: the kubelet stops the sidecars", () => {
      for (const moment of [
        "pod-being-deleted",
        "pod-being-deleted-2",
        "pod-deleted-last-watch-event",
        "onfailure-always-fails-last-watch-event",
      ]) {
        const plan = planFor(pod(moment), false);
        assert.deepEqual(
          plan,
          {
            shutDown: true,
            waitForExit: false,
            reason: "the Pod is being deleted: the kubelet stops the sidecars",
          },
          moment,
        );
      }
    });
    test("the deletion's grace period is the step's budget; the DELETED event's 0 never reaches the step (the watch reports the Pod gone)", () => {
      assert.equal(gracePeriodMs(pod("pod-being-deleted")), 30_000);
      assert.equal(gracePeriodMs(pod("pod-being-deleted-2")), 30_000);
      assert.equal(gracePeriodMs(pod("regular-before-delete")), 30_000, "the Pod's own terminationGracePeriodSeconds");
      assert.equal(pod("pod-deleted-last-watch-event").metadata?.deletionGracePeriodSeconds, 0);
    });
  });

  describe(`kubelet ${version}: the end of the Pod`, () => {
    test("the shutdown step waits for regular sidecars only, as long as the Pod shows them not terminated", () => {
      const running = (moment: string) => runningContainers(pod(moment), "main");
      assert.deepEqual(running("regular-before-delete"), ["sidecar"]);
      // While the kubelet stops a deleted Pod it reports no container status until all have stopped.
      assert.deepEqual(running("pod-being-deleted"), ["sidecar"]);
      // Then all at once, in one update (1.35 sent one more with both still running first).
      assert.deepEqual(running(version === "1.35" ? "pod-being-deleted-3" : "pod-being-deleted-2"), []);
      assert.deepEqual(running("regular-sidecar-terminated-mid-run"), []);
      assert.deepEqual(running("native-main-terminated-sidecar-running"), [], "a native sidecar is never waited for");
      assert.deepEqual(running("all-terminated-phase-still-running"), [], "proa needs no terminal phase");
    });

    test("the terminal phase comes in a later update than the last container's termination", () => {
      const between = pod("all-terminated-phase-still-running");
      assert.equal(allTerminated(between), true);
      assert.equal(podEnded(between), false, between.status?.phase);
      assert.equal(podEnded(pod("regular-killed-pod-ended")), true);
      assert.equal(podEnded(pod("native-terminated-by-kubelet-after-main")), true);
      assert.equal(podEnded(pod("native-main-terminated-sidecar-running")), false);
    });

    test("a killed native sidecar's run is read from the versions, since the last one clears lastState", () => {
      const versions = [
        "native-ready",
        "native-killed-terminated-before-restart",
        "native-restarting-laststate",
        "native-restarted-ready-again",
        "native-killed-pod-ended",
      ].map(pod);
      const last = versions.at(-1)!;
      assert.deepEqual(containerStatus(last, "sidecar")?.lastState, {}, "the final Pod no longer shows the 137");
      assert.equal(containerStatus(last, "sidecar")?.restartCount, 1);
      assert.equal(earlierRun(versions, "sidecar")?.exitCode, 137);
      assert.equal(earlierRun([last], "sidecar"), undefined);
      assert.equal(seenExit(versions, "sidecar", 137), true);
      assert.equal(
        seenExit([pod("native-killed-terminated-before-restart")], "sidecar", 137),
        true,
        "the dead second alone",
      );
      assert.equal(seenExit([pod("native-restarting-laststate")], "sidecar", 137), true, "the restart alone");
      assert.equal(seenExit([pod("native-ready"), last], "sidecar", 137), false);
      assert.equal(restarts(versions, "sidecar"), 1);
      assert.equal(restarts([pod("native-ready")], "sidecar"), 0);
    });

    test("the gap proa fills: without it, the program ran while the native sidecar had started, not ready", () => {
      assert.equal(mainRanBeforeReady([pod("native-plain-main-running-sidecar-not-ready")], "main", "sidecar"), true);
      assert.equal(mainRanBeforeReady([pod("native-started-not-ready")], "main", "sidecar"), false, "main waiting");
      assert.equal(mainRanBeforeReady([pod("native-ready")], "main", "sidecar"), false, "ready");
    });

    test("a Job that fails has FailureTarget before Failed", () => {
      const job = kubeletPod(version, "native-job-failed-exit3.job") as {
        status?: { conditions?: { type: string; reason?: string }[] };
      };
      const types = job.status?.conditions?.map((c) => c.type);
      assert.deepEqual(types, ["FailureTarget", "Failed"]);
      assert.equal(job.status?.conditions?.find((c) => c.type === "Failed")?.reason, "BackoffLimitExceeded");
    });
  });
}
