// Waiting for outcomes, never for a fixed time: `Waiters` re-checks conditions when an event
// says something changed; `pollUntil` is for state no event reports (a broker's statistics
// over RPC, a container's state).

/** Conditions waited on until an event makes them true: no polling, no sleeps. */
export class Waiters {
  private list: Array<() => void> = [];

  /** Re-checks every pending condition; call after each event that may change one. */
  notify(): void {
    for (const w of [...this.list]) w();
  }

  /**
   * Resolves once `condition` holds, checked now and after every `notify()`; rejects after
   * `timeoutMs`, naming `what` (a function is called then, so it can describe the state).
   */
  until(condition: () => boolean, what: string | (() => string), timeoutMs = 10_000): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.list = this.list.filter((w) => w !== check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "string" ? what : what()}`));
      }, timeoutMs);
      const check = (): void => {
        if (!condition()) return;
        clearTimeout(timer);
        this.list = this.list.filter((w) => w !== check);
        resolve();
      };
      this.list.push(check);
    });
  }
}

/**
 * Resolves once `condition` holds, checking it every `everyMs`; rejects after `timeoutMs`. For
 * state no event reports; where an event does, wait on it with `Waiters` instead.
 */
export async function pollUntil(condition: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000, everyMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise<void>((r) => setTimeout(r, everyMs));
  }
}
