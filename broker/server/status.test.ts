import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError, TopicNotFoundError, UnavailableError } from "../core/index.js";
import { StoreUnavailableError } from "../store/index.js";
import { toStatus } from "./status.js";

describe("errors to gRPC status", () => {
  it.each([
    [new TopicNotFoundError("t"), status.NOT_FOUND],
    [new InvalidArgumentError("config.max_messages", "too large"), status.INVALID_ARGUMENT],
    [new UnavailableError("shutting down"), status.UNAVAILABLE],
    [new StoreUnavailableError("the store stopped accepting writes after a failed commit: EIO"), status.UNAVAILABLE],
  ])("maps %s to its status with its message", (err, code) => {
    const s = toStatus(err);
    expect(s.code).toBe(code);
    expect(s.details).toBe(err.message);
  });

  it("hides an unknown error's text behind INTERNAL and logs it", () => {
    const logged: unknown[] = [];
    const log = { error: (_msg: string, fields: unknown) => logged.push(fields) } as unknown as Parameters<typeof toStatus>[1];
    const s = toStatus(new Error("secret detail"), log);
    expect(s.code).toBe(status.INTERNAL);
    expect(s.details).not.toContain("secret");
    expect(logged).toHaveLength(1);
  });
});
