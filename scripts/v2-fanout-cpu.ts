// Broker CPU per delivery for fan-out, without gRPC: the core and the Consume frame encoder,
// with consumers that ack each frame on the next turn. Compares body sharing across
// subscriptions: none, per event-loop turn (1 ms generations), 50 ms generations (the server's).
//   npx tsx scripts/v2-fanout-cpu.ts [none|turn|gen] [subscriptions=200] [messages=20000]
import { createBrokerCore, MemoryStore, type Consumer } from "../broker/index.js";
import { EncodedMessages, encodeFrames } from "../broker/server/v2/consume-codec.js";

const mode = process.argv[2] ?? "gen";
const subs = Number(process.argv[3] ?? 200);
const core = createBrokerCore({ store: new MemoryStore() });
const broker = core.topics;
const registry = core.subscriptions;
await broker.createTopic("t");
const shared = mode === "none" ? undefined : new EncodedMessages(mode === "turn" ? 1 : 50);
let bytes = 0;
const consumers: Consumer[] = [];
for (let i = 0; i < subs; i++) {
  await registry.create(`s${i}`, "t", { start: { kind: "latest" } });
  const c: Consumer = registry.attach(`s${i}`, { maxOutstandingMessages: 1000, maxOutstandingBytes: 1 << 30 }, {
    send: (batch) => {
      for (const f of encodeFrames(batch, 1 << 20, shared)) bytes += f.length;
      // Ack later, in a following turn (as a consumer over the network would).
      setImmediate(() => c.handle({ ackIds: batch.map((l) => l.ackId) }));
      return true;
    },
    end: () => undefined,
  });
  consumers.push(c);
}
const payload = Buffer.alloc(256, 1);
const total = Number(process.argv[4] ?? 20000);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < total; i += 50) {
  await broker.publish("t", Array.from({ length: 50 }, () => ({ payload, attributes: { k: "v" } })));
  await new Promise((r) => setImmediate(r));
}
while (registry.summary().inFlight > 0) await new Promise((r) => setImmediate(r));
const cpu = process.cpuUsage(cpu0);
const cpuS = (cpu.user + cpu.system) / 1e6;
console.log(JSON.stringify({ mode, subs, deliveries: total * subs, cpuS: +cpuS.toFixed(2), wallS: +((performance.now() - t0) / 1000).toFixed(2), deliveriesPerCpuS: Math.round((total * subs) / cpuS), mb: Math.round(bytes / 1e6) }));
process.exit(0);
