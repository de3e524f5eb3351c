/**
 * PostgreSQL SQL for the store.
 *
 * Claims and promotions pick rows with FOR UPDATE SKIP LOCKED, so concurrent
 * claimers never wait on (or double-claim) each other's rows; guarded
 * transitions lock their row with FOR UPDATE and re-check the guard after any
 * wait (READ COMMITTED re-evaluates the WHERE clause on the newest row version).
 */
import { sql, type Sql } from "../sql.ts";
import type { DialectSql } from "../dialect-sql.ts";
import type { SqlClient, SqlRunner } from "../sql-client.ts";

export const postgresDialect: DialectSql = {
  name: "postgres",
  json: (value: unknown): Sql => sql`${JSON.stringify(value)}::jsonb`,
  // node-postgres already parses json/jsonb columns.
  decodeJson: (value: unknown): unknown => value,
  forUpdate: sql` FOR UPDATE`,
  forUpdateSkipLocked: sql` FOR UPDATE SKIP LOCKED`,
  newLeaseToken: sql`replace(gen_random_uuid()::text, '-', '')`,
  jsonNull: sql`NULL::jsonb`,
  hasTag: (tag: string): Sql => sql`"jobs"."tags" @> ${JSON.stringify([tag])}::jsonb`,
  async compactQueueCounts(tx: SqlRunner, limit: number): Promise<number> {
    // SKIP LOCKED: concurrent compactors fold disjoint deltas. ORDER BY in the
    // upsert: every compactor locks count rows in the same order (no deadlock).
    const rows = await tx.$queryRaw<{ n: bigint | number }[]>(sql`
      WITH "moved" AS (
        DELETE FROM "queue_state_deltas" WHERE "id" IN (
          SELECT "id" FROM "queue_state_deltas" ORDER BY "id" LIMIT ${limit} FOR UPDATE SKIP LOCKED)
        RETURNING "queue", "state", "delta"),
      "folded" AS (
        INSERT INTO "queue_state_counts" ("queue", "state", "count")
        SELECT "queue", "state", SUM("delta") FROM "moved" GROUP BY "queue", "state" ORDER BY "queue", "state"
        ON CONFLICT ("queue", "state") DO UPDATE SET "count" = "queue_state_counts"."count" + EXCLUDED."count"
        RETURNING 1)
      SELECT (SELECT COUNT(*) FROM "moved") AS "n", (SELECT COUNT(*) FROM "folded") AS "groups"`);
    return Number(rows[0]?.n ?? 0);
  },
  transaction: <R>(client: SqlClient, fn: (tx: SqlRunner) => Promise<R>): Promise<R> =>
    client.$transaction(
      async (tx) => {
        // Take a transaction id before the first event id is drawn from its
        // sequence: then a transaction that holds an event id not yet visible
        // is listed as in progress by every snapshot taken after that id was
        // drawn, which is what lets the event feed tell final ids from ids
        // still in flight (events/horizon.ts). Without it the id would be
        // assigned at the first row written, which may come after nextval().
        await tx.$queryRaw(sql`SELECT pg_current_xact_id()::text AS "xid"`);
        return fn(tx);
      },
      { maxWait: 30_000, timeout: 60_000 },
    ),
  readCommitted: <R>(client: SqlClient, fn: (runner: SqlRunner) => Promise<R>): Promise<R> => fn(client),
  // The statement's snapshot, then the transactions running just after it
  // (pg_stat_activity is read during execution): see events/horizon.ts.
  snapshot: sql`pg_current_snapshot()::text || '|' || coalesce((SELECT string_agg("backend_xid"::text, ',') FROM pg_stat_activity WHERE "backend_xid" IS NOT NULL), '')`,
  // clock_timestamp(), not now(): the time of the read, not of a transaction's start.
  readClock: async (runner: SqlRunner): Promise<number> => {
    const rows = await runner.$queryRaw<{ ms: number }[]>(
      sql`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS "ms"`,
    );
    return Number(rows[0]?.ms);
  },
  // Many servers share the database: none may take over another's leases.
  singleOwner: false,
};
