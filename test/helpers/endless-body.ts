// A sidecar's worst answer: a 500 whose chunked body never ends, written as fast as the reader takes it.

/** Writes the answer on `socket` until it is closed; returns a check of whether it has been. */
export function sendEndless500(socket: import("node:net").Socket): () => boolean {
  let closed = false;
  socket.on("close", () => (closed = true));
  socket.write("HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\n\r\n");
  const chunk = `${(64 * 1024).toString(16)}\r\n${"x".repeat(64 * 1024)}\r\n`;
  const pump = () => {
    while (!socket.destroyed && socket.write(chunk));
    if (!socket.destroyed) socket.once("drain", pump);
  };
  pump();
  return () => closed;
}
