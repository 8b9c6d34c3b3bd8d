import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { credentials, status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { expectStatus, healthCheck, makeTestPki, spawnTs, startCliBroker, uniqueName, v2Api, v2Client, type Child, type TestPki } from "../test/support/index.js";

// `ratatoskr broker` with the security flags, as an operator runs it: exit 2 with one line
// naming the flag for a setting to fix, the listening line stating tls= and auth=, and SIGHUP
// re-reading the token file in the running process.

let pki: TestPki;
beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

const children: Child[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.kill("SIGKILL");
    await c.exited;
  }
});

function run(args: string[]): Child {
  const child = spawnTs("cli/main.ts", ["broker", "--port", "0", "--log-level", "info", ...args]);
  children.push(child);
  return child;
}

const TOKENS = { tokens: [{ name: "ops", token: "s3cret-ops", admin: [""], publish: [""], consume: [""] }] };

describe("ratatoskr broker security flags (CLI)", { timeout: 90_000 }, () => {
  it("refuses a non-loopback --host without TLS and tokens: exit 2, one line naming --insecure, nothing bound", async () => {
    // 0.0.0.0 is refused before anything binds (the check precedes the store and bindAsync).
    const child = run(["--host", "0.0.0.0"]);
    expect(await child.exited).toBe(2);
    expect(child.stderr).toHaveLength(1);
    expect(child.stderr[0]).toMatch(/^ratatoskr broker: invalid configuration: refusing to listen on non-loopback host 0\.0\.0\.0 without TLS .* and tokens .*--insecure/);
    expect(child.stdout.some((l) => l.includes('"listening"'))).toBe(false);
  });

  it("refuses a non-loopback --host with TLS but without tokens", async () => {
    const child = run(["--host", "0.0.0.0", "--tls-cert", pki.server.certFile, "--tls-key", pki.server.keyFile]);
    expect(await child.exited).toBe(2);
    expect(child.stderr).toEqual([expect.stringMatching(/refusing to listen on non-loopback host 0\.0\.0\.0 without tokens \(--token-file\).*--insecure/)]);
  });

  it("exits 2 with one line naming the flag for an unreadable certificate or token file", async () => {
    const cert = run(["--tls-cert", join(pki.dir, "nope.crt"), "--tls-key", pki.server.keyFile]);
    expect(await cert.exited).toBe(2);
    expect(cert.stderr).toEqual([expect.stringMatching(/^ratatoskr broker: invalid configuration: --tls-cert .*nope\.crt cannot be read/)]);
    const bad = join(pki.dir, "bad-tokens.json");
    writeFileSync(bad, "{ not json");
    const tokens = run(["--token-file", bad]);
    expect(await tokens.exited).toBe(2);
    expect(tokens.stderr).toEqual([expect.stringMatching(/^ratatoskr broker: invalid configuration: --token-file .*bad-tokens\.json is not JSON/)]);
  });

  it("states tls=mtls auth=tokens on the listening line and serves a client with a certificate and a token", async () => {
    const tokenFile = join(pki.dir, "mtls-tokens.json");
    writeFileSync(tokenFile, JSON.stringify(TOKENS));
    const { child, address } = await startCliBroker(["--tls-cert", pki.server.certFile, "--tls-key", pki.server.keyFile, "--tls-client-ca", pki.ca.certFile, "--token-file", tokenFile]);
    children.push(child);
    const line = JSON.parse(child.stdout.find((l) => l.includes('"listening"'))!) as Record<string, unknown>;
    expect(line).toMatchObject({ tls: "mtls", auth: "tokens" });
    const ssl = () => credentials.createSsl(pki.ca.cert, pki.client.key, pki.client.cert);
    const client = v2Client(address, { credentials: ssl(), token: "s3cret-ops" });
    try {
      await v2Api(client).createTopic({ name: uniqueName("cli-mtls") });
    } finally {
      client.close();
    }
    expect(await healthCheck(address, 5_000, ssl())).toBe("SERVING");
  });

  it("re-reads the token file on SIGHUP without a restart; a bad file keeps the old tokens with one error line", async () => {
    const tokenFile = join(pki.dir, "reload-tokens.json");
    writeFileSync(tokenFile, JSON.stringify(TOKENS));
    const { child, address } = await startCliBroker(["--token-file", tokenFile]);
    children.push(child);
    const pid = child.proc.pid;
    const as = (token: string) => {
      const c = v2Client(address, { token });
      return { api: v2Api(c), close: () => c.close() };
    };
    const ops = as("s3cret-ops");
    const fresh = as("s3cret-fresh");
    try {
      expect((await ops.api.listTopics()).topics).toBeDefined();
      await expectStatus(fresh.api.listTopics(), status.UNAUTHENTICATED, /unknown token/);

      writeFileSync(tokenFile, JSON.stringify({ tokens: [{ name: "fresh", token: "s3cret-fresh", admin: [""] }] }));
      child.kill("SIGHUP");
      await child.waitForLine((l) => l.includes('"token file reloaded"'), "the reload line");
      expect((await fresh.api.listTopics()).topics).toBeDefined();
      await expectStatus(ops.api.listTopics(), status.UNAUTHENTICATED, /unknown token/);

      writeFileSync(tokenFile, '{"tokens": "oops"}');
      child.kill("SIGHUP");
      const failed = await child.waitForLine((l) => l.includes("token file reload failed"), "the reload failure line");
      expect(JSON.parse(failed)).toMatchObject({ level: "error", msg: "token file reload failed; keeping the previous tokens" });
      expect((await fresh.api.listTopics()).topics).toBeDefined();
      expect(child.proc.pid).toBe(pid);
      expect(child.proc.exitCode).toBeNull();
    } finally {
      ops.close();
      fresh.close();
    }
    child.kill("SIGTERM");
    expect(await child.exited).toBe(0);
  });
});
