// The shutdown floor: spawn the program and, when it exits, POST to every URL at once with node:http, then exit
// with its status. `node shutdown.js URL... -- program args...`
const { request } = require("node:http");
const { spawn } = require("node:child_process");
const split = process.argv.indexOf("--");
const urls = process.argv.slice(2, split);
spawn(process.argv[split + 1], process.argv.slice(split + 2), { stdio: "inherit" }).on("exit", async (code) => {
  await Promise.all(
    urls.map(
      (url) =>
        new Promise((done) =>
          request(url, { method: "POST" }, (res) => res.resume().on("end", done))
            .on("error", done)
            .end(),
        ),
    ),
  );
  process.exit(code ?? 1);
});
