// The fleet floor: the least a wrapper asks of the API server for a whole lifecycle. One TLS connection; one list of
// the Pod, one watch from the list's resourceVersion that stays open throughout: spawn the program once every other
// container is ready, POST the shutdown URL when it exits, exit with its status once the others have terminated.
// No retries, no resume, no logging. Usage: node fleet-lifecycle.js SHUTDOWN_URL -- PROGRAM ARGS...
const { readFileSync } = require("node:fs");
const { Agent, request } = require("node:https");
const { request: httpRequest } = require("node:http");
const { spawn } = require("node:child_process");
const {
  KUBERNETES_SERVICE_HOST: host,
  KUBERNETES_SERVICE_PORT: port,
  PROA_SERVICE_ACCOUNT_DIR: dir,
  POD_NAMESPACE: ns,
  POD_NAME: name,
  PROA_CONTAINER: own,
} = process.env;
const [shutdownUrl, , program, ...args] = process.argv.slice(2);
const headers = { Authorization: `Bearer ${readFileSync(`${dir}/token`, "utf8").trim()}` };
const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: readFileSync(`${dir}/ca.crt`) });
const path = `/api/v1/namespaces/${ns}/pods?fieldSelector=metadata.name%3D${name}`;
let status; // the program's exit code, once it has exited

const others = (pod) =>
  (pod.spec?.containers ?? [])
    .filter((c) => c.name !== own)
    .map((c) => (pod.status?.containerStatuses ?? []).find((s) => s.name === c.name));
let started = false;
function look(pod) {
  if (!started && others(pod).every((s) => s?.ready)) {
    started = true;
    spawn(program, args, { stdio: "inherit" }).on("exit", (code) => {
      status = code ?? 1;
      httpRequest(shutdownUrl, { method: "POST", headers: { "content-length": "0" } }, (res) => res.resume()).end();
    });
  }
  if (status !== undefined && others(pod).every((s) => s?.state?.terminated)) process.exit(status);
}

request({ host, port, path, headers, agent }, (res) => {
  let body = "";
  res
    .setEncoding("utf8")
    .on("data", (chunk) => (body += chunk))
    .on("end", () => {
      const list = JSON.parse(body);
      for (const pod of list.items) look(pod);
      watch(list.metadata.resourceVersion);
    });
}).end();

function watch(resourceVersion) {
  request({ host, port, path: `${path}&watch=1&resourceVersion=${resourceVersion}`, headers, agent }, (res) => {
    let rest = "";
    res.setEncoding("utf8").on("data", (chunk) => {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop();
      for (const line of lines) look(JSON.parse(line).object);
    });
  }).end();
}
