/**
 * The broker's Prometheus endpoint as a resource source (`--broker-metrics URL`): process CPU and
 * RSS from prom-client's default process metrics (process_cpu_user_seconds_total,
 * process_cpu_system_seconds_total, process_resident_memory_bytes), heap, backlog and retained
 * messages from the broker's own gauges where it has them. For a broker that is not a local
 * child (no /proc to read) and does not answer GetBrokerStats (v1, or another deployment).
 */
import type { BrokerStatsSample } from "./driver.js";

/** Unlabelled samples of a Prometheus (0.0.4) or OpenMetrics text: name → value. */
export function parseMetricValues(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)/.exec(line);
    if (!m) continue; // labelled samples are not needed here
    const v = m[2] === "+Inf" ? Infinity : m[2] === "-Inf" ? -Infinity : Number(m[2]);
    if (!Number.isNaN(v)) out.set(m[1]!, v);
  }
  return out;
}

/** A resource sample from a scrape; undefined when the process metrics are missing. */
export function sampleFromMetrics(values: Map<string, number>): BrokerStatsSample | undefined {
  const rss = values.get("process_resident_memory_bytes");
  const user = values.get("process_cpu_user_seconds_total");
  const system = values.get("process_cpu_system_seconds_total");
  if (rss === undefined || user === undefined || system === undefined) return undefined;
  const sample: BrokerStatsSample = { rssBytes: rss, cpuUserSeconds: user, cpuSystemSeconds: system };
  const heap = values.get("nodejs_heap_size_used_bytes");
  const backlog = values.get("ratatoskr_backlog_messages");
  const retained = values.get("ratatoskr_retained_messages");
  if (heap !== undefined) sample.heapUsedBytes = heap;
  if (backlog !== undefined) sample.backlog = backlog;
  if (retained !== undefined) sample.retainedMessages = retained;
  return sample;
}

/** Checks the URL (a UsageError-worthy message, or undefined when it is fine). */
export function checkMetricsUrl(url: string): string | undefined {
  try {
    const u = new URL(url);
    return u.protocol === "http:" || u.protocol === "https:" ? undefined : `--broker-metrics expects an http(s) URL, got "${url}"`;
  } catch {
    return `--broker-metrics expects a URL such as http://127.0.0.1:9100/metrics, got "${url}"`;
  }
}

/** Scrapes `url` (OpenMetrics asked for, Prometheus text accepted) within `timeoutMs`; throws on a failed scrape. */
export async function scrapeBrokerMetrics(url: string, timeoutMs = 2_000): Promise<BrokerStatsSample | undefined> {
  const res = await fetch(url, { headers: { accept: "application/openmetrics-text; version=1.0.0, text/plain; version=0.0.4;q=0.5" }, signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return sampleFromMetrics(parseMetricValues(await res.text()));
}
