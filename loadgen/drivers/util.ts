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
