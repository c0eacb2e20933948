// The HTTPS floor: the one request a watcher cannot avoid (a list of the Pod over TLS, with the CA and the token),
// then spawn the program. No error handling, no retries, no options: the least a Pod-watching entrypoint does.
const { readFileSync } = require("node:fs");
const { request } = require("node:https");
const { spawn } = require("node:child_process");
const {
  KUBERNETES_SERVICE_HOST: host,
  KUBERNETES_SERVICE_PORT: port,
  PROA_SERVICE_ACCOUNT_DIR: dir,
  POD_NAMESPACE: ns,
  POD_NAME: name,
} = process.env;
const headers = { Authorization: `Bearer ${readFileSync(`${dir}/token`, "utf8").trim()}` };
const path = `/api/v1/namespaces/${ns}/pods?fieldSelector=metadata.name%3D${name}`;
request({ host, port, path, headers, ca: readFileSync(`${dir}/ca.crt`) }, (res) => {
  const parts = [];
  res
    .on("data", (chunk) => parts.push(chunk))
    .on("end", () => {
      JSON.parse(Buffer.concat(parts).toString());
      spawn(process.argv[2], process.argv.slice(3), { stdio: "inherit" }).on("exit", (code) => process.exit(code ?? 1));
    });
}).end();
