#!/usr/bin/env node
// The NATS client lines side by side, as bare clients (a publisher process and a subscriber
// process, no accounting): `nats` 2.x (what the drivers use) and `@nats-io/transport-node` 3.x.
// Both must be installed where Node resolves them from NATS_CLIENTS_DIR (a scratch directory,
// so the project does not depend on both):
//   mkdir -p .tmp/nats3 && (cd .tmp/nats3 && npm init -y >/dev/null && npm install nats@2.29.3 @nats-io/transport-node@3.4.0)
//   NATS_CLIENTS_DIR=.tmp/nats3 node scripts/nats-client-compare.mjs <host:port> [messages=1000000] [bytes=128] [passes=3] [subscribers=1]
// One subject; the publisher sends batches of 100 PUBs and flushes every 1,000 (the nats
// driver's cadence); each subscriber (its own connection) counts. Alternates the two clients.
import { fork } from "node:child_process";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const CLIENTS = { "nats 2.x": "nats", "@nats-io 3.x": "@nats-io/transport-node" };

async function load(spec) {
  const require = createRequire(resolve(process.env.NATS_CLIENTS_DIR ?? ".", "package.json"));
  return import(pathToFileURL(require.resolve(spec)).href);
}

const role = process.argv[2];
if (role === "--pub" || role === "--sub") {
  const [, , , spec, target, n, bytes, subject] = process.argv;
  const { connect } = await load(spec);
  const nc = await connect({ servers: target, noAsyncTraces: true, reconnect: false });
  const total = Number(n);
  if (role === "--sub") {
    let got = 0;
    nc.subscribe(subject, {
      callback: () => {
        if (++got === total) process.send({ endNs: String(process.hrtime.bigint()) });
      },
    });
    await nc.flush();
    process.send({ ready: true });
  } else {
    const payload = new Uint8Array(Number(bytes));
    process.send({ ready: true });
    process.once("message", async () => {
      const startNs = process.hrtime.bigint();
      for (let sent = 0; sent < total; ) {
        for (let i = 0; i < 100 && sent < total; i++, sent++) nc.publish(subject, payload);
        if (sent % 1000 === 0) await nc.flush();
      }
      await nc.flush();
      process.send({ startNs: String(startNs) });
    });
  }
} else {
  const [target, messages = "1000000", bytes = "128", passes = "3", subscribers = "1"] = process.argv.slice(2);
  if (!target) {
    console.error("usage: NATS_CLIENTS_DIR=<dir> node scripts/nats-client-compare.mjs <host:port> [messages] [bytes] [passes] [subscribers]");
    process.exit(2);
  }
  const next = (child) => new Promise((res) => child.once("message", res));
  const results = Object.fromEntries(Object.keys(CLIENTS).map((k) => [k, []]));
  for (let p = 0; p < Number(passes); p++) {
    const order = p % 2 === 0 ? Object.keys(CLIENTS) : Object.keys(CLIENTS).reverse();
    for (const name of order) {
      const subject = `cmp.${process.pid}.${p}.${name.replace(/\W/g, "")}`;
      const args = (r) => [r, CLIENTS[name], target, messages, bytes, subject];
      const subs = Array.from({ length: Number(subscribers) }, () => fork(process.argv[1], args("--sub")));
      await Promise.all(subs.map(next));
      const pub = fork(process.argv[1], args("--pub"));
      await next(pub);
      const ends = Promise.all(subs.map(next));
      pub.send("go");
      const { startNs } = await next(pub);
      const endNs = (await ends).map((m) => BigInt(m.endNs)).reduce((a, b) => (a > b ? a : b));
      const rate = (Number(messages) * Number(subscribers) * 1e9) / Number(endNs - BigInt(startNs));
      results[name].push(rate);
      console.log(`pass ${p + 1} ${name}: ${(rate / 1000).toFixed(1)}K deliveries/s`);
      for (const c of [pub, ...subs]) c.kill("SIGTERM");
    }
  }
  const med = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
  for (const [name, v] of Object.entries(results)) console.log(`median ${name}: ${(med(v) / 1000).toFixed(1)}K deliveries/s (${v.map((x) => (x / 1000).toFixed(0) + "K").join(", ")})`);
}
