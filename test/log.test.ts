// log.ts's redaction: what proa may quote from URLs and from servers' answers.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { quote, redactUrl, repeatedWarnings, type Fields, type Log } from "../log.ts";

describe("redactUrl", () => {
  test("drops user info and the whole query", () => {
    assert.equal(
      redactUrl("http://admin:hunter2@localhost:15000/quit?access_token=abc&x=1"),
      "http://localhost:15000/quit?REDACTED",
    );
  });
  test("leaves a URL without secrets as it is", () =>
    assert.equal(redactUrl(new URL("http://localhost:15020/quitquitquit")), "http://localhost:15020/quitquitquit"));
  test("never quotes text that is not a URL", () => assert.equal(redactUrl("ftp//admin:hunter2@x"), "(not a URL)"));
});

describe("quote", () => {
  test("masks Basic and Bearer credentials echoed in an answer", () => {
    const text = quote(
      'bad request: {"Authorization":"Bearer eyJhbGciOi.x.y"} and authorization: basic YWRtaW46aHVudGVyMg==',
    );
    assert.doesNotMatch(text, /eyJhbGciOi|YWRtaW46aHVudGVyMg/);
    assert.match(text, /Bearer \[redacted\].*basic \[redacted\]/);
  });
  test("caps long text and says how much was left out", () => {
    assert.equal(quote("x".repeat(1000), 10), `${"x".repeat(10)}… (990 more characters)`);
  });
  test("flattens newlines, so a quoted answer cannot forge a log line", () =>
    assert.equal(quote('a\n{"level":"error"}'), 'a {"level":"error"}'));
});

describe("repeatedWarnings", () => {
  const recorded = () => {
    const lines: { msg: string; fields?: Fields }[] = [];
    const log: Log = {
      error: () => {},
      info: () => {},
      debug: () => {},
      warn: (msg, fields) => void lines.push({ msg, ...(fields && { fields }) }),
    };
    return { lines, log };
  };
  const summary = (count: string, seconds: number) => `ignored ${count} events in the last ${seconds} s`;

  test("writes the first of a kind, counts the rest, and writes one count per window at most", () => {
    const { lines, log } = recorded();
    let now = 0;
    const repeats = repeatedWarnings(log, 1000, () => now);
    for (let i = 0; i < 4211; i++, now += 0.2) repeats.warn("events", `event ${i}`, summary, { i });
    now = 1000; // the window has passed: this one and those held back are one line
    repeats.warn("events", "event 4211", summary);
    assert.deepEqual(lines, [
      { msg: "event 0", fields: { i: 0 } },
      { msg: "ignored 4,211 events in the last 1 s", fields: { last: "event 4211" } },
    ]);
    now = 1500;
    repeats.warn("events", "event 4212", summary);
    repeats.warn("other", "another kind is written at once", summary);
    assert.equal(lines.length, 3);
    now = 2600;
    repeats.flush(); // what is still held back is written, so no count is lost
    assert.deepEqual(lines.slice(2), [
      { msg: "another kind is written at once" },
      { msg: "ignored 1 events in the last 2 s", fields: { last: "event 4212" } },
    ]);
  });

  test("a warning that comes back after a quiet window is written in full again, and a flush with nothing held writes nothing", () => {
    const { lines, log } = recorded();
    let now = 0;
    const repeats = repeatedWarnings(log, 1000, () => now);
    repeats.warn("failure", "connection refused", summary);
    now = 5000;
    repeats.warn("failure", "connection refused", summary);
    repeats.flush();
    assert.deepEqual(
      lines.map((line) => line.msg),
      ["connection refused", "connection refused"],
    );
  });
});
