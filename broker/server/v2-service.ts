import type { Server, ServiceDefinition, UntypedServiceImplementation } from "@grpc/grpc-js";
import { TopicNotFoundError, type BrokerCore } from "../core/index.js";
import { BrokerService, type PublishResponse } from "../../proto/gen/ratatoskr/v2/broker.js";
import type { BrokerServerConfig } from "./config.js";
import { EncodedMessages } from "./consume-codec.js";
import { unary } from "./handlers.js";
import type { Logger } from "./logger.js";
import { consumeHandler } from "./v2-consume.js";
import { publishStreamHandler } from "./v2-publish-stream.js";
import {
  brokerStatsToWire,
  paginate,
  publishResponseToWire,
  subscriptionRequestFromWire,
  subscriptionToWire,
  topicConfigFromWire,
  topicToWire,
} from "./v2-wire.js";

/** Consume frames stay well under the max send size; 1 MiB already batches thousands of small messages. */
export function maxFrameBytes(maxMessageBytes: number): number {
  return Math.max(1024, Math.min(1 << 20, maxMessageBytes - 4096));
}

/**
 * Registers `ratatoskr.v2.Broker` on the shared core. Returns the shutdown hook: it ends
 * every Consume and PublishStream stream with UNAVAILABLE (before the core closes).
 */
export function addV2Service(server: Server, core: BrokerCore, config: BrokerServerConfig, log: Logger): () => void {
  const broker = core.topics;
  const registry = core.subscriptions;
  const openStreams = new Set<() => void>();
  const sharedBodies = new EncodedMessages();

  const handlers: UntypedServiceImplementation = {
    createTopic: unary(log, async (req: { name: string; config?: Parameters<typeof topicConfigFromWire>[0] }) =>
      topicToWire(await broker.createTopic(req.name, topicConfigFromWire(req.config))),
    ),
    getTopic: unary(log, (req: { name: string }) => topicToWire(broker.topicInfo(req.name))),
    listTopics: unary(log, (req: { pageSize: number; pageToken: string }) => {
      const page = paginate(broker.listTopics(), req.pageSize, req.pageToken);
      return { topics: page.names.filter((n) => broker.hasTopic(n)).map((n) => topicToWire(broker.topicInfo(n))), nextPageToken: page.nextPageToken };
    }),
    deleteTopic: unary(log, async (req: { name: string }) => {
      await broker.deleteTopic(req.name);
      return {};
    }),
    publish: unary(log, async (req: { topic: string; messages: Array<{ payload: Buffer; attributes: Record<string, string>; messageId: string }> }): Promise<PublishResponse> =>
      publishResponseToWire(await broker.publish(req.topic, req.messages), broker.clock.nowMs()),
    ),
    publishStream: publishStreamHandler(broker, log, openStreams),
    createSubscription: unary(log, async (req: { name: string; topic: string; config?: Parameters<typeof subscriptionRequestFromWire>[0] }) =>
      subscriptionToWire(await registry.create(req.name, req.topic, subscriptionRequestFromWire(req.config))),
    ),
    getSubscription: unary(log, (req: { name: string }) => subscriptionToWire(registry.get(req.name))),
    listSubscriptions: unary(log, (req: { topic: string; pageSize: number; pageToken: string }) => {
      if (req.topic !== "" && !broker.hasTopic(req.topic)) throw new TopicNotFoundError(req.topic);
      const page = paginate(registry.list(req.topic === "" ? undefined : req.topic), req.pageSize, req.pageToken);
      return { subscriptions: page.names.map((n) => subscriptionToWire(registry.get(n))), nextPageToken: page.nextPageToken };
    }),
    deleteSubscription: unary(log, async (req: { name: string }) => {
      await registry.delete(req.name);
      return {};
    }),
    consume: consumeHandler(registry, log, openStreams, maxFrameBytes(config.maxMessageBytes), sharedBodies),
    getBrokerStats: unary(log, () => brokerStatsToWire(core.stats())),
  };

  // Consume frames are encoded by the handler straight from the core's leases (consume-codec)
  // and pass through the serializer as they are.
  const definition = {
    ...BrokerService,
    consume: { ...BrokerService.consume, responseSerialize: (frame: Buffer): Buffer => frame },
  } as unknown as ServiceDefinition;
  server.addService(definition, handlers);

  return () => {
    sharedBodies.clear();
    for (const end of [...openStreams]) end();
  };
}
