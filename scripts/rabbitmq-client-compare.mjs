#!/usr/bin/env node
// The two RabbitMQ clients side by side, as bare clients (a publisher process and a consumer
// process, no accounting): `amqplib` (what the rabbitmq driver uses) and `rabbitmq-client`.
// Both must be installed where Node resolves them from AMQP_CLIENTS_DIR (a scratch directory, so
// the project does not depend on both):
//   mkdir -p .tmp/amqp && (cd .tmp/amqp && npm init -y >/dev/null && npm install amqplib@2.3.1 rabbitmq-client@5.0.8)
//   AMQP_CLIENTS_DIR=.tmp/amqp node scripts/rabbitmq-client-compare.mjs <host:port> [messages=200000] [bytes=128] [passes=3] [queueType=quorum]
// A running RabbitMQ is needed (e.g. the embedded one: `npx tsx scripts/rabbitmq-start.ts`).
// One fan-out exchange, one queue of the given type bound to it; the publisher keeps 1,000
// confirms outstanding (publisher confirms, persistent messages); the consumer uses prefetch
// 1,000 and manual acks, one `multiple` ack per 100 deliveries (as the driver acks). Alternates
// the two clients, a fresh exchange and queue per run.
import { fork } from "node:child_process";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const CLIENTS = ["amqplib", "rabbitmq-client"];
const WINDOW = 1000;
const PREFETCH = 1000;
const ACK_EVERY = 100;

async function load(spec) {
  const require = createRequire(resolve(process.env.AMQP_CLIENTS_DIR ?? ".", "package.json"));
  return import(pathToFileURL(require.resolve(spec)).href);
}

async function amqplibSide(role, url, total, bytes, exchange, queue, queueType) {
  const amqp = await load("amqplib");
  const conn = await amqp.connect(url);
  if (role === "--sub") {
    const ch = await conn.createChannel();
    await ch.assertExchange(exchange, "fanout", { durable: true });
    await ch.assertQueue(queue, { durable: true, arguments: { "x-queue-type": queueType } });
    await ch.bindQueue(queue, exchange, "");
    await ch.prefetch(PREFETCH);
    let got = 0;
    await ch.consume(queue, (m) => {
      got++;
      if (got % ACK_EVERY === 0 || got === total) ch.ack(m, true);
      if (got === total) process.send({ endNs: String(process.hrtime.bigint()) });
    });
    process.send({ ready: true });
  } else {
    const ch = await conn.createConfirmChannel();
    const payload = Buffer.alloc(bytes);
    process.send({ ready: true });
    process.once("message", () => {
      const startNs = process.hrtime.bigint();
      let sent = 0;
      let confirmed = 0;
      const pump = () => {
        while (sent < total && sent - confirmed < WINDOW) {
          sent++;
          ch.publish(exchange, "", payload, { persistent: true }, (err) => {
            if (err) throw err;
            if (++confirmed === total) process.send({ startNs: String(startNs), doneNs: String(process.hrtime.bigint()) });
            else if (sent - confirmed <= WINDOW / 2) pump();
          });
        }
      };
      pump();
    });
  }
}

async function rabbitmqClientSide(role, url, total, bytes, exchange, queue, queueType) {
  const { Connection } = await load("rabbitmq-client");
  const rabbit = new Connection(url);
  rabbit.on("error", (err) => console.error("rabbitmq-client:", err));
  const ch = await rabbit.acquire();
  if (role === "--sub") {
    await ch.exchangeDeclare({ exchange, type: "fanout", durable: true });
    await ch.queueDeclare({ queue, durable: true, arguments: { "x-queue-type": queueType } });
    await ch.queueBind({ queue, exchange, routingKey: "" });
    await ch.basicQos({ prefetchCount: PREFETCH });
    let got = 0;
    await ch.basicConsume({ queue }, (m) => {
      got++;
      if (got % ACK_EVERY === 0 || got === total) ch.basicAck({ deliveryTag: m.deliveryTag, multiple: true });
      if (got === total) process.send({ endNs: String(process.hrtime.bigint()) });
    });
    process.send({ ready: true });
  } else {
    await ch.confirmSelect();
    const payload = Buffer.alloc(bytes);
    process.send({ ready: true });
    process.once("message", () => {
      const startNs = process.hrtime.bigint();
      let sent = 0;
      let confirmed = 0;
      const pump = () => {
        while (sent < total && sent - confirmed < WINDOW) {
          sent++;
          ch.basicPublish({ exchange, routingKey: "", durable: true }, payload).then(() => {
            if (++confirmed === total) process.send({ startNs: String(startNs), doneNs: String(process.hrtime.bigint()) });
            else if (sent - confirmed <= WINDOW / 2) pump();
          });
        }
      };
      pump();
    });
  }
}

const role = process.argv[2];
if (role === "--pub" || role === "--sub") {
  const [, , , client, url, n, bytes, exchange, queue, queueType] = process.argv;
  const side = client === "amqplib" ? amqplibSide : rabbitmqClientSide;
  await side(role, url, Number(n), Number(bytes), exchange, queue, queueType);
} else {
  const [target, messages = "200000", bytes = "128", passes = "3", queueType = "quorum"] = process.argv.slice(2);
  if (!target) {
    console.error("usage: AMQP_CLIENTS_DIR=<dir> node scripts/rabbitmq-client-compare.mjs <host:port> [messages] [bytes] [passes] [queueType]");
    process.exit(2);
  }
  const url = `amqp://guest:guest@${target}`;
  const next = (child) => new Promise((res) => child.once("message", res));
  const results = Object.fromEntries(CLIENTS.map((k) => [k, []]));
  for (let p = 0; p < Number(passes); p++) {
    const order = p % 2 === 0 ? CLIENTS : [...CLIENTS].reverse();
    for (const client of order) {
      const tag = `cmp-${client}-${p}-${process.pid}`;
      const args = [client, url, messages, bytes, `${tag}-x`, `${tag}-q`, queueType];
      const sub = fork(process.argv[1], ["--sub", ...args]);
      await next(sub);
      const pub = fork(process.argv[1], ["--pub", ...args]);
      await next(pub);
      const subDone = next(sub);
      pub.send("go");
      const { startNs, doneNs } = await next(pub);
      const { endNs } = await subDone;
      const s = Number(BigInt(endNs) - BigInt(startNs)) / 1e9;
      const ps = Number(BigInt(doneNs) - BigInt(startNs)) / 1e9;
      const rate = Number(messages) / s;
      results[client].push(rate);
      console.log(`pass ${p + 1} ${client}: ${Math.round(rate)} msg/s published+confirmed+consumed+acked (confirms done in ${ps.toFixed(2)} s, last delivery at ${s.toFixed(2)} s)`);
      pub.kill("SIGTERM");
      sub.kill("SIGTERM");
    }
  }
  for (const [client, rates] of Object.entries(results)) {
    const sorted = [...rates].sort((a, b) => a - b);
    console.log(`${client}: median ${Math.round(sorted[sorted.length >> 1])} msg/s over ${rates.length} passes (${sorted.map(Math.round).join(", ")})`);
  }
}
