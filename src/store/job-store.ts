/**
 * The store contract: the only code that touches the database implements it.
 * Each method is one transaction (or one atomic statement); each header lists
 * its guards and outcomes. The job service decides *what* should happen; the
 * store makes it happen atomically or reports that the guard did not hold.
 */
import type { BackoffPolicy } from "../jobs/backoff.ts";
import type { JobEventType, JobState } from "../jobs/states.ts";
import type { Job, JobEvent, JobEventInQueue, JsonValue } from "../jobs/types.ts";
import type { QueueSettings, QueueSettingsPatch } from "../queues/types.ts";

export type Dialect = "sqlite" | "postgres";

/**
 * A validated job ready to insert. A null priority, maxAttempts or backoff
 * takes the queue's default (else the built-in one: 0,
 * LIMITS.defaultMaxAttempts, DEFAULT_BACKOFF), read by the insert itself, so
 * it is the queue's setting at the moment of the insert and costs no
 * separate read.
 */
export interface NewJob {
  queue: string;
  state: JobState;
  payload: JsonValue | null;
  priority: number | null;
  runAt: Date;
  maxAttempts: number | null;
  backoff: BackoffPolicy | null;
  idempotencyKey: string | null;
  tags: string[];
  metadata: JsonValue | null;
}

/** Columns a transition may change besides state (undefined = unchanged). */
export interface JobPatch {
  result?: JsonValue | null;
  errorMessage?: string | null;
  errorCode?: string | null;
  errorDetails?: JsonValue | null;
  runAt?: Date;
  priority?: number;
  attempts?: number;
  workerId?: string | null;
  leaseToken?: string | null;
  leaseExpiresAt?: Date | null;
  cancelRequestedAt?: Date | null;
  progress?: JsonValue | null;
  startedAt?: Date | null;
  finishedAt?: Date | null;
}

export interface TransitionSpec {
  jobId: string;
  /** Guard: the job's state must be one of these. */
  from: readonly JobState[];
  /** New state; omit to keep the state (cancel request). */
  to?: JobState;
  /** Guard: the job's current lease token. */
  leaseToken?: string;
  /** Guard: the job's newest event seq (compare-and-set after a read). */
  expectedSeq?: number;
  /** Guard: the lease expired before this instant (used by the sweeper). */
  leaseExpiredBefore?: Date;
  patch: JobPatch;
  /** actor: the API token name of the operator whose call this is (null/absent: none). */
  event: { type: JobEventType; data?: JsonValue | null; actor?: string | null };
  now: Date;
}

export interface ClaimSpec {
  queues: string[];
  workerId: string;
  limit: number;
  /** Lease length; undefined = each queue's default lease, else LIMITS.defaultLeaseSeconds. */
  leaseSeconds: number | undefined;
  /**
   * Read once the queue locks are held and the running jobs counted, so that
   * a claim's start time is later than every finish its concurrency check
   * counted.
   */
  clock: () => Date;
  /** The queue policy (queues/policy.ts), decided by the caller and applied by the store under the lock. */
  policy: ClaimPolicy;
  /**
   * First promote up to this many due SCHEDULED jobs of `queues` (as
   * promoteDueJobs does), so that they compete in this claim. Undefined: no
   * promotion.
   */
  promoteDue?: number;
}

export interface ClaimPolicy {
  /** Jobs `queue` may start now, given `running` RUNNING jobs; at most `wanted`. */
  allowance(queue: QueueRow, running: number, now: Date, wanted: number): number;
  /** The queue's start log after `started` claims at `now`. */
  recordStarts(queue: QueueRow, now: Date, started: number): number[];
}

/** A queue's settings plus the store-internal rate-limit log. */
export interface QueueRow extends QueueSettings {
  /** Start times (epoch ms, oldest first) of the latest rateLimit.count claims. */
  recentStarts: number[];
}

/** What queue stats are computed from; every figure read through an index. */
/** A connection pool's figures (pg.Pool's totalCount, idleCount, waitingCount and max). */
export interface PoolStats {
  /** Connections open, busy or idle. */
  total: number;
  idle: number;
  /** Requests waiting for a connection. */
  waiting: number;
  /** Most connections the pool opens. */
  max: number;
}

export interface QueueStatsRow {
  /** Count by state (states with no job may be missing). */
  counts: Record<string, number>;
  startedSince: number;
  finishedSince: number;
  /** Run times (ms) of the newest RECENT_RUNS succeeded jobs. */
  recentRunsMs: number[];
  oldestReadyRunAt: Date | null;
  /** QUEUED jobs a new job of priority `aheadOfPriority` would wait behind (priority <= it). */
  ahead: number;
  /** Start times of RUNNING jobs (at most RUNNING_SAMPLE). */
  runningStartedAt: Date[];
}

export interface ListJobsSpec {
  queue?: string;
  states?: readonly JobState[];
  /** Jobs carrying every one of these tags. */
  tags?: readonly string[];
  createdAfter?: Date;
  createdBefore?: Date;
  /** Return jobs with id < beforeId (pages go newest first). */
  beforeId?: string;
  limit: number;
}

export interface DeleteFinishedSpec {
  states: readonly JobState[];
  finishedBefore: Date;
  queue: string;
  limit: number;
}

/** Events in a range of ids, for replaying what a subscriber missed. */
export interface EventRangeSpec {
  /** Events with id > afterId … */
  afterId: string;
  /** … and id <= upToId. */
  upToId: string;
  /** Only events of jobs in these queues (all when omitted). */
  queues?: readonly string[];
  /** Only events whose toState is one of these (all when omitted). */
  states?: readonly JobState[];
  /** Only events of these jobs (all when omitted). */
  jobIds?: readonly string[];
  limit: number;
}

/** A page of the committed event log, read by the live event feed. */
export interface EventLogPage {
  /** Events with id > the asked id, in id order, at most the asked limit. */
  events: JobEventInQueue[];
  /** The newest event id visible to the read ("0" when there is none). */
  maxId: string;
  /** The read's snapshot and running transactions (PostgreSQL; see events/horizon.ts); null on SQLite. */
  snapshot: string | null;
}

/** One item of a batch completion. */
export interface CompletionSpec {
  jobId: string;
  leaseToken: string;
  result: JsonValue | null;
}

/** One item of a batch release. */
export interface ReleaseSpec {
  jobId: string;
  leaseToken: string;
}

/**
 * An API token as stored: only the SHA-256 of the token (hex), never the token.
 * `role` and the `queues` patterns are checked by src/auth/, not here.
 */
export interface ApiTokenRow {
  name: string;
  tokenHash: string;
  role: string;
  /** Queue patterns; empty = every queue. */
  queues: string[];
  createdAt: Date;
  /** null: never expires. */
  expiresAt: Date | null;
}

export interface Written<T> {
  value: T;
  /** Events written by the transaction, in commit order; published after commit. */
  events: JobEvent[];
}

export interface JobStore {
  readonly dialect: Dialect;

  /**
   * Inserts jobs in one transaction, each with its `enqueued` event (seq 1), and
   * creates the row of a queue seen for the first time.
   * Guards: (queue, idempotencyKey) unique — a seen key yields the existing job
   * with created=false and writes nothing for it. maxQueued — if a queue that
   * received new jobs now holds more waiting jobs (QUEUED + SCHEDULED) than its
   * maxQueued, throws QueueFullError and writes nothing (PostgreSQL: under the
   * queue row lock, so racing producers cannot overshoot). All or nothing.
   */
  insertJobs(jobs: readonly NewJob[], now: Date): Promise<Written<{ job: Job; created: boolean }[]>>;

  /**
   * SCHEDULED → QUEUED for up to `limit` jobs of `queues` (all queues if empty)
   * whose runAt <= now, each with a `promoted` event. Returns how many moved.
   */
  promoteDueJobs(queues: readonly string[], now: Date, limit: number): Promise<Written<number>>;

  /**
   * QUEUED → RUNNING for up to `limit` jobs of `queues`, ordered by priority,
   * runAt, id; sets attempts+1, a fresh lease token, worker and expiry, and a
   * `claimed` event each. No job is returned to two callers (PostgreSQL: FOR
   * UPDATE SKIP LOCKED; SQLite: one writer at a time).
   * Queue policies, atomically with the claim: a paused queue gives nothing; a
   * queue with a concurrency limit or a rate limit is claimed under its row lock
   * (FOR UPDATE), and gives at most what `spec.policy.allowance` allows given
   * the RUNNING count and start log read under that lock; the start log is
   * updated in the same transaction.
   * With `spec.promoteDue`, due jobs are promoted first (their `promoted`
   * events are among the returned events); on PostgreSQL the claim statement
   * itself says whether any are due, so a claim with nothing due is one round
   * trip.
   */
  claimJobs(spec: ClaimSpec): Promise<Written<Job[]>>;

  /**
   * One guarded transition with its event: writes only if every guard in
   * `spec` holds on the current row; returns null (and writes nothing) if not.
   */
  transition(spec: TransitionSpec): Promise<Written<Job> | null>;

  /**
   * RUNNING → SUCCEEDED for a batch, in one transaction: each item whose job is
   * RUNNING under its `leaseToken` gets its result, finishedAt = now, no lease
   * expiry (the token stays, as in a single complete), and a `succeeded` event.
   * Guards per item; an item whose guard fails is left untouched and is simply
   * absent from the returned jobs (the caller explains it). Job ids are distinct.
   */
  completeJobs(items: readonly CompletionSpec[], now: Date): Promise<Written<Job[]>>;

  /**
   * RUNNING → QUEUED for a batch of jobs their worker claimed but never
   * started, in one transaction: each item whose job is RUNNING under its
   * `leaseToken` gets attempts − 1 (the claim's increment taken back), no
   * worker, lease token, lease expiry, startedAt or progress, its runAt kept
   * (so no backoff: claimable at once, in its old place in claim order), and a
   * `released` event (its attempt is the count after the release). A job
   * whose cancel was requested meanwhile goes to CANCELLED instead
   * (finishedAt = now, a `cancelled` event): nothing will run it. Guards per
   * item; an item whose guard fails is left untouched and is simply absent
   * from the returned jobs (the caller explains it). Job ids are distinct.
   */
  releaseJobs(items: readonly ReleaseSpec[], now: Date): Promise<Written<Job[]>>;

  /**
   * Heartbeat: sets leaseExpiresAt to now + leaseSeconds (undefined: the
   * queue's default lease, else LIMITS.defaultLeaseSeconds) and progress if
   * given, on a RUNNING job holding `leaseToken`. No event. Returns null when
   * the guard fails.
   */
  extendLease(
    jobId: string,
    leaseToken: string,
    leaseSeconds: number | undefined,
    progress: JsonValue | null | undefined,
    now: Date,
  ): Promise<Job | null>;

  getJob(jobId: string): Promise<Job | null>;
  /** Jobs by id in one read, in no particular order; unknown ids are absent. */
  getJobs(jobIds: readonly string[]): Promise<Job[]>;
  getJobByKey(queue: string, idempotencyKey: string): Promise<Job | null>;
  listJobs(spec: ListJobsSpec): Promise<Job[]>;
  /** A job's events with seq > afterSeq (and id <= upToId when given), in seq order. */
  listEvents(jobId: string, afterSeq: number, limit: number, upToId?: string): Promise<JobEvent[]>;
  /** Events in (afterId, upToId] matching the spec's filter, in id order, with their job's queue. */
  listEventRange(spec: EventRangeSpec): Promise<JobEventInQueue[]>;
  /**
   * Committed events with id > afterId, in id order, at most `limit` (with
   * `limit` 0: none, only maxId and the snapshot). Never sees rows of a write
   * transaction still open in this process (DialectSql.readCommitted).
   */
  readEventLog(afterId: string, limit: number): Promise<EventLogPage>;
  /** How many jobs match the filter of `spec` (its cursor and limit are ignored). */
  countJobs(spec: Omit<ListJobsSpec, "beforeId" | "limit">): Promise<number>;
  /**
   * The newest `last` events of each of `jobIds`, in one statement (for batch
   * loading a page of jobs with their recent events); each job's in seq order.
   */
  listRecentEvents(jobIds: readonly string[], last: number): Promise<Map<string, JobEvent[]>>;

  /** RUNNING jobs whose lease expired before `now` (oldest first), for the sweeper. */
  findExpiredLeases(now: Date, limit: number): Promise<{ id: string; leaseToken: string }[]>;

  /** Deletes up to `limit` finished jobs and (by cascade) their events. Returns the count. */
  deleteFinishedJobs(spec: DeleteFinishedSpec): Promise<number>;

  /** Queue rows by name (all queues, by name, when `names` is omitted); unknown names are absent. */
  getQueues(names?: readonly string[]): Promise<QueueRow[]>;

  /** Creates the queue row if needed and applies `patch` (undefined = unchanged, null = cleared). */
  configureQueue(name: string, patch: QueueSettingsPatch, now: Date): Promise<QueueRow>;

  /** The raw figures of a queue's stats, each read through an index (no scan of `jobs`). */
  readQueueStats(queue: string, since: Date, aheadOfPriority: number): Promise<QueueStatsRow>;

  /**
   * Job counts by state of every queue, in one statement that reads
   * queue_state_counts (a row per queue and state) plus the deltas not yet
   * folded, never `jobs`. Every queue is listed, a queue with no jobs with an
   * empty record; states with no job may be missing.
   */
  readQueueCounts(): Promise<Map<string, Record<string, number>>>;

  /**
   * Folds up to `limit` of the oldest count deltas into queue_state_counts.
   * Safe from several processes at once (PostgreSQL: SKIP LOCKED). Returns how many it folded.
   */
  compactQueueCounts(limit: number): Promise<number>;

  /**
   * Inserts an API token. Guards: name and token_hash unique — when either is
   * taken, returns null and writes nothing.
   */
  insertApiToken(token: ApiTokenRow): Promise<ApiTokenRow | null>;

  /** Every API token (expired ones included), by name. */
  listApiTokens(): Promise<ApiTokenRow[]>;

  /** Deletes the token called `name` (revocation). Returns false when there is none. */
  deleteApiToken(name: string): Promise<boolean>;

  /**
   * Throws unless the database answers, every migration this build ships is
   * recorded as applied, and it can take a write (not read-only): what
   * /readyz reports.
   */
  checkReady(): Promise<void>;

  /**
   * The connection pool's figures right now (metrics), where the store has a
   * pool: PostgreSQL (the store's own pg.Pool); absent on SQLite's one connection.
   */
  poolStats?(): PoolStats;

  /**
   * The one clock for runAt, leases, backoff, promotion and sweeps (clock.ts):
   * the database's clock on PostgreSQL (shared by every server on it), the
   * process's own on SQLite (one server owns the file).
   */
  now(): Date;

  /**
   * Called once by a server as it starts, before its first sweep. Where one
   * server owns the database (SQLite), the RUNNING leases it finds were
   * granted by the previous owner, possibly under a clock that has jumped
   * since: each is granted its length (at least the default lease) again from
   * `now`, so no live worker's lease is swept early (nor late) because of the
   * jump; a dead worker's job waits that much longer. Where servers share the
   * database (PostgreSQL) leases are on the database's clock and belong to
   * other servers too: nothing is changed. Returns how many leases it resumed.
   */
  resumeLeases(now: Date): Promise<number>;

  close(): Promise<void>;
}
