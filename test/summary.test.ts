// summary.ts: the termination message's text for each way a run ends, its 4096-byte cap, the summary line's fields,
// and the writer's rules, on real files in a scratch directory.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  duration,
  fit,
  recordRun,
  sidecarFailures,
  summaryFields,
  terminationLog,
  terminationMessage,
  writeTerminationMessage,
  type RunRecord,
  type WaitRecord,
} from "../summary.ts";
import { shutdownPlan, type ShutdownReport } from "../shutdown.ts";
import { recordingLog } from "./helpers/shutdown-log.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "proa-summary-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A shutdown step's report, as shutDownSidecars returns it: one POST answered 200, and istio-proxy seen exiting. */
const shutdown = (over: Partial<ShutdownReport> = {}): ShutdownReport => ({
  plan: shutdownPlan("Never", true, false),
  startedAt: Date.parse("2026-11-26T10:00:00Z"),
  budgetMs: 29_000,
  durationMs: 1200,
  requests: [{ method: "POST", url: "http://localhost:15020/quitquitquit", status: 200, attempts: 1, durationMs: 12 }],
  signals: [],
  unmatched: [],
  exits: [{ name: "istio-proxy", exitCode: 0, afterMs: 1100 }],
  wait: { outcome: "all exited", stillRunning: [] },
  ...over,
});
const ready: WaitRecord = { mode: "pod", names: ["istio-proxy"], durationMs: 2100, ending: { kind: "ready" } };
const run = (over: Partial<RunRecord>): RunRecord => ({
  wait: ready,
  program: { name: "my-job", outcome: { kind: "exited", code: 0 }, durationMs: 724_000 },
  shutdown: shutdown(),
  status: 0,
  ...over,
});

describe("the termination message, for each way a run ends", () => {
  test("a request not sent to a sidecar the Pod showed dead is told as not sent, never as failed", () => {
    const message = terminationMessage(
      run({
        shutdown: shutdown({
          requests: [
            {
              method: "POST",
              url: "http://localhost:8080/shutdown",
              attempts: 0,
              error: "not sent: sidecar exited 137 and will not be restarted (restartPolicy Never)",
              durationMs: 0,
            },
          ],
          exits: [{ name: "sidecar", exitCode: 137, afterMs: 3 }],
        }),
      }),
    );
    const [headline] = message.split("\n");
    assert.match(headline ?? "", /; sidecars stopped: sidecar \(POST not sent, exited 137\)$/, message);
    assert.match(message, /^ {2}POST http:\/\/localhost:8080\/shutdown: not sent: sidecar exited 137 /m);
  });

  test("a Pod whose only sidecars are native: the headline says the kubelet stops them, and nothing claims a wait or an exit", () => {
    const plan = shutdownPlan("Never", true, false, "native only");
    const message = terminationMessage(
      run({
        shutdown: shutdown({ plan, requests: [], exits: [], wait: { outcome: "not watched", stillRunning: [] } }),
      }),
    );
    const [headline] = message.split("\n");
    assert.equal(
      headline,
      "program exited 0 after 12m04s; the Pod's only sidecars are native: the kubelet stops them once proa's container has exited, so proa does not wait for them",
    );
    assert.doesNotMatch(message, /sidecars stopped|all exited|still running|not watched/, message);
  });
  test("tells a restart's and a deletion's plan, and never says still running for sidecars proa did not watch", () => {
    const notWatched = { exits: [], wait: { outcome: "not watched" as const, stillRunning: [] } };
    const left = terminationMessage(
      run({
        program: { name: "my-job", outcome: { kind: "exited", code: 1 }, durationMs: 3000 },
        shutdown: shutdown({ ...notWatched, requests: [], plan: shutdownPlan("Always", false, false) }),
        status: 1,
      }),
    );
    assert.equal(
      left.split("\n")[0],
      "program exited 1 after 3s; sidecars left running for the restart (restartPolicy Always)",
    );
    const deleted = terminationMessage(
      run({
        program: { name: "my-job", outcome: { kind: "exited", code: 0 }, durationMs: 3000 },
        shutdown: shutdown({ ...notWatched, plan: shutdownPlan("Never", true, true) }),
        status: 0,
      }),
    );
    assert.equal(
      deleted.split("\n")[0],
      "program exited 0 after 3s; the Pod is being deleted: the kubelet stops the sidecars",
    );
    assert.match(deleted, /^  POST http:\/\/localhost:15020\/quitquitquit: 200 in 12ms$/m);
    for (const message of [left, deleted]) assert.doesNotMatch(message, /still running|not watched/);
  });

  test("success: the program's status and time first, then the sidecar with its request and exit code", () => {
    assert.equal(
      terminationMessage(run({})),
      [
        "program exited 0 after 12m04s; sidecars stopped: istio-proxy (POST 200, exited 0)",
        "waited 2.1s for istio-proxy: ready",
        "shutdown: 1.2s of a 29s budget",
        "  POST http://localhost:15020/quitquitquit: 200 in 12ms",
        "  istio-proxy exited 0",
        "proa exited 0",
      ].join("\n"),
    );
  });

  test("--ready-url: the URLs waited for, credentials and query values redacted, and sidecars that stopped listening (no exit code to tell)", () => {
    const lines = terminationMessage(
      run({
        wait: {
          mode: "urls",
          names: ["http://admin:secret@localhost:15021/healthz/ready?token=abc"],
          durationMs: 800,
          ending: { kind: "ready" },
        },
        shutdown: shutdown({ exits: [{ name: "localhost:15021", afterMs: 300 }] }),
      }),
    ).split("\n");
    assert.equal(
      lines[0],
      "program exited 0 after 12m04s; sidecars stopped: localhost:15021 (POST 200, stopped listening)",
    );
    assert.equal(lines[1], "waited 800ms for http://localhost:15021/healthz/ready?REDACTED: ready");
    assert.ok(lines.includes("  localhost:15021 stopped listening"), lines.join("\n"));
  });

  test("a sidecar whose exit code the Pod did not show: exited, with no number", () => {
    const message = terminationMessage(
      run({ shutdown: shutdown({ exits: [{ name: "istio-proxy", afterMs: 1100 }] }) }),
    );
    assert.match(message, /^program exited 0 after 12m04s; sidecars stopped: istio-proxy \(POST 200, exited\)\n/);
    assert.match(message, /\n {2}istio-proxy exited\n/);
  });

  test("the program failed: its exit code, and two sidecars each with its own exit code", () => {
    const message = terminationMessage(
      run({
        program: { name: "my-job", outcome: { kind: "exited", code: 3 }, durationMs: 61_500 },
        shutdown: shutdown({
          requests: [
            { method: "POST", url: "http://localhost:15020/quitquitquit", status: 200, attempts: 1, durationMs: 9 },
            {
              method: "GET",
              url: "http://localhost:9091/shutdown",
              error: "connection refused",
              attempts: 1,
              durationMs: 4,
            },
          ],
          exits: [
            { name: "istio-proxy", exitCode: 0, afterMs: 900 },
            { name: "db-proxy", exitCode: 1, afterMs: 1100 },
          ],
        }),
        status: 3,
      }),
    );
    const lines = message.split("\n");
    assert.equal(
      lines[0],
      "program exited 3 after 1m02s; sidecars stopped: istio-proxy (exited 0), db-proxy (exited 1)",
    );
    assert.ok(lines.includes("  GET http://localhost:9091/shutdown: connection refused in 4ms"), message);
    assert.equal(lines.at(-1), "proa exited 3");
  });

  test("killed by a signal: the signal and proa's status 128+N", () => {
    const message = terminationMessage(
      run({
        program: { name: "my-job", outcome: { kind: "killed", signal: "SIGKILL" }, durationMs: 4200 },
        status: 137,
      }),
    );
    assert.equal(
      message.split("\n")[0],
      "program killed by SIGKILL after 4.2s (exit 137); sidecars stopped: istio-proxy (POST 200, exited 0)",
    );
  });

  test("not found, and not executable: the program's name and 127 or 126", () => {
    const notFound = terminationMessage(
      run({
        program: { name: "/app/my-jobb", outcome: { kind: "not-started", errno: "ENOENT" }, durationMs: 3 },
        status: 127,
      }),
    );
    assert.equal(
      notFound.split("\n")[0],
      "program /app/my-jobb not found (exit 127); sidecars stopped: istio-proxy (POST 200, exited 0)",
    );
    const notExecutable = terminationMessage(
      run({
        program: { name: "./run.sh", outcome: { kind: "not-started", errno: "EACCES" }, durationMs: 3 },
        status: 126,
      }),
    );
    assert.equal(
      notExecutable.split("\n")[0],
      "program ./run.sh cannot be executed (EACCES) (exit 126); sidecars stopped: istio-proxy (POST 200, exited 0)",
    );
  });

  test("the wait failed: the program never ran, and the reason follows in short lines", () => {
    const reason =
      'listing Pod jobs/proa-demo at https://10.0.0.1:443 failed: HTTP 403: pods "proa-demo" is forbidden: User "system:serviceaccount:jobs:proa" cannot list resource "pods" in API group "" in the namespace "jobs"';
    const message = terminationMessage(
      run({
        wait: { mode: "pod", names: [], durationMs: 300_000, ending: { kind: "failed", reason } },
        program: { name: "my-job" },
        shutdown: shutdown({ exits: [], wait: { outcome: "not watched", stillRunning: [] } }),
        status: 1,
      }),
    );
    const lines = message.split("\n");
    assert.equal(lines[0], "program never ran: the wait for the sidecars failed after 5m00s (exit 1)");
    assert.equal(lines[1], "waited 5m00s: failed");
    assert.ok(
      lines.slice(2, 5).every((line) => line.startsWith("  ") && line.length <= 102),
      message,
    );
    assert.equal(
      lines
        .slice(2, 5)
        .map((line) => line.trim())
        .join(" "),
      reason,
    );
    assert.ok(lines.includes("  the sidecars' exit was not watched"), message);
  });

  test("ready timeout: which containers were waited for, and what was still not ready", () => {
    const message = terminationMessage(
      run({
        wait: {
          mode: "pod",
          names: ["istio-proxy", "db-proxy"],
          durationMs: 120_000,
          ending: { kind: "timeout", reason: "--ready-timeout (120 s) passed: containers still not ready: db-proxy" },
        },
        program: { name: "my-job" },
        status: 1,
      }),
    );
    assert.deepEqual(message.split("\n").slice(0, 3), [
      "program never ran: sidecars not ready after 2m00s (--ready-timeout) (exit 1); sidecars stopped: istio-proxy (POST 200, exited 0)",
      "waited 2m00s for istio-proxy, db-proxy: gave up (--ready-timeout)",
      "  --ready-timeout (120 s) passed: containers still not ready: db-proxy",
    ]);
  });

  test("SIGTERM before the program started: the signal, how long proa had waited, and 143", () => {
    const message = terminationMessage(
      run({
        wait: { ...ready, durationMs: 8000, ending: { kind: "signal", signal: "SIGTERM" } },
        program: { name: "my-job" },
        status: 143,
      }),
    );
    assert.deepEqual(message.split("\n").slice(0, 2), [
      "program never ran: SIGTERM after waiting 8s for the sidecars (exit 143); sidecars stopped: istio-proxy (POST 200, exited 0)",
      "waited 8s for istio-proxy: SIGTERM arrived before the program started",
    ]);
  });

  test("sidecars that did not exit in time come first, ahead of those that did", () => {
    const message = terminationMessage(
      run({
        shutdown: shutdown({
          durationMs: 29_000,
          requests: [
            { method: "POST", url: "http://localhost:15020/quitquitquit", status: 503, attempts: 1, durationMs: 30 },
          ],
          exits: [],
          wait: { outcome: "budget spent", stillRunning: ["istio-proxy"] },
        }),
      }),
    );
    assert.equal(
      message.split("\n")[0],
      "program exited 0 after 12m04s; sidecars still running when proa gave up: istio-proxy (POST 503)",
    );
    assert.ok(message.includes("\n  still running: istio-proxy\n"), message);
  });

  test("one sidecar and two shutdown requests: the requests are not pinned on it", () => {
    const message = terminationMessage(
      run({
        shutdown: shutdown({
          requests: [
            { method: "POST", url: "http://localhost:15020/quitquitquit", status: 200, attempts: 1, durationMs: 9 },
            { method: "GET", url: "http://localhost:9091/shutdown", status: 404, attempts: 1, durationMs: 4 },
          ],
        }),
      }),
    );
    assert.equal(message.split("\n")[0], "program exited 0 after 12m04s; sidecars stopped: istio-proxy (exited 0)");
  });

  test("--kill targets: each process sent SIGTERM, each one that could not be, and each name that matched nothing", () => {
    const signals = [
      { pid: 42, name: "cloud-sql-proxy", rule: "executable", sent: true },
      { pid: 43, name: "cloud-sql-proxy", rule: "executable", sent: false, error: "EPERM" },
    ] as const;
    const message = terminationMessage(
      run({
        shutdown: shutdown({
          requests: [],
          signals: [...signals],
          unmatched: ["envoy"],
          exits: [{ name: "sql", exitCode: 0, afterMs: 40 }],
        }),
      }),
    );
    assert.equal(message.split("\n")[0], "program exited 0 after 12m04s; sidecars stopped: sql (SIGTERM, exited 0)");
    assert.ok(
      message.includes(
        "\n  SIGTERM to cloud-sql-proxy (pid 42)\n  SIGTERM to cloud-sql-proxy (pid 43): not sent (EPERM)\n  --kill envoy: no such process visible\n",
      ),
      message,
    );
  });

  test("a redirect is told with where it pointed, without its query values, and that it was not followed", () => {
    const requests = [
      {
        method: "GET",
        url: "http://localhost:9091/quit",
        status: 302,
        location: "http://localhost:9091/other?token=abc",
        attempts: 1,
        durationMs: 3,
      },
    ] as const;
    const message = terminationMessage(run({ shutdown: shutdown({ requests: [...requests] }) }));
    assert.ok(
      message.includes(
        "\n  GET http://localhost:9091/quit: 302 (redirect to http://localhost:9091/other?REDACTED, not followed) in 3ms\n",
      ),
      message,
    );
  });

  test("how the wait for exit ended when not every sidecar was seen exiting: the Pod gone, or the watch failed", () => {
    const gone = terminationMessage(run({ shutdown: shutdown({ wait: { outcome: "pod gone", stillRunning: [] } }) }));
    assert.ok(gone.includes("\n  istio-proxy exited 0\n  the Pod is gone\nproa exited 0"), gone);
    const failed = terminationMessage(
      run({ shutdown: shutdown({ exits: [], wait: { outcome: "watch failed", stillRunning: ["istio-proxy"] } }) }),
    );
    assert.equal(
      failed.split("\n")[0],
      "program exited 0 after 12m04s; sidecars still running when proa gave up: istio-proxy (POST 200)",
    );
    assert.ok(failed.includes("\n  still running: istio-proxy (watching them failed)\n"), failed);
  });

  test("a sidecar that exited non-zero after proa asked it to stop, while the program exited 0: flagged second, as it fails the Pod", () => {
    const proxy = shutdown({
      requests: [],
      signals: [{ name: "cloud-sql-proxy", pid: 12, rule: "--kill-all", sent: true }],
      exits: [
        { name: "istio-proxy", exitCode: 0, afterMs: 900 },
        { name: "cloud-sql-proxy", exitCode: 143, afterMs: 1100 },
      ],
    });
    const lines = terminationMessage(run({ shutdown: proxy })).split("\n");
    assert.equal(
      lines[1],
      "sidecar cloud-sql-proxy exited 143: the Pod is Failed although the program exited 0 (with restartPolicy Never)",
    );
    assert.deepEqual(sidecarFailures(run({ shutdown: proxy })), [lines[1]], "istio-proxy exited 0 and is not flagged");
  });

  test("no flag when proa did not ask the sidecars to stop, when the program failed, when no exit code is known (--ready-url), or when the signal was not sent", () => {
    const exits = [{ name: "cloud-sql-proxy", exitCode: 143, afterMs: 1100 }];
    assert.deepEqual(sidecarFailures(run({ shutdown: shutdown({ requests: [], exits }) })), []);
    assert.deepEqual(
      sidecarFailures(
        run({
          shutdown: shutdown({
            requests: [],
            signals: [{ name: "cloud-sql-proxy", pid: 12, rule: "--kill-all", sent: false, error: "EPERM" }],
            exits,
          }),
        }),
      ),
      [],
    );
    assert.deepEqual(
      sidecarFailures(
        run({
          shutdown: shutdown({ exits }),
          program: { name: "my-job", outcome: { kind: "exited", code: 1 }, durationMs: 5 },
          status: 1,
        }),
      ),
      [],
    );
    assert.deepEqual(sidecarFailures(run({ shutdown: shutdown({ exits }), wait: { ...ready, mode: "urls" } })), []);
    assert.equal(
      sidecarFailures(run({ shutdown: shutdown({ exits }) })).length,
      1,
      "a shutdown request counts as asking",
    );
  });

  test("--ready-url mode: the URLs waited for, without their credentials or query values", () => {
    const wait: WaitRecord = {
      mode: "urls",
      names: ["http://admin:hunter2@localhost:15021/healthz/ready?key=s3cr3t"],
      durationMs: 500,
      ending: { kind: "ready" },
    };
    const message = terminationMessage(run({ wait }));
    assert.equal(message.split("\n")[1], "waited 500ms for http://localhost:15021/healthz/ready?REDACTED: ready");
  });
});

describe("the message's limits", () => {
  const secrets = ["hunter2", "s3cr3t", "admin:", "dG9rZW4", "eyJhbGciOi"];
  const many = (n: number) => Array.from({ length: n }, (_, i) => `sidecar-${i}`);
  const longUrl = (i: number) =>
    `https://admin:hunter2@sidecar-${i}.example.com:8443/${"shutdown/".repeat(40)}?access_token=s3cr3t&n=${i}`;
  const crowded = run({
    wait: { mode: "pod", names: many(200), durationMs: 2100, ending: { kind: "ready" } },
    shutdown: shutdown({
      requests: many(200).map((_, i) => ({
        method: "POST",
        url: longUrl(i),
        error: "the answer: Authorization: Bearer eyJhbGciOi.x.y, Basic dG9rZW4=",
        attempts: 1,
        durationMs: 5000,
      })),
      exits: many(150).map((name, i) => ({ name, exitCode: 0, afterMs: i })),
      wait: { outcome: "budget spent", stillRunning: many(200).slice(150) },
    }),
  });

  test("many sidecars and long URLs: at most 4096 bytes, whole lines, and a last line saying more are in the log", () => {
    const message = terminationMessage(crowded);
    assert.ok(Buffer.byteLength(message) <= 4096, `${Buffer.byteLength(message)} bytes`);
    assert.ok(Buffer.byteLength(message) > 3900, "the room is used");
    const lines = message.split("\n");
    assert.equal(
      lines[0],
      "program exited 0 after 12m04s; sidecars still running when proa gave up: sidecar-150, sidecar-151, sidecar-152, sidecar-153, sidecar-154 and 45 more",
    );
    assert.match(lines.at(-1)!, /^… \d+ more lines in proa's summary log line$/);
    assert.ok(
      lines.every((line) => Array.from(line).length <= 160),
      "every line is short",
    );
  });

  test("credentials and query values of URLs, and credentials quoted in errors, never appear in the message", () => {
    const message = terminationMessage(crowded);
    for (const secret of secrets) assert.ok(!message.includes(secret), `the message contains ${secret}`);
    assert.match(message, /https:\/\/sidecar-0\.example\.com:8443\/shutdown\//);
  });

  test("a wait's reason that quotes a credential or holds a newline is masked and flattened, so it cannot forge a line", () => {
    const reason = 'HTTP 400: echoed {"Authorization":"Bearer eyJhbGciOi.x.y"}\nproa exited 0';
    const record = run({
      wait: { ...ready, ending: { kind: "failed", reason } },
      program: { name: "my-job" },
      status: 1,
    });
    const message = terminationMessage(record);
    assert.ok(!message.includes("eyJhbGciOi"), message);
    assert.ok(!JSON.stringify(summaryFields(record)).includes("eyJhbGciOi"));
    assert.deepEqual(
      message.split("\n").filter((line) => line.startsWith("proa exited")),
      ["proa exited 1"],
    );
  });

  test("nor in the summary line's fields", () => {
    const fields = JSON.stringify(summaryFields(crowded));
    for (const secret of secrets) assert.ok(!fields.includes(secret), `the summary line contains ${secret}`);
  });

  test("a cut never splits a UTF-8 character, even when one line alone is too long", () => {
    for (const filler of ["é", "€", "𝄞"]) {
      for (let shift = 0; shift < 4; shift++) {
        const text = fit(["x".repeat(shift) + filler.repeat(5000)], 4096);
        const bytes = Buffer.from(text);
        assert.ok(bytes.length <= 4096 && bytes.length > 4090, `${filler} +${shift}: ${bytes.length} bytes`);
        assert.equal(bytes.toString("utf8"), text);
        assert.ok(!text.includes("\uFFFD"), "no broken character");
      }
    }
  });

  test("for every cap: the cut message fits it, keeps whole lines from the start, and as many as fit beside the note", () => {
    const lines = Array.from({ length: 40 }, (_, i) => `line ${i} ${"x".repeat(i * 3)}`);
    const note = (n: number) => `… ${n} more lines in proa's summary log line`;
    for (let max = 60; max <= 2500; max += 7) {
      const kept = fit(lines, max).split("\n");
      assert.ok(Buffer.byteLength(kept.join("\n")) <= max, `cap ${max}`);
      if (kept.length === lines.length) continue; // all of it fits
      const left = lines.length - (kept.length - 1);
      assert.equal(kept.pop(), note(left), `cap ${max}`);
      assert.deepEqual(kept, lines.slice(0, kept.length), `cap ${max}`);
      const oneMore = [...lines.slice(0, kept.length + 1), note(left - 1)].join("\n");
      assert.ok(Buffer.byteLength(oneMore) > max, `cap ${max}: room for one more line was left unused`);
    }
  });

  test("a message that fits is never cut", () => {
    assert.equal(fit(["a", "b"], 3), "a\nb");
  });
});

describe("durations", () => {
  const cases: [number, string][] = [
    [0, "0ms"],
    [999, "999ms"],
    [1000, "1s"],
    [2149, "2.1s"],
    [59_940, "59.9s"],
    [60_000, "1m00s"],
    [724_000, "12m04s"],
    [3_723_000, "1h02m03s"],
  ];
  for (const [ms, text] of cases) test(`${ms} ms reads ${text}`, () => assert.equal(duration(ms), text));
});

describe("the summary line", () => {
  /** As the log line carries them: JSON leaves out undefined fields. */
  const logged = (record: RunRecord) => JSON.parse(JSON.stringify(summaryFields(record)));

  test("holds the wait, the program, each request and sidecar, and proa's status, as JSON fields", () => {
    assert.deepEqual(logged(run({ status: 0 })), {
      status: 0,
      wait: { for: ["istio-proxy"], by: "pod", ms: 2100, ending: "ready" },
      program: { name: "my-job", kind: "exited", code: 0, ms: 724_000 },
      shutdown: {
        plan: {
          shutDown: true,
          waitForExit: true,
          reason: "restartPolicy Never: proa's container will not run again, so the sidecars are shut down",
        },
        startedAt: Date.parse("2026-11-26T10:00:00Z"),
        budgetMs: 29_000,
        durationMs: 1200,
        requests: [
          { method: "POST", url: "http://localhost:15020/quitquitquit", status: 200, attempts: 1, durationMs: 12 },
        ],
        signals: [],
        unmatched: [],
        exits: [{ name: "istio-proxy", exitCode: 0, afterMs: 1100 }],
        wait: { outcome: "all exited", stillRunning: [] },
      },
    });
  });

  test("carries the plan: sidecars left running for the restart, with no request and no wait", () => {
    const left = shutdown({
      plan: shutdownPlan("OnFailure", false, false),
      requests: [],
      exits: [],
      wait: { outcome: "not watched", stillRunning: [] },
    });
    assert.deepEqual(logged(run({ shutdown: left, status: 1 })).shutdown.plan, {
      shutDown: false,
      waitForExit: false,
      reason: "sidecars left running for the restart (restartPolicy OnFailure)",
    });
  });

  test("says why the program never ran", () => {
    const fields = logged(
      run({
        wait: { ...ready, ending: { kind: "signal", signal: "SIGINT" } },
        program: { name: "my-job" },
        status: 130,
      }),
    );
    assert.deepEqual(fields.program, { name: "my-job", kind: "never ran" });
    assert.deepEqual(fields.wait, { for: ["istio-proxy"], by: "pod", ms: 2100, ending: "signal", signal: "SIGINT" });
  });

  test("a shutdown request's URL and redirect location are redacted, and its error is masked", () => {
    const request = {
      method: "GET",
      url: "http://admin:hunter2@localhost:9091/quit?key=s3cr3t",
      status: 302,
      location: "http://localhost:9091/other?token=abc",
      error: "Bearer eyJhbGciOi.x.y",
      attempts: 1,
      durationMs: 3,
    } as const;
    const fields = logged(run({ shutdown: shutdown({ requests: [request] }) }));
    assert.deepEqual(fields.shutdown.requests, [
      {
        ...request,
        url: "http://localhost:9091/quit?REDACTED",
        location: "http://localhost:9091/other?REDACTED",
        error: "Bearer [redacted]",
      },
    ]);
  });

  test("a signal's error is flattened to one line", () => {
    const signal = { pid: 42, name: "envoy", rule: "executable", sent: false, error: "EPERM\nproa exited 0" } as const;
    assert.deepEqual(logged(run({ shutdown: shutdown({ signals: [signal] }) })).shutdown.signals, [
      { ...signal, error: "EPERM proa exited 0" },
    ]);
  });

  test("says why a failed or timed-out wait ended, with credentials masked and on one line", () => {
    const reason = 'HTTP 400: echoed {"Authorization":"Bearer eyJhbGciOi.x.y"}\nproa exited 0';
    const failed = logged(
      run({ wait: { ...ready, ending: { kind: "failed", reason } }, program: { name: "my-job" }, status: 1 }),
    );
    assert.deepEqual(failed.wait, {
      for: ["istio-proxy"],
      by: "pod",
      ms: 2100,
      ending: "failed",
      reason: 'HTTP 400: echoed {"Authorization":"Bearer [redacted]"} proa exited 0',
    });
    const timeout = {
      kind: "timeout",
      reason: "--ready-timeout (120 s) passed: containers still not ready: db-proxy",
    } as const;
    const timedOut = logged(run({ wait: { ...ready, ending: timeout }, program: { name: "my-job" }, status: 1 }));
    assert.deepEqual(timedOut.wait, {
      for: ["istio-proxy"],
      by: "pod",
      ms: 2100,
      ending: "timeout",
      reason: timeout.reason,
    });
  });
});

describe("recordRun", () => {
  test("times the wait from the start and the program from the end of the wait", () => {
    let clock = 1000;
    const story = recordRun("my-job", "pod", () => clock);
    clock = 3500;
    story.waitEnded({ kind: "ready" });
    clock = 10_000;
    story.programEnded({ kind: "exited", code: 4 });
    const record = story.finish(["a"], shutdown(), 4);
    assert.deepEqual(record.wait, { mode: "pod", names: ["a"], durationMs: 2500, ending: { kind: "ready" } });
    assert.deepEqual(record.program, { name: "my-job", outcome: { kind: "exited", code: 4 }, durationMs: 6500 });
  });
});

describe("where the message goes", () => {
  test("the container's own terminationMessagePath and policy from the Pod spec come first", () => {
    const spec = { terminationMessagePath: "/run/msg", terminationMessagePolicy: "FallbackToLogsOnError" };
    assert.deepEqual(terminationLog(spec, { PROA_TERMINATION_MESSAGE_PATH: "/elsewhere" }), {
      path: "/run/msg",
      policy: "FallbackToLogsOnError",
      from: "the Pod spec",
    });
  });
  test("without the Pod spec: PROA_TERMINATION_MESSAGE_PATH, else /dev/termination-log", () => {
    assert.equal(terminationLog(undefined, { PROA_TERMINATION_MESSAGE_PATH: "/tmp/x" }).path, "/tmp/x");
    assert.equal(terminationLog({}, {}).path, "/dev/termination-log");
  });
});

describe("writing the termination message", () => {
  let n = 0;
  const file = (content?: string) => {
    const path = join(scratch, `termination-log-${++n}`);
    if (content !== undefined) writeFileSync(path, content);
    return path;
  };
  const write = (path: string, status = 0, policy = "File") => {
    const log = recordingLog();
    writeTerminationMessage("program exited 0", { path, policy, from: "test" }, status, log);
    return log.lines;
  };

  test("an empty file gets the message", () => {
    const path = file("");
    assert.match(write(path)[0]!.msg, /^wrote the run's summary to /);
    assert.equal(readFileSync(path, "utf8"), "program exited 0");
  });

  test("a file the program wrote to is left as it is", () => {
    const path = file("my own message");
    assert.match(write(path, 3)[0]!.msg, /the program wrote its own/);
    assert.equal(readFileSync(path, "utf8"), "my own message");
  });

  test("FallbackToLogsOnError: left empty when proa exits non-zero, written when it exits 0", () => {
    const failed = file("");
    write(failed, 1, "FallbackToLogsOnError");
    assert.equal(readFileSync(failed, "utf8"), "");
    const succeeded = file("");
    write(succeeded, 0, "FallbackToLogsOnError");
    assert.equal(readFileSync(succeeded, "utf8"), "program exited 0");
  });

  test("no such file: nothing is created, and nothing is said above debug level", () => {
    const path = file();
    const lines = write(path);
    assert.deepEqual(
      lines.map((line) => line.level),
      ["debug"],
    );
    assert.throws(() => readFileSync(path), { code: "ENOENT" });
  });

  test("a directory, or a device that takes writes (/dev/null), is not written", () => {
    const dir = file();
    mkdirSync(dir);
    assert.deepEqual(
      write(dir).map((line) => line.level),
      ["warn"],
    );
    const device = write("/dev/null");
    assert.deepEqual(
      device.map((line) => line.msg),
      ["not writing the termination message: /dev/null is not a regular file"],
    );
  });

  test("a symlink is not followed, even to an empty regular file: that file stays empty", () => {
    const target = file("");
    const link = file();
    symlinkSync(target, link);
    assert.deepEqual(
      write(link).map((line) => line.msg),
      [`not writing the termination message: ${link} is a symlink, which proa does not follow`],
    );
    assert.equal(readFileSync(target, "utf8"), "");
  });

  test("a FIFO without a reader is not written and does not hang proa", () => {
    const fifo = file();
    assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
    // In a child process with a time limit: a blocking open would stall this test process beyond any test timeout.
    const script = `require("./summary.ts").writeTerminationMessage("x", { path: ${JSON.stringify(fifo)}, from: "test" }, 0,
      { error() {}, warn: (msg) => console.log("warn", msg), info: (msg) => console.log("info", msg), debug() {} })`;
    const child = spawnSync(process.execPath, ["--import", "tsx", "-e", script], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 10_000,
    });
    assert.equal(child.error, undefined, "it returned in time");
    assert.match(child.stdout, /^warn not writing the termination message: .* is not a regular file\n$/, child.stderr);
  });
});

describe("the termination message when --kill was refused", () => {
  test("says that nothing was signalled, and why", () => {
    const refused =
      "proa's /proc/self/cgroup names no Pod cgroup (not in a Kubernetes Pod, or a runtime proa does not know), so it cannot tell the Pod's processes from others";
    const message = terminationMessage(run({ shutdown: shutdown({ requests: [], refused }) }));
    const lines = message.split("\n");
    const at = lines.indexOf("  --kill/--kill-all: nothing signalled");
    assert.ok(at > 0, message);
    assert.equal(
      lines
        .slice(at + 1, at + 3)
        .map((line) => line.trim())
        .join(" "),
      refused,
    );
  });
});

describe("a sidecar's death or restart while the program ran, in the story", () => {
  const died = {
    name: "db-proxy",
    kind: "died" as const,
    exitCode: 137,
    reason: "OOMKilled",
    finishedAt: "2026-12-07T10:51:00Z",
    restartCount: 0,
    afterMs: 62_000,
    stopped: true,
  };
  const restarted = {
    name: "mesh",
    kind: "restarted" as const,
    exitCode: 1,
    restartCount: 1,
    afterMs: 5000,
    stopped: false,
  };
  test("the death that ended the run comes first, says when and why, and that proa exits 69; the program's own line follows", () => {
    const message = terminationMessage(
      run({
        program: { name: "my-job", outcome: { kind: "exited", code: 143 }, durationMs: 63_000 },
        sidecars: [restarted, died],
        status: 69,
      }),
    );
    const lines = message.split("\n");
    assert.equal(
      lines[0],
      "sidecar db-proxy died 1m02s into the program (exit 137, OOMKilled, at 2026-12-07T10:51:00Z): proa stopped the program and exits 69",
    );
    assert.match(lines[1] ?? "", /^program exited 143 after 1m03s; /);
    assert.ok(lines.includes("sidecar mesh restarted 5s into the program (exit 1)"), message);
    assert.equal(lines.at(-1), "proa exited 69");
  });
  test("the summary line lists every event; without any, it has no sidecars field", () => {
    assert.deepEqual(summaryFields(run({ sidecars: [died], status: 69 })).sidecars, [died]);
    assert.equal(summaryFields(run({})).sidecars, undefined);
  });
  test("a name or reason the kubelet reports cannot forge a line of the message", () => {
    const forged = { ...died, reason: "OOMKilled\nproa exited 0", name: "db\nproxy" };
    const message = terminationMessage(run({ sidecars: [forged], status: 69 }));
    assert.ok(!message.split("\n").some((line) => line === "proa exited 0"), message);
  });
});
