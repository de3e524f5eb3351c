/**
 * The documented bounds of every input. Validation lives in the job service,
 * before any write; these constants are what README and the API docs quote.
 */
export const LIMITS = Object.freeze({
  queueNameMaxLength: 128,
  queueNamePattern: /^[A-Za-z0-9_.:-]+$/,
  priorityMin: -1_000_000,
  priorityMax: 1_000_000,
  maxAttemptsMin: 1,
  maxAttemptsMax: 1_000,
  defaultMaxAttempts: 3,
  /** Default cap on the JSON size of payload, result, progress, metadata and error details. */
  defaultMaxPayloadBytes: 256 * 1024,
  idempotencyKeyMaxLength: 255,
  tagsMax: 32,
  tagMaxLength: 64,
  workerIdMaxLength: 255,
  errorMessageMaxLength: 10_000,
  errorCodeMaxLength: 128,
  claimLimitMax: 1_000,
  /** Most jobs one completeJobs call may complete. */
  completeBatchMax: 1_000,
  /** Most jobs one releaseJobs call may release. */
  releaseBatchMax: 1_000,
  leaseSecondsMin: 1,
  leaseSecondsMax: 24 * 3600,
  defaultLeaseSeconds: 30,
  /** Furthest runAt / delay accepted: 10 years. */
  maxDelayMs: 10 * 365 * 24 * 3_600_000,
  bulkEnqueueMax: 10_000,
  listPageMax: 1_000,
  eventsPageMax: 10_000,
  /** Most recent events per job a page of jobs may ask for (Job.events(last)). */
  recentEventsMax: 100,
});
