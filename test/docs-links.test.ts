import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

// Every relative link in README.md and docs/*.md must resolve: the file (or directory) exists,
// and a `#anchor` names a heading of the target Markdown file (GitHub's slugs) or an explicit
// `id`/`name` anchor in it. Links with a scheme (https:, mailto:) are not checked.

const root = join(import.meta.dirname, "..");

interface Link {
  file: string;
  line: number;
  target: string;
}

/** The Markdown files whose links are checked: README.md and every docs/*.md. */
function docFiles(base: string): string[] {
  const files = [join(base, "README.md")];
  const docs = join(base, "docs");
  if (existsSync(docs)) for (const name of readdirSync(docs).sort()) if (name.endsWith(".md")) files.push(join(docs, name));
  return files.filter((f) => existsSync(f));
}

/** Lines of a Markdown file with fenced code blocks blanked out (their links are not links). */
function proseLines(text: string): string[] {
  let fence: string | undefined;
  return text.split("\n").map((line) => {
    const m = /^\s*(`{3,}|~{3,})/.exec(line);
    if (m) {
      const marker = m[1]!;
      if (fence === undefined) fence = marker[0]!.repeat(marker.length);
      else if (marker.startsWith(fence)) fence = undefined;
      return "";
    }
    return fence === undefined ? line : "";
  });
}

/** Inline links `[text](target "title")` and reference definitions `[id]: target`. */
function linksIn(file: string, text: string): Link[] {
  const out: Link[] = [];
  proseLines(text).forEach((raw, i) => {
    const line = raw.replace(/`[^`]*`/g, (code) => " ".repeat(code.length)); // code spans are not links
    for (const m of line.matchAll(/\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+"[^"]*")?\s*\)/g)) {
      out.push({ file, line: i + 1, target: m[1]!.replace(/^<|>$/g, "") });
    }
    const def = /^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/.exec(line);
    if (def) out.push({ file, line: i + 1, target: def[1]!.replace(/^<|>$/g, "") });
  });
  return out;
}

/** GitHub's heading anchor: lower case, punctuation dropped (not `-` or `_`), spaces to `-`. */
function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // links and images keep their text
    .replace(/<[^>]+>/g, "") // inline HTML
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "").replace(/ /g, "-");
}

/** Every anchor a Markdown file offers: heading slugs (repeats get -1, -2, …) and id/name attributes. */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of proseLines(text)) {
    const h = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (h) {
      const base = slug(h[1]!);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      anchors.add(n === 0 ? base : `${base}-${n}`);
    }
    for (const m of line.matchAll(/<a\s+[^>]*(?:id|name)="([^"]+)"/g)) anchors.add(m[1]!);
  }
  return anchors;
}

/** One line per broken link: `file:line: target (why)`. */
function brokenLinks(base: string, files: readonly string[]): { checked: number; problems: string[] } {
  const problems: string[] = [];
  const anchorCache = new Map<string, Set<string>>();
  let checked = 0;
  for (const file of files) {
    for (const link of linksIn(file, readFileSync(file, "utf8"))) {
      const { target } = link;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//")) continue; // http:, mailto:, …
      checked++;
      const where = `${relative(base, file)}:${link.line}: ${target}`;
      const hash = target.indexOf("#");
      const pathPart = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
      const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
      const resolved = pathPart === "" ? file : resolve(dirname(file), pathPart);
      if (!existsSync(resolved)) {
        problems.push(`${where} (no such file: ${relative(base, resolved)})`);
        continue;
      }
      if (anchor === undefined || anchor === "") continue;
      if (statSync(resolved).isDirectory() || !resolved.endsWith(".md")) {
        problems.push(`${where} (an anchor into ${relative(base, resolved)}, which is not a Markdown file)`);
        continue;
      }
      let anchors = anchorCache.get(resolved);
      if (!anchors) anchorCache.set(resolved, (anchors = anchorsOf(readFileSync(resolved, "utf8"))));
      if (!anchors.has(anchor)) problems.push(`${where} (no heading #${anchor} in ${relative(base, resolved)})`);
    }
  }
  return { checked, problems };
}

describe("documentation links", () => {
  it("resolves every relative link and anchor in README.md and docs/", () => {
    const files = docFiles(root);
    expect(files.map((f) => relative(root, f))).toContain("README.md");
    const { checked, problems } = brokenLinks(root, files);
    // Not vacuous: the front door alone links to every page of docs/.
    expect(checked).toBeGreaterThan(20);
    expect(problems, `broken links:\n${problems.join("\n")}`).toEqual([]);
  });

  describe("the checker", () => {
    const dir = mkdtempSync(join(tmpdir(), "docs-links-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, "docs"));
    writeFileSync(
      join(dir, "README.md"),
      [
        "# Top",
        "",
        "See [the guide](docs/guide.md#what-fsync-means) and [storage](docs/guide.md#storage-and-durability).",
        "A [missing page](docs/nope.md) and a [missing heading](docs/guide.md#no-such-heading).",
        "Local [anchor](#top), outside [site](https://example.com/x.md), `[not a link](nope.md)`.",
        "```",
        "[inside a fence](fenced.md)",
        "```",
        "",
      ].join("\n"),
    );
    writeFileSync(join(dir, "docs", "guide.md"), "# Guide\n\n## What `fsync` means\n\n## Storage and durability\n");

    it("reports a missing file and a missing anchor with the file, line and link", () => {
      const { checked, problems } = brokenLinks(dir, docFiles(dir));
      expect(checked).toBe(5);
      expect(problems).toEqual([
        "README.md:4: docs/nope.md (no such file: docs/nope.md)",
        "README.md:4: docs/guide.md#no-such-heading (no heading #no-such-heading in docs/guide.md)",
      ]);
    });
  });

  it("makes GitHub's slugs", () => {
    expect(slug("What `--fsync` guarantees")).toBe("what---fsync-guarantees");
    expect(slug("Suites: `ratatoskr bench-suite`")).toBe("suites-ratatoskr-bench-suite");
    expect(slug("v2 semantics")).toBe("v2-semantics");
    expect(slug("The `max_deliveries` field (v2)")).toBe("the-max_deliveries-field-v2");
    const repeated = anchorsOf("## Notes\n\n## Notes\n");
    expect([...repeated]).toEqual(["notes", "notes-1"]);
  });
});

// Code cites the docs by heading: `docs/design.md, "Publish path"`. Every citation in the
// sources names a page and heading that exist, and no citation of the old "DESIGN §" numbers is left.
const CITED_FOLDERS = ["broker", "loadgen", "cli", "test", "e2e", "scripts", "scenarios", ".ci"];
const PUBLISHED_AS_RUN = join(root, "reports"); // committed reports keep the text they were run with

function citingFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === "node_modules" || name === "gen" ? [] : citingFiles(path);
    return /\.(ts|mjs|sh|yaml|yml)$/.test(name) || name === "run" ? [path] : [];
  });
}

/** `file:line: problem` for each citation of a docs heading that does not exist, and each "DESIGN §". */
export function badCitations(files: readonly string[], headingsOf: (page: string) => ReadonlySet<string> | undefined): string[] {
  const problems: string[] = [];
  for (const file of files) {
    readFileSync(file, "utf8")
      .split("\n")
      .forEach((line, i) => {
        const where = `${relative(root, file)}:${i + 1}`;
        if (/DESIGN\s*§/.test(line)) problems.push(`${where}: cites "DESIGN §", which is not in the repository`);
        for (const m of line.matchAll(/docs\/([a-z0-9-]+\.md),\s*\\?["']([^"'\\]+)\\?["']/g)) {
          const headings = headingsOf(m[1]!);
          if (!headings) problems.push(`${where}: cites docs/${m[1]}, which does not exist`);
          else if (!headings.has(m[2]!)) problems.push(`${where}: cites docs/${m[1]} "${m[2]}", which has no such heading`);
        }
      });
  }
  return problems;
}

describe("citations of the docs in the sources", () => {
  const headingsOf = (page: string): Set<string> | undefined => {
    const file = join(root, "docs", page);
    if (!existsSync(file)) return undefined;
    return new Set([...readFileSync(file, "utf8").matchAll(/^#{1,6}\s+(.+?)\s*$/gm)].map((m) => m[1]!));
  };

  it("name pages and headings that exist in docs/", () => {
    const self = join(root, "test", "docs-links.test.ts"); // its own examples of bad citations
    const files = CITED_FOLDERS.flatMap((d) => citingFiles(join(root, d))).filter((f) => !f.startsWith(PUBLISHED_AS_RUN) && f !== self);
    const cited = files.filter((f) => readFileSync(f, "utf8").includes("docs/design.md"));
    expect(cited.length).toBeGreaterThan(5); // not vacuous
    const problems = badCitations(files, headingsOf);
    expect(problems, problems.join("\n")).toEqual([]);
  });

  it("catches a missing heading and an old section number", () => {
    const dir = mkdtempSync(join(tmpdir(), "design-cites-"));
    const file = join(dir, "x.ts");
    writeFileSync(file, `// ok (docs/design.md, "Publish path")\n// bad (docs/design.md, "Nowhere")\n// old (DESIGN §2.1)\n// gone (docs/gone.md, 'X')\n`);
    try {
      const problems = badCitations([file], (page) => (page === "design.md" ? new Set(["Publish path"]) : undefined));
      expect(problems).toHaveLength(3);
      expect(problems[0]).toContain(`"Nowhere", which has no such heading`);
      expect(problems[1]).toContain(`"DESIGN §"`);
      expect(problems[2]).toContain("docs/gone.md, which does not exist");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
