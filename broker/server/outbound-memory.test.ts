import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClientHttp2Session } from "node:http2";
import { status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import {
  consumersAttached,
  pollUntil,
  startV2TestServer,
  TestConsumer,
  topicWithSubscription,
  unreadConsumer,
  unreadSession,
  type V2TestServer,
} from "../../test/support/index.js";

// Consumers that never read (docs/limits.md, "Outbound memory"): what the broker writes to
// them stays within the per-stream cap and the broker-wide budget, lease expiry does not keep
// writing redeliveries into them, a stuck one is cut off with RESOURCE_EXHAUSTED naming the
// limit and its messages go to a consumer that reads. Nothing acknowledged is lost.

const STREAM_CAP = 64 * 1024;
const BUDGET = 512 * 1024;
const PAYLOAD = 4 * 1024;
/** One frame may pass the cap (a frame always carries one message), plus its envelope. */
const ONE_MESSAGE_SLACK = PAYLOAD + 1024;

let s: V2TestServer | undefined;
const sessions: ClientHttp2Session[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const session of sessions.splice(0)) session.destroy();
  await s?.close();
  s = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

for (const store of ["memory", "durable"] as const) {
  describe(`unread Consume streams (${store} store)`, () => {
    const start = (extra: Record<string, unknown> = {}) => {
      const dataDir = store === "durable" ? mkdtempSync(join(tmpdir(), "ratatoskr-outbound-")) : undefined;
      if (dataDir) dirs.push(dataDir);
      return startV2TestServer({ dataDir, outboundBudgetBytes: BUDGET, streamOutboundBytes: STREAM_CAP, ...extra });
    };

    it("keeps bytes written to unread streams under the budget while their leases expire and are redelivered", async () => {
      s = await start({ consumerStuckTimeoutMs: 0 });
      const { api, running } = s;
      // 40 unread streams on 4 subscriptions, short ack deadline: redeliveries keep coming.
      const subs: string[] = [];
      for (let i = 0; i < 4; i++) subs.push((await topicWithSubscription(api, { ackDeadlineMs: 200 })).sub);
      const session = await unreadSession(running.address);
      sessions.push(session);
      for (const sub of subs) for (let k = 0; k < 10; k++) unreadConsumer(session, sub);
      for (const sub of subs) await consumersAttached(api, sub, 10);
      const payload = Buffer.alloc(PAYLOAD, 7);
      for (const sub of subs) {
        const topic = (await api.getSubscription(sub)).topic;
        for (let b = 0; b < 10; b++) await api.publish(topic, Array.from({ length: 20 }, () => ({ payload })));
      }
      // 4 × 200 × 4 KiB = 3.2 MiB published, over 6 times the budget: deliveries and
      // redeliveries pile up against the budget, never past it (plus one message per stream).
      // Leases expire every 200 ms, but nothing more is written once the streams are full:
      // the delivery count settles (over five ack deadlines with no change) instead of growing.
      const delivered = async () => Number((await api.brokerStats()).delivered ?? 0);
      let last = -1;
      let since = Date.now();
      await pollUntil(
        async () => {
          const now = await delivered();
          if (now !== last) {
            last = now;
            since = Date.now();
          }
          return now > 0 && Date.now() - since > 1_000;
        },
        "deliveries to settle while leases keep expiring",
        30_000,
      );
      expect(last).toBeLessThan(4 * 200); // not even every message once: the budget stopped the writes
      expect(running.resources.outboundPeakBytes()).toBeGreaterThan(0);
      expect(running.resources.outboundPeakBytes()).toBeLessThanOrEqual(BUDGET + 40 * ONE_MESSAGE_SLACK);
      expect(running.resources.outboundQueuedBytes()).toBeLessThanOrEqual(BUDGET + 40 * ONE_MESSAGE_SLACK);
      // The broker still serves everything else (the stats above were unary calls); with the
      // stuck timeout off, other consumers wait for budget (the next test turns it on).
      expect((await api.publish((await api.getSubscription(subs[0]!)).topic, [{ payload }])).results).toHaveLength(1);
    });

    it("cuts off a stuck consumer with RESOURCE_EXHAUSTED naming the limit and redelivers its messages to a reader", async () => {
      s = await start({ consumerStuckTimeoutMs: 300 });
      const { api, running } = s;
      const { topic, sub } = await topicWithSubscription(api, { ackDeadlineMs: 60_000 });
      const session = await unreadSession(running.address);
      sessions.push(session);
      const stuck = unreadConsumer(session, sub);
      await consumersAttached(api, sub, 1);
      const payload = Buffer.alloc(PAYLOAD, 1);
      const published = 100; // 400 KiB: far past the 64 KiB cap and the client's 16 KiB window
      for (let b = 0; b < 10; b++) await api.publish(topic, Array.from({ length: published / 10 }, (_, i) => ({ payload, attributes: { n: String(b * 10 + i) } })));
      const end = await stuck.ended;
      const named = end.grpcStatus === status.RESOURCE_EXHAUSTED && /consumer-stuck-timeout-ms/.test(end.grpcMessage);
      // If the status could not get past the unread bytes, the stream is reset instead (ENHANCE_YOUR_CALM = 0xb).
      expect(named || end.rstCode === 0xb, JSON.stringify(end)).toBe(true);
      // Its leases went back: a reader gets all 100 (the ack deadline is a minute, so not by expiry).
      const reader = new TestConsumer(s.client, sub, { autoAck: true });
      await reader.waitFor(() => new Set(reader.deliveries.map((d) => d.message!.attributes["n"])).size === published, "every message", 20_000);
      expect(running.resources.outboundQueuedBytes()).toBeLessThan(STREAM_CAP + ONE_MESSAGE_SLACK);
      reader.cut();
    });
  });
}
