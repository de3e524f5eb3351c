/**
 * Glossary
 * - job: one unit of work with a JSON payload, owned by one queue.
 * - queue: a name jobs are enqueued into and claimed from; created on first use.
 * - claim: atomically moving QUEUED jobs to RUNNING and leasing them to a worker.
 * - lease: (workerId, leaseToken, leaseExpiresAt). Only the holder of the current
 *   token may heartbeat, complete or fail the job; a stale token gets LEASE_LOST.
 * - heartbeat: a worker extending its lease (and reporting progress) while it runs.
 * - attempt: the number of times a job has been claimed; maxAttempts bounds it.
 * - backoff: the delay before a retry, from the job's BackoffPolicy.
 * - event: one row per state transition of a job. `seq` numbers a job's events
 *   1, 2, 3, … with no gap; `id` is global and increasing.
 * - sweep: turning RUNNING jobs whose lease expired into retryable failures.
 * - retention: deleting finished jobs (and their events) past a given age.
 * - promotion: SCHEDULED → QUEUED once runAt is reached.
 * - release: a worker giving back a job it claimed but did not start (prefetch):
 *   RUNNING → QUEUED at once, the claim's attempt taken back.
 *
 * Ids are decimal strings (the database holds 64-bit integers).
 */
import type { BackoffPolicy } from "./backoff.ts";
import type { InvalidTransitionError, LeaseLostError, NotFoundError } from "./errors.ts";
import type { JobEventType, JobState } from "./states.ts";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface JobError {
  message: string;
  code: string | null;
  details: JsonValue | null;
}

export interface Job {
  id: string;
  queue: string;
  state: JobState;
  payload: JsonValue | null;
  result: JsonValue | null;
  error: JobError | null;
  priority: number;
  runAt: Date;
  attempts: number;
  maxAttempts: number;
  backoff: BackoffPolicy;
  idempotencyKey: string | null;
  workerId: string | null;
  leaseToken: string | null;
  leaseExpiresAt: Date | null;
  cancelRequestedAt: Date | null;
  progress: JsonValue | null;
  tags: string[];
  metadata: JsonValue | null;
  /** seq of the job's newest event. */
  lastSeq: number;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  updatedAt: Date;
}

/** A job handed to a worker by claim: the lease fields are set. */
export interface LeasedJob extends Job {
  workerId: string;
  leaseToken: string;
  leaseExpiresAt: Date;
}

export interface JobEvent {
  id: string;
  jobId: string;
  seq: number;
  type: JobEventType;
  fromState: JobState | null;
  toState: JobState;
  attempt: number;
  data: JsonValue | null;
  /** The API token name of the operator whose call wrote it (cancel, retry, reschedule); absent otherwise. */
  actor?: string;
  createdAt: Date;
}

/** An event with the queue of its job, as the live event feed carries it. */
export interface JobEventInQueue extends JobEvent {
  queue: string;
}

export interface EnqueueInput {
  queue: string;
  payload?: JsonValue | null;
  /** Lower runs first. Default 0. */
  priority?: number;
  /** A Date or an ISO-8601 string. Exclusive with delayMs. */
  runAt?: Date | string;
  delayMs?: number;
  maxAttempts?: number;
  backoff?: BackoffPolicy;
  /** Unique per queue: enqueuing a seen key returns the existing job with created=false. */
  idempotencyKey?: string;
  tags?: string[];
  metadata?: JsonValue | null;
}

export interface EnqueueResult {
  job: Job;
  created: boolean;
}

export interface ClaimInput {
  queues: string[];
  workerId: string;
  limit?: number;
  leaseSeconds?: number;
}

export interface HeartbeatInput {
  jobId: string;
  leaseToken: string;
  progress?: JsonValue | null;
  /** Extend the lease to now + leaseSeconds (default: the job's queue default, 30 s). */
  leaseSeconds?: number;
}

export interface HeartbeatResult {
  job: Job;
  cancelRequested: boolean;
}

export interface CompleteInput {
  jobId: string;
  leaseToken: string;
  result?: JsonValue | null;
}

/** What completeMany did for one item: the finished job, or why not (nothing written for it). */
export type CompleteOutcome =
  | { jobId: string; job: Job; error: null }
  | { jobId: string; job: null; error: NotFoundError | LeaseLostError | InvalidTransitionError };

export interface ReleaseInput {
  jobId: string;
  leaseToken: string;
}

/** What releaseMany did for one item: the job back in QUEUED, or why not (nothing written for it). */
export type ReleaseOutcome = CompleteOutcome;

export interface FailInput {
  jobId: string;
  leaseToken: string;
  error: { message: string; code?: string | null; details?: JsonValue | null };
  /** Default true: the job is retried while attempts remain. */
  retryable?: boolean;
  /** Overrides the backoff policy for this retry. */
  retryInMs?: number;
}

export interface RescheduleInput {
  jobId: string;
  runAt?: Date | string;
  delayMs?: number;
  priority?: number;
}

export interface JobFilter {
  queue?: string;
  states?: JobState[];
  /** Jobs carrying every one of these tags. */
  tags?: string[];
  createdAfter?: Date | string;
  createdBefore?: Date | string;
}

export interface JobPage {
  jobs: Job[];
  /** The cursor of each job of `jobs` (pass one as `after` to continue after it). */
  cursors: string[];
  /** Pass as `after` for the next page; null on the last page. */
  nextCursor: string | null;
}

export interface PurgeInput {
  queue: string;
  /** Finished states to delete (default all three: SUCCEEDED, FAILED, CANCELLED). */
  states?: JobState[];
  /** Only jobs that finished before this time (default: now, i.e. every finished job). */
  finishedBefore?: Date | string;
}

export interface PruneInput {
  /** Delete SUCCEEDED jobs that finished before this time. */
  succeededBefore?: Date;
  /** Delete FAILED and CANCELLED jobs that finished before this time. */
  failedBefore?: Date;
  queue?: string;
  /** Rows deleted per transaction (default 500). */
  batchSize?: number;
  /** Stop after this many batches per state group (default: until nothing is left). */
  maxBatches?: number;
}
