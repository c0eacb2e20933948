// Checks that a change only reformats: every changed JavaScript or TypeScript file compiles to the same code
// before and after (esbuild, whitespace and comments dropped), every changed JSON file parses to the same value,
// and the bundle built from both trees is the same. Any other changed file is reported for a human to read.
// `node ci/format-only.mjs [BASE [HEAD]]`: BASE defaults to HEAD, HEAD to the working tree (so it can run right
// after `npm run format`, before the commit); `node ci/format-only.mjs HEAD~1 HEAD` checks a commit made.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildSync, transformSync } from "esbuild";

const [base = "HEAD", head] = process.argv.slice(2);
const git = (...args) => execFileSync("git", args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
process.chdir(git("rev-parse", "--show-toplevel").trim());
const changed = git("diff", "--name-only", "--no-renames", base, ...(head ? [head] : []), "--")
  .split("\n")
  .filter(Boolean);
const before = (file) => git("show", `${base}:${file}`);
const after = (file) => (head ? git("show", `${head}:${file}`) : readFileSync(file, "utf8"));

// Printed back from esbuild's syntax tree: quotes, commas, parentheses and line breaks outside strings and
// template literals no longer show, and neither do types (tsc checks those); anything that runs differently does.
const code = (text, file) =>
  transformSync(text, { loader: /\.ts$/.test(file) ? "ts" : "js", minifyWhitespace: true, legalComments: "none" }).code;
const checks = [
  [/\.(ts|js|mjs|cjs)$/, code],
  [/\.json$/, (text) => JSON.stringify(JSON.parse(text))],
];

const problems = [];
for (const file of changed) {
  const check = checks.find(([pattern]) => pattern.test(file))?.[1];
  if (!check) problems.push(`${file}: not JavaScript, TypeScript or JSON; read its diff`);
  else if (check(before(file), file) !== check(after(file), file)) problems.push(`${file}: the code itself changed`);
}

// The bundle as `npm run build` makes it, from each tree, with whitespace and comments dropped the same way.
const tree = (rev) => {
  const dir = mkdtempSync(join(tmpdir(), "proa-format-only-"));
  execFileSync("sh", ["-c", `git archive ${rev} | tar -x -C "${dir}"`]);
  return dir;
};
const bundle = (dir) =>
  buildSync({
    entryPoints: [join(dir, "proa.ts")],
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    define: { PROA_VERSION: '"format-check"' },
    minifyWhitespace: true,
    legalComments: "none",
    write: false,
  }).outputFiles[0].text;
const dirs = [tree(base), head ? tree(head) : process.cwd()];
try {
  if (bundle(dirs[0]) !== bundle(dirs[1])) problems.push("dist/proa.js: the bundle's code changed");
} finally {
  rmSync(dirs[0], { recursive: true, force: true });
  if (head) rmSync(dirs[1], { recursive: true, force: true });
}

for (const problem of problems) console.error(problem);
console.log(`${changed.length} changed files, ${problems.length} not shown to be formatting only`);
process.exit(problems.length ? 1 : 0);
