// SECURITY.md's claims about what proa reads, writes and connects to, checked on the bundle as a real process: a
// preload (helpers/record-io.cjs) records every file proa touches through node:fs and every connection it opens.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Pod } from "../kube.ts";
import { NO_TERMINATION_LOG, podWith, startFakeApiServer, type FakeApiServer } from "./fake-apiserver.ts";
import { BUNDLE, startProa } from "./helpers/proa-process.ts";

const RECORDER = fileURLToPath(new URL("./helpers/record-io.cjs", import.meta.url));
// --kill with a name no process has, so that nothing on this machine is signalled. Never --kill-all here: outside a
// PID namespace of its own (test/shutdown-kill.test.ts) it would signal every process the test's user can see.
const NO_SUCH_PROCESS = "proa-security-test-no-such-process";
const scratch = mkdtempSync(join(tmpdir(), "proa-security-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

interface Io {
  reads: Set<string>;
  writes: Set<string>;
  connections: Set<string>;
  env: Set<string>;
}

let runs = 0;
/** Runs the bundle under the recorder with a program that exits 0, and returns what it touched (the bundle itself,
 * which Node's loader reads, left out). */
async function recordRun(
  args: string[],
  env: Record<string, string>,
  pod: Pod = podWith({ sidecars: ["sidecar-1"], ready: true }),
): Promise<Io & { code: number | null; stderr: string }> {
  api.setPod(pod);
  const recordFile = join(scratch, `io-${++runs}.jsonl`);
  writeFileSync(recordFile, "");
  // Unless a shutdown request makes it exit, the sidecar never exits in the fake Pod: a short budget ends the wait.
  const proa = startProa(
    ["--shutdown-timeout", "200ms", ...args, "--", process.execPath, "-e", "0"],
    { ...env, PROA_TEST_IO_RECORD: recordFile },
    [process.execPath, "--require", RECORDER, BUNDLE],
  );
  const { code } = await proa.exit;
  const io: Io = { reads: new Set(), writes: new Set(), connections: new Set(), env: new Set() };
  for (const line of readFileSync(recordFile, "utf8").split("\n").filter(Boolean)) {
    const { kind, target } = JSON.parse(line) as { kind: string; target: string };
    if (target === BUNDLE) continue;
    ({ read: io.reads, write: io.writes, connect: io.connections, env: io.env })[kind]?.add(target);
  }
  return { ...io, code, stderr: proa.stderr() };
}

let api: FakeApiServer;
let shutdownUrl: string;
let shutdownPort: number;
const shutdownRequests: { method: string; url: string; headers: Record<string, unknown>; body: string }[] = [];
const shutdownServer = createServer((request, response) => {
  let body = "";
  request.on("data", (chunk: Buffer) => (body += chunk));
  request.on("end", () => {
    shutdownRequests.push({ method: request.method ?? "", url: request.url ?? "", headers: request.headers, body });
    response.end("bye");
    api.setPod(podWith({ sidecars: ["sidecar-1"], terminated: { "sidecar-1": { exitCode: 0 } } })); // as the sidecar would exit
  });
});
before(async () => {
  api = await startFakeApiServer({ pod: podWith({ sidecars: ["sidecar-1"], ready: true }) });
  await new Promise<void>((resolve) => shutdownServer.listen(0, "127.0.0.1", resolve));
  shutdownPort = (shutdownServer.address() as { port: number }).port;
  shutdownUrl = `http://127.0.0.1:${shutdownPort}/quitquitquit`;
});
after(async () => {
  shutdownServer.close();
  await api.close();
});

// SECURITY.md's list, read from its "environment:" row (the claim, before the tests in brackets): proa's own
// variables, the ones of Node's it reads to warn about, and PATH for --check.
const SECURITY_MD = readFileSync(new URL("../SECURITY.md", import.meta.url), "utf8");
const ENVIRONMENT_ROW = SECURITY_MD.split("\n").find((line) => line.startsWith("| environment: ")) ?? "";
const DOCUMENTED_ENV = [...ENVIRONMENT_ROW.split("[")[0]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((match) => match[1]!);
// The runtime's sources, the files the bundle is built from.
const SOURCES = ["proa.ts", "kube.ts", "shutdown.ts", "http.ts", "log.ts", "readyurl.ts", "check.ts", "summary.ts"];

describe("what proa reads, writes and connects to", () => {
  test("only the environment variables SECURITY.md lists", async () => {
    const { POD_NAMESPACE: _, ...env } = api.env();
    for (const run of [
      await recordRun(["--shutdown-http-get", shutdownUrl], api.env()),
      await recordRun(["--kill", NO_SUCH_PROCESS], env),
    ]) {
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(
        [...run.env].filter((name) => !DOCUMENTED_ENV.includes(name)),
        [],
      );
      for (const name of ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "POD_NAME", "PROA_LOG"])
        assert.ok(run.env.has(name), `${name} is read`);
    }
  });

  test("every variable the source names is in SECURITY.md's list, and every one listed is named in the source", () => {
    assert.ok(DOCUMENTED_ENV.length >= 15, `SECURITY.md's environment row: ${DOCUMENTED_ENV.join(", ")}`);
    const named = new Set<string>();
    for (const file of SOURCES) {
      const source = readFileSync(new URL(`../${file}`, import.meta.url), "utf8");
      // env.NAME, a name destructured from env, and check.ts's from("NAME", ...), which reads env[NAME].
      for (const [, name] of source.matchAll(/\benv\.([A-Z][A-Z0-9_]+)/g)) named.add(name!);
      for (const [, names] of source.matchAll(/\{([^}]*)\} = env\b/g))
        for (const [, name] of names!.matchAll(/([A-Z][A-Z0-9_]+):/g)) named.add(name!);
      for (const [, name] of source.matchAll(/\bfrom\("([A-Z][A-Z0-9_]+)"/g)) named.add(name!);
    }
    assert.deepEqual(
      [...named].filter((name) => !DOCUMENTED_ENV.includes(name)).sort(),
      [],
      "read by proa, missing from SECURITY.md",
    );
    assert.deepEqual(
      DOCUMENTED_ENV.filter((name) => !named.has(name)).sort(),
      [],
      "in SECURITY.md, read nowhere in the source",
    );
  });

  test("the service account's token and ca.crt, and /proc/self/mountinfo and cgroup to find its container; it writes nothing but tries the termination log, and connects only to the API server and the shutdown URL", async () => {
    const run = await recordRun(["--shutdown-http-post", shutdownUrl], api.env());
    assert.equal(run.code, 0, run.stderr);
    const sa = api.serviceAccountDir;
    assert.deepEqual(
      [...run.reads].sort(),
      [`${sa}/ca.crt`, `${sa}/token`, "/proc/self/cgroup", "/proc/self/mountinfo"].sort(),
    );
    assert.deepEqual(
      [...run.writes],
      [],
      "the termination log the Pod spec names does not exist, so nothing is opened for writing",
    );
    assert.equal(existsSync(NO_TERMINATION_LOG), false, "and, as it does not exist, it is not created");
    assert.deepEqual([...run.connections].sort(), [`${api.host}:${api.port}`, `127.0.0.1:${shutdownPort}`].sort());
  });

  test("the service account's namespace file only when POD_NAMESPACE is unset", async () => {
    const { POD_NAMESPACE: _, ...env } = api.env();
    const run = await recordRun(["--container", "main"], env);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.reads.has(`${api.serviceAccountDir}/namespace`), [...run.reads].join(", "));
  });

  for (const [how, args, env] of [
    ["--container", ["--container", "main"], {}],
    ["PROA_CONTAINER", [], { PROA_CONTAINER: "main" }],
  ] as const) {
    test(`with ${how}, not /proc/self/mountinfo or /proc/self/cgroup: nothing but the service account's files`, async () => {
      const run = await recordRun([...args], { ...api.env(), ...env });
      assert.equal(run.code, 0, run.stderr);
      const sa = api.serviceAccountDir;
      assert.deepEqual([...run.reads].sort(), [`${sa}/ca.crt`, `${sa}/token`]);
      assert.deepEqual([...run.writes], []);
    });
  }

  test("with --kill, also /proc/self/cgroup, the list of /proc and, per process, its /proc/PID/exe link, comm, cmdline, stat and cgroup, and nothing else", async () => {
    // PROA_KILL_SCOPE=visible: this machine is no Pod, and without it proa would stop at its own cgroup.
    const run = await recordRun(["--container", "main", "--kill", NO_SUCH_PROCESS], {
      ...api.env(),
      PROA_KILL_SCOPE: "visible",
    });
    assert.equal(run.code, 0, run.stderr);
    const sa = api.serviceAccountDir;
    const others = [...run.reads].filter((path) => path !== `${sa}/ca.crt` && path !== `${sa}/token`);
    assert.ok(others.includes("/proc"), others.join(", "));
    assert.ok(
      others.some((path) => /^\/proc\/\d+\/exe$/.test(path)),
      others.join(", "),
    );
    assert.ok(others.includes("/proc/self/cgroup"), others.join(", "));
    assert.deepEqual(
      others.filter(
        (path) =>
          path !== "/proc" &&
          path !== "/proc/self/cgroup" &&
          !/^\/proc\/\d+\/(exe|comm|cmdline|stat|cgroup)$/.test(path),
      ),
      [],
    );
    assert.deepEqual([...run.writes], []);
  });

  test("the one file it writes: the empty termination log of its own container, with the run's summary; with --no-termination-message, none", async () => {
    const terminationLog = join(scratch, "termination-log");
    writeFileSync(terminationLog, "");
    const pod = podWith({ sidecars: ["sidecar-1"], ready: true });
    pod.spec!.containers![0]!.terminationMessagePath = terminationLog; // "main", proa's own
    const run = await recordRun(["--container", "main"], api.env(), pod);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual([...run.writes], [terminationLog]);
    assert.match(readFileSync(terminationLog, "utf8"), /^program exited 0 after /);

    writeFileSync(terminationLog, "");
    const off = await recordRun(["--container", "main", "--no-termination-message"], api.env(), pod);
    assert.equal(off.code, 0, off.stderr);
    assert.deepEqual([...off.writes], []);
    assert.equal(readFileSync(terminationLog, "utf8"), "");
  });
});

describe("what proa reads and connects to with --ready-url", () => {
  test("with --ready-url, no service account file, no KUBERNETES_* variable and no POD_* variable is read; it writes only the termination log and connects only to the ready and shutdown URLs, never the API server", async () => {
    // A sidecar's admin port: ready at once, and it stops listening on its shutdown request.
    const sidecar = createServer((request, response) => {
      if (request.method === "POST") response.end("bye", () => (sidecar.close(), sidecar.closeAllConnections()));
      else response.end("ready");
    });
    await new Promise<void>((resolve) => sidecar.listen(0, "127.0.0.1", resolve));
    try {
      const base = `http://127.0.0.1:${(sidecar.address() as { port: number }).port}`;
      const requestsBefore = api.requests.length;
      // The API server is reachable and its service account files are valid: with --ready-url proa must not care.
      // No Pod spec to name the termination log: /dev/termination-log, here the variable that stands in for it.
      const terminationLog = join(scratch, "ready-url-termination-log");
      writeFileSync(terminationLog, "");
      const env = { ...api.env(), PROA_TERMINATION_MESSAGE_PATH: terminationLog };
      const run = await recordRun(
        ["--shutdown-timeout", "20s", "--ready-url", `${base}/ready`, "--shutdown-http-post", `${base}/quitquitquit`],
        env,
      );
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual([...run.reads], []);
      assert.deepEqual([...run.writes], [terminationLog]);
      assert.match(readFileSync(terminationLog, "utf8"), /^program exited 0 after .*; sidecars stopped: .*POST 200/);
      assert.deepEqual([...run.connections], [new URL(base).host]);
      assert.deepEqual(
        [...run.env].filter((name) => /^(KUBERNETES_|POD_)/.test(name) || name === "PROA_SERVICE_ACCOUNT_DIR"),
        [],
      );
      assert.deepEqual(
        [...run.env].filter((name) => !DOCUMENTED_ENV.includes(name)),
        [],
      );
      assert.equal(api.requests.length, requestsBefore, "not one request to the API server");
      assert.match(run.stderr, /nothing listens on 127\.0\.0\.1:\d+ any more; all sidecars have stopped listening/);
    } finally {
      sidecar.close();
      sidecar.closeAllConnections();
    }
  });
});

describe("what proa sends and runs", () => {
  test("a shutdown request carries no token, no Authorization header and no body: only the method, the URL's path and proa's User-Agent", async () => {
    shutdownRequests.length = 0;
    // A budget long enough for a loaded machine: the sidecar "exits" on its request, which ends the wait at once.
    const args = [
      "--shutdown-timeout",
      "20s",
      "--shutdown-http-post",
      shutdownUrl,
      "--shutdown-http-get",
      `${shutdownUrl}?step=2`,
    ];
    const run = await recordRun(args, { ...api.env(), PROA_CONTAINER: "main" });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(shutdownRequests.map((r) => `${r.method} ${r.url}`).sort(), [
      "GET /quitquitquit?step=2",
      "POST /quitquitquit",
    ]);
    const token = readFileSync(join(api.serviceAccountDir, "token"), "utf8");
    for (const r of shutdownRequests) {
      assert.equal(r.body, "");
      assert.equal(r.headers.authorization, undefined);
      assert.match(String(r.headers["user-agent"]), /^proa\//);
      assert.ok(!JSON.stringify(r).includes(token), "the service account token is never sent to a sidecar");
    }
  });

  test("the program is started without a shell: its arguments arrive exactly as given, metacharacters and all", async () => {
    api.setPod(podWith({ sidecars: ["sidecar-1"], ready: true }));
    const marker = join(scratch, "a-shell-ran");
    const args = [`$(touch ${marker})`, `; touch ${marker}`, "*", "`id`", "a b", ""];
    const printArgs = "process.stdout.write(JSON.stringify(process.argv.slice(1)))";
    const proa = startProa(["--shutdown-timeout", "200ms", "--", process.execPath, "-e", printArgs, ...args], {
      ...api.env(),
      PROA_CONTAINER: "main",
    });
    assert.equal((await proa.exit).code, 0, proa.stderr());
    assert.deepEqual(JSON.parse(proa.stdout.join("\n")), args);
    assert.equal(existsSync(marker), false);
  });
});
