import { describe, expect, it } from "vitest";
import { BrokerConfigError } from "./config.js";
import { checkExposure, isLoopbackHost } from "./exposure.js";
import { startBroker } from "./server.js";

describe("secure default for the listening address", () => {
  it("counts only loopback addresses as loopback", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"]) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ["0.0.0.0", "::", "[::]", "10.0.0.5", "192.168.1.2", "::ffff:10.0.0.1", "fe80::1", "broker.example.com", "128.0.0.1"]) expect(isLoopbackHost(h), h).toBe(false);
  });

  it("refuses a non-loopback host unless it has TLS and tokens, or --insecure", () => {
    expect(() => checkExposure("0.0.0.0", "off", false, false)).toThrow(/refusing to listen on non-loopback host 0\.0\.0\.0 without TLS \(--tls-cert, --tls-key\) and tokens \(--token-file\).*--insecure/);
    expect(() => checkExposure("10.0.0.5", "on", false, false)).toThrow(/without tokens \(--token-file\)/);
    expect(() => checkExposure("::", "off", true, false)).toThrow(/without TLS \(--tls-cert, --tls-key\):/);
    expect(() => checkExposure("0.0.0.0", "on", true, false)).not.toThrow();
    expect(() => checkExposure("0.0.0.0", "mtls", true, false)).not.toThrow();
    expect(() => checkExposure("0.0.0.0", "off", false, true)).not.toThrow();
    expect(() => checkExposure("127.0.0.1", "off", false, false)).not.toThrow();
  });

  it("refuses in startBroker before anything binds, naming --insecure", async () => {
    // 0.0.0.0 is never bound here: the check comes before the store opens and before bindAsync.
    const err = await startBroker({ host: "0.0.0.0", port: 0, logLevel: "silent" }).then(
      async (b) => {
        await b.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BrokerConfigError);
    expect((err as BrokerConfigError).flag).toBe("--insecure");
  });
});
