/**
 * The store's SqlClient on PostgreSQL: runs the very `Sql` objects the store
 * builds with the `sql` tag of sql.ts (`query.text` with `$n` placeholders,
 * `query.values`) directly on a node-postgres pool.
 *
 * Why not through Prisma's client: measured on the 2-core CI machine, a
 * `$queryRaw` of `SELECT $1` costs 314 µs through Prisma 7's query engine and
 * 50 µs on a plain `pg` client; an interactive transaction BEGIN + SELECT +
 * COMMIT costs 503 µs through Prisma. A claim was ten such round trips. Prisma
 * remains the model (schema.prisma, the generated clients, the drift test, and
 * the reference the round-trip test compares this client with).
 *
 * Values are encoded and decoded as Prisma's pg adapter (@prisma/adapter-pg)
 * does, so the rows the store sees are the same as before:
 * - a Date parameter is sent as UTC text without a zone
 *   (`2026-11-28 07:00:00.123`): every timestamp column is `timestamp(3)`
 *   without time zone and holds UTC (node-postgres alone would send local
 *   time with an offset, which PostgreSQL ignores for that type);
 * - a bigint parameter is sent as its decimal text;
 * - `timestamp` results are read as UTC (node-postgres alone reads them as
 *   local time); jsonb comes back parsed, bigint / numeric as text, booleans
 *   as booleans.
 */
import { createHash } from "node:crypto";
import type { Sql } from "../sql.ts";
import pg from "pg";
import type { PoolStats } from "../job-store.ts";
import { isPrepared } from "../sql-client.ts";
import type { Row, SqlClient, SqlRunner } from "../sql-client.ts";

const TIMESTAMP_OID = 1114;

/** Type parsers: node-postgres' defaults except `timestamp`, read as UTC. */
const TYPES = {
  getTypeParser(oid: number, format?: "text" | "binary"): (value: string) => unknown {
    if (oid === TIMESTAMP_OID && format !== "binary") return parseUtcTimestamp;
    return pg.types.getTypeParser(oid, format) as (value: string) => unknown;
  },
};

function parseUtcTimestamp(text: string): Date {
  // `2026-11-28 07:00:00.123` (or `infinity`, which the store never writes).
  return new Date(`${text.replace(" ", "T")}Z`);
}

export interface PostgresClientOptions {
  /** Most connections the pool opens. */
  max: number;
}

export class PostgresClient implements SqlClient {
  readonly pool: pg.Pool;

  constructor(url: string, options: PostgresClientOptions) {
    // connectionTimeoutMillis: a request that gets no connection within 10 s
    // (the pool is exhausted, or the host does not answer) fails with an error
    // that maps to UNAVAILABLE (postgres/unavailable.ts) instead of waiting
    // without bound.
    this.pool = new pg.Pool({ connectionString: url, max: options.max, types: TYPES, connectionTimeoutMillis: 10_000 });
    // An idle connection that breaks (server restart) is dropped by the pool;
    // without a listener its 'error' event would end the process.
    this.pool.on("error", () => {});
  }

  $queryRaw<T = unknown>(query: Sql): Promise<T> {
    return run(this.pool, query).then((r) => r.rows as T);
  }

  $executeRaw(query: Sql): Promise<number> {
    return run(this.pool, query).then((r) => r.rowCount ?? 0);
  }

  /** Runs `fn` on one connection between BEGIN and COMMIT (ROLLBACK if it throws). */
  async $transaction<R>(fn: (tx: SqlRunner) => Promise<R>): Promise<R> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      const result = await fn(runnerOn(client));
      const committed = await client.query("COMMIT");
      // COMMIT of a transaction that hit an error answers ROLLBACK, not an error.
      if (committed.command !== "COMMIT") throw new Error("the transaction was rolled back");
      return result;
    } catch (e) {
      try {
        await client.query("ROLLBACK");
      } catch (rollbackError) {
        broken = rollbackError as Error; // the connection is unusable: the pool discards it
      }
      throw e;
    } finally {
      client.release(broken);
    }
  }

  poolStats(): PoolStats {
    return {
      total: this.pool.totalCount,
      idle: this.pool.idleCount,
      waiting: this.pool.waitingCount,
      max: this.pool.options.max,
    };
  }

  async $disconnect(): Promise<void> {
    if (!this.pool.ended) await this.pool.end();
  }
}

function runnerOn(client: pg.PoolClient): SqlRunner {
  return {
    $queryRaw: <T>(query: Sql) => run(client, query).then((r) => r.rows as T),
    $executeRaw: (query: Sql) => run(client, query).then((r) => r.rowCount ?? 0),
  };
}

function run(target: pg.Pool | pg.PoolClient, query: Sql): Promise<pg.QueryResult<Row>> {
  const text = query.text;
  const values = query.values.map(encodeValue);
  if (!isPrepared(query)) return target.query<Row>({ text, values });
  return target.query<Row>({ name: statementName(text), text, values });
}

/** Names of prepared statements by text (node-postgres prepares a name once per connection). */
const names = new Map<string, string>();
const MAX_NAMES = 1_000;

function statementName(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    name = `jw_${createHash("sha256").update(text).digest("hex").slice(0, 32)}`;
    if (names.size >= MAX_NAMES) names.clear();
    names.set(text, name);
  }
  return name;
}

/** A parameter as Prisma's pg adapter sends it (an array element by element: `unnest` lists). */
export function encodeValue(value: unknown): unknown {
  if (value instanceof Date) return formatUtcTimestamp(value);
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return value.map(encodeValue);
  return value ?? null;
}

function formatUtcTimestamp(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new Error("invalid Date parameter");
  // toISOString is `YYYY-MM-DDTHH:MM:SS.mmmZ` for years 0–9999.
  const iso = date.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
}
