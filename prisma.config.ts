import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { defineConfig } from "prisma/config";

// The Prisma CLI downloads its schema-engine binary at start-up and fails when
// that host is unreachable. `prisma generate` never runs the engine, so pointing
// PRISMA_SCHEMA_ENGINE_BINARY at any existing file lets it work offline. We only
// do this when no engine was installed, so a machine with one keeps using it.
// jobwire never needs `prisma migrate`: it applies its own SQL migrations
// (src/store/migrator.ts).
if (!process.env.PRISMA_SCHEMA_ENGINE_BINARY && !schemaEngineInstalled()) {
  process.env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath;
}

function schemaEngineInstalled(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const enginesDir = dirname(require.resolve("@prisma/engines/package.json"));
    return existsSync(enginesDir) && readdirSync(enginesDir).some((name) => name.startsWith("schema-engine"));
  } catch {
    return false;
  }
}

export default defineConfig({
  // The dialect schemas are derived from prisma/schema.prisma by
  // scripts/prisma-generate.mjs, which passes --schema explicitly.
  schema: "prisma/sqlite/schema.prisma",
});
