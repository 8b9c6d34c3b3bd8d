/**
 * The scenario's `faults:` block: what a scenario file may say about each fault, validated into
 * `FaultSpec` (types.ts, seconds). The run-level checks (starts inside the measure phase, the
 * subscription exists) need the whole scenario and live in `faultScheduleIssues`.
 * docs/faults.md, "The faults block".
 */
import { z } from "zod";
import { CLIENT_FAULTS, NETWORK_FAULTS, PROCESS_FAULTS, type FaultKind, type FaultSpec } from "./types.js";

export const FAULT_KINDS = [...PROCESS_FAULTS, ...NETWORK_FAULTS, ...CLIENT_FAULTS] as const;

/** Faults that hold for a `duration`. */
const WITH_DURATION: readonly FaultKind[] = ["pause", "stall", "partition", "latency", "slow-consumer"];

const DURATION_TEXT = /^(\d+(?:\.\d+)?)(ms|s|m)$/;
const DURATION_EXPECTED = 'a duration: seconds as a number, or a string like "20s", "500ms", "2m"';

/** `20s`, `500ms`, `2m` or a number of seconds. */
export function durationSeconds(v: number | string): number {
  if (typeof v === "number") return v;
  const m = DURATION_TEXT.exec(v);
  if (!m) throw new Error(`${JSON.stringify(v)} is not ${DURATION_EXPECTED}`);
  const n = Number(m[1]);
  return m[2] === "ms" ? n / 1000 : m[2] === "m" ? n * 60 : n;
}

const duration = z.union([z.number().nonnegative(), z.string().regex(DURATION_TEXT)], { error: DURATION_EXPECTED }).transform(durationSeconds);
const positiveDuration = duration.refine((s) => s > 0, { message: "a duration > 0" });
/** Milliseconds: a number, or a duration string. */
const millis = z.union([z.number().nonnegative(), z.string().regex(DURATION_TEXT)], { error: 'milliseconds as a number, or a string like "50ms"' }).transform((v) => (typeof v === "number" ? v : durationSeconds(v) * 1000));

export const faultEntrySchema = z
  .strictObject({
    kind: z.enum(FAULT_KINDS),
    /** First start, after the measure phase starts. Default with `every`: one period in. */
    at: duration.optional(),
    /** Repeat period. */
    every: positiveDuration.optional(),
    /** How long the fault holds (pause, stall, partition, latency, slow-consumer). */
    duration: positiveDuration.optional(),
    /** kill: how long the broker stays down before it is restarted. */
    downFor: duration.optional(),
    /** latency: the delay added to each direction. */
    delay: millis.optional(),
    /** slow-consumer: the subscription's index in the plan (default 0). */
    subscription: z.number().int().nonnegative().optional(),
  })
  .superRefine((f, ctx) => {
    const refuse = (field: string, why: string) => ctx.addIssue({ code: "custom", path: [field], message: `no ${field} for ${f.kind} (${why})` });
    const need = (field: string, why: string) => ctx.addIssue({ code: "custom", path: [field], message: `${field} for ${f.kind} (${why})` });
    if (f.at === undefined && f.every === undefined) need("at", "when it starts: at, every, or both");
    if (WITH_DURATION.includes(f.kind)) {
      if (f.duration === undefined) need("duration", "how long it holds");
    } else if (f.duration !== undefined) {
      refuse("duration", f.kind === "cut" ? "a cut is instantaneous" : f.kind === "kill" ? "the broker stays down for downFor" : "it lasts until the broker is back");
    }
    if (f.kind === "kill") {
      if (f.downFor === undefined) need("downFor", "how long the broker stays down before its restart");
    } else if (f.downFor !== undefined) refuse("downFor", "only kill takes downFor");
    if (f.kind === "latency") {
      if (f.delay === undefined) need("delay", "the delay added to each direction, ms");
    } else if (f.delay !== undefined) refuse("delay", "only latency takes delay");
    if (f.kind !== "slow-consumer" && f.subscription !== undefined) refuse("subscription", "only slow-consumer takes subscription");
    if (f.every !== undefined) {
      const holds = (f.duration ?? 0) + (f.downFor ?? 0);
      if (holds >= f.every) ctx.addIssue({ code: "custom", path: ["every"], message: `a period longer than the fault holds (${holds} s), so occurrences do not overlap` });
    }
  })
  .transform((f): FaultSpec => {
    const spec: FaultSpec = { kind: f.kind, atSeconds: f.at ?? f.every ?? 0 };
    if (f.every !== undefined) spec.everySeconds = f.every;
    if (f.duration !== undefined) spec.durationSeconds = f.duration;
    if (f.downFor !== undefined) spec.downForSeconds = f.downFor;
    if (f.delay !== undefined) spec.delayMs = f.delay;
    if (f.kind === "slow-consumer") spec.subscription = f.subscription ?? 0;
    return spec;
  });

export const faultsSchema = z.array(faultEntrySchema);

/** The measure phase's length as a scenario fixes it, or why it does not. */
export function plannedMeasureSeconds(s: { durationSeconds?: number | undefined; messages?: number | undefined; rate: number | "unthrottled" }): number | string {
  if (s.durationSeconds !== undefined) return s.durationSeconds;
  if (s.messages !== undefined && s.rate !== "unthrottled") return s.messages / s.rate;
  return "faults need a measure phase of known length: durationSeconds, or messages at a fixed rate";
}

/** Start times (seconds after measure start) of every occurrence of `spec` inside `measureSeconds`. */
export function occurrenceStarts(spec: FaultSpec, measureSeconds: number): number[] {
  if (spec.everySeconds === undefined) return spec.atSeconds < measureSeconds ? [spec.atSeconds] : [];
  const out: number[] = [];
  for (let t = spec.atSeconds; t < measureSeconds; t += spec.everySeconds) out.push(t);
  return out;
}

/** Problems of a scenario's faults against the rest of it: (path, message) pairs. */
export function faultScheduleIssues(faults: readonly FaultSpec[], s: { durationSeconds?: number | undefined; messages?: number | undefined; rate: number | "unthrottled" }, subscriptions: number): Array<{ path: (string | number)[]; message: string }> {
  if (faults.length === 0) return [];
  const measure = plannedMeasureSeconds(s);
  if (typeof measure === "string") return [{ path: ["faults"], message: measure }];
  const out: Array<{ path: (string | number)[]; message: string }> = [];
  faults.forEach((f, i) => {
    if (f.atSeconds >= measure) out.push({ path: ["faults", i, f.everySeconds !== undefined && f.atSeconds === f.everySeconds ? "every" : "at"], message: `a start inside the measure phase (0 to ${measure} s; it starts after ${f.atSeconds} s)` });
    if (f.subscription !== undefined && f.subscription >= subscriptions) out.push({ path: ["faults", i, "subscription"], message: `a subscription index below ${subscriptions} (the plan's subscriptions)` });
  });
  return out;
}
