/**
 * Driver `mqtt`: MQTT 5 (mqtt.js) against Mosquitto. A topic is an MQTT topic; a subscription is
 * a shared subscription `$share/<subscription>/<topic>`, so k subscriptions of a topic each get
 * every message (fan-out) and the consumers of one subscription compete for its messages (one
 * member: a plain subscription). Each consumer is its own client with a persistent session
 * (clean start off, `sessionExpirySeconds`), so a consumer that loses its connection finds its
 * subscription and its queued and unacknowledged messages when it reconnects.
 *
 * QoS (`driverOptions.mqtt.qos`): 1 (default) is at-least-once: a publish call resolves when
 * every message of the batch has its PUBACK (the publish ack), and the client PUBACKs a delivery
 * after the generator accounted it; the consumer's receive-maximum
 * (`maxOutstandingMessages`, at most 65,535) bounds the QoS 1 messages Mosquitto has in flight to
 * it: the flow control. 0 is at-most-once: no acks, a publish resolves once written to the socket.
 *
 * Faults: clients reconnect with exponential backoff (100 ms doubling to `reconnectMaxMs`,
 * jittered) and resume their sessions. Unacknowledged QoS 1 publishes are sent again with DUP
 * set, and Mosquitto sends unacknowledged deliveries again with DUP set (counted as attempt 2):
 * a cut can cause duplicates, not the loss of an acknowledged publish while the broker runs.
 * QoS 0 messages in flight at a cut are lost.
 */
import { randomBytes } from "node:crypto";
import { connectAsync, type IClientOptions, type IPublishPacket, type MqttClient } from "mqtt";
import { z } from "zod";
import { BrokerUnreachableError, DriverError } from "../errors.js";
import { defineDriver, type BrokerStatsSample, type Consumer, type DeliverySink, type Driver, type DriverContext, type DriverScenario, type SubscriptionSpec } from "./driver.js";
import type { RetryCounts } from "./reconnect.js";
import { mosquittoServer, mosquittoStorageLabel } from "./mosquitto.js";
import { message } from "./util.js";

/** What an mqtt run promises (to be wired into the run's "what it promises" table). */
export const MQTT_PROMISES = {
  publishAck: "QoS 1: PUBACK per message (a batch resolves when all arrived); QoS 0: none (written to the socket)",
  storage: "memory; with broker.storage=durable mosquitto's persistence file",
  flush: "none per message: mosquitto saves its database every autosave_interval (1800 s) and at shutdown, so a crash loses what arrived since the last save",
  ackPolicy: "QoS 1: PUBACK per delivery after the generator accounted it; unacknowledged deliveries resent with DUP on reconnect",
  replicas: 1,
  ordering: "per topic for one consumer (QoS 1, mosquitto in-order); shared subscriptions and resends break it",
  underFaults: "clients reconnect with backoff and resume persistent sessions: QoS 1 publishes and deliveries are retransmitted with DUP (duplicates, no loss); QoS 0 in flight is lost",
} as const;

/** MQTT 5's largest receive-maximum. */
const MAX_RECEIVE_MAXIMUM = 65_535;

export const mqttOptions = z.strictObject({
  /** 1: at-least-once (PUBACKs); 0: at-most-once. */
  qos: z.union([z.literal(0), z.literal(1)]).default(1),
  /** How long Mosquitto keeps a consumer's session (subscription, queued messages) while it is disconnected. */
  sessionExpirySeconds: z.number().int().positive().default(300),
  keepaliveSeconds: z.number().int().positive().default(30),
  /** Reconnect backoff cap. */
  reconnectMaxMs: z.number().int().positive().default(5_000),
});
export type MqttOptions = z.output<typeof mqttOptions>;

/** Scenario fields MQTT/Mosquitto cannot honour; an empty list means the scenario may run. */
export function mqttRefusals(s: DriverScenario): string[] {
  const out: string[] = [];
  if (s.broker.fsync) {
    out.push(
      "broker.fsync=true: mosquitto never flushes before a PUBACK (it saves its persistence file every autosave_interval and at shutdown); " +
        "run it with broker.fsync=false and disclose it",
    );
  }
  if (s.broker.memoryBudgetBytes !== undefined) out.push("broker.memoryBudgetBytes: a ratatoskr broker option; mosquitto's memory_limit drops messages and disconnects clients rather than pushing back");
  if (s.broker.args.length > 0) out.push("broker.args: ratatoskr broker command-line arguments cannot be passed to mosquitto");
  if (s.tls) out.push("tls=true: the mqtt driver speaks plaintext only (its embedded mosquitto has no TLS listener)");
  return out;
}

export const mqttDriver = defineDriver({
  name: "mqtt",
  summary: "MQTT 5 (Mosquitto): shared subscriptions with persistent sessions, QoS 1 PUBACKs (default) or QoS 0",
  options: mqttOptions,
  movedFields: {},
  refusals: mqttRefusals,
  embeddedServer: mosquittoServer,
  promises: (broker, o) => ({
    publishAck: o.qos === 1 ? "QoS 1: PUBACK per message (a batch resolves when all arrived)" : "QoS 0: none (written to the socket)",
    storage: broker.storage === "durable" ? "mosquitto's persistence file (persistence true)" : "memory (persistence false: lost when mosquitto stops or is killed)",
    flush: broker.storage === "durable" ? MQTT_PROMISES.flush : "none",
    ackPolicy: o.qos === 1 ? MQTT_PROMISES.ackPolicy : "QoS 0: no acks; what is in flight at a fault is lost (at-most-once)",
    replicas: MQTT_PROMISES.replicas,
    ordering: MQTT_PROMISES.ordering,
    notes: [MQTT_PROMISES.underFaults],
  }),
  report: { peer: true, storage: mosquittoStorageLabel },
  create: (context, options) => new MqttDriver(context, options),
});

export class MqttDriver implements Driver {
  readonly name = "mqtt";
  readonly acks: boolean;
  private readonly publishers: MqttClient[] = [];
  private readonly consumers = new Set<MqttClient>();
  private readonly instance = randomBytes(3).toString("hex");
  private closing = false;
  /** Clients (publishers and consumers) reconnected after a break. */
  private reconnects = 0;

  constructor(
    private readonly context: DriverContext,
    private readonly options: MqttOptions = mqttOptions.parse({}),
  ) {
    this.acks = options.qos === 1;
  }

  async connect(): Promise<void> {
    for (let i = 0; i < this.context.connections; i++) this.publishers.push(await this.open(`rt-pub-${this.instance}-${i}`, {}));
  }

  /**
   * For the run's accounting (docs/faults.md, "Drivers under faults"). mqtt.js retransmits
   * unacknowledged QoS 1 packets itself (with DUP) and does not say how many, so publish retries
   * are not counted.
   */
  retryCounts(): RetryCounts {
    return { publishRetries: 0, reconnects: this.reconnects };
  }

  /** One client, connected (or BrokerUnreachableError), then reconnecting with backoff and resuming its session. */
  private async open(clientId: string, properties: NonNullable<IClientOptions["properties"]>): Promise<MqttClient> {
    const baseMs = 100;
    let client: MqttClient;
    try {
      client = await connectAsync(
        `mqtt://${this.context.target}`,
        {
          protocolVersion: 5,
          clientId,
          clean: false,
          keepalive: this.options.keepaliveSeconds,
          connectTimeout: this.context.connectTimeoutMs,
          reconnectPeriod: baseMs,
          resubscribe: true,
          properties: { sessionExpiryInterval: this.options.sessionExpirySeconds, ...properties },
        },
        false,
      );
    } catch (err) {
      throw new BrokerUnreachableError(this.context.target, `MQTT: ${message(err)}`, { cause: err });
    }
    const noDelay = (): void => {
      // mqtt.js leaves Nagle on; small QoS 1 messages would wait for delayed ACKs.
      (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
    };
    noDelay();
    // connectAsync resolved on the first CONNACK: every later "connect" is a reconnect.
    client.on("connect", () => {
      this.reconnects++;
      client.options.reconnectPeriod = baseMs;
      noDelay();
    });
    // 'reconnect' starts an attempt; the next one (if this fails) waits twice as long, jittered.
    client.on("reconnect", () => {
      const next = Math.min(this.options.reconnectMaxMs, (client.options.reconnectPeriod ?? baseMs) * 2);
      client.options.reconnectPeriod = Math.round(next * (0.75 + Math.random() / 4));
    });
    client.on("error", () => undefined); // surfaced through publish callbacks and stream errors
    return client;
  }

  async createTopics(_names: readonly string[]): Promise<void> {
    // MQTT topics need no creation.
  }

  async createSubscription(_spec: SubscriptionSpec): Promise<void> {
    // The subscription is the consumers' shared subscription, held by their persistent sessions.
  }

  async openConsumer(spec: SubscriptionSpec, consumerIndex: number, sink: DeliverySink): Promise<Consumer> {
    const receiveMaximum = Math.max(1, Math.min(MAX_RECEIVE_MAXIMUM, this.context.maxOutstandingMessages));
    const client = await this.open(`rt-${spec.name}-c${consumerIndex}-${this.instance}`, { receiveMaximum });
    this.consumers.add(client);
    client.on("message", (_topic: string, payload: Buffer, packet: IPublishPacket) => {
      // mqtt.js sends the PUBACK after this handler returns: after the generator accounted it.
      sink.onDelivery(spec.slot, payload, 0, payload.length, packet.dup ? 2 : 1);
    });
    client.on("disconnect", (packet) => {
      // The server ended the session (e.g. taken over, or a protocol error): say so; the client reconnects.
      if (!this.closing && packet.reasonCode !== undefined && packet.reasonCode >= 0x80) {
        sink.onStreamError(spec.slot, new DriverError(this.name, `mosquitto disconnected consumer ${spec.name}#${consumerIndex}: reason code 0x${packet.reasonCode.toString(16)}`));
      }
    });
    const filter = `$share/${spec.name}/${spec.topic}`;
    let granted;
    try {
      granted = await client.subscribeAsync(filter, { qos: this.options.qos });
    } catch (err) {
      this.end(client);
      throw new DriverError(this.name, `SUBSCRIBE ${filter}: ${message(err)}`, { cause: err });
    }
    const code = granted[0]?.qos ?? 0x80;
    if (code >= 0x80 || code !== this.options.qos) {
      this.end(client);
      throw new DriverError(this.name, `SUBSCRIBE ${filter}: granted ${code >= 0x80 ? `reason code 0x${code.toString(16)}` : `QoS ${code}`}, asked QoS ${this.options.qos}`);
    }
    return { close: () => this.end(client) };
  }

  /** Ends a consumer for good: its session is dropped (session expiry 0 in DISCONNECT). */
  private end(client: MqttClient): void {
    this.consumers.delete(client);
    client.end(false, { properties: { sessionExpiryInterval: 0 } });
  }

  publish(topic: string, payloads: readonly Buffer[], channelHint: number): Promise<number> {
    const client = this.publishers[channelHint % this.publishers.length];
    if (!client) return Promise.reject(new DriverError(this.name, "not connected"));
    const qos = this.options.qos;
    const n = payloads.length;
    return new Promise((resolve, reject) => {
      let ok = 0;
      let failed = 0;
      let firstError: Error | undefined;
      const done = (err?: Error): void => {
        if (err) {
          failed++;
          firstError ??= err;
        } else ok++;
        if (ok + failed < n) return;
        if (ok === 0) reject(new DriverError(this.name, `PUBLISH ${topic}: ${firstError?.message ?? "failed"}`, { cause: firstError }));
        else resolve(ok);
      };
      for (let i = 0; i < n; i++) {
        // QoS 0 resolves once handed to the socket, which may still hold the bytes: give it a copy.
        // QoS 1 resolves on the PUBACK, after the bytes left.
        const payload = qos === 0 ? Buffer.from(payloads[i]!) : payloads[i]!;
        client.publish(topic, payload, { qos }, (err) => done(err ?? undefined));
      }
    });
  }

  async brokerStats(): Promise<BrokerStatsSample | undefined> {
    return undefined; // sampled from /proc/<pid> of the embedded mosquitto
  }

  async cleanup(_topics: readonly string[], _subscriptions: readonly string[]): Promise<void> {
    // Nothing is kept but the consumers' sessions, which end with them.
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const c of [...this.consumers]) this.end(c);
    await Promise.all(this.publishers.map((c) => c.endAsync({ properties: { sessionExpiryInterval: 0 } }).catch(() => undefined)));
    this.publishers.length = 0;
  }
}
