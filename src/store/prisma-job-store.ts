/**
 * The JobStore on a Prisma client with a driver adapter. Statements are raw SQL
 * through the client (`$queryRaw` with Prisma's `sql` tag) because every write
 * here is a guarded state change that must return the row it changed and write
 * its event in the same transaction — which Prisma's model API cannot express
 * (no RETURNING on updateMany, no SKIP LOCKED). What differs per dialect comes
 * from a DialectSql (sqlite/dialect.ts, postgres/dialect.ts).
 */
import { empty, join, raw, sqltag as sql } from "@prisma/client/runtime/client";
import type { Sql } from "@prisma/client/runtime/client";
import { JobEventType, JobState } from "../jobs/states.ts";
import type { Job, JobEvent, JsonValue } from "../jobs/types.ts";
import type { DialectSql } from "./dialect-sql.ts";
import type {
  ClaimSpec,
  DeleteFinishedSpec,
  JobPatch,
  JobStore,
  ListJobsSpec,
  NewJob,
  TransitionSpec,
  Written,
} from "./job-store.ts";
import { toJob, toJobEvent } from "./rows.ts";
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

/** Largest number of rows written by one multi-row INSERT (8 parameters each). */
const INSERT_CHUNK = 500;

export class PrismaJobStore implements JobStore {
  readonly dialect;

  constructor(
    private readonly client: SqlClient,
    private readonly sqlOf: DialectSql,
  ) {
    this.dialect = sqlOf.name;
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
    return this.sqlOf.transaction(this.client, async (tx) => {
      const out: { job: Job; created: boolean }[] = [];
      const events: EventRow[] = [];
      for (const j of jobs) {
        // Write first (see sqlite/dialect.ts); a seen idempotency key inserts nothing.
        const inserted = await tx.$queryRaw<Row[]>(sql`
          INSERT INTO "jobs" ("queue", "state", "payload", "priority", "run_at", "max_attempts", "backoff",
            "idempotency_key", "tags", "metadata", "last_seq", "created_at", "updated_at")
          VALUES (${j.queue}, ${j.state}, ${this.jsonOrNull(j.payload)}, ${j.priority}, ${j.runAt},
            ${j.maxAttempts}, ${this.sqlOf.json(j.backoff)}, ${j.idempotencyKey}, ${this.sqlOf.json(j.tags)},
            ${this.jsonOrNull(j.metadata)}, 1, ${now}, ${now})
          ON CONFLICT ("queue", "idempotency_key") DO NOTHING
          RETURNING *`);
        const row = inserted[0];
        if (row) {
          const job = toJob(row, this.sqlOf);
          out.push({ job, created: true });
          events.push({
            jobId: job.id,
            seq: 1,
            type: JobEventType.ENQUEUED,
            fromState: null,
            toState: job.state,
            attempt: 0,
            data: null,
            createdAt: now,
          });
          continue;
        }
        // The key exists: either committed before, or earlier in this very batch.
        const existing = await tx.$queryRaw<Row[]>(sql`
          SELECT * FROM "jobs" WHERE "queue" = ${j.queue} AND "idempotency_key" = ${j.idempotencyKey}`);
        const found = existing[0];
        if (!found) throw new Error(`idempotent insert of ${j.queue}/${j.idempotencyKey} found no row`);
        out.push({ job: toJob(found, this.sqlOf), created: false });
      }
      const written = await this.insertEvents(tx, events);
      return { value: out, events: written };
    });
  }

  async promoteDueJobs(queues: readonly string[], now: Date, limit: number): Promise<Written<number>> {
    return this.sqlOf.transaction(this.client, async (tx) => {
      const queueFilter = queues.length > 0 ? sql`AND "queue" IN (${join([...queues])})` : empty;
      const rows = await tx.$queryRaw<Row[]>(sql`
        WITH "due" AS MATERIALIZED (
          SELECT "id" FROM "jobs"
          WHERE "state" = ${JobState.SCHEDULED} ${queueFilter} AND "run_at" <= ${now}
          ORDER BY "run_at" LIMIT ${limit}${this.sqlOf.forUpdateSkipLocked})
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
    return this.sqlOf.transaction(this.client, async (tx) => {
      // The pick is a MATERIALIZED CTE so it runs exactly once: as a plain
      // `WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` PostgreSQL may
      // re-run the subquery and update more than n rows (seen in our tests).
      const rows = await tx.$queryRaw<Row[]>(sql`
        WITH "picked" AS MATERIALIZED (
          SELECT "id" FROM "jobs"
          WHERE "state" = ${JobState.QUEUED} AND "queue" IN (${join(spec.queues)}) AND "run_at" <= ${spec.now}
          ORDER BY "priority", "run_at", "id"
          LIMIT ${spec.limit}${this.sqlOf.forUpdateSkipLocked})
        UPDATE "jobs" SET
          "state" = ${JobState.RUNNING},
          "attempts" = "attempts" + 1,
          "worker_id" = ${spec.workerId},
          "lease_token" = ${this.sqlOf.newLeaseToken},
          "lease_expires_at" = ${spec.leaseExpiresAt},
          "cancel_requested_at" = NULL,
          "progress" = NULL,
          "started_at" = ${spec.now},
          "last_seq" = "last_seq" + 1,
          "updated_at" = ${spec.now}
        WHERE "id" IN (SELECT "id" FROM "picked") AND "state" = ${JobState.QUEUED}
        RETURNING *`);
      const jobs = rows
        .map((r) => toJob(r, this.sqlOf))
        .sort((a, b) => a.priority - b.priority || a.runAt.getTime() - b.runAt.getTime() || compareIds(a.id, b.id));
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
          createdAt: spec.now,
        })),
      );
      return { value: jobs, events };
    });
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
      const eventRows = await tx.$queryRaw<Row[]>(sql`
        INSERT INTO "job_events" ("job_id", "seq", "type", "from_state", "to_state", "attempt", "data", "created_at")
        SELECT "id", "last_seq" + 1, ${spec.event.type}, "state", ${toState}, ${attempt},
          ${this.jsonOrNull(spec.event.data)}, ${spec.now}
        FROM "jobs" WHERE ${where}${this.sqlOf.forUpdate}
        RETURNING *`);
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
      const updated = await tx.$queryRaw<Row[]>(sql`
        UPDATE "jobs" SET ${join(sets, ", ")} WHERE "id" = ${id} RETURNING *`);
      const row = updated[0];
      if (!row) throw new Error(`job ${spec.jobId} vanished inside its own transition`);
      return { value: toJob(row, this.sqlOf), events: [toJobEvent(eventRow, this.sqlOf)] };
    });
  }

  async extendLease(
    jobId: string,
    leaseToken: string,
    leaseExpiresAt: Date,
    progress: JsonValue | null | undefined,
    now: Date,
  ): Promise<Job | null> {
    const progressSet = progress === undefined ? empty : sql`, "progress" = ${this.jsonOrNull(progress)}`;
    const rows = await this.client.$queryRaw<Row[]>(sql`
      UPDATE "jobs" SET "lease_expires_at" = ${leaseExpiresAt}, "updated_at" = ${now}${progressSet}
      WHERE "id" = ${BigInt(jobId)} AND "state" = ${JobState.RUNNING} AND "lease_token" = ${leaseToken}
      RETURNING *`);
    return rows[0] ? toJob(rows[0], this.sqlOf) : null;
  }

  async getJob(jobId: string): Promise<Job | null> {
    const rows = await this.client.$queryRaw<Row[]>(sql`SELECT * FROM "jobs" WHERE "id" = ${BigInt(jobId)}`);
    return rows[0] ? toJob(rows[0], this.sqlOf) : null;
  }

  async getJobByKey(queue: string, idempotencyKey: string): Promise<Job | null> {
    const rows = await this.client.$queryRaw<Row[]>(sql`
      SELECT * FROM "jobs" WHERE "queue" = ${queue} AND "idempotency_key" = ${idempotencyKey}`);
    return rows[0] ? toJob(rows[0], this.sqlOf) : null;
  }

  async listJobs(spec: ListJobsSpec): Promise<Job[]> {
    const conds: Sql[] = [sql`1 = 1`];
    if (spec.queue !== undefined) conds.push(sql`"queue" = ${spec.queue}`);
    if (spec.states !== undefined && spec.states.length > 0) {
      conds.push(sql`"state" IN (${join([...spec.states])})`);
    }
    if (spec.tag !== undefined) conds.push(this.sqlOf.hasTag(spec.tag));
    if (spec.createdAfter !== undefined) conds.push(sql`"created_at" >= ${spec.createdAfter}`);
    if (spec.createdBefore !== undefined) conds.push(sql`"created_at" < ${spec.createdBefore}`);
    if (spec.beforeId !== undefined) conds.push(sql`"id" < ${BigInt(spec.beforeId)}`);
    const rows = await this.client.$queryRaw<Row[]>(sql`
      SELECT * FROM "jobs" WHERE ${join(conds, " AND ")} ORDER BY "id" DESC LIMIT ${spec.limit}`);
    return rows.map((r) => toJob(r, this.sqlOf));
  }

  async listEvents(jobId: string, afterSeq: number, limit: number): Promise<JobEvent[]> {
    const rows = await this.client.$queryRaw<Row[]>(sql`
      SELECT * FROM "job_events" WHERE "job_id" = ${BigInt(jobId)} AND "seq" > ${afterSeq}
      ORDER BY "seq" LIMIT ${limit}`);
    return rows.map((r) => toJobEvent(r, this.sqlOf));
  }

  async findExpiredLeases(now: Date, limit: number): Promise<{ id: string; leaseToken: string }[]> {
    const rows = await this.client.$queryRaw<Row[]>(sql`
      SELECT "id", "lease_token" FROM "jobs"
      WHERE "lease_expires_at" < ${now} AND "state" = ${JobState.RUNNING}
      ORDER BY "lease_expires_at" LIMIT ${limit}`);
    return rows.map((r) => ({ id: String(r.id), leaseToken: String(r.lease_token) }));
  }

  async deleteFinishedJobs(spec: DeleteFinishedSpec): Promise<number> {
    const queueFilter = spec.queue === undefined ? empty : sql`AND "queue" = ${spec.queue}`;
    // Events go with their job through ON DELETE CASCADE (foreign_keys=ON on SQLite).
    return this.sqlOf.transaction(this.client, (tx) =>
      tx.$executeRaw(sql`
        WITH "old" AS MATERIALIZED (
          SELECT "id" FROM "jobs"
          WHERE "state" IN (${join([...spec.states])}) AND "finished_at" < ${spec.finishedBefore} ${queueFilter}
          ORDER BY "finished_at" LIMIT ${spec.limit}${this.sqlOf.forUpdateSkipLocked})
        DELETE FROM "jobs" WHERE "id" IN (SELECT "id" FROM "old")`),
    );
  }

  async close(): Promise<void> {
    await this.client.$disconnect();
  }
}

/** Compares two decimal id strings numerically. */
export function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

const IDENT = /^[a-z_]+$/;
function rawIdent(name: string): Sql {
  if (!IDENT.test(name)) throw new Error(`bad column name ${name}`);
  return raw(`"${name}"`);
}
