import type { BrokerServerConfig } from "../server/config.js";
import { MemoryStore } from "./store-memory.js";
import type { Store } from "./store.js";

/** Picks the store from the configuration: memory unless a data directory is given. */
export async function openStore(config: Pick<BrokerServerConfig, "dataDir" | "fsync">): Promise<Store> {
  if (config.dataDir !== undefined) throw new Error("durable store not implemented yet");
  return new MemoryStore();
}
