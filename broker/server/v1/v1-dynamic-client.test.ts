import { join } from "node:path";
import { credentials, loadPackageDefinition, Metadata, status, type Client, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBroker, type RunningBroker } from "../server.js";
import { silentLogger } from "../logger.js";
import { uniqueName } from "../../../test/support/index.js";

// Wire compatibility without our generated code: a client built at runtime from
// proto/ratatoskr.proto by @grpc/proto-loader, with snake_case fields as the original's
// Node clients use them, drives the full broker (startBroker).

const protoFile = join(import.meta.dirname, "..", "..", "..", "proto", "ratatoskr.proto");
const definition = loadSync(protoFile, { keepCase: true, longs: Number, defaults: true });
const ratatoskr = loadPackageDefinition(definition)["ratatoskr"] as unknown as {
  MessageBroker: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => Client & Record<string, Function>;
};

type Wire = Record<string, unknown>;

let broker: RunningBroker;
let client: Client & Record<string, Function>;
beforeAll(async () => {
  broker = await startBroker({ host: "127.0.0.1", port: 0, logLevel: "silent" }, silentLogger);
  client = new ratatoskr.MessageBroker(broker.address, credentials.createInsecure());
});
afterAll(async () => {
  client.close();
  await broker.close();
});

function call(method: string, request: Wire): Promise<Wire> {
  return new Promise((resolve, reject) =>
    client[method]!.call(client, request, (err: ServiceError | null, res: Wire) => (err ? reject(err) : resolve(res))),
  );
}

describe("v1 through a dynamically loaded proto (no generated code)", () => {
  it("runs every RPC with the original's field names", async () => {
    const topic = uniqueName("dyn");
    expect(await call("CreateTopic", { name: topic })).toEqual({ topic, created: true, error: "" });
    expect(await call("TopicExists", { name: topic })).toEqual({ exists: true });
    expect((await call("ListTopics", {}))["topics"]).toContain(topic);

    const stream = client["Subscribe"]!.call(client, { topic, subscriber_id: "dyn-sub" }) as ClientReadableStream<Wire>;
    const header = await new Promise<Metadata>((resolve) => stream.once("metadata", resolve));
    const ref = String(header.get("x-subscription-ref")[0]);
    expect(ref).not.toBe("");
    const received: Wire[] = [];
    const ended = new Promise<{ code: status }>((resolve) => stream.on("status", resolve));
    stream.on("error", () => undefined);
    stream.on("data", (m: Wire) => received.push(m));

    const one = await call("Publish", { topic, payload: Buffer.from([0, 1, 2, 255]), metadata: { source: "dynamic" } });
    expect(one).toMatchObject({ success: true, error: "" });
    const batch = await call("PublishBatch", {
      topic,
      messages: [
        { payload: Buffer.from("a"), metadata: {} },
        { topic, payload: Buffer.from("b"), metadata: { n: "2" } },
      ],
    });
    expect(batch).toMatchObject({ success_count: 2, error_count: 0 });
    const ids = [one["message_id"], ...(batch["results"] as Wire[]).map((r) => r["message_id"])];

    await new Promise<void>((resolve) => {
      const check = (): void => void (received.length >= 3 && resolve());
      stream.on("data", check);
      check();
    });
    expect(received.map((m) => m["id"])).toEqual(ids);
    expect(received[0]).toEqual({ id: ids[0], topic, payload: Buffer.from([0, 1, 2, 255]), metadata: { source: "dynamic" }, timestamp: one["timestamp"] });
    expect(received[2]!["metadata"]).toEqual({ n: "2" });

    expect(await call("GetStats", { topic })).toEqual({ topic, message_count: 3, subscriber_count: 1, error: "" });
    expect(await call("Unsubscribe", { topic, subscription_ref: ref })).toEqual({ success: true, error: "" });
    expect((await ended).code).toBe(status.OK);
    expect(await call("Unsubscribe", { topic, subscription_ref: "dyn-sub" })).toEqual({ success: false, error: "subscription_not_found" });
    expect(await call("DeleteTopic", { name: topic })).toEqual({ success: true, error: "" });
    expect(await call("DeleteTopic", { name: topic })).toEqual({ success: false, error: "topic_not_found" });
  });

  it("sees the domain error strings with status OK", async () => {
    expect(await call("CreateTopic", { name: "" })).toEqual({ topic: "", created: false, error: "empty_topic_name" });
    expect(await call("Publish", { topic: "no way", payload: Buffer.alloc(0) })).toMatchObject({ success: false, error: "invalid_topic_format" });
    expect(await call("Unsubscribe", { topic: "x", subscription_ref: "" })).toEqual({ success: false, error: "Invalid subscription reference" });
  });
});
