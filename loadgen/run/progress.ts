/**
 * Progress output: a live single line on a TTY (rewritten in place), plain lines otherwise
 * (one every `plainEverySec` seconds, so CI logs stay readable).
 */
export interface ProgressState {
  phase: string;
  elapsedSec: number;
  published: number;
  delivered: number;
  expected: number;
  publishRate: number;
  deliveryRate: number;
  p99Us: number;
  note?: string;
}

export class Progress {
  private lastPlain = -Infinity;
  private live = false;
  constructor(
    private readonly out: NodeJS.WriteStream | { write(s: string): boolean; isTTY?: boolean },
    private readonly quiet = false,
    private readonly plainEverySec = 5,
  ) {}

  update(s: ProgressState, force = false): void {
    if (this.quiet) return;
    const line =
      `[${s.phase.padEnd(8)}] ${s.elapsedSec.toFixed(0).padStart(4)}s` +
      ` pub ${fmtCount(s.published)} (${fmtCount(s.publishRate)}/s)` +
      ` dlv ${fmtCount(s.delivered)}/${fmtCount(s.expected)} (${fmtCount(s.deliveryRate)}/s)` +
      ` p99 ${fmtUs(s.p99Us)}` +
      (s.note ? ` ${s.note}` : "");
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[2K${line}`);
      this.live = true;
    } else if (force || s.elapsedSec - this.lastPlain >= this.plainEverySec) {
      this.out.write(`${line}\n`);
      this.lastPlain = s.elapsedSec;
    }
  }

  /** Print a line of its own (ends the live line first). */
  log(text: string): void {
    if (this.quiet) return;
    if (this.live) this.out.write("\n");
    this.live = false;
    this.out.write(`${text}\n`);
  }

  end(): void {
    if (this.live) this.out.write("\n");
    this.live = false;
  }
}

export function fmtCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}K`;
  return String(Math.round(n));
}

export function fmtUs(us: number): string {
  if (us >= 1e6) return `${(us / 1e6).toFixed(2)}s`;
  if (us >= 1e3) return `${(us / 1e3).toFixed(2)}ms`;
  return `${Math.round(us)}µs`;
}

export function fmtBytes(b: number): string {
  if (b >= 1024 ** 3) return `${(b / 1024 ** 3).toFixed(2)} GiB`;
  if (b >= 1024 ** 2) return `${(b / 1024 ** 2).toFixed(1)} MiB`;
  if (b >= 1024) return `${(b / 1024).toFixed(1)} KiB`;
  return `${b} B`;
}
