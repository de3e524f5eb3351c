/**
 * SQLite SQL for the store.
 *
 * Claims need no row locks here: SQLite has one writer at a time, and the claim
 * is a single `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING *` statement.
 *
 * Why an in-process lock around transactions: better-sqlite3 is synchronous, so
 * when two connections of one process both want to write, the second waits in
 * SQLite's busy handler *on the event-loop thread* — and the first, which holds
 * the write lock between two awaited statements of its transaction, can then
 * never run to commit. The result is a stall until busy_timeout and a
 * SQLITE_BUSY. Serialising write transactions per database file inside the
 * process removes that self-deadlock; other processes are still handled by
 * busy_timeout (their waits do not block our thread). The lock is in
 * file-lock.ts; the driver client (sqlite-client.ts) takes it for its
 * transactions, which it also group-commits, and begins them IMMEDIATE, so a
 * transaction takes the write lock at once and never has to upgrade a read
 * snapshot (which would fail with SQLITE_BUSY_SNAPSHOT instead of waiting).
 */
import { empty, sql, type Sql } from "../sql.ts";
import type { DialectSql } from "../dialect-sql.ts";
import type { SqlClient, SqlRunner } from "../sql-client.ts";
import { withFileLock } from "./file-lock.ts";
import { busyBackoffMs, isBusy } from "./sqlite-client.ts";

/** `busyTimeoutMs`: how long a write waits for another process's write lock. */
export function sqliteDialect(filePath: string, busyTimeoutMs = 5_000): DialectSql {
  return {
    name: "sqlite",
    json: (value: unknown): Sql => sql`${JSON.stringify(value)}`,
    decodeJson: (value: unknown): unknown => (typeof value === "string" ? (JSON.parse(value) as unknown) : value),
    forUpdate: empty,
    forUpdateSkipLocked: empty,
    newLeaseToken: sql`lower(hex(randomblob(16)))`,
    jsonNull: sql`NULL`,
    hasTag: (tag: string): Sql => sql`EXISTS (SELECT 1 FROM json_each("jobs"."tags") WHERE json_each.value = ${tag})`,
    async compactQueueCounts(tx: SqlRunner, limit: number): Promise<number> {
      // Writers are serialised (file lock + SQLite's own), so the two statements
      // see the same deltas: nobody can add or fold any in between.
      const upTo = sql`(SELECT COALESCE(MAX("id"), 0) FROM (
        SELECT "id" FROM "queue_state_deltas" ORDER BY "id" LIMIT ${limit}))`;
      await tx.$executeRaw(sql`
        INSERT INTO "queue_state_counts" ("queue", "state", "count")
        SELECT "queue", "state", SUM("delta") FROM "queue_state_deltas" WHERE "id" <= ${upTo}
        GROUP BY "queue", "state"
        ON CONFLICT ("queue", "state") DO UPDATE SET "count" = "count" + excluded."count"`);
      return tx.$executeRaw(sql`DELETE FROM "queue_state_deltas" WHERE "id" <= ${upTo}`);
    },
    // The client serialises its transactions per file (and merges concurrent ones).
    transaction: <R>(client: SqlClient, fn: (tx: SqlRunner) => Promise<R>): Promise<R> => client.$transaction(fn),
    // A single-statement write (a heartbeat) that finds the file locked by
    // another process fails at once with SQLITE_BUSY (the connection has no
    // busy handler: sqlite-client.ts says why) and changed nothing; it is
    // tried again after an asynchronous wait, outside the file lock, within
    // the busy window. Reads never get SQLITE_BUSY in WAL mode.
    readCommitted: async <R>(client: SqlClient, fn: (runner: SqlRunner) => Promise<R>): Promise<R> => {
      const started = performance.now();
      for (let attempt = 0; ; attempt++) {
        try {
          return await withFileLock(filePath, () => fn(client));
        } catch (e) {
          if (!isBusy(e) || performance.now() - started >= busyTimeoutMs) throw e;
        }
        await new Promise((resolve) => setTimeout(resolve, busyBackoffMs(attempt)));
      }
    },
    // Writers of one file commit one at a time, each drawing ids above every
    // committed one, so every visible event id is final.
    snapshot: null,
    readClock: null,
    singleOwner: true,
  };
}
