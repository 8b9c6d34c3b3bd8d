// Container health check without a shell or extra packages: one grpc.health.v1.Health/Check
// call over node:http2 to the broker in this container. Exit 0 when it answers SERVING.
// Health needs no token. With TLS set by RATATOSKR_TLS_CERT (docs/security.md, "The image"), it
// speaks TLS to its own container without checking the certificate: it asks whether the broker
// answers, not who it is. Under mTLS (RATATOSKR_TLS_CLIENT_CA) it presents
// RATATOSKR_HEALTHCHECK_CERT/_KEY, else the server's own pair (accepted when the client CA
// issued it for client use too).
import { readFileSync } from "node:fs";
import { connect } from "node:http2";

const host = process.env.RATATOSKR_HOST ?? "127.0.0.1";
const port = process.env.RATATOSKR_PORT ?? "50051";
const target = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
const fail = (why) => {
  console.error(`unhealthy: ${why}`);
  process.exit(1);
};
setTimeout(() => fail("no answer within 2 s"), 2_000).unref();

const env = (name) => (process.env[name] ? process.env[name] : undefined);
const tlsCert = env("RATATOSKR_TLS_CERT");
let session;
if (tlsCert === undefined) {
  session = connect(`http://${target}:${port}`);
} else {
  const tls = { rejectUnauthorized: false, servername: "" };
  if (env("RATATOSKR_TLS_CLIENT_CA") !== undefined) {
    try {
      tls.cert = readFileSync(env("RATATOSKR_HEALTHCHECK_CERT") ?? tlsCert);
      tls.key = readFileSync(env("RATATOSKR_HEALTHCHECK_KEY") ?? env("RATATOSKR_TLS_KEY") ?? "");
    } catch (err) {
      fail(`cannot read the health check's client certificate: ${err.message}`);
    }
  }
  session = connect(`https://${target}:${port}`, tls);
}
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
