#!/usr/bin/env bash
# A real etcd + kube-apiserver on loopback, for proa's end-to-end tests:
# Kubernetes 1.20.2 built here, or the binaries of PROA_E2E_KUBE_BIN.
#
#   kube-apiserver.sh build [all]                build and cache kube-apiserver (idempotent); with
#                                                `all`, also kubelet, kube-controller-manager and
#                                                kube-scheduler for the real-node suite (test/e2e/node.sh)
#   kube-apiserver.sh start DIR                  certs, etcd, kube-apiserver; writes DIR/env
#   kube-apiserver.sh stop DIR                   stop both, wait until they are gone
#   kube-apiserver.sh restart-apiserver DIR [S]  stop kube-apiserver, wait S seconds (default 0),
#                                                start it again on the same port with the same etcd
#
# DIR/env holds plain KEY=value lines (no quoting, so both `source` and a
# line split on the first "=" work): KUBE_HOST, KUBE_PORT, KUBE_URL, KUBE_CA
# (path of the CA certificate), KUBE_ADMIN_TOKEN (member of system:masters),
# ETCD_URL. Logs and pids: DIR/etcd.*, DIR/kube-apiserver.*.
# PROA_E2E_STOP_TIMEOUT: seconds from SIGTERM to SIGKILL when stopping (5).
# PROA_E2E_AUDIT=1: kube-apiserver writes an audit log of every request on
# pods (level Metadata, every stage, JSON lines) to DIR/audit.log, appended across restarts
# (the fleet benchmark counts requests per 100 ms from it).
# PROA_E2E_NODE_ADDRESS: for node.sh, a real node's apiserver: it listens on
# this address (the Pods' bridge) at port 443, the first address of its /24 is
# the `kubernetes` Service, and the admission plugins are a real cluster's
# (ServiceAccount included).
# PROA_E2E_KUBE_BIN=DIR: use DIR's kube-apiserver (and, for node.sh, kubelet,
# kube-controller-manager, kube-scheduler) instead of building 1.20.2; each
# component's flags are chosen for the version it reports (1.20 to 1.35, see
# version_flags). PROA_E2E_KUBE_APISERVER_FLAGS, PROA_E2E_KUBELET_FLAGS,
# PROA_E2E_KUBE_CONTROLLER_MANAGER_FLAGS, PROA_E2E_KUBE_SCHEDULER_FLAGS: more
# flags appended to that component's command line (split at spaces, no quoting),
# for a distribution that needs them.
#
# Kubernetes publishes no kube-apiserver binary we can download here, so it is
# built from Debian bookworm's `kubernetes` source package, which carries the
# whole 1.20.2 tree with vendored Go modules, using Debian's Go 1.19.
set -euo pipefail

K8S_VERSION=1.20.2
# The Debian source version wanted, without its Debian revision (-1.1+deb12u1 on bookworm-security): asked for
# exactly, so that a machine whose apt sources include a newer suite (which has 1.36.4+ds, repacked without vendor/)
# still fetches this one.
DEB_UPSTREAM_VERSION=1.20.5+really1.20.2
DEB_SOURCE_DIR=kubernetes-$DEB_UPSTREAM_VERSION # what `apt-get source` unpacks
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/proa/kube-apiserver-$K8S_VERSION"
# The binaries the scripts run: the user's, or those built into the cache.
KUBE_BIN="${PROA_E2E_KUBE_BIN:-$CACHE_DIR}"
APISERVER_BIN="$KUBE_BIN/kube-apiserver"
NODE_BINARIES=(kubelet kube-controller-manager kube-scheduler)
RUNTIME_PACKAGES=(etcd-server openssl curl jq)
BUILD_PACKAGES=(golang-go rsync jq make dpkg-dev golang-github-modern-go-reflect2-dev)
READY_TIMEOUT=60 # seconds to wait for /readyz
NODE_ADDRESS="${PROA_E2E_NODE_ADDRESS-}"
API_ADDRESS="${NODE_ADDRESS:-127.0.0.1}"
# Seconds between SIGTERM and SIGKILL. After SIGTERM kube-apiserver refuses
# new connections at once but keeps open watches (silent) for up to 60 s,
# then resets them; waiting that long would only slow the tests down.
STOP_TIMEOUT="${PROA_E2E_STOP_TIMEOUT:-5}"

log() { echo "${SCRIPT_NAME:-kube-apiserver.sh}: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- build ----

install_packages() {
  local missing=() p
  for p in "$@"; do
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" == installed ]] || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# `apt-get source` needs a deb-src entry for the archive this machine already
# uses: copy its deb822 entry with the type changed.
enable_deb_src() {
  local src=/etc/apt/sources.list.d/debian.sources dst=/etc/apt/sources.list.d/proa-deb-src.sources
  if [[ ! -f $dst ]]; then
    [[ -f $src ]] || die "$src not found: add a deb-src entry for Debian bookworm by hand"
    sed 's/^Types: deb$/Types: deb-src/' "$src" >"$dst"
  fi
  [[ -n "$(apt-cache showsrc kubernetes 2>/dev/null)" ]] || apt-get update -qq
}

# build [all]: the binaries missing from the cache, all in one `make` (they
# share most of their packages, so one invocation compiles each package once).
build() {
  install_packages "${RUNTIME_PACKAGES[@]}"
  local wanted=(kube-apiserver) missing=() name
  [[ ${1-} == all ]] && wanted+=("${NODE_BINARIES[@]}")
  if [[ -n ${PROA_E2E_KUBE_BIN-} ]]; then
    # The user's binaries: nothing to build but pause (below).
    for name in "${wanted[@]}"; do
      [[ -x $KUBE_BIN/$name ]] || die "PROA_E2E_KUBE_BIN=$KUBE_BIN has no executable $name"
    done
    wanted=()
  fi
  for name in "${wanted[@]}"; do
    [[ -x $CACHE_DIR/$name ]] || missing+=("$name")
  done
  # node.sh compiles kubernetes' own pause program for its sandbox image.
  local want_pause=0
  [[ ${1-} == all && ! -f $CACHE_DIR/pause.c ]] && want_pause=1
  if ((${#missing[@]} == 0 && !want_pause)); then
    log "using: $(component_names "${1-}") in $KUBE_BIN"
    return 0
  fi
  install_packages "${BUILD_PACKAGES[@]}"
  enable_deb_src

  # Everything happens in a scratch folder next to the cache (never in the
  # repository); it is removed at the end, only the binary is kept.
  mkdir -p "$CACHE_DIR"
  local work
  work="$(mktemp -d "$CACHE_DIR.build.XXXXXX")"
  # shellcheck disable=SC2064 # expand $work now
  trap "chmod -R u+w '$work' 2>/dev/null; rm -rf '$work'" EXIT

  local version
  version="$(deb_source_version "$(apt-cache showsrc kubernetes 2>/dev/null)")" ||
    die "no kubernetes source package $DEB_UPSTREAM_VERSION in the apt sources (apt-cache showsrc kubernetes): add Debian bookworm's deb-src"
  log "fetching the kubernetes source package $version into $work"
  # (as root: apt's sandbox user cannot read a folder under root's home)
  (cd "$work" && apt-get source -qq -o APT::Sandbox::User=root "kubernetes=$version" >/dev/null)
  local tree="$work/$DEB_SOURCE_DIR"
  [[ -d $tree ]] || die "expected $tree after apt-get source; Debian's package changed?"

  # The vendored reflect2 v1.0.1 makes the server crash at run time under
  # Go >= 1.18 (SIGSEGV in mapiterinit); Debian's 1.0.2 works. The gccgo-only
  # file is left out. modules.txt keeps saying v1.0.1, which `go` accepts.
  local reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
  rm -f "$tree/vendor/github.com/modern-go/reflect2/"*.go
  find "$reflect2" -maxdepth 1 -name '*.go' ! -name unsafe_link_gccgo.go \
    -exec cp {} "$tree/vendor/github.com/modern-go/reflect2/" \;

  # Same layout as debian/rules: a GOPATH whose k8s.io/kubernetes is the tree.
  # GOPROXY=off: everything is vendored, nothing may be downloaded.
  mkdir -p "$work/gopath/src/k8s.io"
  ln -s "$tree" "$work/gopath/src/k8s.io/kubernetes"
  if ((want_pause)); then
    cp "$tree/build/pause/linux/pause.c" "$CACHE_DIR/pause.c.tmp"
    mv "$CACHE_DIR/pause.c.tmp" "$CACHE_DIR/pause.c"
  fi
  if ((${#missing[@]} == 0)); then
    chmod -R u+w "$work" && rm -rf "$work" && trap - EXIT
    log "kept: $CACHE_DIR/pause.c"
    return 0
  fi

  log "building ${missing[*]} $K8S_VERSION (takes minutes: about 5 for kube-apiserver, 10 for all four, on 2 cores)"
  local what="${missing[*]/#/cmd/}"
  (
    cd "$work/gopath/src/k8s.io/kubernetes"
    export GOPATH="$work/gopath" GOCACHE="$work/gocache" CGO_ENABLED=0 GOPROXY=off GOFLAGS=
    make WHAT="$what"
  ) >"$work/build.log" 2>&1 || { tail -n 50 "$work/build.log" >&2; die "build failed"; }

  for name in "${missing[@]}"; do
    cp -L "$tree/_output/bin/$name" "$CACHE_DIR/$name.tmp"
    mv "$CACHE_DIR/$name.tmp" "$CACHE_DIR/$name"
  done
  chmod -R u+w "$work" && rm -rf "$work" && trap - EXIT
  log "built: ${missing[*]} in $CACHE_DIR ($("$CACHE_DIR/${missing[0]}" --version))"
}

component_names() { if [[ ${1-} == all ]]; then echo "kube-apiserver ${NODE_BINARIES[*]}"; else echo kube-apiserver; fi; }

# deb_source_version SHOWSRC: from `apt-cache showsrc kubernetes`'s text, the
# newest Debian revision of $DEB_UPSTREAM_VERSION (never another upstream
# version); fails when there is none.
deb_source_version() {
  local found
  found="$(sed -n "s/^Version: \(${DEB_UPSTREAM_VERSION//./\\.}-[^ ]*\)\$/\1/p" <<<"$1" | sort -V | tail -n 1)"
  [[ -n $found ]] || return 1
  echo "$found"
}

# ------------------------------------------------------------- versions ----

# kube_minor VERSION_TEXT: the minor version in a component's `--version`
# output ("Kubernetes v1.33.13" -> 33; major 1 only).
kube_minor() {
  [[ $1 =~ v1\.([0-9]+)\. ]] || return 1
  echo "$((10#${BASH_REMATCH[1]}))"
}

# component_minor NAME: the minor version NAME's binary reports.
component_minor() {
  local text
  text="$("$KUBE_BIN/$1" --version 2>&1)" || die "$KUBE_BIN/$1 --version failed: $text"
  kube_minor "$text" || die "cannot read a Kubernetes 1.x version from $KUBE_BIN/$1 --version: $text"
}

# Which flags a component's version takes; the suite supports 1.20 to 1.35.
MIN_MINOR=20
MAX_MINOR=35

# version_flags COMPONENT MINOR: the flags (and, for kubelet-config, the
# KubeletConfiguration lines) that depend on the version, one per line. Pure:
# what the scripts add to the flags every version takes. Where each changed:
# - kube-controller-manager, kube-scheduler: --port (the insecure port) removed
#   in 1.24, a no-op since 1.22/1.23; --port=0 before that.
# - kubelet: --container-runtime removed in 1.27 (remote was the only value
#   since dockershim left in 1.24); --pod-infra-container-image removed in 1.35
#   (kubernetes/kubernetes#133779; containerd's sandbox_image sets the pause
#   image, the flag only kept it from image GC).
# - kubelet-config: failCgroupV1 (added in 1.31) defaults to true in 1.35,
#   which refuses a cgroup v1 host like this one.
# - node: token-secrets before 1.24, when the controller-manager still made a
#   token Secret per ServiceAccount (LegacyServiceAccountTokenNoAutoGeneration).
version_flags() {
  local component="$1" minor="$2"
  case "$component" in
    kube-apiserver) ;;
    kube-controller-manager | kube-scheduler)
      ((minor >= 24)) || echo "--port=0"
      ;;
    kubelet)
      ((minor >= 27)) || echo "--container-runtime=remote"
      ((minor >= 35)) || echo "--pod-infra-container-image=\$PAUSE_IMAGE"
      ;;
    kubelet-config)
      ((minor < 31)) || echo "failCgroupV1: false"
      ;;
    node)
      ((minor >= 24)) || echo "token-secrets"
      ;;
    *) return 1 ;;
  esac
}

# supported_minor NAME MINOR: dies below 1.20; above 1.35, warns and carries on
# with 1.35's flags.
supported_minor() {
  ((${2} >= MIN_MINOR)) || die "$1 is 1.$2: the suite supports Kubernetes 1.$MIN_MINOR to 1.$MAX_MINOR"
  ((${2} <= MAX_MINOR)) ||
    log "$1 is 1.$2, newer than 1.$MAX_MINOR: using 1.$MAX_MINOR's flags (add what it needs with PROA_E2E_*_FLAGS)"
}

# component_args COMPONENT MINOR: version_flags as words, $PAUSE_IMAGE filled in,
# then the PROA_E2E_<COMPONENT>_FLAGS the user gives. Sets the array ARGS.
component_args() {
  local component="$1" minor="$2" line variable extra
  ARGS=()
  while IFS= read -r line; do
    [[ -n $line ]] && ARGS+=("${line//\$PAUSE_IMAGE/${PAUSE_IMAGE-}}")
  done < <(version_flags "$component" "$minor")
  variable="PROA_E2E_$(tr 'a-z-' 'A-Z_' <<<"$component")_FLAGS"
  read -r -a extra <<<"${!variable-}"
  ARGS+=("${extra[@]}")
}

# ------------------------------------------------------------ processes ----

# A free loopback port, chosen below the kernel's ephemeral range: a client
# that keeps reconnecting to a stopped server's port in that range can end up
# connected to itself (TCP simultaneous open) and hold the port.
# Arguments: ports to avoid.
pick_port() {
  local low p i
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range
  ((low > 20000)) || low=32768
  for ((i = 0; i < 100; i++)); do
    p=$((10000 + (RANDOM * 32768 + RANDOM) % (low - 10000)))
    [[ " $* " == *" $p "* ]] && continue
    if node -e 'require("net").createServer().once("error", () => process.exit(1))
                  .listen(+process.argv[1], "127.0.0.1", function () { this.close() })' "$p"; then
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}

# alive PIDFILE NAME: the pid in PIDFILE runs (and is not a zombie) and is NAME,
# not some later process that reused the pid.
alive() {
  local pid
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ -r /proc/$pid/stat ]] || return 1
  # (2>/dev/null: the process may vanish while we look)
  [[ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]] || return 1
  [[ "$({ tr '\0' '\n' <"/proc/$pid/cmdline"; } 2>/dev/null | head -n 1)" == *"$2" ]]
}

# stop_process PIDFILE NAME: SIGTERM, wait, SIGKILL if it takes too long.
stop_process() {
  local pid i
  if alive "$1" "$2"; then
    pid="$(cat "$1")"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
      alive "$1" "$2" || break
      sleep 0.1
    done
    if alive "$1" "$2"; then
      log "$2 still running ${STOP_TIMEOUT}s after SIGTERM (open watches?): SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while alive "$1" "$2"; do sleep 0.1; done
    fi
  fi
  rm -f "$1"
}

# launch DIR NAME COMMAND...: run in the background, detached from our
# stdin/stdout/stderr (a caller reading our output must not wait for it).
launch() {
  local dir="$1" name="$2"
  shift 2
  "$@" </dev/null >>"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

# The last errors (klog's E/F lines; a fatal one is followed by a long
# goroutine dump) and the last lines of both logs.
show_logs() {
  local f
  for f in "$1"/etcd.log "$1"/kube-apiserver.log; do
    [[ -f $f ]] || continue
    echo "--- errors in $f" >&2
    grep -E '^[EF][0-9]{4} |"level":"(error|fatal|panic)"' "$f" | tail -n 10 >&2 || true
    echo "--- tail of $f" >&2
    tail -n 20 "$f" >&2
  done
}

# wait_for DIR NAME URL CURL_ARGS...: poll URL until it answers 2xx, while
# NAME is still running. Returns 1 if NAME died, 2 on timeout.
wait_for() {
  local dir="$1" name="$2" url="$3" deadline=$((SECONDS + READY_TIMEOUT))
  shift 3
  until curl -fsS --max-time 2 -o /dev/null "$@" "$url" 2>/dev/null; do
    alive "$dir/$name.pid" "$name" || return 1
    ((SECONDS < deadline)) || return 2
    sleep 0.2
  done
}

# failure NAME RC: what wait_for's RC means.
failure() {
  if (($2 == 1)); then echo "$1 exited during startup (see the logs above)"; else echo "$1 not ready within ${READY_TIMEOUT}s"; fi
}

# A port picked free can still be taken before the server binds it; then the
# server exits at once saying so, and we try another port.
port_taken() { grep -q 'address already in use' "$1"; }

start_etcd() {
  local dir="$1" client peer rc
  for _ in 1 2 3; do
    client="$(pick_port)"
    peer="$(pick_port "$client")"
    : >"$dir/etcd.log"
    launch "$dir" etcd etcd \
      --name=proa-e2e --data-dir="$dir/etcd-data" \
      --listen-client-urls="http://127.0.0.1:$client" --advertise-client-urls="http://127.0.0.1:$client" \
      --listen-peer-urls="http://127.0.0.1:$peer" --initial-advertise-peer-urls="http://127.0.0.1:$peer" \
      --initial-cluster="proa-e2e=http://127.0.0.1:$peer" \
      --logger=zap --log-outputs=stderr
    rc=0
    wait_for "$dir" etcd "http://127.0.0.1:$client/health" || rc=$?
    if ((rc == 0)); then
      ETCD_URL="http://127.0.0.1:$client"
      return 0
    fi
    stop_process "$dir/etcd.pid" etcd
    ((rc == 1)) && port_taken "$dir/etcd.log" && { rm -rf "$dir/etcd-data"; continue; }
    break
  done
  show_logs "$dir"
  die "$(failure etcd "$rc")"
}

# launch_apiserver DIR PORT ETCD_URL; returns like wait_for.
launch_apiserver() {
  local dir="$1" port="$2" etcd_url="$3" rc=0 node_args minor ARGS
  # (called as `launch_apiserver ... || rc=$?`, where set -e does not apply: each failure returns)
  minor="$(component_minor kube-apiserver)" || return 1
  supported_minor kube-apiserver "$minor" || return 1
  component_args kube-apiserver "$minor" || return 1
  if [[ -n $NODE_ADDRESS ]]; then
    node_args=(--service-cluster-ip-range="${NODE_ADDRESS%.*}.0/24" --enable-admission-plugins=NodeRestriction)
  else
    # No controller-manager makes ServiceAccount token Secrets here, which that plugin would wait for.
    node_args=(--service-cluster-ip-range=10.0.0.0/24 --disable-admission-plugins=ServiceAccount)
  fi
  if [[ ${PROA_E2E_AUDIT-} == 1 ]]; then
    # Every stage: kube-apiserver 1.20 logs a watch's ResponseStarted only with its first event.
    printf '%s\n' 'apiVersion: audit.k8s.io/v1' 'kind: Policy' 'rules:' \
      '- level: Metadata' '  resources: [{group: "", resources: [pods]}]' '- level: None' >"$dir/audit-policy.yaml"
    node_args+=(--audit-policy-file="$dir/audit-policy.yaml" --audit-log-path="$dir/audit.log" --audit-log-maxsize=0)
  fi
  launch "$dir" kube-apiserver "$APISERVER_BIN" \
    --bind-address="$API_ADDRESS" --advertise-address="$API_ADDRESS" --secure-port="$port" \
    --tls-cert-file="$dir/apiserver.crt" --tls-private-key-file="$dir/apiserver.key" \
    --etcd-servers="$etcd_url" \
    --token-auth-file="$dir/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$dir/sa.pub" \
    --service-account-signing-key-file="$dir/sa.key" \
    "${node_args[@]}" \
    --endpoint-reconciler-type=none \
    "${ARGS[@]}"
  wait_for "$dir" kube-apiserver "https://$API_ADDRESS:$port/readyz" \
    --cacert "$dir/ca.crt" -H "Authorization: Bearer $(cat "$dir/admin.token")" || rc=$?
  return "$rc"
}

make_credentials() {
  local dir="$1"
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=proa-e2e-ca \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -new -newkey rsa:2048 -nodes -subj /CN=kube-apiserver \
      -keyout apiserver.key -out apiserver.csr 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost${NODE_ADDRESS:+,IP:$NODE_ADDRESS}" \
      'extendedKeyUsage=serverAuth' 'keyUsage=critical,digitalSignature,keyEncipherment' >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
      -days 3650 -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    # Signs and verifies the ServiceAccount tokens issued by the TokenRequest API.
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    # A random admin token in the static token file; system:masters bypasses RBAC.
    openssl rand -hex 24 >admin.token
    echo "$(cat admin.token),proa-e2e-admin,proa-e2e-admin,system:masters" >tokens.csv
    chmod 600 ./*.key admin.token tokens.csv
  )
}

# ------------------------------------------------------------- commands ----

# Absolute DIR (created), restricted to characters that need no quoting in DIR/env.
resolve_dir() {
  [[ -n ${1-} ]] || die "missing DIR"
  mkdir -p "$1"
  local dir
  dir="$(cd "$1" && pwd)"
  [[ $dir =~ ^[A-Za-z0-9_./+-]+$ ]] || die "DIR must be a path without spaces or special characters: $dir"
  echo "$dir"
}

start() {
  local dir port rc
  dir="$(resolve_dir "${1-}")"
  build
  if alive "$dir/etcd.pid" etcd || alive "$dir/kube-apiserver.pid" kube-apiserver; then
    die "already running in $dir (stop it first)"
  fi
  rm -rf "$dir/etcd-data" "$dir/env"
  make_credentials "$dir"
  start_etcd "$dir"
  for _ in 1 2 3; do
    if [[ -n $NODE_ADDRESS ]]; then port=443; else port="$(pick_port "${ETCD_URL##*:}")"; fi
    : >"$dir/kube-apiserver.log"
    rc=0
    launch_apiserver "$dir" "$port" "$ETCD_URL" || rc=$?
    ((rc == 0)) && break
    stop_process "$dir/kube-apiserver.pid" kube-apiserver
    ((rc == 1)) && port_taken "$dir/kube-apiserver.log" && continue
    break
  done
  if ((rc != 0)); then
    show_logs "$dir"
    stop "$dir"
    die "$(failure kube-apiserver "$rc")"
  fi
  cat >"$dir/env" <<EOF
KUBE_HOST=$API_ADDRESS
KUBE_PORT=$port
KUBE_URL=https://$API_ADDRESS:$port
KUBE_CA=$dir/ca.crt
KUBE_ADMIN_TOKEN=$(cat "$dir/admin.token")
ETCD_URL=$ETCD_URL
KUBE_VERSION=$("$APISERVER_BIN" --version | sed 's/^Kubernetes //')
EOF
  log "ready: https://$API_ADDRESS:$port (see $dir/env)"
}

stop() {
  local dir
  dir="$(resolve_dir "${1-}")"
  stop_process "$dir/kube-apiserver.pid" kube-apiserver
  stop_process "$dir/etcd.pid" etcd
}

restart_apiserver() {
  local dir rc=0
  dir="$(resolve_dir "${1-}")"
  [[ -f $dir/env ]] || die "$dir/env not found: start first"
  # shellcheck disable=SC1091
  source "$dir/env"
  stop_process "$dir/kube-apiserver.pid" kube-apiserver
  sleep "${2:-0}"
  launch_apiserver "$dir" "$KUBE_PORT" "$ETCD_URL" || rc=$?
  if ((rc != 0)); then
    show_logs "$dir"
    die "$(failure kube-apiserver "$rc")"
  fi
  log "restarted: $KUBE_URL"
}

# (node.sh sources this file for its functions.)
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  case "${1-}" in
    build) build "${2-}" ;;
    start) start "${2-}" ;;
    stop) stop "${2-}" ;;
    restart-apiserver) restart_apiserver "${2-}" "${3-0}" ;;
    *)
      sed -n '5,11p' "$0" >&2
      exit 2
      ;;
  esac
fi
