import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, makeGenericClientConstructor, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  expectStatus,
  healthCheck,
  startV2TestServer,
  TestConsumer,
  TestPublisher,
  uniqueName,
  v1Api,
  v1Client,
  v1Subscribe,
  v2Api,
  v2Client,
  type V2TestServer,
} from "../../test/support/index.js";
import { BrokerConfigError } from "./config.js";

// Tokens and permissions over real sockets (loopback, plaintext: TLS is tls.test.ts's subject).
// One broker with the contract's three tokens and one that can only read `orders-` topics.

const TOKENS = {
  tokens: [
    { name: "ops", token: "s3cret-ops", admin: [""], publish: [""], consume: [""] },
    { name: "orders-p", token: "s3cret-p", publish: ["orders-"] },
    { name: "orders-c", token: "s3cret-c", consume: ["orders-"] },
  ],
};

describe("bearer tokens and permissions", () => {
  let dir: string;
  let tokenFile: string;
  let srv: V2TestServer;
  const clients: Array<{ close(): void }> = [];
  const v2 = (token?: string) => {
    const c = v2Client(srv.running.address, { token });
    clients.push(c);
    return { client: c, api: v2Api(c) };
  };
  const v1 = (token?: string) => {
    const c = v1Client(srv.running.address, { token });
    clients.push(c);
    return { client: c, api: v1Api(c) };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "ratatoskr-tokens-"));
    tokenFile = join(dir, "tokens.json");
    writeFileSync(tokenFile, JSON.stringify(TOKENS));
    srv = await startV2TestServer({ tokenFile });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("states auth=tokens in its settings", () => {
    expect(srv.running.settings.auth).toBe("tokens");
    expect(srv.running.settings.tls).toBe("off");
  });

  it("refuses a call without a token, or with an unknown one, with UNAUTHENTICATED (v1 and v2)", async () => {
    await expectStatus(v2().api.listTopics(), status.UNAUTHENTICATED, /^missing bearer token/);
    await expectStatus(v2("not-a-token").api.createTopic({ name: uniqueName("orders-x") }), status.UNAUTHENTICATED, /^unknown token$/);
    await expectStatus(v1().api.listTopics({}), status.UNAUTHENTICATED, /^missing bearer token/);
    await expectStatus(v1("s3cret-nope").api.publish({ topic: uniqueName("orders-x"), payload: Buffer.from("x"), metadata: {} }), status.UNAUTHENTICATED, /^unknown token$/);
    // Not a bearer credential at all.
    const basic = v2Client(srv.running.address);
    clients.push(basic);
    const md = new Metadata();
    md.set("authorization", "Basic b3BzOnMzY3JldA==");
    const err = await new Promise<ServiceError | null>((resolve) => basic.getBrokerStats({}, md, (e) => resolve(e)));
    expect(err?.code).toBe(status.UNAUTHENTICATED);
    expect(err?.details).toMatch(/missing bearer token/);
  });

  it("answers grpc.health.v1 without a token", async () => {
    expect(await healthCheck(srv.running.address)).toBe("SERVING");
  });

  it("lets a publish-only token publish but not create or delete topics or subscriptions", async () => {
    const topic = uniqueName("orders-pub");
    const ops = v2("s3cret-ops").api;
    const pub = v2("s3cret-p").api;
    await ops.createTopic({ name: topic });
    expect((await pub.publishText(topic, ["a"])).length).toBe(1);
    await expectStatus(pub.createTopic({ name: uniqueName("orders-new") }), status.PERMISSION_DENIED, /token "orders-p" has no admin permission on topic "orders-new-/);
    await expectStatus(pub.deleteTopic(topic), status.PERMISSION_DENIED, /token "orders-p" has no admin permission on topic/);
    await expectStatus(pub.createSubscription({ name: `${topic}-s`, topic }), status.PERMISSION_DENIED, /no admin permission/);
    await ops.createSubscription({ name: `${topic}-s`, topic });
    await expectStatus(pub.deleteSubscription(`${topic}-s`), status.PERMISSION_DENIED, /no admin permission on topic/);
    // Outside its prefix it may not publish either.
    await expectStatus(pub.publishText(uniqueName("payments"), ["x"]), status.PERMISSION_DENIED, /token "orders-p" has no publish permission on topic "payments-/);
    // v1: the refusal is a status (v1's error strings have none for it), and nothing was created.
    const v1pub = v1("s3cret-p").api;
    const v1Topic = uniqueName("orders-v1");
    await expectStatus(v1pub.createTopic({ name: v1Topic }), status.PERMISSION_DENIED, /token "orders-p" has no admin permission/);
    await expectStatus(v1pub.deleteTopic({ name: topic }), status.PERMISSION_DENIED, /no admin permission/);
    expect(await ops.getTopic(topic)).toMatchObject({ name: topic });
    expect((await v1("s3cret-ops").api.topicExists({ name: v1Topic })).exists).toBe(false);
    // …while v1's domain errors keep their strings for a token that has the permission.
    expect(await v1("s3cret-ops").api.deleteTopic({ name: uniqueName("orders-gone") })).toEqual({ success: false, error: "topic_not_found" });
  });

  it("refuses a whole v1 PublishBatch when one item names a topic the token may not publish to", async () => {
    const ok = uniqueName("orders-batch");
    const res = v1("s3cret-p").api.publishBatch({
      topic: ok,
      messages: [
        { topic: "", payload: Buffer.from("a"), metadata: {} },
        { topic: uniqueName("payments"), payload: Buffer.from("b"), metadata: {} },
      ],
    });
    await expectStatus(res, status.PERMISSION_DENIED, /no publish permission on topic "payments-/);
    expect((await v1("s3cret-ops").api.topicExists({ name: ok })).exists).toBe(false);
  });

  it("does not let a consume token scoped to orders- consume payments (v2 Consume and v1 Subscribe)", async () => {
    const ops = v2("s3cret-ops").api;
    const payments = uniqueName("payments");
    const orders = uniqueName("orders-in");
    for (const t of [payments, orders]) {
      await ops.createTopic({ name: t });
      await ops.createSubscription({ name: `${t}-s`, topic: t });
    }
    await ops.publishText(payments, ["p1"]);
    await ops.publishText(orders, ["o1"]);
    const consumer = v2("s3cret-c").client;

    const denied = new TestConsumer(consumer, `${payments}-s`);
    await denied.waitForEnd();
    expect(denied.error?.code).toBe(status.PERMISSION_DENIED);
    expect(denied.error?.details).toBe(`token "orders-c" has no consume permission on topic "${payments}"`);
    expect(denied.deliveries).toEqual([]);

    const allowed = new TestConsumer(consumer, `${orders}-s`, { autoAck: true });
    await allowed.waitForDeliveries(1);
    expect(allowed.texts()).toEqual(["o1"]);
    allowed.cut();

    const v1c = v1("s3cret-c").client;
    await expect(v1Subscribe(v1c, payments)).rejects.toMatchObject({ code: status.PERMISSION_DENIED, message: `token "orders-c" has no consume permission on topic "${payments}"` });
    const sub = await v1Subscribe(v1c, orders);
    expect(sub.ref).not.toBe("");
    sub.stream.cancel();
    // Publishing is not consuming.
    await expectStatus(v2("s3cret-c").api.publishText(orders, ["x"]), status.PERMISSION_DENIED, /token "orders-c" has no publish permission/);
  });

  it("answers a PublishStream request outside the token's prefix with PERMISSION_DENIED and keeps the stream open", async () => {
    const ops = v2("s3cret-ops").api;
    const orders = uniqueName("orders-ps");
    await ops.createTopic({ name: orders });
    const p = new TestPublisher(v2("s3cret-p").client);
    p.send(1n, uniqueName("payments"), ["x"]);
    p.send(2n, orders, ["y"]);
    await p.waitFor(() => p.responses.length === 2, "two answers");
    expect(p.byId(1n)).toMatchObject({ errorCode: status.PERMISSION_DENIED, results: [] });
    expect(p.byId(1n).errorMessage).toMatch(/token "orders-p" has no publish permission on topic "payments-/);
    expect(p.byId(2n)).toMatchObject({ errorCode: 0 });
    p.finish();
    await p.waitFor(() => p.ended, "the end of the stream");
    expect(p.error).toBeUndefined();
  });

  it("lists only the topics and subscriptions the token has some permission on; Get outside is PERMISSION_DENIED", async () => {
    const ops = v2("s3cret-ops").api;
    const payments = uniqueName("payments");
    const orders = uniqueName("orders-list");
    for (const t of [payments, orders]) {
      await ops.createTopic({ name: t });
      await ops.createSubscription({ name: `${t}-s`, topic: t });
    }
    const c = v2("s3cret-c").api;
    const names = (await c.listTopics({ pageSize: 1000 })).topics.map((t) => t.name);
    expect(names).toContain(orders);
    expect(names.filter((n) => !n.startsWith("orders-"))).toEqual([]);
    expect((await ops.listTopics({ pageSize: 1000 })).topics.map((t) => t.name)).toEqual(expect.arrayContaining([orders, payments]));
    const subs = (await c.listSubscriptions({ pageSize: 1000 })).subscriptions.map((s) => s.topic);
    expect(subs).toContain(orders);
    expect(subs.filter((t) => !t.startsWith("orders-"))).toEqual([]);
    await expectStatus(c.getTopic(payments), status.PERMISSION_DENIED, /token "orders-c" has no permission \(admin, publish or consume\) on topic "payments-/);
    await expectStatus(c.getSubscription(`${payments}-s`), status.PERMISSION_DENIED, /no permission/);
    await expectStatus(c.listSubscriptions({ topic: payments }), status.PERMISSION_DENIED, /no permission/);
    expect((await c.getTopic(orders)).name).toBe(orders);
    // v1 alike.
    const v1c = v1("s3cret-c").api;
    const v1names = (await v1c.listTopics({})).topics;
    expect(v1names).toContain(orders);
    expect(v1names).not.toContain(payments);
    await expectStatus(v1c.topicExists({ name: payments }), status.PERMISSION_DENIED, /no permission/);
    await expectStatus(v1c.getStats({ topic: payments }), status.PERMISSION_DENIED, /no permission/);
    expect((await v1c.getStats({ topic: orders })).error).toBe("");
  });

  it("pages a filtered list without gaps or repeats", async () => {
    const ops = v2("s3cret-ops").api;
    const mine = [1, 2, 3, 4, 5].map(() => uniqueName("orders-page"));
    for (const t of mine) await ops.createTopic({ name: t });
    for (let i = 0; i < 3; i++) await ops.createTopic({ name: uniqueName("payments-page") });
    const c = v2("s3cret-c").api;
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await c.listTopics({ pageSize: 2, pageToken });
      expect(page.topics.length).toBeLessThanOrEqual(2);
      seen.push(...page.topics.map((t) => t.name));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining(mine));
    expect(seen.filter((n) => !n.startsWith("orders-"))).toEqual([]);
  });

  it("serves reflection to an admin token only", async () => {
    const Reflection = makeGenericClientConstructor(
      {
        info: {
          path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
          requestStream: true,
          responseStream: true,
          // ServerReflectionRequest { list_services = 7: "" }
          requestSerialize: () => Buffer.from([0x3a, 0x00]),
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      "ServerReflection",
    );
    const ask = (token?: string) =>
      new Promise<{ code: status; details: string; bytes: number }>((resolve) => {
        const client = new Reflection(srv.running.address, credentials.createInsecure());
        const meta = new Metadata();
        if (token !== undefined) meta.set("authorization", `Bearer ${token}`);
        const call = (client as unknown as { info: (m: unknown) => NodeJS.ReadWriteStream & { on(e: string, f: (x: never) => void): void } }).info(meta);
        let bytes = 0;
        call.on("data", (b: Buffer) => (bytes += b.length));
        call.on("error", () => undefined);
        call.on("status", (s: { code: status; details: string }) => {
          client.close();
          resolve({ code: s.code, details: s.details, bytes });
        });
        call.write("list");
        call.end();
      });
    expect(await ask()).toMatchObject({ code: status.UNAUTHENTICATED });
    expect(await ask("s3cret-c")).toMatchObject({ code: status.PERMISSION_DENIED, details: 'token "orders-c" has no admin permission, which server reflection needs' });
    const admin = await ask("s3cret-ops");
    expect(admin.code).toBe(status.OK);
    expect(admin.bytes).toBeGreaterThan(0);
  });

  it("takes a reloaded token file without a restart, and keeps the old tokens when the new file is bad", async () => {
    const topic = uniqueName("orders-reload");
    await v2("s3cret-ops").api.createTopic({ name: topic });
    const fresh = v2("s3cret-new").api;
    await expectStatus(fresh.getTopic(topic), status.UNAUTHENTICATED, /unknown token/);
    try {
      writeFileSync(tokenFile, JSON.stringify({ tokens: [...TOKENS.tokens.filter((t) => t.name !== "orders-c"), { name: "new", token: "s3cret-new", consume: ["orders-reload"] }] }));
      expect(srv.running.reloadTokens()).toBe(3);
      expect((await fresh.getTopic(topic)).name).toBe(topic);
      await expectStatus(v2("s3cret-c").api.getTopic(topic), status.UNAUTHENTICATED, /unknown token/);

      writeFileSync(tokenFile, '{"tokens": [{"name": "typo", "token": "x", "publsh": [""]}]}');
      expect(() => srv.running.reloadTokens()).toThrow(BrokerConfigError);
      expect(() => srv.running.reloadTokens()).toThrow(/--token-file .* tokens\[0\] has unknown key "publsh"/);
      expect((await fresh.getTopic(topic)).name).toBe(topic); // the previous tokens are still in force
    } finally {
      writeFileSync(tokenFile, JSON.stringify(TOKENS));
      srv.running.reloadTokens();
    }
  });
});
