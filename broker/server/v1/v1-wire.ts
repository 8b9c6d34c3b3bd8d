import type { ServiceDefinition } from "@grpc/grpc-js";
import type { StoredMessage } from "../../core/index.js";
import { Message, MessageBrokerService } from "../../../proto/gen/ratatoskr.js";

/**
 * The v1 service definition as served: the generated one, except that Subscribe's response
 * serializer passes pre-encoded bytes through. Fan-out encodes each message once (see
 * `encodeV1Message`) and hands the same Buffer to every subscriber's stream.
 */
export const V1_SERVICE_DEFINITION = {
  ...MessageBrokerService,
  subscribe: {
    ...MessageBrokerService.subscribe,
    responseSerialize: (value: Buffer): Buffer => value,
  },
} satisfies ServiceDefinition;

// Keyed by the stored message object: fan-out hands every live sink the same object, and the
// entry goes away with the message, so no eviction is needed.
const encoded = new WeakMap<StoredMessage, Buffer>();

/** The v1 `Message` wire bytes of a stored message, encoded on first use and then shared. */
export function encodeV1Message(message: StoredMessage): Buffer {
  let bytes = encoded.get(message);
  if (bytes === undefined) {
    const u8 = Message.encode({
      id: message.id,
      topic: message.topic,
      payload: message.payload,
      metadata: message.attributes as Record<string, string>,
      timestamp: BigInt(message.publishTimeMs),
    }).finish();
    bytes = Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
    encoded.set(message, bytes);
  }
  return bytes;
}

/** Response header carrying the reference a client passes to Unsubscribe. */
export const SUBSCRIPTION_REF_HEADER = "x-subscription-ref";

const MAX_REF_LENGTH = 255;
// Control characters (C0, DEL, C1) cannot travel in a gRPC header value and never occur in
// refs the broker hands out.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * A subscription reference (or subscriber_id used as one) is well-formed when it is 1–255
 * characters with no control characters. Anything else is "Invalid subscription reference".
 */
export function isWellFormedRef(ref: string): boolean {
  return ref.length > 0 && ref.length <= MAX_REF_LENGTH && !CONTROL_CHARS.test(ref);
}
