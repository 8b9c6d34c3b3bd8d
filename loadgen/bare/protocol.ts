/** The IPC messages between a bare client (bare-client.ts) and its processes (bare-process.ts). */
import type { BrokerSettings, SubscriptionSpec } from "../drivers/index.js";

export interface BareJob {
  role: "publisher" | "subscriber";
  driver: string;
  driverOptions: unknown;
  target: string;
  connections: number;
  maxOutstandingMessages: number;
  connectTimeoutMs: number;
  broker: BrokerSettings;
  topicNames: string[];
  messageSizeBytes: number;
  batchSize: number;
  maxInFlightBatches: number;
  /** Publisher: each producer's topics and how many messages it sends to each (warmup included). */
  producers: { id: number; topics: number[]; messagesPerTopic: number[] }[];
  /** Subscriber: the consumers to open. */
  subscriptions: SubscriptionSpec[];
  consumersPerSubscription: number;
  /** Deliveries expected in all, and the warmup share of them (timing starts when it has arrived). */
  expectedDeliveries: number;
  warmupDeliveries: number;
}

export type BareReply =
  | { kind: "ready" }
  | { kind: "published"; startUs: number; endUs: number }
  | { kind: "done"; received: number; warmDoneUs: number; lastUs: number }
  | { kind: "error"; message: string };
