// A v2 Consume stream that reads (almost) nothing, for the outbound-memory tests. A grpc-js
// stream left unread is still drained by Node's HTTP/2 session, so this one is made by hand on
// node:http2: the stream is paused from the start and the client's flow-control windows are
// small, so the server really sees a consumer that does not read.
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from "node:http2";
import { ConsumeRequest } from "../../proto/gen/ratatoskr/v2/broker.js";
import { frame } from "./raw-grpc.js";

export interface UnreadConsumer {
  readonly stream: ClientHttp2Stream;
  /** grpc-status and grpc-message, or the reset code, once the stream ended. */
  readonly ended: Promise<{ grpcStatus: number | undefined; grpcMessage: string; rstCode: number | undefined }>;
}

/** One HTTP/2 connection with small windows (`windowBytes` per stream and for the connection). */
export function unreadSession(address: string, windowBytes = 16 * 1024): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://${address}`, { settings: { initialWindowSize: windowBytes } });
    session.once("connect", () => resolve(session));
    session.once("error", reject);
  });
}

/** Opens Consume on `subscription` and never reads it. */
export function unreadConsumer(session: ClientHttp2Session, subscription: string): UnreadConsumer {
  const stream = session.request({
    ":method": "POST",
    ":path": "/ratatoskr.v2.Broker/Consume",
    "content-type": "application/grpc",
    te: "trailers",
  });
  stream.pause();
  const start = ConsumeRequest.encode(
    ConsumeRequest.fromPartial({ start: { subscription, maxOutstandingMessages: 0, maxOutstandingBytes: 0n, consumerName: "unread" } }),
  ).finish();
  stream.write(frame(Buffer.from(start)));
  let grpcStatus: number | undefined;
  let grpcMessage = "";
  const take = (h: IncomingHttpHeaders): void => {
    const code = h["grpc-status"];
    const message = h["grpc-message"];
    if (typeof code === "string") grpcStatus = Number(code);
    if (typeof message === "string") grpcMessage = decodeURIComponent(message);
  };
  stream.on("response", take);
  stream.on("trailers", take);
  stream.on("error", () => undefined);
  const ended = new Promise<{ grpcStatus: number | undefined; grpcMessage: string; rstCode: number | undefined }>((resolve) =>
    stream.on("close", () => resolve({ grpcStatus, grpcMessage, rstCode: stream.rstCode === constants.NGHTTP2_NO_ERROR ? undefined : stream.rstCode })),
  );
  return { stream, ended };
}
