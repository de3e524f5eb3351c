/**
 * PostgreSQL SQL for the store.
 *
 * Claims and promotions pick rows with FOR UPDATE SKIP LOCKED, so concurrent
 * claimers never wait on (or double-claim) each other's rows; guarded
 * transitions lock their row with FOR UPDATE and re-check the guard after any
 * wait (READ COMMITTED re-evaluates the WHERE clause on the newest row version).
 */
import { sqltag as sql } from "@prisma/client/runtime/client";
import type { Sql } from "@prisma/client/runtime/client";
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
  hasTag: (tag: string): Sql => sql`"jobs"."tags" @> ${JSON.stringify([tag])}::jsonb`,
  transaction: <R>(client: SqlClient, fn: (tx: SqlRunner) => Promise<R>): Promise<R> =>
    client.$transaction(fn, { maxWait: 30_000, timeout: 60_000 }),
};
