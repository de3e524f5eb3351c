/**
 * Opens the store named by one database URL: `file:<path>` → embedded SQLite,
 * `postgres://…` / `postgresql://…` → PostgreSQL. Applies pending migrations
 * first (unless told not to), then connects the dialect's driver client
 * (sqlite/sqlite-client.ts, postgres/postgres-client.ts: why not Prisma's
 * query engine is said there).
 */
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ValidationError } from "../jobs/errors.ts";
import { SharedClocks, type StoreClock } from "./clock.ts";
import type { JobStore } from "./job-store.ts";
import { migratePostgres, migrateSqlite } from "./migrator.ts";
import type { MigrateProgress, MigrateResult } from "./migrator.ts";
import { postgresDialect } from "./postgres/dialect.ts";
import { PrismaJobStore } from "./prisma-job-store.ts";
import type { Sql } from "./sql.ts";
import { observeStatements } from "./sql-client.ts";
import type { SqlClient } from "./sql-client.ts";
import { sqliteDialect } from "./sqlite/dialect.ts";
import { SqliteClient } from "./sqlite/sqlite-client.ts";

/** The database clocks of this process, one per database URL (clock.ts). */
const DATABASE_CLOCKS = new SharedClocks();

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
  /** A background read of the database's clock failed (the clock keeps its last offset). */
  onClockError?: (error: unknown) => void;
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
    // WAL, synchronous=FULL and foreign keys are set by the client.
    const busyTimeoutMs = options.busyTimeoutMs ?? 5_000;
    const client = new SqliteClient(target.filePath, { busyTimeoutMs });
    return new PrismaJobStore(observed(client, options), sqliteDialect(target.filePath, busyTimeoutMs));
  }

  // Loaded only here: node-postgres costs ~8 MiB of memory a SQLite process never uses.
  const { PostgresClient } = await import("./postgres/postgres-client.ts");
  const client = new PostgresClient(target.url, { max: options.poolSize ?? 10 });
  const readClock = postgresDialect.readClock!;
  let clock: StoreClock;
  try {
    // Every server on one database runs on the database's clock (clock.ts).
    // Its first read also fails fast, with the driver's message, when the
    // database is unreachable.
    clock = await DATABASE_CLOCKS.acquire(target.url, () => readClock(client), {
      onError: (e) => options.onClockError?.(e),
    });
  } catch (e) {
    await client.$disconnect();
    throw e;
  }
  return new PrismaJobStore(observed(client, options), postgresDialect, clock);
}

function observed(client: SqlClient, options: OpenStoreOptions): SqlClient {
  return options.onStatement ? observeStatements(client, options.onStatement) : client;
}
