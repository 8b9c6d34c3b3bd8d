import { defineConfig } from "vitest/config";

// Two tiers: `unit` (unit + integration over loopback gRPC, no Docker) and `e2e`
// (testcontainers suites against the broker image; needs a Docker engine).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["broker/**/*.test.ts", "loadgen/**/*.test.ts", "cli/**/*.test.ts", "test/**/*.test.ts"],
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["e2e/**/*.test.ts"],
          // Fails the run at once, with one line, when no Docker engine or image is there.
          globalSetup: ["e2e/global-setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
          env: { TESTCONTAINERS_RYUK_DISABLED: "true", TESTCONTAINERS_HOST_OVERRIDE: "localhost" },
        },
      },
    ],
  },
});
