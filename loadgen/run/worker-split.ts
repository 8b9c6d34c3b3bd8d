/**
 * How a run's plan (one shard's, or the whole run's) is split over generator workers
 * (docs/loadgen.md, "Workers"). The point is that publishing and consuming run on separate
 * event loops: with two or more workers, producers go to producer workers and subscriptions to
 * consumer workers; within a role, producers and subscriptions are dealt round-robin.
 *
 * Consumer workers get the larger share when a publish fans out to several subscriptions:
 * consumers = round(W × f / (1 + f)) with f = subscriptions per topic, at least 1 and at most
 * W − 1, then each role is capped at what it has to run (no worker without work).
 *
 * Accounting stays exact because it is per subscription: a subscription's deliveries all reach
 * one worker; the topic's published counts come from the producer workers at each phase join.
 * A topic is counted and cleaned up by the worker holding its first subscription; every worker
 * creates the topics of its subscriptions (creating is idempotent).
 */
import type { Plan } from "./plan.js";

export type WorkerRole = "producer" | "consumer" | "both";

export interface WorkerPart {
  index: number;
  role: WorkerRole;
  /** Ids of the plan's producers this worker runs (ProducerPlan.id). */
  producerIds: number[];
  /** Ids of the plan's subscriptions this worker consumes (SubscriptionPlan.id). */
  subscriptionIds: number[];
  /** Topics this worker creates and cleans up. */
  topics: number[];
}

/** Split `plan` over at most `workers` workers; fewer when the plan has less to run. */
export function splitPlan(plan: Pick<Plan, "producers" | "subscriptions" | "topics">, workers: number): WorkerPart[] {
  const P = plan.producers.length;
  const S = plan.subscriptions.length;
  if (workers <= 1 || P === 0 || S === 0 || P + S < 2) {
    return [{ index: 0, role: "both", producerIds: plan.producers.map((p) => p.id), subscriptionIds: plan.subscriptions.map((s) => s.id), topics: [...plan.topics] }];
  }
  const fanOut = S / Math.max(1, plan.topics.length);
  let wc = Math.min(workers - 1, Math.max(1, Math.round((workers * fanOut) / (1 + fanOut))), S);
  const wp = Math.min(workers - wc, P);
  wc = Math.min(S, workers - wp);
  const parts: WorkerPart[] = [];
  for (let i = 0; i < wp; i++) parts.push({ index: i, role: "producer", producerIds: [], subscriptionIds: [], topics: [] });
  for (let i = 0; i < wc; i++) parts.push({ index: wp + i, role: "consumer", producerIds: [], subscriptionIds: [], topics: [] });
  plan.producers.forEach((p, k) => parts[k % wp]!.producerIds.push(p.id));
  const owner = new Map<number, WorkerPart>();
  plan.subscriptions.forEach((s, k) => {
    const part = parts[wp + (k % wc)]!;
    part.subscriptionIds.push(s.id);
    if (!owner.has(s.topic)) owner.set(s.topic, part);
  });
  for (const t of plan.topics) (owner.get(t) ?? parts[0]!).topics.push(t);
  return parts;
}

/** The plan one worker runs: its producers, subscriptions and topics (slots renumbered by position). */
export function partPlan(plan: Plan, part: WorkerPart): Plan {
  const producers = new Set(part.producerIds);
  const subscriptions = new Set(part.subscriptionIds);
  const ownTopics = new Set(part.topics);
  const subscribed = plan.subscriptions.filter((s) => subscriptions.has(s.id)).map((s) => s.topic);
  return {
    ...plan,
    topics: [...part.topics],
    createTopics: [...new Set([...part.topics, ...subscribed])].filter((t) => ownTopics.has(t) || subscribed.includes(t)),
    producers: plan.producers.filter((p) => producers.has(p.id)),
    subscriptions: plan.subscriptions.filter((s) => subscriptions.has(s.id)),
  };
}
