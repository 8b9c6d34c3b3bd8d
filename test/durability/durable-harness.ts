// Test support (not a test file): a durable broker run as `ratatoskr broker` in a child process
// that can be killed and restarted on the same data directory, plus producers and consumers
// that follow it across restarts and record everything for the delivery checks.
import type { ClientDuplexStream } from "@grpc/grpc-js";
import type { BrokerClient, ConsumeRequest, ConsumeResponse } from "../../proto/gen/ratatoskr/v2/broker.js";
import { startCliBroker, v2Api, v2Client, Waiters, type Child, type V2Api } from "../support/index.js";

/** One life of the broker process. */
export interface Incarnation {
  readonly gen: number;
  readonly child: Child;
  readonly client: BrokerClient;
  readonly api: V2Api;
  /** Date.now() when it was killed or stopped; undefined while it runs. */
  endedAtMs: number | undefined;
}

/** The broker child across restarts on one data directory. */
export class RestartableBroker {
  current: Incarnation | undefined;
  readonly history: Incarnation[] = [];
  /** Notified on every start and stop (and by producers and consumers when they stop). */
  readonly signal = new Waiters();

  constructor(private readonly args: string[]) {}

  async start(): Promise<Incarnation> {
    const { child, address } = await startCliBroker(this.args);
    const client = v2Client(address);
    const inc: Incarnation = { gen: this.history.length + 1, child, client, api: v2Api(client), endedAtMs: undefined };
    this.history.push(inc);
    this.current = inc;
    this.signal.notify();
    return inc;
  }

  /** SIGKILL (crash) or SIGTERM (graceful); resolves once the process is gone. */
  async stop(signal: "SIGKILL" | "SIGTERM"): Promise<number | string> {
    const inc = this.current;
    if (!inc) throw new Error("no broker running");
    this.current = undefined;
    inc.endedAtMs = Date.now();
    inc.child.kill(signal);
    const code = await inc.child.exited;
    inc.client.close();
    this.signal.notify();
    return code;
  }

  /** The running incarnation, waiting for a restart if there is none; undefined once `cancelled()`. */
  async ready(cancelled: () => boolean = () => false): Promise<Incarnation | undefined> {
    await this.signal.until(() => this.current !== undefined || cancelled(), "a running broker", 60_000);
    return cancelled() ? undefined : this.current;
  }

  async shutdown(): Promise<void> {
    if (this.current) await this.stop("SIGKILL");
  }
}

/** Payload "producer:seq". */
export function payloadOf(producer: number, seq: number): string {
  return `${producer}:${seq}`;
}

export function parsePayload(p: string): { producer: number; seq: number } {
  const [producer, seq] = p.split(":").map(Number);
  return { producer: producer!, seq: seq! };
}

/** A producer publishing batches in a closed loop, following the broker across restarts. */
export class Producer {
  /** Payloads whose publish was acknowledged. */
  readonly acked: string[] = [];
  failedBatches = 0;
  /** A publish has been sent and not answered yet. */
  inFlight = false;
  private nextSeq = 1;
  private stopped = false;
  done: Promise<void> = Promise.resolve();

  constructor(
    readonly id: number,
    private readonly broker: RestartableBroker,
    private readonly topic: string,
    private readonly batchSize: number,
    private readonly onAck: () => void,
    /** Resolves when the producer may publish its next batch (backlog control). */
    private readonly gate: () => Promise<void>,
  ) {}

  start(): void {
    this.done = this.run();
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.broker.signal.notify();
    return this.done;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await this.gate();
      const inc = await this.broker.ready(() => this.stopped);
      if (!inc) break;
      const payloads = Array.from({ length: this.batchSize }, (_, i) => payloadOf(this.id, this.nextSeq + i));
      this.nextSeq += this.batchSize;
      try {
        this.inFlight = true;
        await inc.api.publishText(this.topic, payloads);
        this.inFlight = false;
        this.acked.push(...payloads);
        this.onAck();
      } catch {
        this.inFlight = false;
        // Not acknowledged: it may or may not have been stored; no promise was made. Move on.
        this.failedBatches++;
        await this.broker.signal.until(() => this.broker.current !== inc || this.stopped, "a restart", 60_000);
      }
    }
  }
}

export interface DeliveryRecord {
  gen: number;
  attempt: number;
  /** Date.now() when received; the ack was written in the same turn. */
  atMs: number;
}

/** A consumer of one subscription that acks every delivery at once and reconnects after restarts. */
export class AckingConsumer {
  /** Every delivery of each payload, in arrival order. */
  readonly deliveries = new Map<string, DeliveryRecord[]>();
  /** Payloads in order of first delivery. */
  readonly firstOrder: string[] = [];
  total = 0;
  private stopped = false;
  private stream: ClientDuplexStream<ConsumeRequest, ConsumeResponse> | undefined;
  done: Promise<void> = Promise.resolve();

  constructor(
    readonly subscription: string,
    private readonly broker: RestartableBroker,
    private readonly onDelivery: () => void,
  ) {}

  start(): void {
    this.done = this.run();
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.stream?.cancel();
    this.broker.signal.notify();
    return this.done;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const inc = await this.broker.ready(() => this.stopped);
      if (!inc) break;
      await this.consumeUntilEnd(inc);
      if (!this.stopped) await this.broker.signal.until(() => this.broker.current !== inc || this.stopped, "a restart", 60_000);
    }
  }

  private consumeUntilEnd(inc: Incarnation): Promise<void> {
    return new Promise((resolve) => {
      const stream = inc.client.consume();
      this.stream = stream;
      const write = (req: Partial<ConsumeRequest>): void => {
        stream.write({ start: undefined, ackIds: [], nackIds: [], extend: undefined, ...req });
      };
      stream.on("data", (res: ConsumeResponse) => {
        const now = Date.now();
        for (const d of res.deliveries) {
          const p = d.message!.payload.toString();
          let list = this.deliveries.get(p);
          if (!list) {
            this.deliveries.set(p, (list = []));
            this.firstOrder.push(p);
          }
          list.push({ gen: inc.gen, attempt: d.attempt, atMs: now });
          this.total++;
        }
        write({ ackIds: res.deliveries.map((d) => d.ackId) });
        this.onDelivery();
      });
      stream.on("error", () => resolve());
      stream.on("end", () => resolve());
      write({ start: { subscription: this.subscription, maxOutstandingMessages: 500, maxOutstandingBytes: 0n, consumerName: this.subscription } });
    });
  }
}
