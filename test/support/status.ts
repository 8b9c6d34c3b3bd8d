// How a call ended, as a gRPC status: for tests of refusals.
import { status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "vitest";

/** The error a call failed with; undefined when it succeeded. */
async function failureOf(p: Promise<unknown>): Promise<ServiceError | undefined> {
  return p.then(
    () => undefined,
    (err: ServiceError) => err,
  );
}

/** The status code a call ended with: status.OK when it resolved. */
export async function codeOf(p: Promise<unknown>): Promise<status> {
  const err = await failureOf(p);
  return err === undefined ? status.OK : err.code;
}

/** Asserts that the call fails with `code` and, when given, details matching `detail`. */
export async function expectStatus(p: Promise<unknown>, code: status, detail?: RegExp): Promise<void> {
  const err = await failureOf(p);
  expect(err, "expected the call to fail").toBeDefined();
  expect(err!.code).toBe(code);
  if (detail) expect(err!.details).toMatch(detail);
}
