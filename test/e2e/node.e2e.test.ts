// proa on a real node: a real kubelet and containerd run proa's Pods and Jobs (test/e2e/node.sh), so the readiness
// probes, the SIGTERM on deletion and its grace period, the termination-log mount, the cgroup, shareProcessNamespace
// and the ServiceAccount token are the real ones. Each scenario asserts on what the kubelet reports (containerStatuses,
// state.terminated, events) as well as on proa's log, and waits for what it reports rather than assuming when: the
// suite runs on 1.20.2 in CI and on 1.29 to 1.35 with PROA_E2E_KUBE_BIN, where the terminal phase, a cleared
// lastState and a Job's FailureTarget come in updates of their own (kubelet-reports.ts). The native-sidecar scenarios
// run from 1.29.
//
// The Pods run the suite's app image (node.sh): busybox, node, this checkout's dist/proa.js at /proa/proa.js and
// job.yaml's sidecar at /sidecar/sidecar.mjs. The kubelet turns `$$` into `$` and expands `$(NAME)` in command and
// args, so the shell scripts below use neither.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test, type TestContext } from "node:test";
import type { Pod } from "../../kube.ts";
import { jobYamlDocuments, jsonKeys, yamlKeys, type YamlDocument } from "./cluster.ts";
import {
  allTerminated,
  containerStatus,
  earlierRun,
  mainRanBeforeReady,
  podEnded,
  restarts,
  seenExit,
  type KubeletStatus,
} from "./kubelet-reports.ts";
import { kubeletVersion, nativeSidecarSkipReason, NodeCluster, nodeSkipReason } from "./node.ts";

const GRACE_SECONDS = 10;
const KUBELET = kubeletVersion();
const NATIVE = { skip: nativeSidecarSkipReason(KUBELET) };

describe(
  `proa on a real node: kubelet ${KUBELET?.gitVersion ?? "(not built yet)"}, containerd, kube-controller-manager, kube-scheduler`,
  { skip: nodeSkipReason(), timeout: 20 * 60_000 },
  () => {
    let scratch: string;
    let cluster: NodeCluster;
    let namespaces = 0;

    before(async () => {
      scratch = mkdtempSync(join(tmpdir(), "proa-node-"));
      try {
        cluster = await NodeCluster.start(join(scratch, "node"));
      } catch (error) {
        await NodeCluster.stop(join(scratch, "node")).catch(() => {});
        throw error; // in CI as anywhere: a suite that cannot get its node fails
      }
    });

    after(async () => {
      if (!scratch) return;
      await NodeCluster.stop(join(scratch, "node"));
      rmSync(scratch, { recursive: true, force: true });
    });

    // -------------------------------------------------------------------------------------------------------------
    // Scaffolding: a namespace with job.yaml's ServiceAccount, Role and RoleBinding, and Pods made of the app image.

    const jobDocs = (): YamlDocument[] => jobYamlDocuments();
    const doc = (kind: string) => {
      const found = jobDocs().find((d) => d.kind === kind);
      if (!found) throw new Error(`job.yaml has no ${kind}`);
      return found;
    };

    /** A new namespace holding job.yaml's ServiceAccount, Role and RoleBinding, with their tokens made. When the test
     * ends, passed or not, its Jobs and Pods are deleted, so that nothing it started runs on into the next test. */
    async function namespace(t: TestContext): Promise<string> {
      const ns = `proa-node-${++namespaces}`;
      t.after(() => cleanUp(ns));
      await cluster.namespace(ns);
      for (const kind of ["ServiceAccount", "Role", "RoleBinding"]) {
        const { status, body } = await cluster.server.applyYaml(ns, doc(kind));
        assert.equal(status, 201, `creating job.yaml's ${kind}: ${JSON.stringify(body)}`);
      }
      await cluster.waitForTokens(ns, [doc("ServiceAccount").name]);
      return ns;
    }

    async function cleanUp(ns: string): Promise<void> {
      const quick = { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 1, propagationPolicy: "Background" };
      await cluster.server.call("DELETE", `/apis/batch/v1/namespaces/${ns}/jobs`, quick);
      await cluster.server.call("DELETE", `/api/v1/namespaces/${ns}/pods`, quick);
    }

    const downwardApi = [
      { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    ];

    /** proa's container: `node /proa/proa.js ARGS -- sh -c SCRIPT`, with the downward API's POD_NAME/NAMESPACE. */
    const main = (proaArgs: string[], script: string, extra: object = {}) => ({
      name: "main",
      image: cluster.appImage,
      imagePullPolicy: "Never",
      command: ["node", "/proa/proa.js"],
      args: [...proaArgs, "--", "sh", "-c", script],
      env: downwardApi,
      ...extra,
    });

    /** job.yaml's sidecar (ready readyAfterSeconds after it starts, exits on POST /shutdown or SIGTERM). */
    const sidecar = (readyAfterSeconds: number, name = "sidecar") => ({
      name,
      image: cluster.appImage,
      imagePullPolicy: "Never",
      command: ["node", "/sidecar/sidecar.mjs"],
      env: [
        { name: "PORT", value: "8080" },
        { name: "READY_AFTER_SECONDS", value: String(readyAfterSeconds) },
      ],
      readinessProbe: { httpGet: { path: "/ready", port: 8080 }, periodSeconds: 1 },
    });
    const SHUTDOWN = ["--shutdown-http-post", "http://localhost:8080/shutdown"];
    /** The program checks for itself that the sidecar is ready: /ready answers 503 until it is. */
    const USES_READY_SIDECAR =
      "if wget -q -O /dev/null http://localhost:8080/ready; then echo the sidecar was ready; else echo the sidecar was NOT ready; exit 3; fi";

    function podManifest(name: string, containers: object[], spec: object = {}) {
      return {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name },
        spec: {
          restartPolicy: "Never",
          serviceAccountName: doc("ServiceAccount").name,
          terminationGracePeriodSeconds: GRACE_SECONDS,
          containers,
          ...spec,
        },
      };
    }

    async function createPod(ns: string, manifest: { metadata: { name: string } }): Promise<string> {
      await cluster.server.api("POST", `/api/v1/namespaces/${ns}/pods`, manifest);
      return manifest.metadata.name;
    }

    const maybeStatus = containerStatus; // regular or native
    const statusOf = (pod: Pod | undefined, container: string): KubeletStatus => {
      const status = maybeStatus(pod, container);
      if (!status)
        throw new Error(
          `Pod ${pod?.metadata?.name} has no status for container ${container}: ${JSON.stringify(pod?.status)}`,
        );
      return status;
    };
    const terminated = (pod: Pod | undefined, container: string) => {
      const state = statusOf(pod, container).state?.terminated as
        { exitCode: number; reason?: string; message?: string; startedAt?: string; finishedAt?: string } | undefined;
      if (!state)
        throw new Error(
          `container ${container} of Pod ${pod?.metadata?.name} has not terminated: ${JSON.stringify(pod?.status)}`,
        );
      return state;
    };
    const mainDone = (pod: Pod | undefined) => maybeStatus(pod, "main")?.state?.terminated !== undefined;

    /** Waits (with a watch, so the last status before a deletion is seen too) until proa's container has terminated,
     * then at most 20 s more until every container has (a sidecar still running then was never stopped) and the Pod
     * has its terminal phase (1.33+ reports it in a later update, 1.1-1.3 s after the last container's). */
    async function untilTerminated(
      ns: string,
      name: string,
      timeoutMs = 120_000,
    ): Promise<{ pod: Pod; versions: Pod[] }> {
      const selector = `fieldSelector=metadata.name=${name}`;
      const first = await cluster.watchPods(ns, selector, (pods) => mainDone(pods.get(name)), timeoutMs);
      const over = (pods: Map<string, Pod>, gone: Set<string>) =>
        gone.has(name) || (allTerminated(pods.get(name)) && podEnded(pods.get(name)));
      // (a deleted Pod may be gone by now, with its last status already seen)
      if (over(first.latest, first.gone)) return { pod: first.latest.get(name)!, versions: first.versions };
      const rest = await cluster.watchPods(ns, selector, over, 20_000).catch((error) => {
        throw new Error(
          `proa's container has terminated, but not every sidecar, or the Pod's phase not, 20 s later: ${error.message}`,
        );
      });
      return { pod: rest.latest.get(name)!, versions: [...first.versions, ...rest.versions] };
    }

    /** Waits until no container of the Pod runs any more and either every one has terminated or the Pod is gone (a
     * Pod's last version before it vanishes is seen through the watch); stoppedAt is when the test saw it. Then at
     * most 20 s more for the terminal phase (or the Pod gone), which 1.33+ reports in a later update. */
    async function untilStopped(
      ns: string,
      selector: string,
      name: string,
      timeoutMs: number,
    ): Promise<{ pod: Pod; versions: Pod[]; gone: boolean; stoppedAt: number }> {
      const stopped = (pods: Map<string, Pod>, gone: Set<string>) => {
        const pod = pods.get(name);
        const running = pod?.status?.containerStatuses?.some((s) => s.state?.running) ?? false;
        return !!pod && !running && (gone.has(name) || allTerminated(pod));
      };
      const history = await cluster.watchPods(ns, selector, stopped, timeoutMs);
      const stoppedAt = Date.now();
      const ended = (pods: Map<string, Pod>, gone: Set<string>) => gone.has(name) || podEnded(pods.get(name));
      const rest = ended(history.latest, history.gone)
        ? { versions: [], latest: history.latest, gone: history.gone }
        : await cluster.watchPods(ns, selector, ended, 20_000);
      return {
        pod: rest.latest.get(name) ?? history.latest.get(name)!,
        versions: [...history.versions, ...rest.versions],
        gone: history.gone.has(name) || rest.gone.has(name),
        stoppedAt,
      };
    }

    /** Polls the Job until done(status) holds, within timeoutMs; returns its last status. */
    async function untilJob(
      ns: string,
      name: string,
      done: (status: any) => boolean,
      timeoutMs = 120_000,
    ): Promise<any> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const status = (await cluster.server.api("GET", `/apis/batch/v1/namespaces/${ns}/jobs/${name}`)).status;
        if (done(status)) return status;
        if (Date.now() > deadline)
          throw new Error(
            `Job ${ns}/${name} did not get there within ${timeoutMs / 1000} s: ${JSON.stringify(status)}`,
          );
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    }
    const condition = (status: any, type: string) =>
      status?.conditions?.find((c: any) => c.type === type && c.status === "True");

    /** Waits until the program has printed "the program started" in proa's container. */
    async function untilProgramStarted(ns: string, name: string): Promise<void> {
      const deadline = Date.now() + 120_000;
      while (!/the program started/.test(await cluster.logs(ns, name, "main").catch(() => ""))) {
        assert.ok(Date.now() < deadline, "the program did not start within 120 s");
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    }

    /** SIGKILL from the host to a container of the Pod once the kubelet reports it running; returns the host's
     * uptime just before the kill (the one clock the host and every container share). */
    async function killWhenRunning(ns: string, name: string, container: string): Promise<number> {
      const { latest } = await cluster.watchPods(
        ns,
        `fieldSelector=metadata.name=${name}`,
        (pods) => !!maybeStatus(pods.get(name), container)?.state?.running,
        30_000,
      );
      const at = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
      await cluster.killContainer(maybeStatus(latest.get(name), container)!.containerID!);
      return at;
    }

    /** proa's JSON log records in a container's log (the program's own lines are left out). */
    function proaLog(text: string): { level: string; msg: string; [key: string]: unknown }[] {
      return text
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line));
    }

    const seconds = (time: string | undefined) => {
      assert.ok(time, "a timestamp the kubelet reports");
      return Date.parse(time) / 1000;
    };

    // -------------------------------------------------------------------------------------------------------------
    // Scenarios

    test("job.yaml, applied with only its images swapped, runs to completion: the Job succeeds, the sidecar exits on proa's request", async (t) => {
      const ns = await namespace(t);
      const swapped = (d: YamlDocument) =>
        d.text.replace(/^(\s*)image: .*$/gm, `$1image: ${cluster.appImage}\n$1imagePullPolicy: Never`);
      const job = doc("Job");
      for (const d of jobDocs()) {
        if (["ServiceAccount", "Role", "RoleBinding"].includes(d.kind)) continue; // namespace() applied them
        const { status, body } = await cluster.server.applyYaml(ns, { ...d, text: swapped(d) });
        assert.equal(status, 201, `creating job.yaml's ${d.kind}: ${JSON.stringify(body?.message ?? body)}`);
      }
      const created = await cluster.watchPods(
        ns,
        `labelSelector=job-name=${job.name}`,
        (pods) => pods.size > 0,
        60_000,
      );
      const podName = [...created.latest.keys()][0]!;
      const { pod, versions } = await untilTerminated(ns, podName, 180_000);

      const mainState = terminated(pod, "main");
      const sidecarState = terminated(pod, "sidecar");
      const mainLog = await cluster.logs(ns, podName, "main");
      // Whether the API showed the sidecar's exit while proa still waited for it, and in which of the kubelet's status
      // updates (their managedFields time): if proa's wait ran out all the same, proa missed it.
      const kubeletUpdate = (p: Pod) =>
        ((p.metadata as { managedFields?: { manager?: string; time?: string }[] }).managedFields ?? [])
          .filter((f) => f.manager === "kubelet")
          .map((f) => f.time)
          .sort()
          .at(-1);
      const exitShown = versions.find(
        (p) => maybeStatus(p, "sidecar")?.state?.terminated && maybeStatus(p, "main")?.state?.running,
      );
      t.diagnostic(
        `the API showed the sidecar terminated while main ran: ${exitShown ? `in the kubelet's update of ${kubeletUpdate(exitShown)}` : "never"}`,
      );
      assert.equal(mainState.exitCode, 0, `main: ${JSON.stringify(mainState)}\n${mainLog}`);
      assert.match(mainLog, /the sidecar says: 42 rows copied by the sidecar/);
      // The sidecar exited on proa's POST, not by a signal at the end of its 30 s grace period; proa waited for it.
      assert.equal(sidecarState.exitCode, 0, JSON.stringify(sidecarState));
      assert.equal(sidecarState.reason, "Completed");
      assert.match(await cluster.logs(ns, podName, "sidecar"), /received POST \/shutdown: exiting/);
      t.diagnostic(`the sidecar finished at ${sidecarState.finishedAt}, main at ${mainState.finishedAt}`);
      assert.ok(
        seconds(sidecarState.finishedAt) <= seconds(mainState.finishedAt),
        "proa exits only after the sidecar has",
      );
      // Soon after it, not when its 30 s budget ran out. Usually the same second; once, on a loaded CI run, more than
      // 10 s later (proa's log, below, tells when it saw the exit if that happens again).
      assert.ok(
        seconds(mainState.finishedAt) - seconds(sidecarState.finishedAt) <= 15,
        `and soon after it: the sidecar finished at ${sidecarState.finishedAt}, main at ${mainState.finishedAt}\n${mainLog}`,
      );
      // The Job controller saw the Pod succeed (from 1.31 SuccessCriteriaMet comes first, Complete once the Pod is done).
      const jobStatus = await untilJob(ns, job.name, (s) => s?.succeeded === 1 && !!condition(s, "Complete"), 30_000);
      assert.equal(jobStatus.succeeded, 1, JSON.stringify(jobStatus));

      // Once job.yaml mounts the token only in proa's container (automountServiceAccountToken: false), the kubelet
      // mounts it only there.
      if (/automountServiceAccountToken:\s*false/.test(job.text)) {
        const mounts = (name: string) =>
          ((pod.spec?.containers ?? []).find((c: any) => c.name === name) as any)?.volumeMounts ?? [];
        const tokenVolumes = new Set(
          ((pod.spec as any)?.volumes ?? [])
            .filter(
              (v: any) =>
                v.projected?.sources?.some((s: any) => s.serviceAccountToken) ||
                v.secret?.secretName?.includes("-token-"),
            )
            .map((v: any) => v.name),
        );
        assert.ok(
          mounts("main").some((m: any) => tokenVolumes.has(m.name)),
          "proa's container has the token",
        );
        assert.deepEqual(
          mounts("sidecar").filter((m: any) => tokenVolumes.has(m.name)),
          [],
          "the sidecar has no token",
        );
      }
    });

    test("readiness: the program starts only after the sidecar's real readinessProbe passes", async (t) => {
      const ns = await namespace(t);
      const name = await createPod(ns, podManifest("ready", [main(SHUTDOWN, USES_READY_SIDECAR), sidecar(5)]));
      const { pod, versions } = await untilTerminated(ns, name);
      const log = await cluster.logs(ns, name, "main");

      assert.equal(terminated(pod, "main").exitCode, 0, log);
      assert.match(log, /the sidecar was ready/);
      // The kubelet really reported the sidecar running but not ready while proa waited, and its probe failing.
      assert.ok(
        versions.some(
          (p) =>
            maybeStatus(p, "main")?.state?.running &&
            maybeStatus(p, "sidecar")?.state?.running &&
            maybeStatus(p, "sidecar")?.ready === false,
        ),
        "a Pod status with proa running and the sidecar running, not ready",
      );
      const unhealthy = (await cluster.events(ns, name)).filter(
        (e) => e.reason === "Unhealthy" && /Readiness probe failed/.test(e.message),
      );
      assert.ok(unhealthy.length > 0, "the kubelet's readiness probe failed at first");
      const waited = proaLog(log).find((r) => typeof r.waitedMs === "number");
      assert.ok(waited && Number(waited.waitedMs) >= 2000, `proa waited for the probe: ${JSON.stringify(waited)}`);
      assert.equal(terminated(pod, "sidecar").exitCode, 0);
    });

    // -------------------------------------------------------------------------------------------------------------
    // Native sidecars (init containers with restartPolicy Always), run by default from 1.29 and skipped with the reason
    // before. Written against what real 1.33 and 1.35 kubelets reported for these same Pods (test/fixtures/k8s-1.33,
    // k8s-1.35; kubelet-reports.ts reads them, and test/kubelet-reports.test.ts checks that reading on the captures).

    /** job.yaml's sidecar as a native sidecar: readinessProbe only, no startupProbe, so the kubelet starts the next
     * container as soon as it has started. */
    const nativeSidecar = (readyAfterSeconds: number) => ({ ...sidecar(readyAfterSeconds), restartPolicy: "Always" });
    const summaryOf = (log: string) =>
      proaLog(log).find((r) => r.msg === "summary") as
        | {
            shutdown?: { plan?: { waitForExit?: boolean; reason?: string }; wait?: { outcome?: string } };
            sidecars?: { name: string; kind: string; exitCode?: number; stopped: boolean }[];
          }
        | undefined;

    test(
      "a native sidecar with a readinessProbe and no startupProbe: proa starts the program once it is ready, where the same Pod without proa starts it on `started` and meets it not ready",
      NATIVE,
      async (t) => {
        const ns = await namespace(t);
        const initContainers = [nativeSidecar(5)];
        // The program checks the sidecar, then runs on for 2 s, so that the kubelet reports it running (one that
        // exits at once may be reported terminated straight away).
        const program =
          "if wget -q -O /dev/null http://localhost:8080/ready; then echo the sidecar was ready; s=0; else echo the sidecar was NOT ready; s=3; fi; sleep 2; exit $s";
        const withProa = podManifest("native-proa", [main([], program)], { initContainers });
        const plain = podManifest(
          "native-plain",
          [{ ...main([], program), command: ["sh", "-c", program], args: [] }],
          { initContainers },
        );
        await Promise.all([createPod(ns, withProa), createPod(ns, plain)]);
        const [proa, bare] = await Promise.all([
          untilTerminated(ns, "native-proa"),
          untilTerminated(ns, "native-plain"),
        ]);
        const [log, plainLog] = await Promise.all([
          cluster.logs(ns, "native-proa", "main"),
          cluster.logs(ns, "native-plain", "main"),
        ]);

        // Without proa: the kubelet ran the program while the sidecar had started but was not ready, and it said so.
        assert.ok(mainRanBeforeReady(bare.versions, "main", "sidecar"), "main running, the sidecar started, not ready");
        assert.match(plainLog, /the sidecar was NOT ready/);
        assert.equal(terminated(bare.pod, "main").exitCode, 3, plainLog);
        // With proa: the kubelet started proa just as early, and proa held the program until the probe passed.
        assert.ok(mainRanBeforeReady(proa.versions, "main", "sidecar"), "proa running, the sidecar not ready yet");
        assert.equal(terminated(proa.pod, "main").exitCode, 0, log);
        assert.match(log, /the sidecar was ready/);
        const ready = proaLog(log).find((r) => r.msg === "the other containers are ready");
        assert.ok(ready && Number(ready.waitedMs) >= 2000, `proa waited for the probe: ${log}`);
        assert.equal(proa.pod.status?.phase, "Succeeded");
      },
    );

    test(
      "a native sidecar and no shutdown option, in a Job: proa exits at once without waiting or claiming a wait, the kubelet stops the sidecar after it, and the Job completes",
      NATIVE,
      async (t) => {
        const ns = await namespace(t);
        const template = podManifest("unused", [main([], "echo the program ran")], {
          initContainers: [nativeSidecar(1)],
        });
        const job = {
          apiVersion: "batch/v1",
          kind: "Job",
          metadata: { name: "native-done" },
          spec: { backoffLimit: 0, template: { spec: template.spec } },
        };
        const name = await createJob(ns, job);
        const { pod } = await untilTerminated(ns, name);
        const log = await cluster.logs(ns, name, "main");
        const status = await untilJob(ns, "native-done", (s) => !!condition(s, "Complete") || !!condition(s, "Failed"));

        assert.ok(condition(status, "Complete"), JSON.stringify(status));
        const mainState = terminated(pod, "main");
        const sidecarState = terminated(pod, "sidecar");
        assert.equal(mainState.exitCode, 0, log);
        assert.equal(pod.status?.phase, "Succeeded");
        assert.ok(
          seconds(sidecarState.finishedAt) >= seconds(mainState.finishedAt),
          `the kubelet stopped the sidecar after main: ${JSON.stringify(sidecarState)}`,
        );
        const records = proaLog(log);
        assert.ok(!records.some((r) => /no way to stop|can only wait/.test(r.msg)), log);
        const summary = summaryOf(log);
        assert.equal(summary?.shutdown?.plan?.waitForExit, false, log);
        assert.equal(summary?.shutdown?.wait?.outcome, "not watched");
        const at = (msg: string) => Date.parse(String(records.find((r) => r.msg === msg)?.time));
        assert.ok(at("exiting") - at("program exited") < 1000, `proa exited soon after the program: ${log}`);
        assert.match(mainState.message ?? "", /the Pod's only sidecars are native: the kubelet stops them/);
      },
    );

    test(
      "a native sidecar killed mid-run: the kubelet restarts it, the program runs on undisturbed, proa exits with its status, and the summary lists the restart",
      NATIVE,
      async (t) => {
        const ns = await namespace(t);
        const program = "echo the program started; sleep 12; echo the program ends; exit 0";
        const name = await createPod(
          ns,
          podManifest("native-killed", [main([], program)], { initContainers: [nativeSidecar(1)] }),
        );
        // Watched from the start, so that the second in which the kubelet shows the kill is seen.
        const ended = untilTerminated(ns, name, 180_000);
        ended.catch(() => {}); // awaited below
        await untilProgramStarted(ns, name);
        await killWhenRunning(ns, name, "sidecar");
        const { pod, versions } = await ended;
        const log = await cluster.logs(ns, name, "main");

        assert.ok(seenExit(versions, "sidecar", 137), "the kubelet reported the sidecar dead of SIGKILL (137)");
        assert.ok(restarts(versions, "sidecar") >= 1, "and restarted it");
        assert.match(log, /the program ends/, "the program ran to its end");
        assert.ok(
          !proaLog(log).some((r) => /^passing SIG/.test(r.msg)),
          `proa signalled nothing to the program: ${log}`,
        );
        assert.equal(proaLog(log).find((r) => r.msg === "program exited")?.code, 0, log);
        assert.equal(terminated(pod, "main").exitCode, 0, log);
        assert.equal(pod.status?.phase, "Succeeded");
        // The run's watch (the run-phase work, #33) reports a native sidecar's restart: not a death.
        const events = summaryOf(log)?.sidecars ?? [];
        assert.ok(
          events.some((e) => e.name === "sidecar" && (e.kind === "restarting" || e.kind === "restarted") && !e.stopped),
          `the summary lists the restart: ${JSON.stringify(events)}`,
        );
      },
    );

    // Runs on every kubelet: #34's item 3 on the real node, a shutdown request to a sidecar the Pod shows dead.
    test("a regular sidecar killed mid-run under restartPolicy Never: proa's shutdown request to it is not sent, or not retried once the Pod shows it dead", async (t) => {
      const ns = await namespace(t);
      const program = "echo the program started; sleep 8; echo the program ends; exit 0";
      const name = await createPod(ns, podManifest("regular-killed", [main(SHUTDOWN, program), sidecar(1)]));
      const ended = untilTerminated(ns, name, 180_000);
      ended.catch(() => {}); // awaited below
      await untilProgramStarted(ns, name);
      await killWhenRunning(ns, name, "sidecar");
      const { pod } = await ended;
      const log = await cluster.logs(ns, name, "main");

      assert.equal(terminated(pod, "sidecar").exitCode, 137);
      const request = (proaLog(log).find((r) => r.msg === "summary") as any)?.shutdown?.requests?.[0];
      t.diagnostic(`proa's request: ${JSON.stringify(request)}`);
      assert.match(
        String(request?.error),
        /^(not sent|connection refused, not retried): sidecar exited 137 and will not be restarted \(restartPolicy Never\)$/,
        log,
      );
      assert.ok(request.attempts <= 2, `at most the one attempt made before the Pod showed the death: ${log}`);
      assert.match(
        terminated(pod, "main").message ?? "",
        /POST http:\/\/localhost:8080\/shutdown: (not sent|connection refused, not retried)/,
      );
    });

    test("own container, not the first, found without --container: by the real termination-log mount, and by the real cgroup when that mount is gone", async (t) => {
      const ns = await namespace(t);
      // sidecar first: had proa taken the first container for its own, it would not wait for the sidecar, and the
      // program would find it not ready.
      const byMount = podManifest("by-mount", [sidecar(3), main(SHUTDOWN, USES_READY_SIDECAR)]);
      // CAP_SYS_ADMIN only to unmount /dev/termination-log in the container's own mount namespace.
      const byCgroup = podManifest("by-cgroup", [
        sidecar(3),
        {
          ...main(SHUTDOWN, USES_READY_SIDECAR),
          command: ["sh", "-c", 'umount /dev/termination-log && exec node /proa/proa.js "$@"', "sh"],
          securityContext: { capabilities: { add: ["SYS_ADMIN"] } },
        },
      ]);
      await Promise.all([createPod(ns, byMount), createPod(ns, byCgroup)]);
      const [mount, cgroup] = await Promise.all([untilTerminated(ns, "by-mount"), untilTerminated(ns, "by-cgroup")]);

      for (const [result, rule] of [
        [mount, /\/proc\/self\/mountinfo/],
        [cgroup, /\/proc\/self\/cgroup/],
      ] as const) {
        const name = result.pod.metadata!.name!;
        const log = await cluster.logs(ns, name, "main");
        assert.equal(terminated(result.pod, "main").exitCode, 0, `${name}: ${log}`);
        assert.match(log, /the sidecar was ready/, name);
        // proa decides again on each Pod update. The cgroup rule needs main's containerID in the Pod's status, which
        // the kubelet may not have reported yet when proa first reads the Pod: until then proa takes the first
        // container, and waits for "main" too, which is ready as soon as that same status reports it running.
        const decisions = proaLog(log).filter((r) => typeof r.rule === "string");
        assert.match(decisions.at(-1)?.msg ?? "", /\bmain$/, `${name}: ${log}`);
        assert.match(String(decisions.at(-1)?.rule), rule, name);
        if (name === "by-mount") assert.equal(decisions.length, 1, `the mount is there from the start: ${log}`);
        assert.equal(terminated(result.pod, "sidecar").exitCode, 0, name);
      }
    });

    test("a failing program: the Job fails, main's exit code is the program's", async (t) => {
      const ns = await namespace(t);
      const job = {
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: { name: "fails" },
        spec: {
          backoffLimit: 0,
          template: {
            spec: podManifest("unused", [main(SHUTDOWN, "echo the program fails; exit 7"), sidecar(1)]).spec,
          },
        },
      };
      await cluster.server.api("POST", `/apis/batch/v1/namespaces/${ns}/jobs`, job);
      const created = await cluster.watchPods(ns, "labelSelector=job-name=fails", (pods) => pods.size > 0, 60_000);
      const { pod } = await untilTerminated(ns, [...created.latest.keys()][0]!);
      const log = await cluster.logs(ns, pod.metadata!.name!, "main");
      assert.equal(terminated(pod, "main").exitCode, 7, log);
      assert.equal(terminated(pod, "main").reason, "Error");
      assert.equal(terminated(pod, "sidecar").exitCode, 0, "the sidecar was shut down all the same");
      assert.equal(pod.status?.phase, "Failed");
      // From 1.31 the Job gets FailureTarget first, and Failed once its Pod is done with.
      const status = await untilJob(ns, "fails", (s) => !!condition(s, "Failed"), 30_000);
      assert.equal(status?.failed, 1);
      assert.equal(status?.succeeded, undefined);
    });

    // Deletion: the kubelet sends SIGTERM to every container at once and, while it stops them, reports no container
    // status until all have stopped (kubernetes/kubernetes#106896, #128820). proa passes the signal on, sends its
    // shutdown requests, and exits with the program's status without waiting for exits it cannot see (README's "Jobs,
    // restarts and deletion"). A 30 s grace period, so that waiting it out could not pass for being quick.
    const DELETION_GRACE_SECONDS = 30;
    const RUNS_UNTIL_SIGTERM =
      "trap 'echo the program got SIGTERM; exit 42' TERM; echo the program started; while true; do sleep 0.2; done";
    const THE_KUBELET_STOPS_THEM = /^ {2}the Pod is being deleted: the kubelet stops the sidecars$/m;

    /** `kubectl delete pod --grace-period=SECONDS`; returns when the DELETE was sent. */
    async function deletePod(ns: string, name: string, graceSeconds: number): Promise<number> {
      const sentAt = Date.now();
      await cluster.server.api("DELETE", `/api/v1/namespaces/${ns}/pods/${name}`, {
        apiVersion: "v1",
        kind: "DeleteOptions",
        gracePeriodSeconds: graceSeconds,
      });
      return sentAt;
    }
    /** The latest finishedAt of the Pod's containers, in seconds (the kubelet's times are whole seconds, cut down). */
    const lastFinished = (pod: Pod) =>
      Math.max(
        ...((pod.status?.containerStatuses ?? []) as KubeletStatus[]).map((s) =>
          seconds(s.state?.terminated?.finishedAt ?? s.lastState?.terminated?.finishedAt),
        ),
      );
    const wholeSecond = (ms: number) => Math.floor(ms / 1000);
    const iso = (ms: number) => new Date(ms).toISOString();

    test(`kubectl delete pod with job.yaml's sidecar (it exits on SIGTERM) and a ${DELETION_GRACE_SECONDS} s grace period: every container terminated within 5 s of the DELETE, main with the program's code, and its message says the kubelet stops the sidecars`, async (t) => {
      const ns = await namespace(t);
      const name = await createPod(
        ns,
        podManifest("deleted", [main(SHUTDOWN, RUNS_UNTIL_SIGTERM), sidecar(0)], {
          terminationGracePeriodSeconds: DELETION_GRACE_SECONDS,
        }),
      );
      await untilProgramStarted(ns, name);
      const sentAt = await deletePod(ns, name, DELETION_GRACE_SECONDS);
      const { pod, gone, stoppedAt } = await untilStopped(ns, `fieldSelector=metadata.name=${name}`, name, 60_000);

      const mainState = terminated(pod, "main");
      const sidecarState = terminated(pod, "sidecar");
      const afterDelete = lastFinished(pod) - wholeSecond(sentAt);
      t.diagnostic(
        `DELETE at ${iso(sentAt)}; main finished at ${mainState.finishedAt}, the sidecar at ${sidecarState.finishedAt}: all within ${afterDelete} s of the DELETE's second; ` +
          `the test saw every container stopped ${((stoppedAt - sentAt) / 1000).toFixed(1)} s after the DELETE (the Pod ${gone ? "gone" : "still there"})`,
      );
      assert.equal(mainState.exitCode, 42, `the program's own exit code (never 137): ${JSON.stringify(mainState)}`);
      assert.equal(sidecarState.exitCode, 0, JSON.stringify(sidecarState));
      assert.ok(
        afterDelete <= 5,
        `every container terminated within 5 s of the DELETE at ${iso(sentAt)}, not near the end of its ${DELETION_GRACE_SECONDS} s grace period: ${JSON.stringify(pod.status?.containerStatuses)}`,
      );
      assert.ok(
        stoppedAt - sentAt <= 10_000,
        `and the API reported it soon after: ${(stoppedAt - sentAt) / 1000} s after the DELETE`,
      );
      const message = mainState.message ?? "";
      assert.match(message, THE_KUBELET_STOPS_THEM, message);
      assert.doesNotMatch(
        message,
        /still running/,
        `proa could not see the sidecar's exit, and does not claim it was still running: ${message}`,
      );
      assert.doesNotMatch(message, /more characters/, `no line of it cut: ${message}`);
    });

    test(`kubectl delete pod with a sidecar that ignores SIGTERM and exits only on proa's request, ${DELETION_GRACE_SECONDS} s grace period: the program gets SIGTERM, every container terminated within 5 s of the program's exit`, async (t) => {
      const ns = await namespace(t);
      // As a proxy draining its connections would: without proa's request the kubelet would kill it at the end of the
      // grace period (137).
      const stubborn = {
        ...sidecar(0),
        command: [
          "node",
          "-e",
          [
            'process.on("SIGTERM", () => console.log("sidecar: SIGTERM ignored"));',
            'require("node:http").createServer((req, res) => {',
            '  if (req.url === "/shutdown") { console.log("sidecar: received POST /shutdown"); res.end("bye", () => process.exit(0)); }',
            "  else res.end();",
            "}).listen(8080);",
          ].join("\n"),
        ],
      };
      const name = await createPod(
        ns,
        podManifest("deleted", [main(SHUTDOWN, RUNS_UNTIL_SIGTERM), stubborn], {
          terminationGracePeriodSeconds: DELETION_GRACE_SECONDS,
        }),
      );
      await untilProgramStarted(ns, name);
      // Followed from now: the kubelet removes a deleted Pod's logs as soon as its containers have stopped.
      const follows = ["main", "sidecar"].map((container) => cluster.followLog(ns, name, container, 60_000));
      t.after(() => follows.forEach((f) => f.stop()));
      const sentAt = await deletePod(ns, name, DELETION_GRACE_SECONDS);
      const { pod, versions } = await untilStopped(ns, `fieldSelector=metadata.name=${name}`, name, 60_000);
      const [mainLog = "", sidecarLog = ""] = await Promise.all(follows.map((f) => f.text));

      const mainState = terminated(pod, "main");
      const sidecarState = terminated(pod, "sidecar");
      const programExit = proaLog(mainLog).find((r) => r.msg === "program exited");
      assert.ok(programExit, `proa logged the program's exit:\n${mainLog}`);
      const programExitedAt = Date.parse(String(programExit.time));
      const afterExit = lastFinished(pod) - wholeSecond(programExitedAt);
      // Found here: while it kills a Pod's containers the kubelet (1.20) reports no status until all have stopped, so
      // proa cannot see the sidecar's exit through the Pod. The line shows what the Pod showed.
      const sidecarExitSeen = versions.some(
        (p) => maybeStatus(p, "sidecar")?.state?.terminated && maybeStatus(p, "main")?.state?.running,
      );
      t.diagnostic(
        `DELETE at ${iso(sentAt)}; the program exited at ${iso(programExitedAt)}; the sidecar finished at ${sidecarState.finishedAt}, main at ${mainState.finishedAt}: within ${afterExit} s of the program's exit's second; ` +
          `a Pod status with the sidecar terminated while main ran: ${sidecarExitSeen ? "seen" : "never"}`,
      );
      assert.equal(programExit.code, 42, mainLog);
      assert.match(mainLog, /the program got SIGTERM/);
      assert.equal(mainState.exitCode, 42, `the program's own exit code (never 137): ${JSON.stringify(mainState)}`);
      assert.match(
        sidecarLog,
        /sidecar: SIGTERM ignored/,
        "the kubelet's SIGTERM reached the sidecar, which ignored it",
      );
      assert.match(sidecarLog, /sidecar: received POST \/shutdown/);
      assert.equal(
        sidecarState.exitCode,
        0,
        `the sidecar exited on proa's request, was not killed: ${JSON.stringify(sidecarState)}`,
      );
      assert.ok(
        afterExit <= 5,
        `every container terminated within 5 s of the program's exit at ${iso(programExitedAt)}: ${JSON.stringify(pod.status?.containerStatuses)}\n${mainLog}`,
      );
      const message = mainState.message ?? "";
      assert.match(message, THE_KUBELET_STOPS_THEM, message);
      assert.match(message, /POST http:\/\/localhost:8080\/shutdown: 200/, message);
      assert.doesNotMatch(message, /still running/, message);
    });

    // -------------------------------------------------------------------------------------------------------------
    // restartPolicy OnFailure: the kubelet restarts main in the same Pod; the sidecar must still be there for it.

    /** A Job of proa and job.yaml's sidecar under restartPolicy OnFailure, with /work an emptyDir that outlives main's
     * restarts. */
    const onFailureJob = (
      name: string,
      program: string,
      backoffLimit: number,
      graceSeconds: number,
      sidecarReadyAfterSeconds = 1,
    ) => ({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name },
      spec: {
        backoffLimit,
        template: {
          spec: podManifest(
            "unused",
            [
              main(SHUTDOWN, program, { volumeMounts: [{ name: "work", mountPath: "/work" }] }),
              sidecar(sidecarReadyAfterSeconds),
            ],
            {
              restartPolicy: "OnFailure",
              terminationGracePeriodSeconds: graceSeconds,
              volumes: [{ name: "work", emptyDir: {} }],
            },
          ).spec,
        },
      },
    });

    /** Creates the Job and returns its (one, under OnFailure) Pod's name. */
    async function createJob(ns: string, job: { metadata: { name: string } }): Promise<string> {
      await cluster.server.api("POST", `/apis/batch/v1/namespaces/${ns}/jobs`, job);
      const created = await cluster.watchPods(
        ns,
        `labelSelector=job-name=${job.metadata.name}`,
        (pods) => pods.size > 0,
        60_000,
      );
      return [...created.latest.keys()][0]!;
    }
    /** How the Job ended and how many seconds after its creation, for the diagnostic line. */
    const jobEnding = async (ns: string, name: string) => {
      const job = await cluster.server.api("GET", `/apis/batch/v1/namespaces/${ns}/jobs/${name}`);
      const ended = ["Complete", "Failed"].map((type) => condition(job.status, type)).find(Boolean);
      if (!ended) return "the Job has not ended";
      return `the Job ended ${ended.type}${ended.reason ? ` (${ended.reason})` : ""} ${seconds(ended.lastTransitionTime) - seconds(job.metadata.creationTimestamp)} s after its creation`;
    };
    const LEFT_RUNNING = /sidecars left running for the restart \(restartPolicy OnFailure\)/;

    test("restartPolicy OnFailure, a program that fails once and then succeeds: the Job succeeds; main restarted once and found the sidecar ready; the sidecar, never restarted, ran through the failure and was shut down after the success", async (t) => {
      const ns = await namespace(t);
      const program = `if [ -e /work/tried ]; then ${USES_READY_SIDECAR}; echo the second try succeeds; exit 0; fi; touch /work/tried; echo the first try fails; exit 5`;
      const podName = await createJob(ns, onFailureJob("retried", program, 3, GRACE_SECONDS, 2));
      // main's first run, followed while it runs: the kubelet removes it (and `logs --previous`) once the Pod has ended.
      // It lasts at least the sidecar's 2 s to readiness.
      await cluster.watchPods(
        ns,
        `fieldSelector=metadata.name=${podName}`,
        (pods) => !!maybeStatus(pods.get(podName), "main")?.state?.running,
        60_000,
      );
      const firstRun = cluster.followLog(ns, podName, "main", 60_000);
      t.after(firstRun.stop);
      const { pod, versions } = await untilStopped(ns, `fieldSelector=metadata.name=${podName}`, podName, 120_000);
      const status = await untilJob(ns, "retried", (s) => !!condition(s, "Complete") || !!condition(s, "Failed"));
      const [firstLog, secondLog, sidecarLog] = await Promise.all([
        firstRun.text,
        cluster.logs(ns, podName, "main"),
        cluster.logs(ns, podName, "sidecar"),
      ]);

      const mainStatus = statusOf(pod, "main");
      const sidecarStatus = statusOf(pod, "sidecar");
      // The first run as the versions showed it: 1.33+ clears lastState in the Pod's last update.
      const first = earlierRun(versions, "main");
      const mainState = terminated(pod, "main");
      const sidecarState = terminated(pod, "sidecar");
      t.diagnostic(
        `${await jobEnding(ns, "retried")}; main's first run finished at ${first?.finishedAt}, its second started at ${mainState.startedAt}; ` +
          `the sidecar ran from ${sidecarState.startedAt} to ${sidecarState.finishedAt}`,
      );
      assert.ok(condition(status, "Complete"), `the Job succeeded: ${JSON.stringify(status)}`);
      assert.equal(status.succeeded, 1);
      assert.equal(pod.status?.phase, "Succeeded");
      assert.equal(mainStatus.restartCount, 1, JSON.stringify(mainStatus));
      assert.equal(first?.exitCode, 5, `main's first run: ${JSON.stringify(first)}`);
      assert.match(first?.message ?? "", LEFT_RUNNING, first?.message);
      assert.doesNotMatch(first?.message ?? "", /still running/);
      assert.match(firstLog, /the first try fails/);
      assert.ok(
        !proaLog(firstLog).some((r) => r.msg === "shutting the sidecars down"),
        `the first proa sent no shutdown request:\n${firstLog}`,
      );
      // The restarted proa found the sidecar ready, and the program used it.
      assert.match(secondLog, /the sidecar was ready/, secondLog);
      assert.match(secondLog, /the second try succeeds/);
      assert.equal(mainState.exitCode, 0, secondLog);
      // The kubelet reported the sidecar running and ready after main's first run had failed.
      const failedRun = (p: Pod) =>
        [maybeStatus(p, "main")?.state?.terminated, maybeStatus(p, "main")?.lastState?.terminated].some(
          (s) => s?.exitCode === 5,
        );
      assert.ok(
        versions.some(
          (p) => failedRun(p) && maybeStatus(p, "sidecar")?.state?.running && maybeStatus(p, "sidecar")?.ready === true,
        ),
        "a Pod status with main's first run failed and the sidecar running, ready",
      );
      assert.equal(sidecarStatus.restartCount, 0, `the sidecar was never restarted: ${JSON.stringify(sidecarStatus)}`);
      assert.ok(
        seconds(sidecarState.startedAt) <= seconds(first?.finishedAt) &&
          seconds(sidecarState.finishedAt) >= seconds(mainState.startedAt),
        "the sidecar's one run spans main's restart",
      );
      // Shut down once, by the second proa, after the success.
      assert.equal(sidecarState.exitCode, 0, JSON.stringify(sidecarState));
      assert.equal(sidecarState.reason, "Completed");
      assert.equal(sidecarLog.match(/received POST \/shutdown/g)?.length, 1, sidecarLog);
      assert.ok(
        seconds(sidecarState.finishedAt) <= seconds(mainState.finishedAt),
        "proa waited for the sidecar's exit",
      );
    });

    test("restartPolicy OnFailure, a program that always fails, backoffLimit 1: the Job fails (BackoffLimitExceeded), and once its controller deletes the Pod, no container runs within 5 s", async (t) => {
      const ns = await namespace(t);
      // The first try fails at once; the second, which runs when the Job gives up, is still running then, so that the
      // deletion reaches proa during the program, not between two runs.
      const program =
        "if [ -e /work/tried ]; then echo the program runs again; sleep 20; fi; touch /work/tried; echo the program fails; exit 4";
      const podName = await createJob(ns, onFailureJob("always-fails", program, 1, DELETION_GRACE_SECONDS));
      // Watched from now: from 1.31 the Job is Failed only once its Pod is gone, with FailureTarget before.
      const stopped = untilStopped(ns, `fieldSelector=metadata.name=${podName}`, podName, 180_000);
      stopped.catch(() => {}); // awaited below; a failure before then must not go unhandled
      await untilJob(
        ns,
        "always-fails",
        (s) => !!condition(s, "Complete") || !!condition(s, "Failed") || !!condition(s, "FailureTarget"),
      );
      const failedSeenAt = Date.now();
      const { pod, versions, gone, stoppedAt } = await stopped;
      const status = await untilJob(ns, "always-fails", (s) => !!condition(s, "Complete") || !!condition(s, "Failed"));

      const deleting = versions.find((p) => p.metadata?.deletionTimestamp);
      assert.ok(deleting, `the Job's controller deleted the Pod: ${JSON.stringify(pod.metadata)}`);
      const deletedAt =
        seconds(deleting.metadata!.deletionTimestamp) - Number(deleting.metadata!.deletionGracePeriodSeconds);
      const afterDelete = lastFinished(pod) - deletedAt;
      t.diagnostic(
        `${await jobEnding(ns, "always-fails")}; the Pod's deletion began at ${iso(deletedAt * 1000)}, every container had terminated ${afterDelete} s later; ` +
          `the test saw it ${((stoppedAt - failedSeenAt) / 1000).toFixed(1)} s after it saw the Job fail (the Pod ${gone ? "gone" : "still there"})`,
      );
      assert.equal(condition(status, "Failed")?.reason, "BackoffLimitExceeded", JSON.stringify(status));
      assert.equal(status.succeeded, undefined);
      const mainStatus = statusOf(pod, "main");
      assert.ok(mainStatus.restartCount >= 1, JSON.stringify(mainStatus));
      const firstRun = earlierRun(versions, "main");
      assert.equal(firstRun?.exitCode, 4, `main's first run failed: ${JSON.stringify(firstRun)}`);
      assert.match(firstRun?.message ?? "", LEFT_RUNNING);
      assert.equal(statusOf(pod, "sidecar").restartCount, 0, "the sidecar was left running through main's restart");
      // The second run got the kubelet's SIGTERM in its program (128 + 15), and said what happened to the sidecars.
      const lastRun = terminated(pod, "main");
      assert.equal(lastRun.exitCode, 143, JSON.stringify(mainStatus));
      assert.match(lastRun.message ?? "", THE_KUBELET_STOPS_THEM, lastRun.message);
      assert.doesNotMatch(lastRun.message ?? "", /still running/);
      assert.ok(
        afterDelete <= 5,
        `no container ran 5 s after the deletion, with its ${DELETION_GRACE_SECONDS} s grace period: ${JSON.stringify(pod.status?.containerStatuses)}`,
      );
      assert.ok(
        stoppedAt - failedSeenAt <= 10_000,
        `and the API reported it soon after: ${(stoppedAt - failedSeenAt) / 1000} s`,
      );
    });

    test("shareProcessNamespace with --kill NAME: a sidecar process without a shutdown endpoint gets SIGTERM from proa", async (t) => {
      const ns = await namespace(t);
      const sleeper = {
        name: "sleeper",
        image: cluster.appImage,
        imagePullPolicy: "Never",
        command: ["sleep", "3600"],
      };
      const program = "tr '\\0' '\\n' </proc/1/cmdline | head -n 1 | sed 's/^/PID 1 is /'";
      const name = await createPod(
        ns,
        podManifest("shared", [main(["--kill", "sleep"], program), sleeper], {
          shareProcessNamespace: true,
          terminationGracePeriodSeconds: 30,
        }),
      );
      const { pod } = await untilTerminated(ns, name);
      const log = await cluster.logs(ns, name, "main");

      assert.equal(terminated(pod, "main").exitCode, 0, log);
      assert.match(log, /^PID 1 is \/pause$/m, "the Pod's shared PID namespace, whose PID 1 is the sandbox's pause");
      const sleeperState = terminated(pod, "sleeper");
      assert.equal(
        sleeperState.exitCode,
        143,
        `sleep died of proa's SIGTERM (128+15), not the kubelet's SIGKILL: ${JSON.stringify(sleeperState)}`,
      );
      assert.ok(
        seconds(sleeperState.finishedAt) - seconds(terminated(pod, "main").startedAt) < 20,
        "long before the 30 s grace period or sleep's hour",
      );
    });

    test("hostPID: true with --kill NAME: proa signals the sidecar's process of that name, never the host's of the same name", async (t) => {
      // A process on the host, outside any Pod, with the name the sidecar's process has: the test's own, killed after.
      const hostVictim = spawn(process.execPath, ["-e", "setInterval(() => {}, 60_000)"], {
        argv0: "proa-hostvictim",
        stdio: "ignore",
      });
      t.after(() => void hostVictim.kill("SIGKILL"));
      await once(hostVictim, "spawn");
      let hostVictimExit: unknown;
      hostVictim.on("exit", (code, signal) => (hostVictimExit = { code, signal }));

      const ns = await namespace(t);
      // The sidecar's process is named by argv[0] (a symlink to node); node dies of SIGTERM, so 143 means proa's.
      const victim = {
        name: "victim",
        image: cluster.appImage,
        imagePullPolicy: "Never",
        command: [
          "sh",
          "-c",
          "ln -s /usr/local/bin/node /tmp/proa-hostvictim && exec /tmp/proa-hostvictim -e 'setInterval(() => {}, 60000)'",
        ],
      };
      // The program shows the real cgroup texts: its own, and those of every process of that name it can see.
      const program = [
        "echo own cgroup:; cat /proc/self/cgroup",
        "for d in /proc/[0-9]*; do a=`tr '\\0' '\\n' <$d/cmdline 2>/dev/null | head -n 1`; case \"$a\" in *proa-hostvictim) echo \"cgroup of $a, pid ${d#/proc/}:\"; cat $d/cgroup;; esac; done",
      ].join("; ");
      const proa = main(["--kill", "proa-hostvictim"], program, {
        env: [...downwardApi, { name: "PROA_LOG", value: "debug" }],
      });
      const name = await createPod(
        ns,
        podManifest("hostpid", [proa, victim], { hostPID: true, terminationGracePeriodSeconds: 30 }),
      );
      const { pod } = await untilTerminated(ns, name);
      const log = await cluster.logs(ns, name, "main");
      t.diagnostic(
        log
          .split("\n")
          .filter((line) => !line.startsWith("{"))
          .join("\n"),
      );

      assert.equal(terminated(pod, "main").exitCode, 0, log);
      assert.match(
        log,
        new RegExp(`^cgroup of proa-hostvictim, pid ${hostVictim.pid}:$`, "m"),
        `the host's process is visible to proa's Pod: ${log}`,
      );
      const victimState = terminated(pod, "victim");
      assert.equal(
        victimState.exitCode,
        143,
        `the sidecar's process died of proa's SIGTERM: ${JSON.stringify(victimState)}`,
      );
      assert.equal(hostVictimExit, undefined, "the host's process of the same name is still running");
      assert.doesNotThrow(() => process.kill(hostVictim.pid!, 0));
      const message = terminated(pod, "main").message ?? "";
      const sigterms = message.split("\n").filter((line) => line.startsWith("  SIGTERM to "));
      assert.equal(sigterms.length, 1, message);
      assert.doesNotMatch(sigterms[0]!, new RegExp(`\\(pid ${hostVictim.pid}\\)`), message);
      const outside = proaLog(log).find((r) => r.msg === "processes outside proa's Pod are never signalled");
      assert.ok(
        (outside?.outOfScope as string[] | undefined)?.some((entry) => entry.startsWith(`${hostVictim.pid} `)),
        `proa saw the host's process and left it out: ${log}`,
      );
    });

    test("a sidecar that dies before it is ready, under restartPolicy Never: the program never runs, main exits 1 naming it", async (t) => {
      const ns = await namespace(t);
      const doomed = {
        name: "doomed",
        image: cluster.appImage,
        imagePullPolicy: "Never",
        command: ["sh", "-c", "echo the sidecar crashes; sleep 2; exit 3"],
        readinessProbe: { exec: { command: ["false"] }, periodSeconds: 1 },
      };
      const name = await createPod(ns, podManifest("doomed", [main([], "echo the program ran"), doomed]));
      const { pod } = await untilTerminated(ns, name);
      const log = await cluster.logs(ns, name, "main");

      assert.equal(terminated(pod, "doomed").exitCode, 3);
      assert.equal(terminated(pod, "main").exitCode, 1, log);
      assert.doesNotMatch(log, /the program ran/);
      assert.ok(
        proaLog(log).some((r) => r.level === "error" && /doomed/.test(r.msg)),
        `proa's error names the sidecar:\n${log}`,
      );
    });

    test("the termination message the kubelet reports in state.terminated.message: the program's status first; under FallbackToLogsOnError, the log's tail", async (t) => {
      const ns = await namespace(t);
      // Neither field set: the server fills in /dev/termination-log and File, and proa reads them from its Pod.
      const written = podManifest("message", [main(SHUTDOWN, "exit 5"), sidecar(1)]);
      const fallback = podManifest("fallback", [
        main(SHUTDOWN, "exit 5", { terminationMessagePolicy: "FallbackToLogsOnError" }),
        sidecar(1),
      ]);
      await Promise.all([createPod(ns, written), createPod(ns, fallback)]);
      const [{ pod }, { pod: fallbackPod }] = await Promise.all([
        untilTerminated(ns, "message"),
        untilTerminated(ns, "fallback"),
      ]);
      const log = await cluster.logs(ns, "message", "main");

      const spec = pod.spec?.containers?.find((c) => c.name === "main");
      assert.deepEqual(
        [spec?.terminationMessagePath, spec?.terminationMessagePolicy],
        ["/dev/termination-log", "File"],
      );
      const state = terminated(pod, "main");
      assert.equal(state.exitCode, 5, log);
      const message = state.message ?? "";
      const lines = message.split("\n");
      assert.match(
        lines[0] ?? "",
        /^program exited 5 after \S+; sidecars stopped: sidecar \(POST 200, exited 0\)$/,
        `the first line: ${JSON.stringify(state)}`,
      );
      assert.match(message, /\n {2}POST http:\/\/localhost:8080\/shutdown: 200 in \S+\n/);
      assert.equal(lines.at(-1), "proa exited 5", message);
      assert.ok(Buffer.byteLength(message) <= 4096);
      const wrote = proaLog(log).find((r) => r.msg === "wrote the run's summary to /dev/termination-log");
      assert.equal(wrote?.from, "the Pod spec", log);
      assert.ok(
        proaLog(log).some((r) => r.msg === "summary" && r.status === 5),
        log,
      );

      // A failed program under FallbackToLogsOnError: proa leaves the file empty, and the kubelet reports the log's end.
      const fallbackState = terminated(fallbackPod, "main");
      assert.equal(fallbackState.exitCode, 5);
      assert.doesNotMatch(fallbackState.message ?? "", /^program exited/, JSON.stringify(fallbackState));
      assert.match(fallbackState.message ?? "", /"msg":"exiting","status":5/, JSON.stringify(fallbackState));
    });

    // -------------------------------------------------------------------------------------------------------------
    // A sidecar that dies while the program runs (#33), killed from the host with SIGKILL as the OOM killer or a
    // crash would end it (cluster.killContainer). Timed on /proc/uptime, the one clock the host and every container
    // read alike (the app image's busybox date has no %N).

    /** A second sidecar, job.yaml's on port 8081. */
    const victim = () => ({
      ...sidecar(0, "victim"),
      env: [
        { name: "PORT", value: "8081" },
        { name: "READY_AFTER_SECONDS", value: "0" },
      ],
      readinessProbe: { httpGet: { path: "/ready", port: 8081 }, periodSeconds: 1 },
    });
    /** The program: runs until /work/go-on appears (or forever), and says when it gets SIGTERM. */
    const RUNS_UNTIL_TOLD =
      "trap 'read up rest < /proc/uptime; echo the program got SIGTERM at uptime $up; exit 42' TERM; echo the program started; " +
      "while [ ! -e /work/go-on ]; do sleep 0.2; done; echo the program ends; exit 0";

    /** A Job of proa, job.yaml's sidecar and the victim, with /work an emptyDir the test can write into from the host.
     * Under OnFailure the Job controller counts every container's restarts against backoffLimit, the sidecars' too
     * (1.20's pastBackoffLimitOnFailure): 3 lets the victim restart once and the Job still succeed. */
    const victimJob = (name: string, restartPolicy: "Never" | "OnFailure") => ({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name },
      spec: {
        backoffLimit: restartPolicy === "Never" ? 0 : 3,
        template: {
          spec: podManifest(
            "unused",
            [
              main([...SHUTDOWN, "--shutdown-http-post", "http://localhost:8081/shutdown"], RUNS_UNTIL_TOLD, {
                volumeMounts: [{ name: "work", mountPath: "/work" }],
              }),
              sidecar(0),
              victim(),
            ],
            { restartPolicy, volumes: [{ name: "work", emptyDir: {} }] },
          ).spec,
        },
      },
    });
    /** The emptyDir "work" of a Pod, as the kubelet lays it out on the host under its --root-dir (node.sh). */
    const workDir = (pod: Pod) =>
      join(cluster.dir, "kubelet", "root", "pods", pod.metadata!.uid!, "volumes", "kubernetes.io~empty-dir", "work");

    /** Until the Pod reports phase (Kubernetes 1.33+ reports it a second or so after the last container stopped). */
    const untilPhase = async (ns: string, name: string, phase: string) =>
      (
        await cluster.watchPods(
          ns,
          `fieldSelector=metadata.name=${name}`,
          (pods) => pods.get(name)?.status?.phase === phase,
          60_000,
        )
      ).latest.get(name)!;

    test("a regular sidecar killed while the program runs, restartPolicy Never: the program gets SIGTERM within 2 s, the Job fails, main exits 69 and its message names the sidecar and its exit code", async (t) => {
      const ns = await namespace(t);
      const podName = await createJob(ns, victimJob("victim-dies", "Never"));
      await untilProgramStarted(ns, podName);
      const killedAt = await killWhenRunning(ns, podName, "victim");
      const { pod } = await untilTerminated(ns, podName, 60_000); // proa stops it in seconds: a miss fails in 1 min, not 2
      const status = await untilJob(ns, "victim-dies", (s) => !!condition(s, "Failed") || !!condition(s, "Complete"));
      const log = await cluster.logs(ns, podName, "main");

      const got = /^the program got SIGTERM at uptime ([\d.]+)$/m.exec(log);
      assert.ok(got, `the program got SIGTERM:\n${log}`);
      const after = Number(got[1]) - killedAt;
      t.diagnostic(
        `the program got SIGTERM ${after.toFixed(2)} s after the sidecar's SIGKILL; ${await jobEnding(ns, "victim-dies")}`,
      );
      assert.ok(after <= 2, `within 2 s of the SIGKILL, not ${after.toFixed(2)} s:\n${log}`);
      const victimState = terminated(pod, "victim");
      assert.equal(victimState.exitCode, 137, JSON.stringify(victimState));
      assert.equal(statusOf(pod, "victim").restartCount, 0);
      const mainState = terminated(pod, "main");
      assert.equal(
        mainState.exitCode,
        69,
        `proa's own status for a sidecar that died: ${JSON.stringify(mainState)}\n${log}`,
      );
      assert.equal(terminated(pod, "sidecar").exitCode, 0, "the other sidecar was shut down");
      const message = mainState.message ?? "";
      t.diagnostic(`main's termination message:\n${message}`);
      assert.match(message, /\bvictim\b[^\n]*\b137\b/, `the message names the sidecar and its exit code: ${message}`);
      assert.match(message, /\b42\b/, `and the program's own status: ${message}`);
      assert.equal((await untilPhase(ns, podName, "Failed")).status?.phase, "Failed");
      assert.ok(condition(status, "Failed"), `the Job failed: ${JSON.stringify(status)}`);
      assert.equal(status.succeeded, undefined);
    });

    test("a regular sidecar killed while the program runs, restartPolicy OnFailure: the kubelet restarts it, the program runs on undisturbed to success, and the summary lists the restart", async (t) => {
      const ns = await namespace(t);
      const podName = await createJob(ns, victimJob("victim-restarts", "OnFailure"));
      await untilProgramStarted(ns, podName);
      await killWhenRunning(ns, podName, "victim");
      // What the kubelet reports: the victim running again after one restart, its last run killed.
      const restarted = (
        await cluster.watchPods(
          ns,
          `fieldSelector=metadata.name=${podName}`,
          (pods) => {
            const s = maybeStatus(pods.get(podName), "victim");
            return !!s && s.restartCount >= 1 && !!s.state?.running;
          },
          60_000,
        )
      ).latest.get(podName)!;
      // proa saw it too (its log names the sidecar), before the program is let finish.
      for (const deadline = Date.now() + 30_000; ; await new Promise((resolve) => setTimeout(resolve, 300))) {
        const records = proaLog(await cluster.logs(ns, podName, "main"));
        if (records.some((r) => /victim/.test(JSON.stringify(r)) && /restart/i.test(JSON.stringify(r)))) break;
        assert.ok(Date.now() < deadline, "proa logged the sidecar's restart within 30 s of the kubelet reporting it");
      }
      writeFileSync(join(workDir(restarted), "go-on"), "");
      const status = await untilJob(
        ns,
        "victim-restarts",
        (s) => !!condition(s, "Complete") || !!condition(s, "Failed"),
      ).catch(async (error: Error) => {
        const pod = await cluster.server.api("GET", `/api/v1/namespaces/${ns}/pods/${podName}`);
        const log = await cluster.logs(ns, podName, "main").catch((e: Error) => e.message);
        throw new Error(`${error.message}\nthe Pod's status: ${JSON.stringify(pod.status)}\nproa's log:\n${log}`);
      });
      const { pod } = await untilTerminated(ns, podName);
      const log = await cluster.logs(ns, podName, "main");

      t.diagnostic(await jobEnding(ns, "victim-restarts"));
      assert.ok(condition(status, "Complete"), `the Job succeeded: ${JSON.stringify(status)}\n${log}`);
      assert.doesNotMatch(log, /the program got SIGTERM/, log);
      assert.match(log, /the program ends/, log);
      const mainStatus = statusOf(pod, "main");
      assert.equal(mainStatus.restartCount, 0, `main ran once: ${JSON.stringify(mainStatus)}`);
      assert.equal(terminated(pod, "main").exitCode, 0, log);
      const victimStatus = statusOf(pod, "victim");
      assert.equal(victimStatus.restartCount, 1, JSON.stringify(victimStatus));
      assert.equal(terminated(pod, "sidecar").exitCode, 0, "the sidecar was shut down after the success");
      const message = terminated(pod, "main").message ?? "";
      assert.match(
        message,
        /\bvictim\b[^\n]*restart[^\n]*\b137\b/i,
        `the termination message lists the restart, with its exit code: ${message}`,
      );
      const summary = proaLog(log).find((r) => r.msg === "summary");
      assert.match(JSON.stringify(summary), /victim/, `the summary record names the restarted sidecar: ${log}`);
    });

    // -------------------------------------------------------------------------------------------------------------
    // proa in an image left as it is (job-portable.yaml): the init container copies proa's folder into an emptyDir.

    /** job-portable.yaml's Job with its images swapped for the node's (proa's portable image, busybox alone, and the
     * app image for the sidecar), created beside job.yaml's sidecar ConfigMap; resolves with the finished Pod. */
    async function portableJob(t: TestContext, program?: string) {
      const ns = await namespace(t);
      const images = await cluster.portableImages();
      const { status, body } = await cluster.server.applyYaml(ns, doc("ConfigMap"));
      assert.equal(status, 201, JSON.stringify(body));
      const [job] = jobYamlDocuments(readFileSync(new URL("../../job-portable.yaml", import.meta.url), "utf8"));
      let text = job!.text;
      for (const [from, to] of [
        ["ghcr.io/example/proa:0.1.0-portable", images.proa],
        ["busybox:1.37", images.busybox],
        ["node:24.21.0-bookworm-slim", cluster.appImage],
      ] as const) {
        assert.ok(text.includes(`image: ${from}`), `job-portable.yaml names the image ${from}`);
        text = text.replace(
          new RegExp(`^(\\s*)image: ${from.replaceAll(".", "\\.")}.*$`, "m"),
          `$1image: ${to}\n$1imagePullPolicy: Never`,
        );
      }
      const script = "            - wget -q -O - http://localhost:8080/work\n";
      assert.ok(text.includes(script), "job-portable.yaml's program");
      if (program) text = text.replace(script, `            - ${program}\n`);
      const created = await cluster.server.applyYaml(ns, { ...job!, text });
      assert.equal(created.status, 201, JSON.stringify(created.body?.message ?? created.body));
      // Kubernetes 1.20 silently drops fields it does not know: every key job-portable.yaml writes must come back.
      const returned = jsonKeys(created.body);
      assert.deepEqual(
        [...yamlKeys(text)].filter((key) => !returned.has(key)),
        [],
        "fields the server dropped",
      );
      const pods = await cluster.watchPods(ns, `labelSelector=job-name=${job!.name}`, (p) => p.size > 0, 60_000);
      const podName = [...pods.latest.keys()][0]!;
      const { pod } = await untilTerminated(ns, podName, 180_000);
      const install = await cluster.logs(ns, podName, "proa-install");
      const copied = /proa install: copied 16 files \((\S+) MB\) from \/proa to \/install in (\d+) ms/.exec(install);
      assert.ok(copied, `the init container's log: ${install}`);
      t.diagnostic(`the init container copied ${copied[1]} MB in ${copied[2]} ms`);
      const initState = (pod.status as any)?.initContainerStatuses?.[0]?.state?.terminated;
      assert.equal(initState?.exitCode, 0, JSON.stringify(pod.status));
      return { ns, pod, podName, name: job!.name, mainLog: await cluster.logs(ns, podName, "main") };
    }

    test("an image with no Node.js and no C library, not rebuilt, gets proa from the init container's copy: proa waits for the sidecar, runs the program, shuts the sidecar down, and the Job completes", async (t) => {
      const { ns, pod, podName, name, mainLog } = await portableJob(t);
      const mainState = terminated(pod, "main");
      assert.equal(mainState.exitCode, 0, `${JSON.stringify(mainState)}\n${mainLog}`);
      assert.match(mainLog, /^42 rows copied by the sidecar$/m, "the program's output");
      const log = proaLog(mainLog);
      const ready = log.findIndex((r) => r.msg === "the other containers are ready");
      const started = log.findIndex((r) => r.msg === "program started");
      assert.ok(ready >= 0 && ready < started, `proa waited for the sidecar before the program:\n${mainLog}`);
      const sidecarState = terminated(pod, "sidecar");
      assert.equal(sidecarState.exitCode, 0, JSON.stringify(sidecarState));
      assert.match(await cluster.logs(ns, podName, "sidecar"), /received POST \/shutdown: exiting/);
      const status = await untilJob(ns, name, (s) => s?.succeeded === 1);
      assert.ok(condition(status, "Complete"), JSON.stringify(status));
    });

    test("the same Job whose program fails: the Job fails, and the main container reports the program's status", async (t) => {
      const { ns, pod, podName, name, mainLog } = await portableJob(
        t,
        "wget -q -O - http://localhost:8080/work && exit 3",
      );
      assert.equal(terminated(pod, "main").exitCode, 3, mainLog);
      assert.match(mainLog, /^42 rows copied by the sidecar$/m);
      assert.ok(
        proaLog(mainLog).some((r) => r.msg === "summary" && r.status === 3),
        mainLog,
      );
      assert.equal(terminated(pod, "sidecar").exitCode, 0, "the sidecar was shut down all the same");
      assert.match(await cluster.logs(ns, podName, "sidecar"), /received POST \/shutdown: exiting/);
      const status = await untilJob(ns, name, (s) => s?.failed === 1);
      assert.ok(condition(status, "Failed"), JSON.stringify(status));
    });
  },
);
