/**
 * The store's SqlClient on SQLite: runs the very `Sql` objects the store builds
 * with the `sql` tag of sql.ts (`query.sql` with `?` placeholders, `query.values`)
 * directly on better-sqlite3, with a cache of prepared statements.
 *
 * Why not through Prisma's client: measured on the 2-core CI machine, a
 * `$queryRaw` of `SELECT ?` costs 68 µs through Prisma 7's query engine and
 * about 2 µs on better-sqlite3 (0.4 µs once prepared); an empty Prisma
 * interactive transaction costs 205 µs, BEGIN IMMEDIATE + COMMIT here 2 µs
 * when nothing was written. A claim or an enqueue is a handful of statements,
 * so the engine's overhead, not SQLite, set the throughput (751 jobs/s drained).
 * Prisma remains the model (schema.prisma, the generated clients, the drift
 * test, and the reference the round-trip test compares this client with).
 *
 * Values are encoded and decoded exactly as Prisma's better-sqlite3 adapter
 * does (@prisma/adapter-better-sqlite3 `mapArg` / `mapRow`), so the rows the
 * store sees are the same as before and stored text compares the same:
 * - a Date is bound as ISO text with a `+00:00` suffix
 *   (`2026-11-28T07:00:00.000+00:00`), the form every timestamp column holds;
 * - a boolean is bound as 1 / 0; a bigint as a 64-bit integer; a number as a
 *   double (better-sqlite3 binds every JS number that way; INTEGER affinity
 *   stores whole values as integers);
 * - integers come back as numbers when they are safe integers, else as
 *   decimal text (never silently rounded); JSON columns come back as text.
 *
 * better-sqlite3 is synchronous: each call below finishes before it returns,
 * so a whole transaction runs without yielding to other I/O, which is what
 * makes it cheap. Every use of the connection goes through the per-file lock
 * (file-lock.ts): transactions here, statements outside transactions in
 * dialect.ts `readCommitted` (a statement sent between two statements of an
 * open transaction would join it).
 */
import type { Sql } from "../sql.ts";
import type BetterSqlite3 from "better-sqlite3";
import type { Row, SqlClient, SqlRunner } from "../sql-client.ts";
import { sqliteDatabaseClass } from "./driver.ts";
import { withFileLock } from "./file-lock.ts";

/**
 * Prepared statements kept per connection. The store's statements differ by
 * the length of their IN and VALUES lists, so the set is open-ended; the
 * least recently used one is dropped past this many.
 */
const STATEMENT_CACHE_SIZE = 500;

export interface SqliteClientOptions {
  /** How long a writer waits for another process holding the write lock (ms). */
  busyTimeoutMs: number;
}

/**
 * Waits between two tries at SQLite's write lock while another process holds
 * it (ms): short at first, so a lock held for a moment costs little.
 */
const BUSY_BACKOFF_MS = [1, 2, 5, 10, 20, 50] as const;

export function busyBackoffMs(attempt: number): number {
  return BUSY_BACKOFF_MS[Math.min(attempt, BUSY_BACKOFF_MS.length - 1)] as number;
}

/** SQLITE_BUSY and its extended codes (SQLITE_BUSY_RECOVERY, …): another connection holds a lock. */
export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && (code === "SQLITE_BUSY" || code.startsWith("SQLITE_BUSY_"));
}

type Statement = BetterSqlite3.Statement<unknown[], Record<string, unknown>>;

/** Most transactions that share one COMMIT (bounds how long readers wait for the file lock). */
const MAX_GROUPED_TRANSACTIONS = 32;

interface Member {
  fn: (tx: SqlRunner) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export class SqliteClient implements SqlClient {
  private readonly db: BetterSqlite3.Database;
  private readonly statements = new Map<string, Statement>();
  private readonly begin: Statement;
  private readonly commit: Statement;
  private readonly rollback: Statement;
  private readonly savepoint: Statement;
  private readonly release: Statement;
  private readonly rollbackTo: Statement;
  private readonly waiting: Member[] = [];
  private flushing = false;
  private closed = false;
  readonly busyTimeoutMs: number;
  /** When BEGIN first found the file locked by another process (performance.now()), while it still does. */
  private busySince: number | null = null;
  private busyAttempts = 0;
  /** Transactions asked for and COMMITs made (group commit: fewer commits than transactions). */
  readonly stats = { transactions: 0, commits: 0 };

  constructor(
    private readonly filePath: string,
    options: SqliteClientOptions,
  ) {
    const Database = sqliteDatabaseClass();
    // No busy handler: SQLite's would wait for another process's write lock
    // on this thread, and better-sqlite3 runs on the event loop, so the whole
    // server (health checks, reads, every socket) froze for as long as the
    // lock was held. A write that finds the file locked fails at once with
    // SQLITE_BUSY and is tried again after an asynchronous wait (flush() here,
    // readCommitted in dialect.ts), within busyTimeoutMs.
    this.db = new Database(filePath, { timeout: 0 });
    this.busyTimeoutMs = options.busyTimeoutMs;
    this.db.defaultSafeIntegers(true);
    // Durability by default: WAL with synchronous=FULL survives power loss.
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = FULL");
    this.db.pragma("foreign_keys = ON");
    // Statement and savepoint journals in memory, not in temporary files. Inside
    // a transaction SQLite opens a statement journal for every statement that
    // fires a trigger (each jobs insert or state change: the queue_state_deltas
    // triggers) and for every group-commit SAVEPOINT. Measured on the 2-core CI
    // machine: raw trigger-firing inserts ~21,000 -> ~50,000 rows/s, the store's
    // 1,000-job enqueueMany ~6,700 -> ~7,600 jobs/s (the drain did not move
    // beyond noise). They hold one statement's or one member's changes, so the
    // memory is small and short-lived.
    this.db.pragma("temp_store = MEMORY");
    // IMMEDIATE: a transaction takes the write lock at BEGIN, so it never has to
    // upgrade a read snapshot later (which fails with SQLITE_BUSY_SNAPSHOT
    // instead of waiting when another process wrote in between).
    this.begin = this.db.prepare("BEGIN IMMEDIATE");
    this.commit = this.db.prepare("COMMIT");
    this.rollback = this.db.prepare("ROLLBACK");
    this.savepoint = this.db.prepare("SAVEPOINT member");
    this.release = this.db.prepare("RELEASE member");
    this.rollbackTo = this.db.prepare("ROLLBACK TO member");
  }

  /** Runs a statement; its rows (none for a statement that returns no data). */
  query(query: Sql): Row[] {
    const statement = this.prepare(query.sql);
    const params = query.values.map(encodeValue);
    if (!statement.reader) {
      statement.run(params);
      return [];
    }
    return statement.all(params).map(decodeRow);
  }

  /** Runs a statement; how many rows it changed. */
  execute(query: Sql): number {
    return this.prepare(query.sql).run(query.values.map(encodeValue)).changes;
  }

  $queryRaw<T = unknown>(query: Sql): Promise<T> {
    try {
      return Promise.resolve(this.query(query) as T);
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  $executeRaw(query: Sql): Promise<number> {
    try {
      return Promise.resolve(this.execute(query));
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  /**
   * Runs `fn` in a transaction, with group commit: transactions asked for
   * while one is open on this connection join it, each in its own savepoint,
   * one after another, and they commit together (at most
   * MAX_GROUPED_TRANSACTIONS). A member that throws is rolled back to its
   * savepoint and gets its own error; the others are not affected. Each
   * member's promise settles only after the shared COMMIT, so its events are
   * published after commit. If the COMMIT (or an error that ends the whole
   * transaction, such as SQLITE_FULL) fails, every member not yet settled
   * gets that error.
   *
   * Why: with synchronous=FULL each COMMIT waits for one fsync of the WAL
   * (0.2–0.5 ms on the CI disk), more than all the statements of a claim or a
   * completion take. Concurrent claims and completions (several workers, a
   * server's concurrent requests) then share that wait instead of queueing
   * for one each.
   *
   * Serialised per database file with the other connections of the process
   * (file-lock.ts). `fn` must await only statements of `tx`.
   */
  $transaction<R>(fn: (tx: SqlRunner) => Promise<R>): Promise<R> {
    this.stats.transactions++;
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (!this.flushing) this.startFlush();
    });
  }

  private startFlush(): void {
    this.flushing = true;
    // Begin at the end of this turn of the event loop, not at once: every
    // transaction asked for in this turn (requests whose data arrived
    // together, worker slots finishing together) then shares the COMMIT. At
    // once, the first would always commit alone, and its fsync blocks the
    // thread, so nothing could join it. The wait is one turn (microseconds
    // when idle).
    setImmediate(() => this.flushNow());
  }

  private flushNow(): void {
    void withFileLock(this.filePath, () => this.flush()).then((outcome) => {
      if (outcome === "busy") {
        // Another process holds the write lock: let go of this process's lock
        // (reads go on meanwhile) and try again after a short wait.
        setTimeout(() => this.flushNow(), busyBackoffMs(this.busyAttempts++));
        return;
      }
      this.flushing = false;
      if (this.waiting.length > 0) this.startFlush();
    });
  }

  /**
   * One transaction for the members waiting now and those that arrive while
   * it runs. Never rejects; "busy" when BEGIN found the file locked by another
   * process and the busy window is not over (the caller tries again later).
   */
  private async flush(): Promise<"done" | "busy"> {
    if (this.closed) {
      for (const m of this.waiting.splice(0)) m.reject(new Error("the database connection is closed"));
      return "done";
    }
    const done: [Member, unknown][] = [];
    try {
      this.begin.run();
      this.busySince = null;
      this.busyAttempts = 0;
    } catch (e) {
      if (isBusy(e)) {
        const now = performance.now();
        this.busySince ??= now;
        if (now - this.busySince < this.busyTimeoutMs) return "busy";
        this.busySince = null;
        this.busyAttempts = 0;
      }
      for (const m of this.waiting.splice(0)) m.reject(e);
      return "done";
    }
    try {
      for (let n = 0; n < MAX_GROUPED_TRANSACTIONS && this.waiting.length > 0; n++) {
        const member = this.waiting.shift() as Member;
        this.savepoint.run();
        try {
          const result = await member.fn(this);
          this.release.run();
          done.push([member, result]);
        } catch (e) {
          if (!this.db.inTransaction) {
            // The error ended the whole transaction (SQLITE_FULL, SQLITE_IOERR, …).
            member.reject(e);
            throw e;
          }
          this.rollbackTo.run();
          this.release.run();
          member.reject(e);
        }
      }
      this.commit.run();
      this.stats.commits++;
    } catch (e) {
      if (this.db.inTransaction) this.rollback.run();
      for (const [member] of done) member.reject(e);
      return "done";
    }
    for (const [member, result] of done) member.resolve(result);
    return "done";
  }

  async $disconnect(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A transaction still running finishes first (it holds the file lock).
    await withFileLock(this.filePath, async () => {});
    this.statements.clear();
    this.db.close();
  }

  private prepare(text: string): Statement {
    const cached = this.statements.get(text);
    if (cached) {
      // Map order is insertion order: re-inserting marks it most recently used.
      this.statements.delete(text);
      this.statements.set(text, cached);
      return cached;
    }
    const statement = this.db.prepare<unknown[], Record<string, unknown>>(text);
    this.statements.set(text, statement);
    if (this.statements.size > STATEMENT_CACHE_SIZE) {
      const oldest = this.statements.keys().next().value;
      if (oldest !== undefined) this.statements.delete(oldest);
    }
    return statement;
  }
}

/** A parameter as Prisma's better-sqlite3 adapter binds it. */
export function encodeValue(value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (value instanceof Date) return value.toISOString().replace("Z", "+00:00");
  if (typeof value === "boolean") return value ? 1 : 0;
  return value;
}

/** A row as Prisma's better-sqlite3 adapter returns it: safe integers as numbers. */
function decodeRow(row: Record<string, unknown>): Row {
  for (const key in row) {
    const value = row[key];
    if (typeof value === "bigint") {
      const n = Number(value);
      row[key] = Number.isSafeInteger(n) ? n : value.toString();
    }
  }
  return row;
}
