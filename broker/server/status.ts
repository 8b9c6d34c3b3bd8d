import { status, type ServiceError, Metadata } from "@grpc/grpc-js";
import {
  BrokerError,
  FailedPreconditionError,
  InvalidArgumentError,
  InvalidTopicNameError,
  ResourceExhaustedError,
  SubscriptionExistsError,
  SubscriptionNotFoundError,
  TopicExistsError,
  TopicNotFoundError,
  UnavailableError,
} from "../core/index.js";
import { StoreUnavailableError } from "../store/index.js";
import type { Logger } from "./logger.js";

/** A gRPC status error as grpc-js expects it from handlers. */
export function statusError(code: status, details: string): ServiceError {
  const err = new Error(details) as ServiceError;
  err.code = code;
  err.details = details;
  err.metadata = new Metadata();
  return err;
}

/**
 * The one mapping from core errors to gRPC status. Unknown errors become INTERNAL and are
 * logged; their text never reaches the client.
 */
export function toStatus(err: unknown, log?: Logger): ServiceError {
  const s = mapStatus(err, log);
  if (log) refusalCounters.get(log)?.(s.code);
  return s;
}

function mapStatus(err: unknown, log?: Logger): ServiceError {
  if (isServiceError(err)) return err;
  if (err instanceof BrokerError) return statusError(codeOf(err), err.message);
  if (err instanceof StoreUnavailableError) return statusError(status.UNAVAILABLE, err.message);
  log?.error("internal error", { err: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  return statusError(status.INTERNAL, "internal broker error (logged on the broker)");
}

// Every handler already carries its broker's logger to toStatus; a broker with metrics gets its
// own logger object, registered here, so refusals are counted per broker without a new
// parameter through every handler.
const refusalCounters = new WeakMap<Logger, (code: status) => void>();

/** A logger like `log` whose toStatus calls report each status code to `onRefusal`. */
export function countingRefusals(log: Logger, onRefusal: (code: status) => void): Logger {
  const own: Logger = { debug: (m, f) => log.debug(m, f), info: (m, f) => log.info(m, f), warn: (m, f) => log.warn(m, f), error: (m, f) => log.error(m, f) };
  refusalCounters.set(own, onRefusal);
  return own;
}

function codeOf(err: BrokerError): status {
  if (err instanceof TopicNotFoundError || err instanceof SubscriptionNotFoundError) return status.NOT_FOUND;
  if (err instanceof TopicExistsError || err instanceof SubscriptionExistsError) return status.ALREADY_EXISTS;
  if (err instanceof InvalidArgumentError || err instanceof InvalidTopicNameError) return status.INVALID_ARGUMENT;
  if (err instanceof ResourceExhaustedError) return status.RESOURCE_EXHAUSTED;
  if (err instanceof FailedPreconditionError) return status.FAILED_PRECONDITION;
  if (err instanceof UnavailableError) return status.UNAVAILABLE;
  return status.INTERNAL;
}

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number" && "metadata" in err;
}
