import { DEAD_LETTER_ATTRIBUTES } from "./dead-letter.js";
import { InvalidArgumentError, MessageTooLargeError } from "./errors.js";
import { MAX_NAME_LENGTH } from "./names.js";
import type { PublishInput } from "./types.js";

// Limits on what one message may carry, checked once on the publish path before anything of a
// publish is assigned or stored (docs/limits.md, "Message limits"), identically for both
// stores. The per-field limits stay strictly below what the durable store's record format can
// hold (u16 lengths and counts, lmdb-codec.ts), so a message the edge accepts always encodes.

/** Largest id length, attribute count and key length the LMDB record format can hold. */
export const STORE_FIELD_LIMIT = 0xffff;

/** Settings of the message limits; every field has a default (DEFAULT_MESSAGE_LIMITS). */
export interface MessageLimits {
  /** Producer message id, UTF-8 bytes. At most STORE_FIELD_LIMIT. */
  maxMessageIdBytes: number;
  /** Attributes (v1 metadata entries) per message. At most STORE_FIELD_LIMIT. */
  maxAttributes: number;
  /** One attribute key, UTF-8 bytes. At most STORE_FIELD_LIMIT. */
  maxAttributeKeyBytes: number;
  /** One attribute value, UTF-8 bytes. */
  maxAttributeValueBytes: number;
  /**
   * The largest delivery frame the broker sends (its gRPC max message size): a message is
   * accepted only when its delivery, and the delivery of its dead-letter copy, fit in it.
   */
  maxDeliveryBytes: number;
}

export const DEFAULT_MESSAGE_LIMITS: MessageLimits = {
  maxMessageIdBytes: 1024,
  maxAttributes: 1024,
  maxAttributeKeyBytes: 1024,
  maxAttributeValueBytes: 65_536,
  maxDeliveryBytes: 4 * 1024 * 1024,
};

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

function lengthDelimited(bytes: number): number {
  return 1 + varintSize(bytes) + bytes;
}

const MAX_SAFE_VARINT = varintSize(Number.MAX_SAFE_INTEGER); // sequences, ack ids, times
const MAX_INT32_VARINT = varintSize(0x7fff_ffff); // attempt
const UUID_BYTES = 36;

/**
 * Bytes of the largest delivery of a message: a `ratatoskr.v2.ConsumeResponse` frame carrying
 * only this message, with the fields the broker sets (ack id, attempt, sequence, publish time)
 * at their widest encodings and a broker-made UUID when the producer gave no id. A v1 `Message`
 * of the same message is smaller (it has no ack id, attempt or sequence), so this bounds both.
 * consume-codec.test.ts checks it against the real encoder.
 */
export function deliveryBytes(topic: string, idBytes: number, payloadBytes: number, attributes: Readonly<Record<string, string>>): number {
  let body = (idBytes > 0 ? lengthDelimited(idBytes) : 0) + lengthDelimited(topic.length) + 1 + MAX_SAFE_VARINT + 1 + MAX_SAFE_VARINT;
  if (payloadBytes > 0) body += lengthDelimited(payloadBytes);
  for (const key in attributes) {
    const k = Buffer.byteLength(key, "utf8");
    const v = Buffer.byteLength(attributes[key]!, "utf8");
    body += lengthDelimited((k > 0 ? lengthDelimited(k) : 0) + (v > 0 ? lengthDelimited(v) : 0));
  }
  const delivery = 1 + MAX_SAFE_VARINT + 1 + MAX_INT32_VARINT + lengthDelimited(body);
  return lengthDelimited(delivery);
}

/**
 * How much larger a message's dead-letter copy can be than the message: the origin attributes
 * (values at their widest: names of 255 characters, the id at its limit, 16-digit numbers), a
 * dead-letter topic name up to 255 characters longer, a broker-made id in place of the
 * producer's, and length prefixes that grow by a byte each.
 */
export function deadLetterReserveBytes(maxMessageIdBytes: number): number {
  // Asked for every published message (checkMessage): one limit per broker, so remember the last.
  if (maxMessageIdBytes === reserveFor) return reserve;
  reserve = computeDeadLetterReserve(maxMessageIdBytes);
  reserveFor = maxMessageIdBytes;
  return reserve;
}

let reserveFor = -1;
let reserve = 0;

function computeDeadLetterReserve(maxMessageIdBytes: number): number {
  const widest: Record<string, number> = {
    [DEAD_LETTER_ATTRIBUTES.attempts]: 10,
    [DEAD_LETTER_ATTRIBUTES.topic]: MAX_NAME_LENGTH,
    [DEAD_LETTER_ATTRIBUTES.subscription]: MAX_NAME_LENGTH,
    [DEAD_LETTER_ATTRIBUTES.sequence]: 16,
    [DEAD_LETTER_ATTRIBUTES.messageId]: Math.max(maxMessageIdBytes, UUID_BYTES),
    [DEAD_LETTER_ATTRIBUTES.publishTimeMs]: 16,
  };
  let bytes = 0;
  for (const [key, valueBytes] of Object.entries(widest)) bytes += lengthDelimited(lengthDelimited(key.length) + lengthDelimited(valueBytes));
  return bytes + MAX_NAME_LENGTH + 2 + lengthDelimited(UUID_BYTES) + 4;
}

/** The largest delivery size a client may publish: the delivery limit less the dead-letter reserve. */
export function maxPublishDeliveryBytes(limits: MessageLimits): number {
  return limits.maxDeliveryBytes - deadLetterReserveBytes(limits.maxMessageIdBytes);
}

/**
 * Checks one message against the limits; throws InvalidArgumentError (a field over its limit,
 * naming the field, the size and the limit) or MessageTooLargeError (the whole message).
 * `index` names the message within its request. `deadLetter`: a broker-made copy, whose origin
 * attributes the reserve already covers; only its delivery size is checked.
 */
export function checkMessage(limits: MessageLimits, topic: string, input: PublishInput, index: number, deadLetter = false): void {
  const at = `messages[${index}]`;
  const attributes = input.attributes ?? {};
  let idBytes = UUID_BYTES;
  if (input.messageId !== undefined) {
    idBytes = Buffer.byteLength(input.messageId, "utf8");
    if (idBytes > limits.maxMessageIdBytes && !deadLetter) {
      throw new InvalidArgumentError(`${at}.message_id`, `is ${idBytes} bytes; the limit is ${limits.maxMessageIdBytes} (--max-message-id-bytes)`);
    }
  }
  if (!deadLetter) {
    let count = 0;
    for (const key in attributes) {
      count++;
      const k = Buffer.byteLength(key, "utf8");
      if (k > limits.maxAttributeKeyBytes) {
        throw new InvalidArgumentError(`${at}.attributes`, `a key is ${k} bytes; the limit is ${limits.maxAttributeKeyBytes} (--max-attribute-key-bytes)`);
      }
      const v = Buffer.byteLength(attributes[key]!, "utf8");
      if (v > limits.maxAttributeValueBytes) {
        throw new InvalidArgumentError(`${at}.attributes`, `the value of a key is ${v} bytes; the limit is ${limits.maxAttributeValueBytes} (--max-attribute-value-bytes)`);
      }
    }
    if (count > limits.maxAttributes) {
      throw new InvalidArgumentError(`${at}.attributes`, `has ${count} entries; the limit is ${limits.maxAttributes} (--max-attributes)`);
    }
  }
  const limit = deadLetter ? limits.maxDeliveryBytes : maxPublishDeliveryBytes(limits);
  const size = deliveryBytes(topic, idBytes, input.payload.length, attributes);
  if (size > limit) throw new MessageTooLargeError(at, size, limit, limits.maxDeliveryBytes);
}

/** Refuses limits the store could not hold or that leave no room for a message. */
export function validateMessageLimits(limits: MessageLimits): void {
  for (const [field, value] of [
    ["maxMessageIdBytes", limits.maxMessageIdBytes],
    ["maxAttributes", limits.maxAttributes],
    ["maxAttributeKeyBytes", limits.maxAttributeKeyBytes],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1 || value > STORE_FIELD_LIMIT) throw new RangeError(`${field} must be in 1..${STORE_FIELD_LIMIT}, got ${value}`);
  }
  if (!Number.isSafeInteger(limits.maxAttributeValueBytes) || limits.maxAttributeValueBytes < 1) throw new RangeError(`maxAttributeValueBytes must be >= 1, got ${limits.maxAttributeValueBytes}`);
  if (maxPublishDeliveryBytes(limits) < 1024) {
    throw new RangeError(`maxDeliveryBytes ${limits.maxDeliveryBytes} leaves less than 1024 bytes per message after the ${deadLetterReserveBytes(limits.maxMessageIdBytes)}-byte dead-letter reserve`);
  }
}
