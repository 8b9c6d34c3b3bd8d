/**
 * The shape of result.json, the one machine-readable record of a run (documented in
 * result.schema.json; built and judged in result.ts). Types only: the files that derive figures
 * from a result (fault-figures.ts, rate-held.ts) read it from here, and result.ts uses them.
 */
import type { BacklogReport, EncodedInterval, FineTimelineData, GeneratorSettings, IntervalPoint, LatencySummary, PhaseTiming, RateSearchReport, Scenario, StepFigures, StreamErrorInfo } from "../run/index.js";
import type { BrokerStatsSample, DurabilityPromise } from "../drivers/index.js";
import type { FaultAnalysis, FaultEvent } from "../faults/index.js";
import type { BrokerCost } from "./cost.js";
import type { Environment } from "./environment.js";
import type { GateResult } from "./gates.js";
import type { GeneratorBound, WorkerFigures } from "./verdict.js";

export interface BrokerInfo {
  embedded: boolean;
  target: string;
  args: string[];
  storage: "memory" | "durable";
  fsync: boolean;
  /** The client spoke TLS to the broker (absent in reports written before TLS existed). */
  tls?: "on" | "off";
  /** Where the broker CPU/RSS samples came from: "metrics <url>", "GetBrokerStats", "/proc/<pid>" or "none". */
  resourceSource?: string;
  samples: (BrokerStatsSample & { t: number })[];
  peakRssBytes: number | null;
  cpuSeconds: number | null;
  /**
   * Broker CPU-µs per delivered and per published message over the measure window (loadgen/report/cost.ts);
   * null without samples around the window, absent in results written before it existed.
   */
  cost?: BrokerCost | null;
}

export interface Counts {
  published: number;
  measuredPublished: number;
  publishErrors: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  outOfOrder: number;
  redelivered: number;
  foreign: number;
  streamErrors: number;
  /**
   * Riding through faults (docs/faults.md, "Drivers under faults"); written by every run since
   * issue 17, absent from older results. `lost` counts acknowledged messages only: what was
   * sent but never acknowledged is `unackedDelivered` (it arrived anyway) or
   * `unackedUndelivered` (it did not: not a loss), per subscription like `lost`.
   */
  unackedDelivered?: number;
  unackedUndelivered?: number;
  /** Publish batches sent again after their ack did not arrive. */
  publishRetries?: number;
  /** Consumer streams that broke and were re-opened by the driver. */
  streamBreaks?: number;
  /** Streams or connections the driver re-established (its own count; NATS: connections). */
  reconnects?: number;
  topics: number;
  subscriptions: number;
  completeSubscriptions: number;
  consumers: number;
  producers: number;
}

export interface Throughput {
  measureSeconds: number;
  deliverySeconds: number;
  /** Messages accepted per second during the measure phase. */
  publishRate: number;
  /** First deliveries per second from measure start to the last timed delivery. */
  deliveryRate: number;
  offeredRate: number | null;
  achievedRateRatio: number | null;
}

export interface RunResult {
  schemaVersion: number;
  kind: string;
  run: {
    id: string;
    scenario: string;
    driver: string;
    startedAt: string;
    durationSeconds: number;
    shard: { index: number; count: number };
    /** Number of shard results merged into this one (1 for a single run). */
    shardsMerged: number;
    /**
     * Set by `report merge --allow-partial` when shards are missing: the figures cover only the
     * shards present, and a "complete shards" gate fails. Absent (or false) when whole.
     */
    partial?: boolean;
    /** The shard indices a partial merge lacks. */
    missingShards?: number[];
    /**
     * The whole run's topology and offered rate, whatever share of it this result covers. A shard's
     * `counts` (producers, topics, subscriptions) and `throughput.offeredRate` are its own share.
     * Absent in results written before it was added.
     */
    whole?: WholeRun;
    phases: PhaseTiming[];
    drainTimedOut: boolean;
    /** Stopped by SIGINT/SIGTERM: the figures cover only part of the run and it never passes. */
    interrupted?: boolean;
  };
  scenario: Scenario;
  environment: Environment;
  broker: BrokerInfo;
  counts: Counts;
  throughput: Throughput;
  latency: { e2e: LatencySummary; e2eUncorrected: LatencySummary; publish: LatencySummary; lateness: LatencySummary };
  histograms: { e2e: string; e2eUncorrected: string; publish: string; lateness: string };
  series: IntervalPoint[];
  intervalHistograms: EncodedInterval[];
  gates: GateResult[];
  passed: boolean;
  /** What the reader must know, e.g. the broker reports other storage than the scenario asked for (absent: none). */
  warnings?: string[];
  errors: { streams: StreamErrorInfo[]; publishes: string[] };
  /** How the generator ran and what it cost (absent in results written before workers). */
  generator?: GeneratorInfo;
  /** Whether the generator, not the broker, was the limit (docs/loadgen.md, "Generator-bound verdict"). */
  generatorBound?: GeneratorBound;
  /** Fixed-rate runs: whether the run held its rate, by the rate: max step conditions (report/rate-held.ts). */
  rateHeld?: RateHeld;
  /**
   * `rate: max`: every step of the search and the rate found (docs/loadgen.md, "rate: max: the highest sustainable rate"). The
   * rest of the result (counts, latency, series, phases) is the confirmation step's, else the
   * found step's, else the lowest step's.
   */
  rateSearch?: RateSearchReport;
  /** `backlog:` scenarios: build and drain (docs/loadgen.md, "Backlog build and drain"). */
  backlog?: BacklogReport;
  /** `only:` runs: which side ran and what the counts mean (docs/loadgen.md, "Producer-only and consumer-only runs"). */
  only?: "producers" | "consumers";
  /** Acks and first deliveries per 100 ms (absent in results written before it). */
  timeline?: FineTimelineData;
  /** The faults applied during the run (absent: none). */
  faults?: FaultEvent[];
  /** Per-fault figures derived from timeline, intervalHistograms and faults (docs/faults.md, "Reading the figures"). */
  faultFigures?: FaultAnalysis;
  /** What the driver and broker settings of this run promise (the durability disclosure). */
  durability?: DurabilityPromise;
}

export interface GeneratorInfo {
  /** `single`: one event loop ran producers and consumers; `workers`: worker threads did. */
  mode: "single" | "workers";
  workers: number;
  /** Each worker's usage from measure start to the end of the drain. */
  perWorker: (WorkerFigures & { producers: number; subscriptions: number; cpuSource: "thread" | "process" })[];
  /** The generator process's own settings that shape what it measures (absent in results written before them, or merged from shards that differed). */
  settings?: GeneratorSettings;
}

export interface WholeRun {
  producers: number;
  topics: number;
  subscriptions: number;
  /** Messages per second offered by all producers of all shards; null when unthrottled. */
  offeredRate: number | null;
}

export interface ResultMeta {
  runId: string;
  driver: string;
  broker: Omit<BrokerInfo, "samples" | "peakRssBytes" | "cpuSeconds" | "cost">;
  environment: Environment;
  /** The driver's DurabilityPromise for the run's (effective) broker settings. */
  durability?: DurabilityPromise | undefined;
}

export interface RateHeld {
  /** Every condition that could be judged held. */
  held: boolean;
  /** The conditions it broke (empty when it held). */
  reasons: string[];
  /** Conditions this result cannot judge, and why (e.g. no backlog series from worker threads). */
  notJudged: string[];
  figures: StepFigures;
}
