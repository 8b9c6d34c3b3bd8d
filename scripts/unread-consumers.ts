// Outbound memory with consumers that never read (docs/limits.md, "Outbound memory"): starts
// `ratatoskr broker` as a child process, opens many v2 Consume streams that read nothing (small
// HTTP/2 windows, paused streams), publishes messages every subscription gets, lets the leases
// expire again and again (short ack deadline: redeliveries), and samples the broker's RSS.
// Prints the RSS before the streams, with them open, and the peak after publishing, against
// the configured outbound budget.
//
//   npx tsx scripts/unread-consumers.ts                    # 10,000 streams, 64 MiB budget
//   options: --streams 10000 --subscriptions 100 --per-session 1000 --kib 300 --message-bytes 1024
//            --budget-bytes 67108864 --stream-bytes 65536 --ack-deadline-ms 1000 --seconds 30
//            --extra "--memory-budget-bytes 0"   (more broker flags)
import type { ClientHttp2Session } from "node:http2";
import { parseArgs } from "node:util";
import { credentials } from "@grpc/grpc-js";
import { BrokerClient } from "../proto/gen/ratatoskr/v2/broker.js";
import { startCliBroker, unreadConsumer, unreadSession, v2Api } from "../test/support/index.js";

const { values } = parseArgs({
  options: {
    streams: { type: "string", default: "10000" },
    subscriptions: { type: "string", default: "100" },
    "per-session": { type: "string", default: "1000" },
    kib: { type: "string", default: "300" },
    "message-bytes": { type: "string", default: "1024" },
    "budget-bytes": { type: "string", default: String(64 * 1024 * 1024) },
    "stream-bytes": { type: "string", default: String(64 * 1024) },
    "ack-deadline-ms": { type: "string", default: "1000" },
    seconds: { type: "string", default: "30" },
    extra: { type: "string", default: "" },
  },
});
const STREAMS = Number(values.streams);
const SUBSCRIPTIONS = Number(values.subscriptions);
const PER_SESSION = Number(values["per-session"]);
const MESSAGE_BYTES = Number(values["message-bytes"]);
const MESSAGES = Math.ceil((Number(values.kib) * 1024) / MESSAGE_BYTES);
const BUDGET = Number(values["budget-bytes"]);
const SECONDS = Number(values.seconds);
const MiB = 1024 * 1024;

const { child, address } = await startCliBroker([
  "--outbound-budget-bytes", String(BUDGET),
  "--stream-outbound-bytes", values["stream-bytes"]!,
  "--consumer-stuck-timeout-ms", "0", // keep the unread streams for the whole measurement
  "--max-consumers-per-subscription", String(Math.ceil(STREAMS / SUBSCRIPTIONS)),
  "--max-streams-per-connection", String(PER_SESSION),
  ...values.extra!.split(" ").filter((a) => a !== ""),
]);
const client = new BrokerClient(address, credentials.createInsecure());
const api = v2Api(client);
const rss = async (): Promise<number> => Number((await api.brokerStats()).rssBytes);
const sessions: ClientHttp2Session[] = [];
try {
  const topic = `unread-${process.pid}`;
  await api.createTopic({ name: topic });
  const subs: string[] = [];
  for (let i = 0; i < SUBSCRIPTIONS; i++) {
    subs.push(`${topic}-s${i}`);
    await api.createSubscription({ name: subs[i]!, topic, config: { ackDeadlineMs: Number(values["ack-deadline-ms"]) } });
  }
  const rssIdle = await rss();
  for (let opened = 0; opened < STREAMS; opened += PER_SESSION) {
    const session = await unreadSession(address);
    sessions.push(session);
    for (let k = opened; k < Math.min(STREAMS, opened + PER_SESSION); k++) unreadConsumer(session, subs[k % SUBSCRIPTIONS]!);
  }
  for (;;) {
    const consumers = (await api.brokerStats()).consumers;
    if (consumers >= STREAMS) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const rssStreams = await rss();
  const payload = Buffer.alloc(MESSAGE_BYTES, 0x61);
  for (let sent = 0; sent < MESSAGES; sent += 100) {
    await api.publish(topic, Array.from({ length: Math.min(100, MESSAGES - sent) }, () => ({ payload })));
  }
  let peak = 0;
  const until = Date.now() + SECONDS * 1000;
  while (Date.now() < until) {
    peak = Math.max(peak, await rss());
    await new Promise((r) => setTimeout(r, 500));
  }
  const stats = await api.brokerStats();
  const mib = (n: number): string => (n / MiB).toFixed(1);
  console.log(
    JSON.stringify(
      {
        streams: STREAMS,
        subscriptions: SUBSCRIPTIONS,
        publishedBytesPerSubscription: MESSAGES * MESSAGE_BYTES,
        wouldQueueUnboundedMiB: mib(STREAMS * MESSAGES * MESSAGE_BYTES),
        outboundBudgetMiB: mib(BUDGET),
        rssIdleMiB: mib(rssIdle),
        rssWithStreamsMiB: mib(rssStreams),
        rssPeakAfterPublishMiB: mib(peak),
        peakMinusBudgetMiB: mib(peak - BUDGET),
        peakMinusStreamsOpenMiB: mib(peak - rssStreams),
        delivered: Number(stats.delivered),
        redelivered: Number(stats.redelivered),
        seconds: SECONDS,
      },
      null,
      2,
    ),
  );
} finally {
  for (const s of sessions) s.destroy();
  client.close();
  child.kill("SIGTERM");
  await child.exited;
}
