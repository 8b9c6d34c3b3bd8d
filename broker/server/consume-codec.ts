import { BinaryWriter } from "@bufbuild/protobuf/wire";
import type { Lease } from "../core/lease-table.js";
import type { StoredMessage } from "../core/types.js";
import { Message } from "../../proto/gen/ratatoskr/v2/broker.js";

// A ConsumeResponse frame is written straight from the core's leases: each message is
// encoded once (cached per stored message, shared by every subscription that gets it), and
// a Delivery around it adds only the ack id and attempt (DESIGN §6).

const encoded = new WeakMap<StoredMessage, Uint8Array>();

export function encodeMessage(m: StoredMessage): Uint8Array {
  let bytes = encoded.get(m);
  if (!bytes) {
    bytes = Message.encode({
      id: m.id,
      topic: m.topic,
      sequence: m.sequence,
      payload: m.payload,
      attributes: m.attributes as { [key: string]: string },
      publishTimeMs: m.publishTimeMs,
    }).finish();
    encoded.set(m, bytes);
  }
  return bytes;
}

/** Serializes a batch of leases as a `ratatoskr.v2.ConsumeResponse`. */
export function encodeConsumeResponse(batch: readonly Lease[]): Buffer {
  const w = new BinaryWriter();
  for (const lease of batch) {
    w.uint32(10).fork(); // ConsumeResponse.deliveries = 1
    w.uint32(8).int64(lease.ackId); // Delivery.ack_id = 1
    w.uint32(16).int32(lease.attempt); // Delivery.attempt = 2
    w.uint32(26).bytes(encodeMessage(lease.message)); // Delivery.message = 3
    w.join();
  }
  const out = w.finish();
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}
