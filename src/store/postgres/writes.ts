/**
 * The hot writes on PostgreSQL as single statements: claim (queues without
 * limits), completion, promotion and enqueue (queues without maxQueued). Each
 * is one data-modifying statement run outside an explicit transaction, so it
 * is one round trip and one commit, and a statement that changes nothing
 * (an idle worker's claim, a promotion with nothing due) writes no WAL and
 * waits for no flush. They replace transactions of 4–10 round trips, each with
 * an explicit transaction id and therefore a WAL flush even when nothing
 * changed. The store falls back to its transactions (with row locks) where a
 * queue has a limit.
 *
 * The event-id rule (events/horizon.ts): a transaction must hold its
 * transaction id before it draws an event id. The transactions of the store
 * take it explicitly (postgres/dialect.ts). In these statements it holds by
 * data dependency, whatever order the executor runs the CTEs in: every event
 * row is built from a row returned by the UPDATE or INSERT of `jobs` (the
 * `events` CTE selects from it), and a row is returned only after the tuple
 * was written, which assigns the transaction id (heap_insert, heap_update
 * and heap_lock_tuple all call GetCurrentTransactionId first); the event id's
 * nextval() is evaluated for that row afterwards, as part of building it. No
 * event row, no nextval(). test/subscriptions/cross-process.test.ts and
 * job-events.test.ts would see a violation as a skipped or reordered event.
 *
 * The CTEs below are independent of their order of execution except through
 * such references; each reads the snapshot the statement started with.
 * Parameters that are lists go in as arrays (`unnest`), so the text of a
 * statement does not depend on the batch size and a 10,000-job enqueue stays
 * far below the 65,535-parameter limit.
 */
import { empty, join, raw, sql, type Sql } from "../sql.ts";
import { JobEventType, JobState } from "../../jobs/states.ts";
import type { JsonValue } from "../../jobs/types.ts";
import type { NewJob } from "../job-store.ts";
import { prepared } from "../sql-client.ts";

/**
 * A state or event type as an SQL literal, not a parameter: the statements
 * here are prepared (see sql-client.ts `prepared`), and only with the literal
 * can a generic plan see that `"state" = 'QUEUED'` matches the partial index
 * jobs_claim_idx.
 */
function lit(value: JobState | JobEventType): Sql {
  if (!/^[A-Za-z_]+$/.test(value)) throw new Error(`not a state or event type: ${value}`);
  return raw(`'${value}'`);
}

/**
 * The body of an `"events"` CTE: one `type` event (from → to) per row of the
 * CTE `source`, which returns the changed jobs' "id", "last_seq" and
 * "attempts". The INSERT reads rows the statement has already written, so its
 * event ids are drawn after them (the rule at the top of this file).
 */
function transitionEvents(
  source: "claimed" | "finished" | "promoted",
  type: JobEventType,
  from: JobState,
  to: JobState,
  data: Sql,
  now: Date,
): Sql {
  return sql`
      INSERT INTO "job_events" ("job_id", "seq", "type", "from_state", "to_state", "attempt", "data", "created_at")
      SELECT "id", "last_seq", ${lit(type)}, ${lit(from)}, ${lit(to)}, "attempts", ${data}, ${now}
      FROM ${raw(`"${source}"`)}
      RETURNING "id", "job_id"`;
}

export interface OpenClaim {
  queues: readonly string[];
  workerId: string;
  /** The SET list of a claim given the lease expiry expression (the store's, shared with its transactional claim). */
  claimSet: (leaseExpiresAt: Sql) => Sql;
  limit: number;
  /** Lease length; undefined = each queue's default, else `defaultLeaseSeconds`. */
  leaseSeconds: number | undefined;
  defaultLeaseSeconds: number;
  now: Date;
  /** Claim nothing, and say so (`_due`), when a SCHEDULED job of the queues is due (promote it first). */
  checkDue: boolean;
}

/**
 * QUEUED → RUNNING for up to `limit` ready jobs of the queues that are not
 * paused, with their `claimed` events, unless one of the queues has a
 * concurrency or rate limit: then it claims nothing and says so (`_limited`),
 * and the store claims in a transaction under the queue row locks. The queue
 * settings are read by the statement itself, so a change committed before it
 * starts applies. With `checkDue`, it also claims nothing when a SCHEDULED job
 * of the queues is due (`_due`): the store promotes first and asks again, so
 * due jobs compete in claim order, and a claim with nothing due (the usual
 * case) costs one round trip instead of a promotion statement plus the claim.
 *
 * Returns one row with `_limited`, `_due` and no job when nothing was
 * claimed, else one row per claimed job with `_event_id`.
 */
export function claimOpenQueuesSql(c: OpenClaim): Sql {
  const names = join([...c.queues]);
  // An index probe of jobs_scheduled_idx: is a SCHEDULED job of the queues due?
  const dueSql = sql`EXISTS (SELECT 1 FROM "jobs"
    WHERE "state" = ${lit(JobState.SCHEDULED)} AND "queue" IN (${names}) AND "run_at" <= ${c.now})`;
  const leaseExpiresAt =
    c.leaseSeconds === undefined
      ? sql`CAST(${c.now} AS timestamp(3)) + make_interval(secs => COALESCE(
          (SELECT "default_lease_seconds" FROM "settings" WHERE "settings"."name" = "jobs"."queue"),
          ${c.defaultLeaseSeconds}))`
      : sql`${new Date(c.now.getTime() + c.leaseSeconds * 1000)}`;
  return prepared(sql`
    WITH "settings" AS MATERIALIZED (
      SELECT "name", "paused", "default_lease_seconds",
        ("concurrency" IS NOT NULL OR "rate_limit_count" IS NOT NULL) AND NOT "paused" AS "limited"
      FROM "queues" WHERE "name" IN (${names})),
    "gate" AS MATERIALIZED (
      SELECT EXISTS (SELECT 1 FROM "settings" WHERE "limited") AS "limited",
        ${c.checkDue ? dueSql : sql`FALSE`} AS "due"),
    "picked" AS MATERIALIZED (
      SELECT "id" FROM "jobs"
      WHERE "state" = ${lit(JobState.QUEUED)} AND "queue" IN (${names}) AND "run_at" <= ${c.now}
        AND "queue" NOT IN (SELECT "name" FROM "settings" WHERE "paused")
        AND NOT (SELECT "limited" OR "due" FROM "gate")
      ORDER BY "priority", "run_at", "id"
      LIMIT ${c.limit} FOR UPDATE SKIP LOCKED),
    "claimed" AS (
      UPDATE "jobs" SET ${c.claimSet(leaseExpiresAt)}
      WHERE "id" IN (SELECT "id" FROM "picked") AND "state" = ${lit(JobState.QUEUED)}
      RETURNING *),
    "events" AS (${transitionEvents(
      "claimed",
      JobEventType.CLAIMED,
      JobState.QUEUED,
      JobState.RUNNING,
      sql`${JSON.stringify({ workerId: c.workerId })}::jsonb`,
      c.now,
    )})
    SELECT "g"."limited" AS "_limited", "g"."due" AS "_due", "j".*
    FROM "gate" AS "g" LEFT JOIN (
      SELECT "c".*, "e"."id" AS "_event_id" FROM "claimed" AS "c" JOIN "events" AS "e" ON "e"."job_id" = "c"."id"
    ) AS "j" ON TRUE`);
}

export interface Completion {
  jobId: string;
  leaseToken: string;
  result: JsonValue | null;
}

/**
 * RUNNING → SUCCEEDED for each item whose job is RUNNING under its token,
 * with its `succeeded` event; rows with `_event_id`. Job ids are distinct.
 * PostgreSQL re-checks the guard on the newest row version after a lock wait.
 */
export function completeJobsSql(items: readonly Completion[], now: Date): Sql {
  const ids = items.map((i) => i.jobId);
  const tokens = items.map((i) => i.leaseToken);
  const results = items.map((i) => (i.result === null ? null : JSON.stringify(i.result)));
  return prepared(sql`
    WITH "done" AS (
      SELECT * FROM unnest(CAST(${ids} AS bigint[]), CAST(${tokens} AS text[]), CAST(${results} AS jsonb[]))
        AS "d" ("id", "token", "result")),
    "finished" AS (
      UPDATE "jobs" SET "state" = ${lit(JobState.SUCCEEDED)}, "result" = "done"."result", "lease_expires_at" = NULL,
        "finished_at" = ${now}, "last_seq" = "jobs"."last_seq" + 1, "updated_at" = ${now}
      FROM "done"
      WHERE "jobs"."id" = "done"."id" AND "jobs"."lease_token" = "done"."token"
        AND "jobs"."state" = ${lit(JobState.RUNNING)}
      RETURNING "jobs".*),
    "events" AS (${transitionEvents("finished", JobEventType.SUCCEEDED, JobState.RUNNING, JobState.SUCCEEDED, sql`NULL`, now)})
    SELECT "f".*, "e"."id" AS "_event_id" FROM "finished" AS "f" JOIN "events" AS "e" ON "e"."job_id" = "f"."id"`);
}

/**
 * SCHEDULED → QUEUED for up to `limit` due jobs of `queues` (all when empty),
 * with their `promoted` events; rows (`job_id`, `last_seq`, `attempts`,
 * `_event_id`). Picks with SKIP LOCKED, so promoters never wait on each other.
 */
export function promoteDueJobsSql(queues: readonly string[], now: Date, limit: number): Sql {
  const queueFilter = queues.length > 0 ? sql`AND "queue" IN (${join([...queues])})` : empty;
  return prepared(sql`
    WITH "due" AS MATERIALIZED (
      SELECT "id" FROM "jobs"
      WHERE "state" = ${lit(JobState.SCHEDULED)} ${queueFilter} AND "run_at" <= ${now}
      ORDER BY "run_at" LIMIT ${limit} FOR UPDATE SKIP LOCKED),
    "promoted" AS (
      UPDATE "jobs" SET "state" = ${lit(JobState.QUEUED)}, "last_seq" = "last_seq" + 1, "updated_at" = ${now}
      WHERE "id" IN (SELECT "id" FROM "due") AND "state" = ${lit(JobState.SCHEDULED)}
      RETURNING "id", "last_seq", "attempts"),
    "events" AS (${transitionEvents("promoted", JobEventType.PROMOTED, JobState.SCHEDULED, JobState.QUEUED, sql`NULL`, now)})
    SELECT "p"."id" AS "job_id", "p"."last_seq", "p"."attempts", "e"."id" AS "_event_id"
    FROM "promoted" AS "p" JOIN "events" AS "e" ON "e"."job_id" = "p"."id"`);
}

/**
 * Inserts `jobs` (in list order: ids follow it) with their `enqueued` events,
 * creating the rows of queues seen for the first time; a seen (queue,
 * idempotencyKey) inserts nothing. With `checkBounded`, writes nothing at all
 * (not even a queue row) when one of the queues has a maxQueued (`_bounded`),
 * since that needs the queue row lock and a count after the insert (the
 * store's transaction).
 *
 * Returns one row with `_bounded` and no job when nothing was inserted, else
 * one row per inserted job with `_ord` (its index in `jobs`) and `_event_id`.
 * The ids are drawn before the insert (in list order), which is what ties
 * each returned row to its input exactly.
 */
export function insertJobsSql(
  jobs: readonly NewJob[],
  now: Date,
  checkBounded: boolean,
  defaults: { maxAttempts: number; backoff: unknown },
): Sql {
  const names = [...new Set(jobs.map((j) => j.queue))].sort();
  const json = (value: JsonValue | null): string | null => (value === null ? null : JSON.stringify(value));
  const bounded = checkBounded
    ? sql`EXISTS (SELECT 1 FROM "queues" WHERE "name" = ANY (CAST(${names} AS text[])) AND "max_queued" IS NOT NULL)`
    : sql`FALSE`;
  return prepared(sql`
    WITH "gate" AS MATERIALIZED (SELECT ${bounded} AS "bounded"),
    "new_queues" AS (
      INSERT INTO "queues" ("name", "created_at", "updated_at")
      SELECT "n", ${now}, ${now} FROM unnest(CAST(${names} AS text[])) AS "q" ("n")
      WHERE NOT (SELECT "bounded" FROM "gate")
      ON CONFLICT ("name") DO NOTHING
      RETURNING "name"),
    "input" AS MATERIALIZED (
      SELECT * FROM unnest(
        CAST(${jobs.map((j) => j.queue)} AS text[]),
        CAST(${jobs.map((j) => j.state)} AS text[]),
        CAST(${jobs.map((j) => json(j.payload))} AS jsonb[]),
        CAST(${jobs.map((j) => j.priority)} AS integer[]),
        CAST(${jobs.map((j) => j.runAt)} AS timestamp(3)[]),
        CAST(${jobs.map((j) => j.maxAttempts)} AS integer[]),
        CAST(${jobs.map((j) => (j.backoff === null ? null : JSON.stringify(j.backoff)))} AS jsonb[]),
        CAST(${jobs.map((j) => j.idempotencyKey)} AS text[]),
        CAST(${jobs.map((j) => JSON.stringify(j.tags))} AS jsonb[]),
        CAST(${jobs.map((j) => json(j.metadata))} AS jsonb[])
      ) WITH ORDINALITY AS "i" ("queue", "state", "payload", "priority", "run_at", "max_attempts", "backoff",
        "idempotency_key", "tags", "metadata", "ord")
      WHERE NOT (SELECT "bounded" FROM "gate")),
    "ids" AS MATERIALIZED (
      SELECT "ord", nextval('"jobs_id_seq"') AS "id" FROM "input" ORDER BY "ord"),
    "inserted" AS (
      INSERT INTO "jobs" ("id", "queue", "state", "payload", "priority", "run_at", "max_attempts", "backoff",
        "idempotency_key", "tags", "metadata", "last_seq", "created_at", "updated_at")
      SELECT "ids"."id", "i"."queue", "i"."state", "i"."payload",
        COALESCE("i"."priority", "q"."default_priority", 0), "i"."run_at",
        COALESCE("i"."max_attempts", "q"."default_max_attempts", ${defaults.maxAttempts}),
        COALESCE("i"."backoff", "q"."default_backoff", ${JSON.stringify(defaults.backoff)}::jsonb),
        "i"."idempotency_key", "i"."tags", "i"."metadata", 1, ${now}, ${now}
      FROM "input" AS "i" JOIN "ids" ON "ids"."ord" = "i"."ord"
        -- Queue defaults for what the caller left out (a queue created by this
        -- statement is not visible here, and has none).
        LEFT JOIN "queues" AS "q" ON "q"."name" = "i"."queue"
      ORDER BY "i"."ord"
      ON CONFLICT ("queue", "idempotency_key") WHERE "idempotency_key" IS NOT NULL DO NOTHING
      RETURNING *),
    "events" AS (
      INSERT INTO "job_events" ("job_id", "seq", "type", "from_state", "to_state", "attempt", "data", "created_at")
      SELECT "id", 1, ${lit(JobEventType.ENQUEUED)}, NULL, "state", 0, NULL, ${now} FROM "inserted"
      RETURNING "id", "job_id")
    SELECT "g"."bounded" AS "_bounded", "j".*
    FROM "gate" AS "g" LEFT JOIN (
      SELECT "x".*, "ids"."ord" AS "_ord", "e"."id" AS "_event_id"
      FROM "inserted" AS "x" JOIN "ids" ON "ids"."id" = "x"."id" JOIN "events" AS "e" ON "e"."job_id" = "x"."id"
    ) AS "j" ON TRUE`);
}
