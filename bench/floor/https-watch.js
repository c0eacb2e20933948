// The watch floor: one watch request of the Pod over TLS, split on newlines, JSON.parse each event, and spawn the
// program once every other container is ready. No list, no resume, no retries, no logging.
const { readFileSync } = require("node:fs");
const { request } = require("node:https");
const { spawn } = require("node:child_process");
const {
  KUBERNETES_SERVICE_HOST: host,
  KUBERNETES_SERVICE_PORT: port,
  PROA_SERVICE_ACCOUNT_DIR: dir,
  POD_NAMESPACE: ns,
  POD_NAME: name,
  PROA_CONTAINER: own,
} = process.env;
const headers = { Authorization: `Bearer ${readFileSync(`${dir}/token`, "utf8").trim()}` };
const path = `/api/v1/namespaces/${ns}/pods?fieldSelector=metadata.name%3D${name}&watch=1`;
const req = request({ host, port, path, headers, ca: readFileSync(`${dir}/ca.crt`) }, (res) => {
  let rest = "";
  res.setEncoding("utf8").on("data", (chunk) => {
    if (!chunk.includes("\n")) return void (rest += chunk);
    const lines = (rest + chunk).split("\n");
    rest = lines.pop();
    for (const line of lines) {
      const pod = JSON.parse(line).object;
      const statuses = pod.status?.containerStatuses ?? [];
      const others = (pod.spec?.containers ?? []).filter((c) => c.name !== own);
      if (!others.every((c) => statuses.find((s) => s.name === c.name)?.ready)) continue;
      req.destroy();
      spawn(process.argv[2], process.argv.slice(3), { stdio: "inherit" }).on("exit", (code) => process.exit(code ?? 1));
      return;
    }
  });
});
req.on("error", () => {}).end();
