/** Maps raw rows (snake_case, dialect-encoded) to the domain types. */
import type { BackoffPolicy } from "../jobs/backoff.ts";
import type { JobEventType, JobState } from "../jobs/states.ts";
import type { Job, JobEvent, JsonValue } from "../jobs/types.ts";
import type { DialectSql } from "./dialect-sql.ts";
import type { ApiTokenRow, QueueRow } from "./job-store.ts";
import type { Row } from "./sql-client.ts";

function date(value: unknown): Date {
  return value instanceof Date ? value : new Date(value as string);
}

function optionalDate(value: unknown): Date | null {
  return value === null || value === undefined ? null : date(value);
}

export function toJob(row: Row, dialect: DialectSql): Job {
  const json = (value: unknown): JsonValue | null =>
    value === null || value === undefined ? null : (dialect.decodeJson(value) as JsonValue);
  const errorMessage = row.error_message as string | null;
  return {
    id: String(row.id),
    queue: row.queue as string,
    state: row.state as JobState,
    payload: json(row.payload),
    result: json(row.result),
    error:
      errorMessage === null
        ? null
        : {
            message: errorMessage,
            code: (row.error_code as string | null) ?? null,
            details: json(row.error_details),
          },
    priority: Number(row.priority),
    runAt: date(row.run_at),
    attempts: Number(row.attempts),
    maxAttempts: Number(row.max_attempts),
    backoff: json(row.backoff) as unknown as BackoffPolicy,
    idempotencyKey: (row.idempotency_key as string | null) ?? null,
    workerId: (row.worker_id as string | null) ?? null,
    leaseToken: (row.lease_token as string | null) ?? null,
    leaseExpiresAt: optionalDate(row.lease_expires_at),
    cancelRequestedAt: optionalDate(row.cancel_requested_at),
    progress: json(row.progress),
    tags: (json(row.tags) as string[] | null) ?? [],
    metadata: json(row.metadata),
    lastSeq: Number(row.last_seq),
    createdAt: date(row.created_at),
    startedAt: optionalDate(row.started_at),
    finishedAt: optionalDate(row.finished_at),
    updatedAt: date(row.updated_at),
  };
}

export function toJobEvent(row: Row, dialect: DialectSql): JobEvent {
  return {
    id: String(row.id),
    jobId: String(row.job_id),
    seq: Number(row.seq),
    type: row.type as JobEventType,
    fromState: (row.from_state as JobState | null) ?? null,
    toState: row.to_state as JobState,
    attempt: Number(row.attempt),
    data: row.data === null || row.data === undefined ? null : (dialect.decodeJson(row.data) as JsonValue),
    // Only operator actions record one (see the api_tokens migration).
    ...(typeof row.actor === "string" && { actor: row.actor }),
    createdAt: date(row.created_at),
  };
}

export function toApiToken(row: Row, dialect: DialectSql): ApiTokenRow {
  return {
    name: String(row.name),
    tokenHash: String(row.token_hash),
    role: String(row.role),
    queues: dialect.decodeJson(row.queues) as string[],
    createdAt: date(row.created_at),
    expiresAt: optionalDate(row.expires_at),
  };
}

function optionalNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

export function toQueue(row: Row, dialect: DialectSql): QueueRow {
  const count = optionalNumber(row.rate_limit_count);
  const intervalMs = optionalNumber(row.rate_limit_interval_ms);
  const backoff =
    row.default_backoff === null || row.default_backoff === undefined ? null : dialect.decodeJson(row.default_backoff);
  const starts =
    row.recent_starts === null || row.recent_starts === undefined ? [] : dialect.decodeJson(row.recent_starts);
  return {
    name: row.name as string,
    // SQLite returns booleans as 0/1.
    paused: row.paused === true || row.paused === 1 || row.paused === 1n,
    concurrency: optionalNumber(row.concurrency),
    rateLimit: count === null || intervalMs === null ? null : { count, intervalMs },
    maxQueued: optionalNumber(row.max_queued),
    defaultPriority: optionalNumber(row.default_priority),
    defaultMaxAttempts: optionalNumber(row.default_max_attempts),
    defaultBackoff: backoff as BackoffPolicy | null,
    defaultLeaseSeconds: optionalNumber(row.default_lease_seconds),
    retainSucceededSeconds: optionalNumber(row.retain_succeeded_seconds),
    retainFailedSeconds: optionalNumber(row.retain_failed_seconds),
    recentStarts: Array.isArray(starts) ? starts.map(Number) : [],
    createdAt: date(row.created_at),
    updatedAt: date(row.updated_at),
  };
}
