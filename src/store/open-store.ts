/**
 * Opens the store named by one database URL: `file:<path>` → embedded SQLite,
 * `postgres://…` / `postgresql://…` → PostgreSQL. Applies pending migrations
 * first (unless told not to), then connects Prisma through its driver adapter.
 */
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { PrismaPg } from "@prisma/adapter-pg";
import { ValidationError } from "../jobs/errors.ts";
import { PrismaClient as PostgresPrismaClient } from "./__generated__/postgres/client.ts";
import { PrismaClient as SqlitePrismaClient } from "./__generated__/sqlite/client.ts";
import type { JobStore } from "./job-store.ts";
import { migratePostgres, migrateSqlite } from "./migrator.ts";
import type { MigrateProgress, MigrateResult } from "./migrator.ts";
import { postgresDialect } from "./postgres/dialect.ts";
import { PrismaJobStore } from "./prisma-job-store.ts";
import type { Sql } from "@prisma/client/runtime/client";
import { observeStatements } from "./sql-client.ts";
import type { SqlClient } from "./sql-client.ts";
import { sqliteDialect } from "./sqlite/dialect.ts";
import { routeSqliteDriverImports } from "./sqlite/driver.ts";

export type DatabaseTarget = { dialect: "sqlite"; filePath: string } | { dialect: "postgres"; url: string };

export interface OpenStoreOptions {
  /** Apply pending migrations before connecting (default true). */
  migrate?: boolean;
  /** PostgreSQL pool size (default 10). */
  poolSize?: number;
  /** SQLite busy timeout in ms: how long a writer waits for another process (default 5000). */
  busyTimeoutMs?: number;
  progress?: MigrateProgress;
  /** Sees every statement the store sends (to count or time round trips). */
  onStatement?: (statement: Sql) => void;
}

export function parseDatabaseUrl(url: string): DatabaseTarget {
  if (url.startsWith("file:")) {
    const path = url.slice("file:".length).replace(/^\/\/(?=\/)/, "");
    if (path === "" || path.includes(":memory:")) {
      throw new ValidationError("database", "a file: URL must name a file, e.g. file:./jobwire.db");
    }
    return { dialect: "sqlite", filePath: resolve(path) };
  }
  if (/^postgres(ql)?:\/\//.test(url)) return { dialect: "postgres", url };
  throw new ValidationError(
    "database",
    `unsupported URL ${JSON.stringify(url)}: use file:./jobwire.db (SQLite) or postgres://user@host:5432/db`,
  );
}

export async function migrateDatabase(target: DatabaseTarget, progress?: MigrateProgress): Promise<MigrateResult> {
  if (target.dialect === "sqlite") {
    const dir = dirname(target.filePath);
    if (!existsSync(dir)) throw new Error(`cannot create ${target.filePath}: folder ${dir} does not exist`);
    return migrateSqlite(target.filePath, progress);
  }
  return migratePostgres(target.url, progress);
}

export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<JobStore> {
  const target = parseDatabaseUrl(url);
  if (options.migrate !== false) await migrateDatabase(target, options.progress);

  if (target.dialect === "sqlite") {
    // Imported here, after the driver route is set (see sqlite/driver.ts).
    routeSqliteDriverImports();
    const { PrismaBetterSqlite3 } = await import("@prisma/adapter-better-sqlite3");
    const client = new SqlitePrismaClient({
      adapter: new PrismaBetterSqlite3({
        url: `file:${target.filePath}`,
        timeout: options.busyTimeoutMs ?? 5_000,
      }),
    });
    // Durability by default: WAL with synchronous=FULL survives power loss.
    await client.$queryRawUnsafe("PRAGMA journal_mode = WAL");
    await client.$queryRawUnsafe("PRAGMA synchronous = FULL");
    await client.$queryRawUnsafe("PRAGMA foreign_keys = ON");
    return new PrismaJobStore(observed(client as unknown as SqlClient, options), sqliteDialect(target.filePath));
  }

  const client = new PostgresPrismaClient({
    adapter: new PrismaPg({ connectionString: target.url, max: options.poolSize ?? 10 }),
  });
  // Fail fast with the driver's message when the database is unreachable.
  await client.$queryRawUnsafe("SELECT 1");
  return new PrismaJobStore(observed(client as unknown as SqlClient, options), postgresDialect);
}

function observed(client: SqlClient, options: OpenStoreOptions): SqlClient {
  return options.onStatement ? observeStatements(client, options.onStatement) : client;
}
