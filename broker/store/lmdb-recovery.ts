import type { Database, RootDatabase } from "lmdb";
import { messageBytes, type AckState, type SubscriptionRecord, type TopicRecord } from "./records.js";
import { CorruptRecordError, decodeMessage, messageKey, readMessageKey } from "./lmdb-codec.js";
import type { DedupRecord } from "./store.js";

/** The store format this code writes; a directory with another version is refused. */
export const FORMAT_VERSION = 1;

/** The named databases of one LMDB environment (one data file). */
export interface LmdbDbs {
  root: RootDatabase;
  /** "format" → {version}, "nextTopicId" → number. */
  meta: Database<unknown, string>;
  topics: Database<TopicRow, string>;
  /** topic id → first retained sequence (what retention has dropped survives an empty log). */
  marks: Database<number, number>;
  /** messageKey(topic id, sequence) → encodeMessage(...). */
  messages: Database<Buffer, Buffer>;
  subscriptions: Database<SubscriptionRecord, string>;
  acks: Database<AckState, string>;
  /** messageKey(topic id, sequence) → [id, publishTimeMs]: producer ids of dropped messages, kept for the window. */
  dedup: Database<[string, number], Buffer>;
}

export interface TopicRow {
  id: number;
  record: TopicRecord;
}

/** In-memory state of one topic's log, rebuilt at open. */
export interface TopicState {
  readonly id: number;
  record: TopicRecord;
  /** Committed bounds: first retained, last stored (empty: first = last + 1). */
  first: number;
  last: number;
  bytes: number;
  /** Publish time of the newest committed message (the de-duplication window's "now"). */
  newestPublishMs: number;
  /** Last sequence handed to LMDB (committed or not). */
  queuedLast: number;
  /** Settles once every write queued for this topic has settled. */
  tail: Promise<unknown>;
  deleted: boolean;
}

export interface LoadedState {
  topics: Map<string, TopicState>;
  subscriptions: Map<string, { record: SubscriptionRecord; acks: AckState }>;
  dedup: DedupRecord[];
  nextTopicId: number;
  /** Rows to delete: remains of deleted topics, messages below a retention mark, orphan acks. */
  garbage: { messages: Buffer[]; dedup: Buffer[]; acks: string[] };
}

/** Thrown when the format record says another version; the caller turns it into StoreOpenError. */
export class FormatVersionError extends Error {
  override readonly name = "FormatVersionError";
}

/** Checks (or, for a new store, writes) the format record. */
export function checkFormat(dbs: LmdbDbs): void {
  const format = dbs.meta.get("format") as { version?: unknown } | undefined;
  if (format === undefined) {
    const empty = dbs.topics.getKeysCount() === 0 && dbs.subscriptions.getKeysCount() === 0 && dbs.messages.getKeysCount() === 0;
    if (!empty) throw new FormatVersionError("the data file has no Ratatoskr format record (not written by Ratatoskr, or damaged)");
    dbs.meta.putSync("format", { version: FORMAT_VERSION });
    return;
  }
  if (format.version !== FORMAT_VERSION) {
    throw new FormatVersionError(`it holds store format version ${String(format.version)}; this broker reads version ${FORMAT_VERSION}`);
  }
}

/** Reads everything back: topics with their bounds and byte counts, subscriptions, ack state, de-duplication ids. */
export function loadState(dbs: LmdbDbs): LoadedState {
  const state: LoadedState = {
    topics: new Map(),
    subscriptions: new Map(),
    dedup: [],
    nextTopicId: Number(dbs.meta.get("nextTopicId") ?? 1),
    garbage: { messages: [], dedup: [], acks: [] },
  };
  const byId = new Map<number, TopicState>();
  for (const { key, value } of dbs.topics.getRange()) {
    if (!value || typeof value.id !== "number" || !value.record) throw new CorruptRecordError(`topic ${key}: malformed record`);
    const first = dbs.marks.get(value.id) ?? 1;
    const t: TopicState = {
      id: value.id,
      record: value.record,
      first,
      last: first - 1,
      bytes: 0,
      newestPublishMs: 0,
      queuedLast: first - 1,
      tail: Promise.resolve(),
      deleted: false,
    };
    state.topics.set(key, t);
    byId.set(t.id, t);
    state.nextTopicId = Math.max(state.nextTopicId, t.id + 1);
  }

  // One pass over every message: bounds, bytes, producer ids, and rows nothing owns.
  const retainedIds = new Map<TopicState, DedupRecord[]>();
  let current: TopicState | undefined;
  for (const { key, value } of dbs.messages.getRange()) {
    const { topicId, sequence } = readMessageKey(key);
    const t = byId.get(topicId);
    if (!t || sequence < t.first) {
      state.garbage.messages.push(Buffer.from(key));
      continue;
    }
    if (current !== t) {
      current = t;
      t.first = sequence;
    } else if (sequence !== t.last + 1) {
      throw new CorruptRecordError(`topic ${t.record.name}: message ${t.last + 1} is missing before ${sequence}`);
    }
    const m = decodeMessage(t.record.name, sequence, value);
    t.last = sequence;
    t.queuedLast = sequence;
    t.bytes += messageBytes(m);
    t.newestPublishMs = m.publishTimeMs;
    if (m.producerId) {
      let list = retainedIds.get(t);
      if (!list) retainedIds.set(t, (list = []));
      list.push({ topic: t.record.name, id: m.id, sequence, publishTimeMs: m.publishTimeMs });
    }
  }

  // Producer ids: dropped messages' ids (kept by truncation) then retained ones, inside the window.
  const dropped = new Map<TopicState, DedupRecord[]>();
  for (const { key, value } of dbs.dedup.getRange()) {
    const { topicId, sequence } = readMessageKey(key);
    const t = byId.get(topicId);
    if (!t || !Array.isArray(value)) {
      state.garbage.dedup.push(Buffer.from(key));
      continue;
    }
    let list = dropped.get(t);
    if (!list) dropped.set(t, (list = []));
    list.push({ topic: t.record.name, id: value[0], sequence, publishTimeMs: value[1] });
  }
  for (const t of state.topics.values()) {
    for (const d of dropped.get(t) ?? []) t.newestPublishMs = Math.max(t.newestPublishMs, d.publishTimeMs);
    const since = t.newestPublishMs - t.record.config.dedupWindowMs;
    for (const d of [...(dropped.get(t) ?? []), ...(retainedIds.get(t) ?? [])]) {
      if (d.publishTimeMs >= since) state.dedup.push(d);
    }
  }

  for (const { key, value } of dbs.subscriptions.getRange()) {
    const acks = dbs.acks.get(key) ?? { floor: value.startSequence - 1, above: [] };
    state.subscriptions.set(key, { record: value, acks: { floor: acks.floor, above: [...acks.above] } });
  }
  for (const key of dbs.acks.getKeys()) {
    if (!state.subscriptions.has(key)) state.garbage.acks.push(key);
  }
  return state;
}

/** Key of the first message at or after `sequence` in a topic (for range scans). */
export function keyAt(t: TopicState, sequence: number): Buffer {
  return messageKey(t.id, sequence);
}
