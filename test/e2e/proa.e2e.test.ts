// proa end to end: the bundle as a real process against a real kube-apiserver 1.20.2 and etcd (kube-apiserver.sh),
// with a real ServiceAccount token and job.yaml's own Role and RoleBinding. There is no kubelet: the tests write the
// container statuses it would (Kubelet), and each sidecar is a local HTTP server taking its shutdown request, after
// which the test marks the sidecar terminated, as the kubelet would once it has exited.
//
// Outside a real container proa cannot tell which container is its own (no kubelet mounts in /proc/self/mountinfo,
// no container id in /proc/self/cgroup), so PROA_CONTAINER=main is set, as --container would be.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { SIGNAL_REPORTER, startProa, type LogRecord, type ProaProcess } from "../helpers/proa-process.ts";
import {
  apiserverVersion,
  collectionPath,
  jobYamlDocuments,
  jsonKeys,
  Kubelet,
  KubeServer,
  podManifest,
  skipReason,
  yamlKeys,
  type YamlDocument,
} from "./cluster.ts";

const NODE = process.execPath;
const SIDECARS = ["sidecar-1", "sidecar-2"] as const;
type SidecarName = (typeof SIDECARS)[number];

describe(
  `proa against a real kube-apiserver ${apiserverVersion()}`,
  { skip: skipReason(), timeout: 5 * 60_000 },
  () => {
    let scratch: string;
    let server: KubeServer;
    let jobDocs: YamlDocument[];
    const cleanups: (() => unknown)[] = [];
    let namespaces = 0;

    before(async () => {
      scratch = mkdtempSync(join(tmpdir(), "proa-e2e-"));
      jobDocs = jobYamlDocuments();
      try {
        server = await KubeServer.start(join(scratch, "server"));
      } catch (error) {
        await KubeServer.stop(join(scratch, "server")).catch(() => {});
        throw error; // in CI as anywhere: a suite that cannot get its server fails
      }
    });

    /** Runs every cleanup (processes, ports) even when one fails; then fails with the first error. */
    async function cleanUp() {
      const errors: unknown[] = [];
      for (const cleanup of cleanups.splice(0).reverse()) {
        try {
          await cleanup();
        } catch (error) {
          errors.push(error);
        }
      }
      if (errors.length > 0) throw errors[0];
    }

    after(async () => {
      try {
        await cleanUp();
      } finally {
        if (scratch) {
          await KubeServer.stop(join(scratch, "server"));
          rmSync(scratch, { recursive: true, force: true });
        }
      }
    });

    afterEach(cleanUp);

    // -------------------------------------------------------------------------------------------------------------
    // Scaffolding for one scenario: a namespace with job.yaml's ServiceAccount, Role and RoleBinding, a Pod whose
    // sidecars answer shutdown requests, and proa run inside it.

    const doc = (kind: string) => {
      const found = jobDocs.find((d) => d.kind === kind);
      if (!found) throw new Error(`job.yaml has no ${kind}`);
      return found;
    };

    /** A sidecar's shutdown endpoint: records each request, answers 200, then (after exitDelayMs) "exits": the
     * test marks it terminated and closes its port, so later requests are refused as by a sidecar that is gone. */
    class Sidecar {
      readonly requests: { method: string; path: string; at: number }[] = [];
      readonly terminatedWrites: { sentAt: number; doneAt: number }[] = []; // the terminated status writes
      private readonly http: Server;
      readonly url: Promise<string>;
      exited = false;
      private readonly problems: unknown[] = [];
      constructor(
        readonly name: SidecarName,
        private readonly kubelet: Kubelet | undefined,
        private readonly exitDelayMs: number,
      ) {
        this.http = createServer((request, response) => {
          this.requests.push({ method: request.method ?? "", path: request.url ?? "", at: Date.now() });
          response.end("bye\n", () => {
            sleep(this.exitDelayMs)
              .then(() => this.exit(0))
              .catch((error: unknown) => this.problems.push(error));
          });
        });
        this.url = new Promise((resolve) =>
          this.http.listen(0, "127.0.0.1", () =>
            resolve(`http://127.0.0.1:${(this.http.address() as { port: number }).port}/shutdown`),
          ),
        );
        cleanups.push(() => {
          this.close();
          assert.deepEqual(this.problems, [], `${this.name}: writing its terminated status failed`);
        });
      }
      /** The sidecar's process ends with code: its port closes and the kubelet reports it terminated. */
      async exit(code: number) {
        if (this.exited) return;
        this.exited = true;
        this.close();
        if (this.kubelet) this.terminatedWrites.push(await this.kubelet.set({ [this.name]: { terminated: code } }));
      }
      close() {
        this.http.close();
        this.http.closeAllConnections();
      }
    }

    interface Setup {
      ns: string;
      pod: string;
      kubelet: Kubelet;
      sidecars: Record<SidecarName, Sidecar>;
      run(args: string[], program: string[], env?: Record<string, string>): ProaProcess;
    }

    async function setUp(
      t: TestContext,
      options: {
        roleBinding?: boolean;
        roleRules?: object[];
        createPod?: boolean;
        podName?: string;
        exitDelayMs?: number;
        sidecarsReady?: boolean;
        main?: object;
      } = {},
    ): Promise<Setup> {
      const ns = `proa-e2e-${++namespaces}`;
      const pod = options.podName ?? "job-pod";
      await server.createNamespace(ns);
      for (const kind of ["ServiceAccount", "Role", ...(options.roleBinding === false ? [] : ["RoleBinding"])]) {
        if (kind === "Role" && options.roleRules) {
          // job.yaml's Role by name, with other rules
          await server.api("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
            apiVersion: "rbac.authorization.k8s.io/v1",
            kind: "Role",
            metadata: { name: doc("Role").name },
            rules: options.roleRules,
          });
          continue;
        }
        const { status, body } = await server.applyYaml(ns, doc(kind));
        assert.equal(status, 201, `creating job.yaml's ${kind}: ${JSON.stringify(body)}`);
      }
      const kubelet = new Kubelet(server, ns, pod, ["main", ...SIDECARS]);
      if (options.createPod !== false) {
        // Unless a test says otherwise, a termination log that does not exist: no test may write this machine's own.
        const main = options.main ?? {
          terminationMessagePath: join(scratch, ns, "no-such-directory", "termination-log"),
        };
        await server.api(
          "POST",
          `/api/v1/namespaces/${ns}/pods`,
          podManifest(pod, { serviceAccount: doc("ServiceAccount").name, main }),
        );
        const ready = options.sidecarsReady ?? false;
        await kubelet.set({
          main: { running: true, ready: true },
          "sidecar-1": { running: true, ready },
          "sidecar-2": { running: true, ready },
        });
      }
      const sa = await server.serviceAccountDir(join(scratch, ns, "serviceaccount"), ns, doc("ServiceAccount").name);
      const writesStatus = options.createPod !== false ? kubelet : undefined;
      const sidecars = {
        "sidecar-1": new Sidecar("sidecar-1", writesStatus, options.exitDelayMs ?? 0),
        "sidecar-2": new Sidecar("sidecar-2", writesStatus, options.exitDelayMs ?? 0),
      };
      const env = {
        KUBERNETES_SERVICE_HOST: server.env.KUBE_HOST,
        KUBERNETES_SERVICE_PORT: server.env.KUBE_PORT,
        PROA_SERVICE_ACCOUNT_DIR: sa,
        POD_NAME: pod,
        POD_NAMESPACE: ns,
        PROA_CONTAINER: "main", // see the header: no container detection outside a container
      };
      // sidecar-1 stops on POST (as Envoy's /quitquitquit), sidecar-2 on GET.
      const shutdownArgs = [
        "--shutdown-http-post",
        await sidecars["sidecar-1"].url,
        "--shutdown-http-get",
        await sidecars["sidecar-2"].url,
      ];
      const token = readFileSync(join(sa, "token"), "utf8");
      return {
        ns,
        pod,
        kubelet,
        sidecars,
        run(args, program, extraEnv = {}) {
          const proa = startProa([...shutdownArgs, ...args, "--", ...program], { ...env, ...extraEnv });
          cleanups.push(() => stopIfRunning(proa));
          t.after(() => {
            // Whatever happened, the log is JSON lines and never holds the token.
            assert.deepEqual(
              proa.logs.filter((r) => r.level === "NOT JSON"),
              [],
              "every stderr line is a JSON record",
            );
            assert.ok(!proa.stderr().includes(token), "proa never logs the service account token");
          });
          return proa;
        },
      };
    }

    // -------------------------------------------------------------------------------------------------------------
    // Scenarios

    test("every object in job.yaml passes the server's validation (server-side dry run), and no field is dropped", async () => {
      const ns = `proa-e2e-${++namespaces}`;
      await server.createNamespace(ns);
      assert.deepEqual(
        new Set(jobDocs.map((d) => d.kind)),
        new Set(["ConfigMap", "ServiceAccount", "Role", "RoleBinding", "Job"]),
      );
      for (const d of jobDocs) {
        const { status, body } = await server.applyYaml(ns, d, { dryRun: true });
        assert.equal(status, 201, `${d.kind} ${d.name}: ${JSON.stringify(body?.message ?? body)}`);
        assert.equal(body.kind, d.kind);
        // Kubernetes 1.20 silently drops fields it does not know: every key job.yaml writes must come back.
        const returned = jsonKeys(body);
        const dropped = [...yamlKeys(d.text)].filter((key) => !returned.has(key));
        assert.deepEqual(dropped, [], `${d.kind} ${d.name}: fields the server dropped (misspelt or misplaced?)`);
        // A dry run stores nothing.
        const { status: stored } = await server.call("GET", `${collectionPath(d, ns)}/${d.name}`);
        assert.equal(stored, 404, `${d.kind} ${d.name} was stored by a dry run`);
      }
    });

    test("job.yaml's Job, as the server reads it: every container locked down, resources set, the token mounted into proa's container alone", async () => {
      const ns = `proa-e2e-${++namespaces}`;
      await server.createNamespace(ns);
      const { status, body: job } = await server.applyYaml(ns, doc("Job"), { dryRun: true });
      assert.equal(status, 201, JSON.stringify(job?.message ?? job));
      const spec = job.spec.template.spec;
      assert.equal(spec.automountServiceAccountToken, false, "no token in every container by default");
      const containers: any[] = [...(spec.initContainers ?? []), ...spec.containers];
      for (const c of containers) {
        const sc = c.securityContext ?? {};
        assert.equal(sc.runAsNonRoot, true, `${c.name}: runAsNonRoot`);
        assert.ok(
          Number.isInteger(sc.runAsUser) && sc.runAsUser > 0,
          `${c.name}: an explicit non-root runAsUser, so that runAsNonRoot works whatever the image's USER`,
        );
        assert.ok(Number.isInteger(sc.runAsGroup) && sc.runAsGroup > 0, `${c.name}: runAsGroup`);
        assert.equal(sc.allowPrivilegeEscalation, false, `${c.name}: allowPrivilegeEscalation`);
        assert.equal(sc.readOnlyRootFilesystem, true, `${c.name}: readOnlyRootFilesystem`);
        assert.deepEqual(sc.capabilities, { drop: ["ALL"] }, `${c.name}: capabilities`);
        assert.deepEqual(sc.seccompProfile, { type: "RuntimeDefault" }, `${c.name}: seccompProfile`);
        assert.equal(sc.privileged ?? false, false, `${c.name}: privileged`);
        for (const kind of ["requests", "limits"])
          for (const resource of ["cpu", "memory"])
            assert.ok(c.resources?.[kind]?.[resource], `${c.name}: resources.${kind}.${resource}`);
      }
      // The same user everywhere: the kubelet then writes the token 0600, owned by that user (pkg/volume/util FsUserFrom).
      assert.equal(new Set(containers.map((c) => c.securityContext.runAsUser)).size, 1);

      // The projected volume holds what the automounted one would: a token, the cluster's CA, the namespace.
      const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
      const proaContainers = containers.filter((c) =>
        [...(c.command ?? []), ...(c.args ?? [])].includes("/proa/proa.js"),
      );
      assert.deepEqual(
        proaContainers.map((c) => c.name),
        ["main"],
      );
      const mount = proaContainers[0].volumeMounts.find((m: any) => m.mountPath === SA_DIR);
      assert.ok(mount, `proa's container mounts a volume at ${SA_DIR}`);
      assert.equal(mount.readOnly, true);
      const volume = spec.volumes.find((v: any) => v.name === mount.name);
      assert.deepEqual(volume.projected.sources, [
        { serviceAccountToken: { path: "token", expirationSeconds: 3600 } },
        { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
        {
          downwardAPI: {
            items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }],
          },
        },
      ]);
      for (const c of containers.filter((c) => c.name !== "main")) {
        assert.deepEqual(
          (c.volumeMounts ?? []).filter(
            (m: any) => m.name === mount.name || m.mountPath.startsWith("/var/run/secrets"),
          ),
          [],
          `${c.name} gets no token`,
        );
      }
    });

    test("a Role naming the Pod (resourceNames) with list and watch allows exactly proa's requests, and denies the rest", async () => {
      const ns = `proa-e2e-${++namespaces}`;
      await server.createNamespace(ns);
      // The rule job.yaml's comments show for a bare Pod with a fixed name, read from those comments.
      const shown =
        /^#\s+rules:\n#\s+- apiGroups: \[""\]\n#\s+resources: \["pods"\]\n#\s+resourceNames: \["my-pod"\]\n#\s+verbs: \["list", "watch"\]$/m;
      assert.match(doc("Role").text, shown);
      for (const kind of ["ServiceAccount", "RoleBinding"])
        assert.equal((await server.applyYaml(ns, doc(kind))).status, 201);
      await server.api("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: doc("Role").name },
        rules: [{ apiGroups: [""], resources: ["pods"], resourceNames: ["my-pod"], verbs: ["list", "watch"] }],
      });
      for (const name of ["my-pod", "other-pod"])
        await server.api(
          "POST",
          `/api/v1/namespaces/${ns}/pods`,
          podManifest(name, { serviceAccount: doc("ServiceAccount").name }),
        );
      const token = await server.token(ns, doc("ServiceAccount").name);
      const pods = `/api/v1/namespaces/${ns}/pods`;
      const selector = (name: string) => `fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`;
      const statuses: Record<string, number> = {};
      for (const path of [
        `${pods}?${selector("my-pod")}`, // proa's list
        `${pods}?${selector("my-pod")}&watch=1&resourceVersion=0&allowWatchBookmarks=true&timeoutSeconds=1`, // proa's watch
        pods,
        `${pods}?watch=1&timeoutSeconds=1`,
        `${pods}?${selector("other-pod")}`,
        `${pods}?${selector("other-pod")}&watch=1&timeoutSeconds=1`,
        `${pods}/my-pod`, // a get, which the Role does not grant and proa never sends
      ])
        statuses[path] = await statusAs(token, path);
      assert.deepEqual(Object.values(statuses), [200, 200, 403, 403, 403, 403, 403], JSON.stringify(statuses, null, 1));
    });

    test("proa runs to the end under a Role that names its Pod and grants only list and watch", async (t) => {
      const s = await setUp(t, {
        sidecarsReady: true,
        roleRules: [{ apiGroups: [""], resources: ["pods"], resourceNames: ["job-pod"], verbs: ["list", "watch"] }],
      });
      const proa = s.run([], [NODE, "-e", "console.log('program ran')"]);
      const { code } = await exitWithin(proa, 20_000);
      assert.equal(code, 0, proa.stderr());
      assert.deepEqual(proa.stdout, ["program ran"]);
      assert.deepEqual(
        proa.logs.filter((r) => r.level === "error"),
        [],
      );
      findLog(proa, (r) => /all sidecars have exited$/.test(r.msg)); // the watch during shutdown is allowed too
    });

    /** The status the server answers a GET with, as the holder of token; the body is not read. */
    function statusAs(token: string, path: string): Promise<number> {
      return new Promise((resolve, reject) => {
        const req = httpsRequest(
          {
            host: server.env.KUBE_HOST,
            port: Number(server.env.KUBE_PORT),
            path,
            ca: server.ca,
            agent: false,
            headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
          },
          (res) => {
            resolve(res.statusCode ?? 0);
            res.destroy();
          },
        );
        req.setTimeout(15_000, () => req.destroy(new Error(`GET ${path}: no answer within 15 s`)));
        req.on("error", reject).end();
      });
    }

    test("the program starts only after the last sidecar is ready, within 1 s of its status write", async (t) => {
      const s = await setUp(t);
      const proa = s.run([], [NODE, "-e", "console.log('program ran')"]);
      await waitLog(proa, (r) => r.msg === "waiting for containers to be ready" && same(r.notReady, SIDECARS), 15_000);

      const first = await s.kubelet.set({ "sidecar-1": { running: true, ready: true } });
      const seen = await waitLog(
        proa,
        (r) => r.msg === "waiting for containers to be ready" && same(r.notReady, ["sidecar-2"]),
        5_000,
      );
      const seenMs = at(seen) - first.sentAt;
      assert.equal(started(proa), undefined, "the program must not start while sidecar-2 is not ready");
      assert.deepEqual(proa.stdout, []);

      const last = await s.kubelet.set({ "sidecar-2": { running: true, ready: true } });
      const start = await waitLog(proa, (r) => r.msg === "program started", 5_000);
      const latencyMs = at(start) - last.sentAt;
      t.diagnostic(
        `sidecar-1 ready seen after ${seenMs} ms; program started ${latencyMs} ms after sidecar-2's ready status was sent`,
      );
      assert.ok(at(start) >= last.sentAt, "started after the last sidecar's status write");
      assert.ok(latencyMs < 1000, `program started ${latencyMs} ms after the status write`);

      const { code } = await exitWithin(proa, 15_000);
      assert.equal(code, 0);
      assert.deepEqual(proa.stdout, ["program ran"]);
    });

    test("the program exits 3: the sidecars are asked to stop, proa waits until they have terminated, then exits 3", async (t) => {
      const exitDelayMs = 1000; // each sidecar takes a second to exit after its shutdown request
      const s = await setUp(t, { sidecarsReady: true, exitDelayMs });
      const proa = s.run([], [NODE, "-e", "process.exit(3)"]);
      const { code } = await exitWithin(proa, 20_000);
      assert.equal(code, 3);

      const programExited = at(findLog(proa, (r) => r.msg === "program exited" && r.code === 3));
      const requests = SIDECARS.map((name) => s.sidecars[name].requests);
      assert.deepEqual(
        requests.map((list) => list.map((r) => `${r.method} ${r.path}`)),
        [["POST /shutdown"], ["GET /shutdown"]],
      );
      for (const [r] of requests)
        assert.ok(r!.at >= programExited, "shutdown requests are sent after the program has exited");
      for (const name of SIDECARS) {
        const url = await s.sidecars[name].url;
        findLog(proa, (r) => r.msg === "sidecar shutdown request answered 200" && r.url === url);
      }

      // proa watched the Pod until both sidecars were reported terminated, and only then exited.
      findLog(proa, (r) => /^sidecar-[12] exited with 0; still running: sidecar-[12]$/.test(r.msg));
      const allExited = findLog(proa, (r) => /^sidecar-[12] exited with 0; all sidecars have exited$/.test(r.msg));
      const writes = SIDECARS.flatMap((name) => s.sidecars[name].terminatedWrites);
      assert.equal(writes.length, 2);
      const lastWrite = Math.max(...writes.map((w) => w.sentAt));
      const exiting = findLog(proa, (r) => r.msg === "exiting" && r.status === 3);
      assert.ok(at(exiting) >= lastWrite, "proa exits only after the last terminated status was written");
      t.diagnostic(
        `program exited -> shutdown requests ${Math.max(...requests.map(([r]) => r!.at)) - programExited} ms; ` +
          `last terminated status sent -> proa saw it ${at(allExited) - lastWrite} ms; program exit -> proa exit ${at(exiting) - programExited} ms`,
      );
    });

    test("a sidecar that terminates before it is ready (restartPolicy Never): no program, sidecars still shut down, exit 1 naming it", async (t) => {
      const s = await setUp(t);
      const proa = s.run([], [NODE, "-e", "console.log('program ran')"]);
      await waitLog(proa, (r) => r.msg === "waiting for containers to be ready", 15_000);
      await s.sidecars["sidecar-1"].exit(1);
      const { code } = await exitWithin(proa, 20_000);
      assert.equal(code, 1);
      assert.equal(started(proa), undefined, "the program never runs");
      assert.deepEqual(proa.stdout, []);
      const failure = findLog(proa, (r) => r.level === "error" && r.msg.includes("sidecar-1"));
      assert.match(failure.msg, /container sidecar-1 terminated with exit code 1 \(Error\) before it was ready/);
      assert.match(failure.msg, /restartPolicy is Never/);
      // Shutdown still runs: sidecar-1 is gone (its port refuses), sidecar-2 takes its request and exits.
      assert.deepEqual(
        s.sidecars["sidecar-2"].requests.map((r) => `${r.method} ${r.path}`),
        ["GET /shutdown"],
      );
      findLog(
        proa,
        (r) =>
          r.level === "warn" &&
          /^sidecar shutdown request failed: connection refused/.test(r.msg) &&
          r.method === "POST",
      );
      findLog(proa, (r) => r.msg === "sidecar-2 exited with 0; all sidecars have exited");
      findLog(proa, (r) => r.msg === "exiting" && r.status === 1);
    });

    test("without the RoleBinding proa logs the server's 403 with the Role rule that fixes it, retries with backoff, and carries on once it exists", async (t) => {
      const s = await setUp(t, { roleBinding: false, sidecarsReady: true });
      const proa = s.run([], [NODE, "-e", "console.log('program ran')"]);
      const forbidden = (r: LogRecord) => r.level === "error" && /HTTP 403/.test(r.msg);
      await waitLog(proa, (r) => proa.logs.filter(forbidden).length >= 2 && forbidden(r), 15_000);
      const [firstError, secondError] = proa.logs.filter(forbidden) as [LogRecord, LogRecord];
      const user = `system:serviceaccount:${s.ns}:proa`;
      // The server's own message...
      assert.ok(
        firstError.msg.includes(
          `pods "${s.pod}" is forbidden: User "${user}" cannot list resource "pods" in API group "" in the namespace "${s.ns}"`,
        ),
        firstError.msg,
      );
      // ...and a rule on pods that grants at least what job.yaml's Role does (list and watch), which is enough: the
      // program starts below once job.yaml's RoleBinding exists.
      const hint = new RegExp(
        `grant ${user} a Role in namespace ${s.ns} with the rule \\{apiGroups: \\[""\\], resources: \\["pods"\\], verbs: \\[([^\\]]*)\\]\\} and a RoleBinding to it`,
      ).exec(firstError.msg);
      assert.ok(hint, firstError.msg);
      assert.match(doc("Role").text, /- apiGroups: \[""\]\n\s+resources: \["pods"\]\n\s+verbs: \["list", "watch"\]/);
      for (const verb of ["list", "watch"])
        assert.ok(hint[1]!.includes(`"${verb}"`), `the hint's rule grants ${verb}: ${hint[1]}`);
      // Backoff: 0.5-1 s after the first failure, 1-2 s after the second.
      assert.ok(
        Number(firstError.retryInMs) >= 500 && Number(firstError.retryInMs) <= 1000,
        `first retry in ${firstError.retryInMs} ms`,
      );
      assert.ok(
        Number(secondError.retryInMs) >= 1000 && Number(secondError.retryInMs) <= 2000,
        `second retry in ${secondError.retryInMs} ms`,
      );
      assert.ok(
        at(secondError) - at(firstError) >= Number(firstError.retryInMs) - 5,
        "the second attempt waited for the backoff",
      );
      assert.equal(started(proa), undefined);

      const bound = Date.now();
      const { status } = await server.applyYaml(s.ns, doc("RoleBinding"));
      assert.equal(status, 201);
      const start = await waitLog(proa, (r) => r.msg === "program started", 15_000);
      const { code } = await exitWithin(proa, 15_000);
      assert.equal(code, 0);
      assert.deepEqual(proa.stdout, ["program ran"]);
      const errors = proa.logs.filter(forbidden).length;
      t.diagnostic(
        `403 errors logged: ${errors}; retries ${firstError.retryInMs}, ${secondError.retryInMs} ms; RoleBinding created -> program started ${at(start) - bound} ms`,
      );
    });

    test("POD_NAME naming a Pod that does not exist: a clear error, no hang, exit 1", async (t) => {
      const s = await setUp(t, { createPod: false, podName: "no-such-pod" });
      const began = Date.now();
      const proa = s.run(["--ready-timeout", "3s"], [NODE, "-e", "console.log('program ran')"]);
      const { code } = await exitWithin(proa, 20_000);
      const tookMs = Date.now() - began;
      assert.equal(code, 1);
      assert.equal(started(proa), undefined);
      const missing = findLog(
        proa,
        (r) => r.level === "error" && r.msg.startsWith(`there is no Pod ${s.ns}/no-such-pod`),
      );
      assert.match(missing.msg, /set POD_NAME and POD_NAMESPACE with the downward API/);
      const timeout = findLog(proa, (r) => r.level === "error" && /^--ready-timeout\b.*\bpassed\b/.test(r.msg));
      // The shutdown requests are still sent; there is no Pod to watch for their exits.
      for (const name of SIDECARS) assert.equal(s.sidecars[name].requests.length, 1, `${name}'s shutdown request`);
      findLog(proa, (r) => r.msg === "exiting" && r.status === 1);
      t.diagnostic(`exited after ${tookMs} ms; final error: ${timeout.msg}`);
      assert.ok(tookMs < 10_000, `took ${tookMs} ms`);
    });

    test("SIGTERM to proa while the program runs reaches the program, and proa exits with the program's status", async (t) => {
      const s = await setUp(t, { sidecarsReady: true });
      const proa = s.run([], [NODE, SIGNAL_REPORTER, "7"]);
      await within(proa.waitForStdout("ready"), 15_000, proa, "the program to print ready");
      const sent = Date.now();
      proa.child.kill("SIGTERM");
      await within(proa.waitForStdout("SIGTERM"), 5_000, proa, "the program to report SIGTERM");
      const { code } = await exitWithin(proa, 20_000);
      assert.equal(code, 7);
      findLog(proa, (r) => r.msg === "passing SIGTERM to the program");
      findLog(proa, (r) => r.msg === "program exited" && r.code === 7);
      for (const name of SIDECARS) assert.equal(s.sidecars[name].requests.length, 1, `${name}'s shutdown request`);
      findLog(proa, (r) => /all sidecars have exited$/.test(r.msg));
      t.diagnostic(`SIGTERM sent -> proa exited 7 after ${Date.now() - sent} ms`);
    });

    test("the termination message's path and policy come from the Pod as the server returns it, with the server's default /dev/termination-log", async (t) => {
      if (existsSync("/dev/termination-log"))
        return t.skip("this machine has a /dev/termination-log, which proa would write");
      const s = await setUp(t, { sidecarsReady: true, main: {} });
      const stored = await server.api("GET", `/api/v1/namespaces/${s.ns}/pods/${s.pod}`);
      assert.equal(
        JSON.stringify(podManifest(s.pod, { main: {} })).includes("terminationMessage"),
        false,
        "the manifest leaves both fields to the server",
      );
      assert.deepEqual(
        [stored.spec.containers[0].terminationMessagePath, stored.spec.containers[0].terminationMessagePolicy],
        ["/dev/termination-log", "File"],
      );
      // A file proa would use if it ignored the Pod spec.
      const decoy = join(scratch, s.ns, "decoy-termination-log");
      writeFileSync(decoy, "");
      const proa = s.run([], [NODE, "-e", "process.exit(0)"], {
        PROA_LOG: "debug",
        PROA_TERMINATION_MESSAGE_PATH: decoy,
      });
      assert.equal((await exitWithin(proa, 20_000)).code, 0);
      const skipped = findLog(proa, (r) => /termination message/.test(r.msg));
      assert.deepEqual(
        [skipped.level, skipped.path, skipped.from],
        ["debug", "/dev/termination-log", "the Pod spec"],
        skipped.msg,
      );
      assert.equal(readFileSync(decoy, "utf8"), "");
      findLog(proa, (r) => r.msg === "summary" && r.status === 0);
    });

    test("proa writes the run's summary to the terminationMessagePath the Pod names, once the sidecars have exited", async (t) => {
      const dir = mkdtempSync(join(scratch, "termination-"));
      const path = join(dir, "termination-log");
      writeFileSync(path, ""); // as the kubelet creates it
      const s = await setUp(t, { sidecarsReady: true, exitDelayMs: 300, main: { terminationMessagePath: path } });
      const stored = await server.api("GET", `/api/v1/namespaces/${s.ns}/pods/${s.pod}`);
      assert.equal(stored.spec.containers[0].terminationMessagePath, path);
      const proa = s.run([], [NODE, "-e", "process.exit(3)"]);
      assert.equal((await exitWithin(proa, 20_000)).code, 3);
      const message = readFileSync(path, "utf8");
      t.diagnostic(`termination message:\n${message}`);
      assert.match(
        message,
        /^program exited 3 after \d+(ms|\.\d+s|s); sidecars stopped: sidecar-[12] \(exited 0\), sidecar-[12] \(exited 0\)\n/,
      );
      assert.match(message, /\n {2}POST http:\/\/127\.0\.0\.1:\d+\/shutdown: 200 in \d+ms\n/);
      assert.match(message, /\n {2}GET http:\/\/127\.0\.0\.1:\d+\/shutdown: 200 in \d+ms\n/);
      assert.match(message, /\nproa exited 3$/);
    });

    // Last: it disturbs the server for the others.
    test(
      "kube-apiserver stopped and restarted while proa waits: proa reconnects and starts the program once the sidecars are ready",
      { timeout: 120_000 },
      async (t) => {
        const s = await setUp(t);
        const proa = s.run([], [NODE, "-e", "console.log('program ran')"], { PROA_LOG: "debug" });
        await waitLog(
          proa,
          (r) => r.msg === "waiting for containers to be ready" && same(r.notReady, SIDECARS),
          15_000,
        );

        // Something else changes meanwhile, as in any real cluster: the restarted server's watch cache starts past
        // proa's resourceVersion, so resuming the watch gets the ERROR event with code 410 and proa lists again.
        await server.api("POST", `/api/v1/namespaces/${s.ns}/configmaps`, {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "unrelated" },
        });
        const restartBegan = Date.now();
        await server.restartApiserver(0);
        const restarted = Date.now();
        assert.equal(started(proa), undefined);

        // A change made after the restart reaches proa (a list or a new watch)...
        const first = await s.kubelet.set({ "sidecar-1": { running: true, ready: true } });
        const seen = await waitLog(
          proa,
          (r) => r.msg === "waiting for containers to be ready" && same(r.notReady, ["sidecar-2"]),
          40_000,
        );
        // ...and the watch after it works at its usual speed.
        const last = await s.kubelet.set({ "sidecar-2": { running: true, ready: true } });
        const start = await waitLog(proa, (r) => r.msg === "program started", 40_000);
        const latencyMs = at(start) - last.sentAt;
        t.diagnostic(
          `restart (SIGTERM .. /readyz) took ${restarted - restartBegan} ms; sidecar-1's status (written ${first.sentAt - restartBegan} ms after the SIGTERM) seen ` +
            `${at(seen) - first.sentAt} ms after its write; program started ${latencyMs} ms after sidecar-2's. proa's log, ms after the SIGTERM:`,
        );
        for (const r of proa.logs.filter((r) => at(r) >= restartBegan && at(r) <= at(start))) {
          t.diagnostic(
            `  +${at(r) - restartBegan} ms ${r.level}: ${r.msg.slice(0, 240)}${r.retryInMs === undefined ? "" : ` (retry in ${r.retryInMs} ms)`}`,
          );
        }
        assert.ok(latencyMs < 1000, `program started ${latencyMs} ms after the status write`);
        const { code } = await exitWithin(proa, 20_000);
        assert.equal(code, 0);
        assert.deepEqual(proa.stdout, ["program ran"]);
      },
    );
  },
);

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** The time proa wrote a log record, in ms since the epoch. */
function at(record: LogRecord): number {
  return Date.parse(String(record.time));
}

function same(value: unknown, expected: readonly string[]): boolean {
  return Array.isArray(value) && value.length === expected.length && value.every((v, i) => v === expected[i]);
}

function started(proa: ProaProcess): LogRecord | undefined {
  return proa.logs.find((r) => r.msg === "program started");
}

function findLog(proa: ProaProcess, match: (record: LogRecord) => boolean): LogRecord {
  const found = proa.logs.find(match);
  assert.ok(found, `no such log record (${match.toString()}); proa's log:\n${proa.stderr()}`);
  return found;
}

/** Rejects after ms with proa's log so far, so that a hang fails with something to read. */
async function within<T>(promise: Promise<T>, ms: number, proa: ProaProcess, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`waited ${ms} ms for ${what}; proa's log:\n${proa.stderr()}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function waitLog(proa: ProaProcess, match: (record: LogRecord) => boolean, ms: number): Promise<LogRecord> {
  return within(proa.waitForLog(match), ms, proa, `a log record (${match.toString()})`);
}

function exitWithin(proa: ProaProcess, ms: number) {
  return within(proa.exit, ms, proa, "proa to exit");
}

/** Kills proa, and the program it started, if they are still running (a failed test must leave no process). */
async function stopIfRunning(proa: ProaProcess) {
  if (proa.child.exitCode !== null || proa.child.signalCode !== null) return;
  const pid = started(proa)?.pid;
  proa.child.kill("SIGKILL");
  if (typeof pid === "number") {
    try {
      process.kill(pid, "SIGKILL");
    } catch {} // it had exited
  }
  await proa.exit;
}
