// CPU per message of the v2 wire edge alone, generated (ts-proto + v2-wire.ts mapping) against
// the hand codecs (request-codec.ts, publish-response-codec.ts), alternating in one process so a
// busy machine weighs on both alike. Per message of a PublishStream request of `batch` messages
// of `size` bytes: decode the request, encode its answer; per ack: decode a ConsumeRequest of
// `batch` ack ids. Prints CPU-ns per message (process.cpuUsage), the median of `rounds`.
//   npx tsx scripts/v2-codec-cost.ts [batch=100] [size=128] [rounds=7]
import { ConsumeRequest, PublishStreamRequest, PublishStreamResponse } from "../proto/gen/ratatoskr/v2/broker.js";
import { decodeConsumeRequest, decodePublishRequest } from "../broker/server/v2/request-codec.js";
import { encodePublishAnswer } from "../broker/server/v2/publish-response-codec.js";
import { consumeCommandsFromWire, publishRequestFromWire, publishResponseToWire } from "../broker/server/v2/v2-wire.js";
import type { PublishOutcome } from "../broker/index.js";

const batch = Number(process.argv[2] ?? 100);
const size = Number(process.argv[3] ?? 128);
const rounds = Number(process.argv[4] ?? 7);
const frames = 2000;

const publishFrame = Buffer.from(
  PublishStreamRequest.encode({ topic: "bench-topic", requestId: 123456789n, messages: Array.from({ length: batch }, () => ({ payload: Buffer.alloc(size, 7), attributes: {}, messageId: "" })) }).finish(),
);
const outcomes: PublishOutcome[] = Array.from({ length: batch }, (_, i) => ({ id: crypto.randomUUID(), sequence: 1_000_000 + i, publishTimeMs: Date.now(), duplicate: false }));
const ackFrame = Buffer.from(ConsumeRequest.encode({ ackIds: Array.from({ length: batch }, (_, i) => BigInt(5_000_000 + i)), nackIds: [], start: undefined, extend: undefined }).finish());

let sink = 0;
const cases: Record<string, Record<string, () => void>> = {
  "publish request decode + answer encode": {
    generated: () => {
      const r = PublishStreamRequest.decode(publishFrame);
      sink += publishRequestFromWire(r).messages.length;
      sink += PublishStreamResponse.encode({ requestId: r.requestId, ...publishResponseToWire(outcomes, 0), errorCode: 0, errorMessage: "" }).finish().length;
    },
    hand: () => {
      const r = decodePublishRequest(publishFrame);
      sink += r.messages.length;
      sink += encodePublishAnswer(r.requestId, outcomes, 0).length;
    },
  },
  "ack frame decode": {
    generated: () => void (sink += consumeCommandsFromWire(ConsumeRequest.decode(ackFrame)).ackIds!.length),
    hand: () => void (sink += decodeConsumeRequest(ackFrame).commands.ackIds!.length),
  },
};

function cpuNsPerMessage(f: () => void): number {
  const start = process.cpuUsage();
  for (let i = 0; i < frames; i++) f();
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / (frames * batch);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
for (const [name, impls] of Object.entries(cases)) {
  for (const f of Object.values(impls)) cpuNsPerMessage(f); // warm up both
  const results: Record<string, number[]> = { generated: [], hand: [] };
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ["generated", "hand"] : ["hand", "generated"];
    for (const which of order) results[which]!.push(cpuNsPerMessage(impls[which]!));
  }
  const g = median(results.generated!);
  const h = median(results.hand!);
  console.log(`${name} (${batch} × ${size} B): generated ${g.toFixed(0)} CPU-ns/message, hand ${h.toFixed(0)} (${(g / h).toFixed(2)}× less)`);
}
if (sink < 0) console.log(sink);
