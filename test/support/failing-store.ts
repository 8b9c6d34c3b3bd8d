// A Store that fails on demand, around a real one (memory or LMDB): for tests that a failed
// append leaves nothing of a publish visible. Builds on the broker's source (a builder file,
// see test/boundaries.test.ts), so it serves unit tests only.
import type { Store } from "../../broker/store/index.js";

/** What a failing append rejects with, as a store's own write error would. */
export class InjectedAppendError extends Error {
  override readonly name = "InjectedAppendError";
}

/**
 * `store` with appends that fail when told: `failNextAppends(n)` makes the next n appends
 * reject before anything reaches the inner store (as the LMDB encoder refusing a record does),
 * `failNextCommits(n)` lets the inner store write them and then rejects (as a commit that
 * landed but whose answer is lost would, the worst case for a caller).
 */
export class FailingStore {
  private syncFailures = 0;
  private commitFailures = 0;
  failedAppends = 0;

  constructor(readonly inner: Store) {}

  failNextAppends(n = 1): void {
    this.syncFailures += n;
  }

  failNextCommits(n = 1): void {
    this.commitFailures += n;
  }

  /** The wrapped store, with `append` replaced; every other method is the inner store's. */
  asStore(): Store {
    const inner = this.inner;
    const append = async (topic: string, messages: Parameters<Store["append"]>[1]): Promise<void> => {
      if (this.syncFailures > 0) {
        this.syncFailures--;
        this.failedAppends++;
        throw new InjectedAppendError(`injected append failure (${messages.length} messages on ${topic})`);
      }
      if (this.commitFailures > 0) {
        this.commitFailures--;
        this.failedAppends++;
        await inner.append(topic, messages);
        throw new InjectedAppendError(`injected commit failure after writing (${messages.length} messages on ${topic})`);
      }
      return inner.append(topic, messages);
    };
    return new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === "append") return append;
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }
}
