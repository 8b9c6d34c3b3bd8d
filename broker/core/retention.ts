import type { Store } from "../store/index.js";
import type { Clock } from "./clock.js";
import type { Topic } from "./topic.js";
import { messageBytes } from "./types.js";

/**
 * Retention, in one place (docs/design.md, "Retention"): every reason a topic may drop
 * messages arrives here as a named trigger, and one function decides what to drop.
 *
 * - `committed`: a batch was committed and fanned out (limits: max messages / bytes).
 * - `interestChanged`: a subscription's ack floor moved, or a subscription went away.
 * - `sweep`: the core's periodic sweep (limits: max age, which advances with the clock alone).
 *
 * Under `interest` a message is dropped once every subscription has acked it (with no
 * subscriptions, once it was fanned out to the live v1 subscribers); under `limits` the oldest
 * messages past the limits are dropped, counted in `discarded` when a subscription had not acked
 * them yet. Nothing not yet committed is ever dropped.
 */
export class Retention {
  constructor(
    private readonly store: Pick<Store, "bounds" | "get" | "sequenceAtTime" | "truncateBefore">,
    private readonly clock: Clock,
  ) {}

  committed(topic: Topic): void {
    this.apply(topic);
  }

  interestChanged(topic: Topic): void {
    this.apply(topic);
  }

  /** Age-based retention on every topic that has a max age. */
  sweep(topics: Iterable<Topic>): void {
    for (const topic of topics) {
      if (topic.config.retention === "limits" && topic.config.maxAgeMs > 0) this.apply(topic);
    }
  }

  private apply(topic: Topic): void {
    if (topic.deleted) return;
    const { first, last } = this.store.bounds(topic.name);
    if (last < first) return;
    let cut = first; // drop every sequence < cut
    const config = topic.config;
    if (config.retention === "interest") {
      cut = Math.max(cut, topic.interestFloor() + 1);
    } else {
      if (config.maxMessages > 0) cut = Math.max(cut, last - config.maxMessages + 1);
      if (config.maxAgeMs > 0) {
        cut = Math.max(cut, this.store.sequenceAtTime(topic.name, this.clock.nowMs() - config.maxAgeMs));
      }
      if (config.maxBytes > 0) cut = Math.max(cut, this.cutForBytes(topic.name, cut, last, config.maxBytes));
      cut = Math.min(cut, topic.lastCommitted + 1);
      // Count what is dropped before every subscription had acked it.
      if (topic.subscribers.size > 0) topic.discarded += Math.max(0, cut - 1 - Math.max(topic.interestFloor(), first - 1));
    }
    cut = Math.min(cut, topic.lastCommitted + 1);
    if (cut > first) this.store.truncateBefore(topic.name, cut);
  }

  private cutForBytes(topic: string, from: number, last: number, maxBytes: number): number {
    // Walk back from the newest until the budget is used up.
    let bytes = 0;
    for (let seq = last; seq >= from; seq--) {
      const m = this.store.get(topic, seq);
      if (!m) continue;
      bytes += messageBytes(m);
      if (bytes > maxBytes) return seq + 1;
    }
    return from;
  }
}
