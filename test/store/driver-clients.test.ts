/**
 * The driver clients (sqlite/sqlite-client.ts, postgres/postgres-client.ts)
 * against Prisma's generated clients, on every backend: the same `Sql`
 * statements, run through both on one migrated database, read back as the
 * same jobs, events and queues (rows.ts), and write the same stored values —
 * SQLite timestamps as `2026-11-28T07:00:00.000+00:00` text (which text
 * comparisons in the store depend on), PostgreSQL timestamps as UTC whatever
 * the process's time zone. Ids past 2^53 come back exact, as text (Prisma's
 * SQLite client rounds them; the driver client does not).
 */
import { sql, type Sql } from "../../src/store/sql.ts";
import { PrismaPg } from "@prisma/adapter-pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PrismaClient as PostgresPrismaClient } from "../../src/store/__generated__/postgres/client.ts";
import { PrismaClient as SqlitePrismaClient } from "../../src/store/__generated__/sqlite/client.ts";
import type { DialectSql } from "../../src/store/dialect-sql.ts";
import { postgresDialect } from "../../src/store/postgres/dialect.ts";
import { PostgresClient } from "../../src/store/postgres/postgres-client.ts";
import { toJob, toJobEvent, toQueue } from "../../src/store/rows.ts";
import type { Row, SqlClient } from "../../src/store/sql-client.ts";
import { sqliteDialect } from "../../src/store/sqlite/dialect.ts";
import { routeSqliteDriverImports } from "../../src/store/sqlite/driver.ts";
import { SqliteClient } from "../../src/store/sqlite/sqlite-client.ts";
import { BACKENDS, createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { queryDatabase } from "../helpers/inspect.ts";

const AT = new Date("2026-11-28T07:00:00.000Z");
const LATER = new Date("2026-11-28T07:00:30.123Z");

describe.each(BACKENDS)("driver client on %s", (dialect) => {
  let db: TestDatabase;
  let driver: SqlClient;
  let prisma: SqlClient;
  let sqlOf: DialectSql;

  beforeEach(async () => {
    db = await createTestDatabase(dialect);
    await (await db.open()).close(); // migrated
    if (dialect === "sqlite") {
      const file = db.url.slice("file:".length);
      driver = new SqliteClient(file, { busyTimeoutMs: 5_000 });
      routeSqliteDriverImports();
      const { PrismaBetterSqlite3 } = await import("@prisma/adapter-better-sqlite3");
      prisma = new SqlitePrismaClient({ adapter: new PrismaBetterSqlite3({ url: db.url }) }) as unknown as SqlClient;
      sqlOf = sqliteDialect(file);
    } else {
      driver = new PostgresClient(db.url, { max: 2 });
      prisma = new PostgresPrismaClient({
        adapter: new PrismaPg({ connectionString: db.url, max: 2 }),
      }) as unknown as SqlClient;
      sqlOf = postgresDialect;
    }
  });
  afterEach(async () => {
    await driver.$disconnect();
    await prisma.$disconnect();
    await db.dispose();
  });

  const insertJob = (key: string, id?: bigint): Sql => sql`
    INSERT INTO "jobs" (${id === undefined ? sql`` : sql`"id", `}"queue", "state", "payload", "priority", "run_at",
      "max_attempts", "backoff", "idempotency_key", "tags", "metadata", "lease_expires_at", "last_seq",
      "created_at", "updated_at")
    VALUES (${id === undefined ? sql`` : sql`${id}, `}${"q"}, ${"QUEUED"},
      ${sqlOf.json({ big: 12345678901234567890n.toString(), nested: [1, "two", null, { three: true }] })},
      ${-7}, ${AT}, ${3}, ${sqlOf.json({ type: "fixed", delayMs: 1000 })}, ${key},
      ${sqlOf.json(["a", "b"])}, NULL, ${LATER}, 1, ${AT}, ${LATER})
    RETURNING *`;

  it("reads a job, its event and its queue back exactly as Prisma's client does", async () => {
    for (const [client, key] of [
      [driver, "driver"],
      [prisma, "prisma"],
    ] as const) {
      const [job] = await client.$queryRaw<Row[]>(insertJob(key));
      if (!job) throw new Error("no row");
      await client.$queryRaw(sql`
        INSERT INTO "job_events" ("job_id", "seq", "type", "from_state", "to_state", "attempt", "data", "created_at")
        VALUES (${BigInt(String(job.id))}, 1, ${"enqueued"}, NULL, ${"QUEUED"}, 0, ${sqlOf.json({ k: key })}, ${AT})`);
      await client.$executeRaw(sql`
        INSERT INTO "queues" ("name", "paused", "concurrency", "created_at", "updated_at")
        VALUES (${key}, ${true}, ${5}, ${AT}, ${LATER})`);
    }
    const read = async (client: SqlClient, key: string) => {
      const [job] = await client.$queryRaw<Row[]>(sql`SELECT * FROM "jobs" WHERE "idempotency_key" = ${key}`);
      const [event] = await client.$queryRaw<Row[]>(sql`
        SELECT "e".* FROM "job_events" AS "e" JOIN "jobs" AS "j" ON "j"."id" = "e"."job_id"
        WHERE "j"."idempotency_key" = ${key}`);
      const [queue] = await client.$queryRaw<Row[]>(sql`SELECT * FROM "queues" WHERE "name" = ${key}`);
      const [counted] = await client.$queryRaw<Row[]>(sql`SELECT COUNT(*) AS "n" FROM "jobs"`);
      if (!job || !event || !queue || !counted) throw new Error("missing row");
      return {
        job: { ...toJob(job, sqlOf), id: "-", idempotencyKey: "-" },
        event: { ...toJobEvent(event, sqlOf), id: "-", jobId: "-", data: null },
        queue: { ...toQueue(queue, sqlOf), name: "-" },
        count: Number(counted.n),
      };
    };
    // Each client reads both rows (its own and the other's) the same way.
    for (const key of ["driver", "prisma"]) {
      const viaDriver = await read(driver, key);
      expect(viaDriver).toEqual(await read(prisma, key));
      expect(viaDriver.job).toMatchObject({
        payload: { big: "12345678901234567890", nested: [1, "two", null, { three: true }] },
        priority: -7,
        runAt: AT,
        leaseExpiresAt: LATER,
        backoff: { type: "fixed", delayMs: 1000 },
        tags: ["a", "b"],
        metadata: null,
        lastSeq: 1,
      });
      expect(viaDriver.queue).toMatchObject({ paused: true, concurrency: 5, maxQueued: null, updatedAt: LATER });
    }
  });

  it("stores the values Prisma's client stores (SQLite: the timestamp text the store compares)", async () => {
    await driver.$queryRaw(insertJob("driver"));
    await prisma.$queryRaw(insertJob("prisma"));
    const stored = await queryDatabase<Record<string, unknown>>(
      db,
      `SELECT idempotency_key, run_at, lease_expires_at, priority, payload, tags FROM jobs ORDER BY id`,
    );
    const [viaDriver, viaPrisma] = stored;
    expect({ ...viaDriver, idempotency_key: "-" }).toEqual({ ...viaPrisma, idempotency_key: "-" });
    if (dialect === "sqlite") {
      expect(viaDriver?.run_at).toBe("2026-11-28T07:00:00.000+00:00");
      expect(viaDriver?.lease_expires_at).toBe("2026-11-28T07:00:30.123+00:00");
      // Text comparison against a bound Date (what every guard and pick does).
      const due = await driver.$queryRaw<Row[]>(sql`SELECT COUNT(*) AS "n" FROM "jobs" WHERE "run_at" <= ${AT}`);
      expect(Number(due[0]?.n)).toBe(2);
    }
  });

  it("keeps timestamps in UTC whatever the process's time zone", async () => {
    const zone = process.env.TZ;
    process.env.TZ = "Asia/Kolkata"; // +05:30, not a whole hour
    try {
      await driver.$queryRaw(insertJob("zoned"));
      const [row] = await driver.$queryRaw<Row[]>(sql`SELECT * FROM "jobs" WHERE "idempotency_key" = ${"zoned"}`);
      if (!row) throw new Error("no row");
      expect(toJob(row, sqlOf).runAt.toISOString()).toBe(AT.toISOString());
      const [{ run_at: stored } = {}] = await queryDatabase<{ run_at: unknown }>(
        db,
        `SELECT ${dialect === "sqlite" ? "run_at" : "to_char(run_at, 'YYYY-MM-DD HH24:MI:SS.MS') AS run_at"} FROM jobs`,
      );
      expect(stored).toBe(dialect === "sqlite" ? "2026-11-28T07:00:00.000+00:00" : "2026-11-28 07:00:00.000");
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  it("returns ids past 2^53 exactly, as text, and safe integers as numbers", async () => {
    const big = 9_007_199_254_740_993n; // 2^53 + 1
    const [row] = await driver.$queryRaw<Row[]>(insertJob("big", big));
    expect(String(row?.id)).toBe("9007199254740993");
    const [found] = await driver.$queryRaw<Row[]>(sql`SELECT "id" FROM "jobs" WHERE "id" = ${big}`);
    expect(String(found?.id)).toBe("9007199254740993"); // (Prisma's SQLite client reads ...992 here)
    const [small] = await driver.$queryRaw<Row[]>(sql`SELECT "priority", "last_seq" FROM "jobs"`);
    expect(small).toEqual({ priority: -7, last_seq: 1 });
  });

  it("rolls a transaction back when its function throws, and commits it otherwise", async () => {
    await expect(
      driver.$transaction(async (tx) => {
        await tx.$queryRaw(insertJob("rolled-back"));
        throw new Error("no");
      }),
    ).rejects.toThrow("no");
    await driver.$transaction(async (tx) => {
      await tx.$queryRaw(insertJob("kept"));
    });
    const keys = await queryDatabase<{ idempotency_key: string }>(db, `SELECT idempotency_key FROM jobs`);
    expect(keys.map((k) => k.idempotency_key)).toEqual(["kept"]);
  });
});
