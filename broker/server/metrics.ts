/**
 * The broker's Prometheus endpoint (`--metrics-port`, `--metrics-host`): OpenMetrics 1.0 text on
 * `GET /metrics`, built on prom-client. docs/operations.md, "Metrics" lists every name.
 *
 * The hot path stays cheap: counters and gauges are read at scrape time from the same snapshot
 * GetBrokerStats returns (one pass over topics and subscriptions per scrape), so publishing and
 * delivering cost nothing extra. Only the two latency histograms observe events, once per
 * publish call or delivery frame (never per message); refusals are counted where the one
 * error → status mapping runs (status.ts).
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { status } from "@grpc/grpc-js";
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric, type MetricValueWithName } from "prom-client";
import type { BrokerCore, BrokerStatsSnapshot } from "../core/index.js";

/** Seconds: 50 µs .. 10 s, for publish (validate → store → commit) and delivery lag. */
const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

const STATUS_NAMES = new Map<number, string>(Object.entries(status).filter((e): e is [string, number] => typeof e[1] === "number").map(([k, v]) => [v, k]));

/**
 * What the server layer reports as it goes. `NO_METRICS` when the endpoint is off, so the
 * handlers call the same methods either way.
 */
export interface BrokerObserver {
  /** performance.now() at the start of a publish call (0 when metrics are off: no clock read). */
  publishStart(): number;
  /** The call's messages are committed (or refused): observes now - start. */
  publishDone(api: "v1" | "v2", startMs: number): void;
  /** A delivery frame whose oldest message was published at `publishTimeMs` (wall clock). */
  delivered(publishTimeMs: number): void;
  /** A call refused with this gRPC status (not OK). */
  refused(code: number): void;
}

export const NO_METRICS: BrokerObserver = {
  publishStart: () => 0,
  publishDone: () => undefined,
  delivered: () => undefined,
  refused: () => undefined,
};

/** The registry and the observer the server layer feeds; render() produces one scrape. */
export class BrokerMetrics implements BrokerObserver {
  readonly registry = new Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>();
  private snapshot: BrokerStatsSnapshot | undefined;
  private readonly refusals = new Map<string, number>();
  private readonly publishV1Seconds = new BucketCounts();
  private readonly publishV2Seconds = new BucketCounts();
  private readonly deliveryLagSeconds = new BucketCounts();

  constructor(
    private readonly core: BrokerCore,
    info: { version: string },
  ) {
    const registers = [this.registry];
    this.registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    // CPU, resident memory, heap, event-loop lag, GC: prom-client's process and Node metrics.
    collectDefaultMetrics({ register: this.registry });
    const stats = (): BrokerStatsSnapshot => (this.snapshot ??= core.stats());

    const counter = (name: string, help: string, read: (s: BrokerStatsSnapshot) => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          // The core's counters only grow; a counter reports their value as it stands.
          this.reset();
          this.inc(read(stats()));
        },
      });
    };
    const gauge = (name: string, help: string, read: (s: BrokerStatsSnapshot) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read(stats()));
        },
      });
    };

    counter("ratatoskr_messages_published", "Messages stored (duplicates excluded); GetBrokerStats published", (s) => s.published);
    counter("ratatoskr_messages_delivered", "Deliveries to v2 consumers, redeliveries included; GetBrokerStats delivered", (s) => s.delivered);
    counter("ratatoskr_messages_acked", "Messages acknowledged by v2 consumers; GetBrokerStats acked", (s) => s.acked);
    counter("ratatoskr_messages_redelivered", "Deliveries after the first (lease expired or nack); GetBrokerStats redelivered", (s) => s.redelivered);
    counter("ratatoskr_messages_dead_lettered", "Messages moved to a dead-letter topic or dropped after maxDeliveries; GetBrokerStats deadLettered", (s) => s.deadLettered);
    const refusals = this.refusals;
    new Counter({
      name: "ratatoskr_refusals",
      help: "Calls and publish-stream requests refused, by gRPC status code",
      labelNames: ["code"],
      registers,
      collect() {
        this.reset();
        for (const [code, n] of refusals) this.inc({ code }, n);
      },
    });

    gauge("ratatoskr_topics", "Topics", (s) => s.topics);
    gauge("ratatoskr_subscriptions", "Named (v2) subscriptions", (s) => s.subscriptions);
    gauge("ratatoskr_consumers", "Attached v2 Consume streams", (s) => s.consumers);
    gauge("ratatoskr_v1_subscribers", "Open v1 Subscribe streams", (s) => s.v1Subscribers);
    gauge("ratatoskr_backlog_messages", "Messages not yet delivered, summed over subscriptions", (s) => s.backlog);
    gauge("ratatoskr_in_flight_messages", "Messages delivered and not yet acked (leased)", (s) => s.inFlight);
    gauge("ratatoskr_retained_messages", "Messages retained by the store over all topics", (s) => s.retainedMessages);
    gauge("ratatoskr_retained_bytes", "Bytes retained by the store over all topics", (s) => s.retainedBytes);
    gauge("ratatoskr_memory_budget_bytes", "Memory store budget for retained bytes (0 = unlimited)", (s) => s.memoryBudgetBytes);
    gauge("ratatoskr_disk_bytes", "Durable store data size (0 for memory)", (s) => s.diskBytes);
    gauge("ratatoskr_disk_budget_bytes", "Durable store budget (0 = unlimited)", (s) => s.diskBudgetBytes);
    gauge("ratatoskr_budget_bytes", "The budget in force for this storage (0 = unlimited)", (s) => s.budgetBytes);
    gauge("ratatoskr_budget_used_ratio", "Share of the budget in force in use (retained bytes, or disk bytes for durable); 0 when unlimited", (s) =>
      s.budgetBytes > 0 ? (s.storage === "durable" ? s.diskBytes : s.retainedBytes) / s.budgetBytes : 0,
    );
    gauge("ratatoskr_uptime_seconds", "Seconds since the broker core started", (s) => s.uptimeMs / 1000);
    new Gauge({
      name: "ratatoskr_build_info",
      help: "Always 1; labels name the version and storage",
      labelNames: ["version", "storage", "fsync"],
      registers,
      collect() {
        const s = stats();
        this.reset();
        this.set({ version: info.version, storage: s.storage, fsync: String(s.fsync) }, 1);
      },
    });

    this.registry.registerMetric(
      histogramMetric("ratatoskr_publish_duration_seconds", "Publish call from request to acknowledgement (validate, store, commit), per call or publish-stream request", [
        [{ api: "v1" }, this.publishV1Seconds],
        [{ api: "v2" }, this.publishV2Seconds],
      ]),
    );
    this.registry.registerMetric(
      histogramMetric("ratatoskr_delivery_lag_seconds", "Age of the oldest message of a v2 delivery frame when it is written (publish time to delivery, wall clock, ms resolution)", [[{}, this.deliveryLagSeconds]]),
    );
  }

  publishStart(): number {
    return performance.now();
  }

  publishDone(api: "v1" | "v2", startMs: number): void {
    (api === "v2" ? this.publishV2Seconds : this.publishV1Seconds).observe((performance.now() - startMs) / 1000);
  }

  delivered(publishTimeMs: number): void {
    this.deliveryLagSeconds.observe(Math.max(0, this.core.clock.nowMs() - publishTimeMs) / 1000);
  }

  refused(code: number): void {
    const name = STATUS_NAMES.get(code) ?? String(code);
    this.refusals.set(name, (this.refusals.get(name) ?? 0) + 1);
  }

  /** One scrape: a fresh snapshot of the core shared by every collector, then the text. */
  async render(): Promise<string> {
    this.snapshot = undefined;
    try {
      // prom-client writes a missing mean as "Nan"; OpenMetrics spells it NaN.
      return (await this.registry.metrics()).replace(/ Nan$/gm, " NaN");
    } finally {
      this.snapshot = undefined;
    }
  }
}

/**
 * Bucket counts of one latency series. prom-client's Histogram.observe cost microseconds per call
 * on this machine (scripts/metrics-observe-cost.ts); this is an array increment. The counts are
 * turned into a histogram family only when scraped (histogramMetric).
 */
class BucketCounts {
  /** Per bucket (not cumulative); the last one is +Inf. */
  readonly counts = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

/** A histogram family for the registry, read from bucket counts at scrape time. */
function histogramMetric(name: string, help: string, series: Array<[Record<string, string>, BucketCounts]>): Metric {
  const metric = {
    name,
    help,
    type: "histogram",
    aggregator: "sum",
    get: async () => {
      const values: MetricValueWithName<string>[] = [];
      for (const [labels, b] of series) {
        let cumulative = 0;
        for (let i = 0; i <= LATENCY_BUCKETS.length; i++) {
          cumulative += b.counts[i]!;
          values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: i < LATENCY_BUCKETS.length ? LATENCY_BUCKETS[i]! : "+Inf" }, value: cumulative });
        }
        values.push({ metricName: `${name}_sum`, labels, value: b.sum });
        values.push({ metricName: `${name}_count`, labels, value: b.count });
      }
      return { name, help, type: "histogram", aggregator: "sum", values };
    },
    reset: () => undefined,
  };
  return metric as unknown as Metric;
}

export interface MetricsServer {
  /** http://host:port/metrics */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `GET /metrics` on host:port (0 = a free port); binds only that host. */
export async function startMetricsServer(metrics: BrokerMetrics, host: string, port: number): Promise<MetricsServer> {
  const server: HttpServer = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found: the metrics are at /metrics\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end("method not allowed\n");
      return;
    }
    metrics.render().then(
      (text) => {
        res.writeHead(200, { "content-type": metrics.registry.contentType });
        res.end(req.method === "HEAD" ? undefined : text);
      },
      (err: unknown) => {
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end(`metrics failed: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const bound = typeof address === "object" && address !== null ? address.port : port;
  const hostPart = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${hostPart}:${bound}/metrics`,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
