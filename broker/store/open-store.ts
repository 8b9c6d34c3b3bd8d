import { LmdbStore } from "./store-lmdb.js";
import { MemoryStore } from "./store-memory.js";
import type { Store } from "./store.js";

export { StoreOpenError } from "./store-errors.js";

/** The part of the broker configuration the store reads (structurally BrokerServerConfig's fields). */
export interface StoreConfig {
  /** Set: durable LMDB store in this directory. Unset: memory store. */
  dataDir: string | undefined;
  /** Durable store: flush each commit to disk before acknowledging. */
  fsync: boolean;
  /** Durable store: a write failed, or writes work again (LmdbStoreOptions.onWriteFailure). */
  onWriteFailure?: (error: Error | undefined) => void;
}

/**
 * Picks the store from the configuration: memory unless a data directory is given, then the
 * durable LMDB store (`fsync`: flush each commit before acknowledging). Throws StoreOpenError
 * (one readable line in `message`) when the data directory cannot be used.
 */
export async function openStore(config: StoreConfig): Promise<Store> {
  if (config.dataDir === undefined) return new MemoryStore();
  return LmdbStore.open({ dataDir: config.dataDir, fsync: config.fsync, onWriteFailure: config.onWriteFailure });
}
