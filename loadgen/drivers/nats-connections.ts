/**
 * A fixed set of NATS connections, as both NATS drivers hold them: publishers pick one by their
 * channel hint, consumers by slot, like the gRPC channel pool. The `nats` driver's are the
 * generator's own client (nats-core-client.ts), the `jetstream` driver's nats.js's
 * (nats-pool.ts); each opens its own and tells this class when one closed for good or
 * reconnected.
 */
export class NatsConnections<C extends { close(): Promise<void> }> {
  protected readonly conns: C[] = [];
  protected closing = false;
  /** Reconnects that succeeded (policy set). */
  readonly counts = { publishRetries: 0, reconnects: 0 };
  private readonly closedListeners: ((index: number, err: Error | undefined) => void)[] = [];
  private readonly reconnectListeners: ((index: number) => void)[] = [];

  at(hint: number): C {
    const nc = this.conns[hint % this.conns.length];
    if (!nc) throw new Error("NATS pool is not open");
    return nc;
  }

  indexOf(hint: number): number {
    return hint % this.conns.length;
  }

  get length(): number {
    return this.conns.length;
  }

  /** Called once per connection that closes for good while the pool is open. */
  onClosed(listener: (index: number, err: Error | undefined) => void): void {
    this.closedListeners.push(listener);
  }

  /** Called each time a connection reconnected (policy set): its subscriptions were sent again. */
  onReconnected(listener: (index: number) => void): void {
    this.reconnectListeners.push(listener);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.conns.map((nc) => nc.close().catch(() => undefined)));
    this.conns.length = 0;
  }

  protected closed(index: number, err: Error | undefined): void {
    if (this.closing) return;
    for (const l of this.closedListeners) l(index, err);
  }

  protected reconnected(index: number): void {
    this.counts.reconnects++;
    for (const l of this.reconnectListeners) l(index);
  }
}
