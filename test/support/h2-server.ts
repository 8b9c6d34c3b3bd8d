// A loopback HTTP/2 server (node:http2, so nghttp2 on the other side) for the generator's own
// HTTP/2 clients (loadgen/drivers/h2-consume.ts and h2-unary.ts): it hands each stream to the
// test, in order, and counts connections.
import { createServer, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream, type Settings } from "node:http2";
import type { AddressInfo } from "node:net";

/** A gRPC message on the wire: flag byte, 4-byte big-endian length, body. */
export function grpcFramed(body: Buffer, compressed = false): Buffer {
  const head = Buffer.alloc(5);
  head[0] = compressed ? 1 : 0;
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

export interface ServedStream {
  stream: ServerHttp2Stream;
  headers: IncomingHttpHeaders;
  /** The request bytes received so far. */
  received: Buffer[];
}

export interface H2TestServer {
  server: Http2Server;
  target: string;
  /** The next stream the server accepted (waits for it). */
  next(): Promise<ServedStream>;
  connections(): number;
  close(): Promise<void>;
}

export async function startH2Server(settings?: Settings): Promise<H2TestServer> {
  const waiting: ((s: ServedStream) => void)[] = [];
  const ready: ServedStream[] = [];
  let connections = 0;
  const server = createServer(settings ? { settings } : {});
  const sessions = new Set<ServerHttp2Session>();
  server.on("session", (session) => {
    connections++;
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  server.on("stream", (stream, headers) => {
    const served: ServedStream = { stream, headers, received: [] };
    stream.on("data", (d: Buffer) => served.received.push(d));
    stream.on("error", () => {});
    const w = waiting.shift();
    if (w) w(served);
    else ready.push(served);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    target: `127.0.0.1:${port}`,
    next: () => {
      const r = ready.shift();
      return r ? Promise.resolve(r) : new Promise((resolve) => waiting.push(resolve));
    },
    connections: () => connections,
    // A session a test left open (a stream never answered) would keep close() waiting.
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
      }),
  };
}
