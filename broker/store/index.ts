// The store package's door: the storage interface, its records, the two implementations and
// how one is chosen. The store imports nothing from the broker core (test/boundaries.test.ts).

export type { DedupRecord, DiskSpace, LogBounds, RecoveredState, Store } from "./store.js";
export {
  messageBytes,
  type AckState,
  type RetentionPolicy,
  type StartPosition,
  type StoredMessage,
  type SubscriptionConfig,
  type SubscriptionRecord,
  type TopicConfig,
  type TopicRecord,
} from "./records.js";
export { MemoryStore } from "./store-memory.js";
export { LmdbStore, type LmdbStoreOptions } from "./store-lmdb.js";
export { openStore, type StoreConfig } from "./open-store.js";
export { StoreOpenError, StoreUnavailableError, StoreWriteError, type StoreOpenProblem } from "./store-errors.js";
