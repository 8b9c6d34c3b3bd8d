import { open } from "lmdb";
import { statfsSync, statSync } from "node:fs";
import { join } from "node:path";
import { StoreUnavailableError, StoreWriteError } from "./store-errors.js";
import { messageBytes, type AckState, type StoredMessage, type SubscriptionRecord, type TopicRecord } from "./records.js";
import { prepareDataDir, type DirLock } from "./data-dir.js";
import { CorruptRecordError, decodeMessage, encodeMessage, messageKey, readMessageKey, readPublishTime, topicKeyRange } from "./lmdb-codec.js";
import { checkFormat, FormatVersionError, keyAt, loadState, type LmdbDbs, type LoadedState, type TopicState } from "./lmdb-recovery.js";
import type { DiskSpace, LogBounds, RecoveredState, Store } from "./store.js";
import { StoreOpenError } from "./store-errors.js";
import { TailCache } from "./tail-cache.js";

export interface LmdbStoreOptions {
  /** Directory for the data file, LMDB's lock file and the broker lock file; created if missing. */
  dataDir: string;
  /**
   * true: a write resolves only once its commit is flushed to the disk (survives power loss).
   * false: it resolves once committed to the OS (survives a process crash); LMDB flushes behind.
   */
  fsync: boolean;
  /** Ack states are coalesced and written at most this often per subscription. Default 5 ms. */
  ackFlushIntervalMs?: number;
  /** fsync off: how often the data file is flushed in the background. Default 1000 ms. */
  backgroundSyncMs?: number;
  /** Bytes of the newest messages kept in memory for delivery and retention (TailCache). Default 64 MiB; 0 = none. */
  tailCacheBytes?: number;
  /**
   * A write failed (disk full, I/O error; `error` set) or, after one, writes work again
   * (`error` undefined). Called once per episode, not once per refused write.
   */
  onWriteFailure?: (error: Error | undefined) => void;
  /** After a failed write, how long before the store tries to clean up and accept writes again. Default 1000 ms. */
  recoveryRetryMs?: number;
}

type Commit = Promise<boolean> & { flushed?: Promise<unknown> };

/** mdb_env_sync(force) on lmdb-js's worker thread (the method exists, its typings lack it). */
function syncToDisk(root: LmdbDbs["root"]): Promise<void> {
  const env = root as unknown as { sync(callback: (error?: unknown) => void): void };
  return new Promise((resolve, reject) => env.sync((error) => (error ? reject(error instanceof Error ? error : new Error("LMDB sync failed", { cause: error })) : resolve())));
}

/**
 * The durable store on LMDB (lmdb-js). One environment holds named databases for topics,
 * messages, retention marks, subscriptions, ack state and dropped producer ids.
 *
 * Writes go through lmdb-js's asynchronous batching: every put issued in one event turn lands
 * in one transaction (group commit), committed on lmdb-js's writer thread. With overlapping
 * sync, the flush of one commit overlaps the next transaction; `fsync` decides whether a
 * write waits for its flush. Reads are synchronous LMDB gets against committed data, bounded
 * by the in-memory per-topic bounds, which move only once a commit resolves.
 */
export class LmdbStore implements Store {
  readonly kind = "durable" as const;
  private readonly topics: Map<string, TopicState>;
  private readonly subscriptions: Map<string, { record: SubscriptionRecord; acks: AckState }>;
  private readonly dedup: RecoveredState["dedup"];
  private nextTopicId: number;
  private readonly pendingAcks = new Map<string, AckState>();
  private ackTimer: NodeJS.Timeout | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private readonly ackFlushIntervalMs: number;
  /** Every write not yet settled, so close() can wait for them. */
  private readonly inflight = new Set<Promise<unknown>>();
  /** Set by a failed write; the store refuses writes until recover() has realigned it with the disk. */
  private failure: Error | undefined;
  /** Counts failed-write episodes: a batch queued in an earlier one is refused even if its own commit landed. */
  private epoch = 0;
  private recoveryTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private readonly cache: TailCache;

  get fsync(): boolean {
    return this.options.fsync;
  }

  private constructor(
    private readonly dbs: LmdbDbs,
    private readonly lock: DirLock,
    private readonly options: LmdbStoreOptions,
    loaded: LoadedState,
  ) {
    this.topics = loaded.topics;
    this.subscriptions = loaded.subscriptions;
    this.dedup = loaded.dedup;
    this.nextTopicId = loaded.nextTopicId;
    this.ackFlushIntervalMs = options.ackFlushIntervalMs ?? 5;
    this.cache = new TailCache(options.tailCacheBytes ?? 64 * 1024 * 1024);
    if (!options.fsync) {
      this.syncTimer = setInterval(() => void syncToDisk(dbs.root).catch(() => undefined), options.backgroundSyncMs ?? 1_000);
      this.syncTimer.unref();
    }
  }

  /**
   * Opens (or creates) the store in `options.dataDir` and reads back its state.
   * Throws StoreOpenError when the directory cannot be used: not a directory or not an LMDB
   * file ("corrupt"), another format version ("version"), no permission, held by another
   * live process ("locked").
   */
  static async open(options: LmdbStoreOptions): Promise<LmdbStore> {
    const dir = options.dataDir;
    const lock = prepareDataDir(dir);
    let root: LmdbDbs["root"] | undefined;
    try {
      // fsync on: overlapping sync, and each write waits for its commit's flush.
      // fsync off: LMDB never flushes in the commit path (a commit is done once written to the
      // OS); a background sync every `backgroundSyncMs` bounds what a power loss can take.
      // noSubdir: false always: lmdb-js would otherwise take a path with a dot in its last
      // part (e.g. /var/lib/ratatoskr.d) for a file name.
      const common = { path: dir, noSubdir: false, maxDbs: 12, pageSize: 4096 };
      root = open(options.fsync ? { ...common, overlappingSync: true, separateFlushed: true } : { ...common, noSync: true });
      const dbs: LmdbDbs = {
        root,
        meta: root.openDB("meta", { encoding: "json" }),
        topics: root.openDB("topics", { encoding: "json" }),
        marks: root.openDB("marks", { encoding: "json" }),
        messages: root.openDB("messages", { encoding: "binary", keyEncoding: "binary" }),
        subscriptions: root.openDB("subscriptions", { encoding: "json" }),
        acks: root.openDB("acks", { encoding: "json" }),
        dedup: root.openDB("dedup", { encoding: "json", keyEncoding: "binary" }),
      };
      checkFormat(dbs);
      const loaded = loadState(dbs);
      const store = new LmdbStore(dbs, lock, options, loaded);
      await store.collectGarbage(loaded.garbage);
      return store;
    } catch (err) {
      await root?.close().catch(() => undefined);
      lock.release();
      if (err instanceof StoreOpenError) throw err;
      if (err instanceof FormatVersionError) throw new StoreOpenError(dir, "version", err.message, { cause: err });
      if (err instanceof CorruptRecordError) throw new StoreOpenError(dir, "corrupt", `damaged data: ${err.message}`, { cause: err });
      const detail = err instanceof Error ? err.message : String(err);
      throw new StoreOpenError(dir, "io", `LMDB could not open it: ${detail}`, { cause: err });
    }
  }

  recover(): RecoveredState {
    return {
      topics: [...this.topics.values()].map((t) => t.record),
      subscriptions: [...this.subscriptions.values()].map((s) => ({ record: s.record, acks: { floor: s.acks.floor, above: [...s.acks.above] } })),
      dedup: this.dedup,
    };
  }

  // ------------------------------------------------------------------ topics

  async putTopic(topic: TopicRecord): Promise<void> {
    this.ensureWritable();
    let t = this.topics.get(topic.name);
    if (t) {
      t.record = topic;
    } else {
      // Ids are never reused, so rows of a deleted topic can never surface under a new one.
      const id = this.nextTopicId++;
      t = { id, record: topic, first: 1, last: 0, bytes: 0, newestPublishMs: 0, queuedLast: 0, tail: Promise.resolve(), deleted: false };
      this.topics.set(topic.name, t);
      void this.track(this.dbs.meta.put("nextTopicId", this.nextTopicId));
    }
    const write = this.track(this.dbs.topics.put(topic.name, { id: t.id, record: topic }));
    t.tail = write.catch(() => undefined);
    try {
      await this.durable(write);
    } catch (err) {
      // A topic whose record is not on the disk must not take messages: they would be garbage
      // after a restart. (An update of an existing topic keeps its old record on the disk.)
      if (this.topics.get(topic.name) === t && t.last === 0 && t.queuedLast === 0) {
        this.topics.delete(topic.name);
        t.deleted = true;
      }
      throw this.writeError(err);
    }
  }

  async deleteTopic(name: string): Promise<void> {
    const t = this.topics.get(name);
    if (!t) return;
    this.topics.delete(name);
    t.deleted = true;
    this.cache.dropTopic(t.id);
    await t.tail; // appends already queued must land first, so their rows are removed too
    this.ensureWritable();
    const { start, end } = topicKeyRange(t.id);
    const { root, topics, messages, marks, dedup } = this.dbs;
    const write = this.track(
      root.transaction(() => {
        // Collected first: removing while a cursor walks the same range would disturb it.
        const messageKeys = [...messages.getKeys({ start, end })].map((k) => Buffer.from(k));
        const dedupKeys = [...dedup.getKeys({ start, end })].map((k) => Buffer.from(k));
        for (const key of messageKeys) void messages.remove(key);
        for (const key of dedupKeys) void dedup.remove(key);
        void marks.remove(t.id);
        // A topic of the same name created meanwhile has another id: leave its row alone.
        if (topics.get(name)?.id === t.id) void topics.remove(name);
      }),
    );
    await this.durable(write);
  }

  // ------------------------------------------------------------------ the log

  async append(topic: string, messages: readonly StoredMessage[]): Promise<void> {
    this.ensureWritable();
    const t = this.requireTopic(topic);
    if (messages.length === 0) return;
    // Encode everything before the first put, so a bad message cannot leave half a batch queued.
    const values = new Array<Buffer>(messages.length);
    let bytes = 0;
    const sizes = new Array<number>(messages.length);
    let expected = t.queuedLast + 1;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      if (m.sequence !== expected) throw new Error(`append out of order: got sequence ${m.sequence}, expected ${expected}`);
      expected++;
      values[i] = encodeMessage(m);
      sizes[i] = messageBytes(m);
      bytes += sizes[i]!;
    }
    // Readable only once committed: get() is bounded by t.last, which moves after the commit.
    for (let i = 0; i < messages.length; i++) this.cache.add(t.id, messages[i]!, sizes[i]!);
    let write: Commit | undefined;
    const writes = new Set<Promise<unknown>>();
    for (let i = 0; i < messages.length; i++) writes.add((write = this.dbs.messages.put(messageKey(t.id, messages[i]!.sequence), values[i]!)));
    this.trackAll(writes); // a batch can straddle two transactions; the last commit resolves last
    t.queuedLast = expected - 1;
    const last = messages[messages.length - 1]!;
    const epoch = this.epoch;
    const done = write!.then(async () => {
      if (this.options.fsync) await write!.flushed;
      // A write queued before this one failed: this batch may follow a hole in the log, so it is
      // refused too, and recover() removes its rows.
      if (this.epoch !== epoch) throw this.writeError(this.failure);
      if (t.deleted) return;
      t.last = Math.max(t.last, last.sequence);
      t.bytes += bytes;
      t.newestPublishMs = Math.max(t.newestPublishMs, last.publishTimeMs);
    });
    t.tail = done.catch(() => undefined);
    try {
      await done;
    } catch (err) {
      throw this.writeError(err);
    }
  }

  get(topic: string, sequence: number): StoredMessage | undefined {
    const t = this.topics.get(topic);
    if (!t || sequence < t.first || sequence > t.last) return undefined;
    const cached = this.cache.get(t.id, sequence);
    if (cached) return cached;
    const value = this.dbs.messages.get(messageKey(t.id, sequence));
    return value === undefined ? undefined : decodeMessage(topic, sequence, value);
  }

  bounds(topic: string): LogBounds {
    const t = this.requireTopic(topic);
    return { first: t.first, last: t.last, bytes: t.bytes };
  }

  sequenceAtTime(topic: string, timestampMs: number): number {
    const t = this.requireTopic(topic);
    // Publish times never decrease along the log: binary search on the stored headers.
    let lo = t.first;
    let hi = t.last + 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const value = this.dbs.messages.get(messageKey(t.id, mid));
      if (value !== undefined && readPublishTime(value) >= timestampMs) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  truncateBefore(topic: string, sequence: number): void {
    const t = this.topics.get(topic);
    if (!t || this.failure) return;
    const stop = Math.min(sequence, t.last + 1);
    if (stop <= t.first) return;
    const { messages, dedup, marks } = this.dbs;
    const keepIdsSince = t.newestPublishMs - t.record.config.dedupWindowMs;
    // One event turn, so one transaction. The mark goes first all the same: were the writes ever
    // split, a committed prefix must never lose the log's position (rows left below a mark are
    // deleted by recovery).
    const writes = new Set<Promise<unknown>>([marks.put(t.id, stop)]);
    const dropped = (m: StoredMessage, bytes: number): void => {
      t.bytes -= bytes;
      if (m.producerId && m.publishTimeMs >= keepIdsSince) writes.add(dedup.put(keyAt(t, m.sequence), [m.id, m.publishTimeMs]));
    };
    // The cache holds the newest run of the log: what lies below it is read from LMDB.
    const readEnd = Math.min(stop, Math.max(t.first, this.cache.lowest(t.id) ?? stop));
    for (const { key, value } of messages.getRange({ start: keyAt(t, t.first), end: keyAt(t, readEnd) })) {
      const m = decodeMessage(topic, readMessageKey(key).sequence, value);
      writes.add(messages.remove(Buffer.from(key)));
      dropped(m, messageBytes(m));
    }
    for (let sequence = readEnd; sequence < stop; sequence++) {
      const entry = this.cache.take(t.id, sequence);
      const key = messageKey(t.id, sequence);
      if (entry) {
        writes.add(messages.remove(key));
        dropped(entry.message, entry.bytes);
        continue;
      }
      const value = messages.get(key);
      if (value === undefined) continue;
      const m = decodeMessage(topic, sequence, value);
      writes.add(messages.remove(key));
      dropped(m, messageBytes(m));
    }
    // Producer ids that fell out of the window are no longer needed.
    for (const { key, value } of dedup.getRange({ start: keyAt(t, 0), end: keyAt(t, stop) })) {
      if (value[1] >= keepIdsSince) break;
      writes.add(dedup.remove(Buffer.from(key)));
    }
    t.first = stop;
    this.trackAll(writes);
  }

  // ------------------------------------------------------------------ subscriptions

  async putSubscription(subscription: SubscriptionRecord): Promise<void> {
    this.ensureWritable();
    const existing = this.subscriptions.get(subscription.name);
    const acks = existing?.acks ?? { floor: subscription.startSequence - 1, above: [] };
    this.subscriptions.set(subscription.name, { record: subscription, acks });
    if (!existing) void this.track(this.dbs.acks.put(subscription.name, acks));
    await this.durable(this.track(this.dbs.subscriptions.put(subscription.name, subscription)));
  }

  async deleteSubscription(name: string): Promise<void> {
    this.ensureWritable();
    this.subscriptions.delete(name);
    this.pendingAcks.delete(name);
    void this.track(this.dbs.acks.remove(name));
    await this.durable(this.track(this.dbs.subscriptions.remove(name)));
  }

  putAckState(subscription: string, state: AckState): void {
    const s = this.subscriptions.get(subscription);
    if (!s) return;
    s.acks = state;
    this.pendingAcks.set(subscription, state);
    // After a failed write the latest states wait here and are written once writes work again.
    if (!this.ackTimer && !this.failure) this.ackTimer = setTimeout(() => this.flushAcks(), this.ackFlushIntervalMs);
  }

  private flushAcks(): void {
    this.ackTimer = undefined;
    for (const [name, state] of this.pendingAcks) {
      void this.track(this.dbs.acks.put(name, { floor: state.floor, above: [...state.above] }));
    }
    this.pendingAcks.clear();
  }

  // ------------------------------------------------------------------ budget, lifecycle

  /** Bytes in the B-tree pages LMDB uses for live data (freed pages are reused, so this falls after retention). */
  usageBytes(): number {
    let pages = 0;
    let pageSize = 4096;
    for (const db of [this.dbs.meta, this.dbs.topics, this.dbs.marks, this.dbs.messages, this.dbs.subscriptions, this.dbs.acks, this.dbs.dedup]) {
      const s = db.getStats() as { pageSize: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
      pages += s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
      pageSize = s.pageSize;
    }
    return pages * pageSize;
  }

  /** Writes pending ack states, waits for every write (and its flush), closes LMDB and releases the directory. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      if (this.ackTimer) clearTimeout(this.ackTimer);
      if (this.recoveryTimer) clearTimeout(this.recoveryTimer);
      if (this.syncTimer) clearInterval(this.syncTimer);
      if (!this.failure) this.flushAcks();
      await Promise.allSettled([...this.inflight]);
      try {
        await this.dbs.root.committed;
        // A clean stop leaves everything on the disk, whatever the flush setting.
        await syncToDisk(this.dbs.root);
      } catch (err) {
        // A full or failing disk: what was acknowledged is committed already (acks wait for
        // their commits); the store still closes and lets go of the directory.
        this.failed(err);
      }
      await this.dbs.root.close();
      this.lock.release();
    })());
  }

  private async collectGarbage(garbage: LoadedState["garbage"]): Promise<void> {
    if (garbage.messages.length + garbage.dedup.length + garbage.acks.length === 0) return;
    const writes = new Set<Promise<unknown>>();
    for (const key of garbage.messages) writes.add(this.dbs.messages.remove(key));
    for (const key of garbage.dedup) writes.add(this.dbs.dedup.remove(key));
    for (const key of garbage.acks) writes.add(this.dbs.acks.remove(key));
    await Promise.all(writes);
  }

  /** track() for each distinct promise (lmdb-js hands every write of one transaction the same one). */
  private trackAll(writes: Iterable<Promise<unknown>>): void {
    for (const w of writes) void this.track(w);
  }

  /** Remembers a write until it settles; a failed write poisons the store (no more writes). */
  private track<T>(write: Promise<T>): Promise<T> {
    this.inflight.add(write);
    this.guardBatch();
    write.then(
      () => this.inflight.delete(write),
      (err: unknown) => {
        this.inflight.delete(write);
        this.failed(err);
      },
    );
    return write;
  }

  private batchGuarded = false;

  /**
   * lmdb-js starts each event turn's transaction from a setImmediate with a promise of its own
   * that no caller holds; when that commit fails, the promise would be an unhandled rejection
   * (and end the process). Once per turn with writes, right after that immediate, a handler is
   * attached to it through `committed` (the failure itself reaches the writes' own promises).
   */
  private guardBatch(): void {
    if (this.batchGuarded) return;
    this.batchGuarded = true;
    setImmediate(() => {
      this.batchGuarded = false;
      void Promise.resolve(this.dbs.root.committed).catch(() => undefined);
    });
  }

  /**
   * A write failed. lmdb-js rejects every write of the transaction with "Commit failed" and
   * the cause in a separate promise (`commitError`), which must be handled here or it becomes
   * an unhandled rejection. The store refuses writes from now on until recover() succeeds.
   */
  private failed(err: unknown): void {
    const commitError = (err as { commitError?: unknown } | undefined)?.commitError;
    if (commitError instanceof Promise) {
      commitError.catch((cause: unknown) => {
        if (this.failure && cause instanceof Error) this.failure = new Error(`${describeIoError(cause)}`, { cause });
      });
    }
    if (this.failure) return;
    this.epoch++;
    this.failure = err instanceof Error ? err : new Error(String(err));
    this.options.onWriteFailure?.(this.failure);
    this.scheduleRecovery();
  }

  private scheduleRecovery(): void {
    if (this.recoveryTimer || this.closing) return;
    this.recoveryTimer = setTimeout(() => void this.recover_(), this.options.recoveryRetryMs ?? 1_000);
    this.recoveryTimer.unref();
  }

  /**
   * Realigns the store with the disk once every write in flight at the failure has settled:
   * rows of batches that were refused are deleted, the tail cache forgets them, each topic's
   * queue position returns to its last committed sequence; then writes are accepted again.
   * If the cleanup itself fails (the disk is still full), it is tried again later.
   */
  private async recover_(): Promise<void> {
    this.recoveryTimer = undefined;
    if (this.closing || !this.failure) return;
    await Promise.allSettled([...this.inflight]);
    const removals = new Set<Promise<unknown>>();
    for (const t of this.topics.values()) {
      for (let sequence = t.last + 1; sequence <= t.queuedLast; sequence++) removals.add(this.dbs.messages.remove(messageKey(t.id, sequence)));
      this.cache.dropAbove(t.id, t.last);
    }
    try {
      await Promise.all(removals);
      await this.dbs.root.committed;
    } catch (err) {
      const commitError = (err as { commitError?: unknown } | undefined)?.commitError;
      if (commitError instanceof Promise) commitError.catch(() => undefined);
      this.scheduleRecovery();
      return;
    }
    for (const t of this.topics.values()) t.queuedLast = t.last;
    this.failure = undefined;
    this.options.onWriteFailure?.(undefined);
    if (this.pendingAcks.size > 0) this.flushAcks();
  }

  /** The error a caller sees for a write that failed or was refused after a failure. */
  private writeError(err: unknown): Error {
    if (err instanceof StoreUnavailableError) return err;
    const cause = this.failure ?? (err instanceof Error ? err : new Error(String(err)));
    return new StoreWriteError(`the write was not stored: ${cause.message}; writes are refused until the disk accepts them again`, { cause });
  }

  /** Free bytes for the data file: the filesystem's free space plus pages LMDB freed inside its file. */
  diskSpace(): DiskSpace | undefined {
    try {
      const fs = statfsSync(this.options.dataDir);
      const file = statSync(join(this.options.dataDir, "data.mdb")).size;
      const slack = Math.max(0, file - this.usageBytes());
      return { freeBytes: fs.bavail * fs.bsize + slack, totalBytes: fs.blocks * fs.bsize };
    } catch {
      return undefined;
    }
  }

  private async durable(write: Promise<unknown>): Promise<void> {
    await write;
    if (this.options.fsync) await (write as Commit).flushed;
  }

  private ensureWritable(): void {
    if (this.closing) throw new StoreUnavailableError("the store is closed");
    if (this.failure) throw new StoreWriteError(`a disk write failed (${this.failure.message}); writes are refused until the disk accepts them again`, { cause: this.failure });
  }

  private requireTopic(topic: string): TopicState {
    const t = this.topics.get(topic);
    if (!t) throw new Error(`store has no topic ${JSON.stringify(topic)}`);
    return t;
  }
}

/** "ENOSPC: no space left on device" from an lmdb-js error (which carries the errno as `code`). */
function describeIoError(err: Error): string {
  const code = (err as { code?: unknown }).code;
  if (code === 28 || code === "ENOSPC") return `no space left on the device (ENOSPC): ${err.message}`;
  if (code === 5 || code === "EIO") return `I/O error (EIO): ${err.message}`;
  return err.message;
}
