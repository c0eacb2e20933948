// What proa writes (log, summary line, termination message) as a black box: no URL's query or fragment, and never
// the service account's token, whatever text it arrives in.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { quote, registerSecret, withoutSecrets } from "../log.ts";
import { startFakeApiServer } from "./fake-apiserver.ts";
import { startProa } from "./helpers/proa-process.ts";

const scratch = mkdtempSync(join(tmpdir(), "proa-redaction-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** An empty termination log, as the kubelet mounts it. */
function terminationLog(name: string): string {
  const path = join(scratch, name);
  writeFileSync(path, "");
  return path;
}

describe("URLs in what proa writes", () => {
  test("a query (even a bare key) and a fragment appear only as REDACTED: in the log, the summary, the termination message and a redirect's Location", async () => {
    // A sidecar's admin port: ready at once; its shutdown endpoint redirects, then it stops listening.
    const sidecar = createServer((request, response) => {
      if (request.url?.startsWith("/ready")) return response.end("ok");
      response
        .writeHead(302, { location: "/other?LOCKEYSECRET&y=LOCVALSECRET#LOCFRAGSECRET" })
        .end(() => (sidecar.close(), sidecar.closeAllConnections()));
    });
    await new Promise<void>((resolve) => sidecar.listen(0, "127.0.0.1", resolve));
    const proa = (() => {
      const base = `http://127.0.0.1:${(sidecar.address() as { port: number }).port}`;
      const path = terminationLog("urls");
      const args = [
        "--shutdown-timeout",
        "5s",
        "--ready-url",
        `${base}/ready?READYKEYSECRET#READYFRAGSECRET`,
        "--shutdown-http-get",
        `${base}/quit?BAREKEYSECRET&x=VALSECRET#FRAGSECRET`,
      ];
      return {
        run: startProa([...args, "--", process.execPath, "-e", "0"], {
          PROA_TERMINATION_MESSAGE_PATH: path,
          PROA_LOG: "debug",
        }),
        path,
      };
    })();
    try {
      assert.equal((await proa.run.exit).code, 0, proa.run.stderr());
      const message = readFileSync(proa.path, "utf8");
      const written = proa.run.stderr() + proa.run.stdout.join("\n") + message;
      for (const secret of [
        "BAREKEY",
        "VALSECRET",
        "FRAGSECRET",
        "LOCKEY",
        "LOCVAL",
        "LOCFRAG",
        "READYKEY",
        "READYFRAG",
      ])
        assert.ok(!written.includes(secret), `${secret} in:\n${written}`);
      assert.match(
        message,
        /\n {2}GET http:\/\/127\.0\.0\.1:\d+\/quit\?REDACTED#REDACTED: 302 \(redirect to http:\/\/127\.0\.0\.1:\d+\/other\?REDACTED#REDACTED, not followed\)/,
      );
      assert.match(message, /waited \S+ for http:\/\/127\.0\.0\.1:\d+\/ready\?REDACTED#REDACTED: ready/);
    } finally {
      proa.run.child.kill("SIGKILL");
      sidecar.close();
      sidecar.closeAllConnections();
    }
  });
});

describe("the service account's token in what proa writes", () => {
  test("a token of 8 characters is redacted, one of 7 is not: so short a secret would match ordinary words", () => {
    registerSecret("tok-8chr");
    registerSecret("tok-7ch");
    assert.equal(withoutSecrets("a tok-8chr b"), "a [redacted] b");
    assert.equal(withoutSecrets("a tok-7ch b"), "a tok-7ch b");
  });

  test("an API server's 500 and 403 messages that repeat the token, and the one it replaced, leave no trace of either in the log, the output or the termination message", async () => {
    const oldToken = "old-token-OLDSECRET-0123456789";
    const newToken = "new-token-NEWSECRET-9876543210";
    const api = await startFakeApiServer();
    api.rotateToken(oldToken);
    // The token is rotated at the first request, so proa sends the new one from the second on; each answer repeats
    // the tokens proa has sent, amid words that would cut one left in place (a quote cuts at 300 characters, the
    // message's lines at 160).
    const first = `${"x".repeat(280)} ${oldToken} and ${oldToken}`;
    const echo = `${"x".repeat(270)} ${oldToken}${newToken} and User "system:serviceaccount:default:proa" with ${oldToken} ${newToken}`;
    api.fail(
      { status: 500, body: { kind: "Status", code: 500, message: first } },
      ...Array.from({ length: 100 }, () => ({
        status: 403,
        body: { kind: "Status", code: 403, reason: "Forbidden", message: echo },
      })),
    );
    api.onRequest = () => api.token === oldToken && api.rotateToken(newToken);
    const path = terminationLog("token");
    const proa = startProa(["--ready-timeout", "1500ms", "--", process.execPath, "-e", "0"], {
      ...api.env(),
      PROA_CONTAINER: "main",
      PROA_TERMINATION_MESSAGE_PATH: path,
      PROA_LOG: "debug",
    });
    try {
      assert.equal((await proa.exit).code, 1, proa.stderr());
      assert.ok(api.requests.length >= 2, "proa read the rotated token");
      const message = readFileSync(path, "utf8");
      assert.match(message, /^program never ran/, message);
      assert.match(proa.stderr() + message, /403/);
      const written = proa.stderr() + proa.stdout.join("\n") + message;
      for (const secret of ["OLDSECRET", "NEWSECRET", "0123456789", "9876543210"])
        assert.ok(!written.includes(secret), `${secret} in:\n${written}`);
      assert.match(written, /\[redacted\]/);
    } finally {
      proa.child.kill("SIGKILL");
      await api.close();
    }
  });
});

describe("quote", () => {
  test("flattens C1 controls and the marks and overrides that reorder text on screen, so a name cannot disguise a line", () => {
    const tricks = "\u0085\u009b\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069";
    for (const trick of tricks) assert.equal(quote(`a${trick}b`), "a b", `U+${trick.codePointAt(0)!.toString(16)}`);
    assert.equal(quote("naïve Ünïcödé €"), "naïve Ünïcödé €", "other characters are left as they are");
  });
});
