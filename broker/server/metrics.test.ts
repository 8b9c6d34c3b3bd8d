import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectStatus, httpGet, parseOpenMetrics, sampleValue, samplesOf, startV2TestServer, TestConsumer, uniqueName, type V2TestServer } from "../../test/support/index.js";

const OPENMETRICS = { accept: "application/openmetrics-text; version=1.0.0" };

describe("the metrics endpoint", () => {
  let srv: V2TestServer;
  beforeAll(async () => {
    srv = await startV2TestServer({ metricsPort: 0 });
  });
  afterAll(async () => {
    await srv.close();
  });

  it("serves OpenMetrics on 127.0.0.1 whose counters agree with GetBrokerStats after a known workload", async () => {
    const url = srv.running.metricsUrl!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(srv.running.settings.metrics).toBe(url);
    const topic = uniqueName("metrics");
    await srv.api.createTopic({ name: topic });
    await srv.api.createSubscription({ name: `${topic}-sub`, topic });
    const consumer = new TestConsumer(srv.client, `${topic}-sub`, { autoAck: true });
    const texts = Array.from({ length: 25 }, (_, i) => `m${i}`);
    await srv.api.publishText(topic, texts.slice(0, 10));
    await srv.api.publishText(topic, texts.slice(10));
    await consumer.waitForDeliveries(25);
    await consumer.waitFor(() => consumer.outstanding.size === 0, "every delivery acked");
    // Acks travel on the stream: wait until the broker has counted them.
    const deadline = Date.now() + 5_000;
    let stats = await srv.api.brokerStats();
    while (stats.acked < 25n && Date.now() < deadline) stats = await srv.api.brokerStats();
    await expectStatus(srv.api.publishText(uniqueName("missing"), ["x"]), status.NOT_FOUND);

    // Retention and ack bookkeeping run on the broker's timers, so a gauge may move between two
    // reads: compare a scrape with GetBrokerStats read just before and just after it, and only
    // when those two agree (the broker did not change in between).
    const moving = (a: typeof stats, b: typeof stats) =>
      (["retainedMessages", "retainedBytes", "backlog", "acked", "delivered", "consumers"] as const).some((k) => a[k] !== b[k]);
    let answer: Awaited<ReturnType<typeof httpGet>>;
    for (let settled = Date.now() + 5_000; ; ) {
      const before = await srv.api.brokerStats();
      answer = await httpGet(url, OPENMETRICS);
      stats = await srv.api.brokerStats();
      if (!moving(before, stats) || Date.now() > settled) break;
    }
    expect(answer.status).toBe(200);
    expect(answer.headers["content-type"]).toMatch(/^application\/openmetrics-text; version=1\.0\.0/);
    const families = parseOpenMetrics(answer.body);

    expect(stats.published).toBe(25n);
    expect(sampleValue(families, "ratatoskr_messages_published_total")).toBe(Number(stats.published));
    expect(sampleValue(families, "ratatoskr_messages_delivered_total")).toBe(Number(stats.delivered));
    expect(sampleValue(families, "ratatoskr_messages_acked_total")).toBe(Number(stats.acked));
    expect(sampleValue(families, "ratatoskr_messages_acked_total")).toBe(25);
    expect(sampleValue(families, "ratatoskr_messages_redelivered_total")).toBe(Number(stats.redelivered));
    expect(sampleValue(families, "ratatoskr_messages_dead_lettered_total")).toBe(Number(stats.deadLettered));
    expect(sampleValue(families, "ratatoskr_topics")).toBe(stats.topics);
    expect(sampleValue(families, "ratatoskr_subscriptions")).toBe(stats.subscriptions);
    expect(sampleValue(families, "ratatoskr_consumers")).toBe(stats.consumers);
    expect(sampleValue(families, "ratatoskr_backlog_messages")).toBe(Number(stats.backlog));
    expect(sampleValue(families, "ratatoskr_retained_messages")).toBe(Number(stats.retainedMessages));
    expect(sampleValue(families, "ratatoskr_retained_bytes")).toBe(Number(stats.retainedBytes));
    expect(sampleValue(families, "ratatoskr_memory_budget_bytes")).toBe(Number(stats.memoryBudgetBytes));
    expect(sampleValue(families, "ratatoskr_refusals_total", { code: "NOT_FOUND" })).toBe(1);
    expect(families.get("ratatoskr_messages_published")?.type).toBe("counter");
    expect(families.get("ratatoskr_publish_duration_seconds")?.type).toBe("histogram");
    // Two Publish calls and the refused one, each observed once (per call, not per message).
    expect(sampleValue(families, "ratatoskr_publish_duration_seconds_count", { api: "v2" })).toBe(3);
    const lagCount = sampleValue(families, "ratatoskr_delivery_lag_seconds_count");
    expect(lagCount).toBeGreaterThanOrEqual(1);
    expect(lagCount).toBeLessThanOrEqual(25);
    // prom-client's process metrics: what the load generator reads as the broker's CPU and RSS.
    expect(sampleValue(families, "process_resident_memory_bytes")).toBeGreaterThan(0);
    expect(samplesOf(families, "process_cpu_user_seconds_total")).toHaveLength(1);
    consumer.cut();
  });

  it("answers 404 off /metrics and serves the same text without an Accept header", async () => {
    const base = srv.running.metricsUrl!.replace(/\/metrics$/, "");
    expect((await httpGet(`${base}/`)).status).toBe(404);
    const plain = await httpGet(srv.running.metricsUrl!);
    expect(plain.status).toBe(200);
    expect(() => parseOpenMetrics(plain.body)).not.toThrow();
  });

  it("stops with the broker", async () => {
    const own = await startV2TestServer({ metricsPort: 0 });
    const url = own.running.metricsUrl!;
    expect((await httpGet(url)).status).toBe(200);
    await own.close();
    await expect(httpGet(url)).rejects.toThrow(/ECONNREFUSED/);
  });

  it("is off unless a metrics port is given", async () => {
    const own = await startV2TestServer();
    try {
      expect(own.running.metricsUrl).toBeUndefined();
      expect(own.running.settings.metrics).toBeUndefined();
    } finally {
      await own.close();
    }
  });
});
