// What caps unary calls: a bare grpc-js unary server and client as the yardstick for the v1
// Publish path. The same client (N calls in flight on one channel, 128-byte payloads, for a fixed
// number of calls) against:
//   bare            a grpc-js server in a child process whose one unary method answers 8 bytes
//                   without decoding anything (the ceiling of grpc-js itself here)
//   v1 <host:port>  ratatoskr.MessageBroker/Publish on a running broker (topic created first), e.g.
//                   node dist/cli/main.js broker --host 127.0.0.1 --port 0   (stop it by its PID)
// Run them one right after the other (or alternating) and compare calls/s in the same session:
//   npx tsx scripts/grpc-unary-yardstick.ts bare [calls=50000] [inFlight=64]
//   npx tsx scripts/grpc-unary-yardstick.ts v1 127.0.0.1:PORT [calls=50000] [inFlight=64]
// CLIENT=h2 makes the calls over node:http2 directly (a HEADERS frame, one length-prefixed
// message, half-close, read the answer and the trailers) instead of a grpc-js client: what a
// unary call costs without grpc-js's client layers (the v1 driver's client before
// loadgen/drivers/h2-unary.ts). CLIENT=own makes them with the generator's own HTTP/2 unary client
// (loadgen/drivers/h2-unary.ts, the v1 driver's client now): the cheapest client here, so the
// server is the limit.
import { spawn } from "node:child_process";
import { connect, constants, type IncomingHttpHeaders } from "node:http2";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { H2UnaryClient } from "../loadgen/index.js";
import { CreateTopicRequest, PublishRequest } from "../proto/gen/ratatoskr.js";

const passThrough = (b: Buffer): Buffer => b;

if (process.argv[2] === "serve") {
  const server = new grpc.Server();
  const answer = Buffer.alloc(8, 1);
  server.addService(
    { call: { path: "/yardstick.Bare/Call", requestStream: false, responseStream: false, requestSerialize: passThrough, requestDeserialize: passThrough, responseSerialize: passThrough, responseDeserialize: passThrough } },
    { call: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, answer) },
  );
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.stdout.write(`${port}\n`);
  });
} else {
  const mode = process.argv[2];
  if (mode !== "bare" && mode !== "v1") throw new Error("usage: grpc-unary-yardstick.ts bare|v1 <host:port> [calls] [inFlight]");
  const args = process.argv.slice(mode === "v1" ? 4 : 3);
  const calls = Number(args[0] ?? 50_000);
  const inFlight = Number(args[1] ?? 64);
  let address = process.argv[3] ?? "";
  let child: ReturnType<typeof spawn> | undefined;
  if (mode === "bare") {
    child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "serve"], { stdio: ["ignore", "pipe", "inherit"] });
    address = await new Promise<string>((resolve, reject) => {
      child!.stdout!.once("data", (d: Buffer) => resolve(`127.0.0.1:${d.toString().trim()}`));
      child!.once("exit", (code) => reject(new Error(`server exited ${code}`)));
    });
  }
  const useH2 = process.env.CLIENT === "h2";
  const own = process.env.CLIENT === "own" ? new H2UnaryClient({ target: address, maxMessageBytes: 64 << 20 }, 1) : undefined;
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const session = useH2 ? connect(`http://${address}`) : undefined;
  const grpcUnary = (path: string, body: Buffer) =>
    new Promise<void>((resolve, reject) => client.makeUnaryRequest(path, passThrough, passThrough, body, (err) => (err ? reject(err) : resolve())));
  const h2Unary = (path: string, body: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const stream = session!.request({
        [constants.HTTP2_HEADER_METHOD]: "POST",
        [constants.HTTP2_HEADER_PATH]: path,
        [constants.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc",
        [constants.HTTP2_HEADER_TE]: "trailers",
      });
      let code: string | undefined;
      stream.on("response", (h) => (code ??= h["grpc-status"] as string | undefined));
      stream.on("trailers", (h: IncomingHttpHeaders) => (code = h["grpc-status"] as string | undefined));
      stream.on("data", () => {});
      stream.on("error", reject);
      stream.on("close", () => (code === "0" ? resolve() : reject(new Error(`grpc-status ${code} on ${path}`))));
      const framed = Buffer.allocUnsafe(5 + body.length);
      framed[0] = 0;
      framed.writeUInt32BE(body.length, 1);
      body.copy(framed, 5);
      stream.end(framed);
    });
  const ownUnary = (path: string, body: Buffer) => own!.unary(0, path, body).then(() => undefined);
  const unary = own ? ownUnary : useH2 ? h2Unary : grpcUnary;
  const topic = `yardstick-${process.pid}-${Date.now()}`;
  let path = "/yardstick.Bare/Call";
  const payload = Buffer.alloc(128, 7);
  let body = payload;
  if (mode === "v1") {
    await unary("/ratatoskr.MessageBroker/CreateTopic", Buffer.from(CreateTopicRequest.encode({ name: topic }).finish()));
    path = "/ratatoskr.MessageBroker/Publish";
    body = Buffer.from(PublishRequest.encode({ topic, payload, metadata: {} }).finish());
  }
  for (let i = 0; i < 500; i++) await unary(path, body); // warm up
  const latencies = new Float64Array(calls);
  let issued = 0;
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const worker = async () => {
    while (issued < calls) {
      const i = issued++;
      const t = process.hrtime.bigint();
      await unary(path, body);
      latencies[i] = Number(process.hrtime.bigint() - t) / 1000;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  const sorted = [...latencies].sort((a, b) => a - b);
  const pct = (p: number) => (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! / 1000).toFixed(2);
  console.log(
    `${mode}${useH2 ? " (node:http2 client)" : own ? " (own HTTP/2 client)" : ""}: ${calls} calls, ${inFlight} in flight: ${Math.round(calls / seconds)} calls/s, p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms; ` +
      `client CPU ${(((used.user + used.system) / 1e6 / seconds) * 100).toFixed(0)}% of a core`,
  );
  client.close();
  session?.close();
  own?.close();
  if (child?.pid !== undefined) process.kill(child.pid, "SIGTERM");
}
