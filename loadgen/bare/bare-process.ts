/**
 * One side of a bare client (bare-client.ts): a publisher or a subscriber process, each with
 * its own event loop, speaking to the broker through the scenario's driver but doing nothing
 * else: no payload headers, no accounting, no histograms, no rate limiter. The parent sends the
 * job as the first IPC message and reads the outcome from the last.
 *
 * Publisher: every producer of the plan keeps `maxInFlightBatches` batches of `batchSize`
 * messages in flight, serving its topics round-robin until its quota is sent.
 * Subscriber: opens every consumer of the plan and counts deliveries; it stamps (monotonic µs,
 * the same clock in every process on the machine) the moment the warmup share has arrived and
 * the moment the last expected delivery arrived.
 */
import { createDriver, type DeliverySink, type Driver } from "../drivers/index.js";
import { systemClock } from "../clock.js";
import type { BareJob, BareReply } from "./protocol.js";

const clock = systemClock;

function send(reply: BareReply): void {
  process.send!(reply);
}

function driverFor(job: BareJob): Driver {
  return createDriver(
    job.driver,
    {
      target: job.target,
      connections: job.connections,
      maxOutstandingMessages: job.maxOutstandingMessages,
      connectTimeoutMs: job.connectTimeoutMs,
      broker: job.broker,
      clock,
    },
    job.driverOptions,
  );
}

async function subscriber(job: BareJob): Promise<void> {
  const driver = driverFor(job);
  await driver.connect();
  let received = 0;
  let warmDoneUs = 0;
  let lastUs = 0;
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    send({ kind: "done", received, warmDoneUs, lastUs });
  };
  const sink: DeliverySink = {
    onDelivery() {
      received++;
      if (warmDoneUs === 0 && received >= job.warmupDeliveries) warmDoneUs = clock.nowUs();
      if (received >= job.expectedDeliveries) {
        lastUs = clock.nowUs();
        finish();
      }
    },
    onStreamError(slot, err) {
      send({ kind: "error", message: `consumer of subscription slot ${slot}: ${err.message}` });
    },
  };
  for (const s of job.subscriptions) {
    for (let c = 0; c < job.consumersPerSubscription; c++) await driver.openConsumer(s, c, sink);
  }
  process.on("message", (m: { kind: string }) => {
    // "report": the publisher is done and the drain deadline passed; say what arrived.
    if (m.kind === "report") finish();
    if (m.kind === "exit") void driver.close().finally(() => process.exit(0));
  });
  send({ kind: "ready" });
}

async function publisher(job: BareJob): Promise<void> {
  const driver = driverFor(job);
  await driver.connect();
  const payloads = Array.from({ length: job.batchSize }, () => Buffer.alloc(job.messageSizeBytes));
  const run = (): Promise<void> =>
    new Promise((resolve, reject) => {
      let active = 0;
      let failed = false;
      for (const p of job.producers) {
        const left = p.messagesPerTopic.slice();
        let cursor = 0;
        const next = (): void => {
          if (failed) return;
          let pos = -1;
          for (let i = 0; i < p.topics.length; i++) {
            const at = (cursor + i) % p.topics.length;
            if (left[at]! > 0) {
              pos = at;
              break;
            }
          }
          if (pos < 0) {
            if (--active === 0) resolve();
            return;
          }
          cursor = pos + 1;
          const n = Math.min(job.batchSize, left[pos]!);
          left[pos]! -= n;
          driver.publish(job.topicNames[p.topics[pos]!]!, n === job.batchSize ? payloads : payloads.slice(0, n), p.id).then(next, (err: unknown) => {
            failed = true;
            reject(err instanceof Error ? err : new Error(String(err)));
          });
        };
        for (let w = 0; w < job.maxInFlightBatches; w++) {
          active++;
          next();
        }
      }
      if (active === 0) resolve();
    });
  process.on("message", (m: { kind: string }) => {
    if (m.kind === "go") {
      const startUs = clock.nowUs();
      run().then(
        () => send({ kind: "published", startUs, endUs: clock.nowUs() }),
        (err: Error) => send({ kind: "error", message: `publish: ${err.message}` }),
      );
    }
    if (m.kind === "exit") void driver.close().finally(() => process.exit(0));
  });
  send({ kind: "ready" });
}

process.once("message", (job: BareJob) => {
  const role = job.role === "publisher" ? publisher : subscriber;
  role(job).catch((err: unknown) => {
    send({ kind: "error", message: err instanceof Error ? err.message : String(err) });
  });
});
