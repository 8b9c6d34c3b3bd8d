import type { Server } from "@grpc/grpc-js";
import type { Broker } from "../core/broker.js";
import type { BrokerServerConfig } from "./config.js";
import type { Logger } from "./logger.js";

// Placeholder: the v2 service is being written. Returns a shutdown hook.
export function addV2Service(_server: Server, _broker: Broker, _config: BrokerServerConfig, _log: Logger): () => void {
  return () => undefined;
}
