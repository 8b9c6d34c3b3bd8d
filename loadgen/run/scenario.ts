/**
 * Scenario files: YAML validated into a typed `Scenario`. Vocabulary after OpenMessaging
 * Benchmark. Unknown fields are errors; every error names the file, the field path, what was
 * expected and what was found. Which drivers exist and what each takes under `driverOptions:`
 * comes from the driver registry.
 */
import { readFileSync } from "node:fs";
import { parseDocument, parse as parseYamlScalar } from "yaml";
import { z } from "zod";
import { DEFAULT_DRIVER, DEFAULT_RECONNECT, DRIVER_NAMES, DRIVERS, movedScenarioFields, type BrokerSettings, type DriverModule, type DriverName, type ReconnectPolicy } from "../drivers/index.js";
import { ScenarioError, UsageError, type ScenarioIssue } from "../errors.js";
import { faultScheduleIssues, faultsSchema } from "../faults/index.js";

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();
const nonNegative = z.number().nonnegative();
const ratio = z.number().min(0).max(1);

const subscriptionsSchema = z.union(
  [z.strictObject({ perTopic: positiveInt }), z.strictObject({ total: positiveInt })],
  { error: "{ perTopic: n } or { total: n }" },
);

const brokerSchema: z.ZodType<BrokerSettings, unknown> = z.strictObject({
  /** `memory` (default) or `durable` (the embedded broker gets a temporary --data-dir). */
  storage: z.enum(["memory", "durable"]).default("memory"),
  /** Durable only: flush commits to disk before acknowledging a publish. */
  fsync: z.boolean().default(false),
  memoryBudgetBytes: positiveInt.optional(),
  /** Extra arguments for the embedded broker. */
  args: z.array(z.string()).default([]),
});

const sloSchema = z.strictObject({
  /** Unique deliveries / expected deliveries, 0..1. */
  deliveredRatioMin: ratio.optional(),
  lostMax: nonNegativeInt.optional(),
  duplicatesMax: nonNegativeInt.optional(),
  outOfOrderMax: nonNegativeInt.optional(),
  publishErrorsMax: nonNegativeInt.optional(),
  /** End-to-end latency from the intended send time (coordinated-omission corrected). */
  e2eP50MaxMs: nonNegative.optional(),
  e2eP99MaxMs: nonNegative.optional(),
  e2eP999MaxMs: nonNegative.optional(),
  publishP99MaxMs: nonNegative.optional(),
  /** Achieved publish rate / offered rate during the measure phase (fixed-rate scenarios). */
  achievedRateRatioMin: ratio.optional(),
  /**
   * Producer lateness p99 (intended → actual send) at most this (ms), fixed-rate scenarios: a run
   * whose sends fall further behind their schedule over its window fails, though it may still
   * publish most of the offered rate.
   */
  latenessP99MaxMs: nonNegative.optional(),
  /**
   * `true`: a fixed-rate run fails unless it held its rate by the `rate: max` step conditions
   * (rates within the tolerance; backlog, producer lag and e2e p99 bounded), judged with the
   * search's default settings: the check that confirms a found rate.
   */
  rateHeld: z.literal(true).optional(),
  /** `false`: the run fails if the generator, not the broker, was the limit (the generator-bound verdict). */
  generatorBound: z.literal(false).optional(),
  /** The longest unavailability of any fault, seconds (docs/faults.md, "Reading the figures"). */
  unavailableSecondsMax: nonNegative.optional(),
  /** The longest recovery of any fault, seconds; a fault that did not recover fails it. */
  recoverySecondsMax: nonNegative.optional(),
});

/**
 * `rate: max`: the search for the highest sustainable rate (loadgen/run/rate-search.ts;
 * docs/loadgen.md, "rate: max: the highest sustainable rate"). Every step is a fixed-rate run of `stepSeconds` after `warmupSeconds`.
 */
const searchSchema = z.strictObject({
  /** Measured seconds per step. */
  stepSeconds: z.number().min(1).default(10),
  /** Warmup before each step's measure (delivered and accounted, not timed). */
  warmupSeconds: nonNegative.default(1),
  /** Longest wait for a step's deliveries after its measure; a step that needs longer fails. */
  drainTimeoutSeconds: z.number().positive().optional(),
  /** First rate tried (messages/s over all producers). */
  startRate: z.number().positive().default(1000),
  /** Ramp factor while every step so far held (and divisor while none did). */
  growth: z.number().gt(1).default(2),
  /** No step above this rate. */
  maxRate: z.number().positive().optional(),
  /** Achieved/offered publish and delivery rates at least 1 − tolerance. */
  tolerance: z.number().gt(0).lt(1).default(0.05),
  /**
   * The queues may grow by at most this many seconds of work per second: the backlog by
   * queueGrowthMax × offered deliveries/s, the producers' lag behind their schedule (lateness p99)
   * by queueGrowthMax s/s. A rate that falls behind by 5% is not sustainable, even when 95% of it
   * arrives within a step.
   */
  queueGrowthMax: z.number().gt(0).lt(1).default(0.01),
  /** Bisection stops when (lowest failing − highest holding) / highest holding <= precision. */
  precision: z.number().gt(0).lt(1).default(0.05),
  /** Steps at most (ramp and bisection; the confirmation step is extra). */
  maxSteps: positiveInt.default(12),
  /**
   * Optional, off by default: p99 of a step's second half at most latencyGrowthMax × its first
   * half's (or under latencyFloorMs). One slow second in the second half fails it, so the default
   * judges the p99 trend as a slope (queueGrowthMax) instead.
   */
  latencyGrowthMax: z.number().gt(1).optional(),
  latencyFloorMs: nonNegative.default(20),
  /** Optional: a step whose e2e p99 exceeds this does not hold (the highest rate within a latency bound). */
  p99MaxMs: z.number().positive().optional(),
  /** Run the found rate once more as a fixed-rate step and say whether it held again. */
  confirm: z.boolean().default(true),
  /** Measured seconds of the confirmation step; default 3 × stepSeconds (a queue that builds slowly shows over a longer window). */
  confirmSeconds: z.number().min(1).optional(),
});

/** `backlog:`: hold consumers back until this much is stored, then release them (loadgen/run/backlog.ts). */
const buildRate = z.number().positive().optional();
/** `rate`: the build phase's offered rate (msg/s); absent = unthrottled, the fastest fill. */
const backlogSchema = z.union([z.strictObject({ messages: positiveInt, rate: buildRate }), z.strictObject({ bytes: positiveInt, rate: buildRate })], {
  error: "{ messages: n } or { bytes: n } (and optionally rate: msg/s for the build)",
});

const driverOptionsSchema = z.strictObject(
  Object.fromEntries(DRIVERS.map((d) => [d.name, d.options.optional()])) as Record<DriverName, z.ZodOptional<DriverModule["options"]>>,
);

export const scenarioSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_-]+$/, "a name of [A-Za-z0-9_-]"),
    description: z.string().default(""),
    /** Default driver; `--driver` overrides. The registry's names. */
    driver: z.enum(DRIVER_NAMES).default(DEFAULT_DRIVER),
    /**
     * Driver-specific settings, one block per driver name (`driverOptions: {ratatoskr: {publish:
     * unary}}`); each driver validates its own block and reads only that one.
     */
    driverOptions: driverOptionsSchema.default({}),
    topics: positiveInt,
    /**
     * Subscriptions per topic, or a total of subscribers spread round-robin over the topics
     * (the seed's tables count total subscribers). With fewer subscribers than topics, each
     * subscriber covers several topics (one subscription per topic), so every topic is read.
     */
    subscriptions: subscriptionsSchema,
    /** Competing consumers per subscription (v2); v1 has one stream per subscriber. */
    consumersPerSubscription: positiveInt.default(1),
    producers: positiveInt,
    messageSizeBytes: z.number().int().min(40).max(4 * 1024 * 1024).default(128),
    batchSize: positiveInt.default(100),
    /**
     * Fixed rate: how long a producer may hold due messages to fill a batch before sending a
     * partial one. The wait counts in e2e latency (it is measured from the intended time).
     */
    lingerMs: nonNegative.default(5),
    /**
     * Fixed rate: how producers wait for the next intended time. `timer` (default) sleeps,
     * costing about 1 ms of lateness; `spin` polls the event loop for sub-millisecond waits,
     * on time but using a core that a co-located broker competes for.
     */
    pacing: z.enum(["timer", "spin"]).default("timer"),
    /**
     * Offered rate in messages per second over all producers, `unthrottled`, or `max`: search
     * for the highest sustainable fixed rate (the `search:` block).
     */
    rate: z.union([z.literal("unthrottled"), z.literal("max"), z.number().positive()], { error: 'a positive number (messages/s), "unthrottled" or "max"' }).default("unthrottled"),
    /** `rate: max` only: how the search steps (docs/loadgen.md, "rate: max: the highest sustainable rate"). */
    search: searchSchema.optional(),
    /**
     * Build a backlog first: consumers are held back (their subscriptions exist and keep what is
     * published) until this many messages (or payload bytes) are stored, then released.
     */
    backlog: backlogSchema.optional(),
    /**
     * `producers`: publish only (subscriptions are created so a durable broker keeps the
     * backlog, no consumer is opened, nothing is accounted as delivered); `consumers`: read
     * what a producer-only run of the same scenario and --run-id left, publish nothing.
     */
    only: z.enum(["producers", "consumers"]).optional(),
    /** Measured messages (excludes warmup). Exactly one of messages / durationSeconds. */
    messages: positiveInt.optional(),
    durationSeconds: z.number().positive().optional(),
    warmupSeconds: nonNegative.default(0),
    drainTimeoutSeconds: z.number().positive().default(30),
    payload: z.enum(["random", "zeros"]).default("random"),
    /** gRPC channels (one HTTP/2 connection each) shared by all streams and publishers. */
    connections: positiveInt.default(4),
    /**
     * Generator workers (threads, each its own event loop and connections); `--workers`
     * overrides. Absent: chosen from the cores (docs/loadgen.md, "Workers"). 1 = one process,
     * one event loop.
     */
    workers: positiveInt.optional(),
    /** Consumer streams opened per second during the connect phase. */
    rampPerSecond: positiveInt.default(5000),
    /** Publish batches in flight per producer before it waits (unthrottled and fixed rate). */
    maxInFlightBatches: positiveInt.default(4),
    /** Flow control per consumer: deliveries outstanding (unacked) at once (ratatoskr v2, JetStream). */
    maxOutstandingMessages: positiveInt.default(1000),
    broker: brokerSchema.default({ storage: "memory", fsync: false, args: [] }),
    /**
     * Speak TLS. An embedded server gets a self-signed certificate generated into the run's
     * temporary directory (and nats-server a token); with --target, the broker's certificate is
     * checked against --tls-ca (default: the system's roots).
     */
    tls: z.boolean().default(false),
    /**
     * Riding through faults (docs/faults.md, "Drivers under faults"): drivers re-open broken
     * streams and retry unacknowledged publishes with backoff. `enabled` defaults to on when the
     * scenario has a `faults:` block; a broker unreachable for `giveUpSeconds` ends the run.
     */
    reconnect: z.strictObject({ enabled: z.boolean().optional(), giveUpSeconds: z.number().positive().default(30) }).default({ giveUpSeconds: 30 }),
    slo: sloSchema.default({}),
    /** Faults applied during the measure phase (docs/faults.md, "The faults block"). */
    faults: faultsSchema.default([]),
  })
  .superRefine((s, ctx) => {
    if (s.rate === "max") {
      if (s.messages !== undefined || s.durationSeconds !== undefined) {
        ctx.addIssue({ code: "custom", path: [s.messages !== undefined ? "messages" : "durationSeconds"], message: "no messages / durationSeconds with rate: max (each step lasts search.stepSeconds)" });
      }
    } else if ((s.messages === undefined) === (s.durationSeconds === undefined)) {
      ctx.addIssue({ code: "custom", path: ["messages"], message: "exactly one of messages / durationSeconds" });
      return;
    }
    for (const issue of workloadIssues(s)) ctx.addIssue({ code: "custom", ...issue });
    for (const issue of faultScheduleIssues(s.faults, s, subscriptionCount(s))) ctx.addIssue({ code: "custom", ...issue });
  });

/** Combinations of rate: max, backlog and only that mean nothing, each with the field to fix. */
function workloadIssues(s: {
  rate: number | "unthrottled" | "max";
  search?: unknown;
  backlog?: unknown;
  only?: "producers" | "consumers" | undefined;
  messages?: number | undefined;
  warmupSeconds: number;
  slo: Record<string, unknown>;
}): { path: string[]; message: string }[] {
  const out: { path: string[]; message: string }[] = [];
  if (s.search !== undefined && s.rate !== "max") out.push({ path: ["search"], message: "search: is read only with rate: max" });
  if (s.rate === "max" && s.backlog !== undefined) out.push({ path: ["backlog"], message: "no backlog with rate: max (a search step is a steady fixed-rate run)" });
  if (s.rate === "max" && s.only !== undefined) out.push({ path: ["only"], message: "no only: with rate: max (a step's verdict needs both publishing and delivery)" });
  if (s.backlog !== undefined && s.only !== undefined) out.push({ path: ["only"], message: "no only: with backlog: (a backlog run publishes, then releases its own consumers)" });
  if (s.backlog !== undefined && s.warmupSeconds > 0) out.push({ path: ["warmupSeconds"], message: "warmupSeconds 0 with backlog: (the build phase takes warmup's place)" });
  if (s.only === "consumers") {
    if (s.messages === undefined) out.push({ path: ["messages"], message: "messages: n with only: consumers (the count the producer-only run published is what is expected)" });
    if (s.warmupSeconds > 0) out.push({ path: ["warmupSeconds"], message: "warmupSeconds 0 with only: consumers (a warmup's count is not known to the consumer)" });
    if (s.rate !== "unthrottled") out.push({ path: ["rate"], message: "no rate with only: consumers (nothing is published)" });
  }
  if (s.only === "producers") {
    for (const k of PRODUCER_ONLY_REFUSED_GATES) {
      if (s.slo[k] !== undefined) out.push({ path: ["slo", k], message: `no ${k} gate with only: producers (nothing is consumed, so there is no delivery or e2e figure)` });
    }
  }
  return out;
}

/** Gates on deliveries or end-to-end latency: a producer-only run has no such figure. */
const PRODUCER_ONLY_REFUSED_GATES = ["deliveredRatioMin", "lostMax", "duplicatesMax", "outOfOrderMax", "e2eP50MaxMs", "e2eP99MaxMs", "e2eP999MaxMs"];

export type Scenario = z.output<typeof scenarioSchema>;
export type Slo = Scenario["slo"];
export type SearchSettings = z.output<typeof searchSchema>;
export type BacklogTarget = z.output<typeof backlogSchema>;

/** The search settings of a `rate: max` scenario with every default filled in. */
export function searchSettings(s: Scenario): SearchSettings {
  return s.search ?? searchSchema.parse({});
}

/**
 * The scenario as `driver` runs it: `driver` set to it (so a `--driver` override shows in
 * result.json), and its `driverOptions` block validated with defaults filled in.
 */
export function scenarioForDriver(s: Scenario, driver: DriverModule<DriverName>): Scenario {
  return { ...s, driver: driver.name, driverOptions: { ...s.driverOptions, [driver.name]: driver.options.parse(s.driverOptions[driver.name] ?? {}) } };
}

/**
 * The drivers' reconnect policy for a scenario (loadgen/drivers/reconnect.ts), or undefined when
 * drivers do not ride through faults: on when `reconnect.enabled`, or by default when the
 * scenario has faults.
 */
export function reconnectPolicyOf(s: Scenario): ReconnectPolicy | undefined {
  const enabled = s.reconnect.enabled ?? s.faults.length > 0;
  return enabled ? { ...DEFAULT_RECONNECT, giveUpMs: s.reconnect.giveUpSeconds * 1000 } : undefined;
}

/** Total subscriptions in the scenario (all shards). */
export function totalSubscriptions(s: Scenario): number {
  return "perTopic" in s.subscriptions ? s.subscriptions.perTopic * s.topics : s.subscriptions.total;
}

/** Subscriptions (one per subscriber and topic read) the run creates over all shards. */
export function subscriptionCount(s: Scenario): number {
  return "perTopic" in s.subscriptions ? s.subscriptions.perTopic * s.topics : Math.max(s.subscriptions.total, s.topics);
}

/** Read, apply `--set` overrides, validate. Throws ScenarioError. */
export function loadScenario(file: string, overrides: string[] = []): Scenario {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ScenarioError(file, [{ path: "", expected: "a readable YAML file", got: String(err) }], { cause: err });
  }
  return parseScenario(text, file, overrides);
}

export function parseScenario(text: string, file: string, overrides: string[] = []): Scenario {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ScenarioError(
      file,
      doc.errors.map((e) => ({ path: "", expected: "valid YAML", got: e.message.split("\n")[0] ?? e.code })),
    );
  }
  const raw: unknown = doc.toJS();
  for (const o of overrides) applyOverride(raw, o);
  const moved = movedFieldIssues(raw);
  const result = scenarioSchema.safeParse(withoutMovedFields(raw));
  const issues = [...moved, ...(result.success ? [] : result.error.issues.flatMap((i) => describeIssue(i, raw)))];
  if (issues.length > 0 || !result.success) throw new ScenarioError(file, issues);
  return result.data;
}

/** A top-level field that moved into a driver's options is an error naming its new place. */
function movedFieldIssues(raw: unknown): ScenarioIssue[] {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return [];
  const out: ScenarioIssue[] = [];
  for (const [from, to] of movedScenarioFields()) {
    if (!(from in raw)) continue;
    out.push({ path: from, expected: `no top-level ${from}: it moved to ${to} (write it there)`, got: describeValue((raw as Record<string, unknown>)[from]) });
  }
  return out;
}

function withoutMovedFields(raw: unknown): unknown {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return raw;
  const copy = { ...(raw as Record<string, unknown>) };
  for (const from of movedScenarioFields().keys()) delete copy[from];
  return copy;
}

/** `key.path=value`; the value is read as a YAML scalar (numbers, booleans, strings). */
export function applyOverride(raw: unknown, override: string): void {
  const eq = override.indexOf("=");
  if (eq <= 0) throw new UsageError(`--set expects key=value, got "${override}"`);
  const keys = override.slice(0, eq).split(".");
  const value: unknown = parseYamlScalar(override.slice(eq + 1));
  if (typeof raw !== "object" || raw === null) throw new UsageError(`--set ${override}: scenario is not a mapping`);
  let node = raw as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) {
    const next = node[k];
    if (typeof next !== "object" || next === null || Array.isArray(next)) node[k] = {};
    node = node[k] as Record<string, unknown>;
  }
  const last = keys[keys.length - 1]!;
  // Switching between mutually exclusive forms: setting one removes the other.
  if (keys.length === 1 && last === "messages") delete node.durationSeconds;
  if (keys.length === 1 && last === "durationSeconds") delete node.messages;
  if (keys.length === 2 && keys[0] === "subscriptions") delete node[last === "total" ? "perTopic" : "total"];
  // A fixed rate replaces rate: max, whose search: block then means nothing: confirming a found
  // rate with `--set rate=FOUND` on the search's own scenario is this
  // (docs/loadgen.md, "rate: max: the highest sustainable rate").
  if (keys.length === 1 && last === "rate" && value !== "max") delete node.search;
  node[last] = value;
}

type Issue = z.core.$ZodIssue;

function describeIssue(issue: Issue, raw: unknown, prefix: (string | number)[] = []): ScenarioIssue[] {
  const path = [...prefix, ...issue.path.map((p) => (typeof p === "symbol" ? String(p) : p))];
  const got = describeValue(valueAt(raw, path));
  const at = path.join(".");
  switch (issue.code) {
    case "unrecognized_keys":
      if (at === "driverOptions") {
        return issue.keys.map((k) => ({ path: `driverOptions.${k}`, expected: `a driver name (${DRIVER_NAMES.join(", ")})`, got: describeValue(valueAt(raw, [...path, k])) }));
      }
      return issue.keys.map((k) => ({ path: [...path, k].join("."), expected: "a known field (this one is unknown)", got: describeValue(valueAt(raw, [...path, k])) }));
    case "invalid_type":
      return [{ path: at, expected: issue.expected, got }];
    case "invalid_value":
      return [{ path: at, expected: `one of ${issue.values.map((v) => JSON.stringify(v)).join(" | ")}`, got }];
    case "too_small":
      return [{ path: at, expected: `${issue.origin === "array" ? "length" : "a value"} ${issue.inclusive ? ">=" : ">"} ${String(issue.minimum)}`, got }];
    case "too_big":
      return [{ path: at, expected: `a value ${issue.inclusive ? "<=" : "<"} ${String(issue.maximum)}`, got }];
    case "invalid_union": {
      // Report the branch that got furthest (deepest paths); if none did, list the alternatives.
      const branches = issue.errors;
      const deep = branches.filter((b) => b.every((i) => i.path.length > 0 || i.code === "unrecognized_keys"));
      if (deep.length === 1) return deep[0]!.flatMap((i) => describeIssue(i, raw, path));
      if (issue.message && issue.message !== "Invalid input") return [{ path: at, expected: issue.message, got }];
      const alts = branches.map((b) => b.map((i) => altName(i)).join(" and ")).join(", or ");
      return [{ path: at, expected: alts, got }];
    }
    default:
      return [{ path: at, expected: issue.message.replace(/^Invalid input: expected /, ""), got }];
  }
}

function altName(i: Issue): string {
  if (i.code === "invalid_value") return i.values.map((v) => JSON.stringify(v)).join(" | ");
  if (i.code === "invalid_type") return i.path.length ? `{ ${i.path.join(".")}: ${i.expected} }` : i.expected;
  if (i.code === "unrecognized_keys") return `no field ${i.keys.join(", ")}`;
  return i.message;
}

function valueAt(raw: unknown, path: (string | number)[]): unknown {
  let node = raw;
  for (const k of path) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Record<string | number, unknown>)[k];
  }
  return node;
}

function describeValue(v: unknown): string {
  if (v === undefined) return "nothing (missing)";
  if (v === null) return "null";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return `${typeof v} ${String(v)}`;
  if (Array.isArray(v)) return "a list";
  return "a mapping";
}
