/**
 * The maintenance loop of a server process: lease sweep, promotion of due
 * scheduled jobs, retention pruning and folding of the queue count deltas,
 * each in bounded batches per tick. It calls the job and queue services only
 * (no SQL of its own), and every step is safe when several processes run it
 * against one PostgreSQL database at once: the sweep is guarded by lease token
 * and expiry, promotion and pruning pick rows with SKIP LOCKED, and count
 * folding moves disjoint deltas (see the store methods' headers).
 */
import { coerceError } from "../jobs/errors.ts";
import type { JobService } from "../jobs/job-service.ts";
import type { QueueService } from "../queues/queue-service.ts";

export interface MaintenanceOptions {
  /** Pause between ticks (default 1000 ms). */
  intervalMs?: number;
  /** Rows per batch of each step (default 500). */
  batchSize?: number;
  /** Batches per step and tick, so one tick stays short (default 10). */
  maxBatches?: number;
  /** Retention of SUCCEEDED jobs for queues that set none; null keeps them (default 7 days). */
  retainSucceededSeconds?: number | null;
  /** Retention of FAILED and CANCELLED jobs for queues that set none; null keeps them (default 30 days). */
  retainFailedSeconds?: number | null;
  now?: () => Date;
  /**
   * Where a failed tick is reported; the loop goes on. A failure repeating
   * tick after tick (same message: a read-only or unreachable database) is
   * reported once, then at most every `repeatReportMs`, with the number of
   * failed ticks so far.
   */
  onError?: (error: Error, failure: { failedTicks: number }) => void;
  /** Called on the first good tick after failed ones. */
  onRecovered?: (failure: { failedTicks: number }) => void;
  /** Least time between two reports of the same repeating failure (default 60 s). */
  repeatReportMs?: number;
}

export interface MaintenanceReport {
  swept: number;
  promoted: number;
  pruned: number;
  folded: number;
}

export const MAINTENANCE_DEFAULTS = Object.freeze({
  intervalMs: 1_000,
  batchSize: 500,
  maxBatches: 10,
  retainSucceededSeconds: 7 * 24 * 3600,
  retainFailedSeconds: 30 * 24 * 3600,
  repeatReportMs: 60_000,
});

export class Maintenance {
  private readonly o: Required<
    Omit<MaintenanceOptions, "retainSucceededSeconds" | "retainFailedSeconds" | "onRecovered">
  > & {
    retainSucceededSeconds: number | null;
    retainFailedSeconds: number | null;
  };
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private generation = 0;
  /** The failure of the last ticks, while they keep failing (wall time in ms: performance.now()). */
  private failure: { message: string; failedTicks: number; reportedAt: number } | null = null;
  private readonly onRecovered: MaintenanceOptions["onRecovered"];

  constructor(
    private readonly jobs: JobService,
    private readonly queues: QueueService,
    options: MaintenanceOptions = {},
  ) {
    this.o = {
      intervalMs: options.intervalMs ?? MAINTENANCE_DEFAULTS.intervalMs,
      batchSize: options.batchSize ?? MAINTENANCE_DEFAULTS.batchSize,
      maxBatches: options.maxBatches ?? MAINTENANCE_DEFAULTS.maxBatches,
      retainSucceededSeconds:
        options.retainSucceededSeconds === undefined
          ? MAINTENANCE_DEFAULTS.retainSucceededSeconds
          : options.retainSucceededSeconds,
      retainFailedSeconds:
        options.retainFailedSeconds === undefined
          ? MAINTENANCE_DEFAULTS.retainFailedSeconds
          : options.retainFailedSeconds,
      now: options.now ?? (() => jobs.store.now()),
      onError: options.onError ?? ((e) => console.error("jobwire: maintenance tick failed", e)),
      repeatReportMs: options.repeatReportMs ?? MAINTENANCE_DEFAULTS.repeatReportMs,
    };
    this.onRecovered = options.onRecovered;
  }

  private succeeded(): void {
    const failure = this.failure;
    if (!failure) return;
    this.failure = null;
    try {
      this.onRecovered?.({ failedTicks: failure.failedTicks });
    } catch (e) {
      console.error("jobwire: maintenance onRecovered threw", coerceError(e));
    }
  }

  /** One pass of every step; what a tick does. */
  async runOnce(): Promise<MaintenanceReport> {
    const { batchSize, maxBatches } = this.o;
    const report: MaintenanceReport = { swept: 0, promoted: 0, pruned: 0, folded: 0 };
    for (let n = 0; n < maxBatches; n++) {
      const swept = await this.jobs.sweepExpiredLeases(batchSize);
      report.swept += swept;
      if (swept < batchSize) break;
    }
    for (let n = 0; n < maxBatches; n++) {
      const promoted = await this.jobs.promoteDueJobs(batchSize);
      report.promoted += promoted;
      if (promoted < batchSize) break;
    }
    report.pruned = await this.prune();
    for (let n = 0; n < maxBatches; n++) {
      // Count deltas are tiny rows: fold many per batch.
      const folded = await this.queues.compactCounts(batchSize * 20);
      report.folded += folded;
      if (folded < batchSize * 20) break;
    }
    return report;
  }

  private async prune(): Promise<number> {
    const now = this.o.now().getTime();
    const before = (seconds: number | null): Date | undefined =>
      seconds === null ? undefined : new Date(now - seconds * 1000);
    let pruned = 0;
    for (const q of await this.queues.listQueues()) {
      const succeededBefore = before(q.retainSucceededSeconds ?? this.o.retainSucceededSeconds);
      const failedBefore = before(q.retainFailedSeconds ?? this.o.retainFailedSeconds);
      if (!succeededBefore && !failedBefore) continue;
      pruned += await this.jobs.pruneFinishedJobs({
        queue: q.name,
        batchSize: this.o.batchSize,
        maxBatches: this.o.maxBatches,
        ...(succeededBefore && { succeededBefore }),
        ...(failedBefore && { failedBefore }),
      });
    }
    return pruned;
  }

  /** Runs a tick every intervalMs until stop(); a failing tick is reported, not fatal. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    // Each start() is a new loop: a tick of an earlier loop (stopped without
    // awaiting stop()) must neither schedule more ticks nor clear `running`.
    const generation = ++this.generation;
    const live = (): boolean => !this.stopped && this.generation === generation;
    const loop = (): void => {
      const tick: Promise<void> = this.runOnce()
        .then(
          () => this.succeeded(),
          (e: unknown) => this.report(coerceError(e)),
        )
        .finally(() => {
          if (this.running === tick) this.running = undefined;
          if (live()) this.timer = setTimeout(loop, this.o.intervalMs);
        });
      this.running = tick;
    };
    // Ticks never overlap: the first one waits for a tick still in progress.
    const previous = this.running;
    if (previous) {
      this.running = previous.then(() => {
        if (live()) loop();
      });
    } else {
      loop();
    }
  }

  /**
   * Hands a failed tick to onError, unless it repeats the last failure and that
   * was reported less than repeatReportMs ago (a stack trace every second for a
   * read-only database helps no one). A throwing onError must not kill the
   * loop (or the process).
   */
  private report(error: Error): void {
    const at = performance.now();
    let failure = this.failure;
    if (failure && failure.message === error.message) {
      failure.failedTicks += 1;
      if (at - failure.reportedAt < this.o.repeatReportMs) return;
      failure.reportedAt = at;
    } else {
      failure = this.failure = { message: error.message, failedTicks: (failure?.failedTicks ?? 0) + 1, reportedAt: at };
    }
    try {
      this.o.onError(error, { failedTicks: failure.failedTicks });
    } catch (e) {
      console.error("jobwire: maintenance onError threw", coerceError(e), "while reporting", error);
    }
  }

  /** Stops the loop and waits for a tick in progress to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
