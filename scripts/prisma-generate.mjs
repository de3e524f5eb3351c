#!/usr/bin/env node
// Derives one Prisma schema per dialect from prisma/schema.prisma (the single
// source of truth) and generates one Prisma client per dialect.
//
// Why two clients: a Prisma 7 client is compiled for one provider and refuses
// a driver adapter of another, so the SQLite and PostgreSQL stores each need
// their own. Only the datasource provider and the output folder differ.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const source = readFileSync(join(root, "prisma/schema.prisma"), "utf8");
const dialects = { sqlite: "sqlite", postgres: "postgresql" };

for (const [dialect, provider] of Object.entries(dialects)) {
  const derived =
    `// GENERATED from prisma/schema.prisma by scripts/prisma-generate.mjs. Do not edit.\n` +
    source
      .replace(/provider = "sqlite"/, `provider = "${provider}"`)
      .replace("__generated__/DIALECT", `__generated__/${dialect}`)
      .replace(`output       = "../src`, `output       = "../../src`);
  const file = join(root, "prisma", dialect, "schema.prisma");
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, derived);
  process.stdout.write(`jobwire: generating the ${dialect} Prisma client\n`);
  execFileSync("npx", ["--no-install", "prisma", "generate", "--schema", file], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
  });
}
