import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { pollUntil, startV1TestServer, uniqueName, v1Subscribe, type V1TestServer } from "../../../test/support/index.js";
import { OutboundBudget } from "../outbound.js";

// A v1 subscriber that stops reading must be cut off with RESOURCE_EXHAUSTED once its queue
// passes the buffer limit, without slowing the publisher or the other subscribers, and
// without the broker holding what the stalled client never read. The stalled subscriber is a
// child process frozen with SIGSTOP: it really stops reading its socket.

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const repo = join(import.meta.dirname, "..", "..", "..");

interface ChildEnd {
  code: status;
  details: string;
  count: number;
  inOrder: boolean;
}

let s: V1TestServer | undefined;
let child: ChildProcess | undefined;
afterEach(async () => {
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    process.kill(child.pid, "SIGCONT");
    child.kill("SIGKILL");
  }
  child = undefined;
  await s?.close();
  s = undefined;
});

/** Starts the subscriber child; resolves once its subscription is registered. */
async function spawnSubscriber(address: string, topic: string): Promise<{ pid: number; ended: Promise<ChildEnd> }> {
  const proc = spawn(process.execPath, ["--import", "tsx", join("test", "support", "v1-stall-child.ts"), address, topic], {
    cwd: repo,
    stdio: ["ignore", "pipe", "inherit"],
  });
  child = proc;
  const lines = createInterface({ input: proc.stdout! });
  let onSubscribed: () => void = () => undefined;
  const subscribed = new Promise<void>((resolve) => (onSubscribed = resolve));
  const ended = new Promise<ChildEnd>((resolve, reject) => {
    lines.on("line", (line) => {
      const event = JSON.parse(line) as { event: string } & ChildEnd;
      if (event.event === "subscribed") onSubscribed();
      if (event.event === "ended") resolve(event);
    });
    proc.on("exit", (code) => reject(new Error(`subscriber child exited (${code}) without reporting its end`)));
  });
  ended.catch(() => undefined);
  await Promise.race([subscribed, ended]);
  return { pid: proc.pid!, ended };
}

/** Publishes `count` messages of `size` bytes, `batch` per PublishBatch; returns ids in order. */
async function publishMany(server: V1TestServer, topic: string, count: number, size: number, batch: number, afterBatch?: () => void): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += batch) {
    const n = Math.min(batch, count - i);
    const messages = Array.from({ length: n }, (_, k) => ({ topic: "", payload: Buffer.alloc(size, (i + k) % 251), metadata: { i: String(i + k) } }));
    const res = await server.api.publishBatch({ topic, messages });
    expect(res.successCount).toBe(n);
    ids.push(...res.results.map((r) => r.messageId));
    afterBatch?.();
  }
  return ids;
}

describe("v1 slow consumer", () => {
  it("cuts off a stalled subscriber while a fast one receives everything, with broker memory bounded", async () => {
    const bufferBytes = 1024 * 1024;
    s = await startV1TestServer({ v1: { bufferBytes, resetGraceMs: 60_000 } });
    const topic = uniqueName("slow");
    await s.api.createTopic({ name: topic });
    const fast = await v1Subscribe(s.client, topic, { mode: "light" });
    const slow = await spawnSubscriber(s.address, topic);
    process.kill(slow.pid, "SIGSTOP");
    gc();
    const before = process.memoryUsage().arrayBuffers;

    // 64 MiB in 256 KiB batches: far more than the stalled client's socket buffers absorb.
    // (A batch fans out in one synchronous pass, so it must stay under the limit or even a
    // fast subscriber would rightly be cut off.)
    const count = 1_024;
    let peakQueued = 0;
    const ids = await publishMany(s, topic, count, 64 * 1024, 4, () => {
      peakQueued = Math.max(peakQueued, s!.v1.subscribers.queuedBytes());
    });
    await fast.received(count);
    expect(fast.messages.map((m) => m.id)).toEqual(ids);

    expect(s.v1.subscribers.cutOffCount).toBe(1);
    expect(s.v1.subscribers.peakQueuedBytes).toBeLessThanOrEqual(bufferBytes);
    expect(peakQueued).toBeLessThanOrEqual(2 * bufferBytes);
    expect(s.v1.subscribers.active.size).toBe(1);
    expect((await s.api.getStats({ topic })).subscriberCount).toBe(1);
    // Buffers this process still holds after 64 MiB went through: an unbounded queue for the
    // stalled subscriber would hold most of it for good. Buffers already sent are released
    // asynchronously (write callbacks, HTTP/2 session buffers), so wait for the figure to fall
    // under the bound rather than read it once.
    await pollUntil(() => {
      gc();
      return process.memoryUsage().arrayBuffers - before < 16 * 1024 * 1024;
    }, "the test process to hold under 16 MiB more buffers than before publishing", 10_000, 100);

    // Woken up, it reads what was already on the wire, then the readable status.
    process.kill(slow.pid, "SIGCONT");
    const end = await slow.ended;
    expect(end.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(end.details).toMatch(/^slow consumer: /);
    expect(end.count).toBeLessThan(count);
    expect(end.inOrder).toBe(true);
    fast.stream.cancel();
  });

  it("resets a cut-off stream whose client does not read its status within the grace period", async () => {
    s = await startV1TestServer({ v1: { bufferBytes: 256 * 1024, resetGraceMs: 100 } });
    const topic = uniqueName("never");
    await s.api.createTopic({ name: topic });
    const slow = await spawnSubscriber(s.address, topic);
    process.kill(slow.pid, "SIGSTOP");
    for (let i = 0; i < 512 && s.v1.subscribers.cutOffCount === 0; i++) await publishMany(s, topic, 4, 32 * 1024, 4);
    expect(s.v1.subscribers.cutOffCount).toBe(1);
    // The reset happens while the client is still frozen: nothing waits on it.
    await pollUntil(() => s!.v1.subscribers.resetCount === 1, "the stream reset", 5_000);
    process.kill(slow.pid, "SIGCONT");
    const end = await slow.ended;
    expect(end.code).toBe(status.RESOURCE_EXHAUSTED);
  });
});

describe("v1 subscribers and the broker-wide outbound budget", () => {
  it("cuts off the subscriber furthest behind when the budget is full, naming the limit; the fast one gets everything", async () => {
    const budget = new OutboundBudget(1024 * 1024);
    // The per-subscriber buffer is far above the budget: only the shared budget can stop it.
    s = await startV1TestServer({ v1: { bufferBytes: 64 * 1024 * 1024, resetGraceMs: 60_000, budget } });
    const topic = uniqueName("budget");
    await s.api.createTopic({ name: topic });
    const fast = await v1Subscribe(s.client, topic, { mode: "light" });
    const slow = await spawnSubscriber(s.address, topic);
    process.kill(slow.pid, "SIGSTOP");
    const count = 256;
    const ids = await publishMany(s, topic, count, 64 * 1024, 4);
    await fast.received(count);
    expect(fast.messages.map((m) => m.id)).toEqual(ids);
    expect(s.v1.subscribers.cutOffCount).toBe(1);
    // At most the budget plus the batch in flight to the fast subscriber.
    expect(budget.peakBytes).toBeLessThanOrEqual(budget.budgetBytes + 4 * 64 * 1024 + 4096);
    process.kill(slow.pid, "SIGCONT");
    const end = await slow.ended;
    expect(end.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(end.details).toMatch(/outbound-budget-bytes 1048576/);
    fast.stream.cancel();
  });
});
