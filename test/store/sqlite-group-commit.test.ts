/**
 * Group commit in the SQLite driver client: transactions asked for in the same
 * turn of the event loop, or while one is open, share one COMMIT (one fsync),
 * each in its own savepoint — a member that fails is rolled back alone and
 * gets its own error; every member's promise settles only once the shared
 * COMMIT is durable (another connection sees its rows by then).
 */
import { sql } from "../../src/store/sql.ts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Row } from "../../src/store/sql-client.ts";
import { SqliteClient } from "../../src/store/sqlite/sqlite-client.ts";
import { createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { queryDatabase } from "../helpers/inspect.ts";

describe("SQLite group commit", () => {
  let db: TestDatabase;
  let client: SqliteClient;

  beforeEach(async () => {
    db = await createTestDatabase("sqlite");
    await (await db.open()).close(); // migrated
    client = new SqliteClient(db.url.slice("file:".length), { busyTimeoutMs: 5_000 });
  });
  afterEach(async () => {
    await client.$disconnect();
    await db.dispose();
  });

  const now = new Date("2026-11-28T07:00:00.000Z");
  const addQueue = (name: string) =>
    sql`INSERT INTO "queues" ("name", "created_at", "updated_at") VALUES (${name}, ${now}, ${now})`;
  const queueNames = async () =>
    (await queryDatabase<{ name: string }>(db, `SELECT name FROM queues ORDER BY name`)).map((r) => r.name);

  it("opens the connection with WAL, synchronous=FULL, foreign keys and in-memory statement journals", async () => {
    const pragma = async (name: string) => {
      const [row] = await client.$queryRaw<Row[]>(sql([`PRAGMA ${name}`]));
      return Object.values(row ?? {})[0];
    };
    expect(await pragma("journal_mode")).toBe("wal");
    expect(Number(await pragma("synchronous"))).toBe(2); // FULL
    expect(Number(await pragma("foreign_keys"))).toBe(1);
    expect(Number(await pragma("temp_store"))).toBe(2); // MEMORY
  });

  it("commits 20 concurrent transactions in far fewer COMMITs, each seeing the ones before it", async () => {
    const seen = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        client.$transaction(async (tx) => {
          await tx.$executeRaw(addQueue(`q${String(i).padStart(2, "0")}`));
          const [row] = await tx.$queryRaw<Row[]>(sql`SELECT COUNT(*) AS "n" FROM "queues"`);
          return Number(row?.n);
        }),
      ),
    );
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i + 1)); // one after another, in order
    expect(client.stats.transactions).toBe(20);
    expect(client.stats.commits).toBeLessThanOrEqual(2);
    expect(await queueNames()).toHaveLength(20);
  });

  it("rolls a failing member back alone; it gets its own error, the others commit", async () => {
    const outcomes = await Promise.allSettled([
      client.$transaction((tx) => tx.$executeRaw(addQueue("a"))),
      client.$transaction(async (tx) => {
        await tx.$executeRaw(addQueue("doomed"));
        throw new Error("changed my mind");
      }),
      client.$transaction(async (tx) => {
        await tx.$executeRaw(addQueue("c"));
        await tx.$executeRaw(addQueue("a")); // primary key violation: the statement fails
      }),
      client.$transaction((tx) => tx.$executeRaw(addQueue("d"))),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled"]);
    expect(String((outcomes[1] as PromiseRejectedResult).reason)).toContain("changed my mind");
    expect(String((outcomes[2] as PromiseRejectedResult).reason)).toMatch(/UNIQUE constraint failed/);
    expect(await queueNames()).toEqual(["a", "d"]);
    expect(client.stats.commits).toBe(1);
  });

  it("settles a member only after the shared COMMIT: another connection already sees its row", async () => {
    const checks = await Promise.all(
      ["x", "y", "z"].map(async (name) => {
        await client.$transaction((tx) => tx.$executeRaw(addQueue(name)));
        return (await queueNames()).includes(name);
      }),
    );
    expect(checks).toEqual([true, true, true]);
  });

  it("joins a transaction asked for while another is open", async () => {
    let inner: Promise<number> | null = null;
    await client.$transaction(async (tx) => {
      await tx.$executeRaw(addQueue("outer"));
      inner = client.$transaction((t) => t.$executeRaw(addQueue("inner")));
    });
    expect(await inner).toBe(1);
    expect(client.stats).toEqual({ transactions: 2, commits: 1 });
    expect(await queueNames()).toEqual(["inner", "outer"]);
  });
});
