// proa --check end to end: the bundle against a real kube-apiserver 1.20.2 (kube-apiserver.sh) with real
// ServiceAccount tokens and RBAC. A TCP server stands in for the shutdown endpoint and counts what reaches it; the
// program would write a marker file if it ever ran. PROA_CONTAINER=main, as in proa.e2e.test.ts (no kubelet mounts).
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startProa } from "../helpers/proa-process.ts";
import { startTcpCounter, type TcpCounter } from "../helpers/tcp-counter.ts";
import {
  apiserverVersion,
  collectionPath,
  jobYamlDocuments,
  Kubelet,
  KubeServer,
  podManifest,
  skipReason,
  type YamlDocument,
} from "./cluster.ts";

const NODE = process.execPath;
const VERDICT_OR_YAML = /^(ok |warn|FAIL|       )/;

describe(
  `proa --check against a real kube-apiserver ${apiserverVersion()}`,
  { skip: skipReason(), timeout: 3 * 60_000 },
  () => {
    let scratch: string;
    let server: KubeServer;
    let endpoint: TcpCounter;
    let namespaces = 0;
    const jobDocs = jobYamlDocuments();
    const doc = (kind: string) => jobDocs.find((d) => d.kind === kind) ?? assert.fail(`job.yaml has no ${kind}`);

    before(async () => {
      scratch = mkdtempSync(join(tmpdir(), "proa-check-e2e-"));
      endpoint = await startTcpCounter();
      try {
        server = await KubeServer.start(join(scratch, "server"));
      } catch (error) {
        await KubeServer.stop(join(scratch, "server")).catch(() => {});
        throw error;
      }
    });

    after(async () => {
      await endpoint?.close();
      if (scratch) {
        await KubeServer.stop(join(scratch, "server"));
        rmSync(scratch, { recursive: true, force: true });
      }
    });

    /** A namespace with job.yaml's ServiceAccount and the given RBAC kinds, a Pod main + sidecar-1 (ready) + sidecar-2
     * (running, not ready), and a way to run `proa --check` in it. */
    async function setUp(rbac: string[]) {
      const ns = `proa-check-${++namespaces}`;
      await server.createNamespace(ns);
      for (const kind of ["ServiceAccount", ...rbac]) {
        const { status, body } = await server.applyYaml(ns, doc(kind));
        assert.equal(status, 201, `creating job.yaml's ${kind}: ${JSON.stringify(body)}`);
      }
      const sa = doc("ServiceAccount").name;
      await server.api("POST", `/api/v1/namespaces/${ns}/pods`, podManifest("job-pod", { serviceAccount: sa }));
      await new Kubelet(server, ns, "job-pod", ["main", "sidecar-1", "sidecar-2"]).set({
        main: { running: true, ready: true },
        "sidecar-1": { running: true, ready: true },
        "sidecar-2": { running: true, ready: false },
      });
      const saDir = await server.serviceAccountDir(join(scratch, ns, "serviceaccount"), ns, sa);
      const token = readFileSync(join(saDir, "token"), "utf8");
      const marker = join(scratch, ns, "program-ran");
      const shutdownUrl = endpoint.url("/quitquitquit");
      const check = async () => {
        const connections = endpoint.connections;
        const bytes = endpoint.bytes;
        const proa = startProa(
          [
            "--check",
            "--shutdown-http-post",
            shutdownUrl,
            "--",
            NODE,
            "-e",
            `require("fs").writeFileSync(${JSON.stringify(marker)}, "")`,
          ],
          {
            KUBERNETES_SERVICE_HOST: server.env.KUBE_HOST,
            KUBERNETES_SERVICE_PORT: server.env.KUBE_PORT,
            PROA_SERVICE_ACCOUNT_DIR: saDir,
            POD_NAME: "job-pod",
            POD_NAMESPACE: ns,
            PROA_CONTAINER: "main",
          },
        );
        const timer = setTimeout(() => proa.child.kill("SIGKILL"), 30_000);
        const { code } = await proa.exit.finally(() => clearTimeout(timer));
        await endpoint.settled(connections + 1);
        const report = proa.stdout;
        assert.deepEqual(
          report.filter((line) => !VERDICT_OR_YAML.test(line)),
          [],
          "every stdout line is a verdict line or indented YAML",
        );
        assert.ok(
          !proa.stderr().includes(token) && !report.join("\n").includes(token),
          "the token is neither in the report nor in the log",
        );
        assert.equal(existsSync(marker), false, "the program never runs");
        assert.equal(endpoint.connections - connections, 1, "one TCP connection to the shutdown endpoint");
        assert.equal(endpoint.bytes - bytes, 0, "and no byte sent on it: no shutdown request");
        const line = (pattern: RegExp) => {
          const found = report.filter((l) => pattern.test(l));
          assert.equal(found.length, 1, `expected one report line matching ${pattern}:\n${report.join("\n")}`);
          return found[0]!;
        };
        return { code, report, line, text: report.join("\n") };
      };
      return { ns, sa, check, hostPort: endpoint.hostPort, shutdownUrl };
    }

    test("without the RoleBinding: FAIL naming the list and the watch and the user, exit 1; the printed YAML, applied, fixes it", async (t) => {
      const s = await setUp([]);
      const user = `system:serviceaccount:${s.ns}:${s.sa}`;
      const first = await s.check();
      t.diagnostic(`the report:\n${first.text}`);
      assert.equal(first.code, 1);
      assert.match(
        first.line(/^\w+ +listing Pod/),
        new RegExp(
          `^FAIL listing Pod ${s.ns}/job-pod at .* failed: HTTP 403: .*User "${user}" cannot list resource "pods"`,
        ),
      );
      assert.match(
        first.line(/^\w+ +watching Pod/),
        new RegExp(
          `^FAIL watching Pod ${s.ns}/job-pod at .* failed: HTTP 403: .*User "${user}" cannot watch resource "pods".*; fix: apply this Role and RoleBinding \\(kubectl apply -n ${s.ns} -f -\\)$`,
        ),
      );
      assert.match(first.line(/accepts the service account's token/), /^ok /);

      // The YAML under the FAIL line, as a user would pipe it to kubectl apply: each document POSTed as it is.
      const yaml = first.report
        .filter((l) => l.startsWith("       "))
        .map((l) => l.slice(7))
        .join("\n");
      for (const text of yaml.split(/^---$/m)) {
        const field = (name: string) =>
          new RegExp(`^${name}: (\\S+)$`, "m").exec(text)?.[1] ?? assert.fail(`no ${name} in:\n${text}`);
        const d: YamlDocument = { apiVersion: field("apiVersion"), kind: field("kind"), name: "proa", text };
        const { status, body } = await server.call("POST", collectionPath(d, s.ns), text, "application/yaml");
        assert.equal(status, 201, `applying the printed ${d.kind}: ${JSON.stringify(body?.message ?? body)}`);
      }
      const second = await s.check();
      assert.equal(second.code, 0, second.text);
      assert.match(second.line(/may list and watch/), /^ok /);
    });

    test("a configured Pod with one sidecar ready and one not: exit 0, naming proa's container, both sidecars and the shutdown URL's host:port", async (t) => {
      const s = await setUp(["Role", "RoleBinding"]);
      const r = await s.check();
      t.diagnostic(`the report:\n${r.text}`);
      assert.equal(r.code, 0, r.text);
      assert.match(r.line(/^\w+ +TLS/), /^ok +TLS: .* verifies against the mounted ca\.crt$/);
      assert.match(
        r.line(/may list and watch/),
        new RegExp(`^ok +the service account may list and watch Pods in namespace ${s.ns}`),
      );
      assert.match(r.line(/found Pod/), new RegExp(`^ok +found Pod ${s.ns}/job-pod$`));
      assert.match(r.line(/own container/), /^ok +proa's own container is main \(--container\)$/);
      // podManifest's sidecars have no readinessProbe: warnings, which do not fail the check.
      assert.match(r.line(/container sidecar-1/), /^warn container sidecar-1: ready; it has no readinessProbe/);
      assert.match(
        r.line(/container sidecar-2/),
        /^warn container sidecar-2: not ready yet \(running\); it has no readinessProbe/,
      );
      assert.match(
        r.line(/shutdown POST/),
        new RegExp(
          `^ok +shutdown POST ${s.shutdownUrl}: something accepts TCP connections at ${s.hostPort} \\(connected and closed, no request sent\\)$`,
        ),
      );
      assert.match(r.line(/^\w+ +restartPolicy/), /^ok +restartPolicy Never/);
      assert.match(
        r.line(/if sidecar sidecar-1 dies/),
        /^ok +if sidecar sidecar-1 dies while the program runs: the Pod's restartPolicy is Never, so it will not be restarted: proa stops the program$/,
      );
      assert.match(
        r.line(/shutdown budget/),
        /^ok +shutdown budget 10 s, from the Pod's terminationGracePeriodSeconds;/,
      );
      assert.match(
        r.line(/^\w+ +program /),
        new RegExp(`^ok +program ${NODE.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} is .*, executable$`),
      );
    });
  },
);
