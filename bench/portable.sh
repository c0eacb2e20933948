#!/usr/bin/env bash
# What proa's self-contained folder costs (README's Performance table): its size and its image layer's, compressed,
# per architecture; and proa's start time and peak memory run from the folder (its node, its loader and libraries, in
# a root holding nothing else) against the same Node.js build run from its usual path on this machine's C library.
#
#   bash bench/portable.sh [RUNS]     after `npm run build:portable`; as root (unshare); RUNS per figure (default 30)
#
# Both sides run as PID 1 of a new mount and PID namespace (unshare), so they pay the same for it: the folder in a
# root of static busybox, the usual Node with the machine's root. The start time is `proa --version`'s wall time
# (node's start, the loader's work, the bundle's load); the memory is the peak RSS (GNU time) of a whole --ready-url
# run whose program sleeps for a second.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-30}"
OUT=dist/portable
NODE="$(bash ci/node-versions/with-node.sh 24 sh -c 'command -v node' 2>/dev/null)"
[[ -x $NODE ]] || { echo "no pinned Node 24 from ci/node-versions" >&2; exit 1; }
[[ -d $OUT/linux-amd64 ]] || { echo "no $OUT: run npm run build:portable" >&2; exit 1; }

echo "| architecture | folder | image layer (tar) | layer, gzip -6 | layer, zstd -3 |"
echo "| --- | --- | --- | --- | --- |"
for arch in amd64 arm64; do
  tar="$OUT/proa-linux-$arch.tar"
  printf '| linux/%s | %.1f MB | %.1f MB | %.1f MB | %.1f MB |\n' "$arch" \
    "$(du -sb "$OUT/linux-$arch" | cut -f1)e-6" "$(stat -c %s "$tar")e-6" \
    "$(gzip -6 -n -c "$tar" | wc -c)e-6" "$(zstd -3 -q -c "$tar" | wc -c)e-6"
done

scratch="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null; rm -rf "$scratch"' EXIT
root="$scratch/root"
mkdir -p "$root/bin" "$root/proc" "$root/tmp"
cp -al "$OUT/linux-amd64" "$root/proa" 2>/dev/null || cp -a "$OUT/linux-amd64" "$root/proa"
cp /bin/busybox "$root/bin/busybox"
ln "$root/bin/busybox" "$root/bin/sleep"
python3 -m http.server 0 --bind 127.0.0.1 >"$scratch/server.log" 2>&1 &
server=$!
for _ in $(seq 50); do
  port="$(grep -o 'port [0-9]*' "$scratch/server.log" | cut -d' ' -f2 || true)"
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n $port ]] || { echo "the loopback server did not start" >&2; exit 1; }

ns=(unshare --mount --pid --fork --kill-child --mount-proc)
folder=("${ns[@]/--mount-proc/--mount-proc=/proc}" --root="$root" /proa/bin/proa)
usual=("${ns[@]}" "$NODE" dist/proa.js)
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
# Runs the two sides in turn, so that the machine's load falls on both alike; prints each side's median in ms.
start_ms() {
  local i t0 side
  for ((i = 0; i < RUNS; i++)); do
    for side in folder usual; do
      local -n cmd="$side"
      t0=$(date +%s%N)
      env -i PATH=/bin:/usr/bin "${cmd[@]}" --version >/dev/null
      echo "$side $((($(date +%s%N) - t0) / 1000))"
    done
  done >"$scratch/start"
  for side in folder usual; do
    grep "^$side " "$scratch/start" | cut -d' ' -f2 | median | awk '{ printf "%.1f ms\n", $1 / 1000 }'
  done
}
peak_mib() {
  local i
  for ((i = 0; i < 5; i++)); do
    env -i PATH=/bin:/usr/bin /usr/bin/time -f %M "$@" --ready-url "http://127.0.0.1:$port/" --shutdown-timeout 1ms -- sleep 1 \
      2>&1 >/dev/null | tail -n1
  done | median | awk '{ printf "%.1f MiB", $1 / 1024 }'
}
mapfile -t start < <(start_ms)
echo
echo "| Node.js $("$NODE" --version) | start, \`proa --version\`, median of $RUNS | peak RSS, --ready-url run, median of 5 |"
echo "| --- | --- | --- |"
echo "| from the folder (/proa/bin/node, /proa/lib) | ${start[0]} | $(peak_mib "${folder[@]}") |"
echo "| from its usual path ($NODE) | ${start[1]} | $(peak_mib "${usual[@]}") |"
