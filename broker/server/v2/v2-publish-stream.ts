import { status, type ServerDuplexStream } from "@grpc/grpc-js";
import type { TopicRegistry } from "../../core/index.js";
import { OPEN_ACCESS, type Access } from "../access.js";
import { bidiStream } from "../handlers.js";
import type { Logger } from "../logger.js";
import { NO_METRICS, type BrokerObserver } from "../metrics.js";
import { statusError, toStatus } from "../status.js";
import { decodePublishRequest, type DecodedPublish } from "./request-codec.js";
import { encodePublishAnswer } from "./publish-response-codec.js";

/** Requests of one stream being stored at once; past this the stream stops reading until some are answered. */
export const PUBLISH_STREAM_WINDOW = 256;

/**
 * PublishStream: every request goes through the same `broker.publish` as the unary Publish,
 * in arrival order, and is answered with its request_id once stored. A failed request is
 * answered with its status; the stream goes on. Reading pauses while PUBLISH_STREAM_WINDOW
 * requests are pending or the transport refuses more responses, so a fast client is held
 * back by HTTP/2 flow control instead of piling up work in the broker.
 * Requests arrive as bytes (a pass-through deserializer) and are decoded here, and answers leave
 * as bytes encoded here (publish-response-codec.ts): a frame that is
 * not a PublishStreamRequest stops reading, and once every request before it is answered the
 * stream ends with INVALID_ARGUMENT. Nothing after that frame is stored.
 * `open` tracks live streams so shutdown can end them with UNAVAILABLE.
 */
export function publishStreamHandler(broker: TopicRegistry, log: Logger, open: Set<() => void>, access: Access = OPEN_ACCESS, observer: BrokerObserver = NO_METRICS) {
  return bidiStream<Buffer, Buffer>(log, (call: ServerDuplexStream<Buffer, Buffer>) => {
    let pending = 0;
    let blocked = false; // the last write returned false; waiting for "drain"
    let clientDone = false; // the client half-closed
    let finished = false;
    let malformed: string | undefined; // why a frame could not be decoded; reading has stopped

    /** Ends the stream once nothing is pending: INVALID_ARGUMENT after a malformed frame, else OK after a half-close. */
    const endIfSettled = (): void => {
      if (finished || pending > 0) return;
      if (malformed !== undefined) {
        done();
        if (!call.cancelled && !call.writableEnded) call.emit("error", statusError(status.INVALID_ARGUMENT, `malformed PublishStreamRequest: ${malformed}`));
      } else if (clientDone) {
        done();
        if (!call.cancelled && !call.writableEnded) call.end();
      }
    };

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
      if (finished || malformed !== undefined) return;
      if (pending >= PUBLISH_STREAM_WINDOW || blocked) call.pause();
      else call.resume();
    };
    const answer = (response: Buffer): void => {
      pending--;
      if (finished || call.cancelled) return;
      if (!call.write(response) && !blocked) {
        blocked = true;
        call.once("drain", () => {
          blocked = false;
          flowControl();
        });
      }
      endIfSettled();
      flowControl();
    };

    call.on("data", (frame: Buffer) => {
      if (finished || malformed !== undefined) return;
      let request: DecodedPublish;
      try {
        // Straight into the core's PublishInput (request-codec.ts): no generated request objects.
        request = decodePublishRequest(frame);
      } catch (err) {
        malformed = err instanceof Error ? err.message : String(err);
        call.pause();
        endIfSettled();
        return;
      }
      const requestId = request.requestId;
      pending++;
      flowControl();
      let stored: ReturnType<TopicRegistry["publish"]>;
      const started = observer.publishStart();
      try {
        // A request the token may not publish is answered like any refused request: its
        // error_code is PERMISSION_DENIED; the stream stays open for the next one.
        access.require(call.metadata, "publish", request.topic);
        stored = broker.publish(request.topic, request.messages);
      } catch (err) {
        stored = Promise.reject(err);
      }
      stored.then(
        (outcomes) => {
          observer.publishDone("v2", started);
          answer(encodePublishAnswer(requestId, outcomes, broker.clock.nowMs()));
        },
        (err: unknown) => {
          observer.publishDone("v2", started);
          const s = toStatus(err, log);
          answer(encodePublishAnswer(requestId, [], 0, s.code, s.details));
        },
      );
    });
    // Half-close: answer what is pending, then end with OK (or INVALID_ARGUMENT after a malformed frame).
    call.on("end", () => {
      clientDone = true;
      endIfSettled();
    });
    call.on("cancelled", done);
    call.on("error", done);
    call.on("close", done);
  });
}
