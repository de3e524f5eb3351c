/**
 * The JobStore. Statements are raw SQL built with the `sql` tag (sql.ts), because
 * every write here is a guarded state change that must return the row it
 * changed and write its event in the same transaction — which Prisma's model
 * API cannot express (no RETURNING on updateMany, no SKIP LOCKED). They run on
 * a SqlClient: the dialect's driver client (sqlite/sqlite-client.ts,
 * postgres/postgres-client.ts), not Prisma's query engine, whose overhead per
 * statement was most of a claim's cost (figures in those files). What differs
 * per dialect comes from a DialectSql (sqlite/dialect.ts, postgres/dialect.ts);
 * on PostgreSQL the hot writes are single statements (postgres/writes.ts).
 */
import { empty, join, raw, sql, type Sql } from "./sql.ts";
import { DEFAULT_BACKOFF } from "../jobs/backoff.ts";
import { coerceError, QueueFullError } from "../jobs/errors.ts";
import { LIMITS } from "../jobs/limits.ts";
import { compareIds } from "../jobs/ids.ts";
import { JobEventType, JobState } from "../jobs/states.ts";
import type { Job, JobEvent, JobEventInQueue, JsonValue } from "../jobs/types.ts";
import type { QueueSettingsPatch } from "../queues/types.ts";
import { systemClock, type StoreClock } from "./clock.ts";
import type { DialectSql } from "./dialect-sql.ts";
import type {
  ApiTokenRow,
  ClaimSpec,
  CompletionSpec,
  DeleteFinishedSpec,
  EventLogPage,
  EventRangeSpec,
  JobPatch,
  JobStore,
  ListJobsSpec,
  NewJob,
  PoolStats,
  QueueRow,
  QueueStatsRow,
  ReleaseSpec,
  TransitionSpec,
  Written,
} from "./job-store.ts";
import { loadMigrations } from "./migrator.ts";
import { claimOpenQueuesSql, completeJobsSql, insertJobsSql, promoteDueJobsSql } from "./postgres/writes.ts";
import { toApiToken, toJob, toJobEvent, toQueue } from "./rows.ts";
import { prepared } from "./sql-client.ts";
import type { Row, SqlClient, SqlRunner } from "./sql-client.ts";

interface EventRow {
  jobId: string;
  seq: number;
  type: string;
  fromState: string | null;
  toState: string;
  attempt: number;
  data: JsonValue | null;
  createdAt: Date;
}

/** The ENQUEUED event (seq 1) of a job just inserted. */
function enqueuedEvent(job: Job, createdAt: Date): Omit<JobEvent, "id"> {
  return {
    jobId: job.id,
    seq: 1,
    type: JobEventType.ENQUEUED,
    fromState: null,
    toState: job.state,
    attempt: 0,
    data: null,
    createdAt,
  };
}

/** Column name and encoding of each patchable field. */
const PATCH_COLUMNS: Record<keyof JobPatch, { column: string; json?: boolean }> = {
  result: { column: "result", json: true },
  errorMessage: { column: "error_message" },
  errorCode: { column: "error_code" },
  errorDetails: { column: "error_details", json: true },
  runAt: { column: "run_at" },
  priority: { column: "priority" },
  attempts: { column: "attempts" },
  workerId: { column: "worker_id" },
  leaseToken: { column: "lease_token" },
  leaseExpiresAt: { column: "lease_expires_at" },
  cancelRequestedAt: { column: "cancel_requested_at" },
  progress: { column: "progress", json: true },
  startedAt: { column: "started_at" },
  finishedAt: { column: "finished_at" },
};

/** What a job gets when neither the enqueue nor its queue says (NewJob's nulls). */
const JOB_DEFAULTS = { maxAttempts: LIMITS.defaultMaxAttempts, backoff: DEFAULT_BACKOFF };

/** Largest number of rows written by one multi-row INSERT (8 parameters each). */
const INSERT_CHUNK = 500;

/** Succeeded jobs whose run times feed the average and p95 of the queue stats. */
export const RECENT_RUNS = 100;
/** Most RUNNING jobs read for the wait estimate (a queue rarely runs more at once). */
const RUNNING_SAMPLE = 1_000;

/** Column of each queue setting; rateLimit spans two. */
const QUEUE_COLUMNS = {
  paused: "paused",
  concurrency: "concurrency",
  maxQueued: "max_queued",
  defaultPriority: "default_priority",
  defaultMaxAttempts: "default_max_attempts",
  defaultLeaseSeconds: "default_lease_seconds",
  retainSucceededSeconds: "retain_succeeded_seconds",
  retainFailedSeconds: "retain_failed_seconds",
} as const satisfies Partial<Record<keyof QueueSettingsPatch, string>>;

const WAITING_STATES = [JobState.QUEUED, JobState.SCHEDULED];

interface Candidate {
  id: string;
  priority: number;
  runAt: Date;
}

export class PrismaJobStore implements JobStore {
  readonly dialect;
  /**
   * Every statement outside a transaction goes through here
   * (DialectSql.readCommitted). On SQLite the process has one connection: a
   * read sent between two statements of an open write transaction would see
   * that transaction's rows, which may still roll back, and a single-statement
   * write (the heartbeat) would even become part of that transaction and roll
   * back with it. Here they wait until no transaction of the process is open.
   */
  private readonly direct: SqlRunner;
  /** The connection pool's figures (PostgreSQL); absent on SQLite's one connection. */
  readonly poolStats?: () => PoolStats;

  constructor(
    private client: SqlClient,
    private readonly sqlOf: DialectSql,
    private readonly clock: StoreClock = systemClock,
  ) {
    this.dialect = sqlOf.name;
    this.poolStats = client.poolStats?.bind(client);
    this.direct = {
      $queryRaw: <T>(query: Sql) => this.sqlOf.readCommitted(this.client, (c) => c.$queryRaw<T>(query)),
      $executeRaw: (query: Sql) => this.sqlOf.readCommitted(this.client, (c) => c.$executeRaw(query)),
    };
  }

  private jsonOrNull(value: JsonValue | null | undefined): Sql {
    return value === null || value === undefined ? sql`NULL` : this.sqlOf.json(value);
  }

  private async insertEvents(tx: SqlRunner, events: readonly EventRow[]): Promise<JobEvent[]> {
    const written: JobEvent[] = [];
    for (let i = 0; i < events.length; i += INSERT_CHUNK) {
      const values = events
        .slice(i, i + INSERT_CHUNK)
        .map(
          (e) =>
            sql`(${BigInt(e.jobId)}, ${e.seq}, ${e.type}, ${e.fromState}, ${e.toState}, ${e.attempt}, ${this.jsonOrNull(e.data)}, ${e.createdAt})`,
        );
      const rows = await tx.$queryRaw<Row[]>(sql`
        INSERT INTO "job_events" ("job_id", "seq", "type", "from_state", "to_state", "attempt", "data", "created_at")
        VALUES ${join(values)}
        RETURNING *`);
      written.push(...rows.map((r) => toJobEvent(r, this.sqlOf)));
    }
    // RETURNING order is not guaranteed; events are published in id order.
    return written.sort((a, b) => compareIds(a.id, b.id));
  }

  async insertJobs(jobs: readonly NewJob[], now: Date): Promise<Written<{ job: Job; created: boolean }[]>> {
    if (this.sqlOf.name === "postgres") {
      // One statement, unless a queue has a maxQueued (see postgres/writes.ts).
      const rows = await this.direct.$queryRaw<Row[]>(insertJobsSql(jobs, now, true, JOB_DEFAULTS));
      if (rows[0]?._bounded !== true) return this.insertedJobs(this.direct, jobs, rows, now);
    }
    return this.sqlOf.transaction(this.client, async (tx) => {
      const names = [...new Set(jobs.map((j) => j.queue))].sort();
      if (this.sqlOf.name === "sqlite") {
        // A queue exists from its first job on (PostgreSQL: inside insertJobsSql).
        await tx.$executeRaw(sql`
          INSERT INTO "queues" ("name", "created_at", "updated_at")
          VALUES ${join(names.map((n) => sql`(${n}, ${now}, ${now})`))}
          ON CONFLICT ("name") DO NOTHING`);
      }
      // PostgreSQL: serialise the producers of a bounded queue, and read it under the lock.
      const queues = await this.readQueues(tx, names, this.sqlOf.forUpdate);
      const bounded = queues.filter((q) => q.maxQueued !== null);

      let written: Written<{ job: Job; created: boolean }[]>;
      if (this.sqlOf.name === "postgres") {
        const rows = await tx.$queryRaw<Row[]>(insertJobsSql(jobs, now, false, JOB_DEFAULTS));
        written = await this.insertedJobs(tx, jobs, rows, now);
      } else {
        written = await this.insertJobsOneByOne(tx, jobs, now, new Map(queues.map((q) => [q.name, q])));
      }
      for (const q of bounded) {
        // Only a batch that added jobs to the queue can overfill it: a repeated
        // idempotent enqueue returns its job even when the queue is full.
        if (!written.value.some((o) => o.created && o.job.queue === q.name)) continue;
        const waiting = await this.countWaiting(tx, q.name, WAITING_STATES);
        if (q.maxQueued !== null && waiting > q.maxQueued) throw new QueueFullError(q.name, q.maxQueued);
      }
      return written;
    });
  }

  /**
   * SQLite: one prepared INSERT per job, each returning its row (or nothing for
   * a seen key), then the events in multi-row INSERTs. Inside a transaction on
   * better-sqlite3 a statement costs a few µs, so this is as fast as a
   * multi-row INSERT and ties every row to its input without ambiguity.
   */
  private async insertJobsOneByOne(
    tx: SqlRunner,
    jobs: readonly NewJob[],
    now: Date,
    queues: ReadonlyMap<string, QueueRow>,
  ): Promise<Written<{ job: Job; created: boolean }[]>> {
    const out: { job: Job; created: boolean }[] = [];
    const events: EventRow[] = [];
    for (const j of jobs) {
      // Queue defaults for what the caller left out, read in this transaction.
      const q = queues.get(j.queue);
      const priority = j.priority ?? q?.defaultPriority ?? 0;
      const maxAttempts = j.maxAttempts ?? q?.defaultMaxAttempts ?? JOB_DEFAULTS.maxAttempts;
      const backoff = j.backoff ?? q?.defaultBackoff ?? JOB_DEFAULTS.backoff;
      const inserted = await tx.$queryRaw<Row[]>(sql`
        INSERT INTO "jobs" ("queue", "state", "payload", "priority", "run_at", "max_attempts", "backoff",
          "idempotency_key", "tags", "metadata", "last_seq", "created_at", "updated_at")
        VALUES (${j.queue}, ${j.state}, ${this.jsonOrNull(j.payload)}, ${priority}, ${j.runAt},
          ${maxAttempts}, ${this.sqlOf.json(backoff)}, ${j.idempotencyKey}, ${this.sqlOf.json(j.tags)},
          ${this.jsonOrNull(j.metadata)}, 1, ${now}, ${now})
        ON CONFLICT ("queue", "idempotency_key") WHERE "idempotency_key" IS NOT NULL DO NOTHING
        RETURNING *`);
      const row = inserted[0];
      if (row) {
        const job = toJob(row, this.sqlOf);
        out.push({ job, created: true });
        events.push(enqueuedEvent(job, now));
        continue;
      }
      // The key exists: either committed before, or earlier in this very batch.
      const existing = await tx.$queryRaw<Row[]>(sql`
        SELECT * FROM "jobs" WHERE "queue" = ${j.queue} AND "idempotency_key" = ${j.idempotencyKey}`);
      const found = existing[0];
      if (!found) throw new Error(`idempotent insert of ${j.queue}/${j.idempotencyKey} found no row`);
      out.push({ job: toJob(found, this.sqlOf), created: false });
    }
    return { value: out, events: await this.insertEvents(tx, events) };
  }

  /**
   * PostgreSQL: the outcome of insertJobsSql's rows (one per inserted job, with
   * its input's position and its event id). An input that inserted nothing
   * holds a seen key: it gets the job inserted for an earlier input with the
   * same key, or the one committed before, read with `runner`.
   */
  private async insertedJobs(
    runner: SqlRunner,
    jobs: readonly NewJob[],
    rows: readonly Row[],
    now: Date,
  ): Promise<Written<{ job: Job; created: boolean }[]>> {
    const out: ({ job: Job; created: boolean } | undefined)[] = new Array(jobs.length);
    const events: JobEvent[] = [];
    for (const row of rows) {
      if (row._ord === null || row._ord === undefined) continue;
      const job = toJob(row, this.sqlOf);
      out[Number(row._ord) - 1] = { job, created: true };
      events.push({ id: String(row._event_id), ...enqueuedEvent(job, now) });
    }
    const byKey = new Map<string, Job>();
    const keyOf = (queue: string, key: string): string => JSON.stringify([queue, key]);
    const unresolved: NewJob[] = [];
    jobs.forEach((j, i) => {
      const done = out[i];
      if (j.idempotencyKey === null) {
        if (!done) throw new Error(`job ${i} of an enqueue without idempotency key was not inserted`);
        return;
      }
      const key = keyOf(j.queue, j.idempotencyKey);
      if (done) byKey.set(key, done.job);
      else if (!byKey.has(key)) unresolved.push(j);
    });
    if (unresolved.length > 0) {
      const pairs = unresolved.map((j) => sql`(${j.queue}, ${j.idempotencyKey})`);
      const existing = await runner.$queryRaw<Row[]>(sql`
        SELECT * FROM "jobs" WHERE ("queue", "idempotency_key") IN (${join(pairs)})`);
      for (const row of existing) {
        const job = toJob(row, this.sqlOf);
        if (job.idempotencyKey !== null) byKey.set(keyOf(job.queue, job.idempotencyKey), job);
      }
    }
    const value = jobs.map((j, i) => {
      const done = out[i];
      if (done) return done;
      const job = byKey.get(keyOf(j.queue, j.idempotencyKey ?? ""));
      if (!job) throw new Error(`idempotent insert of ${j.queue}/${j.idempotencyKey} found no row`);
      return { job, created: false };
    });
    return { value, events: events.sort((a, b) => compareIds(a.id, b.id)) };
  }

  async promoteDueJobs(queues: readonly string[], now: Date, limit: number): Promise<Written<number>> {
    if (this.sqlOf.name === "postgres") {
      // One statement; with nothing due it changes nothing and writes no WAL.
      const rows = await this.direct.$queryRaw<Row[]>(promoteDueJobsSql(queues, now, limit));
      const events = rows.map((r): JobEvent => ({
        id: String(r._event_id),
        jobId: String(r.job_id),
        seq: Number(r.last_seq),
        type: JobEventType.PROMOTED,
        fromState: JobState.SCHEDULED,
        toState: JobState.QUEUED,
        attempt: Number(r.attempts),
        data: null,
        createdAt: now,
      }));
      return { value: rows.length, events: events.sort((a, b) => compareIds(a.id, b.id)) };
    }
    const queueFilter = queues.length > 0 ? sql`AND "queue" IN (${join([...queues])})` : empty;
    // SQLite: a read first (an index probe, ~10 µs), since every claim asks and
    // usually nothing is due; the UPDATE costs ~3x that even when it changes
    // nothing. What is seen due is promoted by the guarded UPDATE below.
    const due = await this.direct.$queryRaw<Row[]>(sql`
      SELECT 1 AS "due" FROM "jobs"
      WHERE "state" = ${JobState.SCHEDULED} ${queueFilter} AND "run_at" <= ${now} LIMIT 1`);
    if (due.length === 0) return { value: 0, events: [] };
    return this.sqlOf.transaction(this.client, async (tx) => {
      const rows = await tx.$queryRaw<Row[]>(sql`
        WITH "due" AS MATERIALIZED (
          SELECT "id" FROM "jobs"
          WHERE "state" = ${JobState.SCHEDULED} ${queueFilter} AND "run_at" <= ${now}
          ORDER BY "run_at" LIMIT ${limit})
        UPDATE "jobs" SET "state" = ${JobState.QUEUED}, "last_seq" = "last_seq" + 1, "updated_at" = ${now}
        WHERE "id" IN (SELECT "id" FROM "due") AND "state" = ${JobState.SCHEDULED}
        RETURNING "id", "last_seq", "attempts"`);
      const events = await this.insertEvents(
        tx,
        rows.map((r) => ({
          jobId: String(r.id),
          seq: Number(r.last_seq),
          type: JobEventType.PROMOTED,
          fromState: JobState.SCHEDULED,
          toState: JobState.QUEUED,
          attempt: Number(r.attempts),
          data: null,
          createdAt: now,
        })),
      );
      return { value: rows.length, events };
    });
  }

  async claimJobs(spec: ClaimSpec): Promise<Written<Job[]>> {
    const promoted: JobEvent[] = [];
    let promote = spec.promoteDue;
    const withPromoted = (written: Written<Job[]>): Written<Job[]> => ({
      value: written.value,
      events: [...promoted, ...written.events].sort((a, b) => compareIds(a.id, b.id)),
    });
    if (this.sqlOf.name === "postgres") {
      // One statement, unless a queue has a limit or a job is due (see postgres/writes.ts).
      for (;;) {
        const now = spec.clock();
        const rows = await this.direct.$queryRaw<Row[]>(
          claimOpenQueuesSql({
            queues: spec.queues,
            workerId: spec.workerId,
            claimSet: (leaseExpiresAt) => this.claimSet(spec.workerId, leaseExpiresAt, now),
            limit: spec.limit,
            leaseSeconds: spec.leaseSeconds,
            defaultLeaseSeconds: LIMITS.defaultLeaseSeconds,
            now,
            checkDue: promote !== undefined,
          }),
        );
        if (rows[0]?._due === true && promote !== undefined) {
          promoted.push(...(await this.promoteDueJobs(spec.queues, now, promote)).events);
          promote = undefined; // promoted once, as a separate promotion would; now claim
          continue;
        }
        if (rows[0]?._limited === true) return withPromoted(await this.claimInTransaction(spec));
        const claimed = rows.filter((r) => r.id !== null && r.id !== undefined);
        const jobs = claimed.map((r) => toJob(r, this.sqlOf)).sort(byClaimOrder);
        const eventIds = new Map(claimed.map((r) => [String(r.id), String(r._event_id)]));
        const events = jobs.map((j) => this.claimedEvent(j, eventIds.get(j.id) ?? "", spec.workerId, now));
        return withPromoted({ value: jobs, events });
      }
    }
    if (promote !== undefined) promoted.push(...(await this.promoteDueJobs(spec.queues, spec.clock(), promote)).events);
    return withPromoted(await this.claimInTransaction(spec));
  }

  /** The `claimed` event written with a claimed job (known without reading it back). */
  private claimedEvent(job: Job, eventId: string, workerId: string, now: Date): JobEvent {
    return {
      id: eventId,
      jobId: job.id,
      seq: job.lastSeq,
      type: JobEventType.CLAIMED,
      fromState: JobState.QUEUED,
      toState: JobState.RUNNING,
      attempt: job.attempts,
      data: { workerId },
      createdAt: now,
    };
  }

  /** The claim under queue row locks (limited queues; every claim on SQLite). */
  private async claimInTransaction(spec: ClaimSpec): Promise<Written<Job[]>> {
    return this.sqlOf.transaction(this.client, async (tx) => {
      const queues = new Map((await this.readQueues(tx, spec.queues, empty)).map((q) => [q.name, q]));
      const isLimited = (q: QueueRow | undefined): q is QueueRow =>
        q !== undefined && (q.concurrency !== null || q.rateLimit !== null);
      const limitedNames = [...queues.values()].filter(isLimited).map((q) => q.name);
      if (limitedNames.length > 0 && this.sqlOf.name === "postgres") {
        // Claimers of a limited queue take turns on its row; the settings and
        // the counts below are read after the lock, so they are current.
        for (const q of await this.readQueues(tx, limitedNames, this.sqlOf.forUpdate)) queues.set(q.name, q);
      }
      const limited = spec.queues.map((name) => queues.get(name)).filter(isLimited);
      const running = await this.countRunning(
        tx,
        limited.filter((q) => q.concurrency !== null && !q.paused).map((q) => q.name),
      );
      // Read after the count: a completion it counted read its clock before
      // it committed, so before this; the start recorded below is never
      // earlier than a finish that freed its slot.
      const now = spec.clock();
      const groups: { queues: string[]; limit: number }[] = [];
      const open = spec.queues.filter((name) => {
        const q = queues.get(name);
        return q === undefined || (!q.paused && !isLimited(q));
      });
      if (open.length > 0) groups.push({ queues: open, limit: spec.limit });
      for (const q of limited) {
        const allowed = spec.policy.allowance(q, running.get(q.name) ?? 0, now, spec.limit);
        if (allowed > 0) groups.push({ queues: [q.name], limit: allowed });
      }
      if (groups.length === 0) return { value: [], events: [] };

      const leaseSeconds = (name: string): number =>
        spec.leaseSeconds ?? queues.get(name)?.defaultLeaseSeconds ?? LIMITS.defaultLeaseSeconds;
      const leaseFor = new Map(spec.queues.map((name) => [name, new Date(now.getTime() + leaseSeconds(name) * 1000)]));
      const distinct = [...new Set([...leaseFor.values()].map((d) => d.getTime()))];
      const leaseExpiresAt =
        distinct.length === 1
          ? sql`${leaseFor.get(spec.queues[0] ?? "")}`
          : sql`CASE "queue" ${join(
              [...leaseFor].map(([name, at]) => sql`WHEN ${name} THEN ${at}`),
              " ",
            )} END`;

      let rows: Row[];
      const only = groups.length === 1 ? groups[0] : undefined;
      if (only) {
        // The common case is one atomic statement. The pick is a MATERIALIZED
        // CTE so it runs exactly once: as a plain `WHERE id IN (SELECT … LIMIT n
        // FOR UPDATE SKIP LOCKED)` PostgreSQL may re-run the subquery and update
        // more than n rows (seen in our tests).
        rows = await tx.$queryRaw<Row[]>(sql`
          WITH "picked" AS MATERIALIZED (${this.pickSql(only.queues, only.limit, now)})
          UPDATE "jobs" SET ${this.claimSet(spec.workerId, leaseExpiresAt, now)}
          WHERE "id" IN (SELECT "id" FROM "picked") AND "state" = ${JobState.QUEUED}
          RETURNING *`);
      } else {
        // Several queues with their own allowances: pick each one's candidates
        // (locked), keep the best `limit` across all of them, claim those.
        const candidates: Candidate[] = [];
        for (const g of groups) {
          const picked = await tx.$queryRaw<Row[]>(this.pickSql(g.queues, g.limit, now, sql`, "priority", "run_at"`));
          candidates.push(
            ...picked.map((r) => ({ id: String(r.id), priority: Number(r.priority), runAt: toDate(r.run_at) })),
          );
        }
        const chosen = candidates.sort(byClaimOrder).slice(0, spec.limit);
        if (chosen.length === 0) return { value: [], events: [] };
        rows = await tx.$queryRaw<Row[]>(sql`
          UPDATE "jobs" SET ${this.claimSet(spec.workerId, leaseExpiresAt, now)}
          WHERE "id" IN (${join(chosen.map((c) => BigInt(c.id)))}) AND "state" = ${JobState.QUEUED}
          RETURNING *`);
      }
      const jobs = rows.map((r) => toJob(r, this.sqlOf)).sort(byClaimOrder);

      for (const q of limited) {
        const started = jobs.filter((j) => j.queue === q.name).length;
        if (q.rateLimit === null || started === 0) continue;
        const log = spec.policy.recordStarts(q, now, started);
        await tx.$executeRaw(sql`
          UPDATE "queues" SET "recent_starts" = ${this.sqlOf.json(log)} WHERE "name" = ${q.name}`);
      }

      const events = await this.insertEvents(
        tx,
        jobs.map((j) => ({
          jobId: j.id,
          seq: j.lastSeq,
          type: JobEventType.CLAIMED,
          fromState: JobState.QUEUED,
          toState: JobState.RUNNING,
          attempt: j.attempts,
          data: { workerId: spec.workerId },
          createdAt: now,
        })),
      );
      return { value: jobs, events };
    });
  }

  /** The ready jobs of `queues` a claim takes first, locked (SKIP LOCKED) on PostgreSQL. */
  private pickSql(queues: readonly string[], limit: number, now: Date, extra: Sql = empty): Sql {
    return sql`
      SELECT "id"${extra} FROM "jobs"
      WHERE "state" = ${JobState.QUEUED} AND "queue" IN (${join([...queues])}) AND "run_at" <= ${now}
      ORDER BY "priority", "run_at", "id"
      LIMIT ${limit}${this.sqlOf.forUpdateSkipLocked}`;
  }

  private claimSet(workerId: string, leaseExpiresAt: Sql, now: Date): Sql {
    return sql`
      "state" = ${JobState.RUNNING},
      "attempts" = "attempts" + 1,
      "worker_id" = ${workerId},
      "lease_token" = ${this.sqlOf.newLeaseToken},
      "lease_expires_at" = ${leaseExpiresAt},
      "cancel_requested_at" = NULL,
      "progress" = NULL,
      "started_at" = ${now},
      "last_seq" = "last_seq" + 1,
      "updated_at" = ${now}`;
  }

  private async readQueues(tx: SqlRunner, names: readonly string[], lock: Sql): Promise<QueueRow[]> {
    if (names.length === 0) return [];
    const query = sql`
      SELECT * FROM "queues" WHERE "name" IN (${join([...names])}) ORDER BY "name"${lock}`;
    // Prepared for the common short lists only (one text per list length).
    const rows = await tx.$queryRaw<Row[]>(names.length <= 16 ? prepared(query) : query);
    return rows.map((r) => toQueue(r, this.sqlOf));
  }

  private async countRunning(tx: SqlRunner, queues: readonly string[]): Promise<Map<string, number>> {
    if (queues.length === 0) return new Map();
    const rows = await tx.$queryRaw<Row[]>(sql`
      SELECT "queue", COUNT(*) AS "n" FROM "jobs"
      WHERE "queue" IN (${join([...queues])}) AND "state" = ${JobState.RUNNING}
      GROUP BY "queue"`);
    return new Map(rows.map((r) => [String(r.queue), Number(r.n)]));
  }

  private async countWaiting(tx: SqlRunner, queue: string, states: readonly string[]): Promise<number> {
    const rows = await tx.$queryRaw<Row[]>(
      prepared(sql`
      SELECT COUNT(*) AS "n" FROM "jobs" WHERE "queue" = ${queue} AND "state" IN (${join([...states])})`),
    );
    return Number(rows[0]?.n ?? 0);
  }

  async transition(spec: TransitionSpec): Promise<Written<Job> | null> {
    const id = BigInt(spec.jobId);
    const guards: Sql[] = [sql`"id" = ${id}`, sql`"state" IN (${join([...spec.from])})`];
    if (spec.leaseToken !== undefined) guards.push(sql`"lease_token" = ${spec.leaseToken}`);
    if (spec.expectedSeq !== undefined) guards.push(sql`"last_seq" = ${spec.expectedSeq}`);
    if (spec.leaseExpiredBefore !== undefined) {
      guards.push(sql`"lease_expires_at" < ${spec.leaseExpiredBefore}`);
    }
    const where = join(guards, " AND ");
    const toState = spec.to === undefined ? sql`"state"` : sql`${spec.to}`;
    const attempt = spec.patch.attempts === undefined ? sql`"attempts"` : sql`${spec.patch.attempts}`;

    return this.sqlOf.transaction(this.client, async (tx) => {
      // The event is written first, from the row it guards (locked on PostgreSQL),
      // so it records the true from-state; if the guard fails nothing is written.
      const eventRows = await tx.$queryRaw<Row[]>(
        prepared(sql`
        INSERT INTO "job_events" ("job_id", "seq", "type", "from_state", "to_state", "attempt", "data", "actor", "created_at")
        SELECT "id", "last_seq" + 1, ${spec.event.type}, "state", ${toState}, ${attempt},
          ${this.jsonOrNull(spec.event.data)}, ${spec.event.actor ?? null}, ${spec.now}
        FROM "jobs" WHERE ${where}${this.sqlOf.forUpdate}
        RETURNING *`),
      );
      const eventRow = eventRows[0];
      if (!eventRow) return null;

      const sets: Sql[] = [sql`"last_seq" = "last_seq" + 1`, sql`"updated_at" = ${spec.now}`];
      if (spec.to !== undefined) sets.push(sql`"state" = ${spec.to}`);
      for (const [key, value] of Object.entries(spec.patch) as [keyof JobPatch, unknown][]) {
        if (value === undefined) continue;
        const col = PATCH_COLUMNS[key];
        const encoded = col.json ? this.jsonOrNull(value as JsonValue | null) : sql`${value}`;
        sets.push(sql`${rawIdent(col.column)} = ${encoded}`);
      }
      const updated = await tx.$queryRaw<Row[]>(
        prepared(sql`
        UPDATE "jobs" SET ${join(sets, ", ")} WHERE "id" = ${id} RETURNING *`),
      );
      const row = updated[0];
      if (!row) throw new Error(`job ${spec.jobId} vanished inside its own transition`);
      return { value: toJob(row, this.sqlOf), events: [toJobEvent(eventRow, this.sqlOf)] };
    });
  }

  async completeJobs(items: readonly CompletionSpec[], now: Date): Promise<Written<Job[]>> {
    if (items.length === 0) return { value: [], events: [] };
    if (this.sqlOf.name === "postgres") {
      // One statement (see postgres/writes.ts).
      const rows = await this.direct.$queryRaw<Row[]>(completeJobsSql(items, now));
      const jobs = rows.map((r) => toJob(r, this.sqlOf)).sort((a, b) => compareIds(a.id, b.id));
      const eventIds = new Map(rows.map((r) => [String(r.id), String(r._event_id)]));
      const events = jobs.map((j): JobEvent => ({
        id: eventIds.get(j.id) ?? "",
        jobId: j.id,
        seq: j.lastSeq,
        type: JobEventType.SUCCEEDED,
        fromState: JobState.RUNNING,
        toState: JobState.SUCCEEDED,
        attempt: j.attempts,
        data: null,
        createdAt: now,
      }));
      return { value: jobs, events: events.sort((a, b) => compareIds(a.id, b.id)) };
    }
    return this.sqlOf.transaction(this.client, async (tx) => {
      // One guarded UPDATE for the whole batch: a row changes only while it is
      // RUNNING under the item's token (PostgreSQL re-checks that on the newest
      // row version after any lock wait), so the from-state of every returned
      // row is RUNNING and its event can be written from it.
      const values = items.map(
        (i) =>
          sql`(CAST(${BigInt(i.jobId)} AS BIGINT), ${i.leaseToken}, ${i.result === null ? this.sqlOf.jsonNull : this.sqlOf.json(i.result)})`,
      );
      // UPDATE … FROM: one primary-key search per item. (The correlated
      // `result = (SELECT … FROM done WHERE done.id = jobs.id)` it replaces
      // scanned the whole VALUES list for every row: 100 × 100 row visits for
      // a batch of 100.) SQLite's RETURNING * names only the jobs columns.
      const rows = await tx.$queryRaw<Row[]>(sql`
        WITH "done" ("id", "token", "result") AS (VALUES ${join(values)})
        UPDATE "jobs" SET "state" = ${JobState.SUCCEEDED}, "result" = "done"."result",
          "lease_expires_at" = NULL, "finished_at" = ${now}, "last_seq" = "last_seq" + 1, "updated_at" = ${now}
        FROM "done"
        WHERE "jobs"."id" = "done"."id" AND "jobs"."lease_token" = "done"."token" AND "jobs"."state" = ${JobState.RUNNING}
        RETURNING *`);
      const jobs = rows.map((r) => toJob(r, this.sqlOf)).sort((a, b) => compareIds(a.id, b.id));
      const events = await this.insertEvents(
        tx,
        jobs.map((j) => ({
          jobId: j.id,
          seq: j.lastSeq,
          type: JobEventType.SUCCEEDED,
          fromState: JobState.RUNNING,
          toState: JobState.SUCCEEDED,
          attempt: j.attempts,
          data: null,
          createdAt: now,
        })),
      );
      return { value: jobs, events };
    });
  }

  async releaseJobs(items: readonly ReleaseSpec[], now: Date): Promise<Written<Job[]>> {
    if (items.length === 0) return { value: [], events: [] };
    return this.sqlOf.transaction(this.client, async (tx) => {
      // One guarded UPDATE for the batch, as in completeJobs: a row changes
      // only while it is RUNNING under the item's token, so every returned row
      // was RUNNING and its event can be written from it. run_at is kept: the
      // job was due when claimed, so it is claimable at once, in its old place.
      const values = items.map((i) => sql`(CAST(${BigInt(i.jobId)} AS BIGINT), ${i.leaseToken})`);
      const cancelled = sql`"cancel_requested_at" IS NOT NULL`;
      const rows = await tx.$queryRaw<Row[]>(sql`
        WITH "released" ("id", "token") AS (VALUES ${join(values)})
        UPDATE "jobs" SET
          "state" = CASE WHEN ${cancelled} THEN ${JobState.CANCELLED} ELSE ${JobState.QUEUED} END,
          "attempts" = CASE WHEN "attempts" > 0 THEN "attempts" - 1 ELSE 0 END,
          "worker_id" = NULL, "lease_token" = NULL, "lease_expires_at" = NULL,
          "started_at" = NULL, "progress" = NULL,
          "last_seq" = "last_seq" + 1, "updated_at" = ${now}
        WHERE ("id", "lease_token") IN (SELECT "id", "token" FROM "released") AND "state" = ${JobState.RUNNING}
        RETURNING *`);
      const jobs = rows.map((r) => toJob(r, this.sqlOf)).sort((a, b) => compareIds(a.id, b.id));
      // A cancel requested while the job waited ends it (rare): its finish
      // time in a second statement, as a typed CASE would differ per dialect.
      const ended = jobs.filter((j) => j.state === JobState.CANCELLED);
      if (ended.length > 0) {
        const finished = await tx.$queryRaw<Row[]>(sql`
          UPDATE "jobs" SET "finished_at" = ${now}
          WHERE "id" IN (${join(ended.map((j) => BigInt(j.id)))}) RETURNING *`);
        const byId = new Map(finished.map((r) => [String(r.id), toJob(r, this.sqlOf)]));
        jobs.forEach((j, i) => (jobs[i] = byId.get(j.id) ?? j));
      }
      const events = await this.insertEvents(
        tx,
        jobs.map((j) => ({
          jobId: j.id,
          seq: j.lastSeq,
          type: j.state === JobState.CANCELLED ? JobEventType.CANCELLED : JobEventType.RELEASED,
          fromState: JobState.RUNNING,
          toState: j.state,
          attempt: j.attempts,
          data: null,
          createdAt: now,
        })),
      );
      return { value: jobs, events };
    });
  }

  async extendLease(
    jobId: string,
    leaseToken: string,
    leaseSeconds: number | undefined,
    progress: JsonValue | null | undefined,
    now: Date,
  ): Promise<Job | null> {
    let seconds = leaseSeconds;
    if (seconds === undefined) {
      const rows = await this.direct.$queryRaw<Row[]>(
        prepared(sql`
        SELECT "q"."default_lease_seconds" AS "s" FROM "jobs" "j" JOIN "queues" "q" ON "q"."name" = "j"."queue"
        WHERE "j"."id" = ${BigInt(jobId)}`),
      );
      const s = rows[0]?.s;
      seconds = s === null || s === undefined ? LIMITS.defaultLeaseSeconds : Number(s);
    }
    const leaseExpiresAt = new Date(now.getTime() + seconds * 1000);
    const progressSet = progress === undefined ? empty : sql`, "progress" = ${this.jsonOrNull(progress)}`;
    const rows = await this.direct.$queryRaw<Row[]>(
      prepared(sql`
      UPDATE "jobs" SET "lease_expires_at" = ${leaseExpiresAt}, "updated_at" = ${now}${progressSet}
      WHERE "id" = ${BigInt(jobId)} AND "state" = ${JobState.RUNNING} AND "lease_token" = ${leaseToken}
      RETURNING *`),
    );
    return rows[0] ? toJob(rows[0], this.sqlOf) : null;
  }

  async getJob(jobId: string): Promise<Job | null> {
    const rows = await this.direct.$queryRaw<Row[]>(prepared(sql`SELECT * FROM "jobs" WHERE "id" = ${BigInt(jobId)}`));
    return rows[0] ? toJob(rows[0], this.sqlOf) : null;
  }

  async getJobs(jobIds: readonly string[]): Promise<Job[]> {
    if (jobIds.length === 0) return [];
    const rows = await this.direct.$queryRaw<Row[]>(sql`
      SELECT * FROM "jobs" WHERE "id" IN (${join(jobIds.map((id) => BigInt(id)))})`);
    return rows.map((r) => toJob(r, this.sqlOf));
  }

  async getJobByKey(queue: string, idempotencyKey: string): Promise<Job | null> {
    const rows = await this.direct.$queryRaw<Row[]>(sql`
      SELECT * FROM "jobs" WHERE "queue" = ${queue} AND "idempotency_key" = ${idempotencyKey}`);
    return rows[0] ? toJob(rows[0], this.sqlOf) : null;
  }

  async listJobs(spec: ListJobsSpec): Promise<Job[]> {
    const conds = this.jobFilter(spec);
    if (spec.beforeId !== undefined) conds.push(sql`"id" < ${BigInt(spec.beforeId)}`);
    const rows = await this.direct.$queryRaw<Row[]>(sql`
      SELECT * FROM "jobs" WHERE ${join(conds, " AND ")} ORDER BY "id" DESC LIMIT ${spec.limit}`);
    return rows.map((r) => toJob(r, this.sqlOf));
  }

  async countJobs(spec: Omit<ListJobsSpec, "beforeId" | "limit">): Promise<number> {
    const rows = await this.direct.$queryRaw<Row[]>(sql`
      SELECT COUNT(*) AS "n" FROM "jobs" WHERE ${join(this.jobFilter(spec), " AND ")}`);
    return Number(rows[0]?.n ?? 0);
  }

  private jobFilter(spec: Omit<ListJobsSpec, "beforeId" | "limit">): Sql[] {
    const conds: Sql[] = [sql`1 = 1`];
    if (spec.queue !== undefined) conds.push(sql`"queue" = ${spec.queue}`);
    if (spec.states !== undefined && spec.states.length > 0) {
      conds.push(sql`"state" IN (${join([...spec.states])})`);
    }
    for (const tag of spec.tags ?? []) conds.push(this.sqlOf.hasTag(tag));
    if (spec.createdAfter !== undefined) conds.push(sql`"created_at" >= ${spec.createdAfter}`);
    if (spec.createdBefore !== undefined) conds.push(sql`"created_at" < ${spec.createdBefore}`);
    return conds;
  }

  async listEvents(jobId: string, afterSeq: number, limit: number, upToId?: string): Promise<JobEvent[]> {
    const upTo = upToId === undefined ? empty : sql` AND "id" <= ${BigInt(upToId)}`;
    const rows = await this.direct.$queryRaw<Row[]>(
      prepared(sql`
      SELECT * FROM "job_events" WHERE "job_id" = ${BigInt(jobId)} AND "seq" > ${afterSeq}${upTo}
      ORDER BY "seq" LIMIT ${limit}`),
    );
    return rows.map((r) => toJobEvent(r, this.sqlOf));
  }

  async listEventRange(spec: EventRangeSpec): Promise<JobEventInQueue[]> {
    const conds: Sql[] = [sql`"e"."id" > ${BigInt(spec.afterId)}`, sql`"e"."id" <= ${BigInt(spec.upToId)}`];
    if (spec.queues !== undefined)
      conds.push(spec.queues.length ? sql`"j"."queue" IN (${join([...spec.queues])})` : sql`1 = 0`);
    if (spec.states !== undefined)
      conds.push(spec.states.length ? sql`"e"."to_state" IN (${join([...spec.states])})` : sql`1 = 0`);
    if (spec.jobIds !== undefined) {
      conds.push(spec.jobIds.length ? sql`"e"."job_id" IN (${join(spec.jobIds.map((id) => BigInt(id)))})` : sql`1 = 0`);
    }
    // Walks job_events' primary key from afterId; the range is what the subscriber missed.
    const rows = await this.direct.$queryRaw<Row[]>(sql`
      SELECT "e".*, "j"."queue" AS "queue" FROM "job_events" AS "e" JOIN "jobs" AS "j" ON "j"."id" = "e"."job_id"
      WHERE ${join(conds, " AND ")} ORDER BY "e"."id" LIMIT ${spec.limit}`);
    return rows.map((r) => ({ ...toJobEvent(r, this.sqlOf), queue: String(r.queue) }));
  }

  async readEventLog(afterId: string, limit: number): Promise<EventLogPage> {
    const snapshot = this.sqlOf.snapshot ?? sql`NULL`;
    return this.sqlOf.readCommitted(this.client, async (runner) => {
      // One statement, so the events, the newest id and the snapshot are all
      // read at the same instant (PostgreSQL: one statement snapshot). With no
      // rows wanted (the feed following the head while nobody listens, after
      // every commit) only the head: a third of the time of the joined form.
      const head =
        limit === 0
          ? sql`SELECT (SELECT MAX("id") FROM "job_events") AS "max_id", ${snapshot} AS "snap"`
          : sql`
        SELECT "h"."max_id", "h"."snap", "e".*, "j"."queue" AS "queue"
        FROM (SELECT (SELECT MAX("id") FROM "job_events") AS "max_id", ${snapshot} AS "snap") AS "h"
        LEFT JOIN (SELECT * FROM "job_events" WHERE "id" > ${BigInt(afterId)} ORDER BY "id" LIMIT ${limit}) AS "e" ON 1 = 1
        LEFT JOIN "jobs" AS "j" ON "j"."id" = "e"."job_id"
        ORDER BY "e"."id"`;
      const rows = await runner.$queryRaw<Row[]>(prepared(head));
      const first = rows[0];
      const events = rows
        .filter((r) => r.id !== null && r.id !== undefined && r.queue !== null && r.queue !== undefined)
        .map((r) => ({ ...toJobEvent(r, this.sqlOf), queue: String(r.queue) }));
      return {
        events,
        maxId: first?.max_id === null || first?.max_id === undefined ? "0" : String(first.max_id),
        snapshot: first?.snap === null || first?.snap === undefined ? null : String(first.snap),
      };
    });
  }

  async listRecentEvents(jobIds: readonly string[], last: number): Promise<Map<string, JobEvent[]>> {
    const byJob = new Map<string, JobEvent[]>(jobIds.map((id) => [id, []]));
    if (jobIds.length === 0) return byJob;
    // Each job's newest `last` events: the window walks job_events' (job_id, seq) key.
    const rows = await this.direct.$queryRaw<Row[]>(sql`
      SELECT * FROM (
        SELECT "e".*, ROW_NUMBER() OVER (PARTITION BY "job_id" ORDER BY "seq" DESC) AS "rn"
        FROM "job_events" AS "e" WHERE "job_id" IN (${join(jobIds.map((id) => BigInt(id)))})) AS "r"
      WHERE "rn" <= ${last}
      ORDER BY "job_id", "seq"`);
    for (const row of rows) {
      const event = toJobEvent(row, this.sqlOf);
      byJob.get(event.jobId)?.push(event);
    }
    return byJob;
  }

  async findExpiredLeases(now: Date, limit: number): Promise<{ id: string; leaseToken: string }[]> {
    // A lease ending at T is live at T (strict <); the sweep's guarded write re-checks
    // the same bound (leaseExpiredBefore), and job-service skips a job whose lease a
    // heartbeat extended meanwhile instead of retrying it.
    const rows = await this.direct.$queryRaw<Row[]>(sql`
      SELECT "id", "lease_token" FROM "jobs"
      WHERE "lease_expires_at" < ${now} AND "state" = ${JobState.RUNNING}
      ORDER BY "lease_expires_at" LIMIT ${limit}`);
    return rows.map((r) => ({ id: String(r.id), leaseToken: String(r.lease_token) }));
  }

  async deleteFinishedJobs(spec: DeleteFinishedSpec): Promise<number> {
    // A job's events go with it, deleted here: PostgreSQL has no foreign key
    // from job_events to jobs (migration 20261203130000_job_events_no_fk says
    // why); SQLite's ON DELETE CASCADE then finds nothing left to do.
    // The pick walks jobs_queue_finished_at_idx: only finished jobs have finished_at.
    return this.sqlOf.transaction(this.client, async (tx) => {
      const picked = await tx.$queryRaw<Row[]>(sql`
        SELECT "id" FROM "jobs"
        WHERE "queue" = ${spec.queue} AND "finished_at" < ${spec.finishedBefore}
          AND "state" IN (${join([...spec.states])})
        ORDER BY "finished_at" LIMIT ${spec.limit}${this.sqlOf.forUpdateSkipLocked}`);
      if (picked.length === 0) return 0;
      const ids = join(picked.map((r) => BigInt(String(r.id))));
      await tx.$executeRaw(sql`DELETE FROM "job_events" WHERE "job_id" IN (${ids})`);
      return tx.$executeRaw(sql`DELETE FROM "jobs" WHERE "id" IN (${ids})`);
    });
  }

  async getQueues(names?: readonly string[]): Promise<QueueRow[]> {
    if (names !== undefined) return this.readQueues(this.direct, names, empty);
    const rows = await this.direct.$queryRaw<Row[]>(sql`SELECT * FROM "queues" ORDER BY "name"`);
    return rows.map((r) => toQueue(r, this.sqlOf));
  }

  async configureQueue(name: string, patch: QueueSettingsPatch, now: Date): Promise<QueueRow> {
    const columns: string[] = [];
    const values: Sql[] = [];
    const set = (column: string, value: Sql): void => {
      columns.push(column);
      values.push(value);
    };
    for (const [key, column] of Object.entries(QUEUE_COLUMNS) as [keyof typeof QUEUE_COLUMNS, string][]) {
      const value = patch[key];
      if (value !== undefined) set(column, sql`${value}`);
    }
    if (patch.rateLimit !== undefined) {
      set("rate_limit_count", sql`${patch.rateLimit?.count ?? null}`);
      set("rate_limit_interval_ms", sql`${patch.rateLimit?.intervalMs ?? null}`);
    }
    if (patch.defaultBackoff !== undefined) set("default_backoff", this.jsonOrNull(patch.defaultBackoff));
    const idents = columns.map(rawIdent);
    const updates = [...idents.map((c) => sql`${c} = EXCLUDED.${c}`), sql`"updated_at" = EXCLUDED."updated_at"`];
    return this.sqlOf.transaction(this.client, async (tx) => {
      const rows = await tx.$queryRaw<Row[]>(sql`
        INSERT INTO "queues" ("name", ${idents.length > 0 ? sql`${join(idents, ", ")}, ` : empty}"created_at", "updated_at")
        VALUES (${name}, ${values.length > 0 ? sql`${join(values, ", ")}, ` : empty}${now}, ${now})
        ON CONFLICT ("name") DO UPDATE SET ${join(updates, ", ")}
        RETURNING *`);
      const row = rows[0];
      if (!row) throw new Error(`configuring queue ${name} returned no row`);
      return toQueue(row, this.sqlOf);
    });
  }

  async readQueueStats(queue: string, since: Date, aheadOfPriority: number): Promise<QueueStatsRow> {
    // One committed view for all seven reads (see `reader`).
    const [counts, started, finished, runs, oldest, running, ahead] = await this.sqlOf.readCommitted(this.client, (c) =>
      Promise.all([
        c.$queryRaw<Row[]>(sql`
        SELECT "state", CAST(SUM("n") AS BIGINT) AS "n" FROM (
          SELECT "state", "count" AS "n" FROM "queue_state_counts" WHERE "queue" = ${queue}
          UNION ALL
          SELECT "state", "delta" AS "n" FROM "queue_state_deltas" WHERE "queue" = ${queue}) AS "c"
        GROUP BY "state"`),
        c.$queryRaw<Row[]>(sql`
        SELECT COUNT(*) AS "n" FROM "jobs" WHERE "queue" = ${queue} AND "started_at" >= ${since}`),
        c.$queryRaw<Row[]>(sql`
        SELECT COUNT(*) AS "n" FROM "jobs" WHERE "queue" = ${queue} AND "finished_at" >= ${since}`),
        c.$queryRaw<Row[]>(sql`
        SELECT "started_at", "finished_at" FROM "jobs"
        WHERE "queue" = ${queue} AND "finished_at" IS NOT NULL AND "state" = ${JobState.SUCCEEDED}
          AND "started_at" IS NOT NULL
        ORDER BY "finished_at" DESC LIMIT ${RECENT_RUNS}`),
        c.$queryRaw<Row[]>(sql`
        SELECT MIN("run_at") AS "at" FROM "jobs" WHERE "queue" = ${queue} AND "state" = ${JobState.QUEUED}`),
        c.$queryRaw<Row[]>(sql`
        SELECT "started_at" FROM "jobs" WHERE "queue" = ${queue} AND "state" = ${JobState.RUNNING}
        LIMIT ${RUNNING_SAMPLE}`),
        // Claim order is priority first: a job with a larger priority number is not ahead.
        c.$queryRaw<Row[]>(sql`
        SELECT COUNT(*) AS "n" FROM "jobs"
        WHERE "queue" = ${queue} AND "state" = ${JobState.QUEUED} AND "priority" <= ${aheadOfPriority}`),
      ]),
    );
    const oldestAt = oldest[0]?.at;
    return {
      counts: Object.fromEntries(counts.map((r) => [String(r.state), Number(r.n)])),
      startedSince: Number(started[0]?.n ?? 0),
      finishedSince: Number(finished[0]?.n ?? 0),
      recentRunsMs: runs.map((r) => toDate(r.finished_at).getTime() - toDate(r.started_at).getTime()),
      oldestReadyRunAt: oldestAt === null || oldestAt === undefined ? null : toDate(oldestAt),
      ahead: Number(ahead[0]?.n ?? 0),
      runningStartedAt: running.filter((r) => r.started_at !== null).map((r) => toDate(r.started_at)),
    };
  }

  async readQueueCounts(): Promise<Map<string, Record<string, number>>> {
    const rows = await this.sqlOf.readCommitted(this.client, (c) =>
      c.$queryRaw<Row[]>(sql`
        SELECT "q"."name" AS "queue", "c"."state", "c"."n" FROM "queues" AS "q" LEFT JOIN (
          SELECT "queue", "state", CAST(SUM("n") AS BIGINT) AS "n" FROM (
            SELECT "queue", "state", "count" AS "n" FROM "queue_state_counts"
            UNION ALL
            SELECT "queue", "state", "delta" AS "n" FROM "queue_state_deltas") AS "u"
          GROUP BY "queue", "state") AS "c" ON "c"."queue" = "q"."name"
        ORDER BY "q"."name"`),
    );
    const counts = new Map<string, Record<string, number>>();
    for (const row of rows) {
      const queue = String(row.queue);
      let byState = counts.get(queue);
      if (!byState) counts.set(queue, (byState = {}));
      if (row.state !== null && row.state !== undefined) byState[String(row.state)] = Number(row.n);
    }
    return counts;
  }

  async compactQueueCounts(limit: number): Promise<number> {
    return this.sqlOf.transaction(this.client, (tx) => this.sqlOf.compactQueueCounts(tx, limit));
  }

  async insertApiToken(token: ApiTokenRow): Promise<ApiTokenRow | null> {
    return this.sqlOf.transaction(this.client, async (tx) => {
      // No conflict target: a taken name and a (vanishingly unlikely) taken hash both write nothing.
      const rows = await tx.$queryRaw<Row[]>(sql`
        INSERT INTO "api_tokens" ("name", "token_hash", "role", "queues", "created_at", "expires_at")
        VALUES (${token.name}, ${token.tokenHash}, ${token.role}, ${this.sqlOf.json(token.queues)},
          ${token.createdAt}, ${token.expiresAt})
        ON CONFLICT DO NOTHING
        RETURNING *`);
      return rows[0] ? toApiToken(rows[0], this.sqlOf) : null;
    });
  }

  async listApiTokens(): Promise<ApiTokenRow[]> {
    const rows = await this.direct.$queryRaw<Row[]>(sql`SELECT * FROM "api_tokens" ORDER BY "name"`);
    return rows.map((r) => toApiToken(r, this.sqlOf));
  }

  async deleteApiToken(name: string): Promise<boolean> {
    const deleted = await this.sqlOf.transaction(this.client, (tx) =>
      tx.$executeRaw(sql`DELETE FROM "api_tokens" WHERE "name" = ${name}`),
    );
    return deleted > 0;
  }

  async checkReady(): Promise<void> {
    const rows = await this.direct.$queryRaw<Row[]>(sql`SELECT "name" FROM "_jobwire_migrations"`);
    const applied = new Set(rows.map((r) => String(r.name)));
    const pending = loadMigrations(this.sqlOf.name).filter((m) => !applied.has(m.name));
    if (pending.length > 0) {
      throw new Error(`migrations not applied: ${pending.map((m) => m.name).join(", ")} (run jobwire migrate)`);
    }
    // A database that answers reads may still refuse every write: a SQLite
    // file the process could only open read-only (permissions, an immutable
    // file), a PostgreSQL standby or default_transaction_read_only. An UPDATE
    // that matches no row needs write access on both (SQLite opens a write
    // transaction for it, SQLITE_READONLY; PostgreSQL refuses it in a
    // read-only transaction, 25006) and changes nothing, so it costs one
    // empty transaction per probe. Not covered: a full disk, which only a
    // commit that writes pages would show.
    try {
      await this.sqlOf.transaction(this.client, (tx) =>
        tx.$executeRaw(sql`UPDATE "_jobwire_migrations" SET "name" = "name" WHERE 1 = 0`),
      );
    } catch (e) {
      throw new Error(`the database cannot take a write: ${coerceError(e).message}`, { cause: e });
    }
  }

  now(): Date {
    return this.clock.now();
  }

  async resumeLeases(now: Date): Promise<number> {
    if (!this.sqlOf.singleOwner) return 0;
    return this.sqlOf.transaction(this.client, async (tx) => {
      const rows = await tx.$queryRaw<Row[]>(sql`
        SELECT "id", "lease_expires_at", "updated_at" FROM "jobs"
        WHERE "state" = ${JobState.RUNNING} AND "lease_expires_at" IS NOT NULL`);
      for (const row of rows) {
        // The lease's length as granted (claim and heartbeat both set
        // updated_at to the grant time), at least the default lease: a later
        // cancel request also sets updated_at and would shorten it.
        const granted = toDate(row.lease_expires_at).getTime() - toDate(row.updated_at).getTime();
        const lengthMs = Math.max(granted, LIMITS.defaultLeaseSeconds * 1000);
        await tx.$executeRaw(sql`
          UPDATE "jobs" SET "lease_expires_at" = ${new Date(now.getTime() + lengthMs)}, "updated_at" = ${now}
          WHERE "id" = ${BigInt(String(row.id))}`);
      }
      return rows.length;
    });
  }

  /** Disconnects; any later call fails (Prisma would silently reconnect and leak a connection). */
  async close(): Promise<void> {
    this.clock.close();
    const client = this.client;
    this.client = CLOSED_CLIENT;
    await client.$disconnect();
  }
}

const closed = (): never => {
  throw new Error("the store is closed");
};
const CLOSED_CLIENT: SqlClient = {
  $queryRaw: closed,
  $executeRaw: closed,
  $transaction: closed,
  $disconnect: async () => {},
};

function byClaimOrder(a: Candidate, b: Candidate): number {
  return a.priority - b.priority || a.runAt.getTime() - b.runAt.getTime() || compareIds(a.id, b.id);
}

/** A timestamp column as returned by a raw query (Date on PostgreSQL; Date or text on SQLite). */
function toDate(value: unknown): Date {
  return value instanceof Date ? value : new Date(value as string);
}

const IDENT = /^[a-z_]+$/;
function rawIdent(name: string): Sql {
  if (!IDENT.test(name)) throw new Error(`bad column name ${name}`);
  return raw(`"${name}"`);
}
