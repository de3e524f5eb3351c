import { createRequire } from "node:module";
import { defineConfig } from "vitest/config";

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // graphql 16 ships ESM (index.mjs, picked by Vite's "module" field) and CJS
    // (index.js, what Node itself resolves). Apollo and graphql-tools load
    // the CJS one; our sources must get the same instance, or graphql refuses
    // types "from another module or realm".
    alias: [{ find: /^graphql$/, replacement: require.resolve("graphql") }],
  },
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
