/**
 * Job states and the one transition table of jobwire.
 *
 * Every state write in the store is guarded by the `from` states listed here
 * (`UPDATE … WHERE state IN (from)`), and the affected-row count decides what
 * happened. Nothing else in the code base decides which transitions are legal.
 */

export const JobState = Object.freeze({
  /** runAt is in the future (first run or retry backoff). */
  SCHEDULED: "SCHEDULED",
  /** Ready to be claimed. */
  QUEUED: "QUEUED",
  /** Leased to a worker. */
  RUNNING: "RUNNING",
  SUCCEEDED: "SUCCEEDED",
  /** Dead-lettered: non-retryable failure or attempts exhausted. */
  FAILED: "FAILED",
  CANCELLED: "CANCELLED",
} as const);

export type JobState = (typeof JobState)[keyof typeof JobState];

export const ALL_STATES: readonly JobState[] = Object.freeze(Object.values(JobState));
export const TERMINAL_STATES: readonly JobState[] = Object.freeze([
  JobState.SUCCEEDED,
  JobState.FAILED,
  JobState.CANCELLED,
]);

export function isJobState(value: string): value is JobState {
  return (ALL_STATES as readonly string[]).includes(value);
}

export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.includes(state);
}

/** What happened to a job: the `type` of its JobEvent. */
export const JobEventType = Object.freeze({
  ENQUEUED: "enqueued",
  PROMOTED: "promoted",
  CLAIMED: "claimed",
  SUCCEEDED: "succeeded",
  RETRY_SCHEDULED: "retry_scheduled",
  FAILED: "failed",
  LEASE_EXPIRED: "lease_expired",
  CANCEL_REQUESTED: "cancel_requested",
  CANCELLED: "cancelled",
  RETRIED: "retried",
  RESCHEDULED: "rescheduled",
  /** Its worker gave back a job it had claimed but not started (prefetch, shutdown): RUNNING → QUEUED, attempt not counted. */
  RELEASED: "released",
} as const);

export type JobEventType = (typeof JobEventType)[keyof typeof JobEventType];

export interface Transition {
  readonly from: readonly JobState[];
  /** Target state(s); the service picks one of these (e.g. retry vs. dead-letter). */
  readonly to: readonly JobState[];
}

/**
 * The lifecycle of ../shared/DESIGN.md as data. Keys are operations; a
 * transition not listed here raises INVALID_TRANSITION.
 */
export const TRANSITIONS = Object.freeze({
  /** runAt reached (done lazily inside claim and by the maintenance loop). */
  promote: { from: [JobState.SCHEDULED], to: [JobState.QUEUED] },
  claim: { from: [JobState.QUEUED], to: [JobState.RUNNING] },
  /** Heartbeats and cancel requests on a running job keep it RUNNING. */
  heartbeat: { from: [JobState.RUNNING], to: [JobState.RUNNING] },
  complete: { from: [JobState.RUNNING], to: [JobState.SUCCEEDED] },
  /** Retryable with attempts left → SCHEDULED; otherwise FAILED; if a cancel was requested → CANCELLED. */
  fail: { from: [JobState.RUNNING], to: [JobState.SCHEDULED, JobState.FAILED, JobState.CANCELLED] },
  /** Same outcomes as fail, reached by the sweeper when a lease runs out. */
  expireLease: {
    from: [JobState.RUNNING],
    to: [JobState.SCHEDULED, JobState.FAILED, JobState.CANCELLED],
  },
  /**
   * A worker gives back a job it claimed but never started (a prefetched job
   * at shutdown, or one whose lease would lapse before a slot frees): QUEUED
   * at once, the claim's attempt taken back, no backoff. CANCELLED instead
   * when a cancel was requested meanwhile.
   */
  release: { from: [JobState.RUNNING], to: [JobState.QUEUED, JobState.CANCELLED] },
  cancel: { from: [JobState.QUEUED, JobState.SCHEDULED], to: [JobState.CANCELLED] },
  /** Cancelling a running job only records the request; the worker or lease expiry ends it. */
  requestCancel: { from: [JobState.RUNNING], to: [JobState.RUNNING] },
  retry: { from: [JobState.FAILED, JobState.CANCELLED], to: [JobState.QUEUED] },
  reschedule: {
    from: [JobState.QUEUED, JobState.SCHEDULED],
    to: [JobState.QUEUED, JobState.SCHEDULED],
  },
} as const satisfies Record<string, Transition>);

export type Operation = keyof typeof TRANSITIONS;

export function canTransition(operation: Operation, from: JobState, to: JobState): boolean {
  const t: Transition = TRANSITIONS[operation];
  return t.from.includes(from) && t.to.includes(to);
}
