import { defineConfig } from "vitest/config";

// Unit tests live beside the code (src/**/*.test.ts); transport and integration tests in
// tests/. The global setup starts DynamoDB Local unless an endpoint is already given.
export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "tests/**/*.test.ts"],
    globalSetup: ["tests/support/global-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: "forks",
  },
});
