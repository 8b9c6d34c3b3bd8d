/** Structured JSON log lines on stdout: {"time","level","msg",...fields}. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function createLogger(level: LogLevel = "info", write: (line: string) => void = writeStdout): Logger {
  const min = RANK[level];
  const emit = (lvl: Exclude<LogLevel, "silent">, msg: string, fields?: Record<string, unknown>): void => {
    if (RANK[lvl] < min) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields })}\n`);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

let stdoutGuarded = false;
let stdoutClosed = false;

/**
 * stdout that may go away (`ratatoskr broker | head -1`): a write error (EPIPE) must not crash
 * the broker. The first one is noted once on stderr; log lines are dropped from then on and
 * the broker keeps serving. stderr gets the same guard, for `2>&1 | head -1`.
 */
function writeStdout(line: string): void {
  if (!stdoutGuarded) {
    stdoutGuarded = true;
    process.stdout.on("error", stdoutFailed);
    process.stderr.on("error", () => undefined); // nowhere left to report it
  }
  if (stdoutClosed) return;
  try {
    process.stdout.write(line);
  } catch (err) {
    stdoutFailed(err);
  }
}

function stdoutFailed(err: unknown): void {
  if (stdoutClosed) return;
  stdoutClosed = true;
  const code = err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : String(err);
  process.stderr.write(`ratatoskr: stdout is closed (${code}); log lines are dropped from now on, the broker keeps serving\n`);
}

export const silentLogger: Logger = createLogger("silent");
