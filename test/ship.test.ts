// What ships besides the bundle: the Dockerfile agrees with the repository and the package's build script, the build
// is reproducible, and job.yaml's RBAC and sidecar are what its comments say.
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, posix } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const read = (file: string) => readFileSync(join(ROOT, file), "utf8");
const packageJson = JSON.parse(read("package.json")) as { scripts: Record<string, string> };
const scratch = mkdtempSync(join(tmpdir(), "proa-ship-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------------------------
// A Dockerfile reader: enough of the syntax for the checks below (comments, line continuations, stages, flags).

interface Instruction {
  keyword: string; // upper case
  args: string;
  line: number;
}

interface Stage {
  index: number;
  image: string;
  name: string | undefined;
  instructions: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  let pending = "";
  let start = 0;
  text.split("\n").forEach((line, i) => {
    if (/^\s*#/.test(line) || (pending === "" && line.trim() === "")) return; // comments, even inside a continuation
    if (pending === "") start = i + 1;
    if (/\\\s*$/.test(line)) {
      pending += line.replace(/\\\s*$/, " ");
      return;
    }
    const [, keyword = "", args = ""] = /^(\S+)\s*([\s\S]*)$/.exec((pending + line).trim()) ?? [];
    pending = "";
    const instruction = { keyword: keyword.toUpperCase(), args: args.trim(), line: start };
    if (instruction.keyword === "FROM") {
      const words = instruction.args.split(/\s+/).filter((word) => !word.startsWith("--"));
      const name = words[1]?.toLowerCase() === "as" ? words[2] : undefined;
      stages.push({ index: stages.length, image: words[0] ?? "", name, instructions: [] });
    } else {
      assert.ok(stages.length > 0, `Dockerfile line ${start}: ${keyword} before the first FROM`);
      stages.at(-1)!.instructions.push(instruction);
    }
  });
  return stages;
}

/** A COPY or ADD: its --flags, sources and destination, in shell or JSON form. */
function copyOf(instruction: Instruction): { from: string | undefined; sources: string[]; dest: string } {
  const flags: Record<string, string> = {};
  let rest = instruction.args;
  for (let flag; (flag = /^--([\w-]+)(?:=(\S*))?\s+/.exec(rest)); rest = rest.slice(flag[0].length))
    flags[flag[1]!] = flag[2] ?? "";
  const paths: string[] = rest.startsWith("[") ? JSON.parse(rest) : rest.split(/\s+/);
  assert.ok(
    paths.length >= 2,
    `Dockerfile line ${instruction.line}: ${instruction.keyword} needs a source and a destination`,
  );
  return { from: flags.from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
}

const isCopy = (i: Instruction) => i.keyword === "COPY" || i.keyword === "ADD";

/** The exec (JSON) form of ENTRYPOINT or CMD, the only form that works in an image without a shell. */
function execForm(instruction: Instruction): string[] {
  assert.ok(
    instruction.args.startsWith("["),
    `Dockerfile line ${instruction.line}: ${instruction.keyword} must use the exec form ["node", ...]: the final image has no shell`,
  );
  return JSON.parse(instruction.args);
}

/** The absolute directory WORKDIR has set in a stage before the given instruction (Docker's default is /). */
function workdirBefore(stage: Stage, before: Instruction | undefined): string {
  let dir = "/";
  for (const instruction of stage.instructions) {
    if (instruction === before) break;
    if (instruction.keyword === "WORKDIR") dir = posix.resolve(dir, instruction.args);
  }
  return dir;
}

// A .dockerignore matcher: the last matching pattern decides, "!" re-includes, and excluding a folder excludes what
// is inside it.
function dockerignored(patterns: string[], path: string): boolean {
  const rules = patterns.map((pattern) => {
    const negated = pattern.startsWith("!");
    const glob = posix.normalize((negated ? pattern.slice(1) : pattern).trim().replace(/^\/+/, ""));
    const source = glob
      .split(/(\*\*\/|\*\*|\*|\?)/)
      .map(
        (part) =>
          ({ "**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]" })[part] ??
          part.replace(/[.+^${}()|[\]\\]/g, "\\$&"),
      )
      .join("");
    return { negated, regex: new RegExp(`^${source}(?:/.*)?$`) };
  });
  let ignored = false;
  for (const rule of rules) if (rule.regex.test(path)) ignored = !rule.negated;
  return ignored;
}

const stages = parseDockerfile(read("Dockerfile"));
const finalStage = stages.at(-1)!;
const buildScript = packageJson.scripts.build ?? "";
const outfile = /--outfile[= ](\S+)/.exec(buildScript)?.[1];
const ignorePatterns = read(".dockerignore")
  .split("\n")
  .map((line) => line.trim())
  .filter((line) => line !== "" && !line.startsWith("#"));

/** The stage that runs `npm run build`. */
function buildStage(): { stage: Stage; run: Instruction } {
  for (const stage of stages) {
    const run = stage.instructions.find((i) => i.keyword === "RUN" && /\bnpm run build\b/.test(i.args));
    if (run) return { stage, run };
  }
  assert.fail("no stage of the Dockerfile runs `npm run build`, the package's build script");
}

/** Paths the build stage copies from the build context, relative to the repository. */
function contextSources(stage: Stage): string[] {
  return stage.instructions
    .filter(isCopy)
    .map(copyOf)
    .filter((copy) => copy.from === undefined)
    .flatMap((copy) => copy.sources.map((source) => posix.normalize(source)));
}

describe("Dockerfile", () => {
  test("has a build stage and a final stage", () => {
    assert.ok(stages.length >= 2, `expected a multi-stage Dockerfile, found ${stages.length} stage(s)`);
    assert.notEqual(buildStage().stage, finalStage, "the final stage must not be the one that builds");
  });

  test("uses no end-of-life Node.js: every node image it names, as a stage or in its comments, and job.yaml's, is Node 24", () => {
    // Node.js 20 reached its end of life on 2026-04-30; 24 is the LTS the README recommends.
    const nodeImages =
      `${read("Dockerfile")}\n${read("job.yaml")}`.match(/\bnode:\d[\w.-]*|\bdistroless\/nodejs\d+[\w.:-]*/g) ?? [];
    assert.ok(
      nodeImages.length >= 4,
      `expected the build stage, the final image, the copy examples and job.yaml's sidecar: ${nodeImages.join(", ")}`,
    );
    for (const image of nodeImages)
      assert.match(image, /^(?:node:|distroless\/nodejs)24\b/, `${image}: use Node.js 24, the current LTS`);
  });

  test("pins every base image by a tag or a digest, never latest", () => {
    const stageNames = new Set<string>();
    for (const stage of stages) {
      // scratch is no image but Docker's name for an empty one: nothing to pin.
      if (!stageNames.has(stage.image) && stage.image !== "scratch") {
        assert.doesNotMatch(
          stage.image,
          /\$/,
          `FROM ${stage.image}: a base image from a build argument cannot be checked`,
        );
        const [reference = "", digest] = stage.image.split("@");
        const lastPart = reference.split("/").at(-1) ?? "";
        const tag = lastPart.includes(":") ? lastPart.split(":").at(-1) : undefined;
        assert.ok(tag !== undefined || digest !== undefined, `FROM ${stage.image}: no tag, so it means latest`);
        assert.notEqual(tag, "latest", `FROM ${stage.image}: latest is not a pin`);
        if (digest !== undefined)
          assert.match(digest, /^sha256:[0-9a-f]{64}$/, `FROM ${stage.image}: a malformed digest`);
      }
      if (stage.name) stageNames.add(stage.name);
    }
  });

  test("its portable stage builds the folder with portable/build.sh for both architectures, and its image holds that folder alone at /proa, as a user that is not root", () => {
    const build = stages.find((stage) =>
      stage.instructions.some((i) => i.keyword === "RUN" && /\bbash portable\/build\.sh amd64 arm64\b/.test(i.args)),
    );
    assert.ok(build?.name, "a named stage runs portable/build.sh amd64 arm64");
    const run = build.instructions.find((i) => /portable\/build\.sh/.test(i.args))!;
    assert.match(
      run.args,
      /\bnpm run build && bash portable\/build\.sh/,
      "dist/proa.js is built first, from the sources",
    );
    assert.ok(
      contextSources(build).some((source) => source.replace(/\/$/, "") === "portable"),
      "the stage copies portable/ (the script, install.ts and pins)",
    );
    const image = stages.find((stage) => stage.name === "portable");
    assert.ok(image, "a stage named portable (docker build --target portable)");
    assert.equal(image.image, "scratch", "nothing but the folder: no shell, no C library outside it");
    assert.notEqual(finalStage, image, "the default target stays today's image");
    const copies = image.instructions.filter(isCopy).map(copyOf);
    assert.deepEqual(copies, [
      {
        from: build.name,
        sources: [`${workdirBefore(build, run)}/dist/portable/linux-\${TARGETARCH}/`],
        dest: "/proa/",
      },
    ]);
    assert.ok(image.instructions.some((i) => i.keyword === "ARG" && i.args === "TARGETARCH"));
    // node's ELF interpreter is /proa/lib/ld-linux-*: the folder must be at /proa, which portable/build.sh sets.
    assert.match(read("portable/build.sh"), /^PREFIX=\/proa /m);
    const user = image.instructions.filter((i) => i.keyword === "USER").at(-1);
    assert.match(user?.args ?? "", /^[1-9]\d*:[1-9]\d*$/, "a numeric user and group other than root");
    assert.deepEqual(execForm(image.instructions.find((i) => i.keyword === "ENTRYPOINT")!), ["/proa/bin/proa"]);
  });

  test("copies from the build context only files that are in the repository and that .dockerignore lets through", () => {
    const sources = stages.flatMap((stage) => contextSources(stage));
    assert.ok(sources.length > 0);
    for (const source of sources) {
      assert.doesNotMatch(source, /[*?[]/, `COPY ${source}: name the files, so that this test can check them`);
      assert.ok(existsSync(join(ROOT, source)) || source === outfile, `COPY ${source}: no such file in the repository`);
      assert.equal(
        dockerignored(ignorePatterns, source),
        false,
        `COPY ${source}: .dockerignore leaves it out of the build context`,
      );
    }
  });

  test(".dockerignore leaves dependencies, build output and git history out of the build context", () => {
    for (const path of [
      ".git",
      ".git/HEAD",
      "node_modules",
      "node_modules/esbuild/package.json",
      "bench/node_modules/x",
      "dist",
      "dist/proa.js",
    ]) {
      assert.ok(dockerignored(ignorePatterns, path), `${path} should be in .dockerignore`);
    }
    assert.equal(dockerignored(ignorePatterns, "proa.ts"), false);
  });

  test("installs the dependencies with npm ci from the lockfile, then builds with the package's build script", () => {
    assert.match(buildScript, /\besbuild\b/, "package.json has no build script");
    const { stage, run } = buildStage();
    const instructions = stage.instructions;
    const install = instructions.find((i) => i.keyword === "RUN" && /\bnpm ci\b/.test(i.args));
    assert.ok(install, "the build stage must install with `npm ci`, which follows package-lock.json exactly");
    assert.match(
      install.args,
      /(^|\s)--ignore-scripts(\s|$)/,
      "`npm ci --ignore-scripts`: no dependency's install script runs in the build",
    );
    assert.ok(instructions.indexOf(install) < instructions.indexOf(run), "`npm ci` must come before `npm run build`");
    const copiedBefore = (instruction: Instruction) =>
      instructions
        .slice(0, instructions.indexOf(instruction))
        .filter(isCopy)
        .map(copyOf)
        .filter((copy) => copy.from === undefined)
        .flatMap((copy) => copy.sources.map((source) => posix.normalize(source)));
    for (const file of ["package.json", "package-lock.json"])
      assert.ok(copiedBefore(install).includes(file), `${file} must be copied before \`npm ci\``);
    assert.deepEqual(
      copiedBefore(run).sort(),
      contextSources(stage).sort(),
      "every file the build stage copies must be there before `npm run build`",
    );
    for (const instruction of instructions) {
      if (instruction.keyword === "RUN")
        assert.doesNotMatch(
          instruction.args,
          /\besbuild\b/,
          `line ${instruction.line}: run \`npm run build\` rather than esbuild itself`,
        );
    }
  });

  test("holds only the bundle in the final stage, copied from where the build script writes it, and its ENTRYPOINT runs it with node", () => {
    assert.ok(outfile, "the build script has no --outfile");
    const { stage, run } = buildStage();
    const built = posix.resolve(workdirBefore(stage, run), outfile);
    const copies = finalStage.instructions.filter(isCopy);
    assert.equal(copies.length, 1, "the final stage should copy the bundle and nothing else");
    const copy = copyOf(copies[0]!);
    assert.ok(
      copy.from !== undefined && [stage.name, String(stage.index)].includes(copy.from),
      `the final stage must copy from the build stage, not ${copy.from ?? "the build context"}`,
    );
    assert.deepEqual(copy.sources, [built], `the build script writes ${built}`);
    const dest = posix.resolve(
      workdirBefore(finalStage, copies[0]),
      copy.dest.endsWith("/") ? posix.join(copy.dest, posix.basename(built)) : copy.dest,
    );

    const entrypoint = finalStage.instructions.filter((i) => i.keyword === "ENTRYPOINT").at(-1);
    assert.ok(entrypoint, "the final stage needs an ENTRYPOINT");
    const command = execForm(entrypoint);
    assert.equal(posix.basename(command[0] ?? ""), "node", `ENTRYPOINT ${entrypoint.args}: should start with node`);
    assert.equal(command[1], dest, `ENTRYPOINT ${entrypoint.args}: should run the bundle, copied to ${dest}`);
    for (const cmd of finalStage.instructions.filter((i) => i.keyword === "CMD")) execForm(cmd);
  });

  test("runs the final stage as a user that is not root", () => {
    const user = finalStage.instructions.filter((i) => i.keyword === "USER").at(-1);
    assert.ok(user, "the final stage needs a USER");
    const name = user.args.split(":")[0]!.trim();
    assert.ok(name !== "" && name !== "root" && name !== "0", `USER ${user.args} is root`);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("the build", () => {
  test("needs nothing but the files the Dockerfile copies, and gives byte-identical, executable output when run twice in different folders", () => {
    assert.ok(outfile);
    const files = contextSources(buildStage().stage);
    /** A folder holding exactly those files (copied from `from`), with this checkout's node_modules for esbuild. */
    const prepare = (name: string, from: string) => {
      const dir = join(scratch, name);
      for (const file of files) {
        mkdirSync(dirname(join(dir, file)), { recursive: true });
        cpSync(join(from, file), join(dir, file), { recursive: true });
      }
      symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
      return dir;
    };
    const build = (dir: string) => {
      // Without the npm_* variables of an enclosing `npm test`, which would point npm at this checkout.
      const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
      execFileSync("npm", ["run", "build"], {
        cwd: dir,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...env, npm_config_update_notifier: "false" },
      });
      return { bytes: readFileSync(join(dir, outfile)), mode: statSync(join(dir, outfile)).mode & 0o777 };
    };
    const first = prepare("first", ROOT);
    const second = prepare("second-build", first); // the same bytes, even if someone edits the sources meanwhile
    const { bytes: a, mode: modeA } = build(first);
    const umask = process.umask(0o077); // the second build under a strict umask: chmod, not the umask, sets the mode
    let secondBuild;
    try {
      secondBuild = build(second);
    } finally {
      process.umask(umask);
    }
    const { bytes: b, mode: modeB } = secondBuild;
    assert.ok(a.length > 1000, "the bundle is suspiciously small");
    assert.deepEqual([modeA, modeB], [0o755, 0o755], "the bundle must be executable (rwxr-xr-x) whatever the umask");
    if (!a.equals(b)) {
      const at = a.findIndex((byte, i) => byte !== b[i]);
      assert.fail(
        `the two builds differ from byte ${at}: ${JSON.stringify(a.subarray(at, at + 80).toString())} vs ${JSON.stringify(b.subarray(at, at + 80).toString())}`,
      );
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------

const jobYaml = read("job.yaml");
const documents = jobYaml.split(/^---[ \t]*$/m);
const withoutComments = (text: string) => text.replace(/(^|\s)#.*$/gm, "$1");

/** The lines of a YAML block scalar (`key: |`), dedented. */
function blockScalar(text: string, key: string): string {
  const lines = text.split("\n");
  const start = lines.findIndex((line) => new RegExp(`^\\s*${key.replace(/\./g, "\\.")}:\\s*\\|\\s*$`).test(line));
  assert.ok(start >= 0, `job.yaml has no block scalar ${key}: |`);
  const keyIndent = /^\s*/.exec(lines[start]!)![0].length;
  const body: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() !== "" && /^\s*/.exec(line)![0].length <= keyIndent) break;
    body.push(line);
  }
  const indent = Math.min(...body.filter((line) => line.trim() !== "").map((line) => /^\s*/.exec(line)![0].length));
  return body.map((line) => line.slice(indent)).join("\n");
}

function httpRequest(port: number, method: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, agent: false }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("package.json", () => {
  test("covers every dependency with an install script in allowScripts, and allows none, so npm ci neither warns nor runs one", () => {
    const lock = JSON.parse(read("package-lock.json")) as {
      packages: Record<string, { name?: string; version?: string; hasInstallScript?: boolean }>;
    };
    const { allowScripts = {} } = JSON.parse(read("package.json")) as { allowScripts?: Record<string, boolean> };
    const withScripts = Object.entries(lock.packages)
      .filter(([, entry]) => entry.hasInstallScript)
      .map(([path, entry]) => ({ name: entry.name ?? path.split("node_modules/").at(-1)!, version: entry.version }));
    assert.ok(withScripts.length > 0, "expected esbuild's postinstall in the lockfile");
    for (const { name, version } of withScripts) {
      const entry = allowScripts[`${name}@${version}`] ?? allowScripts[name];
      assert.equal(
        entry,
        false,
        `${name}@${version}: deny its install script in package.json's allowScripts (npm install-scripts deny ${name})`,
      );
    }
  });
});

describe("npm sbom", () => {
  test("lists no component once the dev dependencies are left out: nothing ships but proa's own bundle", () => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
    const sbom = JSON.parse(
      execFileSync("npm", ["sbom", "--sbom-format", "cyclonedx", "--omit", "dev"], {
        cwd: ROOT,
        encoding: "utf8",
        env: { ...env, npm_config_update_notifier: "false" },
      }),
    );
    assert.deepEqual(sbom.components ?? [], []);
  });
});

describe("job.yaml", () => {
  test("grants proa's ServiceAccount exactly list and watch on pods, and nothing else", () => {
    const roles = documents.filter((doc) => /^kind:\s*Role\s*$/m.test(doc));
    assert.equal(roles.length, 1, "expected one Role");
    const rules = withoutComments(roles[0]!).split(/^rules:\s*$/m)[1];
    assert.ok(rules, "the Role has no rules");
    const items = rules.split(/^\s*-\s+/m).filter((item) => item.trim() !== "");
    assert.equal(items.length, 1, "expected exactly one rule");
    const fields = Object.fromEntries(
      items[0]!
        .split("\n")
        .filter((line) => line.trim() !== "")
        .map((line) => {
          const match = /^\s*(\w+):\s*(\[.*\])\s*$/.exec(line);
          assert.ok(
            match,
            `write the rule's lists in flow style, like verbs: ["list", "watch"], for this check: ${line}`,
          );
          return [match[1]!, (JSON.parse(match[2]!) as string[]).sort()];
        }),
    );
    assert.deepEqual(fields, { apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"] });
  });

  test("names no namespace, so that `kubectl apply -n` chooses it", () => {
    assert.doesNotMatch(withoutComments(jobYaml), /^\s*namespace:/m);
  });

  test("asks the sidecar to shut down on the port it listens on", () => {
    const url = /-\s+--shutdown-http-post\s*\n\s*-\s+(\S+)/.exec(jobYaml)?.[1];
    const port = /name:\s*PORT\s*\n\s*value:\s*"(\d+)"/.exec(jobYaml)?.[1];
    assert.ok(url && port, "expected --shutdown-http-post URL and the sidecar's PORT");
    assert.equal(url, `http://localhost:${port}/shutdown`);
  });

  test("its no-API variant mounts no token, uses no ServiceAccount, and waits on the sidecar's own /ready", () => {
    const variant = documents.find((doc) => /^\s*-\s+--ready-url\s*$/m.test(doc));
    assert.ok(variant, "expected a Job that uses --ready-url");
    const text = withoutComments(variant);
    assert.match(text, /^\s*automountServiceAccountToken:\s*false\s*$/m);
    assert.doesNotMatch(text, /serviceAccountName:/);
    const port = /name:\s*PORT\s*\n\s*value:\s*"(\d+)"/.exec(text)?.[1];
    assert.equal(/-\s+--ready-url\s*\n\s*-\s+(\S+)/.exec(text)?.[1], `http://localhost:${port}/ready`);
  });

  test("its sidecar becomes ready only after a while, serves /work, and exits 0 on POST /shutdown", async () => {
    const script = join(scratch, "sidecar.mjs");
    writeFileSync(script, blockScalar(jobYaml, "sidecar.mjs"));
    const sidecar: ChildProcess = spawn(process.execPath, [script], {
      env: { PORT: "0", READY_AFTER_SECONDS: "1" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      let stdout = "";
      sidecar.stdout!.setEncoding("utf8");
      const port = await new Promise<number>((resolve, reject) => {
        sidecar.stdout!.on("data", (chunk: string) => {
          stdout += chunk;
          const match = /port (\d+)/.exec(stdout);
          if (match) resolve(Number(match[1]));
        });
        sidecar.on("exit", (code) => reject(new Error(`the sidecar exited early with ${code}: ${stdout}`)));
      });
      const exited = once(sidecar, "exit");
      assert.equal((await httpRequest(port, "GET", "/ready")).status, 503, "ready at once");
      const deadline = Date.now() + 10_000;
      while ((await httpRequest(port, "GET", "/ready")).status !== 200) {
        assert.ok(Date.now() < deadline, "never became ready");
        await sleep(100);
      }
      assert.deepEqual(await httpRequest(port, "GET", "/work"), {
        status: 200,
        body: "42 rows copied by the sidecar\n",
      });
      assert.equal((await httpRequest(port, "POST", "/shutdown")).status, 200);
      assert.deepEqual(await exited, [0, null]);
    } finally {
      if (sidecar.exitCode === null && sidecar.signalCode === null) sidecar.kill("SIGKILL");
    }
  });
});
