import type { Server } from "@grpc/grpc-js";

// Placeholder: health + reflection are added by the v1/foundation work.
export function addHealthAndReflection(_server: Server): { setNotServing(): void } {
  return { setNotServing: () => undefined };
}
