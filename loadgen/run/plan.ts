/**
 * The run's topology, derived deterministically from the scenario so that every shard agrees:
 * topic names, which producer feeds which topic, which subscription reads which topic, and how
 * many messages each producer sends to each of its topics.
 *
 * Producer → topic: with P ≤ T producers, producer p owns the topics t with t % P = p; with
 * P > T, producer p feeds topic p % T. So each topic's producers are known in closed form, and a
 * message's (producer, topic) pair names one gap-free sequence stream.
 *
 * Sharding (`--shard i/N`) partitions by topic: shard i takes topics t % N = i with their
 * producers and subscriptions, so each shard accounts its own deliveries exactly.
 */
import type { Scenario } from "./scenario.js";
import { totalSubscriptions } from "./scenario.js";
import { UsageError } from "../errors.js";

export interface Shard {
  index: number;
  count: number;
}

export interface ProducerPlan {
  id: number;
  /** Topic indices this producer publishes to. */
  topics: number[];
  /** Measured messages per topic (same order as `topics`); undefined in duration mode. */
  messagesPerTopic: number[] | undefined;
  /**
   * Share of the producer's rate that runs in this shard: the share of its topics this shard
   * owns (1 unsharded). A producer whose topics fall in two shards runs half its rate in each,
   * so the shards together offer the scenario's rate, not more.
   */
  rateShare: number;
}

export interface SubscriptionPlan {
  /** Global subscription index (also its accounting slot key). */
  id: number;
  topic: number;
  name: string;
}

export interface Plan {
  runId: string;
  topicNames: string[];
  /** Topic indices owned by this shard (it creates them, counts them and cleans them up). */
  topics: number[];
  /**
   * Topics this part of the run creates, if not `topics`: a generator worker creates the topics
   * of its subscriptions too (creating is idempotent), so none waits for another to.
   */
  createTopics?: number[];
  producers: ProducerPlan[];
  subscriptions: SubscriptionPlan[];
  /** Producers feeding each topic: count (index by topic). */
  producersPerTopic: (topic: number) => number;
  /** Slot of producer p within topic t's producer list (0-based). */
  producerSlot: (producer: number, topic: number) => number;
  shard: Shard;
}

export function parseShard(text: string | undefined): Shard {
  if (!text) return { index: 0, count: 1 };
  const m = /^(\d+)\/(\d+)$/.exec(text);
  if (!m) throw new UsageError(`--shard expects i/N (0-based i), got "${text}"`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count) throw new UsageError(`--shard ${text}: need 0 <= i < N`);
  return { index, count };
}

export function buildPlan(s: Scenario, runId: string, shard: Shard = { index: 0, count: 1 }): Plan {
  const T = s.topics;
  const P = s.producers;
  if (shard.count > T) throw new UsageError(`--shard ${shard.index}/${shard.count}: sharding is by topic and the scenario has only ${T} topics`);
  const topicNames = Array.from({ length: T }, (_, t) => `${s.name}-${runId}-t${t}`);
  const mine = (t: number) => t % shard.count === shard.index;

  const perProducer = (p: number) =>
    s.messages === undefined ? 0 : Math.floor(s.messages / P) + (p < s.messages % P ? 1 : 0);

  const producers: ProducerPlan[] = [];
  for (let p = 0; p < P; p++) {
    const topics: number[] = [];
    if (P <= T) for (let t = p; t < T; t += P) topics.push(t);
    else topics.push(p % T);
    // A producer's topics are all in one shard or split; keep only this shard's.
    const own = topics.filter(mine);
    if (own.length === 0) continue;
    let messagesPerTopic: number[] | undefined;
    if (s.messages !== undefined) {
      const total = perProducer(p);
      const all = topics.map((_, i) => Math.floor(total / topics.length) + (i < total % topics.length ? 1 : 0));
      messagesPerTopic = own.map((t) => all[topics.indexOf(t)]!);
    }
    producers.push({ id: p, topics: own, messagesPerTopic, rateShare: own.length / topics.length });
  }

  const S = totalSubscriptions(s);
  const subscriptions: SubscriptionPlan[] = [];
  if ("perTopic" in s.subscriptions) {
    const k = s.subscriptions.perTopic;
    for (let t = 0; t < T; t++) {
      if (!mine(t)) continue;
      for (let j = 0; j < k; j++) subscriptions.push({ id: t * k + j, topic: t, name: `${topicNames[t]}-s${j}` });
    }
  } else if (S >= T) {
    for (let i = 0; i < S; i++) {
      const t = i % T;
      if (mine(t)) subscriptions.push({ id: i, topic: t, name: `${topicNames[t]}-s${Math.floor(i / T)}` });
    }
  } else {
    // Fewer subscribers than topics: subscriber k reads the topics t ≡ k (mod S), one
    // subscription per topic it covers, so that every topic is read exactly once.
    for (let t = 0; t < T; t++) {
      if (mine(t)) subscriptions.push({ id: t, topic: t, name: `${topicNames[t]}-sub${t % S}` });
    }
  }

  return {
    runId,
    topicNames,
    topics: Array.from({ length: T }, (_, t) => t).filter(mine),
    producers,
    subscriptions,
    producersPerTopic: (t) => (P <= T ? 1 : Math.floor(P / T) + (t < P % T ? 1 : 0)),
    producerSlot: (p, _t) => (P <= T ? 0 : Math.floor(p / T)),
    shard,
  };
}

/** Measured messages each topic will receive (count mode), indexed by topic. */
export function expectedPerTopic(plan: Plan, topicCount: number): Float64Array {
  const out = new Float64Array(topicCount);
  for (const p of plan.producers) {
    if (!p.messagesPerTopic) continue;
    p.topics.forEach((t, i) => (out[t] = (out[t] ?? 0) + p.messagesPerTopic![i]!));
  }
  return out;
}
