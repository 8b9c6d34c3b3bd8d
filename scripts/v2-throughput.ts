// Quick v2 throughput check (not a benchmark report; the load generator makes those):
// one topic, one subscription, one Consume stream acking every frame, batched publishes from
// a separate publisher process (its start-up time is inside the measured time).
//   npx tsx scripts/v2-throughput.ts [messages=200000] [batch=500] [payloadBytes=64] [split|same]
// "split" runs the broker in a child process (two event loops, as in production); "same"
// runs it in this process.
import { fork, type ChildProcess } from "node:child_process";
import type { ConsumeResponse } from "../proto/gen/ratatoskr/v2/broker.js";
import { startBroker } from "../broker/index.js";
import { v2Api, v2Client } from "../test/support/index.js";

if (process.argv[2] === "--publish") {
  // Publisher process: keeps a few batched publishes in flight until `total` are stored.
  const [address, total, batch, payloadBytes] = [process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]), Number(process.argv[6])];
  const api = v2Api(v2Client(address));
  const payload = Buffer.alloc(payloadBytes, 7);
  const messages = Array.from({ length: batch }, () => ({ payload, attributes: {}, messageId: "" }));
  let sent = 0;
  const publisher = async (): Promise<void> => {
    while (sent < total) {
      const n = Math.min(batch, total - sent);
      sent += n;
      await api.publish("bench", n === batch ? messages : messages.slice(0, n));
    }
  };
  await Promise.all(Array.from({ length: 4 }, publisher));
  process.exit(0);
} else if (process.argv[2] === "--serve") {
  const running = await startBroker({ host: "127.0.0.1", port: 0, logLevel: "silent", memoryBudgetBytes: 0 });
  process.send!({ address: running.address });
  process.on("message", () => void running.close().then(() => process.exit(0)));
} else {
  await main();
}

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 200_000);
  const batch = Number(process.argv[3] ?? 500);
  const payloadBytes = Number(process.argv[4] ?? 64);
  const mode = process.argv[5] ?? "split";
  let child: ChildProcess | undefined;
  let closeLocal: (() => Promise<void>) | undefined;
  let address: string;
  if (mode === "split") {
    child = fork(new URL(import.meta.url).pathname, ["--serve"], { execArgv: ["--import", "tsx", ...(process.env.V2_PROFILE ? ["--cpu-prof", "--cpu-prof-dir=/tmp/v2prof"] : [])] });
    address = await new Promise<string>((resolve) => child!.once("message", (m: { address: string }) => resolve(m.address)));
  } else {
    const running = await startBroker({ host: "127.0.0.1", port: 0, logLevel: "silent", memoryBudgetBytes: 0 });
    address = running.address;
    closeLocal = running.close;
  }
  const client = v2Client(address);
  const api = v2Api(client);
  await api.createTopic({ name: "bench" });
  await api.createSubscription({ name: "bench-sub", topic: "bench" });

  const stream = client.consume();
  stream.on("error", () => undefined);
  let received = 0;
  let firstDelivery = 0n;
  const done = new Promise<void>((resolve) => {
    stream.on("data", (res: ConsumeResponse) => {
      if (firstDelivery === 0n) firstDelivery = process.hrtime.bigint();
      const ids = res.deliveries.map((d) => d.ackId);
      received += ids.length;
      stream.write({ start: undefined, ackIds: ids, nackIds: [], extend: undefined });
      if (received >= total) resolve();
    });
  });
  stream.write({ start: { subscription: "bench-sub", maxOutstandingMessages: 10_000, maxOutstandingBytes: 0n, consumerName: "bench" }, ackIds: [], nackIds: [], extend: undefined });
  while ((await api.getSubscription("bench-sub")).stats?.consumerCount !== 1) await new Promise((r) => setTimeout(r, 5));

  const before = await api.brokerStats();
  const started = process.hrtime.bigint();
  // The publisher runs in its own process so this one only consumes and acks.
  const publisher = fork(new URL(import.meta.url).pathname, ["--publish", address, String(total), String(batch), String(payloadBytes)], { execArgv: ["--import", "tsx"] });
  await new Promise((r) => publisher.once("exit", r));
  const publishedS = Number(process.hrtime.bigint() - started) / 1e9;
  await done;
  // Wait until the broker has processed the acks too.
  while ((await api.getSubscription("bench-sub")).stats?.ackFloor !== BigInt(total)) await new Promise((r) => setTimeout(r, 2));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  // Steady state: from the first delivery (publisher process started) to the last ack processed.
  const steadySeconds = Number(process.hrtime.bigint() - firstDelivery) / 1e9;
  const stats = await api.brokerStats();
  console.log(
    JSON.stringify({
      mode,
      messages: total,
      batch,
      payloadBytes,
      publishSeconds: +publishedS.toFixed(3),
      seconds: +seconds.toFixed(3),
      consumedAndAckedPerSecond: Math.round(total / steadySeconds),
      includingPublisherStartPerSecond: Math.round(total / seconds),
      retainedBytesAfter: Number(stats.retainedBytes),
      // Broker CPU per message (publish + deliver + ack): stable even when the box is shared.
      brokerCpuSeconds: +(stats.cpuUserSeconds + stats.cpuSystemSeconds - before.cpuUserSeconds - before.cpuSystemSeconds).toFixed(3),
      messagesPerBrokerCpuSecond: Math.round(total / (stats.cpuUserSeconds + stats.cpuSystemSeconds - before.cpuUserSeconds - before.cpuSystemSeconds)),
      brokerRssMiB: Math.round(Number(stats.rssBytes) / 2 ** 20),
    }),
  );
  stream.cancel();
  client.close();
  if (child) {
    child.send("stop");
    await new Promise((r) => child!.once("exit", r));
  }
  await closeLocal?.();
}
