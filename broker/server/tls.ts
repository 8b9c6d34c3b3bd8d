import { readFileSync } from "node:fs";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { ServerCredentials } from "@grpc/grpc-js";
import { BrokerConfigError, type BrokerServerConfig } from "./config.js";

/** What the listener speaks: plaintext, TLS, or TLS with verified client certificates. */
export type TlsMode = "off" | "on" | "mtls";

export interface ListenerCredentials {
  mode: TlsMode;
  credentials: ServerCredentials;
}

/**
 * The credentials of the one listener (v1, v2, health and reflection alike), from the files
 * named in the config. Every file is read and checked here, at start, so a wrong path, a file
 * that is not PEM, or a key that does not belong to the certificate is one error naming its flag
 * instead of a handshake failure on the first client.
 */
export function listenerCredentials(config: Pick<BrokerServerConfig, "tlsCertFile" | "tlsKeyFile" | "tlsClientCaFile">): ListenerCredentials {
  const { tlsCertFile, tlsKeyFile, tlsClientCaFile } = config;
  if (tlsCertFile === undefined && tlsKeyFile === undefined) {
    if (tlsClientCaFile !== undefined) throw new BrokerConfigError("--tls-client-ca", "--tls-client-ca needs --tls-cert and --tls-key (client certificates are checked during the TLS handshake)");
    return { mode: "off", credentials: ServerCredentials.createInsecure() };
  }
  if (tlsCertFile === undefined) throw new BrokerConfigError("--tls-cert", "--tls-key is given without --tls-cert; give both or neither");
  if (tlsKeyFile === undefined) throw new BrokerConfigError("--tls-key", "--tls-cert is given without --tls-key; give both or neither");

  const cert = readPem("--tls-cert", tlsCertFile);
  const key = readPem("--tls-key", tlsKeyFile);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new BrokerConfigError("--tls-cert", `--tls-cert ${tlsCertFile} is not a PEM certificate (${reason(err)})`, { cause: err });
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new BrokerConfigError("--tls-key", `--tls-key ${tlsKeyFile} is not a PEM private key without a passphrase (${reason(err)})`, { cause: err });
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new BrokerConfigError("--tls-key", `--tls-key ${tlsKeyFile} does not belong to the certificate in --tls-cert ${tlsCertFile}`);
  }

  let clientCa: Buffer | null = null;
  if (tlsClientCaFile !== undefined) {
    clientCa = readPem("--tls-client-ca", tlsClientCaFile);
    try {
      new X509Certificate(clientCa);
    } catch (err) {
      throw new BrokerConfigError("--tls-client-ca", `--tls-client-ca ${tlsClientCaFile} is not a PEM certificate bundle (${reason(err)})`, { cause: err });
    }
  }
  // checkClientCertificate = true: a client without a certificate the CA issued fails the handshake.
  const credentials = ServerCredentials.createSsl(clientCa, [{ cert_chain: cert, private_key: key }], clientCa !== null);
  return { mode: clientCa !== null ? "mtls" : "on", credentials };
}

function readPem(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new BrokerConfigError(flag, `${flag} ${path} cannot be read (${reason(err)})`, { cause: err });
  }
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
