import { readFileSync } from "node:fs";
import { BrokerConfigError } from "./config.js";

/** What a token may do, each as a list of topic-name prefixes ("" = every topic). */
export const PERMISSIONS = ["admin", "publish", "consume"] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** One entry of the token file (docs/security.md, "Tokens"). */
export interface TokenGrant {
  /** Shown in logs and in PERMISSION_DENIED messages; never the secret. */
  readonly name: string;
  readonly token: string;
  readonly admin: readonly string[];
  readonly publish: readonly string[];
  readonly consume: readonly string[];
}

const ENTRY_KEYS = new Set(["name", "token", ...PERMISSIONS]);

/**
 * Reads and validates a token file. Any problem is one BrokerConfigError naming --token-file,
 * the file and the entry (never a token's secret), so a typo such as "publsh" is refused instead
 * of silently granting nothing.
 */
export function readTokenFile(path: string): TokenGrant[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw problem(path, `cannot be read (${err instanceof Error ? err.message : String(err)})`, err);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw problem(path, `is not JSON (${err instanceof Error ? err.message : String(err)})`, err);
  }
  return parseTokens(doc, path);
}

/** The checks of readTokenFile on a parsed document; `source` names it in messages. */
export function parseTokens(doc: unknown, source: string): TokenGrant[] {
  if (!isObject(doc) || !Array.isArray(doc.tokens)) throw problem(source, 'must be an object {"tokens": [ ... ]}');
  const extra = Object.keys(doc).filter((k) => k !== "tokens");
  if (extra.length > 0) throw problem(source, `has unknown key ${JSON.stringify(extra[0])} (only "tokens")`);
  const names = new Set<string>();
  const secrets = new Set<string>();
  return doc.tokens.map((entry: unknown, i: number): TokenGrant => {
    const at = `tokens[${i}]`;
    if (!isObject(entry)) throw problem(source, `${at} must be an object`);
    const unknown = Object.keys(entry).find((k) => !ENTRY_KEYS.has(k));
    if (unknown !== undefined) throw problem(source, `${at} has unknown key ${JSON.stringify(unknown)} (name, token, ${PERMISSIONS.join(", ")})`);
    if (typeof entry.name !== "string" || entry.name.trim() === "") throw problem(source, `${at}.name must be a non-empty string`);
    const name = entry.name;
    if (names.has(name)) throw problem(source, `${at}.name ${JSON.stringify(name)} is used twice`);
    names.add(name);
    if (typeof entry.token !== "string" || entry.token === "") throw problem(source, `${at}.token (${JSON.stringify(name)}) must be a non-empty string`);
    if (/\s/.test(entry.token)) throw problem(source, `${at}.token (${JSON.stringify(name)}) must not contain whitespace (it travels as "Bearer <token>")`);
    if (secrets.has(entry.token)) throw problem(source, `${at}.token (${JSON.stringify(name)}) is the same as an earlier entry's`);
    secrets.add(entry.token);
    const lists = Object.fromEntries(
      PERMISSIONS.map((p) => {
        const value = entry[p] ?? [];
        if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
          throw problem(source, `${at}.${p} (${JSON.stringify(name)}) must be a list of topic-name prefixes ("" = every topic)`);
        }
        return [p, [...(value as string[])]];
      }),
    ) as Record<Permission, string[]>;
    return { name, token: entry.token, ...lists };
  });
}

function problem(source: string, what: string, cause?: unknown): BrokerConfigError {
  return new BrokerConfigError("--token-file", `--token-file ${source} ${what}`, { cause });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
