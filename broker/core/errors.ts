// Typed errors of the broker core. The server layer maps each class to one gRPC status
// (broker/server/status.ts); nothing matches on message text.

export abstract class BrokerError extends Error {
  override readonly name: string = this.constructor.name;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Why a topic name was refused. v1 maps each reason to the original's exact strings. */
export type TopicNameProblem = "empty" | "too_long" | "invalid_format";

export class InvalidTopicNameError extends BrokerError {
  constructor(readonly topicName: string, readonly problem: TopicNameProblem) {
    super(
      problem === "empty"
        ? "topic name is empty"
        : problem === "too_long"
          ? `topic name is ${topicName.length} characters long; the limit is 255`
          : `topic name ${JSON.stringify(truncate(topicName))} may only contain A-Z a-z 0-9 _ -`,
    );
  }
}

export class TopicNotFoundError extends BrokerError {
  constructor(readonly topic: string) {
    super(`topic ${JSON.stringify(topic)} does not exist`);
  }
}

export class TopicExistsError extends BrokerError {
  constructor(readonly topic: string) {
    super(`topic ${JSON.stringify(topic)} already exists`);
  }
}

export class SubscriptionNotFoundError extends BrokerError {
  constructor(readonly subscription: string) {
    super(`subscription ${JSON.stringify(subscription)} does not exist`);
  }
}

export class SubscriptionExistsError extends BrokerError {
  constructor(readonly subscription: string) {
    super(`subscription ${JSON.stringify(subscription)} already exists`);
  }
}

/** A request field is missing or out of range. `field` names it (e.g. "config.max_messages"). */
export class InvalidArgumentError extends BrokerError {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

/** A broker-wide budget (memory, disk, buffer) is full; the request was refused, nothing dropped. */
export class ResourceExhaustedError extends BrokerError {
  constructor(readonly resource: string, message: string) {
    super(message);
  }
}

/**
 * One message of a publish is larger, as delivered, than the broker may send (see
 * message-limits.ts): refused before anything of the publish is stored.
 */
export class MessageTooLargeError extends ResourceExhaustedError {
  constructor(
    readonly field: string,
    readonly sizeBytes: number,
    readonly limitBytes: number,
    maxMessageBytes: number,
  ) {
    super(
      "message",
      `${field}: is ${sizeBytes} bytes as delivered; the limit is ${limitBytes} ` +
        `(--max-message-bytes ${maxMessageBytes} less the room kept for the delivery envelope and dead-letter attributes)`,
    );
  }
}

/** The request is valid but the broker's state does not allow it now. */
export class FailedPreconditionError extends BrokerError {}

/** The broker is shutting down or the store is gone. */
export class UnavailableError extends BrokerError {}

function truncate(s: string): string {
  return s.length > 64 ? `${s.slice(0, 64)}…` : s;
}
