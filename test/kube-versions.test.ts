// The end-to-end scripts' choice of flags by Kubernetes version (test/e2e/kube-apiserver.sh's version_flags, which
// node.sh uses too): a pure function, tested here as a table, since CI runs 1.20.2 only and 1.33 or 1.35 only meet
// these flags on a machine that has their binaries (PROA_E2E_KUBE_BIN).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { nativeSidecarSkipReason } from "./e2e/node.ts";
import { parseKubeVersion } from "./e2e/cluster.ts";

const SCRIPT = fileURLToPath(new URL("./e2e/kube-apiserver.sh", import.meta.url));

/** Runs a snippet with the script's functions loaded (its commands do not run when it is sourced). */
function bash(snippet: string, env: NodeJS.ProcessEnv = {}): string {
  return execFileSync("bash", ["-c", `source "$1"; ${snippet}`, "bash", SCRIPT], {
    encoding: "utf8",
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
  });
}

const COMPONENTS = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubelet-config", "node"];

/** Every component's version-dependent flags for each minor version, in one bash run. */
function flagsFor(minors: number[]): Map<string, string[]> {
  const out = bash(
    `for m in ${minors.join(" ")}; do for c in ${COMPONENTS.join(" ")}; do ` +
      `version_flags "$c" "$m" | sed "s|^|$m $c |"; echo "$m $c ."; done; done`,
  );
  const table = new Map<string, string[]>();
  for (const line of out.trim().split("\n")) {
    const [minor, component, ...rest] = line.split(" ");
    const key = `1.${minor} ${component}`;
    const list = table.get(key) ?? [];
    if (rest.join(" ") !== ".") list.push(rest.join(" "));
    table.set(key, list);
  }
  return table;
}

const PORT = ["--port=0"];
const RUNTIME = "--container-runtime=remote";
const PAUSE = "--pod-infra-container-image=$PAUSE_IMAGE";
const CGROUP_V1 = ["failCgroupV1: false"];
const SECRETS = ["token-secrets"];

// minor → what each component gets on top of the flags every version takes.
const EXPECTED: Record<number, Partial<Record<string, string[]>>> = {
  20: { "kube-controller-manager": PORT, "kube-scheduler": PORT, kubelet: [RUNTIME, PAUSE], node: SECRETS },
  23: { "kube-controller-manager": PORT, "kube-scheduler": PORT, kubelet: [RUNTIME, PAUSE], node: SECRETS },
  24: { kubelet: [RUNTIME, PAUSE] }, // --port and the token Secrets gone
  26: { kubelet: [RUNTIME, PAUSE] },
  27: { kubelet: [PAUSE] }, // --container-runtime gone
  29: { kubelet: [PAUSE] },
  30: { kubelet: [PAUSE] },
  31: { kubelet: [PAUSE], "kubelet-config": CGROUP_V1 }, // failCgroupV1 exists
  33: { kubelet: [PAUSE], "kubelet-config": CGROUP_V1 },
  34: { kubelet: [PAUSE], "kubelet-config": CGROUP_V1 },
  35: { kubelet: [], "kubelet-config": CGROUP_V1 }, // --pod-infra-container-image gone; cgroup v1 refused by default
};

describe("the e2e scripts' flags by Kubernetes version", () => {
  const table = flagsFor(Object.keys(EXPECTED).map(Number));
  for (const [minor, expected] of Object.entries(EXPECTED)) {
    test(`1.${minor}: ${JSON.stringify(expected)}`, () => {
      for (const component of COMPONENTS)
        assert.deepEqual(table.get(`1.${minor} ${component}`), expected[component] ?? [], `${component} 1.${minor}`);
    });
  }

  test("an unknown component is an error, not an empty list", () => {
    assert.throws(() => bash("version_flags kube-proxy 33"));
  });

  test("component_args fills in the pause image and appends PROA_E2E_<COMPONENT>_FLAGS, split at spaces", () => {
    const args = (component: string, minor: number, env: NodeJS.ProcessEnv) =>
      bash(
        `PAUSE_IMAGE=docker.io/x/pause:3.4; component_args ${component} ${minor}; for a in "\${ARGS[@]}"; do echo "[$a]"; done`,
        env,
      )
        .trim()
        .split("\n")
        .filter(Boolean);
    assert.deepEqual(args("kubelet", 20, { PROA_E2E_KUBELET_FLAGS: "--a=1  --b" }), [
      "[--container-runtime=remote]",
      "[--pod-infra-container-image=docker.io/x/pause:3.4]",
      "[--a=1]",
      "[--b]",
    ]);
    assert.deepEqual(args("kubelet", 35, {}), []);
    assert.deepEqual(args("kube-controller-manager", 33, { PROA_E2E_KUBE_CONTROLLER_MANAGER_FLAGS: "--x=y" }), [
      "[--x=y]",
    ]);
    assert.deepEqual(args("kube-scheduler", 20, { PROA_E2E_KUBE_SCHEDULER_FLAGS: "--v=4" }), ["[--port=0]", "[--v=4]"]);
    assert.deepEqual(args("kube-apiserver", 35, { PROA_E2E_KUBE_APISERVER_FLAGS: "--feature-gates=A=true" }), [
      "[--feature-gates=A=true]",
    ]);
  });

  test("kube_minor reads the minor version from a component's --version", () => {
    assert.equal(bash(`kube_minor "Kubernetes v1.20.2"`).trim(), "20");
    assert.equal(bash(`kube_minor "Kubernetes v1.33.13"`).trim(), "33");
    assert.equal(bash(`kube_minor "Kubernetes v1.35.6-openshift+abc"`).trim(), "35");
    assert.throws(() => bash(`kube_minor "Kubernetes v2.0.0"`));
    assert.throws(() => bash(`kube_minor "no version"`));
  });

  test("supported_minor refuses before 1.20 and warns after 1.35", () => {
    assert.throws(() => bash("supported_minor kubelet 19 2>/dev/null"));
    assert.doesNotThrow(() => bash("supported_minor kubelet 20; supported_minor kubelet 35"));
    assert.match(bash("supported_minor kubelet 36 2>&1"), /newer than 1\.35: using 1\.35's flags/);
  });

  test("the kube build asks for Debian's 1.20.5+really1.20.2, newest revision, never a newer suite's kubernetes", () => {
    const showsrc = (...versions: string[]) =>
      ["Package: kubernetes", ...versions.map((v) => `Version: ${v}`)].join("\n");
    const pick = (text: string) => bash(`deb_source_version "$SHOWSRC"`, { SHOWSRC: text });
    assert.equal(
      pick(showsrc("1.36.4+ds-1", "1.20.5+really1.20.2-1.1+deb12u1", "1.20.5+really1.20.2-1.1")).trim(),
      "1.20.5+really1.20.2-1.1+deb12u1",
    );
    assert.equal(pick(showsrc("1.20.5+really1.20.2-1.1")).trim(), "1.20.5+really1.20.2-1.1");
    assert.throws(() => pick(showsrc("1.36.4+ds-1")), "no 1.20.5+really1.20.2: an error, not another version");
    assert.throws(() => pick(showsrc("1.20.5+really1.20.20-1")), "another upstream version that starts the same");
  });
});

describe("the real-node suite's versions", () => {
  test("parseKubeVersion reads --version's text and the scripts' env lines", () => {
    assert.deepEqual(parseKubeVersion("Kubernetes v1.20.2\n"), { minor: 20, gitVersion: "v1.20.2" });
    assert.deepEqual(parseKubeVersion("v1.35.6"), { minor: 35, gitVersion: "v1.35.6" });
    assert.equal(parseKubeVersion("Kubernetes v2.1.0"), undefined);
  });

  test("native-sidecar scenarios run from kubelet 1.29, and say why they are skipped before", () => {
    assert.match(
      nativeSidecarSkipReason({ minor: 20, gitVersion: "v1.20.2" }) ?? "",
      /kubelet v1\.20\.2 has no native sidecars/,
    );
    assert.match(nativeSidecarSkipReason({ minor: 28, gitVersion: "v1.28.9" }) ?? "", /from 1\.29/);
    assert.equal(nativeSidecarSkipReason({ minor: 29, gitVersion: "v1.29.0" }), undefined);
    assert.equal(nativeSidecarSkipReason({ minor: 35, gitVersion: "v1.35.6" }), undefined);
    assert.match(nativeSidecarSkipReason(undefined) ?? "", /unknown/);
  });
});
