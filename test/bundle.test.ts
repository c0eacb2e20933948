// The shipped artefact, dist/proa.js, as a black box: one self-contained file, its help, version and usage errors.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { BUNDLE, startProa } from "./helpers/proa-process.ts";

const packageJson = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const bundle = readFileSync(BUNDLE, "utf8");
const scratch = mkdtempSync(join(tmpdir(), "proa-bundle-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe("the bundle", () => {
  test("starts with a node shebang", () => {
    assert.ok(bundle.startsWith("#!/usr/bin/env node\n"));
  });

  test("is executable, so that a Pod's command can name it: it runs by its shebang and reports the version", () => {
    assert.equal(statSync(BUNDLE).mode & 0o777, 0o755);
    assert.equal(execFileSync(BUNDLE, ["--version"], { encoding: "utf8" }), `proa ${packageJson.version}\n`);
  });

  test("imports nothing but node: builtins", () => {
    const required = [...bundle.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g)].map((match) => match[1]);
    assert.ok(required.length > 0, "expected the bundle to require some builtins");
    assert.deepEqual(
      required.filter((name) => !name!.startsWith("node:")),
      [],
    );
    assert.doesNotMatch(bundle, /\bimport\s*\(|\bfrom\s+["']/, "no dynamic or static imports left in the bundle");
  });

  test("has one HTTP stack: node:http and node:https, never the global fetch (undici)", () => {
    assert.doesNotMatch(bundle, /\bfetch\s*\(|\bundici\b|\bnew\s+(Request|Headers)\(/);
  });

  test("runs alone, copied into an empty folder with no node_modules, and reports the package's version", () => {
    const alone = join(scratch, "proa.js");
    copyFileSync(BUNDLE, alone);
    const output = execFileSync(process.execPath, [alone, "--version"], { cwd: scratch, encoding: "utf8" });
    assert.equal(output, `proa ${packageJson.version}\n`);
  });

  test("--help lists every option and the environment variables proa reads", () => {
    const help = execFileSync(process.execPath, [BUNDLE, "--help"], { encoding: "utf8" });
    for (const option of [
      "--shutdown-http-get",
      "--shutdown-http-post",
      "--kill",
      "--kill-all",
      "--container",
      "--wait-for",
      "--ignore",
      "--ready-timeout",
      "--shutdown-timeout",
      "--shutdown-request-timeout",
      "--no-termination-message",
      "--help",
      "--version",
    ]) {
      assert.match(help, new RegExp(`${option}\\b`), option);
    }
    for (const variable of [
      "POD_NAME",
      "POD_NAMESPACE",
      "PROA_CONTAINER",
      "PROA_LOG",
      "RUST_LOG",
      "KUBERNETES_SERVICE_HOST",
      "KUBERNETES_SERVICE_PORT",
      "PROA_SERVICE_ACCOUNT_DIR",
      "PROA_TERMINATION_MESSAGE_PATH",
    ]) {
      assert.match(help, new RegExp(variable), variable);
    }
  });
});

describe("bad input", () => {
  const cases: [string, string[], RegExp][] = [
    ["an unknown option", ["--shutdown-http-gett=http://a/"], /unknown option --shutdown-http-gett/],
    ["a missing option value", ["-g"], /option -g needs a value/],
    [
      "a URL that is not http(s)",
      ["--shutdown-http-post", "unix:/run/envoy.sock"],
      /needs an http:\/\/ or https:\/\/ URL/,
    ],
    ["a value given to the switch -K", ["-K=1"], /option -K, --kill-all takes no value/],
  ];
  for (const [what, args, message] of cases) {
    test(`${what}: one error line naming it and pointing at --help, exit 2, no API call and no program started`, async () => {
      let connections = 0;
      const apiServer = createServer((socket) => {
        connections++;
        socket.destroy();
      });
      await new Promise<void>((resolve) => apiServer.listen(0, "127.0.0.1", resolve));
      const port = String((apiServer.address() as { port: number }).port);
      const marker = join(scratch, `started-${what.replace(/\W/g, "-")}`);
      const proa = startProa(
        [...args, "--", process.execPath, "-e", `require("fs").writeFileSync(${JSON.stringify(marker)}, "")`],
        {
          KUBERNETES_SERVICE_HOST: "127.0.0.1",
          KUBERNETES_SERVICE_PORT: port,
        },
      );
      const { code } = await proa.exit;
      apiServer.close();
      assert.equal(code, 2);
      assert.equal(proa.logs.length, 1, proa.stderr());
      assert.equal(proa.logs[0]!.level, "error");
      assert.match(proa.logs[0]!.msg, message);
      assert.match(proa.logs[0]!.msg, /see proa --help/);
      assert.equal(connections, 0);
      assert.equal(existsSync(marker), false);
    });
  }

  test("no program at all", async () => {
    const proa = startProa(["-K"]);
    assert.equal((await proa.exit).code, 2);
    assert.match(proa.logs[0]!.msg, /no program given/);
  });

  // Accepted, an empty name would wait for readiness and only then fail to start, or wait for ever without --ready-timeout.
  for (const args of [["--", ""], [""]]) {
    test(`an empty program name (${JSON.stringify(args)}) is a usage error, exit 2, with no API call`, async () => {
      let connections = 0;
      const apiServer = createServer((socket) => {
        connections++;
        socket.destroy();
      });
      await new Promise<void>((resolve) => apiServer.listen(0, "127.0.0.1", resolve));
      try {
        const port = String((apiServer.address() as { port: number }).port);
        const proa = startProa(args, { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: port });
        // A run that would not stop by itself is killed, and fails the test instead of hanging it.
        const stuck = setTimeout(() => proa.child.kill("SIGKILL"), 10_000);
        try {
          assert.equal((await proa.exit).code, 2, proa.stderr());
        } finally {
          clearTimeout(stuck);
        }
        assert.match(proa.logs[0]!.msg, /no program given/);
        assert.equal(connections, 0);
      } finally {
        apiServer.close();
      }
    });
  }
});
