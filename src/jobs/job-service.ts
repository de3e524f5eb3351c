/**
 * The job service: validation and lifecycle decisions, on top of a JobStore.
 * GraphQL resolvers, the maintenance loop and the in-process Worker all call
 * these functions; none of them writes SQL.
 *
 * Decisions that depend on the current row (fail: retry or dead-letter?) read
 * the job, decide, and write with a compare-and-set guard on the job's newest
 * event seq, so a concurrent change (a cancel request, a sweep) makes the write
 * miss and the decision is taken again on fresh data.
 */
import type { CompletionSpec, JobStore, JobPatch, ReleaseSpec, TransitionSpec, Written } from "../store/job-store.ts";
import { backoffDelayMs, parseBackoff } from "./backoff.ts";
import type { BackoffPolicy } from "./backoff.ts";
import { coerceError, InvalidTransitionError, LeaseLostError, NotFoundError, ValidationError } from "./errors.ts";
import { GroupCommit } from "./group-commit.ts";
import { LIMITS } from "./limits.ts";
import { JobEventType, JobState, TERMINAL_STATES, TRANSITIONS } from "./states.ts";
import type { Operation } from "./states.ts";
import type {
  ClaimInput,
  CompleteInput,
  CompleteOutcome,
  EnqueueInput,
  EnqueueResult,
  FailInput,
  HeartbeatInput,
  HeartbeatResult,
  Job,
  JobEvent,
  JobEventInQueue,
  JobFilter,
  JobPage,
  JsonValue,
  LeasedJob,
  PruneInput,
  PurgeInput,
  ReleaseInput,
  ReleaseOutcome,
  RescheduleInput,
} from "./types.ts";
import type { Span } from "@opentelemetry/api";
import * as v from "./validate.ts";
import { inSpan, SPAN_ATTRIBUTES, SpanKind } from "./spans.ts";
import { withTraceContext } from "./trace-context.ts";
import type { ClaimPolicy, EventRangeSpec, ListJobsSpec, NewJob } from "../store/job-store.ts";
import { claimAllowance, recordStarts } from "../queues/policy.ts";

export interface JobServiceOptions {
  /** The one clock for runAt, leases and backoff. Inject it in tests. */
  now?: () => Date;
  /** [0, 1) source for backoff jitter. */
  random?: () => number;
  /** Cap on the JSON size of payload, result, progress, metadata and error details. */
  maxPayloadBytes?: number;
  /**
   * Who is calling, for the events of operator actions (cancel, retry,
   * reschedule): the API token name of the current call, or null. The server
   * reads it from the request's async context (src/auth/actor.ts).
   */
  actor?: () => string | null;
  /**
   * Called with the events of each committed write (after commit, never for a
   * write that rolled back) and the jobs as that write left them (each event's
   * job, so a listener can read its queue and times; none for promotions,
   * which the store reports only as a count). Must not throw.
   */
  onEvents?: (events: JobEvent[], jobs: readonly Job[]) => void;
  /**
   * Called after each claim call that reached the store with how long it took
   * (promotion of due jobs plus the claim transaction, in ms on the monotonic
   * clock) and how many jobs it leased (0 included). Must not throw.
   */
  onClaim?: (durationMs: number, claimed: number) => void;
  /** Called after finished jobs of a queue were purged (no events record that). Must not throw. */
  onQueueChanged?: (queue: string) => void;
  /** Where an onEvents failure is reported (it never fails the write). */
  onError?: (error: Error) => void;
}

/** How often a read-decide-write is retried when another writer got there first. */
const CAS_ATTEMPTS = 20;
const LEASE_EXPIRED_CODE = "LEASE_EXPIRED";
/** Rows deleted per transaction by purgeJobs. */
const PURGE_BATCH = 1_000;
/**
 * Most jobs merged into one group-committed enqueue write (a bigger
 * enqueueMany goes alone). Past a few hundred rows a bigger batch saves no
 * flush worth having and only delays the calls that wait for it.
 */
const GROUP_COMMIT_MAX_JOBS = 1_000;

/** The queue policy the store applies inside each claim transaction. */
/** The queue policy every claim applies (queues/policy.ts), as the store contract takes it. */
export const CLAIM_POLICY: ClaimPolicy = {
  allowance: (queue, running, now, wanted) => claimAllowance(queue, running, queue.recentStarts, now.getTime(), wanted),
  recordStarts: (queue, now, started) =>
    queue.rateLimit === null
      ? queue.recentStarts
      : recordStarts(queue.rateLimit, queue.recentStarts, now.getTime(), started),
};

/**
 * Validates a batch of leased-job items (1 to `max`, each an object with a job
 * id listed once and a lease token) and builds each item's spec; bad input
 * rejects the whole batch before any write.
 */
function leasedBatch<I extends { jobId: string; leaseToken: string }, S>(
  inputs: readonly I[],
  max: number,
  build: (input: I, index: number, leased: { jobId: string; leaseToken: string }) => S,
): S[] {
  if (!Array.isArray(inputs) || inputs.length === 0 || inputs.length > max) {
    throw new ValidationError("jobs", `must be a list of 1 to ${max} jobs`);
  }
  const seen = new Set<string>();
  return inputs.map((input, i) => {
    if (typeof input !== "object" || input === null) throw new ValidationError(`jobs[${i}]`, "must be an object");
    const jobId = v.jobId(input.jobId, `jobs[${i}].jobId`);
    if (seen.has(jobId)) throw new ValidationError(`jobs[${i}].jobId`, `job ${jobId} is listed twice`);
    seen.add(jobId);
    return build(input, i, { jobId, leaseToken: v.text(input.leaseToken, `jobs[${i}].leaseToken`, 128) });
  });
}

export class JobService {
  private readonly now: () => Date;
  private readonly random: () => number;
  private readonly actor: () => string | null;
  readonly maxPayloadBytes: number;
  private readonly onEvents: ((events: JobEvent[], jobs: readonly Job[]) => void) | undefined;
  private readonly onClaim: ((durationMs: number, claimed: number) => void) | undefined;
  private readonly onQueueChanged: (queue: string) => void;
  private readonly onError: (error: Error) => void;
  /** Group commit of enqueue / enqueueMany calls (see group-commit.ts). */
  readonly enqueues: GroupCommit<EnqueueDraft[], EnqueueResult[]>;
  /** Group commit of complete / completeMany calls. */
  readonly completions: GroupCommit<CompletionSpec[], CompleteOutcome[]>;

  constructor(
    readonly store: JobStore,
    options: JobServiceOptions = {},
  ) {
    this.now = options.now ?? (() => store.now());
    this.random = options.random ?? Math.random;
    this.actor = options.actor ?? (() => null);
    this.maxPayloadBytes = options.maxPayloadBytes ?? LIMITS.defaultMaxPayloadBytes;
    this.onEvents = options.onEvents;
    this.onClaim = options.onClaim;
    this.onQueueChanged = options.onQueueChanged ?? (() => {});
    this.onError = options.onError ?? ((e) => console.error("jobwire: event listener failed", e));
    this.enqueues = new GroupCommit((calls) => this.writeEnqueues(calls), {
      maxBatchSize: GROUP_COMMIT_MAX_JOBS,
      sizeOf: (call) => call.length,
    });
    this.completions = new GroupCommit((calls) => this.writeCompletions(calls), {
      maxBatchSize: LIMITS.completeBatchMax,
      sizeOf: (call) => call.length,
      keysOf: (call) => call.map((i) => i.jobId),
    });
  }

  // ---- producers -------------------------------------------------------------

  /**
   * Adds a job. Inside a PRODUCER span whose context goes into the job's
   * metadata (trace-context.ts), unless a producer upstream (the SDK) put its
   * own there already; the worker's handler span continues that trace.
   */
  async enqueue(input: EnqueueInput): Promise<EnqueueResult> {
    // Named before validation: only a queue name of a plausible length goes into the span.
    const raw = (input as { queue?: unknown } | null)?.queue;
    const queue = typeof raw === "string" && raw.length <= LIMITS.queueNameMaxLength ? raw : null;
    return inSpan(
      queue === null ? "enqueue" : `enqueue ${queue}`,
      SpanKind.PRODUCER,
      { [SPAN_ATTRIBUTES.operation]: "send", ...(queue !== null && { [SPAN_ATTRIBUTES.queue]: queue }) },
      async (span) => {
        const [result] = await this.enqueueList([input], false);
        if (!result) throw new Error("enqueue returned no job");
        span.setAttribute(SPAN_ATTRIBUTES.jobId, result.job.id);
        return result;
      },
    );
  }

  /** All or nothing: one invalid input rejects the whole batch before any write. */
  async enqueueMany(inputs: readonly EnqueueInput[]): Promise<EnqueueResult[]> {
    return inSpan(
      "enqueue",
      SpanKind.PRODUCER,
      { [SPAN_ATTRIBUTES.operation]: "send", [SPAN_ATTRIBUTES.batchSize]: Array.isArray(inputs) ? inputs.length : 0 },
      () => this.enqueueList(inputs, true),
    );
  }

  /** `indexed`: errors name the list position (jobs[3].priority), even in a list of one. */
  private async enqueueList(inputs: readonly EnqueueInput[], indexed: boolean): Promise<EnqueueResult[]> {
    if (!Array.isArray(inputs) || inputs.length === 0 || inputs.length > LIMITS.bulkEnqueueMax) {
      throw new ValidationError("jobs", `must be a list of 1 to ${LIMITS.bulkEnqueueMax} jobs`);
    }
    const now = this.now();
    inputs.forEach((input, i) => {
      const prefix = indexed ? `jobs[${i}].` : "";
      if (typeof input !== "object" || input === null)
        throw new ValidationError(prefix || "input", "must be an object");
      v.queueName(input.queue, `${prefix}queue`);
    });
    // Everything is checked before the call joins a write: an invalid input
    // fails its own call only, and writes nothing.
    const drafts = inputs.map((input, i) => this.draftJob(input, now, indexed ? `jobs[${i}].` : ""));
    return this.enqueues.submit(drafts);
  }

  /**
   * One write for the enqueue calls that met in `enqueues` (group commit): one
   * insertJobs, results handed back per call. The queue's defaults fill what
   * a caller left out (null fields), read by the insert itself (NewJob).
   */
  private async writeEnqueues(calls: readonly EnqueueDraft[][]): Promise<EnqueueResult[][]> {
    const now = this.now();
    const rows = calls.flat().map((d): NewJob => {
      const runAt = d.runAt ?? now;
      return { ...d, runAt, state: runAt.getTime() > now.getTime() ? JobState.SCHEDULED : JobState.QUEUED };
    });
    const results = this.publish(await this.store.insertJobs(rows, now), (out) => out.map((r) => r.job));
    let at = 0;
    return calls.map((call) => results.slice(at, (at += call.length)));
  }

  /** A checked enqueue input; what depends on the queue's defaults or the write's time is left open. */
  private draftJob(input: EnqueueInput, now: Date, prefix: string): EnqueueDraft {
    const given = (value: unknown): boolean => value !== undefined && value !== null;
    return {
      queue: v.queueName(input.queue, `${prefix}queue`),
      runAt: this.runAtFrom(input.runAt, input.delayMs, now, prefix),
      payload: v.json(input.payload, `${prefix}payload`, this.maxPayloadBytes),
      priority: given(input.priority)
        ? v.integer(input.priority, `${prefix}priority`, LIMITS.priorityMin, LIMITS.priorityMax)
        : null,
      maxAttempts: given(input.maxAttempts)
        ? v.integer(input.maxAttempts, `${prefix}maxAttempts`, LIMITS.maxAttemptsMin, LIMITS.maxAttemptsMax)
        : null,
      backoff: given(input.backoff) ? parseBackoff(input.backoff, `${prefix}backoff`) : null,
      idempotencyKey: given(input.idempotencyKey)
        ? v.text(input.idempotencyKey, `${prefix}idempotencyKey`, LIMITS.idempotencyKeyMaxLength)
        : null,
      tags: v.tags(input.tags, `${prefix}tags`),
      metadata: withTraceContext(v.json(input.metadata, `${prefix}metadata`, this.maxPayloadBytes)),
    };
  }

  /** null: neither runAt nor delayMs given (the job runs from the moment it is written). */
  private runAtFrom(runAt: unknown, delayMs: unknown, now: Date, prefix = ""): Date | null {
    if (runAt !== undefined && runAt !== null && delayMs !== undefined && delayMs !== null) {
      throw new ValidationError(`${prefix}runAt`, "give runAt or delayMs, not both");
    }
    if (delayMs !== undefined && delayMs !== null) {
      const ms = v.integer(delayMs, `${prefix}delayMs`, 0, LIMITS.maxDelayMs);
      return new Date(now.getTime() + ms);
    }
    if (runAt !== undefined && runAt !== null) {
      const at = v.date(runAt, `${prefix}runAt`);
      if (at.getTime() - now.getTime() > LIMITS.maxDelayMs) {
        throw new ValidationError(`${prefix}runAt`, "is more than 10 years ahead");
      }
      return at;
    }
    return null;
  }

  // ---- workers ---------------------------------------------------------------

  /**
   * Leases up to `limit` ready jobs of `queues` to `workerId`. Due SCHEDULED jobs
   * of those queues are promoted first, so a retry whose backoff has passed is
   * claimable without waiting for the maintenance loop.
   */
  async claim(input: ClaimInput): Promise<LeasedJob[]> {
    return inSpan("claim", SpanKind.CLIENT, { [SPAN_ATTRIBUTES.operation]: "receive" }, async (span) => {
      const leased = await this.claimNow(input);
      span.setAttribute(SPAN_ATTRIBUTES.batchSize, leased.length);
      return leased;
    });
  }

  private async claimNow(input: ClaimInput): Promise<LeasedJob[]> {
    if (!Array.isArray(input.queues) || input.queues.length === 0 || input.queues.length > 100) {
      throw new ValidationError("queues", "must be a list of 1 to 100 queue names");
    }
    const queues = [...new Set(input.queues.map((q, i) => v.queueName(q, `queues[${i}]`)))];
    const workerId = v.text(input.workerId, "workerId", LIMITS.workerIdMaxLength);
    const limit = input.limit === undefined ? 1 : v.integer(input.limit, "limit", 1, LIMITS.claimLimitMax);
    const leaseSeconds = this.optionalLeaseSeconds(input.leaseSeconds);
    const started = performance.now();
    const claimed = await this.store.claimJobs({
      queues,
      workerId,
      limit,
      leaseSeconds,
      clock: this.now,
      policy: CLAIM_POLICY,
      promoteDue: 1_000,
    });
    const leased = this.publish(claimed, (jobs) => jobs) as LeasedJob[];
    if (this.onClaim) this.notify(this.onClaim, performance.now() - started, leased.length);
    return leased;
  }

  async heartbeat(input: HeartbeatInput): Promise<HeartbeatResult> {
    const jobId = v.jobId(input.jobId);
    const leaseToken = v.text(input.leaseToken, "leaseToken", 128);
    const progress =
      input.progress === undefined ? undefined : v.json(input.progress, "progress", this.maxPayloadBytes);
    const leaseSeconds = this.optionalLeaseSeconds(input.leaseSeconds);
    const job = await this.store.extendLease(jobId, leaseToken, leaseSeconds, progress, this.now());
    if (!job) return this.explainMiss(jobId, "heartbeat", leaseToken);
    return { job, cancelRequested: job.cancelRequestedAt !== null };
  }

  /**
   * RUNNING → SUCCEEDED with the current lease token. Concurrent calls (and
   * completeMany calls) share one completeJobs write (group commit); each
   * still gets its own outcome.
   */
  async complete(input: CompleteInput): Promise<Job> {
    return inSpan("complete", SpanKind.INTERNAL, { [SPAN_ATTRIBUTES.operation]: "settle" }, (span) => {
      spanJobId(span, input);
      return this.completeNow(input);
    });
  }

  private async completeNow(input: CompleteInput): Promise<Job> {
    const item: CompletionSpec = {
      jobId: v.jobId(input.jobId),
      leaseToken: v.text(input.leaseToken, "leaseToken", 128),
      result: v.json(input.result, "result", this.maxPayloadBytes),
    };
    const [outcome] = await this.completions.submit([item]);
    if (!outcome) throw new Error("complete returned no outcome");
    if (outcome.error) throw outcome.error;
    return outcome.job;
  }

  /**
   * Completes a batch in one transaction (what a busy worker sends instead of
   * one completeJob per job). Each item is guarded on its own: the outcome
   * list, in input order, holds the finished job or the error that item would
   * have got from complete() (NOT_FOUND, LEASE_LOST, INVALID_TRANSITION), and
   * nothing is written for an item that failed. Bad input (an invalid item, a
   * job listed twice) rejects the whole call before any write.
   */
  async completeMany(inputs: readonly CompleteInput[]): Promise<CompleteOutcome[]> {
    return inSpan(
      "complete",
      SpanKind.INTERNAL,
      { [SPAN_ATTRIBUTES.operation]: "settle", [SPAN_ATTRIBUTES.batchSize]: Array.isArray(inputs) ? inputs.length : 0 },
      () => this.completeManyNow(inputs),
    );
  }

  private async completeManyNow(inputs: readonly CompleteInput[]): Promise<CompleteOutcome[]> {
    const items = leasedBatch(inputs, LIMITS.completeBatchMax, (input, i, leased): CompletionSpec => ({
      ...leased,
      result: v.json(input.result, `jobs[${i}].result`, this.maxPayloadBytes),
    }));
    return this.completions.submit(items);
  }

  /**
   * One write for the completion calls that met in `completions` (group
   * commit; no job is in two of them): one completeJobs, then one read that
   * explains every miss, outcomes handed back per call.
   */
  private async writeCompletions(calls: readonly CompletionSpec[][]): Promise<CompleteOutcome[][]> {
    const items = calls.flat();
    const done = new Map(
      this.publish(await this.store.completeJobs(items, this.now()), (jobs) => jobs).map((j) => [j.id, j]),
    );
    const outcome = await this.batchOutcomes(items, done, "complete");
    return calls.map((call) => call.map(outcome));
  }

  /**
   * Gives back jobs the worker claimed but never started (a prefetched job at
   * shutdown, or one whose lease would lapse before it could start), in one
   * transaction: RUNNING → QUEUED at once with the claim's attempt taken back,
   * no backoff, lease and worker cleared, a `released` event each (CANCELLED
   * instead when a cancel was requested meanwhile). Each item is guarded on
   * its own: the outcome list, in input order, holds the released job or its
   * error (NOT_FOUND, LEASE_LOST, INVALID_TRANSITION), and nothing is written
   * for an item that failed. Bad input (an invalid item, a job listed twice)
   * rejects the whole call before any write.
   */
  async releaseMany(inputs: readonly ReleaseInput[]): Promise<ReleaseOutcome[]> {
    const items = leasedBatch(inputs, LIMITS.releaseBatchMax, (_, __, leased): ReleaseSpec => leased);
    const done = new Map(
      this.publish(await this.store.releaseJobs(items, this.now()), (jobs) => jobs).map((j) => [j.id, j]),
    );
    return items.map(await this.batchOutcomes(items, done, "release"));
  }

  /**
   * Explains a guarded batch write per item: the written job, else why not
   * (NOT_FOUND, LEASE_LOST: another token holds it, INVALID_TRANSITION), read
   * in one query for the items that missed.
   */
  private async batchOutcomes(
    items: readonly { jobId: string; leaseToken: string }[],
    done: ReadonlyMap<string, Job>,
    operation: "complete" | "release",
  ): Promise<(item: { jobId: string; leaseToken: string }) => CompleteOutcome> {
    const missed = items.filter((i) => !done.has(i.jobId));
    const current = new Map(
      (missed.length > 0 ? await this.store.getJobs(missed.map((i) => i.jobId)) : []).map((j) => [j.id, j]),
    );
    return ({ jobId, leaseToken }) => {
      const job = done.get(jobId);
      if (job) return { jobId, job, error: null };
      const now = current.get(jobId);
      const error = !now
        ? new NotFoundError("job", jobId)
        : now.leaseToken !== leaseToken
          ? new LeaseLostError(jobId)
          : new InvalidTransitionError(jobId, operation, now.state);
      return { jobId, job: null, error };
    };
  }

  /**
   * RUNNING → SCHEDULED (retryable, attempts left: at now + retryInMs or the
   * job's backoff), FAILED (non-retryable or attempts exhausted) or CANCELLED
   * (a cancel was requested: the worker is acknowledging it).
   */
  async fail(input: FailInput): Promise<Job> {
    return inSpan("fail", SpanKind.INTERNAL, { [SPAN_ATTRIBUTES.operation]: "settle" }, (span) => {
      spanJobId(span, input);
      return this.failNow(input);
    });
  }

  private async failNow(input: FailInput): Promise<Job> {
    const jobId = v.jobId(input.jobId);
    const leaseToken = v.text(input.leaseToken, "leaseToken", 128);
    if (typeof input.error !== "object" || input.error === null) {
      throw new ValidationError("error", "must be an object with a message");
    }
    const message = v.text(input.error.message, "error.message", LIMITS.errorMessageMaxLength);
    const code =
      input.error.code === undefined || input.error.code === null
        ? null
        : v.text(input.error.code, "error.code", LIMITS.errorCodeMaxLength);
    const details = v.json(input.error.details, "error.details", this.maxPayloadBytes);
    const retryable = input.retryable ?? true;
    if (typeof retryable !== "boolean") throw new ValidationError("retryable", "must be a boolean");
    const retryInMs =
      input.retryInMs === undefined || input.retryInMs === null
        ? undefined
        : v.integer(input.retryInMs, "retryInMs", 0, LIMITS.maxDelayMs);

    return this.decideAndWrite(jobId, "fail", TRANSITIONS.fail.from, leaseToken, (job, now) => {
      const error = { errorMessage: message, errorCode: code, errorDetails: details };
      return this.endOfRun(job, now, { retryable, retryInMs, error, clearToken: false });
    });
  }

  // ---- operators -------------------------------------------------------------

  /**
   * QUEUED/SCHEDULED → CANCELLED. A RUNNING job stays RUNNING with
   * cancelRequestedAt set (event `cancel_requested`); its worker learns it on its
   * next heartbeat, and if it never answers, lease expiry ends it CANCELLED.
   * Cancelling a running job twice returns it unchanged.
   */
  async cancel(jobIdInput: string): Promise<Job> {
    const jobId = v.jobId(jobIdInput);
    const cancellable = [...TRANSITIONS.cancel.from, ...TRANSITIONS.requestCancel.from];
    return this.decideAndWrite(jobId, "cancel", cancellable, undefined, (job, now) => {
      if (job.state === JobState.RUNNING) {
        if (job.cancelRequestedAt !== null) return job;
        return {
          from: TRANSITIONS.requestCancel.from,
          patch: { cancelRequestedAt: now },
          event: { type: JobEventType.CANCEL_REQUESTED, actor: this.actor() },
        };
      }
      return {
        from: TRANSITIONS.cancel.from,
        to: JobState.CANCELLED,
        patch: { finishedAt: now },
        event: { type: JobEventType.CANCELLED, actor: this.actor() },
      };
    });
  }

  /** FAILED/CANCELLED → QUEUED with attempts reset to 0. */
  async retry(jobIdInput: string): Promise<Job> {
    const jobId = v.jobId(jobIdInput);
    const now = this.now();
    const written = await this.store.transition({
      jobId,
      from: TRANSITIONS.retry.from,
      to: JobState.QUEUED,
      patch: {
        attempts: 0,
        runAt: now,
        result: null,
        errorMessage: null,
        errorCode: null,
        errorDetails: null,
        workerId: null,
        leaseToken: null,
        leaseExpiresAt: null,
        cancelRequestedAt: null,
        progress: null,
        startedAt: null,
        finishedAt: null,
      },
      event: { type: JobEventType.RETRIED, actor: this.actor() },
      now,
    });
    if (!written) return this.explainMiss(jobId, "retry");
    return this.publish(written, (job) => [job]);
  }

  /** Moves a waiting job's runAt (→ SCHEDULED or QUEUED) and/or priority. */
  async reschedule(input: RescheduleInput): Promise<Job> {
    const jobId = v.jobId(input.jobId);
    const now = this.now();
    const hasTime =
      (input.runAt !== undefined && input.runAt !== null) || (input.delayMs !== undefined && input.delayMs !== null);
    if (!hasTime && input.priority === undefined) {
      throw new ValidationError("runAt", "give runAt, delayMs or priority to change");
    }
    const runAt = hasTime ? this.runAtFrom(input.runAt, input.delayMs, now) : undefined;
    const priority =
      input.priority === undefined
        ? undefined
        : v.integer(input.priority, "priority", LIMITS.priorityMin, LIMITS.priorityMax);
    return this.decideAndWrite(jobId, "reschedule", TRANSITIONS.reschedule.from, undefined, (job) => {
      const at = runAt ?? job.runAt;
      const patch: JobPatch = { runAt: at };
      if (priority !== undefined) patch.priority = priority;
      return {
        from: TRANSITIONS.reschedule.from,
        to: at.getTime() > now.getTime() ? JobState.SCHEDULED : JobState.QUEUED,
        patch,
        event: {
          type: JobEventType.RESCHEDULED,
          data: { runAt: at.toISOString(), priority: priority ?? job.priority },
          actor: this.actor(),
        },
      };
    });
  }

  // ---- reads -----------------------------------------------------------------

  async getJob(jobIdInput: string): Promise<Job> {
    const jobId = v.jobId(jobIdInput);
    const job = await this.store.getJob(jobId);
    if (!job) throw new NotFoundError("job", jobId);
    return job;
  }

  /** Jobs by id, one read for all (batch loading); unknown ids are absent. */
  async findJobs(jobIds: readonly string[]): Promise<Job[]> {
    const ids = jobIds.map((id, i) => v.jobId(id, `jobIds[${i}]`));
    return ids.length === 0 ? [] : this.store.getJobs([...new Set(ids)]);
  }

  async findJobByKey(queue: string, idempotencyKey: string): Promise<Job | null> {
    return this.store.getJobByKey(
      v.queueName(queue),
      v.text(idempotencyKey, "idempotencyKey", LIMITS.idempotencyKeyMaxLength),
    );
  }

  /** Newest first. `after` is the opaque cursor of the previous page. */
  async listJobs(filter: JobFilter = {}, page: { first?: number; after?: string | null } = {}): Promise<JobPage> {
    const limit =
      page.first === undefined || page.first === null ? 50 : v.integer(page.first, "first", 1, LIMITS.listPageMax);
    const spec = {
      ...this.filterSpec(filter),
      limit: limit + 1,
      ...(page.after !== undefined && page.after !== null && { beforeId: decodeCursor(page.after) }),
    };
    const jobs = await this.store.listJobs(spec);
    const hasMore = jobs.length > limit;
    const pageJobs = hasMore ? jobs.slice(0, limit) : jobs;
    const last = pageJobs.at(-1);
    return {
      jobs: pageJobs,
      cursors: pageJobs.map((j) => encodeCursor(j.id)),
      nextCursor: hasMore && last ? encodeCursor(last.id) : null,
    };
  }

  /** How many jobs match `filter` (one COUNT; on a big table, filter by queue and state). */
  async countJobs(filter: JobFilter = {}): Promise<number> {
    return this.store.countJobs(this.filterSpec(filter));
  }

  private filterSpec(filter: JobFilter): Omit<ListJobsSpec, "beforeId" | "limit"> {
    if (typeof filter !== "object" || filter === null) throw new ValidationError("filter", "must be an object");
    const given = <K extends keyof JobFilter>(k: K): boolean => filter[k] !== undefined && filter[k] !== null;
    return {
      ...(given("queue") && { queue: v.queueName(filter.queue, "filter.queue") }),
      ...(given("states") && { states: v.states(filter.states, "filter.states") }),
      ...(given("tags") && { tags: v.tags(filter.tags, "filter.tags") }),
      ...(given("createdAfter") && { createdAfter: v.date(filter.createdAfter, "filter.createdAfter") }),
      ...(given("createdBefore") && { createdBefore: v.date(filter.createdBefore, "filter.createdBefore") }),
    };
  }

  /** A job's events with seq > afterSeq, in seq order. */
  async listEvents(jobIdInput: string, afterSeq = 0, limit = 1_000): Promise<JobEvent[]> {
    const jobId = v.jobId(jobIdInput);
    const after = v.integer(afterSeq, "afterSeq", 0, 2 ** 31 - 1);
    const first = v.integer(limit, "first", 1, LIMITS.eventsPageMax);
    const events = await this.store.listEvents(jobId, after, first);
    if (events.length === 0 && !(await this.store.getJob(jobId))) throw new NotFoundError("job", jobId);
    return events;
  }

  /**
   * Replay for subscriptions: a job's events with seq > afterSeq and id <=
   * upToId (the live feed's cursor), in seq order. Arguments are trusted
   * (checked when the subscription started).
   */
  async replayJobEvents(jobId: string, afterSeq: number, upToId: string, limit: number): Promise<JobEvent[]> {
    return this.store.listEvents(jobId, afterSeq, limit, upToId);
  }

  /** The newest committed event id ("0" when there is none). */
  async newestEventId(): Promise<string> {
    return (await this.store.readEventLog("0", 0)).maxId;
  }

  /** Replay for subscriptions: events in (afterId, upToId] matching a checked filter, in id order. */
  async replayEventRange(spec: EventRangeSpec): Promise<JobEventInQueue[]> {
    return this.store.listEventRange(spec);
  }

  /**
   * The newest `last` events of each job, one query for all of them (the
   * GraphQL layer batches a page's `Job.events` through this). Unknown ids get [].
   */
  async recentEvents(jobIds: readonly string[], last: number): Promise<Map<string, JobEvent[]>> {
    const ids = jobIds.map((id, i) => v.jobId(id, `jobIds[${i}]`));
    return this.store.listRecentEvents(ids, v.integer(last, "last", 1, LIMITS.recentEventsMax));
  }

  /**
   * Deletes finished jobs of one queue (and their events): every job in
   * `states` (default all finished states) that finished before
   * `finishedBefore` (default now). Waiting and running jobs are never purged;
   * cancel them first. Deletes in batches, one transaction each. Returns the count.
   */
  async purgeJobs(input: PurgeInput): Promise<number> {
    if (typeof input !== "object" || input === null) throw new ValidationError("input", "must be an object");
    const queue = v.queueName(input.queue, "queue");
    const states =
      input.states === undefined || input.states === null ? [...TERMINAL_STATES] : v.states(input.states, "states");
    const unfinished = states.find((s) => !TERMINAL_STATES.includes(s));
    if (unfinished !== undefined) {
      throw new ValidationError(
        "states",
        `${unfinished} jobs are not finished; only ${TERMINAL_STATES.join(", ")} can be purged`,
      );
    }
    if (states.length === 0) throw new ValidationError("states", "must name at least one finished state");
    const finishedBefore =
      input.finishedBefore === undefined || input.finishedBefore === null
        ? this.now()
        : v.date(input.finishedBefore, "finishedBefore");
    let total = 0;
    for (;;) {
      const deleted = await this.store.deleteFinishedJobs({ states, finishedBefore, queue, limit: PURGE_BATCH });
      total += deleted;
      if (deleted < PURGE_BATCH) break;
    }
    if (total > 0) this.onQueueChanged(queue);
    return total;
  }

  // ---- maintenance -----------------------------------------------------------

  /**
   * Ends runs whose lease expired as retryable failures ("lease expired"): back
   * to SCHEDULED after backoff, FAILED when attempts are exhausted, CANCELLED
   * when a cancel was requested. The lease token is cleared, so the stale
   * worker's later calls get LEASE_LOST. Safe to run from many processes: each
   * job is guarded by its lease token and expiry. Returns how many it ended.
   */
  async sweepExpiredLeases(limit = 500): Promise<number> {
    const now = this.now();
    const expired = await this.store.findExpiredLeases(now, v.integer(limit, "limit", 1, 10_000));
    let swept = 0;
    for (const { id, leaseToken } of expired) {
      try {
        const ended = await this.decideAndWrite(
          id,
          "expireLease",
          TRANSITIONS.expireLease.from,
          leaseToken,
          (job, at) => {
            // Re-checked on every read against this attempt's time: a heartbeat that
            // landed after findExpiredLeases extended the lease, so the job is
            // skipped (returned as it is) instead of retried until CAS_ATTEMPTS
            // runs out. The write repeats the check (leaseExpiredBefore).
            if (job.leaseExpiresAt === null || job.leaseExpiresAt.getTime() >= at.getTime()) return job;
            const spec = this.endOfRun(job, at, {
              retryable: true,
              retryInMs: undefined,
              error: {
                errorMessage: `lease expired at ${job.leaseExpiresAt?.toISOString() ?? "?"} (worker ${job.workerId ?? "?"})`,
                errorCode: LEASE_EXPIRED_CODE,
                errorDetails: null,
              },
              clearToken: true,
            });
            return { ...spec, leaseExpiredBefore: at };
          },
        );
        if (ended.state !== JobState.RUNNING) swept++;
      } catch (e) {
        // Another sweeper, a late heartbeat or the worker itself got there first:
        // expected, not an error. Anything else is reported for this job only, so
        // one job's contention never leaves the rest of the tick's leases RUNNING.
        const error = coerceError(e);
        if (!(error instanceof LeaseLostError || error instanceof InvalidTransitionError)) this.onError(error);
      }
    }
    return swept;
  }

  /**
   * SCHEDULED → QUEUED for due jobs of every queue (claims also do this for
   * their own queues). Safe from many processes (SKIP LOCKED). Returns how many moved.
   */
  async promoteDueJobs(limit = 1_000): Promise<number> {
    return this.publish(await this.store.promoteDueJobs([], this.now(), v.integer(limit, "limit", 1, 100_000)), noJobs);
  }

  /**
   * Deletes finished jobs (and their events) older than the given times, in
   * batches of `batchSize`, at most `maxBatches` per state group (default: until done).
   */
  async pruneFinishedJobs(input: PruneInput): Promise<number> {
    const batch = input.batchSize === undefined ? 500 : v.integer(input.batchSize, "batchSize", 1, 10_000);
    const maxBatches =
      input.maxBatches === undefined ? Infinity : v.integer(input.maxBatches, "maxBatches", 1, 1_000_000);
    if (input.queue === undefined) {
      // Retention reads per queue (jobs_queue_finished_at_idx), so go queue by queue.
      let total = 0;
      for (const q of await this.store.getQueues()) total += await this.pruneFinishedJobs({ ...input, queue: q.name });
      return total;
    }
    const queue = v.queueName(input.queue);
    const passes: { states: JobState[]; before: Date }[] = [];
    if (input.succeededBefore !== undefined) {
      passes.push({ states: [JobState.SUCCEEDED], before: v.date(input.succeededBefore, "succeededBefore") });
    }
    if (input.failedBefore !== undefined) {
      passes.push({
        states: [JobState.FAILED, JobState.CANCELLED],
        before: v.date(input.failedBefore, "failedBefore"),
      });
    }
    if (passes.length === 0) throw new ValidationError("succeededBefore", "give succeededBefore and/or failedBefore");
    let total = 0;
    for (const pass of passes) {
      for (let n = 0; n < maxBatches; n++) {
        const deleted = await this.store.deleteFinishedJobs({
          states: pass.states,
          finishedBefore: pass.before,
          limit: batch,
          queue,
        });
        total += deleted;
        if (deleted < batch) break;
      }
    }
    return total;
  }

  // ---- internals -------------------------------------------------------------

  /** undefined: the queue's default lease (else LIMITS.defaultLeaseSeconds), decided by the store. */
  private optionalLeaseSeconds(value: unknown): number | undefined {
    return value === undefined || value === null
      ? undefined
      : v.integer(value, "leaseSeconds", LIMITS.leaseSecondsMin, LIMITS.leaseSecondsMax);
  }

  /** The outcome of a run that did not succeed (worker failure or lease expiry). */
  private endOfRun(
    job: Job,
    now: Date,
    o: {
      retryable: boolean;
      retryInMs: number | undefined;
      error: Pick<JobPatch, "errorMessage" | "errorCode" | "errorDetails">;
      clearToken: boolean;
    },
  ): Decision {
    const lease: JobPatch = { leaseExpiresAt: null, ...(o.clearToken && { leaseToken: null }) };
    if (job.cancelRequestedAt !== null) {
      return {
        from: TRANSITIONS.fail.from,
        to: JobState.CANCELLED,
        patch: { ...o.error, ...lease, finishedAt: now },
        // The schema documents LEASE_EXPIRED as covering RUNNING → CANCELLED (a swept
        // cancel-requested lease); a worker acknowledging the cancel records CANCELLED.
        event: {
          type: o.clearToken ? JobEventType.LEASE_EXPIRED : JobEventType.CANCELLED,
          data: { reason: o.error.errorMessage ?? null },
        },
      };
    }
    if (o.retryable && job.attempts < job.maxAttempts) {
      const delay = o.retryInMs ?? backoffDelayMs(job.backoff, job.attempts, this.random);
      const runAt = new Date(now.getTime() + delay);
      return {
        from: TRANSITIONS.fail.from,
        to: JobState.SCHEDULED,
        patch: { ...o.error, ...lease, runAt },
        event: {
          type: o.clearToken ? JobEventType.LEASE_EXPIRED : JobEventType.RETRY_SCHEDULED,
          data: { error: o.error.errorMessage ?? null, runAt: runAt.toISOString(), delayMs: delay },
        },
      };
    }
    return {
      from: TRANSITIONS.fail.from,
      to: JobState.FAILED,
      patch: { ...o.error, ...lease, finishedAt: now },
      event: {
        type: o.clearToken ? JobEventType.LEASE_EXPIRED : JobEventType.FAILED,
        data: { error: o.error.errorMessage ?? null, retryable: o.retryable },
      },
    };
  }

  /**
   * Read the job, let `decide` pick the transition (or return the job as it is),
   * write it guarded by the seq that was read; on a miss, read again.
   */
  private async decideAndWrite(
    jobId: string,
    operation: Operation,
    allowed: readonly JobState[],
    leaseToken: string | undefined,
    decide: (job: Job, now: Date) => Decision | Job,
  ): Promise<Job> {
    for (let i = 0; i < CAS_ATTEMPTS; i++) {
      const job = await this.store.getJob(jobId);
      if (!job) throw new NotFoundError("job", jobId);
      if (leaseToken !== undefined && job.leaseToken !== leaseToken) throw new LeaseLostError(jobId);
      if (!allowed.includes(job.state)) {
        throw new InvalidTransitionError(jobId, operation, job.state);
      }
      const now = this.now();
      const decision = decide(job, now);
      if (!("from" in decision && "event" in decision)) return decision;
      const spec: TransitionSpec = {
        ...decision,
        jobId,
        expectedSeq: job.lastSeq,
        now,
        ...(leaseToken !== undefined && { leaseToken }),
      };
      const written = await this.store.transition(spec);
      if (written) return this.publish(written, (job) => [job]);
    }
    throw new Error(`job ${jobId}: gave up after ${CAS_ATTEMPTS} concurrent changes`);
  }

  /** Why a guarded write found no row: NOT_FOUND, LEASE_LOST or INVALID_TRANSITION. */
  private async explainMiss(jobId: string, operation: string, leaseToken?: string): Promise<never> {
    const job = await this.store.getJob(jobId);
    if (!job) throw new NotFoundError("job", jobId);
    if (leaseToken !== undefined && job.leaseToken !== leaseToken) throw new LeaseLostError(jobId);
    throw new InvalidTransitionError(jobId, operation, job.state);
  }

  /** Hands a committed write's events (and, via `jobsOf`, its jobs) to onEvents; returns its value. */
  private publish<T>(written: Written<T>, jobsOf: (value: T) => readonly Job[]): T {
    if (this.onEvents && written.events.length > 0) {
      this.notify(this.onEvents, written.events, jobsOf(written.value));
    }
    return written.value;
  }

  /** Calls a listener; what it throws is reported, never thrown into the write. */
  private notify<A extends unknown[]>(listener: (...args: A) => void, ...args: A): void {
    try {
      listener(...args);
    } catch (e) {
      this.onError(coerceError(e));
    }
  }
}

const noJobs = (): readonly Job[] => [];

type Decision = Omit<TransitionSpec, "jobId" | "now" | "expectedSeq" | "leaseToken">;

/** An enqueue input after validation; null fields take the queue's default when written. */
interface EnqueueDraft {
  queue: string;
  /** null: the moment the job is written. */
  runAt: Date | null;
  payload: JsonValue | null;
  priority: number | null;
  maxAttempts: number | null;
  backoff: BackoffPolicy | null;
  idempotencyKey: string | null;
  tags: string[];
  metadata: JsonValue | null;
}

function encodeCursor(id: string): string {
  return Buffer.from(`job:${id}`).toString("base64url");
}

function decodeCursor(cursor: string): string {
  const decoded = typeof cursor === "string" ? Buffer.from(cursor, "base64url").toString() : "";
  const match = /^job:([1-9][0-9]{0,18})$/.exec(decoded);
  if (!match?.[1]) throw new ValidationError("after", "is not a cursor returned by a previous page");
  return match[1];
}

/** The job id attribute, when the input has one to name (validation comes after). */
function spanJobId(span: Span, input: unknown): void {
  const jobId = (input as { jobId?: unknown } | null)?.jobId;
  if (typeof jobId === "string") span.setAttribute(SPAN_ATTRIBUTES.jobId, jobId);
}
