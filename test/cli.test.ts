import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { constants } from "node:os";
import {
  exitStatus,
  HELP,
  parseCommandLine,
  parseDuration,
  SIDECAR_DIED,
  UsageError,
  type CommandLine,
} from "../proa.ts";
import { createLog, logLevel } from "../log.ts";

function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const parsed: CommandLine = parseCommandLine(argv, env);
  assert.equal(parsed.kind, "run");
  return parsed.kind === "run" ? parsed.options : assert.fail();
}

function usageError(argv: string[]): string {
  try {
    parseCommandLine(argv, {});
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`);
    return error.message;
  }
  return assert.fail(`expected ${JSON.stringify(argv)} to be rejected`);
}

describe("command line", () => {
  test("the program follows --, with the original proa's options before it", () => {
    const options = run([
      "--shutdown-http-get",
      "http://127.0.0.1:15000/quitquitquit",
      "-p",
      "http://localhost:9091/shutdown",
      "-k",
      "cloud-sql-proxy",
      "-K",
      "--",
      "sh",
      "-c",
      "exit 3",
    ]);
    assert.deepEqual(options.command, ["sh", "-c", "exit 3"]);
    assert.deepEqual(options.shutdown.httpGet.map(String), ["http://127.0.0.1:15000/quitquitquit"]);
    assert.deepEqual(options.shutdown.httpPost.map(String), ["http://localhost:9091/shutdown"]);
    assert.deepEqual(options.shutdown.kill, ["cloud-sql-proxy"]);
    assert.equal(options.shutdown.killAll, true);
  });

  test("without --, the first positional argument starts the program and everything after it is the program's", () => {
    const options = run(["--shutdown-http-get=http://a/quit", "sleep", "60", "--kill-all", "-g", "x", "--"]);
    assert.deepEqual(options.command, ["sleep", "60", "--kill-all", "-g", "x", "--"]);
    assert.equal(options.shutdown.killAll, false);
    assert.deepEqual(options.shutdown.httpGet.map(String), ["http://a/quit"]);
  });

  test("an option's value is not mistaken for the program", () => {
    const options = run([
      "-g",
      "http://a/quit",
      "-g",
      "http://b/quit",
      "-w",
      "proxy",
      "--ignore",
      "logger",
      "main-program",
    ]);
    assert.deepEqual(options.command, ["main-program"]);
    assert.deepEqual(options.shutdown.httpGet.map(String), ["http://a/quit", "http://b/quit"]);
    assert.deepEqual(options.ready.waitFor, ["proxy"]);
    assert.deepEqual(options.ready.ignore, ["logger"]);
  });

  test("everything after -- is the program's, even a second --", () => {
    assert.deepEqual(run(["--", "--", "-h"]).command, ["--", "-h"]);
  });

  test("durations and their defaults", () => {
    const defaults = run(["true"]);
    assert.equal(defaults.ready.readyTimeoutMs, undefined);
    assert.equal(defaults.shutdown.timeoutMs, undefined);
    assert.equal(defaults.shutdown.requestTimeoutMs, 5000);
    assert.match(defaults.shutdown.userAgent, /^proa\//);
    const set = run([
      "--ready-timeout",
      "5m",
      "--shutdown-timeout=1m30s",
      "--shutdown-request-timeout",
      "250ms",
      "true",
    ]);
    assert.equal(set.ready.readyTimeoutMs, 300_000);
    assert.equal(set.shutdown.timeoutMs, 90_000);
    assert.equal(set.shutdown.requestTimeoutMs, 250);
  });

  test("--container wins over PROA_CONTAINER, which is used when the option is absent", () => {
    assert.equal(run(["true"], { PROA_CONTAINER: "app" }).ready.container, "app");
    assert.equal(run(["-c", "main", "true"], { PROA_CONTAINER: "app" }).ready.container, "main");
    assert.equal(run(["true"]).ready.container, undefined);
  });

  test("every short option that takes a value also takes it as -X=VALUE, as clap does in the original proa", () => {
    const spaced = run([
      "-g",
      "http://a/quit?x=1",
      "-p",
      "http://b/quit",
      "-k",
      "sidecar",
      "-c",
      "main",
      "-w",
      "proxy",
      "-i",
      "logger",
      "true",
    ]);
    const joined = run([
      "-g=http://a/quit?x=1",
      "-p=http://b/quit",
      "-k=sidecar",
      "-c=main",
      "-w=proxy",
      "-i=logger",
      "true",
    ]);
    assert.deepEqual(joined, spaced);
    assert.deepEqual(joined.shutdown.kill, ["sidecar"]);
    assert.deepEqual(joined.shutdown.httpGet.map(String), ["http://a/quit?x=1"]);
    assert.equal(joined.ready.container, "main");
    assert.deepEqual([joined.ready.waitFor, joined.ready.ignore], [["proxy"], ["logger"]]);
  });

  test("-X=VALUE takes a value that starts with - or holds another =", () => {
    assert.deepEqual(run(["-k=-weird=name", "true"]).shutdown.kill, ["-weird=name"]);
  });

  test("-X=VALUE after the program's name belongs to the program, untouched", () => {
    const options = run(["-k=a", "--", "prog", "-k=b", "-K=1"]);
    assert.deepEqual(options.command, ["prog", "-k=b", "-K=1"]);
    assert.deepEqual(options.shutdown.kill, ["a"]);
    assert.deepEqual(run(["-K", "prog", "-g=x"]).command, ["prog", "-g=x"]);
  });

  test("--ready-url is repeatable, and PROA_CONTAINER in the environment does not conflict with it", () => {
    assert.deepEqual(run(["true"]).readyUrls, []);
    const options = run(
      ["--ready-url", "http://localhost:15021/healthz/ready", "--ready-url=https://localhost:9901/ready", "true"],
      { PROA_CONTAINER: "app" },
    );
    assert.deepEqual(options.readyUrls.map(String), [
      "http://localhost:15021/healthz/ready",
      "https://localhost:9901/ready",
    ]);
  });

  test("--help and --version win over a missing program", () => {
    assert.deepEqual(parseCommandLine(["--help"], {}), { kind: "help" });
    assert.deepEqual(parseCommandLine(["-V"], {}), { kind: "version" });
  });

  const badInputs: [string, string[], RegExp][] = [
    ["an unknown option", ["--shutdown-http-gett", "http://a", "true"], /unknown option --shutdown-http-gett/],
    ["an unknown short option", ["-x", "true"], /unknown option -x/],
    ["no program", ["-g", "http://a/quit"], /no program given/],
    ["nothing after --", ["--"], /no program given/],
    ["an empty program name after --", ["--", "", "arg"], /no program given/],
    ["an empty program name without --", ["-K", ""], /no program given/],
    ["a missing option value", ["--shutdown-http-get"], /--shutdown-http-get needs a value/],
    ["an option value missing before --", ["-g", "--", "true"], /option -g needs a value/],
    [
      "a URL that is not http(s)",
      ["-g", "ftp://a/quit", "true"],
      /--shutdown-http-get needs an http:\/\/ or https:\/\/ URL .*, not 'ftp:\/\/a\/quit'/,
    ],
    ["a value that is not a URL", ["-p", "localhost:9091", "true"], /--shutdown-http-post needs an http/],
    ["a bad duration", ["--ready-timeout", "soon", "true"], /--ready-timeout needs a duration like 90s/],
    // Node's timers fire at once for 2^31 ms or more: such a duration is refused, never cut short.
    [
      "a duration too long for a timer",
      ["--ready-timeout", "600h", "true"],
      /^--ready-timeout can be at most 596h31m23s, not '600h'$/,
    ],
    [
      "a duration too long for a timer, in ms",
      ["--shutdown-timeout", "2147483648ms", "true"],
      /^--shutdown-timeout can be at most 596h31m23s/,
    ],
    [
      "an endless duration",
      ["--shutdown-request-timeout", `${"9".repeat(400)}h`, "true"],
      /^--shutdown-request-timeout can be at most 596h31m23s/,
    ],
    [
      "a value given to a flag",
      ["--kill-all=yes", "true"],
      /option -K, --kill-all takes no value: write --kill-all alone/,
    ],
    ["a value given to a short flag", ["-K=1", "true"], /option -K, --kill-all takes no value/],
    ["a value given to -h", ["-h=1"], /option -h, --help takes no value/],
    ["an unknown short option with a value", ["-x=1", "true"], /unknown option -x\b/],
    [
      "an empty -X= value that must be a URL",
      ["-g=", "true"],
      /--shutdown-http-get needs an http:\/\/ or https:\/\/ URL/,
    ],
    ["a -X=VALUE URL that is not http(s)", ["-p=ftp://a/", "true"], /--shutdown-http-post needs an http/],
    [
      "a ready URL that is not http(s)",
      ["--ready-url", "tcp://localhost:4191", "true"],
      /--ready-url needs an http:\/\/ or https:\/\/ URL/,
    ],
    [
      "--container with --ready-url",
      ["--ready-url", "http://a/ready", "-c", "main", "true"],
      /--container cannot be combined with --ready-url/,
    ],
    [
      "--wait-for with --ready-url",
      ["-w", "proxy", "--ready-url", "http://a/ready", "true"],
      /--wait-for cannot be combined with --ready-url: .* knows no containers by name/,
    ],
    [
      "--ignore with --ready-url",
      ["--ready-url", "http://a/ready", "--ignore=logger", "true"],
      /--ignore cannot be combined with --ready-url/,
    ],
    [
      "--critical with --ready-url",
      ["--ready-url", "http://a/ready", "--critical", "db", "true"],
      /--critical cannot be combined with --ready-url/,
    ],
    [
      "--no-critical with --ready-url",
      ["--ready-url", "http://a/ready", "--no-critical", "true"],
      /--no-critical cannot be combined with --ready-url/,
    ],
    [
      "--no-critical with --critical",
      ["--no-critical", "--critical", "db", "true"],
      /--no-critical cannot be combined with --critical: choose/,
    ],
    [
      "--no-critical with --critical-all",
      ["--critical-all", "--no-critical", "true"],
      /--no-critical cannot be combined with --critical-all/,
    ],
    [
      "--critical of an ignored container",
      ["-i", "db", "--critical", "db", "true"],
      /--critical db cannot be combined with --ignore db: proa never watches/,
    ],
    [
      "--program-stop-timeout without a unit it knows",
      ["--program-stop-timeout", "5 min", "true"],
      /--program-stop-timeout needs a duration/,
    ],
  ];
  for (const [what, argv, message] of badInputs) {
    test(`rejects ${what} with a message that names it`, () => {
      assert.match(usageError(argv), message);
    });
  }

  test("a refused URL is repeated without its user info or query values, and a value that is not one is not repeated", () => {
    const scheme = usageError(["-g", "ftp://admin:hunter2@files.example/quit?token=abc123", "true"]);
    assert.match(scheme, /not 'ftp:\/\/files.example\/quit\?REDACTED'$/);
    const noScheme = usageError(["-p", "admin:hunter2@localhost:9091/quit", "true"]);
    for (const message of [scheme, noScheme])
      for (const secret of ["hunter2", "admin", "abc123"]) assert.ok(!message.includes(secret), message);
  });
});

describe("durations", () => {
  const table: [string, number | undefined][] = [
    ["90s", 90_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["500ms", 500],
    ["1m30s", 90_000],
    ["2", 2000],
    ["1.5s", 1500],
    ["", undefined],
    ["5 m", undefined],
    ["-1s", undefined],
    ["s", undefined],
    ["10d", undefined],
    ["1m30", undefined],
  ];
  for (const [text, ms] of table)
    test(`'${text}' is ${ms === undefined ? "rejected" : `${ms} ms`}`, () => assert.equal(parseDuration(text), ms));
  test("the longest duration accepted, 596h31m23s, is a timer's longest", () => {
    assert.equal(run(["--ready-timeout", "596h31m23s", "true"]).ready.readyTimeoutMs, 2_147_483_000);
    assert.equal(run(["--ready-timeout", "2147483647ms", "true"]).ready.readyTimeoutMs, 2 ** 31 - 1);
  });
});

describe("exit status", () => {
  test("a program's exit code is proa's, as the kernel reports it (0 to 255)", () => {
    for (const code of [0, 1, 5, 127, 255]) assert.equal(exitStatus({ kind: "exited", code }), code);
  });

  test("every signal death is 128 + the signal's number, as shells report it", () => {
    for (const [name, number] of Object.entries(constants.signals)) {
      assert.equal(exitStatus({ kind: "killed", signal: name as NodeJS.Signals }), 128 + number, name);
    }
    assert.equal(exitStatus({ kind: "killed", signal: "SIGTERM" }), 143);
  });

  test("127 when the program is not found, 126 when it cannot be executed", () => {
    assert.equal(exitStatus({ kind: "not-started", errno: "ENOENT" }), 127);
    assert.equal(exitStatus({ kind: "not-started", errno: "EACCES" }), 126);
    assert.equal(exitStatus({ kind: "not-started", errno: "ENOEXEC" }), 126);
  });
});

describe("logging", () => {
  test("one JSON object per line with time, level, msg and fields", () => {
    const lines: string[] = [];
    createLog("info", (line) => lines.push(line)).info("waiting for containers", { notReady: ["sidecar-1"] });
    assert.equal(lines.length, 1);
    assert.ok(lines[0]!.endsWith("\n"));
    const record = JSON.parse(lines[0]!);
    assert.equal(record.level, "info");
    assert.equal(record.msg, "waiting for containers");
    assert.deepEqual(record.notReady, ["sidecar-1"]);
    assert.ok(!Number.isNaN(Date.parse(record.time)));
  });

  test("lines below the level are not written", () => {
    const lines: string[] = [];
    const log = createLog("warn", (line) => lines.push(line));
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e");
    assert.deepEqual(
      lines.map((line) => JSON.parse(line).level),
      ["warn", "error"],
    );
  });

  test("fields that could hold a secret are redacted, whoever passes them", () => {
    const lines: string[] = [];
    createLog("debug", (line) => lines.push(line)).debug("request", {
      headers: { Authorization: "Bearer abc.def" },
      token: "abc.def",
    });
    assert.doesNotMatch(lines.join(""), /abc\.def/);
  });

  const levels: [NodeJS.ProcessEnv, string][] = [
    [{}, "info"],
    [{ PROA_LOG: "debug" }, "debug"],
    [{ PROA_LOG: "WARN" }, "warn"],
    [{ RUST_LOG: "proa=debug" }, "debug"],
    [{ RUST_LOG: "hyper=info,proa=error" }, "error"],
    [{ RUST_LOG: "warn" }, "warn"],
    [{ RUST_LOG: "trace" }, "debug"],
    [{ RUST_LOG: "off" }, "error"],
    [{ RUST_LOG: "proa=off" }, "error"],
    [{ PROA_LOG: "error", RUST_LOG: "debug" }, "error"],
    [{ PROA_LOG: "loud" }, "info"],
  ];
  for (const [env, level] of levels)
    test(`${JSON.stringify(env)} logs at ${level}`, () => assert.equal(logLevel(env), level));
});

describe("a sidecar's death: the flags", () => {
  test("by default a sidecar that cannot come back stops the program, one that restarts does not, with the grace period", () => {
    assert.deepEqual(run(["true"]).run, {
      critical: [],
      criticalAll: false,
      noCritical: false,
      stopTimeoutMs: undefined,
    });
  });
  test("--critical is repeatable, --critical-all and --no-critical are switches, --program-stop-timeout a duration", () => {
    assert.deepEqual(run(["--critical", "db", "--critical=mesh", "--program-stop-timeout", "5s", "true"]).run, {
      critical: ["db", "mesh"],
      criticalAll: false,
      noCritical: false,
      stopTimeoutMs: 5000,
    });
    assert.equal(run(["--critical-all", "true"]).run.criticalAll, true);
    assert.equal(run(["--no-critical", "true"]).run.noCritical, true);
  });
  test("--help documents the flags and the exit status 69", () => {
    for (const flag of ["--critical NAME", "--critical-all", "--no-critical", "--program-stop-timeout DURATION"])
      assert.ok(HELP.includes(`\n      ${flag}`), flag);
    assert.match(HELP, /\n69 when a sidecar that will not be restarted died while the program ran/);
    assert.equal(SIDECAR_DIED, 69);
  });
});
