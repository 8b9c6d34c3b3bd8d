// In-process brokers for unit and integration tests: a real gRPC server on 127.0.0.1:0 with a
// kit client connected to it. The only part of the kit that imports the broker; e2e tests use
// the clients against the image instead.
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { createBrokerCore, type TopicRegistry } from "../../broker/core/index.js";
import { DEFAULT_CONFIG, messageLimitsOf, silentLogger, startBroker, type BrokerServerConfig, type RunningBroker } from "../../broker/server/index.js";
import { OPEN_ACCESS } from "../../broker/server/access.js";
import { serveDirect } from "../../broker/server/h2-call.js";
import { addV1Service, type V1Service, type V1SubscribeOptions } from "../../broker/server/v1/index.js";
import { MemoryStore } from "../../broker/store/index.js";
import type { BrokerClient } from "../../proto/gen/ratatoskr/v2/broker.js";
import type { MessageBrokerClient } from "../../proto/gen/ratatoskr.js";
import { v1Api, v1Client, type V1Api } from "./v1-client.js";
import { v2Api, v2Client, type V2Api } from "./v2-client.js";

export interface V1TestServer {
  address: string;
  broker: TopicRegistry;
  v1: V1Service;
  client: MessageBrokerClient;
  api: V1Api;
  close(): Promise<void>;
}

/** The v1 service alone on a memory-store core (the parts a test inspects: the topics, the v1 service). */
export async function startV1TestServer(
  options: { config?: Partial<BrokerServerConfig>; v1?: Partial<V1SubscribeOptions> } = {},
): Promise<V1TestServer> {
  const config: BrokerServerConfig = { ...DEFAULT_CONFIG, port: 0, logLevel: "silent", ...options.config };
  const core = createBrokerCore({ store: new MemoryStore(), config: { memoryBudgetBytes: config.memoryBudgetBytes, messageLimits: messageLimitsOf(config) } });
  const broker = core.topics;
  const server = new Server({
    "grpc.max_receive_message_length": config.maxMessageBytes,
    "grpc.max_send_message_length": -1,
  });
  const v1 = addV1Service(server, broker, config, silentLogger, options.v1);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  // Publish and PublishBatch are served on HTTP/2 directly, as in the broker (server.ts).
  serveDirect(server, v1.direct, OPEN_ACCESS, config.maxMessageBytes, { messageReceiveTimeoutMs: 0, messageTimedOut: () => {}, compressedWithoutEncoding: () => {} });
  const address = `127.0.0.1:${port}`;
  const client = v1Client(address);
  return {
    address,
    broker,
    v1,
    client,
    api: v1Api(client),
    close: async () => {
      client.close();
      await core.close();
      server.forceShutdown();
    },
  };
}

export interface V2TestServer {
  running: RunningBroker;
  client: BrokerClient;
  api: V2Api;
  close(): Promise<void>;
}

/** The whole broker (v1, v2, health, reflection) as `startBroker` assembles it, on 127.0.0.1:0. */
export async function startV2TestServer(config: Partial<BrokerServerConfig> = {}): Promise<V2TestServer> {
  const running = await startBroker({ host: "127.0.0.1", port: 0, logLevel: "silent", ...config });
  const client = v2Client(running.address);
  return {
    running,
    client,
    api: v2Api(client),
    close: async () => {
      client.close();
      await running.close();
    },
  };
}
