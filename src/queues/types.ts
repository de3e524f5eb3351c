/**
 * Queue vocabulary.
 *
 * - settings:    what an operator configures per queue (stored in `queues`).
 *                null always means "not set": no limit, or the server default.
 * - concurrency: most jobs of the queue RUNNING at once, across every worker
 *                and process (1 = one at a time).
 * - rate limit:  at most `count` claims (job starts) in any `intervalMs`-long
 *                window, enforced on a sliding log of recent start times.
 * - maxQueued:   most jobs waiting (QUEUED + SCHEDULED); an enqueue past it
 *                fails with QUEUE_FULL and writes nothing (a bulk enqueue is
 *                all or nothing).
 * - retention:   how long finished jobs (and their events) are kept.
 */
import type { BackoffPolicy } from "../jobs/backoff.ts";
import type { JobState } from "../jobs/states.ts";

export interface RateLimit {
  count: number;
  intervalMs: number;
}

export interface QueueSettings {
  name: string;
  paused: boolean;
  concurrency: number | null;
  rateLimit: RateLimit | null;
  maxQueued: number | null;
  defaultPriority: number | null;
  defaultMaxAttempts: number | null;
  defaultBackoff: BackoffPolicy | null;
  defaultLeaseSeconds: number | null;
  retainSucceededSeconds: number | null;
  retainFailedSeconds: number | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A change to a queue's settings: undefined leaves a setting alone, null clears it. */
export interface QueueSettingsPatch {
  paused?: boolean;
  concurrency?: number | null;
  rateLimit?: RateLimit | null;
  maxQueued?: number | null;
  defaultPriority?: number | null;
  defaultMaxAttempts?: number | null;
  defaultBackoff?: BackoffPolicy | null;
  defaultLeaseSeconds?: number | null;
  retainSucceededSeconds?: number | null;
  retainFailedSeconds?: number | null;
}

/** What configureQueue accepts before validation (backoff not yet parsed). */
export type ConfigureQueueInput = Omit<QueueSettingsPatch, "defaultBackoff" | "paused"> & {
  name: string;
  /** null is refused (a queue is paused or not); kept in the type for API callers. */
  paused?: boolean | null;
  defaultBackoff?: unknown;
};

export interface QueueStats {
  queue: string;
  /** Jobs of the queue in each state (every state listed, 0 when none). */
  counts: Record<JobState, number>;
  /** Jobs whose current run started in the last minute. */
  startedLastMinute: number;
  /** Jobs that finished (succeeded, failed or were cancelled) in the last minute. */
  finishedLastMinute: number;
  /** Over the last RECENT_RUNS succeeded jobs; null when there are none. */
  averageRunMs: number | null;
  p95RunMs: number | null;
  /** How long the oldest ready (QUEUED) job has been claimable; null when none is. */
  oldestWaitingMs: number | null;
  /**
   * How long a job enqueued now would wait before it starts, from the queue's
   * depth, concurrency, rate limit and recent run times. null when it cannot be
   * estimated (paused, or no run time seen yet and no free slot).
   */
  estimatedWaitMs: number | null;
}
