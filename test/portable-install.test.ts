// portable/install.ts's reading of SHA256SUMS: the init container copies exactly the files it lists, so a line that
// could name a file outside the folder, or that is not sha256sum's format, stops the copy before any file is written.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseSums } from "../portable/install.ts";

const HASH = "a".repeat(64);

describe("SHA256SUMS as /proa/bin/install reads it", () => {
  test("sha256sum's lines, text or binary mode, give each file's hash and relative path", () => {
    assert.deepEqual(parseSums(`${HASH}  bin/node\n${"b".repeat(64)} *lib/libc.so.6\n`), [
      [HASH, "bin/node"],
      ["b".repeat(64), "lib/libc.so.6"],
    ]);
    assert.deepEqual(parseSums(""), []);
  });

  for (const [line, why] of [
    [`${HASH}  ../etc/passwd`, "a path that leaves the folder"],
    [`${HASH}  bin/../../x`, "a .. inside the path"],
    [`${HASH}  /etc/passwd`, "an absolute path"],
    [`${HASH}  bin//node`, "an empty path segment"],
    [`${HASH.slice(1)}  bin/node`, "a hash that is not 64 hex digits"],
    [`${HASH.toUpperCase()}  bin/node`, "upper-case hex, which sha256sum never writes"],
    [`${HASH} bin/node`, "one space and no mode character"],
    ["bin/node", "no hash"],
  ])
    test(`refuses ${why}, naming the line`, () => {
      assert.throws(() => parseSums(`${HASH}  bin/proa\n${line}\n`), {
        message: `SHA256SUMS has a line that is not "SHA-256  relative path": ${JSON.stringify(line)}`,
      });
    });
});
