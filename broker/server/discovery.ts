import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Server } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";

/** Fully-qualified names of the services this broker serves (health reports each of them). */
export const SERVICE_NAMES = ["ratatoskr.MessageBroker", "ratatoskr.v2.Broker"] as const;
export const HEALTH_SERVICE_NAME = "grpc.health.v1.Health";

export interface Discovery {
  /** Health turns NOT_SERVING for the server ("") and every service: the first step of shutdown. */
  setNotServing(): void;
}

/**
 * Adds the standard `grpc.health.v1.Health` service (SERVING for "" and each service) and
 * server reflection (v1 and v1alpha) describing the v1, v2 and health services, so grpcurl,
 * grpc_cli and clients in other languages can find and call the broker without our protos.
 */
export function addHealthAndReflection(server: Server): Discovery {
  const names = ["", ...SERVICE_NAMES];
  const health = new HealthImplementation(Object.fromEntries(names.map((n) => [n, "SERVING" as const])));
  health.addToServer(server);

  const protoDir = findProtoDir();
  const definitions = loadSync(["ratatoskr.proto", "ratatoskr/v2/broker.proto", healthProtoPath], {
    includeDirs: [protoDir, dirname(healthProtoPath)],
    keepCase: true,
  });
  new ReflectionService(definitions).addToServer(server);

  return { setNotServing: () => names.forEach((n) => health.setStatus(n, "NOT_SERVING")) };
}

// The protos ship beside the code: proto/ at the repository root when run from source
// (broker/server/), one level further up when run from dist/broker/server/.
function findProtoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, "proto");
    if (existsSync(join(candidate, "ratatoskr.proto"))) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`cannot find proto/ratatoskr.proto above ${fileURLToPath(import.meta.url)} (needed for server reflection)`);
}
