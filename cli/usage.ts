/**
 * Usage errors of every subcommand: one line on stderr, the error and where the help is, then
 * exit 2 (docs/loadgen.md, "Exit codes"). Never the whole help text.
 */
import { EXIT_BAD_INPUT } from "../loadgen/errors.js";

const COMMANDS = ["broker", "bench", "bench-suite", "calibrate", "report"];
const REPORT_COMMANDS = ["merge", "compare", "render"];

/** `bench`, `report merge`, ... : the subcommand named on this command line, or "" for none. */
export function commandPath(args: readonly string[]): string {
  const words = args.filter((a) => !a.startsWith("-"));
  const first = words[0];
  if (first === undefined || !COMMANDS.includes(first)) return "";
  const second = words[1];
  return first === "report" && second !== undefined && REPORT_COMMANDS.includes(second) ? `report ${second}` : first;
}

/** `ratatoskr bench: unknown argument: bogus (see ratatoskr bench --help)` */
export function usageLine(args: readonly string[], message: string): string {
  const name = ["ratatoskr", commandPath(args)].filter(Boolean).join(" ");
  const text = message.replace(/\s+/g, " ").trim();
  const first = text.charAt(0).toLowerCase() + text.slice(1);
  return `${name}: ${first} (see ${name} --help)`;
}

/** Print the one line and exit 2. */
export function failUsage(args: readonly string[], message: string): never {
  process.stderr.write(`${usageLine(args, message)}\n`);
  process.exit(EXIT_BAD_INPUT);
}
