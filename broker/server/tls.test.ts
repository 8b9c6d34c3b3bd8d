import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectStatus, healthCheck, makeTestPki, uniqueName, v1Api, v1Client, v2Api, v2Client, type TestPki } from "../../test/support/index.js";
import { BrokerConfigError } from "./config.js";
import { startBroker, type RunningBroker } from "./server.js";

// TLS and mTLS over real sockets on loopback, with certificates this test makes (openssl).

let pki: TestPki;
beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

const DEADLINE_MS = 5_000;
const closers: Array<{ close(): void }> = [];
afterAll(() => closers.forEach((c) => c.close()));

function api(address: string, channel: ReturnType<typeof credentials.createSsl> | undefined) {
  const c = v2Client(address, { credentials: channel });
  closers.push(c);
  return v2Api(c);
}

/** A call that cannot connect fails with UNAVAILABLE; the deadline keeps it from waiting for retries. */
function listWithDeadline(address: string, channel?: ReturnType<typeof credentials.createSsl>) {
  const c = v2Client(address, { credentials: channel });
  closers.push(c);
  return new Promise<void>((resolve, reject) =>
    c.listTopics({ pageSize: 0, pageToken: "" }, new Metadata(), { deadline: Date.now() + DEADLINE_MS }, (err) => (err ? reject(err) : resolve())),
  );
}

describe("TLS", () => {
  let broker: RunningBroker;
  beforeAll(async () => {
    broker = await startBroker({ host: "127.0.0.1", port: 0, logLevel: "silent", tlsCertFile: pki.server.certFile, tlsKeyFile: pki.server.keyFile });
  });
  afterAll(() => broker.close());

  it("serves v1, v2 and health over TLS to a client that trusts the CA", async () => {
    expect(broker.settings.tls).toBe("on");
    const ssl = credentials.createSsl(pki.ca.cert);
    const topic = uniqueName("tls");
    await api(broker.address, ssl).createTopic({ name: topic });
    const v1 = v1Client(broker.address, { credentials: ssl });
    closers.push(v1);
    expect((await v1Api(v1).topicExists({ name: topic })).exists).toBe(true);
    expect(await healthCheck(broker.address, DEADLINE_MS, credentials.createSsl(pki.ca.cert))).toBe("SERVING");
  });

  it("refuses a plaintext client", async () => {
    await expectStatus(listWithDeadline(broker.address), status.UNAVAILABLE);
    await expect(healthCheck(broker.address, DEADLINE_MS)).rejects.toMatchObject({ code: status.UNAVAILABLE });
  });

  it("is refused by a client that does not trust its certificate", async () => {
    await expectStatus(listWithDeadline(broker.address, credentials.createSsl(pki.strangerClient.cert)), status.UNAVAILABLE);
  });
});

describe("mTLS", () => {
  let broker: RunningBroker;
  beforeAll(async () => {
    broker = await startBroker({
      host: "127.0.0.1",
      port: 0,
      logLevel: "silent",
      tlsCertFile: pki.server.certFile,
      tlsKeyFile: pki.server.keyFile,
      tlsClientCaFile: pki.ca.certFile,
    });
  });
  afterAll(() => broker.close());

  it("serves a client with a certificate the CA issued", async () => {
    expect(broker.settings.tls).toBe("mtls");
    const topic = uniqueName("mtls");
    await api(broker.address, credentials.createSsl(pki.ca.cert, pki.client.key, pki.client.cert)).createTopic({ name: topic });
  });

  it("refuses a client without a certificate, and one whose certificate the CA did not issue", async () => {
    await expectStatus(listWithDeadline(broker.address, credentials.createSsl(pki.ca.cert)), status.UNAVAILABLE);
    await expectStatus(listWithDeadline(broker.address, credentials.createSsl(pki.ca.cert, pki.strangerClient.key, pki.strangerClient.cert)), status.UNAVAILABLE);
  });
});

describe("certificate files are checked at start", () => {
  const start = (files: { tlsCertFile?: string; tlsKeyFile?: string; tlsClientCaFile?: string }) =>
    startBroker({ host: "127.0.0.1", port: 0, logLevel: "silent", ...files }).then(
      async (b) => {
        await b.close();
        return "started";
      },
      (err: unknown) => err,
    );

  it("names the flag for an unreadable, non-PEM or mismatched file, and for a half-given pair", async () => {
    const garbage = join(pki.dir, "garbage.pem");
    writeFileSync(garbage, "not a certificate\n");
    const cases: Array<[Parameters<typeof start>[0], string, RegExp]> = [
      [{ tlsCertFile: join(pki.dir, "missing.crt"), tlsKeyFile: pki.server.keyFile }, "--tls-cert", /--tls-cert .*missing\.crt cannot be read \(ENOENT/],
      [{ tlsCertFile: pki.server.certFile, tlsKeyFile: join(pki.dir, "missing.key") }, "--tls-key", /--tls-key .*missing\.key cannot be read/],
      [{ tlsCertFile: garbage, tlsKeyFile: pki.server.keyFile }, "--tls-cert", /is not a PEM certificate/],
      [{ tlsCertFile: pki.server.certFile, tlsKeyFile: garbage }, "--tls-key", /is not a PEM private key/],
      [{ tlsCertFile: pki.server.certFile, tlsKeyFile: pki.client.keyFile }, "--tls-key", /does not belong to the certificate in --tls-cert/],
      [{ tlsCertFile: pki.server.certFile, tlsKeyFile: pki.server.keyFile, tlsClientCaFile: garbage }, "--tls-client-ca", /is not a PEM certificate bundle/],
      [{ tlsCertFile: pki.server.certFile }, "--tls-key", /--tls-cert is given without --tls-key/],
      [{ tlsKeyFile: pki.server.keyFile }, "--tls-cert", /--tls-key is given without --tls-cert/],
      [{ tlsClientCaFile: pki.ca.certFile }, "--tls-client-ca", /--tls-client-ca needs --tls-cert and --tls-key/],
    ];
    for (const [files, flag, message] of cases) {
      const err = await start(files);
      expect(err, JSON.stringify(files)).toBeInstanceOf(BrokerConfigError);
      expect((err as BrokerConfigError).flag).toBe(flag);
      expect((err as Error).message).toMatch(message);
    }
  });
});
