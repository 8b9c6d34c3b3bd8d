import { createHash } from "node:crypto";
import { Metadata, ServerInterceptingCall, status, type ServerInterceptor, type ServiceError } from "@grpc/grpc-js";
import { statusError } from "./status.js";
import { readTokenFile, type Permission, type TokenGrant } from "./token-file.js";
import { HEALTH_SERVICE_NAME } from "./discovery.js";

// Who may do what (docs/security.md). Two steps, both on the server side of every call:
//   1. authentication, in a grpc-js server interceptor, for every method but grpc.health.v1:
//      a known bearer token, else UNAUTHENTICATED before any handler runs. Server reflection
//      needs a token with some admin permission. Consume, served on HTTP/2 directly
//      (h2-call.ts), makes the same check through admit() before its handler.
//   2. authorization, in the v1 and v2 handlers, where the topic is known (a request field, a
//      PublishStream frame, a subscription's topic): require(metadata, permission, topic),
//      else PERMISSION_DENIED naming the token, the permission and the topic.
// With no token file, OPEN_ACCESS allows everything and no interceptor is installed.

/** The authorization checks the handlers make; see require(). */
export interface Access {
  readonly mode: "off" | "tokens";
  /** Step 1 for a call served outside grpc-js (h2-call.ts): UNAUTHENTICATED without a known bearer token, else undefined. */
  admit(metadata: Metadata): ServiceError | undefined;
  /** Throws PERMISSION_DENIED unless the caller's token has `permission` on `topic` (UNAUTHENTICATED without a known token). */
  require(metadata: Metadata, permission: Permission, topic: string): void;
  /** As require(), for any of the three permissions: reading a topic or subscription (Get, TopicExists, GetStats). */
  requireAny(metadata: Metadata, topic: string): void;
  /** The topics a list may show the caller: those its token has some permission on. */
  visible(metadata: Metadata): (topic: string) => boolean;
}

/** No token file: every caller may do everything. */
export const OPEN_ACCESS: Access = {
  mode: "off",
  admit: () => undefined,
  require: () => undefined,
  requireAny: () => undefined,
  visible: () => () => true,
};

const BEARER = /^bearer\s+(\S+)\s*$/i;
const HEALTH_PATH = `/${HEALTH_SERVICE_NAME}/`;
const REFLECTION_PATH = "/grpc.reflection.";

/** Tokens from a file, replaced as a whole by reload(). Secrets are looked up by their SHA-256, never compared as text. */
export class TokenAccess implements Access {
  readonly mode = "tokens";
  private byDigest = new Map<string, TokenGrant>();

  constructor(private readonly path: string) {
    this.reload();
  }

  /** Re-reads the file. A bad file throws (BrokerConfigError) and leaves the tokens in force as they were. Returns the token count. */
  reload(): number {
    const grants = readTokenFile(this.path);
    this.byDigest = new Map(grants.map((g) => [digest(g.token), g]));
    return grants.length;
  }

  /** The caller's grant; throws UNAUTHENTICATED without a known bearer token. */
  authenticate(metadata: Metadata): TokenGrant {
    const found = this.lookup(metadata);
    if ("code" in found) throw found;
    return found;
  }

  admit(metadata: Metadata): ServiceError | undefined {
    const found = this.lookup(metadata);
    return "code" in found ? found : undefined;
  }

  private lookup(metadata: Metadata): TokenGrant | ServiceError {
    const header = metadata.get("authorization").find((v): v is string => typeof v === "string");
    const match = header === undefined ? null : BEARER.exec(header);
    if (match === null) return statusError(status.UNAUTHENTICATED, 'missing bearer token: send gRPC metadata "authorization: Bearer <token>"');
    return this.byDigest.get(digest(match[1]!)) ?? statusError(status.UNAUTHENTICATED, "unknown token");
  }

  require(metadata: Metadata, permission: Permission, topic: string): void {
    const grant = this.authenticate(metadata);
    if (!covers(grant[permission], topic)) {
      throw statusError(status.PERMISSION_DENIED, `token ${JSON.stringify(grant.name)} has no ${permission} permission on topic ${JSON.stringify(topic)}`);
    }
  }

  requireAny(metadata: Metadata, topic: string): void {
    const grant = this.authenticate(metadata);
    if (!seesTopic(grant, topic)) {
      throw statusError(status.PERMISSION_DENIED, `token ${JSON.stringify(grant.name)} has no permission (admin, publish or consume) on topic ${JSON.stringify(topic)}`);
    }
  }

  visible(metadata: Metadata): (topic: string) => boolean {
    const grant = this.authenticate(metadata);
    return (topic) => seesTopic(grant, topic);
  }

  /** Step 1 above, for `new Server({ interceptors })`. */
  interceptor(): ServerInterceptor {
    return (method, call) => {
      if (method.path.startsWith(HEALTH_PATH)) return new ServerInterceptingCall(call);
      return new ServerInterceptingCall(call, {
        start: (next) =>
          next({
            onReceiveMetadata: (metadata, proceed) => {
              const found = this.lookup(metadata);
              const refusal =
                "code" in found
                  ? found
                  : method.path.startsWith(REFLECTION_PATH) && found.admin.length === 0
                    ? statusError(status.PERMISSION_DENIED, `token ${JSON.stringify(found.name)} has no admin permission, which server reflection needs`)
                    : undefined;
              if (refusal === undefined) proceed(metadata);
              else call.sendStatus({ code: refusal.code, details: refusal.details, metadata: new Metadata() });
            },
          }),
      });
    };
  }
}

function covers(prefixes: readonly string[], topic: string): boolean {
  return prefixes.some((p) => topic.startsWith(p));
}

function seesTopic(grant: TokenGrant, topic: string): boolean {
  return covers(grant.admin, topic) || covers(grant.publish, topic) || covers(grant.consume, topic);
}

function digest(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("base64");
}
