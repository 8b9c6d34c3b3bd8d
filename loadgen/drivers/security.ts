/**
 * How drivers reach a broker that wants TLS and a bearer token (docs/loadgen.md, "TLS and
 * tokens"): the PEM files are read once, when the driver is created, so a wrong path fails
 * before anything is started; gRPC drivers get channel credentials and an interceptor that puts
 * `authorization: Bearer <token>` on every call; NATS gets nats.js's `tls` and `token` connect
 * options; the connect probe uses the same files (probe.ts).
 */
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { UsageError } from "../errors.js";

/** TLS settings of a driver (`--tls-ca`, `--tls-cert`, `--tls-key`, `--tls-server-name`). */
export interface DriverTls {
  /** PEM CA bundle that signed the server's certificate; absent: the system's roots. */
  caFile?: string;
  /** PEM client certificate chain (mTLS); needs keyFile. */
  certFile?: string;
  /** PEM private key of certFile. */
  keyFile?: string;
  /** The name the server's certificate must carry, when it is not the target's host. */
  serverName?: string;
}

/** TLS and credentials as the driver options carry them; both absent = plaintext, no token. */
export interface DriverSecurity {
  tls?: DriverTls | undefined;
  /** Sent as `authorization: Bearer <token>` (gRPC) or the NATS connect token. */
  token?: string | undefined;
}

/** The PEM contents, read once. */
export interface LoadedTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  serverName?: string;
}

/** Reads the PEM files; throws a UsageError naming the option and the path. */
export function loadTls(tls: DriverTls | undefined): LoadedTls | undefined {
  if (!tls) return undefined;
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) throw new UsageError("--tls-cert and --tls-key go together (a client certificate needs its key)");
  const read = (path: string | undefined, option: string): Buffer | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new UsageError(`${option} ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  };
  const out: LoadedTls = {};
  const ca = read(tls.caFile, "--tls-ca");
  const cert = read(tls.certFile, "--tls-cert");
  const key = read(tls.keyFile, "--tls-key");
  if (ca) out.ca = ca;
  if (cert) out.cert = cert;
  if (key) out.key = key;
  if (tls.serverName !== undefined) out.serverName = tls.serverName;
  return out;
}

/** What a gRPC client is built with: its channel credentials and options (TLS name, token interceptor). */
export interface GrpcSecurity {
  credentials: grpc.ChannelCredentials;
  options: grpc.ClientOptions;
  /** The PEMs, for the connect probe. */
  tls: LoadedTls | undefined;
}

export function grpcSecurity(security: DriverSecurity | undefined): GrpcSecurity {
  const tls = loadTls(security?.tls);
  const credentials = tls ? grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null) : grpc.credentials.createInsecure();
  const options: grpc.ClientOptions = {};
  if (tls?.serverName !== undefined) {
    options["grpc.ssl_target_name_override"] = tls.serverName;
    options["grpc.default_authority"] = tls.serverName;
  }
  // Metadata through an interceptor rather than call credentials: it works on a plaintext channel
  // too (grpc-js refuses call credentials on insecure ones), so a token-only broker on loopback
  // can be measured as well.
  if (security?.token !== undefined) options.interceptors = [bearerInterceptor(security.token)];
  return { credentials, options, tls };
}

/** Adds `authorization: Bearer <token>` to every call's metadata. */
export function bearerInterceptor(token: string): grpc.Interceptor {
  const value = `Bearer ${token}`;
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set("authorization", value);
        next(metadata, listener);
      },
    });
}

/** nats.js connect options for TLS and the token (nats 2.x and @nats-io/transport-node 3.x take the same shape). */
export function natsSecurity(security: DriverSecurity | undefined): { tls?: Record<string, unknown>; token?: string; loaded: LoadedTls | undefined } {
  const loaded = loadTls(security?.tls);
  const out: { tls?: Record<string, unknown>; token?: string; loaded: LoadedTls | undefined } = { loaded };
  if (loaded) {
    // Passed through to tls.connect by nats.js (PEM contents, not paths: read and checked above).
    const tls: Record<string, unknown> = {};
    if (loaded.ca) tls.ca = loaded.ca.toString("utf8");
    if (loaded.cert) tls.cert = loaded.cert.toString("utf8");
    if (loaded.key) tls.key = loaded.key.toString("utf8");
    if (loaded.serverName !== undefined) tls.servername = loaded.serverName;
    out.tls = tls;
  }
  if (security?.token !== undefined) out.token = security.token;
  return out;
}

/** "on" when the driver speaks TLS, for report labels. */
export function tlsLabel(security: DriverSecurity | undefined): "on" | "off" {
  return security?.tls ? "on" : "off";
}
