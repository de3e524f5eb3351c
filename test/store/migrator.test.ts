/**
 * The migrator: each migration applied once and recorded, reruns are no-ops, an
 * edited migration is refused, and processes starting together do not apply
 * anything twice (PostgreSQL: advisory lock; SQLite: BEGIN IMMEDIATE).
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadMigrations, migratePostgres } from "../../src/store/migrator.ts";
import { migrateDatabase, parseDatabaseUrl } from "../../src/store/open-store.ts";
import { sqliteDatabaseClass } from "../../src/store/sqlite/driver.ts";
import { BACKENDS, createTestDatabase, POSTGRES_URL, withPg } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "..", "bin", "jobwire.js");

interface Recorded {
  name: string;
  checksum: string;
}

async function recorded(db: TestDatabase): Promise<Recorded[]> {
  const sql = `SELECT "name", "checksum" FROM "_jobwire_migrations" ORDER BY "name"`;
  if (db.dialect === "sqlite") {
    const raw = new (sqliteDatabaseClass())(db.url.slice("file:".length), { readonly: true });
    try {
      return raw.prepare(sql).all() as Recorded[];
    } finally {
      raw.close();
    }
  }
  return withPg(async (c) => (await c.query<Recorded>(sql)).rows, db.url);
}

async function exec(db: TestDatabase, sql: string): Promise<void> {
  if (db.dialect === "sqlite") {
    const raw = new (sqliteDatabaseClass())(db.url.slice("file:".length));
    try {
      raw.exec(sql);
    } finally {
      raw.close();
    }
  } else {
    await withPg((c) => c.query(sql), db.url);
  }
}

describe.each(BACKENDS)("migrator on %s", (dialect) => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase(dialect);
  });
  afterEach(() => db.dispose());

  it("applies every migration once, records it with its checksum, and a rerun does nothing", async () => {
    const migrations = loadMigrations(dialect);
    expect(migrations.length).toBeGreaterThan(0);
    const names = migrations.map((m) => m.name);

    const progress: string[] = [];
    const first = await migrateDatabase(parseDatabaseUrl(db.url), (m) => progress.push(m));
    expect(first).toEqual({ applied: names, alreadyApplied: [] });
    expect(progress).toEqual(
      names.flatMap((n, i) => [
        `(${i + 1}/${names.length}) applying migration ${n}`,
        expect.stringMatching(new RegExp(`^applied ${n} in \\d+ ms$`)),
      ]),
    );
    expect(await recorded(db)).toEqual(migrations.map(({ name, checksum }) => ({ name, checksum })));

    const second = await migrateDatabase(parseDatabaseUrl(db.url));
    expect(second).toEqual({ applied: [], alreadyApplied: names });
    expect(await recorded(db)).toHaveLength(names.length);
  });

  it("refuses to run when an applied migration's file no longer matches its record", async () => {
    await migrateDatabase(parseDatabaseUrl(db.url));
    const [first] = loadMigrations(dialect);
    await exec(db, `UPDATE "_jobwire_migrations" SET "checksum" = 'edited' WHERE "name" = '${first!.name}'`);
    await expect(migrateDatabase(parseDatabaseUrl(db.url))).rejects.toThrow(
      new RegExp(`migration ${first!.name} was applied to this database but its file has changed`),
    );
  });

  it("leaves nothing half-applied when a migration fails", async () => {
    // A table the first migration creates already exists: its CREATE fails.
    await exec(db, `CREATE TABLE "queues" ("name" TEXT PRIMARY KEY)`);
    await expect(migrateDatabase(parseDatabaseUrl(db.url))).rejects.toThrow(/queues/);
    // Nothing recorded, and the migration's earlier statements were rolled back.
    expect(await recorded(db)).toEqual([]);
    const tables =
      dialect === "sqlite"
        ? await (async () => {
            const raw = new (sqliteDatabaseClass())(db.url.slice("file:".length), { readonly: true });
            try {
              return raw.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'jobs'`).all();
            } finally {
              raw.close();
            }
          })()
        : await withPg(
            async (c) =>
              (await c.query(`SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'jobs'`))
                .rows,
            db.url,
          );
    expect(tables).toEqual([]);
  });
});

describe.skipIf(!POSTGRES_URL)("migrator on postgres, racing", () => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase("postgres");
  });
  afterEach(() => db.dispose());

  it("4 processes migrating a fresh database at once apply each migration exactly once", async () => {
    const names = loadMigrations("postgres").map((m) => m.name);
    const results = await Promise.all(Array.from({ length: 4 }, () => migratePostgres(db.url)));
    const applied = results.flatMap((r) => r.applied);
    expect(applied.sort()).toEqual([...names].sort());
    for (const r of results) expect([...r.applied, ...r.alreadyApplied].sort()).toEqual([...names].sort());
    expect(await recorded(db)).toHaveLength(names.length);
  });
});

describe("migrator on sqlite, racing", () => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase("sqlite");
  });
  afterEach(() => db.dispose());

  it("2 processes migrating one fresh file at once apply each migration exactly once", async () => {
    const names = loadMigrations("sqlite").map((m) => m.name);
    const runs = await Promise.all(
      [1, 2].map(() =>
        run(process.execPath, [BIN, "migrate", "--database", db.url], {
          env: { ...process.env, JOBWIRE_DATABASE_URL: "" },
        }),
      ),
    );
    const counts = runs.map(({ stdout }) => {
      const m = /(\d+) migration\(s\) applied, (\d+) already applied/.exec(stdout);
      if (!m) throw new Error(`unexpected output: ${stdout}`);
      return { applied: Number(m[1]), already: Number(m[2]) };
    });
    expect(counts.reduce((n, c) => n + c.applied, 0)).toBe(names.length);
    expect(counts.every((c) => c.applied + c.already === names.length)).toBe(true);
    expect(await recorded(db)).toHaveLength(names.length);
  });
});
