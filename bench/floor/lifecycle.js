// The lifecycle floor: the least any wrapper must do for `-p URL -- program`. List the Pod over TLS (with the CA and
// the token), spawn the program, POST to every URL with node:http when it exits, list the Pod again (to see the
// sidecars gone), exit with the program's status. No error handling, no retries, no options.
// `node lifecycle.js URL... -- program args...`
const { readFileSync } = require("node:fs");
const http = require("node:http");
const https = require("node:https");
const { spawn } = require("node:child_process");
const {
  KUBERNETES_SERVICE_HOST: host,
  KUBERNETES_SERVICE_PORT: port,
  PROA_SERVICE_ACCOUNT_DIR: dir,
  POD_NAMESPACE: ns,
  POD_NAME: name,
} = process.env;
const split = process.argv.indexOf("--");
const urls = process.argv.slice(2, split);
const list = () =>
  new Promise((done) => {
    const headers = { Authorization: `Bearer ${readFileSync(`${dir}/token`, "utf8").trim()}` };
    const path = `/api/v1/namespaces/${ns}/pods?fieldSelector=metadata.name%3D${name}`;
    https
      .request({ host, port, path, headers, ca: readFileSync(`${dir}/ca.crt`) }, (res) => {
        const parts = [];
        res.on("data", (chunk) => parts.push(chunk)).on("end", () => done(JSON.parse(Buffer.concat(parts).toString())));
      })
      .end();
  });
list().then(() => {
  spawn(process.argv[split + 1], process.argv.slice(split + 2), { stdio: "inherit" }).on("exit", async (code) => {
    await Promise.all(
      urls.map(
        (url) =>
          new Promise((done) =>
            http
              .request(url, { method: "POST" }, (res) => res.resume().on("end", done))
              .on("error", done)
              .end(),
          ),
      ),
    );
    await list();
    process.exit(code ?? 1);
  });
});
