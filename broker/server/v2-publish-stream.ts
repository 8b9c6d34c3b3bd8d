import { status, type ServerDuplexStream } from "@grpc/grpc-js";
import type { TopicRegistry } from "../core/index.js";
import type { PublishStreamRequest, PublishStreamResponse } from "../../proto/gen/ratatoskr/v2/broker.js";
import { bidiStream } from "./handlers.js";
import type { Logger } from "./logger.js";
import { statusError, toStatus } from "./status.js";
import { publishResponseToWire } from "./v2-wire.js";

/** Requests of one stream being stored at once; past this the stream stops reading until some are answered. */
export const PUBLISH_STREAM_WINDOW = 256;

/**
 * PublishStream: every request goes through the same `broker.publish` as the unary Publish,
 * in arrival order, and is answered with its request_id once stored. A failed request is
 * answered with its status; the stream goes on. Reading pauses while PUBLISH_STREAM_WINDOW
 * requests are pending or the transport refuses more responses, so a fast client is held
 * back by HTTP/2 flow control instead of piling up work in the broker.
 * `open` tracks live streams so shutdown can end them with UNAVAILABLE.
 */
export function publishStreamHandler(broker: TopicRegistry, log: Logger, open: Set<() => void>) {
  return bidiStream<PublishStreamRequest, PublishStreamResponse>(log, (call: ServerDuplexStream<PublishStreamRequest, PublishStreamResponse>) => {
    let pending = 0;
    let blocked = false; // the last write returned false; waiting for "drain"
    let clientDone = false; // the client half-closed
    let finished = false;

    const done = (): void => {
      finished = true;
      open.delete(shutdown);
    };
    function shutdown(): void {
      if (finished) return;
      done();
      if (!call.cancelled && !call.writableEnded) call.emit("error", statusError(status.UNAVAILABLE, "the broker is shutting down"));
    }
    open.add(shutdown);

    const flowControl = (): void => {
      if (finished) return;
      if (pending >= PUBLISH_STREAM_WINDOW || blocked) call.pause();
      else call.resume();
    };
    const answer = (response: PublishStreamResponse): void => {
      pending--;
      if (finished || call.cancelled) return;
      if (!call.write(response) && !blocked) {
        blocked = true;
        call.once("drain", () => {
          blocked = false;
          flowControl();
        });
      }
      if (clientDone && pending === 0) {
        done();
        call.end();
        return;
      }
      flowControl();
    };

    call.on("data", (request: PublishStreamRequest) => {
      if (finished) return;
      const requestId = request.requestId;
      pending++;
      flowControl();
      let stored: ReturnType<TopicRegistry["publish"]>;
      try {
        stored = broker.publish(request.topic, request.messages);
      } catch (err) {
        stored = Promise.reject(err);
      }
      stored.then(
        (outcomes) => answer({ requestId, ...publishResponseToWire(outcomes, broker.clock.nowMs()), errorCode: 0, errorMessage: "" }),
        (err: unknown) => {
          const s = toStatus(err, log);
          answer({ requestId, results: [], publishTimeMs: 0, errorCode: s.code, errorMessage: s.details });
        },
      );
    });
    // Half-close: answer what is pending, then end with OK.
    call.on("end", () => {
      clientDone = true;
      if (pending === 0 && !finished) {
        done();
        if (!call.cancelled && !call.writableEnded) call.end();
      }
    });
    call.on("cancelled", done);
    call.on("error", done);
    call.on("close", done);
  });
}
