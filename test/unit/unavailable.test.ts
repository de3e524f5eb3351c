/**
 * isDatabaseUnavailable on real driver errors: a refused PostgreSQL connection
 * (also to `localhost`, which Node reports as an AggregateError of one refusal
 * per address), SQLite's SQLITE_BUSY from a second connection holding the
 * write lock, and the same wrapped as a cause are outages; a SQL error, a
 * constraint violation and a domain error are not.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { NotFoundError } from "../../src/jobs/errors.ts";
import { sqliteDatabaseClass } from "../../src/store/sqlite/driver.ts";
import { isDatabaseUnavailable } from "../../src/store/unavailable.ts";

async function caught(fn: () => Promise<unknown> | unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error("did not throw");
}

describe("isDatabaseUnavailable", () => {
  it("a refused PostgreSQL connection is an outage, on an address and on localhost", async () => {
    for (const host of ["127.0.0.1", "localhost"]) {
      const client = new pg.Client({ connectionString: `postgres://postgres@${host}:1/x` });
      const error = await caught(() => client.connect());
      expect(isDatabaseUnavailable(error), `${host}: ${String(error)}`).toBe(true);
      expect(isDatabaseUnavailable(new Error("enqueue failed", { cause: error }))).toBe(true);
    }
  });

  it("SQLITE_BUSY past the busy timeout is an outage; a constraint violation is not", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jobwire-unavailable-"));
    const Database = sqliteDatabaseClass();
    const holder = new Database(join(dir, "x.db"));
    const other = new Database(join(dir, "x.db"), { timeout: 10 });
    try {
      holder.exec('CREATE TABLE "t" ("id" INTEGER PRIMARY KEY)');
      holder.prepare("BEGIN IMMEDIATE").run();
      const busy = await caught(() => other.prepare('INSERT INTO "t" VALUES (1)').run());
      expect((busy as { code?: string }).code).toBe("SQLITE_BUSY");
      expect(isDatabaseUnavailable(busy)).toBe(true);
      holder.prepare("COMMIT").run();
      other.prepare('INSERT INTO "t" VALUES (1)').run();
      const duplicate = await caught(() => other.prepare('INSERT INTO "t" VALUES (1)').run());
      expect((duplicate as { code?: string }).code).toMatch(/^SQLITE_CONSTRAINT/);
      expect(isDatabaseUnavailable(duplicate)).toBe(false);
    } finally {
      other.close();
      holder.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("plain errors, domain errors and non-errors are not outages", () => {
    expect(isDatabaseUnavailable(new Error('relation "queues" does not exist'))).toBe(false);
    expect(isDatabaseUnavailable(new NotFoundError("job", "7"))).toBe(false);
    expect(isDatabaseUnavailable("ECONNREFUSED")).toBe(false);
    expect(isDatabaseUnavailable(undefined)).toBe(false);
  });
});
