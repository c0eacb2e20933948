#!/usr/bin/env bash
# Records real Kubernetes 1.20.2 API responses into test/fixtures/, so unit
# tests parse exactly what a server sends. Starts its own etcd + kube-apiserver
# (test/e2e/kube-apiserver.sh; the first run builds it, ~4 min, as root).
#
# There is no kubelet: this script writes the Pod statuses a kubelet would
# write through the pods/status subresource.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="$(cd "$here/../.." && pwd)/test/fixtures"
server="$here/kube-apiserver.sh"
NS=proa-e2e
SA=proa                # may get, list and watch pods in $NS
SA_UNBOUND=proa-nobody # has no RoleBinding
# Not "curl...": the server pretty-prints JSON for curl's user agent; a real
# client (proa on Node) gets compact JSON.
UA=proa-fixture-capture

tmp="$(mktemp -d)"
trap '"$server" stop "$tmp/server"; rm -rf "$tmp"' EXIT
"$server" start "$tmp/server"
# shellcheck disable=SC1091
source "$tmp/server/env"
mkdir -p "$out"

# api METHOD PATH [CURL_ARGS...]: as admin; the body on stdout; fails unless
# 2xx. PATCH sends a JSON merge patch.
api() {
  local method="$1" path="$2" type=application/json
  shift 2
  [[ $method == PATCH ]] && type=application/merge-patch+json
  curl -sS --fail-with-body -A "$UA" --cacert "$KUBE_CA" -H "Authorization: Bearer $KUBE_ADMIN_TOKEN" \
    -H "Content-Type: $type" -X "$method" "$KUBE_URL$path" "$@"
}
create() { api POST "$1" --data-binary "$2" >/dev/null; }

# ------------------------------------------------------------- recording ----

# capture FILE WHO TOKEN PATH EXPECTED_STATUS: GET PATH with TOKEN over
# HTTP/1.1 (as Node's https does) and keep the body: pretty-printed for
# *.json, byte for byte otherwise. Status line and headers go to the README.
capture() {
  local file="$1" who="$2" token="$3" path="$4" expected="$5" status headers
  curl -sS --http1.1 -A "$UA" --cacert "$KUBE_CA" -H "Authorization: Bearer $token" \
    -D "$tmp/$file.headers" -o "$tmp/$file" "$KUBE_URL$path"
  status="$(head -n 1 "$tmp/$file.headers" | tr -d '\r')"
  if [[ $status != "HTTP/1.1 $expected"* ]]; then
    cat "$tmp/$file" >&2
    echo "$file: got $status, expected $expected" >&2
    exit 1
  fi
  headers="$(grep -iE '^(content-type|transfer-encoding):' "$tmp/$file.headers" | tr -d '\r' | paste -sd ';' | sed 's/;/; /g')"
  case "$file" in
    *.json) jq . "$tmp/$file" >"$out/$file" ;;
    *) cp "$tmp/$file" "$out/$file" ;;
  esac
  echo "| \`$file\` | $who: \`GET $path\` | \`$status\` | $headers |" >>"$tmp/readme-rows"
}

# ------------------------------------------------------ kubelet stand-in ----

# jq helpers that build a Pod status the way the 1.20 kubelet reports it.
# Inputs: $ids (container name -> 64 hex digits), $t0 (containers' start),
# $now. Conditions are derived from the container statuses, as the kubelet does.
# shellcheck disable=SC2016 # jq variables, not shell ones
JQ_STATUS='
def img: "docker.io/library/busybox:1.36";
def imgid: "docker.io/library/busybox@sha256:" + $ids.image;
def cid($n): "containerd://" + $ids[$n];
def waiting($n; $reason): {name: $n, state: {waiting: {reason: $reason}}, lastState: {},
  ready: false, restartCount: 0, image: "busybox:1.36", imageID: "", started: false};
def running($n; $ready): {name: $n, state: {running: {startedAt: $t0}}, lastState: {},
  ready: $ready, restartCount: 0, image: img, imageID: imgid, containerID: cid($n), started: true};
def terminated($n; $code): {name: $n, state: {terminated: {exitCode: $code,
  reason: (if $code == 0 then "Completed" else "Error" end), startedAt: $t0, finishedAt: $now,
  containerID: cid($n)}}, lastState: {}, ready: false, restartCount: 0, image: img, imageID: imgid,
  containerID: cid($n), started: false};
def cond($type; $names; $reason; $what): {type: $type, lastProbeTime: null, lastTransitionTime: $now}
  + if $names == [] then {status: "True"}
    else {status: "False", reason: $reason, message: "containers with \($what) status: [\($names | join(" "))]"} end;
def podstatus($phase; $init; $containers):
  [$init[] | select(.state.terminated.exitCode != 0) | .name] as $uninit
  | [$containers[] | select(.ready | not) | .name] as $unready
  | {phase: $phase,
     conditions: [cond("Initialized"; $uninit; "ContainersNotInitialized"; "incomplete"),
       (if $phase == "Succeeded" then {type: "Ready", status: "False", lastProbeTime: null,
          lastTransitionTime: $now, reason: "PodCompleted"}
        else cond("Ready"; $unready; "ContainersNotReady"; "unready") end),
       (if $phase == "Succeeded" then {type: "ContainersReady", status: "False", lastProbeTime: null,
          lastTransitionTime: $now, reason: "PodCompleted"}
        else cond("ContainersReady"; $unready; "ContainersNotReady"; "unready") end),
       {type: "PodScheduled", status: "True", lastProbeTime: null, lastTransitionTime: $t0}],
     hostIP: "192.0.2.10"}
    + (if [($init + $containers)[].state | select(has("waiting") | not)] != []
       then {podIP: "192.0.2.77", podIPs: [{ip: "192.0.2.77"}]} else {} end)
    + {startTime: $t0}
    + (if $init != [] then {initContainerStatuses: $init} else {} end)
    + {containerStatuses: $containers, qosClass: "BestEffort"};
'

# set_status POD 'podstatus(PHASE; [INIT...]; [CONTAINERS...])': replace the
# Pod's status through pods/status, as the kubelet does.
set_status() {
  local pod="$1" filter="$2" uid ids n
  api GET "/api/v1/namespaces/$NS/pods/$pod" >"$tmp/pod"
  uid="$(jq -r .metadata.uid "$tmp/pod")"
  ids="{}" # stable fake container and image ids, derived from the Pod's uid
  for n in image init main sidecar-1 sidecar-2 sidecar-1-previous; do
    ids="$(jq -c --arg n "$n" --arg h "$(echo "$uid/$n" | sha256sum | cut -c1-64)" '.[$n] = $h' <<<"$ids")"
  done
  jq -c --argjson ids "$ids" --arg now "$(date -u +%FT%TZ)" --arg t0 "$(jq -r .metadata.creationTimestamp "$tmp/pod")" \
    "$JQ_STATUS .status = ($filter)" "$tmp/pod" |
    api PUT "/api/v1/namespaces/$NS/pods/$pod/status" --data-binary @- >/dev/null
  sleep 0.3 # lets the watch stream show one event per step, in order
}

# new_pod NAME RESTART_POLICY [INIT_CONTAINER_JSON]: main + two sidecars with
# readiness probes; already scheduled (nodeName set), as the kubelet sees it.
new_pod() {
  create "/api/v1/namespaces/$NS/pods" "$(jq -nc --arg name "$1" --arg policy "$2" --argjson init "${3:-[]}" '
    def sidecar($n): {name: $n, image: "busybox:1.36", command: ["sh", "-c", "touch /tmp/ready; sleep 3600"],
      readinessProbe: {exec: {command: ["test", "-e", "/tmp/ready"]}, periodSeconds: 1}};
    {apiVersion: "v1", kind: "Pod", metadata: {name: $name, labels: {app: "proa-demo"}},
     spec: ({restartPolicy: $policy, nodeName: "node-1", serviceAccountName: "proa"}
       + (if $init != [] then {initContainers: $init} else {} end)
       + {containers: [
           {name: "main", image: "busybox:1.36", command: ["sh", "-c", "echo main program"],
            env: [{name: "POD_NAME", valueFrom: {fieldRef: {fieldPath: "metadata.name"}}},
                  {name: "POD_NAMESPACE", valueFrom: {fieldRef: {fieldPath: "metadata.namespace"}}}]},
           sidecar("sidecar-1"), sidecar("sidecar-2")]})}')"
}

# ---------------------------------------------------------------- objects ----

create /api/v1/namespaces "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$NS\"}}"
for sa in "$SA" "$SA_UNBOUND"; do
  create "/api/v1/namespaces/$NS/serviceaccounts" "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":\"$sa\"}}"
done
create "/apis/rbac.authorization.k8s.io/v1/namespaces/$NS/roles" '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role",
  "metadata":{"name":"pod-reader"},"rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get","list","watch"]}]}'
create "/apis/rbac.authorization.k8s.io/v1/namespaces/$NS/rolebindings" "{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",
  \"kind\":\"RoleBinding\",\"metadata\":{\"name\":\"proa-pod-reader\"},
  \"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"Role\",\"name\":\"pod-reader\"},
  \"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"$SA\",\"namespace\":\"$NS\"}]}"

# Real, signed ServiceAccount tokens from the TokenRequest API.
token_for() {
  api POST "/api/v1/namespaces/$NS/serviceaccounts/$1/token" --data-binary \
    '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}' |
    jq -r .status.token
}
TOKEN="$(token_for "$SA")"
TOKEN_UNBOUND="$(token_for "$SA_UNBOUND")"

pods="/api/v1/namespaces/$NS/pods"
by_name="$pods?fieldSelector=metadata.name%3D"

# ------------------------------------------------- the main scenario ----

POD=proa-demo
new_pod "$POD" Never
set_status "$POD" 'podstatus("Pending"; []; [waiting("main"; "ContainerCreating"),
  waiting("sidecar-1"; "ContainerCreating"), waiting("sidecar-2"; "ContainerCreating")])'
capture pod-waiting.json "SA $SA" "$TOKEN" "$pods/$POD" 200
capture pod-list.json "SA $SA" "$TOKEN" "$by_name$POD" 200
capture pod-list-empty.json "SA $SA" "$TOKEN" "${by_name}nosuchpod" 200

# Watch from the list's resourceVersion, as a client does, while the
# "kubelet" moves the Pod along. The server sends a BOOKMARK about 2 s before
# timeoutSeconds runs out (only once it has seen an event since it started).
rv="$(jq -r .metadata.resourceVersion "$out/pod-list.json")"
watch_path="$by_name$POD&watch=1&resourceVersion=$rv&allowWatchBookmarks=true&timeoutSeconds=10"
capture watch-events.jsonl "SA $SA" "$TOKEN" "$watch_path" 200 &
watch_pid=$!
sleep 1
set_status "$POD" 'podstatus("Running"; []; [running("main"; true), running("sidecar-1"; false), running("sidecar-2"; false)])'
capture pod-sidecars-not-ready.json "SA $SA" "$TOKEN" "$pods/$POD" 200
set_status "$POD" 'podstatus("Running"; []; [running("main"; true), running("sidecar-1"; true), running("sidecar-2"; false)])'
set_status "$POD" 'podstatus("Running"; []; [running("main"; true), running("sidecar-1"; true), running("sidecar-2"; true)])'
capture pod-all-ready.json "SA $SA" "$TOKEN" "$pods/$POD" 200
set_status "$POD" 'podstatus("Running"; []; [running("main"; true), terminated("sidecar-1"; 0), running("sidecar-2"; true)])'
set_status "$POD" 'podstatus("Running"; []; [running("main"; true), terminated("sidecar-1"; 0), terminated("sidecar-2"; 0)])'
capture pod-sidecars-terminated.json "SA $SA" "$TOKEN" "$pods/$POD" 200
set_status "$POD" 'podstatus("Succeeded"; []; [terminated("main"; 0), terminated("sidecar-1"; 0), terminated("sidecar-2"; 0)])'
capture pod-succeeded.json "SA $SA" "$TOKEN" "$pods/$POD" 200
wait "$watch_pid"
grep -q '"type":"BOOKMARK"' "$out/watch-events.jsonl" || { echo "no BOOKMARK event in watch-events.jsonl" >&2; exit 1; }

# After a restart, kube-apiserver's watch cache starts at the current
# resourceVersion, so resuming the watch from the list's resourceVersion is
# too old (on a server that never restarted, even resourceVersion=1 is not:
# its cache holds every event since it started).
"$server" restart-apiserver "$tmp/server"
capture watch-expired.jsonl "SA $SA" "$TOKEN" "$by_name$POD&watch=1&resourceVersion=$rv&allowWatchBookmarks=true&timeoutSeconds=10" 200
jq -e 'select(.type == "ERROR") | .object.code == 410' "$out/watch-expired.jsonl" >/dev/null ||
  { echo "watch-expired.jsonl has no ERROR event with code 410" >&2; exit 1; }
capture forbidden.json "SA $SA_UNBOUND (no RoleBinding)" "$TOKEN_UNBOUND" "$by_name$POD" 403
capture unauthorized.json "bad token" "not-a-valid-token" "$by_name$POD" 401
capture not-found.json "SA $SA" "$TOKEN" "$pods/nosuchpod" 404

# ----------------------------------------------------------- other pods ----

# A sidecar fails before it ever became ready.
new_pod proa-sidecar-fails Never
set_status proa-sidecar-fails 'podstatus("Running"; []; [running("main"; true), terminated("sidecar-1"; 1), running("sidecar-2"; false)])'
capture pod-sidecar-failed.json "SA $SA" "$TOKEN" "$pods/proa-sidecar-fails" 200

# restartPolicy OnFailure: the kubelet restarted the failed sidecar.
new_pod proa-onfailure OnFailure
# shellcheck disable=SC2016
set_status proa-onfailure 'podstatus("Running"; []; [running("main"; true),
  (running("sidecar-1"; false) | .restartCount = 1 | .state.running.startedAt = $now
   | .lastState = {terminated: {exitCode: 1, reason: "Error", startedAt: $t0, finishedAt: $now,
       containerID: cid("sidecar-1-previous")}}),
  running("sidecar-2"; true)])'
capture pod-onfailure-restarted.json "SA $SA" "$TOKEN" "$pods/proa-onfailure" 200

# A plain init container, still running, then done.
new_pod proa-init Never '[{"name":"init","image":"busybox:1.36","command":["sh","-c","echo init"]}]'
set_status proa-init 'podstatus("Pending"; [running("init"; false) | del(.started)]; [waiting("main"; "PodInitializing"),
  waiting("sidecar-1"; "PodInitializing"), waiting("sidecar-2"; "PodInitializing")])'
capture pod-init-running.json "SA $SA" "$TOKEN" "$pods/proa-init" 200
set_status proa-init 'podstatus("Running"; [terminated("init"; 0) | del(.started)]; [running("main"; true),
  running("sidecar-1"; false), running("sidecar-2"; false)])'
capture pod-init-done.json "SA $SA" "$TOKEN" "$pods/proa-init" 200

# Being deleted: a finalizer keeps the Pod (there is no kubelet to finish the
# deletion anyway), so deletionTimestamp and deletionGracePeriodSeconds show.
new_pod proa-deleting Never
api PATCH "$pods/proa-deleting" --data-binary '{"metadata":{"finalizers":["proa.test/hold"]}}' >/dev/null
set_status proa-deleting 'podstatus("Running"; []; [running("main"; true), running("sidecar-1"; true), running("sidecar-2"; true)])'
api DELETE "$pods/proa-deleting" >/dev/null
capture pod-deleting.json "SA $SA" "$TOKEN" "$pods/proa-deleting" 200

# ----------------------------------------------------------------- README ----

version="$(api GET /version | jq -r .gitVersion)"
{
  cat <<EOF
# API response fixtures

Real responses of a Kubernetes $version kube-apiserver (with etcd), captured
by \`test/e2e/capture-fixtures.sh\` on $(date -u +%F). Do not edit by hand; to
re-capture (the first run builds kube-apiserver, ~4 minutes, needs root for
apt-get):

    bash test/e2e/capture-fixtures.sh

- Requests are made over HTTP/1.1 with a ServiceAccount token from the
  TokenRequest API, like proa in a Pod. \`*.json\` bodies are pretty-printed
  with jq (the server sends compact JSON on one line); \`*.jsonl\` watch
  streams are kept byte for byte (one JSON event per line).
- There is no kubelet: the script writes each Pod's status through
  \`pods/status\` as a 1.20 kubelet would (conditions derived from the
  container statuses; IPs from 192.0.2.0/24, container ids made up).
  Containers are \`main\`, \`sidecar-1\`, \`sidecar-2\` (readiness probes),
  restartPolicy Never unless noted.
- \`watch-events.jsonl\` follows \`proa-demo\` from \`pod-list.json\`'s
  resourceVersion: sidecars running, sidecar-1 ready, sidecar-2 ready,
  sidecar-1 terminated (0), sidecar-2 terminated (0), main terminated
  (Succeeded), then BOOKMARK events shortly before timeoutSeconds ends.
- \`watch-expired.jsonl\`: the same watch, resumed from \`pod-list.json\`'s
  resourceVersion after kube-apiserver was restarted (its watch cache then
  starts at the current resourceVersion). A too old resourceVersion is not
  an HTTP 410 here: the watch answers 200, sends one ERROR event whose Status
  has code 410, reason Expired, and ends the stream.

| file | request | status | headers |
| --- | --- | --- | --- |
EOF
  sort "$tmp/readme-rows"
  cat <<'EOF'

Pod states (`pod-*.json`, each a GET of one Pod by the ServiceAccount):

| file | state |
| --- | --- |
| `pod-waiting.json` | Pending; all containers waiting (ContainerCreating), none ready |
| `pod-sidecars-not-ready.json` | Running; all running, main ready, sidecars not ready |
| `pod-all-ready.json` | Running; all running and ready, Pod Ready |
| `pod-sidecars-terminated.json` | Running; main running, both sidecars terminated with exit code 0 (after shutdown) |
| `pod-succeeded.json` | Succeeded; all terminated with exit code 0 |
| `pod-sidecar-failed.json` | Running; sidecar-1 terminated with exit code 1 (Error) before it was ever ready |
| `pod-onfailure-restarted.json` | restartPolicy OnFailure; sidecar-1 restarted once (restartCount 1, lastState terminated 1), not ready yet |
| `pod-init-running.json` | Pending; init container `init` running, the others waiting (PodInitializing) |
| `pod-init-done.json` | Running; `init` terminated (Completed), main ready, sidecars not ready |
| `pod-deleting.json` | Running and all ready, deleted: deletionTimestamp and deletionGracePeriodSeconds 30; a finalizer keeps it |
EOF
} >"$out/README.md"
echo "fixtures written to $out" >&2
