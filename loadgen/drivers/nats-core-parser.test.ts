/**
 * The NATS core parser against a stream written by the test: every MSG comes out once, with
 * its sid and its exact payload bytes, and every control line once, in order, wherever the
 * chunks are cut (each position of a short stream, and random cuts of a long one); malformed
 * input throws naming what is wrong.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { NatsParser, NatsProtocolError } from "./nats-core-parser.js";

type Event = string;

function collect(): { parser: NatsParser; events: Event[] } {
  const events: Event[] = [];
  const parser = new NatsParser(
    (sid, buf, start, end) => events.push(`msg ${sid} ${Buffer.from(buf.subarray(start, end)).toString("hex")}`),
    (line) => events.push(`ctl ${line}`),
  );
  return { parser, events };
}

/** A server stream of `n` items and the events it must give. */
function stream(n: number, seed: () => number): { bytes: Buffer; expected: Event[] } {
  const parts: Buffer[] = [];
  const expected: Event[] = [];
  for (let i = 0; i < n; i++) {
    const r = seed();
    if (r < 0.1) {
      parts.push(Buffer.from("PING\r\n"));
      expected.push("ctl PING");
    } else if (r < 0.15) {
      parts.push(Buffer.from("-ERR 'Slow Consumer'\r\n"));
      expected.push("ctl -ERR 'Slow Consumer'");
    } else if (r < 0.2) {
      const info = `INFO {"server_id":"x${i}","max_payload":1048576}`;
      parts.push(Buffer.from(`${info}\r\n`));
      expected.push(`ctl ${info}`);
    } else {
      const size = seed() < 0.05 ? 0 : Math.floor(seed() * (seed() < 0.1 ? 70_000 : 300));
      const payload = randomBytes(size);
      // Payloads hold CR, LF and "MSG " too: only the size says where they end.
      if (size > 10) payload.write("\r\nMSG x", 3, "latin1");
      const sid = 1 + Math.floor(seed() * 100_000);
      // Mostly the one-pass form (single spaces, no reply subject), sometimes a reply or tabs.
      const reply = seed() < 0.1 ? " _INBOX.abc" : "";
      const sep = seed() < 0.1 ? "\t " : " ";
      parts.push(Buffer.from(`MSG subject.${i % 7}${sep}${sid}${reply} ${size}\r\n`), payload, Buffer.from("\r\n"));
      expected.push(`msg ${sid} ${payload.toString("hex")}`);
    }
  }
  return { bytes: Buffer.concat(parts), expected };
}

function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

describe("NatsParser", () => {
  it("gives the same events for a stream cut in two at every position", () => {
    const { bytes, expected } = stream(12, lcg(7));
    expect(expected.filter((e) => e.startsWith("msg")).length).toBeGreaterThan(3);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const { parser, events } = collect();
      parser.push(bytes.subarray(0, cut));
      parser.push(bytes.subarray(cut));
      expect(events, `cut at ${cut}`).toEqual(expected);
    }
  });

  it("gives the same events for a long stream in random chunks, byte-sized ones included", () => {
    for (const seed of [1, 2, 3]) {
      const rnd = lcg(seed);
      const { bytes, expected } = stream(3000, rnd);
      const { parser, events } = collect();
      for (let i = 0; i < bytes.length; ) {
        const len = rnd() < 0.2 ? 1 : 1 + Math.floor(rnd() * 70_000);
        // A copy: the parser must not keep a chunk it was given.
        const chunk = Buffer.from(bytes.subarray(i, i + len));
        parser.push(chunk);
        chunk.fill(0);
        i += len;
      }
      expect(events).toEqual(expected);
    }
  });

  it("throws on a payload not followed by CRLF, in one chunk or cut", () => {
    const bad = Buffer.from("MSG a 1 3\r\nabcX\r\n");
    expect(() => collect().parser.push(bad)).toThrow(/3-byte MSG payload not followed by CRLF/);
    const { parser } = collect();
    parser.push(bad.subarray(0, 12));
    expect(() => parser.push(bad.subarray(12))).toThrow(NatsProtocolError);
  });

  it("throws on a MSG line whose sid or size is not a number, and on HMSG", () => {
    expect(() => collect().parser.push(Buffer.from("MSG a b 3\r\nabc\r\n"))).toThrow(/numeric sid/);
    expect(() => collect().parser.push(Buffer.from("MSG a 1 3x\r\nabc\r\n"))).toThrow(/numeric size/);
    expect(() => collect().parser.push(Buffer.from("MSG a 1\r\n"))).toThrow(/numeric size/);
    expect(() => collect().parser.push(Buffer.from("MSG a 1 99999999999\r\nabc"))).toThrow(/above the 67108864-byte limit/);
    expect(() => collect().parser.push(Buffer.from("HMSG a 1 12 15\r\nNATS/1.0\r\n\r\nabc\r\n"))).toThrow(/HMSG/);
  });
});
