// Throwaway certificates for TLS and mTLS tests, made with the openssl CLI (scripts/test-deps.sh
// provides it like the other system dependencies). Nothing here is a fixture on disk: every test
// generates its own into a temporary directory and removes it.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A certificate and its key, as files and as the bytes grpc-js wants. */
export interface CertFiles {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

/** A CA, a server certificate it issued (for 127.0.0.1, ::1 and localhost), a client certificate it issued, and a client certificate nobody trusts. */
export interface TestPki {
  dir: string;
  ca: CertFiles;
  server: CertFiles;
  client: CertFiles;
  /** Self-signed, so a broker verifying client certificates against `ca` refuses it. */
  strangerClient: CertFiles;
  /** Removes the directory. */
  remove(): void;
}

const SERVER_NAMES = "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost";

function openssl(args: string[]): void {
  try {
    execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? "";
    throw new Error(`openssl ${args[0]} failed (is openssl installed? scripts/test-deps.sh provides it): ${stderr || String(err)}`, { cause: err });
  }
}

function files(certFile: string, keyFile: string): CertFiles {
  return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
}

/** A self-signed certificate for 127.0.0.1 in `dir` (prefix names the files). */
export function selfSignedCertificate(dir: string, prefix = "self"): CertFiles {
  const certFile = join(dir, `${prefix}.crt`);
  const keyFile = join(dir, `${prefix}.key`);
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyFile, "-out", certFile, "-subj", "/CN=127.0.0.1", "-addext", SERVER_NAMES, "-days", "1"]);
  return files(certFile, keyFile);
}

function issued(dir: string, prefix: string, ca: CertFiles, subject: string, extensions: string): CertFiles {
  const keyFile = join(dir, `${prefix}.key`);
  const csrFile = join(dir, `${prefix}.csr`);
  const certFile = join(dir, `${prefix}.crt`);
  const extFile = join(dir, `${prefix}.ext`);
  writeFileSync(extFile, `${extensions}\n`);
  openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyFile, "-out", csrFile, "-subj", subject]);
  openssl(["x509", "-req", "-in", csrFile, "-CA", ca.certFile, "-CAkey", ca.keyFile, "-CAcreateserial", "-out", certFile, "-days", "1", "-extfile", extFile]);
  return files(certFile, keyFile);
}

/** Makes a fresh TestPki in a new temporary directory. */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "ratatoskr-pki-"));
  try {
    const caCert = join(dir, "ca.crt");
    const caKey = join(dir, "ca.key");
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", caKey, "-out", caCert, "-subj", "/CN=ratatoskr test CA", "-days", "1", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    const ca = files(caCert, caKey);
    const server = issued(dir, "server", ca, "/CN=127.0.0.1", `${SERVER_NAMES}\nextendedKeyUsage=serverAuth`);
    const client = issued(dir, "client", ca, "/CN=test client", "extendedKeyUsage=clientAuth");
    const strangerClient = selfSignedCertificate(dir, "stranger");
    return { dir, ca, server, client, strangerClient, remove: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
