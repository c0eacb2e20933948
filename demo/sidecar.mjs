// The demo's sidecar: a tiny HTTP service that, like a database proxy, needs a moment before it is ready.
// GET /ready answers 503 until READY_AFTER_MS have passed, then 200 (the demo's stand-in kubelet probes it);
// GET /work is what the wrapped program uses; POST /shutdown makes it exit, as Envoy's /quitquitquit does.
import { createServer } from "node:http";

const readyAt = Date.now() + Number(process.env.READY_AFTER_MS ?? 2000);
const server = createServer((request, response) => {
  if (request.url === "/ready") {
    response.statusCode = Date.now() >= readyAt ? 200 : 503;
    response.end();
  } else if (request.url === "/work") {
    response.end("42 rows copied by the sidecar\n");
  } else if (request.url === "/shutdown" && request.method === "POST") {
    response.end("shutting down\n", () => process.exit(0));
  } else {
    response.statusCode = 404;
    response.end();
  }
});
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});
