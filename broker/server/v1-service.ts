import type { Server } from "@grpc/grpc-js";
import type { Broker } from "../core/broker.js";
import type { BrokerServerConfig } from "./config.js";
import type { Logger } from "./logger.js";

// Placeholder: the v1 service is being written.
export function addV1Service(_server: Server, _broker: Broker, _config: BrokerServerConfig, _log: Logger): void {}
