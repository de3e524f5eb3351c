/**
 * The Worker: claims jobs from queues, runs a handler for each, heartbeats
 * while it runs, and completes or fails it. Over GraphQL (`url`) or
 * in-process on the embedded service (`services`), through a WorkerTransport.
 *
 *   const worker = new Worker({
 *     url: "http://127.0.0.1:4000/graphql",
 *     queues: ["email"],
 *     concurrency: 10,
 *     handler: async (job, { signal, reportProgress }) => sendEmail(job.payload, { signal }),
 *   });
 *   worker.start();
 *   process.once("SIGTERM", () => void worker.stop().then(() => process.exit(0)));
 *
 * How it behaves:
 * - Wake-ups: it claims when jobsAvailable says a queue may have work, when a
 *   claim filled every free slot (there may be more), and on a slow safety
 *   poll (`safetyPollMs`: a lost hint, a rate-limit window that reopened).
 *   While the subscription is down it polls every `pollIntervalMs` ± 25%.
 * - Prefetch (`prefetch`, default max(2 × concurrency, 32), at most 1,000; 0
 *   = off): one claim takes jobs for the free slots plus a local queue of
 *   claimed-but-not-started jobs, refilled by the next claim once it is down
 *   to half. Without prefetch a claim asks for the free slots only, so at
 *   concurrency 1 every job costs a claim round trip and a commit.
 * - A prefetched job's lease runs while it waits, so it never waits past
 *   lease − heartbeatIntervalMs: such jobs are given back (releaseJobs, one
 *   call; QUEUED at once, no attempt used) for any worker to take, and the
 *   local queue is sized down to what the handlers can start within that
 *   window at their measured run time. A job that starts after waiting
 *   heartbeats at once when its wait has used up a heartbeat interval.
 * - While a handler runs, heartbeats every `heartbeatIntervalMs` (default a
 *   third of the lease), extending the lease and sending the latest progress
 *   the handler reported.
 * - The handler's AbortSignal fires with a JobCancelledError when a cancel was
 *   requested (seen on a heartbeat), a LeaseLostError when the lease is gone
 *   (LEASE_LOST on a heartbeat, or the lease ran out without a successful
 *   heartbeat), and a WorkerShutdownError when stop() gives up waiting.
 * - A handler that returns completes the job. Completions are sent in
 *   batches: those that finish while one completeJobs call is in flight go
 *   in the next one. A handler that throws fails the job, retryably unless the
 *   error is a NonRetryableError (or has `retryable: false`); `retryInMs` on
 *   the error overrides the backoff. After a cancel, the failure ends the job
 *   CANCELLED. After a lost lease, the outcome is dropped: the job is another
 *   worker's now, and the server would refuse it anyway (LEASE_LOST).
 * - stop(): claims nothing more, gives back every prefetched job not started
 *   at once in one releaseJobs call (no attempt used, claimable by another
 *   worker right away), waits up to `shutdownTimeoutMs` for running
 *   handlers, then aborts the rest and fails them as retryable, and sends
 *   every pending completion before it resolves.
 * - Delivery is at least once: a job can run again after a crash or a lost
 *   lease. Make handlers idempotent.
 */
import type { JsonValue } from "../jobs/types.ts";
import { context as otelContext, trace } from "@opentelemetry/api";
import { failSpan, SPAN_ATTRIBUTES, SpanKind, TRACER_NAME } from "../jobs/spans.ts";
import { traceContextOf } from "../jobs/trace-context.ts";
import { JobwireClient } from "./client.ts";
import type { JobwireClientOptions } from "./client.ts";
import { afterThisTurn, workerHost } from "./platform/node.ts";
import { LocalTransport, RemoteTransport } from "./transport.ts";
import type {
  AvailabilityWatch,
  ClaimedJob,
  Completion,
  CompletionOutcome,
  Failure,
  LocalServices,
  Release,
  WorkerTransport,
} from "./transport.ts";

/** Throw this (or an error with `retryable: false`) to fail a job without retrying it. */
export class NonRetryableError extends Error {
  readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NonRetryableError";
  }
}

/** The abort reason when a cancel was requested for the running job. */
export class JobCancelledError extends Error {
  constructor(readonly jobId: string) {
    super(`job ${jobId} was cancelled`);
    this.name = "JobCancelledError";
  }
}

/** The abort reason when the job's lease is gone: another worker may run it now. */
export class LeaseLostError extends Error {
  constructor(
    readonly jobId: string,
    detail: string,
  ) {
    super(`lease on job ${jobId} lost: ${detail}`);
    this.name = "LeaseLostError";
  }
}

/** The abort reason when stop() stopped waiting for the handler. */
export class WorkerShutdownError extends Error {
  constructor(readonly jobId: string) {
    super(`the worker shut down before job ${jobId} finished`);
    this.name = "WorkerShutdownError";
  }
}

export type WorkerJob = ClaimedJob;

export interface JobContext {
  /** Fires on cancel, lost lease or shutdown; `signal.reason` says which. */
  signal: AbortSignal;
  /** Progress to send with the next heartbeat (any JSON; the latest wins). */
  reportProgress(progress: JsonValue): void;
}

export type JobHandler = (job: WorkerJob, context: JobContext) => Promise<JsonValue | void> | JsonValue | void;

export interface WorkerOptions {
  /** A jobwire server over GraphQL (e.g. http://127.0.0.1:4000/graphql)… */
  url?: string;
  /** …or a client you configured… */
  client?: JobwireClient;
  /** …or the in-process services (startServer(...).services, or your own)… */
  services?: LocalServices;
  /** …or any transport. Exactly one of url, client, services, transport. */
  transport?: WorkerTransport;
  /** Options for the client created from `url`. */
  clientOptions?: Omit<JobwireClientOptions, "url">;
  queues: string[];
  handler: JobHandler;
  /** Handlers running at once (default 1). */
  concurrency?: number;
  /**
   * Claimed jobs kept waiting locally for a free slot, beyond the running
   * ones (default max(2 × concurrency, 32), at most 1,000; 0 turns prefetch
   * off). Needs a transport with release() (both built-in ones have it).
   */
  prefetch?: number;
  /** Lease length asked at claim and at each heartbeat (default 30). */
  leaseSeconds?: number;
  /** Default leaseSeconds × 1000 / 3. */
  heartbeatIntervalMs?: number;
  /** Poll interval while the jobsAvailable subscription is down (default 1,000 ms, ± 25%). */
  pollIntervalMs?: number;
  /** Claim at least this often even with the subscription up (default 5,000 ms). */
  safetyPollMs?: number;
  /** How long stop() waits for running handlers (default 10,000 ms). */
  shutdownTimeoutMs?: number;
  /** Shown on claimed jobs (default host:pid:random). */
  workerId?: string;
}

export interface WorkerEvents {
  /** A job's handler started. */
  started: { job: WorkerJob };
  /** The server recorded the job SUCCEEDED. */
  completed: { job: WorkerJob; result: JsonValue | null };
  /** The server recorded the failure (retry scheduled, FAILED, or CANCELLED after a cancel). */
  failed: { job: WorkerJob; error: Error; retryable: boolean };
  /** The job's lease was lost; its outcome was dropped. */
  leaseLost: { job: WorkerJob; reason: string };
  /**
   * Prefetched jobs given back unstarted (releaseJobs): at stop(), or because
   * their lease would have lapsed before a slot freed.
   */
  released: { jobs: WorkerJob[]; reason: "stop" | "lease" };
  /** Something went wrong talking to the server (the worker retries). */
  error: { error: unknown; during: "claim" | "heartbeat" | "complete" | "fail" | "release" | "subscription" };
}

type Listener<K extends keyof WorkerEvents> = (event: WorkerEvents[K]) => void;

/** A claimed job waiting in the prefetch queue. */
interface Waiting {
  job: WorkerJob;
  /** Date.now() when its claim was sent: its lease started no earlier. */
  claimedAt: number;
}

/** Largest prefetch: the most jobs one claim may lease. */
const PREFETCH_MAX = 1_000;

interface Running {
  job: WorkerJob;
  controller: AbortController;
  progress: { value: JsonValue } | null;
  /** The next heartbeat (a timeout chain: the first one may come early, see run()). */
  heartbeat: ReturnType<typeof setTimeout>;
  startedAt: number;
  /** Local estimate of the lease's end; past it without a heartbeat, the lease is treated as lost. */
  leaseEndsAt: number;
  lost: boolean;
  heartbeating: boolean;
  cancelled: boolean;
  abandoned: boolean;
}

export class Worker {
  readonly workerId: string;
  readonly queues: readonly string[];
  readonly concurrency: number;
  /** Most prefetched jobs kept waiting (0: prefetch off). */
  readonly prefetch: number;
  private readonly transport: WorkerTransport;
  private readonly ownedClient: JobwireClient | null;
  private readonly handler: JobHandler;
  private readonly leaseSeconds: number;
  private readonly heartbeatIntervalMs: number;
  private readonly pollIntervalMs: number;
  private readonly safetyPollMs: number;
  private readonly shutdownTimeoutMs: number;

  private readonly running = new Map<string, Running>();
  /** Prefetched jobs, oldest claim first. */
  private readonly waiting: Waiting[] = [];
  private releaseTimer: ReturnType<typeof setTimeout> | null = null;
  /** Handler run time (ms), a moving average; null until a handler finished. */
  private averageRunMs: number | null = null;
  private readonly completions: { item: Completion; job: WorkerJob }[] = [];
  private readonly listeners = new Map<keyof WorkerEvents, Set<(e: never) => void>>();
  private readonly settling = new Set<Promise<void>>();
  private watch: AvailabilityWatch | null = null;
  private loopDone: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private stopRequested = false;
  private mayHaveWork = true;
  private wakeLoop: (() => void) | null = null;
  private flushing: Promise<void> | null = null;
  private claimFailures = 0;

  constructor(options: WorkerOptions) {
    const sources = [options.url, options.client, options.services, options.transport].filter((s) => s !== undefined);
    if (sources.length !== 1) throw new TypeError("give exactly one of url, client, services or transport");
    if (!Array.isArray(options.queues) || options.queues.length === 0) {
      throw new TypeError("queues must list at least one queue");
    }
    if (typeof options.handler !== "function") throw new TypeError("handler must be a function");
    const positive = (value: number | undefined, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER) => {
      const v = value ?? fallback;
      if (!Number.isInteger(v) || v < 1 || v > max) throw new TypeError(`${name} must be an integer from 1 to ${max}`);
      return v;
    };
    this.concurrency = positive(options.concurrency, "concurrency", 1, 1_000);
    this.leaseSeconds = positive(options.leaseSeconds, "leaseSeconds", 30, 86_400);
    this.heartbeatIntervalMs = positive(
      options.heartbeatIntervalMs,
      "heartbeatIntervalMs",
      Math.max(1, Math.floor((this.leaseSeconds * 1000) / 3)),
    );
    this.pollIntervalMs = positive(options.pollIntervalMs, "pollIntervalMs", 1_000);
    this.safetyPollMs = positive(options.safetyPollMs, "safetyPollMs", 5_000);
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? 10_000;
    if (!Number.isInteger(this.shutdownTimeoutMs) || this.shutdownTimeoutMs < 0) {
      throw new TypeError("shutdownTimeoutMs must be an integer >= 0");
    }
    if (
      options.prefetch !== undefined &&
      (!Number.isInteger(options.prefetch) || options.prefetch < 0 || options.prefetch > PREFETCH_MAX)
    ) {
      throw new TypeError(`prefetch must be an integer from 0 to ${PREFETCH_MAX}`);
    }
    this.queues = [...options.queues];
    this.handler = options.handler;
    this.workerId = options.workerId ?? `${workerHost()}:${randomHex(3)}`;

    if (options.url !== undefined) {
      this.ownedClient = new JobwireClient({ ...options.clientOptions, url: options.url });
      this.transport = new RemoteTransport(this.ownedClient);
    } else {
      this.ownedClient = null;
      if (options.client) this.transport = new RemoteTransport(options.client);
      else if (options.services) this.transport = new LocalTransport(options.services);
      else this.transport = options.transport as WorkerTransport;
    }
    // Prefetched jobs must be given back at stop (and before their lease
    // lapses), which needs release(); a transport without it does not prefetch.
    const canRelease = typeof this.transport.release === "function";
    if (options.prefetch !== undefined && options.prefetch > 0 && !canRelease) {
      throw new TypeError("prefetch needs a transport with release(); pass prefetch: 0");
    }
    this.prefetch = canRelease ? (options.prefetch ?? Math.min(PREFETCH_MAX, Math.max(2 * this.concurrency, 32))) : 0;
  }

  /** Handlers running now. */
  get runningCount(): number {
    return this.running.size;
  }

  /** Prefetched jobs waiting for a slot now. */
  get prefetchedCount(): number {
    return this.waiting.length;
  }

  on<K extends keyof WorkerEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (e: never) => void);
    return () => void set.delete(listener as (e: never) => void);
  }

  private emit<K extends keyof WorkerEvents>(event: K, payload: WorkerEvents[K]): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        (listener as Listener<K>)(payload);
      } catch {
        // A listener's failure is its own business; the worker carries on.
      }
    }
  }

  /** Starts claiming. Returns at once; stop() ends it. */
  start(): this {
    if (this.loopDone) throw new Error("the worker was started already");
    this.watch = this.transport.watchAvailable(
      [...this.queues],
      () => this.signal(),
      (error) => this.emit("error", { error, during: "subscription" }),
    );
    this.loopDone = this.loop();
    return this;
  }

  /**
   * Graceful stop: no new claims; running handlers get up to `timeoutMs`
   * (default shutdownTimeoutMs) to finish, then are aborted and failed as
   * retryable; every pending completion is sent. Safe to call more than once.
   */
  stop(options: { timeoutMs?: number } = {}): Promise<void> {
    this.stopping ??= this.shutdown(options.timeoutMs ?? this.shutdownTimeoutMs);
    return this.stopping;
  }

  // ---- claiming ---------------------------------------------------------------

  private signal(): void {
    this.mayHaveWork = true;
    this.wake();
  }

  private wake(): void {
    const w = this.wakeLoop;
    this.wakeLoop = null;
    w?.();
  }

  /** Sleeps until woken (signal, slot freed, stop) or `ms` passed. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (this.wakeLoop === done) this.wakeLoop = null;
        resolve();
      }, ms);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.wakeLoop = done;
    });
  }

  /**
   * How many jobs to keep waiting now: `prefetch`, but no more than the
   * handlers can start before a waiting job's lease would need releasing, at
   * their measured run time (0 when one handler outlasts that window:
   * prefetching would only claim jobs to give back).
   */
  private prefetchTarget(): number {
    if (this.prefetch === 0 || this.averageRunMs === null) return this.prefetch;
    const startable = (this.concurrency * this.releaseAfterMs()) / Math.max(this.averageRunMs, 0.001);
    return Math.min(this.prefetch, Math.floor(startable));
  }

  /** How long a prefetched job may wait: until a heartbeat interval of its lease is left. */
  private releaseAfterMs(): number {
    return Math.max(0, this.leaseSeconds * 1000 - this.heartbeatIntervalMs);
  }

  /**
   * How many jobs the next claim should ask for: 0 until the local queue is
   * down to half its target (with prefetch off: until a slot is free), then
   * the free slots plus what the queue lacks. Completions waiting to be sent
   * hold the claim back a little, so a slow server sees the worker's backlog
   * shrink before it takes more.
   */
  private claimWanted(): number {
    const target = this.prefetchTarget();
    const wanted = this.concurrency + target - this.running.size - this.waiting.length;
    if (wanted <= 0 || this.waiting.length > target / 2) return 0;
    if (this.completions.length >= this.concurrency + target) return 0;
    return wanted;
  }

  private async loop(): Promise<void> {
    let lastClaimAt = 0;
    while (!this.stopRequested) {
      this.startWaiting();
      const wanted = this.claimWanted();
      if (wanted === 0) {
        await this.sleep(this.heartbeatIntervalMs);
        continue;
      }
      const limit = Math.min(wanted, PREFETCH_MAX);
      const live = this.watch?.live ?? false;
      const pollEvery = live ? this.safetyPollMs : jitter(this.pollIntervalMs);
      const due = Date.now() - lastClaimAt >= pollEvery;
      if (!this.mayHaveWork && !due) {
        await this.sleep(pollEvery - (Date.now() - lastClaimAt));
        continue;
      }
      this.mayHaveWork = false;
      lastClaimAt = Date.now();
      let jobs: ClaimedJob[];
      try {
        jobs = await this.transport.claim({
          queues: [...this.queues],
          workerId: this.workerId,
          limit,
          leaseSeconds: this.leaseSeconds,
        });
        this.claimFailures = 0;
      } catch (error) {
        this.emit("error", { error, during: "claim" });
        await this.sleep(jitter(Math.min(this.pollIntervalMs * 2 ** this.claimFailures++, 30_000)));
        continue;
      }
      for (const job of jobs) this.waiting.push({ job, claimedAt: lastClaimAt });
      // Into the free slots at once, even when stop() was called meanwhile
      // if the transport cannot give them back; the rest wait (and stop()
      // releases them).
      this.startWaiting(typeof this.transport.release !== "function");
      this.armReleaseTimer();
      // A full batch: there may be more ready right now.
      if (jobs.length === limit) this.mayHaveWork = true;
    }
  }

  /** Starts waiting jobs while a slot is free (not once stopping, unless `evenIfStopping`). */
  private startWaiting(evenIfStopping = false): void {
    if (this.stopRequested && !evenIfStopping) return;
    while (this.running.size < this.concurrency) {
      const next = this.waiting.shift();
      if (!next) return;
      this.run(next.job, next.claimedAt);
    }
  }

  // ---- prefetched jobs' leases ----------------------------------------------------

  /** Wakes when the oldest waiting job reaches its release time. */
  private armReleaseTimer(): void {
    if (this.releaseTimer !== null) return;
    const oldest = this.waiting[0];
    if (!oldest || this.stopRequested) return;
    const delay = Math.max(0, oldest.claimedAt + this.releaseAfterMs() - Date.now());
    this.releaseTimer = setTimeout(() => {
      this.releaseTimer = null;
      this.releaseOverdue();
      this.armReleaseTimer();
    }, delay);
  }

  /**
   * Gives back the waiting jobs whose lease would lapse before they could
   * start (at most a heartbeat interval of it left), in one call: another
   * worker, or this one's next claim, takes them with a fresh lease.
   */
  private releaseOverdue(): void {
    const now = Date.now();
    let n = 0;
    while (n < this.waiting.length && (this.waiting[n]?.claimedAt ?? now) + this.releaseAfterMs() <= now) n++;
    if (n === 0) return;
    const overdue = this.waiting.splice(0, n);
    this.track(
      this.sendRelease(
        overdue.map((w) => w.job),
        "lease",
      ),
    );
    this.wake();
  }

  private async sendRelease(jobs: WorkerJob[], reason: "stop" | "lease"): Promise<void> {
    const release = this.transport.release?.bind(this.transport);
    if (!release) return;
    for (let i = 0; i < jobs.length; i += PREFETCH_MAX) {
      const chunk = jobs.slice(i, i + PREFETCH_MAX);
      const items: Release[] = chunk.map((job) => ({ jobId: job.id, leaseToken: job.leaseToken }));
      for (let attempt = 0; ; attempt++) {
        try {
          const outcomes = await release(items);
          const released = chunk.filter((_, k) => outcomes[k]?.error === null);
          if (released.length > 0) this.emit("released", { jobs: released, reason });
          outcomes.forEach((o, k) => {
            const job = chunk[k];
            if (o.error !== null && job) this.emit("leaseLost", { job, reason: `releaseJobs: ${o.error.code}` });
          });
          break;
        } catch (error) {
          this.emit("error", { error, during: "release" });
          // Not given back: the jobs come back when their leases expire.
          if (attempt >= 2) break;
          await new Promise((resolve) => setTimeout(resolve, jitter(100 * 2 ** attempt)));
        }
      }
    }
  }

  // ---- running ----------------------------------------------------------------

  /** Runs a claimed job whose claim was sent at `claimedAt` (Date.now()). */
  private run(job: WorkerJob, claimedAt: number): void {
    const controller = new AbortController();
    const now = Date.now();
    const tick = (): void => {
      void this.heartbeat(entry);
      if (!entry.lost && !entry.abandoned && this.running.get(job.id) === entry) {
        entry.heartbeat = setTimeout(tick, this.heartbeatIntervalMs);
      }
    };
    const entry: Running = {
      job,
      controller,
      progress: null,
      // The lease has run since the claim: a job that waited in the prefetch
      // queue heartbeats that much sooner (at once after a whole interval),
      // so it is as far from lapsing as a job started on its claim.
      heartbeat: setTimeout(tick, Math.max(0, this.heartbeatIntervalMs - (now - claimedAt))),
      startedAt: now,
      leaseEndsAt: claimedAt + this.leaseSeconds * 1000,
      lost: false,
      heartbeating: false,
      cancelled: false,
      abandoned: false,
    };
    this.running.set(job.id, entry);
    this.emit("started", { job });
    const context: JobContext = {
      signal: controller.signal,
      reportProgress: (progress) => {
        entry.progress = { value: progress };
      },
    };
    // The handler runs in a CONSUMER span that continues the producer's trace
    // (its context travels in the job's metadata, trace-context.ts). A no-op
    // span when no OpenTelemetry SDK is registered.
    const producer = traceContextOf(job.metadata);
    const span = trace.getTracer(TRACER_NAME).startSpan(
      `process ${job.queue}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          [SPAN_ATTRIBUTES.system]: "jobwire",
          [SPAN_ATTRIBUTES.operation]: "process",
          [SPAN_ATTRIBUTES.queue]: job.queue,
          [SPAN_ATTRIBUTES.jobId]: job.id,
          [SPAN_ATTRIBUTES.attempt]: job.attempts,
        },
      },
      producer,
    );
    let outcome: Promise<JsonValue | void>;
    try {
      outcome = Promise.resolve(otelContext.with(trace.setSpan(producer, span), () => this.handler(job, context)));
    } catch (e) {
      outcome = Promise.reject(e);
    }
    outcome.then(
      (result) => {
        span.end();
        this.finish(entry, { ok: true, result: result === undefined ? null : result });
      },
      (error: unknown) => {
        failSpan(span, error);
        span.end();
        this.finish(entry, { ok: false, error });
      },
    );
  }

  private finish(
    entry: Running,
    outcome: { ok: true; result: JsonValue | null } | { ok: false; error: unknown },
  ): void {
    clearTimeout(entry.heartbeat);
    if (this.running.get(entry.job.id) === entry) {
      this.running.delete(entry.job.id);
      const ranMs = Date.now() - entry.startedAt;
      this.averageRunMs = this.averageRunMs === null ? ranMs : this.averageRunMs * 0.8 + ranMs * 0.2;
      // A slot is free: the next prefetched job starts right here.
      this.startWaiting();
    }
    // Claim again if the prefetch queue ran low.
    if (this.stopRequested || this.claimWanted() > 0) this.wake();
    if (entry.abandoned) return; // stop() already failed it
    if (entry.lost) {
      this.emit("leaseLost", { job: entry.job, reason: describe(entry.controller.signal.reason) });
      return;
    }
    if (outcome.ok) {
      this.completions.push({
        item: { jobId: entry.job.id, leaseToken: entry.job.leaseToken, result: outcome.result },
        job: entry.job,
      });
      this.scheduleFlush();
      return;
    }
    const error = outcome.error instanceof Error ? outcome.error : new Error(String(outcome.error));
    const retryable = !entry.cancelled && (error as { retryable?: unknown }).retryable !== false;
    const retryInMs = (error as { retryInMs?: unknown }).retryInMs;
    this.track(
      this.sendFailure(
        entry.job,
        error,
        retryable,
        typeof retryInMs === "number" && Number.isInteger(retryInMs) && retryInMs >= 0 ? retryInMs : undefined,
      ),
    );
  }

  private async heartbeat(entry: Running): Promise<void> {
    if (entry.lost || entry.abandoned) return;
    if (entry.heartbeating) {
      // The previous heartbeat has not come back; once the lease has run out
      // the sweeper may hand the job to another worker: stop rather than race.
      if (Date.now() >= entry.leaseEndsAt) this.loseLease(entry, "the lease ran out without a successful heartbeat");
      return;
    }
    entry.heartbeating = true;
    const progress = entry.progress;
    try {
      const hb = await this.transport.heartbeat({
        jobId: entry.job.id,
        leaseToken: entry.job.leaseToken,
        progress: progress?.value,
        leaseSeconds: this.leaseSeconds,
      });
      if (progress === entry.progress) entry.progress = null;
      entry.leaseEndsAt = Date.now() + this.leaseSeconds * 1000;
      if (hb.cancelRequested && !entry.cancelled) {
        entry.cancelled = true;
        entry.controller.abort(new JobCancelledError(entry.job.id));
      }
    } catch (error) {
      const code = codeOf(error);
      if (code === "LEASE_LOST" || code === "INVALID_TRANSITION" || code === "NOT_FOUND") {
        this.loseLease(entry, `the server answered ${code} to a heartbeat`);
        return;
      }
      this.emit("error", { error, during: "heartbeat" });
      // No heartbeat got through before the lease ran out: the sweeper may
      // have handed the job to someone else. Stop rather than race them.
      if (Date.now() >= entry.leaseEndsAt) this.loseLease(entry, "the lease ran out without a successful heartbeat");
    } finally {
      entry.heartbeating = false;
    }
  }

  private loseLease(entry: Running, reason: string): void {
    if (entry.lost) return;
    entry.lost = true;
    clearTimeout(entry.heartbeat);
    entry.controller.abort(new LeaseLostError(entry.job.id, reason));
  }

  // ---- reporting outcomes ---------------------------------------------------------

  private scheduleFlush(): void {
    if (this.flushing) return;
    // After this turn (setImmediate on Node): handlers that finish in the same turn go in one batch.
    const flushing = new Promise<void>((resolve) => afterThisTurn(resolve)).then(() => this.flush());
    this.flushing = flushing;
    void flushing.finally(() => {
      if (this.flushing === flushing) this.flushing = null;
      if (this.completions.length > 0) this.scheduleFlush();
    });
  }

  private async flush(): Promise<void> {
    let failures = 0;
    while (this.completions.length > 0) {
      const batch = this.completions.splice(0, 1_000);
      // The backlog just left: the loop may claim again while this batch is
      // written (on PostgreSQL the two transactions then overlap).
      this.wake();
      let outcomes: CompletionOutcome[];
      try {
        outcomes = await this.transport.complete(batch.map((b) => b.item));
      } catch (error) {
        this.emit("error", { error, during: "complete" });
        // Keep every result until the server has answered for it: only the
        // server's clock decides whether a lease still holds (this machine's
        // may run minutes ahead), and a per-item LEASE_LOST / INVALID_TRANSITION
        // answer below is what drops one (issue 19).
        if (this.stopRequested && failures >= 3) {
          this.emit("error", {
            error: new Error(`stopping: gave up reporting ${batch.length} results; those jobs will run again`),
            during: "complete",
          });
          return;
        }
        this.completions.unshift(...batch);
        await new Promise((resolve) => setTimeout(resolve, jitter(Math.min(100 * 2 ** failures++, 5_000))));
        continue;
      }
      failures = 0;
      outcomes.forEach((outcome, i) => {
        const entry = batch[i];
        if (!entry) return;
        if (outcome.error === null) this.emit("completed", { job: entry.job, result: entry.item.result });
        else this.emit("leaseLost", { job: entry.job, reason: `completeJobs: ${outcome.error.code}` });
      });
      this.wake();
    }
  }

  private async sendFailure(job: WorkerJob, error: Error, retryable: boolean, retryInMs: number | undefined) {
    const failure: Failure = {
      jobId: job.id,
      leaseToken: job.leaseToken,
      error: {
        message: (error.message || error.name || "failed").slice(0, 10_000),
        code: (codeOf(error) ?? error.name).slice(0, 128),
        details: error.stack ? { stack: error.stack.slice(0, 4_000) } : null,
      },
      retryable,
      ...(retryInMs !== undefined && { retryInMs }),
    };
    // Retried until the server answers or the lease is over on any clock: its
    // last heartbeat was at most leaseSeconds ago. Timed by this process's
    // monotonic clock, never against the server's leaseExpiresAt (clocks differ).
    const giveUpAt = performance.now() + this.leaseSeconds * 1000 + 60_000;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.transport.fail(failure);
        this.emit("failed", { job, error, retryable });
        return;
      } catch (e) {
        const code = codeOf(e);
        if (code === "LEASE_LOST" || code === "INVALID_TRANSITION" || code === "NOT_FOUND") {
          this.emit("leaseLost", { job, reason: `failJob: ${code}` });
          return;
        }
        this.emit("error", { error: e, during: "fail" });
        if (performance.now() > giveUpAt || (this.stopRequested && attempt >= 3)) return;
        await new Promise((resolve) => setTimeout(resolve, jitter(Math.min(100 * 2 ** attempt, 5_000))));
      }
    }
  }

  /** Keeps a background send alive until it settles, so stop() can wait for it. */
  private track(promise: Promise<void>): void {
    this.settling.add(promise);
    void promise.finally(() => this.settling.delete(promise));
  }

  // ---- shutdown ------------------------------------------------------------------

  private async shutdown(timeoutMs: number): Promise<void> {
    this.stopRequested = true;
    this.watch?.close();
    this.wake();
    await this.loopDone;
    // Every prefetched job not started goes back at once, in one call: no
    // attempt used, and another worker may take it right away.
    if (this.releaseTimer !== null) clearTimeout(this.releaseTimer);
    this.releaseTimer = null;
    const unstarted = this.waiting.splice(0).map((w) => w.job);
    if (unstarted.length > 0) this.track(this.sendRelease(unstarted, "stop"));
    const deadline = Date.now() + timeoutMs;
    while (this.running.size > 0 && Date.now() < deadline) {
      await this.sleep(Math.min(50, Math.max(1, deadline - Date.now())));
    }
    for (const entry of [...this.running.values()]) {
      // The handler keeps running in the background; its outcome is ignored.
      entry.abandoned = true;
      clearTimeout(entry.heartbeat);
      this.running.delete(entry.job.id);
      entry.controller.abort(new WorkerShutdownError(entry.job.id));
      if (!entry.lost) this.track(this.sendFailure(entry.job, new WorkerShutdownError(entry.job.id), true, 0));
    }
    while (this.flushing || this.completions.length > 0 || this.settling.size > 0) {
      if (this.completions.length > 0 && !this.flushing) this.scheduleFlush();
      await Promise.all([this.flushing, ...this.settling]);
    }
    await this.ownedClient?.close();
  }
}

function jitter(ms: number): number {
  return Math.max(1, Math.round(ms * (0.75 + Math.random() * 0.5)));
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function describe(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}

/** `bytes` random bytes as hex, from Web Crypto (global on Node 20+ and in browsers). */
function randomHex(bytes: number): string {
  const buf = globalThis.crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(buf, (b) => b.toString(16).padStart(2, "0")).join("");
}
