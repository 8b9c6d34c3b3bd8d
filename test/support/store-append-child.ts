// Child process for store-crash.test.ts (not a test file): appends to an LmdbStore as fast as
// it can, the way the broker does (sequences assigned synchronously, several batches in flight),
// and prints "acked <last sequence>" once each append has resolved. Also writes ack state and
// applies retention, so those writes are in flight when the parent kills it.
//   node --import tsx test/support/store-append-child.ts <dataDir> <fsync: on|off>
import { LmdbStore, type StoredMessage } from "../../broker/store/index.js";
import { payloadFor, plainTopicConfig } from "./store-records.js";

const [dataDir, fsync] = process.argv.slice(2);
if (dataDir && import.meta.url === `file://${process.argv[1]}`) {
  const store = await LmdbStore.open({ dataDir, fsync: fsync === "on" });
  const { topics, subscriptions } = store.recover();
  if (!topics.some((t) => t.name === "t")) await store.putTopic({ name: "t", config: plainTopicConfig(), createdAtMs: Date.now() });
  if (!subscriptions.some((s) => s.record.name === "s")) {
    await store.putSubscription({
      name: "s",
      topic: "t",
      createdAtMs: Date.now(),
      startSequence: 1,
      config: { ackDeadlineMs: 1_000, maxDeliveries: 0, deadLetterTopic: "", retryBackoffMinMs: 0, retryBackoffMaxMs: 0 },
    });
  }
  let next = store.bounds("t").last + 1;
  process.stdout.write(`ready ${next - 1}\n`);
  let batches = 0;
  const appender = async (): Promise<void> => {
    for (;;) {
      const size = 1 + Math.floor(Math.random() * 100);
      const batch: StoredMessage[] = [];
      for (let i = 0; i < size; i++) {
        const sequence = next++;
        batch.push({ id: `m${sequence}`, topic: "t", sequence, payload: payloadFor(sequence), attributes: { seq: String(sequence) }, publishTimeMs: Date.now(), producerId: sequence % 7 === 0 });
      }
      await store.append("t", batch);
      const last = batch[batch.length - 1]!.sequence;
      process.stdout.write(`acked ${last}\n`);
      store.putAckState("s", { floor: last - 500, above: [last - 100, last - 50] });
      if (++batches % 20 === 0) store.truncateBefore("t", last - 2_000);
    }
  };
  await Promise.all([appender(), appender(), appender(), appender()]);
}
