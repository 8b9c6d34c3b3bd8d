// A strict parser for the OpenMetrics 1.0 text format (the subset prom-client writes: HELP, TYPE,
// UNIT, samples with labels, no timestamps or exemplars needed). It throws on anything the
// specification does not allow, so a test that parses a scrape proves it is valid OpenMetrics:
// every sample belongs to a declared family, names and suffixes fit the family's type, label
// values are escaped, the text ends with "# EOF\n", families are not interleaved.

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "info" | "stateset" | "gaugehistogram" | "unknown";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help?: string;
  unit?: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: readonly string[] = ["counter", "gauge", "histogram", "summary", "info", "stateset", "gaugehistogram", "unknown"];
const SUFFIXES: Record<MetricType, readonly string[]> = {
  counter: ["_total", "_created"],
  gauge: [""],
  histogram: ["_bucket", "_count", "_sum", "_created"],
  gaugehistogram: ["_bucket", "_gcount", "_gsum"],
  summary: ["", "_count", "_sum", "_created"],
  info: ["_info"],
  stateset: [""],
  unknown: [""],
};

/** Parses an OpenMetrics exposition; throws an Error naming the line on the first violation. */
export function parseOpenMetrics(text: string): Map<string, MetricFamily> {
  if (!text.endsWith("# EOF\n") && !text.endsWith("# EOF")) throw new Error("OpenMetrics text must end with '# EOF'");
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  const families = new Map<string, MetricFamily>();
  const closed = new Set<string>();
  let current: MetricFamily | undefined;
  const fail = (i: number, why: string): never => {
    throw new Error(`line ${i + 1} ${JSON.stringify(lines[i])}: ${why}`);
  };
  const family = (i: number, name: string): MetricFamily => {
    if (!NAME.test(name)) fail(i, `bad metric name ${name}`);
    if (current?.name === name) return current;
    if (closed.has(name) || families.has(name)) fail(i, `metric family ${name} is interleaved with another`);
    if (current) closed.add(current.name);
    current = { name, type: "unknown", samples: [] };
    families.set(name, current);
    return current;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === "# EOF") {
      if (i !== lines.length - 1) fail(i, "text after # EOF");
      break;
    }
    if (line === "") fail(i, "empty lines are not allowed");
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE|UNIT) (\S+)(?: (.*))?$/.exec(line);
      if (!m) fail(i, "a comment line must be # HELP, # TYPE or # UNIT");
      const [, kind, name, rest = ""] = m!;
      const f = family(i, name!);
      if (f.samples.length > 0) fail(i, "metadata after samples");
      if (kind === "TYPE") {
        if (!TYPES.includes(rest)) fail(i, `unknown type ${rest}`);
        f.type = rest as MetricType;
      } else if (kind === "HELP") f.help = unescape(rest, () => fail(i, "bad escape in HELP"));
      else f.unit = rest;
      continue;
    }
    const sample = parseSample(line, (why) => fail(i, why));
    const f = current && sample.name.startsWith(current.name) ? current : undefined;
    if (!f) fail(i, `sample ${sample.name} has no family declared just before it`);
    const suffix = sample.name.slice(f!.name.length);
    if (!SUFFIXES[f!.type].includes(suffix)) fail(i, `suffix "${suffix}" is not allowed for a ${f!.type}`);
    if (f!.type === "counter" && sample.value < 0) fail(i, "a counter is negative");
    if (f!.type === "histogram" && suffix === "_bucket" && sample.labels.le === undefined) fail(i, "a histogram bucket has no le label");
    f!.samples.push(sample);
  }
  if (lines[lines.length - 1] !== "# EOF") throw new Error("missing # EOF");
  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return families;
}

/** Samples whose labels include all of `labels`. */
export function samplesOf(families: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}): Sample[] {
  const out: Sample[] = [];
  for (const f of families.values()) for (const s of f.samples) if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) out.push(s);
  return out;
}

/** The one sample of that name and labels; throws if there are none or several. */
export function sampleValue(families: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}): number {
  const found = samplesOf(families, name, labels);
  if (found.length !== 1) throw new Error(`expected one sample ${name}${JSON.stringify(labels)}, found ${found.length}`);
  return found[0]!.value;
}

function parseSample(line: string, fail: (why: string) => never): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)(?: (\S+))?$/.exec(line);
  if (!m) fail("not a sample line: name{labels} value [timestamp]");
  const [, name, rawLabels, rawValue] = m!;
  const labels: Record<string, string> = {};
  if (rawLabels !== undefined) {
    let rest = rawLabels.slice(1, -1);
    while (rest.length > 0) {
      const lm = /^([^=]+)="((?:[^"\\]|\\.)*)"(,?)/.exec(rest);
      if (!lm || !LABEL_NAME.test(lm[1]!)) fail(`bad label set ${rawLabels}`);
      if (labels[lm![1]!] !== undefined) fail(`label ${lm![1]} repeated`);
      labels[lm![1]!] = unescape(lm![2]!, () => fail("bad escape in a label value"));
      rest = rest.slice(lm![0].length);
      if (lm![3] === "" && rest.length > 0) fail(`bad label set ${rawLabels}`);
    }
  }
  const value = parseNumber(rawValue!);
  if (value === undefined) fail(`bad value ${rawValue}`);
  return { name: name!, labels, value: value! };
}

function parseNumber(text: string): number | undefined {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  return /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text) ? Number(text) : undefined;
}

function unescape(text: string, fail: () => never): string {
  return text.replace(/\\(.?)/g, (_, c: string) => (c === "n" ? "\n" : c === "\\" ? "\\" : c === '"' ? '"' : fail()));
}

/** Buckets cumulative and non-decreasing, ending at le="+Inf" equal to _count, per label set. */
function checkHistogram(f: MetricFamily): void {
  const groups = new Map<string, { buckets: Array<[number, number]>; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name.endsWith("_bucket")) g.buckets.push([parseNumber(le!) ?? NaN, s.value]);
    else if (s.name.endsWith("_count")) g.count = s.value;
  }
  for (const [key, g] of groups) {
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i]![0] > g.buckets[i - 1]![0]) || g.buckets[i]![1] < g.buckets[i - 1]![1]) throw new Error(`histogram ${f.name}${key}: buckets not increasing`);
    }
    const last = g.buckets[g.buckets.length - 1];
    if (!last || last[0] !== Infinity) throw new Error(`histogram ${f.name}${key}: no +Inf bucket`);
    if (g.count !== last[1]) throw new Error(`histogram ${f.name}${key}: _count ${g.count} differs from the +Inf bucket ${last[1]}`);
  }
}
