/**
 * What differs between the SQLite and the PostgreSQL SQL of the store. Each
 * dialect implements this in its own folder (sqlite/, postgres/); everything
 * else the store writes is plain SQL that both accept through Prisma's `sql`
 * tag, which renders `?` or `$n` placeholders for the client's provider.
 */
import type { Sql } from "./sql.ts";
import type { Dialect } from "./job-store.ts";
import type { SqlClient, SqlRunner } from "./sql-client.ts";

export interface DialectSql {
  readonly name: Dialect;
  /** A JSON-encoded parameter, cast as the dialect needs (jsonb on PostgreSQL). */
  json(value: unknown): Sql;
  /** Decodes a JSON column as returned by a raw query. */
  decodeJson(value: unknown): unknown;
  /** Row lock for a guarded read inside a transaction ("" on SQLite: writers are serialised). */
  readonly forUpdate: Sql;
  /** Lock clause of the claim/promotion pick: FOR UPDATE SKIP LOCKED on PostgreSQL. */
  readonly forUpdateSkipLocked: Sql;
  /** An SQL expression producing a fresh random lease token per row. */
  readonly newLeaseToken: Sql;
  /** A typed SQL NULL for a JSON column inside a VALUES list (PostgreSQL needs the type). */
  readonly jsonNull: Sql;
  /** A condition true when the JSON array column `tags` contains `tag`. */
  hasTag(tag: string): Sql;
  /**
   * Folds up to `limit` of the oldest queue_state_deltas into
   * queue_state_counts, inside the caller's transaction; returns how many.
   */
  compactQueueCounts(tx: SqlRunner, limit: number): Promise<number>;
  /**
   * Runs `fn` in one transaction. SQLite serialises writers of one file inside
   * the process (see sqlite/dialect.ts for why). PostgreSQL assigns the
   * transaction its id before anything else (see events/horizon.ts for why).
   */
  transaction<R>(client: SqlClient, fn: (tx: SqlRunner) => Promise<R>): Promise<R>;
  /**
   * Runs statements outside a transaction. SQLite: the process has one
   * connection, and a statement on it between two statements of an open write
   * transaction would see (or, if it writes, join) that transaction; so this
   * waits for the process's writers like a transaction does. PostgreSQL: runs
   * `fn` on the pool (each statement sees only committed rows).
   */
  readCommitted<R>(client: SqlClient, fn: (runner: SqlRunner) => Promise<R>): Promise<R>;
  /**
   * An expression giving the reading statement's snapshot and the
   * transactions running just after it, as text (`xmin:xmax:xip,…|xid,…`),
   * from which events/horizon.ts tells which event ids are final; null on
   * SQLite, where writers commit one at a time in id order.
   */
  readonly snapshot: Sql | null;
  /**
   * Reads the database's clock (epoch ms), for a store whose servers share the
   * database and so must share one clock (clock.ts); null where one server
   * owns the database and its own clock is the clock (SQLite).
   */
  readonly readClock: ((runner: SqlRunner) => Promise<number>) | null;
  /**
   * One server owns the database at a time (SQLite's file lock), so the
   * server that opens it may take over the running leases it finds
   * (JobStore.resumeLeases).
   */
  readonly singleOwner: boolean;
}
