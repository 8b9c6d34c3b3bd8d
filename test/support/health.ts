// grpc.health.v1 Check with a hand-made client: no health package, the wire format written out.
import { credentials, makeGenericClientConstructor, type ChannelCredentials, type ServiceError } from "@grpc/grpc-js";

const HealthClient = makeGenericClientConstructor(
  {
    check: {
      path: "/grpc.health.v1.Health/Check",
      requestStream: false,
      responseStream: false,
      // HealthCheckRequest { service = 1 }: "" (the whole server) encodes to no bytes.
      requestSerialize: (service: string) => (service === "" ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(service)]), Buffer.from(service)])),
      requestDeserialize: (b: Buffer) => b.toString(),
      responseSerialize: (s: number) => Buffer.from([0x08, s]),
      // HealthCheckResponse { status = 1 }: 08 <enum>; absent = UNKNOWN (0).
      responseDeserialize: (b: Buffer) => (b.length >= 2 && b[0] === 0x08 ? b[1]! : 0),
    },
  },
  "grpc.health.v1.Health",
);

/** grpc.health.v1 Check for the whole server: "SERVING", "NOT_SERVING", … or the error. */
export async function healthCheck(address: string, timeoutMs = 3_000, channel: ChannelCredentials = credentials.createInsecure()): Promise<string> {
  const client = new HealthClient(address, channel, { "grpc.use_local_subchannel_pool": 1 });
  try {
    const s = await new Promise<number>((resolve, reject) =>
      (client as unknown as { check: (r: string, o: object, cb: (err: ServiceError | null, res: number) => void) => void }).check(
        "",
        { deadline: Date.now() + timeoutMs },
        (err, res) => (err ? reject(err) : resolve(res)),
      ),
    );
    return ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"][s] ?? `status ${s}`;
  } finally {
    client.close();
  }
}
