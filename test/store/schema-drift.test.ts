/**
 * prisma/schema.prisma (plus the partial indexes Prisma cannot express) against
 * the database the hand-written migrations produce, on every backend: tables,
 * columns, types, nullability, primary keys and indexes must agree.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { migrateDatabase, parseDatabaseUrl } from "../../src/store/open-store.ts";
import { sqliteDatabaseClass } from "../../src/store/sqlite/driver.ts";
import { BACKENDS, createTestDatabase, withPg } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import {
  compareSchemas,
  expectedSchema,
  findSchemaDrift,
  introspect,
  normalisePredicate,
} from "../helpers/schema-drift.ts";

describe.each(BACKENDS)("schema drift on %s", (dialect) => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase(dialect);
    await migrateDatabase(parseDatabaseUrl(db.url));
  });
  afterEach(() => db.dispose());

  it("the migrated database matches schema.prisma", async () => {
    expect(await findSchemaDrift(dialect, db.url)).toEqual([]);
  });

  it("sees every kind of drift the migrations could introduce", async () => {
    // Change the database behind the schema's back, one kind of drift each.
    const statements =
      dialect === "sqlite"
        ? [
            `ALTER TABLE "queues" ADD COLUMN "colour" TEXT`,
            `DROP INDEX "jobs_claim_idx"`,
            `CREATE INDEX "jobs_claim_idx" ON "jobs" ("queue", "priority", "run_at", "id")`,
            `DROP INDEX "job_events_job_id_seq_key"`,
            `CREATE INDEX "job_events_job_id_seq_key" ON "job_events" ("job_id", "seq")`,
          ]
        : [
            `ALTER TABLE "queues" ADD COLUMN "colour" TEXT`,
            `ALTER TABLE "jobs" ALTER COLUMN "worker_id" SET NOT NULL`,
            `ALTER TABLE "jobs" ALTER COLUMN "attempts" TYPE BIGINT`,
            `DROP INDEX "jobs_claim_idx"`,
            `CREATE INDEX "jobs_claim_idx" ON "jobs" ("queue", "priority", "run_at", "id")`,
            `DROP INDEX "job_events_job_id_seq_key"`,
            `CREATE INDEX "job_events_job_id_seq_key" ON "job_events" ("job_id", "seq")`,
          ];
    if (dialect === "sqlite") {
      const Database = sqliteDatabaseClass();
      const raw = new Database(db.url.slice("file:".length));
      try {
        for (const sql of statements) raw.exec(sql);
      } finally {
        raw.close();
      }
    } else {
      await withPg(async (c) => {
        for (const sql of statements) await c.query(sql);
      }, db.url);
    }

    const drift = await findSchemaDrift(dialect, db.url);
    expect(drift).toContain("column queues.colour: in the database but not in schema.prisma");
    expect(drift).toContain("index jobs_claim_idx: is not partial, expected partial WHERE state = 'QUEUED'");
    expect(drift).toContain("index job_events_job_id_seq_key: is not unique, expected unique");
    if (dialect === "postgres") {
      expect(drift).toContain("column jobs.worker_id: is NOT NULL, expected nullable");
      expect(drift).toContain("column jobs.attempts: type is bigint, expected integer");
    }
  });

  it("reports a table or index the migrations forgot", async () => {
    const actual = await introspect(dialect, db.url);
    const expected = expectedSchema(dialect);
    const { jobs: _dropped, ...tables } = actual.tables;
    const { jobs_scheduled_idx: _gone, ...indexes } = actual.indexes;
    expect(compareSchemas(expected, { tables, indexes })).toEqual([
      "table jobs: missing from the database",
      "index jobs_scheduled_idx: missing from the database",
    ]);
  });
});

describe("normalisePredicate", () => {
  it("spells the dialects' predicates one way", () => {
    expect(normalisePredicate(`"state" = 'QUEUED'`)).toBe("state = 'QUEUED'");
    expect(normalisePredicate(`(state = 'QUEUED'::text)`)).toBe("state = 'QUEUED'");
    expect(normalisePredicate(`(a = 'x') AND (b = 'y')`)).toBe("(a = 'x') AND (b = 'y')");
  });
});
