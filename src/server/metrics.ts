/**
 * Prometheus metrics of one server, served as text at GET /metrics.
 *
 * Each server has its own prom-client Registry (never the library's global
 * one), so several servers in one process keep their own figures.
 *
 * Where each figure comes from, and why:
 * - Transition counters and run/pickup histograms are counted from the
 *   committed writes of *this* process's JobService (its onEvents hook: events
 *   of a write are handed over only after commit, so a rolled-back write is
 *   never counted). Not from the live event feed: on PostgreSQL the feed sees
 *   every server's events, and each server would count them all. Summed over
 *   the servers of one database they give the cluster's totals.
 * - `jobwire_jobs{queue,state}` is read from the database at scrape time, in
 *   one statement over the per-queue count tables (QueueService.countJobsByQueue),
 *   so it is the database's truth, the same on every server.
 * - Live gauges (connections, subscriptions, pool) are read at scrape time.
 * - Delivery lag is observed as the live event feed hands each event out.
 *
 * Durations come from the jobs' own timestamps (the service clock), except the
 * claim latency, which is measured on the monotonic clock by the JobService.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { JobEventType, JobState } from "../jobs/states.ts";
import type { Job, JobEvent, JobEventInQueue } from "../jobs/types.ts";
import type { PoolStats } from "../store/job-store.ts";

/** What the scrape-time gauges read. */
export interface MetricSources {
  /** Job counts by queue and state (one database read). */
  jobCounts(): Promise<Map<string, Record<JobState, number>>>;
  /** Open WebSocket connections and subscriptions of this server. */
  liveCounts(): { connections: number; subscriptions: number };
  /** The database connections' figures that the store can see; null when it sees none. */
  pool(): Partial<PoolStats> | null;
}

export interface ServerMetricsOptions {
  /** The service clock (event and job timestamps are on it). */
  now: () => Date;
  /** Where a failed scrape-time read is reported (the scrape still answers, without that metric). */
  onError: (error: Error) => void;
  /** Add Node's process metrics (prom-client's default names: process_*, nodejs_*). Default true. */
  processMetrics?: boolean;
}

export interface MetricsPage {
  contentType: string;
  body: string;
}

/** Seconds. Jobs run and wait from milliseconds to hours. */
const JOB_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
/** Seconds. One claim statement (or a few, under a queue limit). */
const CLAIM_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Seconds. Commit → hint → feed read; on PostgreSQL also the horizon wait and the 1 s safety poll. */
const LAG_SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const POOL_GAUGES = {
  total: ["jobwire_db_pool_connections", "Open database connections (busy or idle)."],
  idle: ["jobwire_db_pool_idle_connections", "Open database connections not in use."],
  waiting: ["jobwire_db_pool_waiting_requests", "Queries waiting for a free database connection."],
  max: ["jobwire_db_pool_max_connections", "Most database connections the pool opens (SQLite: its one connection)."],
} as const satisfies Record<keyof PoolStats, readonly [string, string]>;

export class ServerMetrics {
  /** This server's metrics (Node's process metrics live apart, see processRegistry). */
  readonly registry = new Registry();
  private readonly now: () => Date;
  private readonly onError: (error: Error) => void;
  private readonly process: Registry | null;
  private sources: MetricSources | null = null;

  private readonly enqueued: Counter<"queue">;
  private readonly started: Counter<"queue">;
  private readonly succeeded: Counter<"queue">;
  private readonly failed: Counter<"queue">;
  private readonly retried: Counter<"queue">;
  private readonly cancelled: Counter<"queue">;
  private readonly runSeconds: Histogram<"queue">;
  private readonly pickupSeconds: Histogram<"queue">;
  private readonly claimSeconds: Histogram;
  private readonly deliveryLag: Histogram;

  constructor(options: ServerMetricsOptions) {
    this.now = options.now;
    this.onError = options.onError;
    this.process = options.processMetrics === false ? null : processRegistry();
    const registers = [this.registry];
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames: ["queue"], registers });
    this.enqueued = counter(
      "jobwire_jobs_enqueued_total",
      "Jobs created by enqueue on this server (an idempotent repeat creates none).",
    );
    this.started = counter(
      "jobwire_jobs_started_total",
      "Jobs claimed (QUEUED → RUNNING) on this server: runs started.",
    );
    this.succeeded = counter("jobwire_jobs_succeeded_total", "Runs that ended SUCCEEDED on this server.");
    this.failed = counter(
      "jobwire_jobs_failed_total",
      "Runs that ended FAILED (dead-letter: non-retryable, or attempts exhausted; by a worker or by lease expiry) on this server.",
    );
    this.retried = counter(
      "jobwire_jobs_retried_total",
      "Runs that failed (or whose lease expired) with attempts left, so a retry was scheduled, on this server.",
    );
    this.cancelled = counter(
      "jobwire_jobs_cancelled_total",
      "Jobs that became CANCELLED on this server (waiting or running).",
    );
    this.runSeconds = new Histogram({
      name: "jobwire_job_run_seconds",
      help: "Duration of runs that ended on this server (succeeded, failed, retry scheduled, cancelled, lease expired): claim → end.",
      labelNames: ["queue"],
      buckets: JOB_SECONDS_BUCKETS,
      registers,
    });
    this.pickupSeconds = new Histogram({
      name: "jobwire_job_pickup_seconds",
      help: "Time from when a job became ready (the later of its runAt and its creation) to its claim, for claims on this server.",
      labelNames: ["queue"],
      buckets: JOB_SECONDS_BUCKETS,
      registers,
    });
    this.claimSeconds = new Histogram({
      name: "jobwire_claim_seconds",
      help: "Latency of claim calls on this server (promotion of due jobs plus the claim transaction), empty claims included.",
      buckets: CLAIM_SECONDS_BUCKETS,
      registers,
    });
    this.deliveryLag = new Histogram({
      name: "jobwire_event_delivery_lag_seconds",
      help: "Time from an event's transition to this server's live feed handing it to subscriptions (observed only while there are subscriptions).",
      buckets: LAG_SECONDS_BUCKETS,
      registers,
    });

    const jobs: Gauge<"queue" | "state"> = new Gauge({
      name: "jobwire_jobs",
      help: "Jobs in the database by queue and state, read at scrape time from the per-queue count tables.",
      labelNames: ["queue", "state"],
      registers,
      collect: async () => {
        jobs.reset();
        if (!this.sources) return;
        try {
          for (const [queue, counts] of await this.sources.jobCounts()) {
            for (const state of Object.values(JobState)) jobs.set({ queue, state }, counts[state]);
          }
        } catch (e) {
          // Answer the scrape with the other metrics; /readyz reports the database.
          this.onError(e instanceof Error ? e : new Error(String(e)));
        }
      },
    });
    const connections: Gauge = new Gauge({
      name: "jobwire_websocket_connections",
      help: "Open graphql-ws connections to this server.",
      registers,
      collect: () => connections.set(this.sources?.liveCounts().connections ?? 0),
    });
    const subscriptions: Gauge = new Gauge({
      name: "jobwire_subscriptions",
      help: "Active subscriptions on this server (jobEvents, jobChanged, queueStats, jobsAvailable).",
      registers,
      collect: () => subscriptions.set(this.sources?.liveCounts().subscriptions ?? 0),
    });
  }

  /**
   * Gives the scrape-time gauges their sources (the services exist only after
   * the hooks that feed this object were wired). The pool gauges are
   * registered for the figures the store can see: an unknown figure is left
   * out rather than shown as 0.
   */
  setSources(sources: MetricSources): void {
    this.sources = sources;
    const known = sources.pool() ?? {};
    for (const key of Object.keys(POOL_GAUGES) as (keyof PoolStats)[]) {
      if (known[key] === undefined) continue;
      const [name, help] = POOL_GAUGES[key];
      const gauge: Gauge = new Gauge({
        name,
        help,
        registers: [this.registry],
        collect: () => {
          const value = this.sources?.pool()?.[key];
          if (value !== undefined) gauge.set(value);
        },
      });
    }
  }

  /**
   * Counts one committed write of this process (JobService onEvents): its
   * events, and the jobs as the write left them (queue, runAt, startedAt).
   * Events without their job (promotions) feed no metric.
   */
  recordCommitted(events: readonly JobEvent[], jobs: readonly Job[]): void {
    const only = jobs.length === 1 ? jobs[0] : undefined;
    const byId = only ? null : new Map(jobs.map((j) => [j.id, j]));
    for (const event of events) {
      const job = byId ? byId.get(event.jobId) : only?.id === event.jobId ? only : undefined;
      if (!job) continue;
      const labels = { queue: job.queue };
      const at = event.createdAt.getTime();
      if (event.type === JobEventType.ENQUEUED) this.enqueued.inc(labels);
      else if (event.type === JobEventType.CLAIMED) {
        this.started.inc(labels);
        const readyAt = Math.max(job.runAt.getTime(), job.createdAt.getTime());
        this.pickupSeconds.observe(labels, Math.max(0, at - readyAt) / 1000);
      }
      if (event.fromState === JobState.RUNNING && event.toState !== JobState.RUNNING) {
        // startedAt is the current run's claim time until the next claim.
        if (job.startedAt) this.runSeconds.observe(labels, Math.max(0, at - job.startedAt.getTime()) / 1000);
        if (event.toState === JobState.SUCCEEDED) this.succeeded.inc(labels);
        else if (event.toState === JobState.FAILED) this.failed.inc(labels);
        else if (event.toState === JobState.SCHEDULED) this.retried.inc(labels);
      }
      if (event.toState === JobState.CANCELLED) this.cancelled.inc(labels);
    }
  }

  /** One claim call's latency (JobService onClaim). */
  observeClaim(durationMs: number): void {
    this.claimSeconds.observe(durationMs / 1000);
  }

  /** One event handed out by the live feed: how long after its transition. */
  observeDelivery(event: JobEventInQueue): void {
    this.deliveryLag.observe(Math.max(0, this.now().getTime() - event.createdAt.getTime()) / 1000);
  }

  /** The text page for GET /metrics. */
  async render(): Promise<MetricsPage> {
    const own = await this.registry.metrics();
    const body = this.process ? `${own}\n${await this.process.metrics()}` : own;
    return { contentType: this.registry.contentType, body };
  }
}

let sharedProcessRegistry: Registry | null = null;

/**
 * Node's process metrics (CPU, memory, heap, event-loop delay, GC, handles),
 * in one registry per process, made on first use. This is the one piece of
 * process-wide state here, on purpose: prom-client's default collectors
 * install process-wide observers (a GC PerformanceObserver, an event-loop
 * delay monitor) that it offers no way to stop, so one set per server would
 * pile up in a process that starts many servers (the test suite), and their
 * figures are the process's anyway, the same for every server in it.
 */
function processRegistry(): Registry {
  if (!sharedProcessRegistry) {
    sharedProcessRegistry = new Registry();
    collectDefaultMetrics({ register: sharedProcessRegistry });
  }
  return sharedProcessRegistry;
}
