// log.ts's redaction: what proa may quote from URLs and from servers' answers.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { quote, redactUrl } from "../log.ts";

describe("redactUrl", () => {
  test("drops user info and the whole query", () => {
    assert.equal(redactUrl("http://admin:hunter2@localhost:15000/quit?access_token=abc&x=1"), "http://localhost:15000/quit?REDACTED");
  });
  test("leaves a URL without secrets as it is", () => assert.equal(redactUrl(new URL("http://localhost:15020/quitquitquit")), "http://localhost:15020/quitquitquit"));
  test("never quotes text that is not a URL", () => assert.equal(redactUrl("ftp//admin:hunter2@x"), "(not a URL)"));
});

describe("quote", () => {
  test("masks Basic and Bearer credentials echoed in an answer", () => {
    const text = quote('bad request: {"Authorization":"Bearer eyJhbGciOi.x.y"} and authorization: basic YWRtaW46aHVudGVyMg==');
    assert.doesNotMatch(text, /eyJhbGciOi|YWRtaW46aHVudGVyMg/);
    assert.match(text, /Bearer \[redacted\].*basic \[redacted\]/);
  });
  test("caps long text and says how much was left out", () => {
    assert.equal(quote("x".repeat(1000), 10), `${"x".repeat(10)}… (990 more characters)`);
  });
  test("flattens newlines, so a quoted answer cannot forge a log line", () => assert.equal(quote('a\n{"level":"error"}'), 'a {"level":"error"}'));
});
