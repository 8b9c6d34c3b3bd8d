// The image with TLS and tokens: certificates this test makes (openssl) and a token file, bound
// read-only into the container and named by RATATOSKR_TLS_CERT / _KEY / RATATOSKR_TOKEN_FILE.
// Plaintext is refused, a token is needed for everything but health, permissions hold, the
// image's own HEALTHCHECK speaks TLS, and SIGHUP (docker kill -s HUP) reloads the tokens.
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectStatus, healthCheck, makeTestPki, pollUntil, uniqueName, v1Api, v1Client, v2Api, v2Client, type TestPki } from "../test/support/index.js";
import { type BrokerContainer, brokerLogLines, cleanUp, containerState, dockerContainer, startBrokerContainer } from "./support/broker-container.js";
import { requireDockerAndImage } from "./support/docker-engine.js";

await requireDockerAndImage();

const TOKENS = {
  tokens: [
    { name: "ops", token: "s3cret-ops", admin: [""], publish: [""], consume: [""] },
    { name: "orders-p", token: "s3cret-p", publish: ["orders-"] },
  ],
};

let pki: TestPki;
let broker: BrokerContainer;
const started: BrokerContainer[] = [];
const closers: Array<{ close(): void }> = [];
const ssl = () => credentials.createSsl(pki.ca.cert);
const v2 = (token?: string) => {
  const c = v2Client(broker.address, { credentials: ssl(), token });
  closers.push(c);
  return v2Api(c);
};

beforeAll(async () => {
  pki = makeTestPki();
  writeFileSync(join(pki.dir, "tokens.json"), JSON.stringify(TOKENS));
  // The container may run as another user than this test: let it read what it mounts.
  chmodSync(pki.dir, 0o755);
  for (const f of [pki.server.keyFile, join(pki.dir, "tokens.json")]) chmodSync(f, 0o644);
  broker = await startBrokerContainer({
    env: { RATATOSKR_TLS_CERT: "/certs/server.crt", RATATOSKR_TLS_KEY: "/certs/server.key", RATATOSKR_TOKEN_FILE: "/certs/tokens.json" },
    readOnlyMounts: { "/certs": pki.dir },
    healthIntervalMs: 1_000,
  });
  started.push(broker);
});

afterAll(async () => {
  for (const c of closers) c.close();
  await cleanUp(started);
  pki?.remove();
});

describe("the broker image with TLS and tokens", () => {
  it("states tls=on auth=tokens on its listening line", async () => {
    const listening = (await brokerLogLines(broker.id)).find((l) => l["msg"] === "listening");
    expect(listening).toMatchObject({ tls: "on", auth: "tokens" });
  });

  it("refuses plaintext, answers health over TLS without a token, and is healthy to Docker", async () => {
    const plain = v2Client(broker.address);
    closers.push(plain);
    const err = await new Promise<{ code: number } | null>((resolve) => plain.listTopics({ pageSize: 0, pageToken: "" }, new Metadata(), { deadline: Date.now() + 5_000 }, (e) => resolve(e)));
    expect(err?.code).toBe(status.UNAVAILABLE);
    expect(await healthCheck(broker.address, 5_000, ssl())).toBe("SERVING");
    // The image's HEALTHCHECK (docker/healthcheck.mjs) reads RATATOSKR_TLS_CERT and speaks TLS.
    await pollUntil(async () => (await containerState(broker.id)).Health?.Status === "healthy", "Docker reports the container healthy", 30_000, 250);
  });

  it("needs a token, and holds the token's permissions (v1 and v2)", async () => {
    await expectStatus(v2().listTopics(), status.UNAUTHENTICATED, /missing bearer token/);
    await expectStatus(v2("wrong").listTopics(), status.UNAUTHENTICATED, /unknown token/);
    const topic = uniqueName("orders-e2e");
    await v2("s3cret-ops").createTopic({ name: topic });
    const pub = v2("s3cret-p");
    expect((await pub.publishText(topic, ["a", "b"])).length).toBe(2);
    await expectStatus(pub.deleteTopic(topic), status.PERMISSION_DENIED, /token "orders-p" has no admin permission on topic/);
    const v1 = v1Client(broker.address, { credentials: ssl(), token: "s3cret-p" });
    closers.push(v1);
    await expectStatus(v1Api(v1).createTopic({ name: uniqueName("orders-v1") }), status.PERMISSION_DENIED, /no admin permission/);
  });

  it("reloads the token file on SIGHUP without a restart", async () => {
    const fresh = v2("s3cret-fresh");
    await expectStatus(fresh.listTopics(), status.UNAUTHENTICATED, /unknown token/);
    writeFileSync(join(pki.dir, "tokens.json"), JSON.stringify({ tokens: [...TOKENS.tokens, { name: "fresh", token: "s3cret-fresh", consume: [""] }] }));
    const before = (await containerState(broker.id)).RestartCount;
    await (await dockerContainer(broker.id)).kill({ signal: "SIGHUP" });
    await pollUntil(async () => (await brokerLogLines(broker.id)).some((l) => l["msg"] === "token file reloaded"), "the reload line", 10_000, 100);
    expect((await fresh.listTopics()).topics).toBeDefined();
    const state = await containerState(broker.id);
    expect(state.Running).toBe(true);
    expect(state.RestartCount).toBe(before);
  });
});
