// proa's self-contained folder (portable/build.sh, dist/portable/linux-ARCH): the same bytes from a second build,
// every file's origin and checksum in its manifest, and proa running from it with nothing else: in an empty root (the
// folder, /proc and /tmp), in a root of static busybox, and in a root of musl, Alpine's C library. Each root is a
// mount and PID namespace (unshare --root), so proa is PID 1 as in a container, and a program of that root is the
// one it runs. The arm64 folder cannot run here: its ELF headers, loader and libraries are checked instead.
//
// Needs root (unshare) and Debian's busybox-static, musl and musl-tools (installed here when missing, as CI runs
// as root); outside CI a machine without them skips the suite with the reason.
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const OUT = join(REPO, "dist/portable");
const BUILD = join(REPO, "portable/build.sh");
const PACKAGES = ["busybox-static", "musl", "musl-tools"];
const ARCHES = {
  amd64: { loader: "ld-linux-x86-64.so.2", machine: "Advanced Micro Devices X86-64" },
  arm64: { loader: "ld-linux-aarch64.so.1", machine: "AArch64" },
} as const;
const LIBS = ["libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "libstdc++.so.6", "libgcc_s.so.1"];

function skipReason(): string | undefined {
  if (process.env.CI && process.env.CI !== "false") return undefined; // in CI a missing piece fails
  if (process.getuid?.() !== 0) return "not root: the roots are mount and PID namespaces (unshare)";
  if (!existsSync(join(OUT, "linux-amd64/bin/proa"))) return "no dist/portable: run `npm run build:portable`";
  return undefined;
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

/** Every file under dir, relative, sorted. */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(command, args, { env, maxBuffer: 16 << 20, timeout: 600_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${command} ${args.join(" ")}: ${error.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
}

/** The ELF facts readelf prints: machine, interpreter, NEEDED, RPATH and RUNPATH. */
function elf(file: string) {
  const text = execFileSync("readelf", ["-h", "-l", "-d", "-W", file], { encoding: "utf8" });
  return {
    machine: /Machine:\s+(.+)/.exec(text)?.[1]?.trim(),
    interpreter: /Requesting program interpreter: ([^\]]+)\]/.exec(text)?.[1],
    needed: [...text.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!),
    rpath: /\(RPATH\)\s+Library rpath: \[([^\]]+)\]/.exec(text)?.[1],
    runpath: /\(RUNPATH\)\s+Library runpath: \[([^\]]+)\]/.exec(text)?.[1],
  };
}

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** argv run as PID 1 of a new mount and PID namespace whose root is `root` (with its own /proc): nothing of this
 * machine's filesystem is visible to it. Killed after timeoutMs, so a hang fails the test instead of stalling it. */
function inRoot(root: string, argv: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Run> {
  const child = spawn(
    "unshare",
    ["--mount", "--pid", "--fork", "--kill-child", `--root=${root}`, "--mount-proc=/proc", ...argv],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

/** A new root holding the amd64 folder at /proa (hard links where the filesystem allows, else copies), /proc and
 * /tmp, and what `extra` adds. */
function makeRoot(scratch: string, name: string, extra: (root: string) => void = () => {}): string {
  const root = join(scratch, name);
  const folder = join(OUT, "linux-amd64");
  for (const file of files(folder)) {
    const to = join(root, "proa", file);
    mkdirSync(dirname(to), { recursive: true });
    try {
      linkSync(join(folder, file), to);
    } catch {
      copyFileSync(join(folder, file), to);
      chmodSync(to, statSync(join(folder, file)).mode);
    }
  }
  mkdirSync(join(root, "proc"));
  mkdirSync(join(root, "tmp"), { mode: 0o1777 });
  extra(root);
  return root;
}

/** The sidecar stand-in on loopback (the roots share this machine's network): /ready answers 200, POST /shutdown
 * is the shutdown request, after which it exits (stops listening), /program is the program's own call; every request
 * is recorded in order. */
async function sidecar(): Promise<{ url: string; seen: string[]; server: Server }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.end("ok\n", () => {
      if (req.url === "/shutdown") server.close(() => {}).closeAllConnections();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, seen, server };
}

describe("proa's self-contained folder (dist/portable)", { skip: skipReason(), timeout: 15 * 60_000 }, () => {
  let scratch: string;
  let side: Awaited<ReturnType<typeof sidecar>> | undefined;

  before(async () => {
    const installed = (p: string) => {
      try {
        return execFileSync("dpkg-query", ["-W", "-f=${db:Status-Status}", p], { encoding: "utf8" }) === "installed";
      } catch {
        return false; // dpkg-query fails for a package it has never seen
      }
    };
    const missing = PACKAGES.filter((p) => !installed(p));
    if (missing.length > 0) {
      await run("apt-get", ["-o", "DPkg::Lock::Timeout=300", "update", "-qq"]);
      await run(
        "apt-get",
        ["-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq", "--no-install-recommends", ...missing],
        {
          ...process.env,
          DEBIAN_FRONTEND: "noninteractive",
        },
      );
    }
    scratch = mkdtempSync(join(tmpdir(), "proa-portable-"));
  });

  after(() => {
    side?.server.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test("the folder is dist/proa.js as it is now (run `npm run build:portable` after a change)", () => {
    const bundle = readFileSync(join(REPO, "dist/proa.js"), "utf8");
    const proa = readFileSync(join(OUT, "linux-amd64/bin/proa"), "utf8");
    assert.equal(proa.split("\n")[0], "#!/proa/bin/node");
    assert.equal(proa.slice(proa.indexOf("\n")), bundle.slice(bundle.indexOf("\n")), "bin/proa is dist/proa.js");
  });

  test("a second build from the same inputs writes the same bytes: every file, its mode, and the layer tar", async () => {
    const second = join(scratch, "second");
    await run("bash", [BUILD, "amd64", "arm64"], { ...process.env, PROA_PORTABLE_OUT: second });
    for (const arch of Object.keys(ARCHES)) {
      const [a, b] = [join(OUT, `linux-${arch}`), join(second, `linux-${arch}`)];
      assert.deepEqual(files(b), files(a), `${arch}: the same files`);
      for (const file of files(a)) {
        assert.equal(sha256(join(b, file)), sha256(join(a, file)), `${arch}: ${file} has the same bytes`);
        assert.equal(statSync(join(b, file)).mode, statSync(join(a, file)).mode, `${arch}: ${file} has the same mode`);
      }
      assert.equal(sha256(join(second, `proa-linux-${arch}.tar`)), sha256(join(OUT, `proa-linux-${arch}.tar`)));
    }
    rmSync(second, { recursive: true, force: true });
  });

  test("a cached .deb whose bytes differ from debs.lock's SHA-256 stops the build, which leaves nothing behind", async () => {
    const cache = join(scratch, "cache");
    const real = join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? "/root", ".cache"), "proa/portable");
    mkdirSync(join(cache, "proa/portable/debs"), { recursive: true });
    for (const entry of readdirSync(real).filter((name) => name.startsWith("node-")))
      execFileSync("ln", ["-s", join(real, entry), join(cache, "proa/portable", entry)]);
    for (const deb of readdirSync(join(real, "debs")))
      copyFileSync(join(real, "debs", deb), join(cache, "proa/portable/debs", deb));
    const tampered = readdirSync(join(cache, "proa/portable/debs")).find((name) => /^libc6_.*_amd64\.deb$/.test(name));
    assert.ok(tampered, "the build cached libc6's amd64 .deb");
    writeFileSync(join(cache, "proa/portable/debs", tampered), "\n", { flag: "a" });
    const out = join(scratch, "tampered-out");
    await assert.rejects(
      run("bash", [BUILD, "amd64"], { ...process.env, XDG_CACHE_HOME: cache, PROA_PORTABLE_OUT: out }),
      new RegExp(
        `error: .*/${tampered.replaceAll(".", "\\.").replaceAll("+", "\\+")} does not match portable/debs.lock: remove it`,
      ),
    );
    assert.deepEqual(readdirSync(out), [], "no folder, no layer, no scratch folder");
    rmSync(cache, { recursive: true, force: true });
  });

  test("the manifest names every file's origin by pin (npm integrity, Debian .deb SHA-256) and its checksum", () => {
    const lock = JSON.parse(readFileSync(join(REPO, "portable/package-lock.json"), "utf8"));
    const debs = readFileSync(join(REPO, "portable/debs.lock"), "utf8")
      .split("\n")
      .filter((line) => line && !line.startsWith("#"))
      .map((line) => line.split(" "));
    // One pin for the Node.js that proa's image and CI run: the amd64 build is ci/node-versions' node24.
    const ciNode = JSON.parse(readFileSync(join(REPO, "ci/node-versions/package-lock.json"), "utf8")).packages[
      "node_modules/node24"
    ];
    const amd64 = lock.packages["node_modules/node-amd64"];
    assert.deepEqual([amd64.version, amd64.integrity], [ciNode.version, ciNode.integrity]);
    for (const arch of Object.keys(ARCHES)) {
      const dir = join(OUT, `linux-${arch}`);
      const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
      assert.equal(manifest.platform, `linux/${arch}`);
      const listed = manifest.files.map((f: { path: string }) => f.path);
      assert.deepEqual(
        listed,
        files(dir).filter((f) => f !== "manifest.json" && f !== "SHA256SUMS"),
        "every file but the manifest and SHA256SUMS, once",
      );
      for (const file of manifest.files) {
        assert.equal(sha256(join(dir, file.path)), file.sha256, `${arch}: ${file.path}'s SHA-256`);
        assert.equal(file.mode, (statSync(join(dir, file.path)).mode & 0o777).toString(8));
        const { origin } = file;
        if (origin.npm) {
          const pin = lock.packages[`node_modules/node-${arch}`];
          assert.deepEqual([origin.npm, origin.version, origin.integrity], [pin.name, pin.version, pin.integrity]);
        } else if (origin.debian) {
          const [name, debArch] = origin.debian.split(":");
          assert.ok(
            debs.some((d) => d[0] === name && d[1] === debArch && d[2] === origin.version && d[3] === origin.debSha256),
            `${arch}: ${file.path}: ${origin.debian} ${origin.version} is pinned in debs.lock`,
          );
          assert.equal(debArch, arch);
        } else assert.ok(origin.built, `${arch}: ${file.path} has an origin`);
      }
      // SHA256SUMS: what `sha256sum -c` checks, the manifest included.
      assert.match(
        execFileSync("sha256sum", ["-c", "--strict", "SHA256SUMS"], { cwd: dir, encoding: "utf8" }),
        /manifest.json: OK/,
      );
      assert.equal(readFileSync(join(dir, "SHA256SUMS"), "utf8").trim().split("\n").length, files(dir).length - 1);
    }
  });

  for (const [arch, { loader, machine }] of Object.entries(ARCHES)) {
    test(`${arch}: node's interpreter is the folder's loader, its DT_RPATH the folder's lib/, and lib/ holds every library it needs, of its machine`, () => {
      const dir = join(OUT, `linux-${arch}`);
      const node = elf(join(dir, "bin/node"));
      assert.equal(node.machine, machine);
      assert.equal(node.interpreter, `/proa/lib/${loader}`);
      assert.equal(node.rpath, "/proa/lib", "DT_RPATH: searched before LD_LIBRARY_PATH");
      assert.equal(node.runpath, undefined, "no DT_RUNPATH (it would turn DT_RPATH off)");
      assert.deepEqual([...node.needed].sort(), [...LIBS, loader].sort());
      assert.deepEqual(readdirSync(join(dir, "lib")).sort(), [...LIBS, loader].sort());
      for (const lib of [...LIBS, loader]) {
        const facts = elf(join(dir, "lib", lib));
        assert.equal(facts.machine, machine, `${lib}'s machine`);
        // Whatever a library needs is itself in lib/ (and a direct need of node's, so found through its DT_RPATH).
        for (const needed of facts.needed) assert.ok([...LIBS, loader].includes(needed), `${lib} needs ${needed}`);
      }
      assert.equal(readFileSync(join(dir, "bin/proa"), "utf8").split("\n")[0], "#!/proa/bin/node");
      assert.equal(readFileSync(join(dir, "bin/install"), "utf8").split("\n")[0], "#!/proa/bin/node");
    });
  }

  /** proa in `root`: waits for the sidecar's /ready, runs `program`, POSTs /shutdown, exits with the program's status. */
  async function proaIn(root: string, program: (url: string) => string[], env: Record<string, string> = {}) {
    side?.server.close();
    side = await sidecar();
    const { url } = side;
    const result = await inRoot(
      root,
      [
        "/proa/bin/proa",
        "--ready-url",
        `${url}/ready`,
        "--shutdown-http-post",
        `${url}/shutdown`,
        "--",
        ...program(url),
      ],
      { PATH: "/bin", ...env },
    );
    return { ...result, seen: side.seen };
  }

  test("in an empty root (the folder, /proc, /tmp): proa waits, runs the program, shuts the sidecar down, exits with its status", async () => {
    const root = makeRoot(scratch, "empty");
    const call = (url: string) =>
      `require("http").get("${url}/program", (r) => { r.resume(); r.on("end", () => process.exit(7)); })`;
    const result = await proaIn(root, (url) => ["/proa/bin/node", "-e", call(url)]);
    assert.equal(result.status, 7, result.stderr);
    assert.deepEqual(result.seen, ["GET /ready", "GET /program", "POST /shutdown"]);
    assert.match(result.stderr, /"msg":"program exited","code":7/);
    assert.deepEqual(readdirSync(root).sort(), ["proa", "proc", "tmp"], "nothing else was in the root");
  });

  test("in a root of static busybox and no C library: proa runs its sh, the sidecar is shut down, the status is the program's", async () => {
    const root = makeRoot(scratch, "busybox", (r) => {
      mkdirSync(join(r, "bin"));
      copyFileSync("/bin/busybox", join(r, "bin/busybox"));
      chmodSync(join(r, "bin/busybox"), 0o755);
      for (const applet of ["sh", "wget"]) linkSync(join(r, "bin/busybox"), join(r, "bin", applet));
      // An image that sets LD_LIBRARY_PATH for its own program, to libraries that are not node's: DT_RPATH wins.
      mkdirSync(join(r, "badlib"));
      for (const lib of LIBS) writeFileSync(join(r, "badlib", lib), "not a library\n");
    });
    assert.equal(elf(join(root, "bin/busybox")).interpreter, undefined, "busybox is static");
    const program = (url: string) => ["sh", "-c", `wget -q -O - ${url}/program && exit 3`];
    const result = await proaIn(root, program, { LD_LIBRARY_PATH: "/badlib" });
    assert.equal(result.status, 3, result.stderr);
    assert.equal(result.stdout, "ok\n", "the program's own output");
    assert.deepEqual(result.seen, ["GET /ready", "GET /program", "POST /shutdown"]);

    const ready = await sidecar();
    const check = await inRoot(root, ["/proa/bin/proa", "--check", "--ready-url", `${ready.url}/ready`, "--", "sh"], {
      PATH: "/bin",
      LD_LIBRARY_PATH: "/badlib",
    });
    ready.server.close();
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(
      check.stdout,
      /^ok {3}Node\.js 24\.\d+\.\d+ \(\/proa\/bin\/node\), on glibc 2\.36 \(\/proa\/lib\/libc\.so\.6\)$/m,
    );
  });

  test("in a root of musl (Alpine's C library, from Debian's musl): proa runs a musl program and exits with its status", async () => {
    const root = makeRoot(scratch, "musl", (r) => {
      const source = join(scratch, "exit5.c");
      writeFileSync(source, '#include <stdio.h>\nint main(void) { puts("a musl program"); return 5; }\n');
      mkdirSync(join(r, "bin"));
      execFileSync("musl-gcc", ["-o", join(r, "bin/exit5"), source]);
      mkdirSync(join(r, "lib"));
      copyFileSync("/lib/ld-musl-x86_64.so.1", join(r, "lib/ld-musl-x86_64.so.1"));
      chmodSync(join(r, "lib/ld-musl-x86_64.so.1"), 0o755);
    });
    assert.equal(elf(join(root, "bin/exit5")).interpreter, "/lib/ld-musl-x86_64.so.1", "a dynamic musl program");
    const result = await proaIn(root, () => ["/bin/exit5"]);
    assert.equal(result.status, 5, result.stderr);
    assert.equal(result.stdout, "a musl program\n");
    assert.deepEqual(result.seen, ["GET /ready", "POST /shutdown"]);
  });

  test("/proa/bin/install copies the folder into a directory, checking each file: a changed file fails the copy", async () => {
    const root = makeRoot(scratch, "install", (r) => mkdirSync(join(r, "target")));
    const copied = await inRoot(root, ["/proa/bin/install", "/target"], {});
    assert.equal(copied.status, 0, copied.stderr);
    assert.match(copied.stdout, /^proa install: copied 16 files \(\d+\.\d MB\) from \/proa to \/target in \d+ ms/);
    assert.deepEqual(files(join(root, "target")), files(join(root, "proa")));
    for (const file of files(join(root, "proa"))) {
      assert.equal(sha256(join(root, "target", file)), sha256(join(root, "proa", file)), file);
      assert.equal(statSync(join(root, "target", file)).mode, statSync(join(root, "proa", file)).mode, file);
    }

    // A changed library (a copy, not the hard link to dist/): the copy stops there and the file is not left.
    const changed = join(root, "proa/lib/libm.so.6");
    const bytes = readFileSync(changed);
    rmSync(changed);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
    writeFileSync(changed, bytes);
    mkdirSync(join(root, "target2"));
    const refused = await inRoot(root, ["/proa/bin/install", "/target2"], {});
    assert.equal(refused.status, 1);
    assert.match(
      refused.stderr,
      /^proa install: \/proa\/lib\/libm\.so\.6 has SHA-256 [0-9a-f]{64}, not [0-9a-f]{64} as SHA256SUMS says: the folder was changed\n$/,
    );
    assert.ok(!existsSync(join(root, "target2/lib/libm.so.6")) && !existsSync(join(root, "target2/SHA256SUMS")));

    const usage = await inRoot(root, ["/proa/bin/install"], {});
    assert.equal(usage.status, 2);
    const notDir = await inRoot(root, ["/proa/bin/install", "/nowhere"], {});
    assert.equal(notDir.status, 1);
    assert.match(notDir.stderr, /\/nowhere is not a directory: mount the emptyDir there/);
  });
});
