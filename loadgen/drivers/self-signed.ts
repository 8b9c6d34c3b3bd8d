/**
 * A throwaway self-signed certificate for an embedded server (`tls: true`), for 127.0.0.1, ::1
 * and localhost, valid for a year (selfsigned's default; it lives only as long as the run), written into a fresh temporary directory with the key readable
 * by this user only. It is its own CA: clients trust exactly this certificate, and ask for the
 * name localhost (an IP address as the TLS server name is not allowed by RFC 6066; Node warns).
 *
 * Generated with `selfsigned` (well kept, pure JavaScript on WebCrypto): `npm ci` is all a fresh
 * machine needs for `bench` with `tls: true`, no openssl binary.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generate } from "selfsigned";

export interface GeneratedCertificate {
  dir: string;
  certFile: string;
  keyFile: string;
  /** Removes the directory. */
  remove(): void;
}

export async function generateSelfSigned(prefix = "ratatoskr-tls-"): Promise<GeneratedCertificate> {
  const pems = await generate([{ name: "commonName", value: "127.0.0.1" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: true },
      { name: "keyUsage", digitalSignature: true, keyCertSign: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }, { type: 7, ip: "::1" }, { type: 2, value: "localhost" }] },
    ],
  });
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const certFile = join(dir, "server.crt");
  const keyFile = join(dir, "server.key");
  writeFileSync(certFile, pems.cert);
  writeFileSync(keyFile, pems.private, { mode: 0o600 });
  return { dir, certFile, keyFile, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
