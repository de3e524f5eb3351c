/**
 * Applies the SQL migrations in prisma/<dialect>/migrations/<timestamp>_<name>/
 * migration.sql (Prisma's folder layout) in name order, each once, recording
 * them in `_jobwire_migrations`.
 *
 * Why not `prisma migrate deploy`: it needs Prisma's schema-engine binary, which
 * cannot be downloaded on machines without internet (see README). The files are
 * still Prisma-shaped, so a machine that has the engine can inspect them.
 *
 * Concurrency: on PostgreSQL the whole run holds a session advisory lock, so two
 * processes starting at once apply each migration exactly once (the second
 * waits, then finds everything recorded). On SQLite each migration runs in a
 * BEGIN IMMEDIATE transaction that re-checks the record first.
 *
 * A recorded migration whose file changed afterwards is refused (checksum), since
 * the database no longer matches what the file says.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Dialect } from "./job-store.ts";
import { sqliteDatabaseClass } from "./sqlite/driver.ts";

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrateResult {
  applied: string[];
  alreadyApplied: string[];
}

export type MigrateProgress = (message: string) => void;

/** Arbitrary constant: the key of jobwire's migration advisory lock. */
const PG_MIGRATION_LOCK = 7_239_441_205;
const TABLE = "_jobwire_migrations";
/** How often a long PostgreSQL migration reports that it is still running. */
const PROGRESS_EVERY_MS = 5_000;

/**
 * The folder holding prisma/: two levels up from src/store/, three from the
 * compiled dist/src/store/ (scripts/build.mjs), so look upwards for it.
 */
const projectRoot = (() => {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "prisma", "schema.prisma"))) return dir;
    if (dirname(dir) === dir) throw new Error(`no prisma/schema.prisma above ${start}`);
  }
})();

export function migrationsDir(dialect: Dialect): string {
  return join(projectRoot, "prisma", dialect, "migrations");
}

export function loadMigrations(dialect: Dialect): Migration[] {
  const dir = migrationsDir(dialect);
  if (!existsSync(dir)) throw new Error(`no migrations folder at ${dir}`);
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, "migration.sql")))
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, "migration.sql"), "utf8");
      return { name, sql, checksum: createHash("sha256").update(sql).digest("hex") };
    });
}

class ChecksumMismatchError extends Error {
  constructor(name: string) {
    super(
      `migration ${name} was applied to this database but its file has changed since; ` +
        `restore the file or write a new migration`,
    );
  }
}

export async function migrateSqlite(filePath: string, progress: MigrateProgress = () => {}): Promise<MigrateResult> {
  const Database = sqliteDatabaseClass();
  const db = new Database(filePath, { timeout: 30_000 });
  try {
    // Switching a fresh file to WAL needs a moment of exclusive access and can
    // answer SQLITE_BUSY at once (no busy handler) while another process
    // migrates the same file: retry it within the busy timeout.
    retryWhileBusy(() => db.pragma("journal_mode = WAL"), 30_000);
    db.pragma("foreign_keys = ON");
    db.exec(`CREATE TABLE IF NOT EXISTS "${TABLE}" (
      "name" TEXT NOT NULL PRIMARY KEY, "checksum" TEXT NOT NULL, "applied_at" TEXT NOT NULL)`);
    const result: MigrateResult = { applied: [], alreadyApplied: [] };
    const migrations = loadMigrations("sqlite");
    for (const [i, m] of migrations.entries()) {
      const started = Date.now();
      const outcome = db
        .transaction(() => {
          const row = db.prepare(`SELECT "checksum" FROM "${TABLE}" WHERE "name" = ?`).get(m.name) as
            { checksum: string } | undefined;
          if (row) {
            if (row.checksum !== m.checksum) throw new ChecksumMismatchError(m.name);
            return "already" as const;
          }
          // better-sqlite3 blocks the thread while it runs: no ticker here.
          progress(`(${i + 1}/${migrations.length}) applying migration ${m.name}`);
          db.exec(m.sql);
          db.prepare(`INSERT INTO "${TABLE}" ("name", "checksum", "applied_at") VALUES (?, ?, ?)`).run(
            m.name,
            m.checksum,
            new Date().toISOString(),
          );
          return "applied" as const;
        })
        .immediate();
      (outcome === "applied" ? result.applied : result.alreadyApplied).push(m.name);
      if (outcome === "applied") progress(`applied ${m.name} in ${Date.now() - started} ms`);
    }
    return result;
  } finally {
    db.close();
  }
}

export async function migratePostgres(
  connectionString: string,
  progress: MigrateProgress = () => {},
): Promise<MigrateResult> {
  const { default: pg } = await import("pg"); // loaded only for PostgreSQL (~8 MiB)
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [PG_MIGRATION_LOCK]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS "${TABLE}" (
        "name" TEXT NOT NULL PRIMARY KEY, "checksum" TEXT NOT NULL, "applied_at" TIMESTAMPTZ NOT NULL)`);
      const recorded = new Map(
        (await client.query<{ name: string; checksum: string }>(`SELECT "name", "checksum" FROM "${TABLE}"`)).rows.map(
          (r) => [r.name, r.checksum],
        ),
      );
      const result: MigrateResult = { applied: [], alreadyApplied: [] };
      const migrations = loadMigrations("postgres");
      for (const [i, m] of migrations.entries()) {
        const checksum = recorded.get(m.name);
        if (checksum !== undefined) {
          if (checksum !== m.checksum) throw new ChecksumMismatchError(m.name);
          result.alreadyApplied.push(m.name);
          continue;
        }
        progress(`(${i + 1}/${migrations.length}) applying migration ${m.name}`);
        const started = Date.now();
        // A migration on a big table can take minutes: say it is still going.
        const ticker = setInterval(
          () => progress(`still applying ${m.name} (${Math.round((Date.now() - started) / 1000)} s)`),
          PROGRESS_EVERY_MS,
        );
        await client.query("BEGIN");
        try {
          await client.query(m.sql);
          await client.query(`INSERT INTO "${TABLE}" ("name", "checksum", "applied_at") VALUES ($1, $2, now())`, [
            m.name,
            m.checksum,
          ]);
          await client.query("COMMIT");
        } catch (e) {
          await client.query("ROLLBACK");
          throw e;
        } finally {
          clearInterval(ticker);
        }
        progress(`applied ${m.name} in ${Date.now() - started} ms`);
        result.applied.push(m.name);
      }
      return result;
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [PG_MIGRATION_LOCK]);
    }
  } finally {
    await client.end();
  }
}

function retryWhileBusy<T>(fn: () => T, timeoutMs: number): T {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return fn();
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if ((code !== "SQLITE_BUSY" && code !== "SQLITE_LOCKED") || Date.now() > deadline) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}
