// What the kit's v1 and v2 clients share: their channel options and the promise form of a
// unary call. Only grpc-js and generated code: the clients reach a broker over the wire only,
// so the same client tests the source in-process and the image in a container.
import { credentials, InterceptingCall, type ChannelCredentials, type Client, type ClientOptions, type Interceptor, type ServiceError } from "@grpc/grpc-js";

export const CHANNEL_OPTIONS = {
  // Each client on its own HTTP/2 connection (grpc-js otherwise shares one connection per
  // target across clients), as separate processes would be.
  "grpc.use_local_subchannel_pool": 1,
  "grpc.max_receive_message_length": 64 * 1024 * 1024,
  "grpc.max_send_message_length": 64 * 1024 * 1024,
};

/** How a kit client reaches a broker with TLS or tokens (docs/security.md); plaintext without a token when left out. */
export interface ClientSecurity {
  /** e.g. credentials.createSsl(ca, key, cert); default plaintext. */
  credentials?: ChannelCredentials;
  /** Sent as `authorization: Bearer <token>` on every call. */
  token?: string;
}

/** Channel credentials and options for a kit client: CHANNEL_OPTIONS, plus an interceptor adding the bearer token. */
export function clientSetup(security: ClientSecurity = {}): { credentials: ChannelCredentials; options: ClientOptions } {
  const interceptors: Interceptor[] = security.token === undefined ? [] : [bearer(security.token)];
  return { credentials: security.credentials ?? credentials.createInsecure(), options: { ...CHANNEL_OPTIONS, interceptors } };
}

// Metadata from an interceptor rather than call credentials: grpc-js refuses call credentials on
// a plaintext channel, and the tests send tokens over both.
function bearer(token: string): Interceptor {
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set("authorization", `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}

type Callback<Res> = (err: ServiceError | null, res: Res) => void;

/**
 * Promise form of one unary method of a generated client. The types are spelled out: inference
 * from the generated overloads picks the wrong one.
 */
export function unary<Req, Res>(client: Client, method: unknown): (req: Req) => Promise<Res> {
  const fn = method as (req: Req, cb: Callback<Res>) => unknown;
  return (req) => new Promise((resolve, reject) => fn.call(client, req, (err, res) => (err ? reject(err) : resolve(res))));
}
