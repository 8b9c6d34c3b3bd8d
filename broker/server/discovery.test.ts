import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { credentials, loadPackageDefinition, type Client, type ClientDuplexStream, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProto } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "./logger.js";
import { startBroker, type RunningBroker } from "./server.js";

// What a generic tool (grpcurl, grpc_cli, a health probe) sees: the standard health service
// and server reflection, reached with nothing but their public protos.

const require = createRequire(import.meta.url);
const reflectionProto = join(dirname(require.resolve("@grpc/reflection")), "..", "proto", "grpc", "reflection", "v1", "reflection.proto");

type AnyClient = Client & Record<string, Function>;
const load = (file: string, pkgPath: string[]): new (address: string, c: ReturnType<typeof credentials.createInsecure>) => AnyClient => {
  let node: unknown = loadPackageDefinition(loadSync(file, { keepCase: true, defaults: true, enums: String }));
  for (const part of pkgPath) node = (node as Record<string, unknown>)[part];
  return node as new (address: string, c: ReturnType<typeof credentials.createInsecure>) => AnyClient;
};

let broker: RunningBroker;
beforeAll(async () => {
  broker = await startBroker({ host: "127.0.0.1", port: 0, logLevel: "silent" }, silentLogger);
});
afterAll(async () => {
  await broker.close();
});

describe("discovery", () => {
  it("reports SERVING on grpc.health.v1 for the server and each service, NOT_FOUND for others", async () => {
    const Health = load(healthProto, ["grpc", "health", "v1", "Health"]);
    const health = new Health(broker.address, credentials.createInsecure());
    const check = (service: string) =>
      new Promise<{ status?: string; err?: ServiceError }>((resolve) =>
        health["Check"]!.call(health, { service }, (err: ServiceError | null, res: { status: string }) => resolve(err ? { err } : { status: res.status })),
      );
    expect(await check("")).toEqual({ status: "SERVING" });
    expect(await check("ratatoskr.MessageBroker")).toEqual({ status: "SERVING" });
    expect(await check("ratatoskr.v2.Broker")).toEqual({ status: "SERVING" });
    expect((await check("no.such.Service")).err?.code).toBe(5); // NOT_FOUND, per the health protocol
    health.close();
  });

  it("lists the v1, v2 and health services over server reflection and describes them", async () => {
    const Reflection = load(reflectionProto, ["grpc", "reflection", "v1", "ServerReflection"]);
    const reflection = new Reflection(broker.address, credentials.createInsecure());
    const stream = reflection["ServerReflectionInfo"]!.call(reflection) as ClientDuplexStream<object, Record<string, any>>;
    const ask = (request: object) =>
      new Promise<Record<string, any>>((resolve, reject) => {
        stream.once("data", resolve);
        stream.once("error", reject);
        stream.write(request);
      });
    const listed = await ask({ list_services: "" });
    const names = (listed["list_services_response"]["service"] as Array<{ name: string }>).map((x) => x.name);
    expect(names).toEqual(expect.arrayContaining(["ratatoskr.MessageBroker", "ratatoskr.v2.Broker", "grpc.health.v1.Health"]));

    // grpcurl's `describe` path: the file that defines a symbol, as serialized descriptors.
    const described = await ask({ file_containing_symbol: "ratatoskr.MessageBroker" });
    const files = described["file_descriptor_response"]["file_descriptor_proto"] as Buffer[];
    expect(files.length).toBeGreaterThan(0);
    expect(Buffer.concat(files).toString("latin1")).toContain("Subscribe");
    stream.end();
    reflection.close();
  });
});
