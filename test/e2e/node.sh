#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for proa's real-node
# end-to-end tests: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, containerd and a kubelet that runs real Pods. Kubernetes
# 1.20.2 built here, or PROA_E2E_KUBE_BIN's binaries with the flags of their
# versions (kube-apiserver.sh's version_flags) and PROA_E2E_*_FLAGS added.
#
#   node.sh check                 what this machine lacks for it (exit 1 if anything)
#   node.sh build                 packages, binaries and the pause program (cached, idempotent)
#   node.sh start DIR             start it all with its files in DIR; writes DIR/env
#   node.sh stop DIR              stop it all by PID, remove every container, restore the host
#   node.sh portable-images DIR   import proa's portable image and a busybox-only image into the running node
#
# DIR/env adds to kube-apiserver.sh's keys: KUBECONFIG (admin), NODE_NAME, APP_IMAGE
# (busybox, node, dist/proa.js at /proa/proa.js, job.yaml's sidecar at
# /sidecar/sidecar.mjs), PAUSE_IMAGE, KUBELET_VERSION (as `kubelet --version`
# says it, e.g. v1.20.2). Logs and pids: DIR/*.log, DIR/*.pid.
#
# One node per machine: the kubelet's cgroups (/kubepods), /var/log/pods and
# the sysctls it sets are global. The DIR of the running node is kept in
# $LOCK_FILE; `start` first tears down a node a crashed run left behind.
#
# What it changes on the host, and `stop` restores (saved in DIR/host/):
#   sysctls the kubelet sets (vm.overcommit_memory, vm.panic_on_oom, kernel.panic,
#   kernel.panic_on_oops, kernel.keys.root_max*) and the bridge plugin sets
#   (net.ipv4.ip_forward); /var/log/pods, /var/log/containers, /run/containerd,
#   /run/netns entries; the kubepods cgroups; the bridge $BRIDGE; iptables rules.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# Reuses the apiserver script's helpers (log, die, alive, stop_process, launch,
# pick_port, install_packages, build) without running its commands.
SCRIPT_NAME=node.sh
# shellcheck source=kube-apiserver.sh
source "$HERE/kube-apiserver.sh"

NODE_PACKAGES=(containerd runc containernetworking-plugins busybox-static gcc libc6-dev iproute2)
CNI_BIN_DIR=/usr/lib/cni
BRIDGE=proa-e2e0
# The Pods' network. Its first address is the bridge, where kube-apiserver
# listens on port 443, and also the `kubernetes` Service's ClusterIP (the first
# of --service-cluster-ip-range, always port 443): so the KUBERNETES_SERVICE_HOST
# and _PORT the kubelet gives every Pod reach the real apiserver without
# kube-proxy or NAT.
SUBNET_PREFIX=10.217.113
GATEWAY=$SUBNET_PREFIX.1
NODE_NAME=localhost # `kubectl logs` reaches the kubelet by this name (127.0.0.1)
PAUSE_IMAGE=docker.io/proa-e2e/pause:3.4
APP_IMAGE=docker.io/proa-e2e/app:dev
LOCK_FILE=/run/proa-e2e-node.dir
NODE_READY_TIMEOUT=120 # seconds for the Node to report Ready
PAUSE_SOURCE="$CACHE_DIR/pause.c" # kept by `kube-apiserver.sh build all`
PAUSE_BIN="$CACHE_DIR/pause"
SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
  kernel/keys/root_maxkeys kernel/keys/root_maxbytes net/ipv4/ip_forward)
HOST_DIRS=(/var/log/pods /var/log/containers /run/containerd /run/netns /run/mount)

# ---------------------------------------------------------------- check ----

# What this machine lacks to run a node, one line each (nothing when it can).
missing_capabilities() {
  ((EUID == 0)) || echo "not root (containerd and the kubelet need it)"
  grep -qw overlay /proc/filesystems 2>/dev/null || echo "no overlay filesystem (containerd's overlayfs snapshotter)"
  local c
  for c in cpu cpuacct cpuset memory pids; do
    [[ -d /sys/fs/cgroup/$c ]] || echo "no cgroup v1 $c controller at /sys/fs/cgroup/$c (the kubelet runs with the cgroupfs driver)"
  done
  [[ -d /proc/sys/net/ipv4 ]] || echo "no /proc/sys/net"
  if ((EUID == 0)) && ! ip link add proa-e2e-probe type bridge 2>/dev/null; then
    echo "cannot create a network bridge"
  else
    ip link del proa-e2e-probe 2>/dev/null || true
  fi
}

check() {
  local missing
  missing="$(missing_capabilities)"
  [[ -z $missing ]] && return 0
  echo "$missing" >&2
  return 1
}

# ---------------------------------------------------------------- build ----

node_build() {
  install_packages "${NODE_PACKAGES[@]}"
  build all
  if [[ ! -x $PAUSE_BIN ]]; then
    [[ -f $PAUSE_SOURCE ]] || die "$PAUSE_SOURCE missing: remove $CACHE_DIR/kubelet and run again to fetch the source"
    gcc -Os -static -Wall -DVERSION=3.4-proa-e2e -o "$PAUSE_BIN.tmp" "$PAUSE_SOURCE"
    mv "$PAUSE_BIN.tmp" "$PAUSE_BIN"
  fi
}

# ---------------------------------------------------------------- images ---

# write_image ROOTFS NAME ARCHIVE [ENTRYPOINT_JSON]: a one-layer image archive
# (docker save's format) of ROOTFS, for `ctr images import`.
write_image() {
  local rootfs="$1" name="$2" archive="$3" entrypoint="${4-null}" tmp diff
  tmp="$(mktemp -d "$archive.XXXXXX")"
  tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$rootfs" -cf "$tmp/layer.tar" .
  diff="sha256:$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)"
  jq -n --arg diff "$diff" --argjson entrypoint "$entrypoint" '{
    architecture: "amd64", os: "linux",
    config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Entrypoint: $entrypoint, WorkingDir: "/"},
    rootfs: {type: "layers", diff_ids: [$diff]}
  }' >"$tmp/config.json"
  jq -n --arg name "$name" '[{Config: "config.json", RepoTags: [$name], Layers: ["layer.tar"]}]' >"$tmp/manifest.json"
  tar -C "$tmp" -cf "$archive" manifest.json config.json layer.tar
  rm -rf "$tmp"
}

# The sidecar stand-in of job.yaml's ConfigMap (the block under `sidecar.mjs: |`).
job_yaml_sidecar() {
  awk '/^  sidecar\.mjs: \|/ { on = 1; next }
       on && /^(---|[^ ])/ { exit }
       on { sub(/^    /, ""); print }' "$REPO/job.yaml"
}

# Both images, readable and runnable by any user (job.yaml runs as non-root).
build_images() {
  local dir="$1" root="$1/images"
  rm -rf "$root" && mkdir -p "$root/pause/rootfs" "$root/app/rootfs"
  cp "$PAUSE_BIN" "$root/pause/rootfs/pause"
  write_image "$root/pause/rootfs" "$PAUSE_IMAGE" "$root/pause.tar" '["/pause"]'

  local app="$root/app/rootfs" node lib applet
  [[ -f $REPO/dist/proa.js ]] || die "$REPO/dist/proa.js missing: npm run build"
  mkdir -p "$app"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,proa,sidecar,tmp,etc,dev,proc,sys}
  cp /bin/busybox "$app/bin/busybox"
  # Hard links, not symlinks: a process started through a symlink to busybox
  # is named "busybox" in /proc/PID/comm here, and --kill NAME reads comm.
  for applet in $(/bin/busybox --list-full); do
    [[ -e $app/$applet ]] || ln "$app/bin/busybox" "$app/$applet"
  done
  node="$(command -v node)"
  cp -L "$node" "$app/usr/local/bin/node"
  # The libraries the dynamic node binary needs, at the paths its loader looks in.
  for lib in $(ldd "$node" | grep -o '/[^ ]*'); do
    mkdir -p "$app$(dirname "$lib")"
    cp -L "$lib" "$app$lib"
  done
  cp "$REPO/dist/proa.js" "$app/proa/proa.js"
  job_yaml_sidecar >"$app/sidecar/sidecar.mjs"
  echo 'root:x:0:0:root:/:/bin/sh' >"$app/etc/passwd"
  echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >>"$app/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$app/etc/group"
  chmod -R a+rX "$app"
  chmod 1777 "$app/tmp"
  write_image "$app" "$APP_IMAGE" "$root/app.tar"

  local image
  for image in pause app; do
    ctr --address "$dir/containerd/containerd.sock" -n k8s.io images import "$root/$image.tar" >/dev/null ||
      die "ctr could not import the $image image"
  done
  rm -rf "$root"
}

# proa's portable image (the Dockerfile's `portable` target, from dist/portable/proa-linux-amd64.tar: the folder at
# /proa and nothing else) and an application image with no Node.js and no C library (static busybox alone), for
# the init-container install. Prints their names, one per line.
PORTABLE_IMAGE=docker.io/proa-e2e/proa-portable:dev
BUSYBOX_IMAGE=docker.io/proa-e2e/busybox-only:dev
portable_images() {
  local dir="$1" root="$1/portable-images" layer="$REPO/dist/portable/proa-linux-amd64.tar" applet
  [[ -f $layer ]] || die "$layer missing: npm run build:portable"
  rm -rf "$root" && mkdir -p "$root/proa" "$root/busybox/bin"
  tar -C "$root/proa" -xf "$layer"
  write_image "$root/proa" "$PORTABLE_IMAGE" "$root/proa.tar" '["/proa/bin/proa"]'
  cp /bin/busybox "$root/busybox/bin/busybox"
  for applet in sh wget ls cat test echo sleep; do ln "$root/busybox/bin/busybox" "$root/busybox/bin/$applet"; done
  chmod -R a+rX "$root/busybox"
  write_image "$root/busybox" "$BUSYBOX_IMAGE" "$root/busybox.tar" '["/bin/sh"]'
  local image
  for image in proa busybox; do
    ctr --address "$dir/containerd/containerd.sock" -n k8s.io images import "$root/$image.tar" >/dev/null ||
      die "ctr could not import the $image image"
  done
  rm -rf "$root"
  printf '%s\n' "$PORTABLE_IMAGE" "$BUSYBOX_IMAGE"
}

# ----------------------------------------------------------------- host ----

# Records what the node will change, before it changes anything.
save_host_state() {
  local host="$1/host" s d
  mkdir -p "$host"
  for s in "${SYSCTLS[@]}"; do
    [[ -r /proc/sys/$s ]] && echo "$s $(cat "/proc/sys/$s")"
  done >"$host/sysctls"
  for d in "${HOST_DIRS[@]}"; do
    if [[ -d $d ]]; then echo "$d"; fi
  done >"$host/dirs"
  for d in "${HOST_DIRS[@]}"; do
    [[ -d $d ]] && find "$d" -mindepth 1 -maxdepth 1
  done >"$host/entries" || true
  if command -v iptables-save >/dev/null; then
    iptables-save >"$host/iptables" 2>/dev/null || true
  fi
  ls -d /sys/fs/cgroup/*/kubepods 2>/dev/null >"$host/cgroups" || true
}

restore_host() {
  local dir="$1" host="$1/host" s v d e
  [[ -d $host ]] || return 0
  if [[ -f $host/sysctls ]]; then
    while read -r s v; do
      [[ "$(cat "/proc/sys/$s" 2>/dev/null)" == "$v" ]] || echo "$v" >"/proc/sys/$s" || log "could not restore $s to $v"
    done <"$host/sysctls"
  fi
  # /run/netns: the network namespaces of Pods (bind mounts) must be unmounted first.
  for e in /run/netns/*; do
    [[ -e $e ]] || continue
    grep -qxF "$e" "$host/entries" 2>/dev/null && continue
    umount "$e" 2>/dev/null || true
    rm -f "$e"
  done
  for d in "${HOST_DIRS[@]}"; do
    if grep -qxF "$d" "$host/dirs" 2>/dev/null; then
      for e in "$d"/* "$d"/.[!.]*; do
        [[ -e $e || -L $e ]] || continue
        grep -qxF "$e" "$host/entries" || rm -rf "$e"
      done
    else
      rm -rf "$d"
    fi
  done
  remove_kubepods_cgroups "$host/cgroups"
  ip link del "$BRIDGE" 2>/dev/null || true
  if [[ -f $host/iptables ]] && command -v iptables-restore >/dev/null; then
    iptables-restore <"$host/iptables" || log "could not restore iptables"
  fi
}

# The kubelet's /kubepods trees, deepest first (a cgroup with children or
# processes cannot be removed), unless they were there before the node.
remove_kubepods_cgroups() {
  local top pid
  for top in /sys/fs/cgroup/*/kubepods; do
    [[ -d $top ]] || continue
    grep -qxF "$top" "$1" 2>/dev/null && continue
    # Containers whose containerd is gone (a crashed run) still hold their cgroups: end them, by PID.
    for pid in $(find "$top" -name cgroup.procs -exec cat {} + 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null && sleep 0.1
    done
    find "$top" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [[ -d $top ]] && log "could not remove $top (processes still in it?)"
  done
  return 0
}

# ----------------------------------------------------------- containerd ----

write_containerd_config() {
  local dir="$1"
  mkdir -p "$dir/containerd" "$dir/cni/net.d" "$dir/cni/ipam"
  cat >"$dir/containerd/config.toml" <<EOF
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
[grpc]
  address = "$dir/containerd/containerd.sock"
[ttrpc]
  address = "$dir/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Root here lacks CAP_SYS_RESOURCE: the kubelet's oom_score_adj of -998 for
  # the pause container would make runc fail every sandbox ("can't get final
  # child's PID from pipe: EOF"). This clamps it to what root may set.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$dir/cni/net.d"
EOF
  cat >"$dir/cni/net.d/10-proa-e2e.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "proa-e2e",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$dir/cni/ipam",
        "ranges": [[{ "subnet": "$SUBNET_PREFIX.0/24", "rangeStart": "$SUBNET_PREFIX.10", "gateway": "$GATEWAY" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    }
  ]
}
EOF
}

start_containerd() {
  local dir="$1" i
  write_containerd_config "$dir"
  launch "$dir" containerd containerd --config "$dir/containerd/config.toml"
  for ((i = 0; i < 300; i++)); do
    ctr --address "$dir/containerd/containerd.sock" version >/dev/null 2>&1 && return 0
    alive "$dir/containerd.pid" containerd || break
    sleep 0.2
  done
  tail -n 20 "$dir/containerd.log" >&2
  die "containerd did not start"
}

# Every container and sandbox the kubelet left: killed, deleted, shims gone.
remove_containers() {
  local dir="$1" sock="$1/containerd/containerd.sock"
  alive "$dir/containerd.pid" containerd && remove_tasks "$sock"
  # A shim whose task could not be deleted, or whose containerd is gone (a
  # crashed run): by PID, only ours (its -address is our socket).
  local pid
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $sock" || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done
}

remove_tasks() {
  local c=(ctr --address "$1" -n k8s.io) id i
  for id in $("${c[@]}" tasks ls -q 2>/dev/null); do
    "${c[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  for ((i = 0; i < 100; i++)); do
    [[ -z "$("${c[@]}" tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"')" ]] && break
    sleep 0.1
  done
  for id in $("${c[@]}" tasks ls -q 2>/dev/null); do
    "${c[@]}" tasks delete -f "$id" >/dev/null 2>&1 || true
  done
  for id in $("${c[@]}" containers ls -q 2>/dev/null); do
    "${c[@]}" containers delete "$id" >/dev/null 2>&1 || true
  done
}

# --------------------------------------------------------------- kubelet ---

write_kubeconfig() {
  local dir="$1"
  cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: proa-e2e
    cluster: { server: "$KUBE_URL", certificate-authority: "$KUBE_CA" }
users:
  - name: admin
    user: { token: "$KUBE_ADMIN_TOKEN" }
contexts:
  - name: proa-e2e
    context: { cluster: proa-e2e, user: admin }
current-context: proa-e2e
EOF
  chmod 600 "$dir/kubeconfig"
}

write_kubelet_config() {
  local dir="$1" port="$2" healthz="$3" minor="$4"
  mkdir -p "$dir/kubelet"
  cat >"$dir/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz
# The apiserver has no client certificate for the kubelet (logs, exec).
authentication:
  anonymous: { enabled: true }
  webhook: { enabled: false }
authorization: { mode: AlwaysAllow }
cgroupDriver: cgroupfs
failSwapOn: false
makeIPTablesUtilChains: false
# A shared test machine: never evict a test Pod or delete its images.
evictionHard: { memory.available: "1Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%" }
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
clusterDomain: cluster.local
$(version_flags kubelet-config "$minor")
EOF
}

start_kubelet() {
  local dir="$1" port healthz minor ARGS
  port="$(pick_port)"
  healthz="$(pick_port "$port")"
  minor="$(component_minor kubelet)"
  supported_minor kubelet "$minor"
  component_args kubelet "$minor"
  write_kubelet_config "$dir" "$port" "$healthz" "$minor"
  launch "$dir" kubelet "$KUBE_BIN/kubelet" \
    --config="$dir/kubelet/config.yaml" \
    --kubeconfig="$dir/kubeconfig" \
    --root-dir="$dir/kubelet/root" \
    --cert-dir="$dir/kubelet/pki" \
    --container-runtime-endpoint="unix://$dir/containerd/containerd.sock" \
    --hostname-override="$NODE_NAME" \
    --v=2 \
    "${ARGS[@]}"
}

# start_control DIR COMPONENT FLAGS...: kube-controller-manager or
# kube-scheduler, with the flags of its version and the user's added.
start_control() {
  local dir="$1" component="$2" minor ARGS
  shift 2
  minor="$(component_minor "$component")"
  supported_minor "$component" "$minor"
  component_args "$component" "$minor"
  launch "$dir" "$component" "$KUBE_BIN/$component" "$@" "${ARGS[@]}"
}

# ------------------------------------------------------------- commands ----

kubectl_api() { # METHOD PATH: curl as admin
  curl -fsS --max-time 10 --cacert "$KUBE_CA" -H "Authorization: Bearer $KUBE_ADMIN_TOKEN" -X "$1" "$KUBE_URL$2"
}

wait_node_ready() {
  local dir="$1" deadline=$((SECONDS + NODE_READY_TIMEOUT)) p
  # Ready, and schedulable: the node.kubernetes.io/not-ready taint, put on at
  # registration, is gone (the controller-manager's nodelifecycle removes it).
  until kubectl_api GET "/api/v1/nodes/$NODE_NAME" 2>/dev/null |
    jq -e '(.status.conditions | any(.type == "Ready" and .status == "True"))
      and ((.spec.taints // []) | all(.effect != "NoSchedule"))' >/dev/null; do
    for p in containerd kubelet kube-controller-manager kube-scheduler; do
      alive "$dir/$p.pid" "$p" || { tail -n 30 "$dir/$p.log" >&2; die "$p exited during startup"; }
    done
    ((SECONDS < deadline)) || { tail -n 30 "$dir/kubelet.log" >&2; die "the Node was not Ready within ${NODE_READY_TIMEOUT}s"; }
    sleep 0.5
  done
  # The default ServiceAccount, which every Pod's admission needs, exists once
  # the controller-manager runs; before 1.24, so does its token Secret, which
  # 1.20's admission mounts (later ones project a TokenRequest token instead).
  local secrets=false
  [[ -n "$(version_flags node "$(component_minor kube-controller-manager)")" ]] && secrets=true
  until kubectl_api GET /api/v1/namespaces/default/serviceaccounts/default 2>/dev/null |
    jq -e --argjson secrets "$secrets" '($secrets | not) or (.secrets | length) > 0' >/dev/null; do
    ((SECONDS < deadline)) || die "no default ServiceAccount (or its token Secret) within ${NODE_READY_TIMEOUT}s (kube-controller-manager.log)"
    sleep 0.5
  done
}

start_node() {
  local dir other
  dir="$(resolve_dir "${1-}")"
  check || die "this machine cannot run a node (see above)"
  node_build
  if [[ -f $LOCK_FILE ]]; then
    other="$(cat "$LOCK_FILE")"
    log "a node left by an earlier run in $other: stopping it first"
    stop_node "$other"
  fi
  echo "$dir" >"$LOCK_FILE"
  save_host_state "$dir"
  # From here on a failure (an error, or die) tears everything down again.
  trap 'log "start failed: tearing down"; stop_node "'"$dir"'"' EXIT

  # (a bridge left by a run that could not even record its DIR goes first)
  ip link del "$BRIDGE" 2>/dev/null || true
  ip link add "$BRIDGE" type bridge
  ip addr add "$GATEWAY/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up

  # kube-apiserver.sh's start, as if PROA_E2E_NODE_ADDRESS=$GATEWAY (read when it was sourced)
  NODE_ADDRESS="$GATEWAY" API_ADDRESS="$GATEWAY"
  start "$dir"
  # shellcheck disable=SC1091
  source "$dir/env"
  write_kubeconfig "$dir"

  start_containerd "$dir"
  build_images "$dir"

  start_control "$dir" kube-controller-manager \
    --kubeconfig="$dir/kubeconfig" --leader-elect=false --secure-port=0 \
    --controllers=job,serviceaccount,serviceaccount-token,root-ca-cert-publisher,garbagecollector,podgc,nodelifecycle \
    --service-account-private-key-file="$dir/sa.key" --root-ca-file="$dir/ca.crt"
  start_control "$dir" kube-scheduler --kubeconfig="$dir/kubeconfig" --leader-elect=false --secure-port=0
  start_kubelet "$dir"
  wait_node_ready "$dir"
  trap - EXIT

  cat >>"$dir/env" <<EOF
KUBECONFIG=$dir/kubeconfig
NODE_NAME=$NODE_NAME
APP_IMAGE=$APP_IMAGE
PAUSE_IMAGE=$PAUSE_IMAGE
KUBELET_VERSION=$("$KUBE_BIN/kubelet" --version | sed 's/^Kubernetes //')
EOF
  log "ready: node $NODE_NAME at $KUBE_URL (see $dir/env)"
}

stop_node() {
  local dir
  dir="$(resolve_dir "${1-}")"
  trap - EXIT
  set +e
  # The kubelet first, so it restarts nothing; then every container; then the rest.
  stop_process "$dir/kubelet.pid" kubelet
  remove_containers "$dir"
  stop_process "$dir/kube-scheduler.pid" kube-scheduler
  stop_process "$dir/kube-controller-manager.pid" kube-controller-manager
  stop_process "$dir/containerd.pid" containerd
  stop "$dir"
  # What the kubelet and containerd mounted under DIR (volumes, rootfs), deepest first.
  awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  restore_host "$dir"
  [[ "$(cat "$LOCK_FILE" 2>/dev/null)" == "$dir" ]] && rm -f "$LOCK_FILE"
  set -e
  return 0
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  case "${1-}" in
    check) check ;;
    build) node_build ;;
    start) start_node "${2-}" ;;
    stop) stop_node "${2-}" ;;
    portable-images) portable_images "$(resolve_dir "${2-}")" ;;
    *)
      sed -n 's/^#   node.sh /node.sh /p' "$0" >&2
      exit 2
      ;;
  esac
fi
