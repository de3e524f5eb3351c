/**
 * Queue settings and stats: validation and defaults on top of the JobStore.
 * The policies themselves are enforced by the store inside the claim and
 * enqueue transactions (see store/job-store.ts and queues/policy.ts); this
 * service only validates and records what operators ask for, and reads stats.
 */
import { parseBackoff } from "../jobs/backoff.ts";
import { NotFoundError, ValidationError } from "../jobs/errors.ts";
import { LIMITS } from "../jobs/limits.ts";
import { JobState } from "../jobs/states.ts";
import * as v from "../jobs/validate.ts";
import type { JobStore, QueueRow } from "../store/job-store.ts";
import { estimateWaitMs, percentile } from "./policy.ts";
import type { ConfigureQueueInput, QueueSettings, QueueSettingsPatch, QueueStats, RateLimit } from "./types.ts";

export const QUEUE_LIMITS = Object.freeze({
  concurrencyMax: 10_000,
  rateLimitCountMax: 10_000,
  rateLimitIntervalMsMax: 24 * 3_600_000,
  maxQueuedMax: 100_000_000,
  retainSecondsMax: 10 * 365 * 24 * 3600,
});

const STATS_WINDOW_MS = 60_000;
const SETTINGS: ReadonlySet<string> = new Set([
  "name",
  "paused",
  "concurrency",
  "rateLimit",
  "maxQueued",
  "defaultPriority",
  "defaultMaxAttempts",
  "defaultBackoff",
  "defaultLeaseSeconds",
  "retainSucceededSeconds",
  "retainFailedSeconds",
]);

export interface QueueServiceOptions {
  now?: () => Date;
  /** Called after a queue's settings changed (committed). Must not throw. */
  onQueueChanged?: (queue: string) => void;
}

export class QueueService {
  private readonly now: () => Date;
  private readonly onQueueChanged: (queue: string) => void;

  constructor(
    readonly store: JobStore,
    options: QueueServiceOptions = {},
  ) {
    this.now = options.now ?? (() => store.now());
    this.onQueueChanged = options.onQueueChanged ?? (() => {});
  }

  /** Creates the queue if needed and changes the given settings (null clears one). */
  async configureQueue(input: ConfigureQueueInput): Promise<QueueSettings> {
    if (typeof input !== "object" || input === null) throw new ValidationError("input", "must be an object");
    const name = v.queueName(input.name, "name");
    const unknown = Object.keys(input).filter((k) => !SETTINGS.has(k));
    if (unknown.length > 0) throw new ValidationError(unknown[0] ?? "input", "is not a queue setting");
    const patch: QueueSettingsPatch = {};
    if (input.paused !== undefined) {
      if (typeof input.paused !== "boolean") throw new ValidationError("paused", "must be a boolean");
      patch.paused = input.paused;
    }
    const optional = <K extends keyof QueueSettingsPatch>(key: K, parse: (value: unknown) => QueueSettingsPatch[K]) => {
      const value = (input as Record<string, unknown>)[key];
      if (value === undefined) return;
      patch[key] = value === null ? (null as QueueSettingsPatch[K]) : parse(value);
    };
    optional("concurrency", (x) => v.integer(x, "concurrency", 1, QUEUE_LIMITS.concurrencyMax));
    optional("rateLimit", (x) => rateLimit(x));
    optional("maxQueued", (x) => v.integer(x, "maxQueued", 1, QUEUE_LIMITS.maxQueuedMax));
    optional("defaultPriority", (x) => v.integer(x, "defaultPriority", LIMITS.priorityMin, LIMITS.priorityMax));
    optional("defaultMaxAttempts", (x) =>
      v.integer(x, "defaultMaxAttempts", LIMITS.maxAttemptsMin, LIMITS.maxAttemptsMax),
    );
    optional("defaultBackoff", (x) => parseBackoff(x, "defaultBackoff"));
    optional("defaultLeaseSeconds", (x) =>
      v.integer(x, "defaultLeaseSeconds", LIMITS.leaseSecondsMin, LIMITS.leaseSecondsMax),
    );
    optional("retainSucceededSeconds", (x) => v.integer(x, "retainSucceededSeconds", 0, QUEUE_LIMITS.retainSecondsMax));
    optional("retainFailedSeconds", (x) => v.integer(x, "retainFailedSeconds", 0, QUEUE_LIMITS.retainSecondsMax));
    if (Object.keys(patch).length === 0) throw new ValidationError("name", "give at least one setting to change");
    const settings = settingsOf(await this.store.configureQueue(name, patch, this.now()));
    this.onQueueChanged(name);
    return settings;
  }

  /** Stops claims from the queue; running jobs go on and finish. */
  async pauseQueue(name: string): Promise<QueueSettings> {
    return this.configureQueue({ name, paused: true });
  }

  async resumeQueue(name: string): Promise<QueueSettings> {
    return this.configureQueue({ name, paused: false });
  }

  async getQueue(name: string): Promise<QueueSettings> {
    return settingsOf(await this.queueRow(v.queueName(name, "name")));
  }

  /** The queues of these names that exist, in one read (for batch loading); unknown names are absent. */
  async findQueues(names: readonly string[]): Promise<QueueSettings[]> {
    const valid = names.map((name, i) => v.queueName(name, `names[${i}]`));
    return valid.length === 0 ? [] : (await this.store.getQueues([...new Set(valid)])).map(settingsOf);
  }

  async listQueues(): Promise<QueueSettings[]> {
    return (await this.store.getQueues()).map(settingsOf);
  }

  async queueStats(nameInput: string): Promise<QueueStats> {
    const name = v.queueName(nameInput, "name");
    const queue = await this.queueRow(name);
    const now = this.now();
    const raw = await this.store.readQueueStats(
      name,
      new Date(now.getTime() - STATS_WINDOW_MS),
      queue.defaultPriority ?? 0,
    );
    const counts = Object.fromEntries(Object.values(JobState).map((s) => [s, raw.counts[s] ?? 0])) as Record<
      JobState,
      number
    >;
    const runs = raw.recentRunsMs.filter((ms) => ms >= 0);
    const averageRunMs = runs.length === 0 ? null : Math.round(runs.reduce((a, b) => a + b, 0) / runs.length);
    return {
      queue: name,
      counts,
      startedLastMinute: raw.startedSince,
      finishedLastMinute: raw.finishedSince,
      averageRunMs,
      p95RunMs: percentile(runs, 95),
      oldestWaitingMs:
        raw.oldestReadyRunAt === null ? null : Math.max(0, now.getTime() - raw.oldestReadyRunAt.getTime()),
      estimatedWaitMs: estimateWaitMs({
        paused: queue.paused,
        concurrency: queue.concurrency,
        rateLimit: queue.rateLimit,
        recentStarts: queue.recentStarts,
        ahead: raw.ahead,
        runningStartedAt: raw.runningStartedAt.map((d) => d.getTime()),
        averageRunMs,
        nowMs: now.getTime(),
      }),
    };
  }

  /**
   * Job counts by state of every queue (every state listed, 0 when none), in
   * one read of the count tables (metrics scrapes; no scan of `jobs`).
   */
  async countJobsByQueue(): Promise<Map<string, Record<JobState, number>>> {
    const raw = await this.store.readQueueCounts();
    return new Map(
      [...raw].map(([queue, byState]) => [
        queue,
        Object.fromEntries(Object.values(JobState).map((s) => [s, byState[s] ?? 0])) as Record<JobState, number>,
      ]),
    );
  }

  /** Folds pending count deltas (maintenance). Returns how many it folded. */
  async compactCounts(limit = 10_000): Promise<number> {
    return this.store.compactQueueCounts(v.integer(limit, "limit", 1, 1_000_000));
  }

  private async queueRow(name: string): Promise<QueueRow> {
    const [row] = await this.store.getQueues([name]);
    if (!row) throw new NotFoundError("queue", name);
    return row;
  }
}

function rateLimit(value: unknown): RateLimit {
  if (typeof value !== "object" || value === null) {
    throw new ValidationError("rateLimit", "must be { count, intervalMs } or null");
  }
  const { count, intervalMs } = value as Record<string, unknown>;
  return {
    count: v.integer(count, "rateLimit.count", 1, QUEUE_LIMITS.rateLimitCountMax),
    intervalMs: v.integer(intervalMs, "rateLimit.intervalMs", 1, QUEUE_LIMITS.rateLimitIntervalMsMax),
  };
}

/** The public settings, without the store's start log. */
function settingsOf(row: QueueRow): QueueSettings {
  const { recentStarts: _log, ...settings } = row;
  return settings;
}
