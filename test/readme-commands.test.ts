import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import yargs from "yargs";
import { benchCommand } from "../cli/bench-command.js";
import { brokerCommand } from "../cli/broker-command.js";
import { reportCommand } from "../cli/report-command.js";
import { suiteCommand } from "../cli/suite-command.js";

// Every command of a fenced `sh` block marked `<!-- runnable -->` in README.md or docs/*.md must
// work as written in a fresh clone: each `ratatoskr` invocation parses against the real CLI
// (flags, choices, positionals; nothing runs), every file argument exists, every `npm run`
// script exists, and a from-source invocation (tsx) comes after `npm run gen` in its block,
// since proto/gen/ is generated, not committed.

const root = join(import.meta.dirname, "..");
const MARKER = "<!-- runnable -->";
const scripts = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
/** npm scripts that generate proto/gen/ before they run anything. */
const GENERATING = new Set(["gen", "build", "bench", "test", "test:e2e", "typecheck", "lint"]);

interface Block {
  file: string;
  line: number;
  commands: string[];
}

/** The runnable blocks of a Markdown text: fenced `sh` blocks right after the marker line. */
function runnableBlocks(file: string, text: string): Block[] {
  const lines = text.split("\n");
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== MARKER) continue;
    const fence = i + 1;
    if (lines[fence]?.trim() !== "```sh") throw new Error(`${file}:${i + 1}: ${MARKER} must be followed by a \`\`\`sh fence`);
    const commands: string[] = [];
    let j = fence + 1;
    for (; j < lines.length && lines[j]!.trim() !== "```"; j++) {
      const cmd = lines[j]!.replace(/\s#.*$/, "").trim();
      if (cmd && !cmd.startsWith("#")) commands.push(cmd);
    }
    out.push({ file, line: fence + 1, commands });
    i = j;
  }
  return out;
}

/** Parse `ratatoskr <args>` against the real commands; handlers never run. Returns the failure or undefined. */
async function parseCli(args: string[]): Promise<string | undefined> {
  const parsed = new Error("parsed");
  try {
    await yargs()
      .command(brokerCommand)
      .command(benchCommand)
      .command(reportCommand)
      .command(suiteCommand)
      .demandCommand(1)
      .strict()
      .exitProcess(false)
      // After validation, before any handler: stop here.
      .middleware(() => {
        throw parsed;
      }, false)
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      })
      .parseAsync(args);
  } catch (err) {
    return err === parsed ? undefined : (err as Error).message;
  }
  return "no command ran";
}

/** Split a shell word list (no quoting needed in our docs; $(...) is one word). */
const words = (s: string) => s.split(/\s+/).filter(Boolean);

/** What is wrong with one block, as sentences (empty when every command checks out). */
async function problems(block: Block): Promise<string[]> {
  const out: string[] = [];
  let generated = false;
  for (const command of block.commands) {
    for (const segment of command.split("&&").map((s) => s.trim())) {
      const w = words(segment);
      let cli: string[] | undefined;
      if (w[0] === "npm" && (w[1] === "ci" || w[1] === "test")) {
        if (w[1] === "test") generated = true;
        continue;
      } else if (w[0] === "npm" && w[1] === "run") {
        const script = w[2]!;
        if (!(script in scripts)) out.push(`${segment}: no npm script "${script}"`);
        if (GENERATING.has(script)) generated = true;
        const rest = w[3] === "--" ? w.slice(4) : w.slice(3);
        if (script === "ratatoskr") {
          cli = rest;
          if (!generated) out.push(`${segment}: needs \`npm run gen\` first in a fresh clone`);
        } else if (script === "bench") cli = ["bench", ...rest];
        else continue;
      } else if (w[0] === "npx" && w[1] === "tsx" && w[2] === "cli/main.ts") {
        cli = w.slice(3);
        if (!generated) out.push(`${segment}: needs \`npm run gen\` first in a fresh clone`);
      } else if (w[0] === "node" && w[1] === "dist/cli/main.js") {
        cli = w.slice(2);
        if (!generated) out.push(`${segment}: needs \`npm run build\` first`);
      } else {
        out.push(`${segment}: not a command this check knows (npm ci/test/run, npx tsx cli/main.ts, node dist/cli/main.js)`);
        continue;
      }
      for (const a of cli.filter((x) => /\.(ya?ml|json)$/.test(x) || x.startsWith("reports/published/"))) {
        if (!existsSync(join(root, a))) out.push(`${segment}: ${a} does not exist`);
      }
      const failure = await parseCli(cli);
      if (failure) out.push(`${segment}: ${failure.split("\n")[0]}`);
    }
  }
  return out;
}

const docs = ["README.md", ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
const blocks = docs.flatMap((f) => runnableBlocks(f, readFileSync(join(root, f), "utf8")));

describe("runnable commands in the docs", () => {
  it("README.md marks its commands runnable", () => {
    expect(blocks.filter((b) => b.file === "README.md").length).toBeGreaterThanOrEqual(2);
  });

  for (const b of blocks) {
    it(`${b.file}:${b.line} parses and would run in a fresh clone`, async () => {
      expect(await problems(b)).toEqual([]);
    });
  }

  it("catches a tsx command without gen, an unknown flag and a missing file", async () => {
    const bad: Block = {
      file: "x.md",
      line: 1,
      commands: ["npx tsx cli/main.ts broker --port 0", "npm run gen", "npm run ratatoskr -- bench scenarios/nope.yaml", "npm run ratatoskr -- report merge a b --out x --bogus"],
    };
    const p = await problems(bad);
    expect(p).toHaveLength(3);
    expect(p[0]).toMatch(/npx tsx cli\/main.ts broker --port 0: needs `npm run gen` first/);
    expect(p[1]).toMatch(/scenarios\/nope.yaml does not exist/);
    expect(p[2]).toMatch(/--bogus: Unknown argument: bogus/);
  });
});
