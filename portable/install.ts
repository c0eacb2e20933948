// The init container's copy of proa's folder (portable/build.sh puts this, bundled, at /proa/bin/install):
//
//   /proa/bin/install DIR
//
// copies every file SHA256SUMS lists, and SHA256SUMS itself, from the folder it runs from into DIR (an emptyDir the
// main container mounts at /proa), streaming each through SHA-256: a file whose bytes differ from SHA256SUMS is
// removed and the copy fails, so the main container never starts a changed proa. No shell, no cp: the proa image
// holds nothing but the folder.
import { createHash } from "node:crypto";
import {
  chmodSync,
  createReadStream,
  createWriteStream,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";

const LISTING = "SHA256SUMS";

/** `sha256sum`'s lines, "HASH  PATH", as [hash, path] pairs; a path that leaves the folder is an error. */
export function parseSums(text: string): [string, string][] {
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const match = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
      if (!match || match[2]!.split("/").some((part) => part === ".." || part === "") || match[2]!.startsWith("/"))
        throw new Error(`${LISTING} has a line that is not "SHA-256  relative path": ${JSON.stringify(line)}`);
      return [match[1]!, match[2]!];
    });
}

async function copyChecked(from: string, to: string, expected: string): Promise<number> {
  const hash = createHash("sha256");
  let bytes = 0;
  const partial = `${to}.partial`;
  mkdirSync(dirname(to), { recursive: true, mode: 0o755 });
  await pipeline(
    createReadStream(from),
    new Transform({
      transform(chunk: Buffer, _, done) {
        hash.update(chunk);
        bytes += chunk.length;
        done(null, chunk);
      },
    }),
    createWriteStream(partial, { mode: 0o600 }),
  );
  const actual = hash.digest("hex");
  if (actual !== expected) {
    rmSync(partial, { force: true });
    throw new Error(`${from} has SHA-256 ${actual}, not ${expected} as ${LISTING} says: the folder was changed`);
  }
  chmodSync(partial, statSync(from).mode & 0o755);
  renameSync(partial, to);
  return bytes;
}

async function main(args: string[]): Promise<number> {
  const started = process.hrtime.bigint();
  if (args.length !== 1 || args[0]!.startsWith("-")) {
    process.stderr.write(
      "usage: /proa/bin/install DIR (copies proa's folder into DIR, e.g. an emptyDir mounted there)\n",
    );
    return 2;
  }
  const source = resolve(dirname(realpathSync(process.argv[1]!)), "..");
  const target = resolve(args[0]!);
  if (!statSync(target, { throwIfNoEntry: false })?.isDirectory())
    throw new Error(`${target} is not a directory: mount the emptyDir there (volumeMounts in the init container)`);
  if (realpathSync(target) === source) throw new Error(`${target} is the folder itself: give another directory`);
  const sums = parseSums(readFileSync(join(source, LISTING), "utf8"));
  let bytes = 0;
  for (const [hash, path] of sums) bytes += await copyChecked(join(source, path), join(target, path), hash);
  const listing = createHash("sha256")
    .update(readFileSync(join(source, LISTING)))
    .digest("hex");
  bytes += await copyChecked(join(source, LISTING), join(target, LISTING), listing);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  process.stdout.write(
    `proa install: copied ${sums.length + 1} files (${(bytes / 1e6).toFixed(1)} MB) from ${source} to ${target} in ${Math.round(ms)} ms, each checked against ${LISTING}\n`,
  );
  return 0;
}

if (require.main === module)
  main(process.argv.slice(2)).then(
    (status) => (process.exitCode = status),
    (error: unknown) => {
      process.stderr.write(`proa install: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
