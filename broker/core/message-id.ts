/**
 * Broker-made message ids: a UUID v4 (RFC 9562 §5.4) for a message published without a producer
 * id (docs/protocol-v1.md promises v4 UUIDs). The same 122 random bits as `crypto.randomUUID()`,
 * taken from a pool that `randomFillSync` refills, but written as one flat 36-character string:
 * randomUUID builds the string from 20 concatenations, a rope that became garbage and was
 * flattened again when the id was first encoded into a frame or a store record. At 128-byte
 * messages that was about 130 ns and 530 bytes of garbage per message (docs/performance.md,
 * "Broker-made message ids").
 */
import { randomFillSync } from "node:crypto";

const POOL_BYTES = 16 * 1024;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let taken = POOL_BYTES;

/** HEX[2b], HEX[2b + 1]: the two lowercase hex digits of byte b, as char codes. */
const HEX = new Uint8Array(512);
for (let b = 0; b < 256; b++) {
  const digits = b.toString(16).padStart(2, "0");
  HEX[2 * b] = digits.charCodeAt(0);
  HEX[2 * b + 1] = digits.charCodeAt(1);
}
const DASH = 0x2d;
const text = Buffer.allocUnsafe(36);

/** A new random UUID v4, lowercase, in the 8-4-4-4-12 form. */
export function newMessageId(): string {
  if (taken === POOL_BYTES) {
    randomFillSync(pool);
    taken = 0;
  }
  const at = taken;
  taken += 16;
  pool[at + 6] = (pool[at + 6]! & 0x0f) | 0x40; // version 4
  pool[at + 8] = (pool[at + 8]! & 0x3f) | 0x80; // variant 10
  let o = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) text[o++] = DASH;
    const b = pool[at + i]!;
    text[o++] = HEX[2 * b]!;
    text[o++] = HEX[2 * b + 1]!;
  }
  return text.toString("latin1", 0, 36);
}
