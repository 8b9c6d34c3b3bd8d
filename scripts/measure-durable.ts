// Durable-store throughput: batched publish to 1 topic with 1 acking subscription, 128-byte
// messages, for each flush setting (and the memory store for reference). Medians of N runs.
//
//   npx tsx scripts/measure-durable.ts                       # broker over gRPC (child process)
//   npx tsx scripts/measure-durable.ts --level store         # the store alone (no gRPC)
//   npx tsx scripts/measure-durable.ts --target 127.0.0.1:50051 --modes fsync-on   # a running broker
//   options: --runs 3 --messages 200000 --batch 100 --producers 4 --size 128 --modes memory,fsync-off,fsync-on
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { credentials, type ServiceError } from "@grpc/grpc-js";
import { BrokerClient, type ConsumeResponse, type PublishMessage } from "../proto/gen/ratatoskr/v2/broker.js";
import { startCliBroker } from "../test/support/index.js";
import { defaultTopicConfig, LmdbStore, MemoryStore, type Store, type StoredMessage } from "../broker/index.js";

const { values } = parseArgs({
  options: {
    level: { type: "string", default: "broker" },
    runs: { type: "string", default: "3" },
    messages: { type: "string", default: "200000" },
    batch: { type: "string", default: "100" },
    producers: { type: "string", default: "4" },
    size: { type: "string", default: "128" },
    modes: { type: "string", default: "memory,fsync-off,fsync-on" },
    /** host:port of a broker already running (then --modes only labels the output). */
    target: { type: "string" },
  },
});
const RUNS = Number(values.runs);
const MESSAGES = Number(values.messages);
const BATCH = Number(values.batch);
const PRODUCERS = Number(values.producers);
const SIZE = Number(values.size);
type Mode = "memory" | "fsync-off" | "fsync-on";
const MODES = values.modes!.split(",") as Mode[];

interface RunResult {
  publishPerSec: number;
  /** Until the subscription has received (and acked) every message. */
  endToEndPerSec: number;
}

async function runBroker(mode: Mode): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), "ratatoskr-measure-"));
  const args = mode === "memory" ? [] : ["--data-dir", dir, ...(mode === "fsync-on" ? ["--fsync"] : [])];
  const started = values.target === undefined ? await startCliBroker(args).catch((err: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }) : undefined;
  const address = values.target ?? started!.address;
  const run = Math.random().toString(36).slice(2, 8);
  const topic = `measure-${run}`;
  const client = new BrokerClient(address, credentials.createInsecure(), { "grpc.max_receive_message_length": 64 << 20 });
  const call = <Req, Res>(method: string, req: Req): Promise<Res> =>
    new Promise((resolve, reject) =>
      (client as unknown as Record<string, (r: Req, cb: (e: ServiceError | null, r: Res) => void) => void>)[method]!.call(client, req, (e, r) => (e ? reject(e) : resolve(r))),
    );
  try {
    await call("createTopic", { name: topic, config: undefined });
    await call("createSubscription", {
      name: `${topic}-sub`,
      topic,
      config: { start: 1, startSequence: 0n, startTimestampMs: 0n, ackDeadlineMs: 0, maxDeliveries: 0, deadLetterTopic: "", retryBackoffMinMs: 0, retryBackoffMaxMs: 0 },
    });
    let received = 0;
    let allReceived: () => void = () => {};
    const drained = new Promise<void>((resolve) => (allReceived = resolve));
    const stream = client.consume();
    stream.on("data", (res: ConsumeResponse) => {
      received += res.deliveries.length;
      stream.write({ start: undefined, ackIds: res.deliveries.map((d) => d.ackId), nackIds: [], extend: undefined });
      if (received >= MESSAGES) allReceived();
    });
    stream.on("error", () => undefined);
    stream.write({ start: { subscription: `${topic}-sub`, maxOutstandingMessages: 10_000, maxOutstandingBytes: 0n, consumerName: "measure" }, ackIds: [], nackIds: [], extend: undefined });

    const payload = Buffer.alloc(SIZE, 0x61);
    const batch: PublishMessage[] = Array.from({ length: BATCH }, () => ({ payload, attributes: {}, messageId: "" }));
    let issued = 0;
    const startedAt = performance.now();
    await Promise.all(
      Array.from({ length: PRODUCERS }, async () => {
        while (issued < MESSAGES) {
          issued += BATCH;
          await call("publish", { topic, messages: batch });
        }
      }),
    );
    const published = performance.now();
    await drained;
    const done = performance.now();
    stream.cancel();
    return { publishPerSec: (issued / (published - startedAt)) * 1000, endToEndPerSec: (received / (done - startedAt)) * 1000 };
  } finally {
    client.close();
    started?.child.kill("SIGTERM");
    await started?.child.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runStore(mode: Mode): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), "ratatoskr-measure-"));
  const store: Store = mode === "memory" ? new MemoryStore() : await LmdbStore.open({ dataDir: dir, fsync: mode === "fsync-on" });
  try {
    await store.putTopic({ name: "measure", config: defaultTopicConfig(), createdAtMs: Date.now() });
    const payload = Buffer.alloc(SIZE, 0x61);
    let next = 1;
    const started = performance.now();
    // PRODUCERS appenders, each awaiting its commit before the next batch (as publishers do).
    await Promise.all(
      Array.from({ length: PRODUCERS }, async () => {
        while (next <= MESSAGES) {
          const batch: StoredMessage[] = [];
          for (let i = 0; i < BATCH; i++) {
            batch.push({ id: crypto.randomUUID(), topic: "measure", sequence: next++, payload, attributes: {}, publishTimeMs: Date.now(), producerId: false });
          }
          await store.append("measure", batch);
        }
      }),
    );
    const elapsed = performance.now() - started;
    const rate = ((next - 1) / elapsed) * 1000;
    return { publishPerSec: rate, endToEndPerSec: rate };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const k = (n: number): string => `${Math.round(n).toLocaleString("en-US")}`;
console.log(`level=${values.level} messages=${MESSAGES} batch=${BATCH} producers=${PRODUCERS} size=${SIZE}B runs=${RUNS}`);
for (const mode of MODES) {
  const results: RunResult[] = [];
  for (let r = 0; r < RUNS; r++) {
    const res = values.level === "store" ? await runStore(mode) : await runBroker(mode);
    results.push(res);
    console.log(`  ${mode} run ${r + 1}: publish ${k(res.publishPerSec)} msg/s, end-to-end ${k(res.endToEndPerSec)} msg/s`);
  }
  console.log(
    `${mode.padEnd(9)} median: publish ${k(median(results.map((x) => x.publishPerSec)))} msg/s, end-to-end ${k(median(results.map((x) => x.endToEndPerSec)))} msg/s`,
  );
}
