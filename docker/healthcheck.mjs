// Container health check without a shell or extra packages: one grpc.health.v1.Health/Check
// call over node:http2 to the broker in this container. Exit 0 when it answers SERVING.
import { connect } from "node:http2";

const host = process.env.RATATOSKR_HOST ?? "127.0.0.1";
const port = process.env.RATATOSKR_PORT ?? "50051";
const target = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
const fail = (why) => {
  console.error(`unhealthy: ${why}`);
  process.exit(1);
};
setTimeout(() => fail("no answer within 2 s"), 2_000).unref();

const session = connect(`http://${target}:${port}`);
session.on("error", (err) => fail(err.message));
const req = session.request({
  ":method": "POST",
  ":path": "/grpc.health.v1.Health/Check",
  "content-type": "application/grpc",
  te: "trailers",
});
const chunks = [];
req.on("data", (c) => chunks.push(c));
req.on("trailers", (trailers) => {
  const body = Buffer.concat(chunks);
  // HealthCheckResponse { status = 1 (SERVING) } is the frame 00 00000002 08 01.
  const serving = trailers["grpc-status"] === "0" && body.length >= 7 && body[5] === 0x08 && body[6] === 0x01;
  session.close();
  if (serving) process.exit(0);
  fail(`grpc-status ${trailers["grpc-status"]}, body ${body.toString("hex")}`);
});
req.on("error", (err) => fail(err.message));
// An empty HealthCheckRequest (service "" = the whole server): a 5-byte frame with no body.
req.end(Buffer.from([0, 0, 0, 0, 0]));
