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
  /** Share of the run done, 0..100, when its size is known (messages or duration). */
  percent?: number | undefined;
  /** Seconds left, estimated, when the size is known. */
  etaSec?: number | undefined;
  note?: string;
}

/** What the progress estimate reads of the run. */
export interface RunSize {
  phase: string;
  /** Seconds since the measure phase started (0 before it). */
  measureElapsedSec: number;
  /** Measure phase length, when the scenario gives `durationSeconds`. */
  durationSec?: number | undefined;
  /** Measured messages this process publishes, when the scenario gives `messages`. */
  totalMessages?: number | undefined;
  measuredPublished: number;
  publishRate: number;
}

/**
 * Percent done and ETA of the measure phase: by messages published of `totalMessages`, or by
 * time of `durationSec`. Undefined before measuring, while draining, or when the size is unknown.
 */
export function estimateProgress(r: RunSize): { percent: number; etaSec: number | undefined } | undefined {
  if (r.phase !== "measure") return undefined;
  if (r.totalMessages !== undefined && r.totalMessages > 0) {
    const done = Math.min(1, r.measuredPublished / r.totalMessages);
    const left = r.totalMessages - Math.min(r.totalMessages, r.measuredPublished);
    return { percent: Math.floor(done * 100), etaSec: r.publishRate > 0 ? left / r.publishRate : undefined };
  }
  if (r.durationSec !== undefined && r.durationSec > 0) {
    const done = Math.min(1, r.measureElapsedSec / r.durationSec);
    return { percent: Math.floor(done * 100), etaSec: Math.max(0, r.durationSec - r.measureElapsedSec) };
  }
  return undefined;
}

/**
 * The delivered figure of the progress line: never above expected. First deliveries can arrive
 * before their publish is acknowledged (expected counts acknowledged messages), so the excess
 * is shown apart, not as delivered.
 */
export function deliveredText(delivered: number, expected: number): string {
  const shown = Math.min(delivered, expected);
  const ahead = delivered - shown;
  return `${fmtCount(shown)}/${fmtCount(expected)}${ahead > 0 ? ` (+${fmtCount(ahead)} before their publish ack)` : ""}`;
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
      ` dlv ${deliveredText(s.delivered, s.expected)} (${fmtCount(s.deliveryRate)}/s)` +
      ` p99 ${fmtUs(s.p99Us)}` +
      (s.percent !== undefined ? ` ${s.percent}%${s.etaSec !== undefined ? ` ETA ${s.etaSec.toFixed(0)}s` : ""}` : "") +
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
