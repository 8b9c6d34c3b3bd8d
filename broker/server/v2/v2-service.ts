import { status, type Server, type ServiceDefinition } from "@grpc/grpc-js";
import { InvalidArgumentError, TopicNotFoundError, type BrokerCore, type PublishInput } from "../../core/index.js";
import { BrokerService, type CreateSubscriptionRequest, type Subscription } from "../../../proto/gen/ratatoskr/v2/broker.js";
import { OPEN_ACCESS, type Access } from "../access.js";
import type { BrokerServerConfig } from "../config.js";
import { EncodedMessages } from "./consume-codec.js";
import { bidiStream, unary, type ServedHandlers } from "../handlers.js";
import { directUnary, type UnaryFn } from "../direct-unary.js";
import type { DirectHandler } from "../h2-call.js";
import { statusError } from "../status.js";
import type { Logger } from "../logger.js";
import { NO_METRICS, type BrokerObserver } from "../metrics.js";
import { consumeHandler, type ConsumeStream } from "./v2-consume.js";
import { OutboundBudget } from "../outbound.js";
import { publishStreamHandler } from "./v2-publish-stream.js";
import { decodePublishRequest } from "./request-codec.js";
import { encodePublishAnswer } from "./publish-response-codec.js";
import {
  brokerStatsToWire,
  paginate,
  subscriptionRequestFromWire,
  subscriptionToWire,
  topicConfigFromWire,
  topicToWire,
} from "./v2-wire.js";

/** Consume frames stay well under the max send size; 1 MiB already batches thousands of small messages. */
export function maxFrameBytes(maxMessageBytes: number): number {
  return Math.max(1024, Math.min(1 << 20, maxMessageBytes - 4096));
}

const passThrough = (bytes: Buffer): Buffer => bytes;

/**
 * `ratatoskr.v2.Broker` as served: the generated definition, except for the calls every message
 * passes through. Publish, PublishStream and Consume requests reach their handlers as bytes and
 * are decoded there by the hand decoders (request-codec.ts; grpc-js answers a request its
 * deserializer refuses with INTERNAL and, on a stream, at once: the handler decides instead,
 * INVALID_ARGUMENT, on a stream after answering what came before). Their answers leave as bytes
 * the handlers encoded: Publish and PublishStream answers (publish-response-codec.ts) and Consume
 * frames straight from the core's leases (consume-codec.ts).
 */
export const V2_SERVICE_DEFINITION = {
  ...BrokerService,
  publish: { ...BrokerService.publish, requestDeserialize: passThrough, responseSerialize: passThrough },
  publishStream: { ...BrokerService.publishStream, requestDeserialize: passThrough, responseSerialize: passThrough },
  consume: { ...BrokerService.consume, requestDeserialize: passThrough, responseSerialize: passThrough },
} satisfies ServiceDefinition;

/** What addV2Service leaves to the server that binds it. */
export interface V2Service {
  /** Ends every Consume and PublishStream stream with UNAVAILABLE (before the core closes). */
  shutdown(): void;
  /**
   * The methods served on HTTP/2 directly, by path: Consume and CreateSubscription (h2-call.ts,
   * serveDirect). The server installs them once bound; grpc-js's own Consume handler only says
   * they are missing (its CreateSubscription serves a server bound without serveDirect).
   */
  readonly direct: ReadonlyMap<string, DirectHandler>;
}

/** Registers `ratatoskr.v2.Broker` on the shared core. */
export function addV2Service(
  server: Server,
  core: BrokerCore,
  config: BrokerServerConfig,
  log: Logger,
  access: Access = OPEN_ACCESS,
  observer: BrokerObserver = NO_METRICS,
  outbound = new OutboundBudget(config.outboundBudgetBytes),
): V2Service {
  const broker = core.topics;
  const registry = core.subscriptions;
  const openStreams = new Set<() => void>();
  const sharedBodies = new EncodedMessages();

  // Each handler checks the caller's permission on its topic first (docs/security.md); with no
  // token file `access` allows everything.
  const createSubscription: UnaryFn<CreateSubscriptionRequest, Subscription> = async (req, call) => {
    access.require(call.metadata, "admin", req.topic);
    // Dead letters are published to their topic by the broker on this subscription's behalf.
    const deadLetterTopic = req.config?.deadLetterTopic ?? "";
    if (deadLetterTopic !== "") access.require(call.metadata, "publish", deadLetterTopic);
    return subscriptionToWire(await registry.create(req.name, req.topic, subscriptionRequestFromWire(req.config)));
  };
  const handlers = {
    createTopic: unary(log, async (req, call) => {
      access.require(call.metadata, "admin", req.name);
      return topicToWire(await broker.createTopic(req.name, topicConfigFromWire(req.config)));
    }),
    getTopic: unary(log, (req, call) => {
      access.requireAny(call.metadata, req.name);
      return topicToWire(broker.topicInfo(req.name));
    }),
    listTopics: unary(log, (req, call) => {
      // Filtered before paging, so a page is full and its token continues after what the caller saw.
      const page = paginate(broker.listTopics().filter(access.visible(call.metadata)), req.pageSize, req.pageToken);
      return { topics: page.names.filter((n) => broker.hasTopic(n)).map((n) => topicToWire(broker.topicInfo(n))), nextPageToken: page.nextPageToken };
    }),
    deleteTopic: unary(log, async (req, call) => {
      access.require(call.metadata, "admin", req.name);
      await broker.deleteTopic(req.name);
      return {};
    }),
    publish: unary<Buffer, Buffer>(log, async (frame, call) => {
      // Decoded here straight into the core's PublishInput (request-codec.ts); a frame that is
      // not a PublishRequest is INVALID_ARGUMENT, not the INTERNAL grpc-js gives a refusing deserializer.
      const { topic, messages } = decodeUnaryPublish(frame);
      access.require(call.metadata, "publish", topic);
      const started = observer.publishStart();
      try {
        return encodePublishAnswer(0n, await broker.publish(topic, messages), broker.clock.nowMs());
      } finally {
        observer.publishDone("v2", started);
      }
    }),
    publishStream: publishStreamHandler(broker, log, openStreams, access, observer),
    createSubscription: unary(log, createSubscription),
    getSubscription: unary(log, (req, call) => {
      const info = registry.get(req.name);
      access.requireAny(call.metadata, info.topic);
      return subscriptionToWire(info);
    }),
    listSubscriptions: unary(log, (req, call) => {
      if (req.topic !== "") access.requireAny(call.metadata, req.topic);
      if (req.topic !== "" && !broker.hasTopic(req.topic)) throw new TopicNotFoundError(req.topic);
      const visible = access.visible(call.metadata);
      const names = registry.list(req.topic === "" ? undefined : req.topic).filter((n) => visible(registry.get(n).topic));
      const page = paginate(names, req.pageSize, req.pageToken);
      return { subscriptions: page.names.map((n) => subscriptionToWire(registry.get(n))), nextPageToken: page.nextPageToken };
    }),
    deleteSubscription: unary(log, async (req, call) => {
      access.require(call.metadata, "admin", registry.get(req.name).topic);
      await registry.delete(req.name);
      return {};
    }),
    consume: bidiStream<Buffer, Buffer>(log, () => {
      throw statusError(status.INTERNAL, "Consume is served on HTTP/2 directly and this server was bound without serveDirect");
    }),
    getBrokerStats: unary(log, () => {
      // Broker-wide figures, no topic names: any token the interceptor let through may read them.
      return brokerStatsToWire(core.stats());
    }),
  } satisfies ServedHandlers<typeof V2_SERVICE_DEFINITION>;

  server.addService(V2_SERVICE_DEFINITION, handlers);

  const openConsumes = new Set<ConsumeStream>();
  const consume = consumeHandler(registry, log, openConsumes, maxFrameBytes(config.maxMessageBytes), sharedBodies, {
    budget: outbound,
    streamCapBytes: config.streamOutboundBytes,
    stuckTimeoutMs: config.consumerStuckTimeoutMs,
    resetGraceMs: 1_000,
  }, access, observer);
  return {
    shutdown: () => {
      sharedBodies.clear();
      for (const end of [...openStreams]) end();
      for (const stream of [...openConsumes]) stream.shutdown();
    },
    // CreateSubscription too: a run opening 100,000 consumers makes as many calls, and grpc-js's
    // server call for each was most of the broker's garbage while they connected.
    direct: new Map([
      [BrokerService.consume.path, consume],
      [BrokerService.createSubscription.path, directUnary(log, BrokerService.createSubscription, createSubscription)],
    ]),
  };
}

/** A unary Publish frame as the core takes it; INVALID_ARGUMENT naming the message when it is not a PublishRequest. */
function decodeUnaryPublish(frame: Buffer): { topic: string; messages: PublishInput[] } {
  try {
    return decodePublishRequest(frame);
  } catch (err) {
    throw new InvalidArgumentError("PublishRequest", `malformed frame: ${err instanceof Error ? err.message : String(err)}`);
  }
}
