// A TCP server on loopback that answers nothing and counts what reaches it: the connections and the bytes. It stands
// in for a sidecar's shutdown endpoint where a test must show that proa connected but sent no request.
import { createServer, type Socket } from "node:net";

export interface TcpCounter {
  url: (path: string) => string; // http://127.0.0.1:PORT/path
  hostPort: string;
  connections: number;
  closed: number; // connections the peer has closed: their bytes are all counted
  bytes: number;
  /** Resolves once at least `count` connections came and were closed (the accept may lag the client's exit). */
  settled(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpCounter(): Promise<TcpCounter> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    counter.connections++;
    sockets.add(socket);
    socket.on("data", (chunk) => (counter.bytes += chunk.length));
    socket.on("error", () => {}); // a peer's reset is not the test's failure
    socket.on("close", () => {
      sockets.delete(socket);
      counter.closed++;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const counter: TcpCounter = {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    hostPort: `127.0.0.1:${port}`,
    connections: 0,
    closed: 0,
    bytes: 0,
    async settled(count, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (counter.connections < count || counter.closed < counter.connections) {
        if (Date.now() > deadline)
          throw new Error(
            `expected ${count} closed connections, saw ${counter.connections} (${counter.closed} closed)`,
          );
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return counter;
}
