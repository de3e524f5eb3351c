import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Test files run in parallel processes; each gets its own SQLite files and
    // its own PostgreSQL schema, so they never share state.
    pool: "forks",
    globalSetup: ["test/helpers/global-setup.ts"],
    // In CI every test is listed, so .ci/run can prove the PostgreSQL suite ran.
    reporters: process.env.CI === "true" ? ["verbose"] : ["default"],
  },
});
