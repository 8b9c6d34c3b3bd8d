#!/usr/bin/env node
// The two Node Redis clients side by side on Redis Streams, as bare clients (a publisher process
// and a subscriber process, no accounting): `ioredis` (what the redis-streams driver uses) and
// node-redis (`redis`). Both must be installed where Node resolves them from REDIS_CLIENTS_DIR (a
// scratch directory, so the project does not depend on both):
//   mkdir -p .tmp/redis-clients && (cd .tmp/redis-clients && npm init -y >/dev/null && npm install ioredis@6.0.0 redis@6.3.1)
//   REDIS_CLIENTS_DIR=.tmp/redis-clients node scripts/redis-client-compare.mjs <host:port> [messages=200000] [bytes=128] [passes=3]
// One stream, one consumer group: the publisher keeps 4 pipelined batches of 100 XADDs in
// flight (the driver's defaults), the subscriber reads XREADGROUP COUNT 500 BLOCK 1000 and acks
// each read with one XACK. Alternates the two clients; prints msg/s consumed+acked per pass.
import { fork } from "node:child_process";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const CLIENTS = ["ioredis", "redis"];
const BATCH = 100;
const WINDOW = 4;

async function load(spec) {
  const require = createRequire(resolve(process.env.REDIS_CLIENTS_DIR ?? ".", "package.json"));
  return import(pathToFileURL(require.resolve(spec)).href);
}

/** The same four calls over either client. */
async function client(spec, target) {
  const [host, port] = target.split(":");
  if (spec === "ioredis") {
    const { Redis } = await load("ioredis");
    const r = new Redis({ host, port: Number(port), enableAutoPipelining: false, maxRetriesPerRequest: 0 });
    await r.ping();
    return {
      xaddBatch: (key, payloads) => {
        const p = r.pipeline();
        for (const b of payloads) p.xadd(key, "*", "d", b);
        return p.exec();
      },
      group: (key, g) => r.xgroup("CREATE", key, g, "$", "MKSTREAM").catch(() => undefined),
      read: async (key, g) => {
        const res = await r.xreadgroupBuffer("GROUP", g, "c", "COUNT", 500, "BLOCK", 1000, "STREAMS", key, ">");
        return res ? res[0][1].map((e) => e[0]) : [];
      },
      ack: (key, g, ids) => r.xack(key, g, ...ids),
      close: () => r.quit(),
    };
  }
  const { createClient, RESP_TYPES } = await load("redis");
  const r = createClient({ socket: { host, port: Number(port) } }).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  await r.connect();
  return {
    xaddBatch: (key, payloads) => {
      const m = r.multi();
      for (const b of payloads) m.xAdd(key, "*", { d: b });
      return m.execAsPipeline();
    },
    group: (key, g) => r.xGroupCreate(key, g, "$", { MKSTREAM: true }).catch(() => undefined),
    read: async (key, g) => {
      const res = await r.xReadGroup(g, "c", { key, id: ">" }, { COUNT: 500, BLOCK: 1000 });
      return res ? res[0].messages.map((e) => e.id) : [];
    },
    ack: (key, g, ids) => r.xAck(key, g, ids),
    close: () => r.quit(),
  };
}

const role = process.argv[2];
if (role === "--pub" || role === "--sub") {
  const [, , , spec, target, n, bytes, key] = process.argv;
  const c = await client(spec, target);
  const total = Number(n);
  if (role === "--sub") {
    await c.group(key, "g");
    process.send({ ready: true });
    let got = 0;
    while (got < total) {
      const ids = await c.read(key, "g");
      if (ids.length === 0) continue;
      got += ids.length;
      await c.ack(key, "g", ids);
    }
    process.send({ endNs: String(process.hrtime.bigint()) });
  } else {
    const payloads = Array.from({ length: BATCH }, () => Buffer.alloc(Number(bytes)));
    process.send({ ready: true });
    process.once("message", async () => {
      const startNs = process.hrtime.bigint();
      let sent = 0;
      const lane = async () => {
        while (sent < total) {
          const k = Math.min(BATCH, total - sent);
          sent += k;
          await c.xaddBatch(key, k === BATCH ? payloads : payloads.slice(0, k));
        }
      };
      await Promise.all(Array.from({ length: WINDOW }, lane));
      process.send({ startNs: String(startNs), pubEndNs: String(process.hrtime.bigint()) });
    });
  }
  process.on("message", (m) => m === "exit" && c.close().finally(() => process.exit(0)));
} else {
  const [target, n = "200000", bytes = "128", passes = "3"] = process.argv.slice(2);
  if (!target) {
    console.error("usage: node scripts/redis-client-compare.mjs <host:port> [messages] [bytes] [passes]");
    process.exit(2);
  }
  const next = (child) => new Promise((res, rej) => { child.once("message", res); child.once("exit", (c) => rej(new Error(`child exited ${c}`))); });
  for (let pass = 0; pass < Number(passes); pass++) {
    for (const spec of pass % 2 ? [...CLIENTS].reverse() : CLIENTS) {
      const key = `cmp-${spec}-${process.pid}-${pass}`;
      const self = new URL(import.meta.url).pathname;
      const sub = fork(self, ["--sub", spec, target, n, bytes, key]);
      await next(sub);
      const pub = fork(self, ["--pub", spec, target, n, bytes, key]);
      await next(pub);
      const done = next(sub);
      pub.send("go");
      const p = await next(pub);
      const s = await done;
      const secs = Number(BigInt(s.endNs) - BigInt(p.startNs)) / 1e9;
      const pubSecs = Number(BigInt(p.pubEndNs) - BigInt(p.startNs)) / 1e9;
      console.log(`pass ${pass + 1} ${spec.padEnd(8)} published ${Math.round(Number(n) / pubSecs)} msg/s, consumed+acked ${Math.round(Number(n) / secs)} msg/s`);
      for (const c of [pub, sub]) c.send("exit");
    }
  }
}
