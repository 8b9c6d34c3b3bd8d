/** Helpers every driver shares: bounded concurrency for setup calls, and error text. */

/** Run `fn` over items with at most `concurrency` in flight. */
export async function inBatches<T>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** The message of an error, or the value as text: for DriverError messages. */
export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A producer message id for a generator payload: a run nonce and the payload's producer, topic
 * and sequence (header bytes 4–16, laid out in loadgen/run/payload.ts), so every publish of the
 * same message, retries included, carries the same id and the broker de-duplicates it.
 */
export function messageIdOf(nonce: string, payload: Buffer): string {
  return nonce + payload.toString("hex", 4, 16);
}

/** A short random nonce: message ids of two runs on the same topic names never collide. */
export function runNonce(): string {
  return Math.random().toString(36).slice(2, 10).padEnd(8, "0");
}
