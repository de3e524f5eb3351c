/**
 * Queue stats on both dialects: counts by state (counter table + unfolded
 * deltas) against the jobs table itself, the one-minute window figures, run
 * time average / p95, the wait estimate against a simulated steady workload on
 * the fake clock, and that no statement of the stats scans `jobs` (PostgreSQL
 * plans over 200,000 rows; SQLite query plans).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Sql } from "../../src/store/sql.ts";
import { DEFAULT_BACKOFF } from "../../src/jobs/backoff.ts";
import { JobService } from "../../src/jobs/job-service.ts";
import { ALL_STATES, JobState } from "../../src/jobs/states.ts";
import type { Job, LeasedJob } from "../../src/jobs/types.ts";
import { percentile } from "../../src/queues/policy.ts";
import { QueueService } from "../../src/queues/queue-service.ts";
import type { JobStore } from "../../src/store/job-store.ts";
import { postgresDialect } from "../../src/store/postgres/dialect.ts";
import { PrismaJobStore, RECENT_RUNS } from "../../src/store/prisma-job-store.ts";
import type { SqlClient } from "../../src/store/sql-client.ts";
import { sqliteDialect } from "../../src/store/sqlite/dialect.ts";
import { sqliteDatabaseClass } from "../../src/store/sqlite/driver.ts";
import { queryDatabase } from "../helpers/inspect.ts";
import { BACKENDS, createTestDatabase, withPg } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { ManualClock } from "../helpers/clock.ts";

type StateCounts = Record<JobState, number>;

const zeroCounts = (): StateCounts => Object.fromEntries(ALL_STATES.map((s) => [s, 0])) as StateCounts;

/** Jobs per queue and state, counted in the jobs table itself. */
async function tableCounts(db: TestDatabase): Promise<Map<string, StateCounts>> {
  const rows = await queryDatabase<{ queue: string; state: JobState; n: number | string }>(
    db,
    `SELECT queue, state, COUNT(*) AS n FROM jobs GROUP BY queue, state`,
  );
  const out = new Map<string, StateCounts>();
  for (const r of rows) {
    const counts = out.get(r.queue) ?? zeroCounts();
    counts[r.state] = Number(r.n);
    out.set(r.queue, counts);
  }
  return out;
}

async function deltaRows(db: TestDatabase): Promise<number> {
  const [row] = await queryDatabase<{ n: number | string }>(db, `SELECT COUNT(*) AS n FROM queue_state_deltas`);
  return Number(row?.n ?? -1);
}

describe.each(BACKENDS)("queue stats on %s", (dialect) => {
  let db: TestDatabase;
  let clock: ManualClock;
  let store: JobStore;
  let jobs: JobService;
  let queues: QueueService;

  beforeEach(async () => {
    db = await createTestDatabase(dialect);
    clock = new ManualClock();
    store = await db.open();
    jobs = new JobService(store, { now: clock.now, random: () => 0.5 });
    queues = new QueueService(store, { now: clock.now });
  });
  afterEach(async () => {
    await db.dispose();
  });

  /** queueStats().counts of every queue equals a GROUP BY over the jobs table. */
  async function expectCountsMatchTable(names: readonly string[], label: string): Promise<void> {
    const table = await tableCounts(db);
    for (const name of names) {
      const { counts } = await queues.queueStats(name);
      expect(Object.keys(counts).sort(), `${label}: ${name} lists every state`).toEqual([...ALL_STATES].sort());
      expect(counts, `${label}: counts of ${name}`).toEqual(table.get(name) ?? zeroCounts());
    }
  }

  async function claimAll(queue: string, n: number, leaseSeconds = 600): Promise<LeasedJob[]> {
    const claimed = await jobs.claim({ queues: [queue], workerId: "w", limit: n, leaseSeconds });
    expect(claimed).toHaveLength(n);
    return claimed;
  }

  /** The newest n jobs of `queue` in `state` (exactly n). */
  async function jobsIn(queue: string, state: JobState, n: number): Promise<Job[]> {
    const page = await jobs.listJobs({ queue, states: [state] }, { first: n });
    expect(page.jobs).toHaveLength(n);
    return page.jobs;
  }

  it("counts by state match the jobs table after a mixed workload, before and after compaction and pruning", async () => {
    const names = ["alpha", "beta", "gamma"];
    await queues.configureQueue({ name: "gamma", concurrency: 3 }); // a queue without jobs
    await queues.configureQueue({ name: "beta", maxQueued: 150 });

    // alpha: 100 jobs, every 5th one minute ahead (SCHEDULED); a repeat of 10 keys adds nothing.
    const alphaInputs = Array.from({ length: 100 }, (_, i) => ({
      queue: "alpha",
      payload: { i },
      idempotencyKey: `a${i}`,
      ...(i % 5 === 0 && { delayMs: 60_000 }),
    }));
    await jobs.enqueueMany(alphaInputs);
    const again = await jobs.enqueueMany(alphaInputs.slice(0, 10));
    expect(again.every((r) => !r.created)).toBe(true);
    // beta: 100 jobs, every 4th 30 s ahead, some with a single attempt.
    await jobs.enqueueMany(
      Array.from({ length: 100 }, (_, i) => ({
        queue: "beta",
        payload: { i },
        maxAttempts: i % 3 === 0 ? 1 : 3,
        ...(i % 4 === 0 && { delayMs: 30_000 }),
      })),
    );
    // Past maxQueued: rejected as a whole, and the counters roll back with it.
    await expect(
      jobs.enqueueMany(Array.from({ length: 60 }, () => ({ queue: "beta", payload: null }))),
    ).rejects.toMatchObject({ code: "QUEUE_FULL" });
    await expectCountsMatchTable(names, "after enqueue");
    const fresh = await queues.queueStats("alpha");
    expect(fresh.counts).toMatchObject({ QUEUED: 80, SCHEDULED: 20, RUNNING: 0 });

    // alpha: 40 running; of them 15 succeed, 8 fail retryably, 5 fail for good,
    // 3 get a cancel request (2 of those acknowledge it: CANCELLED).
    const a = await claimAll("alpha", 40);
    for (const j of a.slice(0, 15)) await jobs.complete({ jobId: j.id, leaseToken: j.leaseToken });
    for (const j of a.slice(15, 23)) {
      await jobs.fail({ jobId: j.id, leaseToken: j.leaseToken, error: { message: "later" }, retryInMs: 20_000 });
    }
    for (const j of a.slice(23, 28)) {
      await jobs.fail({ jobId: j.id, leaseToken: j.leaseToken, error: { message: "bad" }, retryable: false });
    }
    for (const j of a.slice(28, 31)) await jobs.cancel(j.id);
    for (const j of a.slice(28, 30)) {
      expect((await jobs.fail({ jobId: j.id, leaseToken: j.leaseToken, error: { message: "stopped" } })).state).toBe(
        "CANCELLED",
      );
    }
    for (const j of await jobsIn("alpha", JobState.QUEUED, 10)) await jobs.cancel(j.id);
    for (const j of await jobsIn("alpha", JobState.SCHEDULED, 4)) await jobs.cancel(j.id);
    const failed = await jobsIn("alpha", JobState.FAILED, 2);
    for (const j of failed) expect((await jobs.retry(j.id)).state).toBe("QUEUED");

    // beta: 30 running on a short lease; 10 succeed, 10 fail retryably (single-attempt ones die).
    const b = await claimAll("beta", 30, 5);
    for (const j of b.slice(0, 10)) await jobs.complete({ jobId: j.id, leaseToken: j.leaseToken });
    for (const j of b.slice(10, 20)) {
      await jobs.fail({ jobId: j.id, leaseToken: j.leaseToken, error: { message: "x" } });
    }
    await expectCountsMatchTable(names, "after claims and outcomes");
    expect((await queues.queueStats("alpha")).counts).toEqual({
      SCHEDULED: 16 + 8,
      QUEUED: 80 - 40 - 10 + 2,
      RUNNING: 40 - 15 - 8 - 5 - 2,
      SUCCEEDED: 15,
      FAILED: 5 - 2,
      CANCELLED: 2 + 10 + 4,
    });

    // Leases of beta expire; due retries and scheduled jobs get promoted (partly).
    clock.advance(10_000);
    expect(await jobs.sweepExpiredLeases()).toBe(10);
    clock.advance(25_000);
    expect(await jobs.promoteDueJobs(15)).toBe(15);
    await claimAll("alpha", 5);
    await expectCountsMatchTable(names, "after sweep and promotion");

    // Compaction in small steps keeps the counts exact at every step.
    const pending = await deltaRows(db);
    expect(pending).toBeGreaterThan(7);
    expect(await queues.compactCounts(7)).toBe(7);
    expect(await deltaRows(db)).toBe(pending - 7);
    await expectCountsMatchTable(names, "after a partial compaction");
    expect(await queues.compactCounts()).toBe(pending - 7);
    expect(await deltaRows(db)).toBe(0);
    expect(await queues.compactCounts()).toBe(0);
    await expectCountsMatchTable(names, "after a full compaction");

    // New work after compaction: counter rows plus fresh deltas.
    for (const j of await jobsIn("alpha", JobState.RUNNING, 3)) {
      await jobs.complete({ jobId: j.id, leaseToken: j.leaseToken! });
    }
    clock.advance(30_000);
    await jobs.claim({ queues: ["beta"], workerId: "w", limit: 25, leaseSeconds: 600 });
    expect(await deltaRows(db)).toBeGreaterThan(0);
    await expectCountsMatchTable(names, "after more work on compacted counts");

    // Retention deletes every finished job; the counts follow.
    clock.advance(1);
    const finished = [...(await tableCounts(db)).values()].reduce(
      (sum, c) => sum + c.SUCCEEDED + c.FAILED + c.CANCELLED,
      0,
    );
    expect(finished).toBeGreaterThan(0);
    expect(await jobs.pruneFinishedJobs({ succeededBefore: clock.now(), failedBefore: clock.now() })).toBe(finished);
    await expectCountsMatchTable(names, "after pruning");
    expect((await queues.queueStats("alpha")).counts).toMatchObject({ SUCCEEDED: 0, FAILED: 0, CANCELLED: 0 });
    await queues.compactCounts();
    expect(await deltaRows(db)).toBe(0);
    await expectCountsMatchTable(names, "after pruning and compaction");
    expect((await queues.queueStats("gamma")).counts).toEqual(zeroCounts());
  });

  it("computes the one-minute window, average and p95 run time and the oldest wait on the clock", async () => {
    const q = "timed";
    const t0 = clock.now().getTime();
    const at = (s: number) => clock.set(new Date(t0 + s * 1000));

    await queues.configureQueue({ name: q, paused: false }); // known, but no job yet
    expect(await queues.queueStats(q)).toMatchObject({
      startedLastMinute: 0,
      finishedLastMinute: 0,
      averageRunMs: null,
      p95RunMs: null,
      oldestWaitingMs: null,
    });

    // An old run of 90 s, finished long before the window.
    await jobs.enqueue({ queue: q, payload: "old" });
    const [old] = await claimAll(q, 1);
    at(90);
    await jobs.complete({ jobId: old!.id, leaseToken: old!.leaseToken });
    // A job started 61 s before the stats are read and still running.
    at(124);
    await jobs.enqueue({ queue: q, payload: "long" });
    await claimAll(q, 1);
    // 20 jobs start together at 160 s and run 1, 2, …, 20 s; one more fails for good at 170 s.
    at(160);
    await jobs.enqueueMany(Array.from({ length: 21 }, (_, k) => ({ queue: q, payload: { k } })));
    const batch = await claimAll(q, 21);
    const failing = batch.find((j) => (j.payload as { k: number }).k === 20)!;
    const runs = batch.filter((j) => j !== failing);
    let cancelTarget: Job | undefined;
    for (const j of runs) {
      const k = (j.payload as { k: number }).k + 1;
      at(160 + k);
      await jobs.complete({ jobId: j.id, leaseToken: j.leaseToken });
      if (k === 10) {
        await jobs.fail({
          jobId: failing.id,
          leaseToken: failing.leaseToken,
          error: { message: "no" },
          retryable: false,
        });
      }
      if (k === 12) cancelTarget = (await jobs.enqueue({ queue: q, payload: "cancel me" })).job;
      if (k === 15) await jobs.cancel(cancelTarget!.id);
      if (k === 18) await jobs.enqueue({ queue: q, payload: "oldest waiting" });
    }
    at(182);
    await jobs.enqueue({ queue: q, payload: "urgent", priority: -5 });
    await jobs.enqueue({ queue: q, payload: "later", delayMs: 3_600_000 });

    at(185);
    const runMs = [90_000, ...Array.from({ length: 20 }, (_, k) => (k + 1) * 1000)];
    const stats = await queues.queueStats(q);
    expect(stats).toMatchObject({
      queue: q,
      counts: { SCHEDULED: 1, QUEUED: 2, RUNNING: 1, SUCCEEDED: 21, FAILED: 1, CANCELLED: 1 },
      // The 20 runs and the failed one started at 160 s; "long" (124 s) and "old" (0 s) did not.
      startedLastMinute: 21,
      // 20 runs, the failure and the cancel; "old" finished at 90 s.
      finishedLastMinute: 22,
      // (90 + 1 + 2 + … + 20) s / 21 = 14285.7 ms
      averageRunMs: 14_286,
      // Nearest rank: ceil(0.95 × 21) = 20th of 21 sorted runs = 20 s (not the 90 s maximum).
      p95RunMs: 20_000,
      // "oldest waiting" (178 s) is older than "urgent" (182 s); the scheduled job does not count.
      oldestWaitingMs: 7_000,
    });
    expect(stats.p95RunMs).toBe(percentile(runMs, 95));
    expect(stats.averageRunMs).toBe(Math.round(runMs.reduce((x, y) => x + y, 0) / runMs.length));

    // A minute later nothing started or finished; the run times stay.
    at(185 + 61);
    expect(await queues.queueStats(q)).toMatchObject({
      startedLastMinute: 0,
      finishedLastMinute: 0,
      averageRunMs: 14_286,
      p95RunMs: 20_000,
      oldestWaitingMs: 68_000,
    });
  });

  it(`averages only the newest ${RECENT_RUNS} succeeded runs`, async () => {
    const q = "recent";
    await jobs.enqueueMany(Array.from({ length: 5 }, () => ({ queue: q, payload: "slow" })));
    const slow = await claimAll(q, 5);
    clock.advance(50_000);
    for (const j of slow) await jobs.complete({ jobId: j.id, leaseToken: j.leaseToken });
    clock.advance(10_000);
    await jobs.enqueueMany(Array.from({ length: RECENT_RUNS }, () => ({ queue: q, payload: "fast" })));
    const fast = await claimAll(q, RECENT_RUNS);
    clock.advance(1_000);
    for (const j of fast) await jobs.complete({ jobId: j.id, leaseToken: j.leaseToken });
    const stats = await queues.queueStats(q);
    expect(stats.counts.SUCCEEDED).toBe(RECENT_RUNS + 5);
    expect(stats.averageRunMs).toBe(1_000);
    expect(stats.p95RunMs).toBe(1_000);
  });

  interface Probe {
    /** QUEUED jobs when the estimate was read. */
    ahead: number;
    estimated: number | null;
    actual: number;
  }

  /**
   * Workers on the fake clock: each holds at most one job, runs it exactly
   * runMs, and polls (claim, limit 1) at every step while idle, so a job
   * starts as soon as the queue's policy lets it.
   */
  function simulate(queue: string, workerCount: number, runMs: number, stepMs: number) {
    const workers = Array.from({ length: workerCount }, (_, i) => ({
      id: `w${i}`,
      job: null as LeasedJob | null,
      startedMs: 0,
    }));
    const claimedAt = new Map<string, number>();
    let mostBusy = 0;

    /** Finish the runs that reached runMs, then let every idle worker poll once. */
    async function tick(): Promise<void> {
      const now = clock.now().getTime();
      for (const w of workers) {
        if (w.job && now - w.startedMs >= runMs) {
          await jobs.complete({ jobId: w.job.id, leaseToken: w.job.leaseToken });
          w.job = null;
        }
      }
      for (const w of workers) {
        if (w.job) continue;
        const [job] = await jobs.claim({ queues: [queue], workerId: w.id, limit: 1, leaseSeconds: 3_600 });
        if (!job) continue;
        w.job = job;
        w.startedMs = now;
        claimedAt.set(job.id, now);
      }
      mostBusy = Math.max(mostBusy, workers.filter((w) => w.job !== null).length);
    }

    async function runUntil(ms: number): Promise<void> {
      while (clock.now().getTime() < ms) {
        clock.advance(stepMs);
        await tick();
      }
    }

    /** At each instant: read the estimate, enqueue a probe; then run until every probe started. */
    async function probe(instants: readonly number[]): Promise<Probe[]> {
      const taken: { id: string; at: number; ahead: number; estimated: number | null }[] = [];
      for (const at of instants) {
        await runUntil(at);
        const stats = await queues.queueStats(queue);
        const { job } = await jobs.enqueue({ queue, payload: "probe" });
        taken.push({
          id: job.id,
          at: clock.now().getTime(),
          ahead: stats.counts.QUEUED,
          estimated: stats.estimatedWaitMs,
        });
        await tick(); // a free slot takes it at once
      }
      for (let i = 0; i < 100_000 && taken.some((p) => !claimedAt.has(p.id)); i++) {
        clock.advance(stepMs);
        await tick();
      }
      return taken.map((p) => {
        const started = claimedAt.get(p.id);
        if (started === undefined) throw new Error(`probe ${p.id} was never claimed`);
        return { ahead: p.ahead, estimated: p.estimated, actual: started - p.at };
      });
    }

    return { workers, claimedAt, tick, runUntil, probe, mostBusy: () => mostBusy };
  }

  /** Every probe's estimate is within 25% of its actual wait. */
  function expectWithinQuarter(probes: readonly Probe[]): void {
    for (const p of probes) {
      expect(p.estimated, JSON.stringify(p)).not.toBeNull();
      expect(Math.abs(p.estimated! - p.actual), JSON.stringify(p)).toBeLessThanOrEqual(0.25 * p.actual);
    }
  }

  const every = (fromMs: number, stepMs: number, n: number): number[] =>
    Array.from({ length: n }, (_, i) => fromMs + i * stepMs);

  it("estimates the wait within 25% under a concurrency limit and steady 10 s runs", async () => {
    const q = "steady";
    const runMs = 10_000;
    await queues.configureQueue({ name: q, concurrency: 2 });
    const sim = simulate(q, 3, runMs, 100); // one worker more than the limit lets run
    const t0 = clock.now().getTime();

    // Stagger the two slots by 3 s, then keep a backlog.
    await jobs.enqueue({ queue: q, payload: 0 });
    await sim.tick();
    await sim.runUntil(t0 + 3_000);
    await jobs.enqueueMany(Array.from({ length: 15 }, (_, i) => ({ queue: q, payload: i + 1 })));
    await sim.tick();
    await sim.runUntil(t0 + 25_000);

    const before = await queues.queueStats(q);
    expect(before.averageRunMs).toBe(runMs);
    expect(before.counts).toMatchObject({ RUNNING: 2, QUEUED: 10, SUCCEEDED: 4 });
    expect(sim.workers.filter((w) => w.job !== null)).toHaveLength(2);

    const [main] = await sim.probe([t0 + 25_000]);
    // Slots free at 30 s and 33 s; the 11th job in line starts 5 runs after the first: 80 s.
    expect(main).toMatchObject({ ahead: 10, actual: 55_000 });
    expectWithinQuarter([main!]);

    // Then short and growing backlogs, at instants out of step with the runs.
    const later = await sim.probe(every(clock.now().getTime() + 1_700, 3_300, 12));
    expect(new Set(later.map((p) => p.ahead)).size).toBeGreaterThanOrEqual(3);
    expectWithinQuarter(later);
    expect(sim.mostBusy()).toBe(2); // the third worker never got a job
  });

  it("estimates the wait within 25% under a rate limit with short runs", async () => {
    const q = "metered";
    const runMs = 500;
    await queues.configureQueue({ name: q, rateLimit: { count: 2, intervalMs: 10_000 } });
    const sim = simulate(q, 3, runMs, 100);
    const t0 = clock.now().getTime();

    // Starts at 0 s and 4 s, then one every time a start leaves the window: 10, 14, 20, 24, …
    await jobs.enqueue({ queue: q, payload: 0 });
    await sim.tick();
    await sim.runUntil(t0 + 4_000);
    await jobs.enqueueMany(Array.from({ length: 15 }, (_, i) => ({ queue: q, payload: i + 1 })));
    await sim.tick();
    await sim.runUntil(t0 + 26_000);

    const before = await queues.queueStats(q);
    expect(before.averageRunMs).toBe(runMs);
    expect(before.counts).toMatchObject({ RUNNING: 0, QUEUED: 10, SUCCEEDED: 6 });
    expect([...sim.claimedAt.values()].map((ms) => ms - t0)).toEqual([0, 4_000, 10_000, 14_000, 20_000, 24_000]);

    const [main] = await sim.probe([t0 + 26_000]);
    // 10 ahead start at 30, 34, …, 70, 74 s; the probe at 80 s.
    expect(main).toMatchObject({ ahead: 10, actual: 54_000 });
    expectWithinQuarter([main!]);

    const later = await sim.probe(every(clock.now().getTime() + 1_300, 3_700, 12));
    expect(new Set(later.map((p) => p.ahead)).size).toBeGreaterThanOrEqual(3);
    expectWithinQuarter(later);
  });

  it("counts only the jobs a new job would wait behind: lower or equal priority numbers", async () => {
    await queues.configureQueue({ name: "prio", concurrency: 1 });
    await jobs.enqueue({ queue: "prio" });
    const [warm] = await jobs.claim({ queues: ["prio"], workerId: "w" });
    clock.advance(10_000);
    await jobs.complete({ jobId: warm!.id, leaseToken: warm!.leaseToken });
    await jobs.enqueueMany([
      { queue: "prio", priority: 5 },
      { queue: "prio", priority: 5 },
      { queue: "prio", priority: 5 },
      { queue: "prio", priority: 0 },
      { queue: "prio", priority: -3 },
    ]);
    // Two jobs (priority 0 and -3) go before a new default-priority job; the three 5s go after it.
    expect((await queues.queueStats("prio")).estimatedWaitMs).toBe(20_000);
    // With a queue default of 5, the new job waits behind all five.
    await queues.configureQueue({ name: "prio", defaultPriority: 5 });
    expect((await queues.queueStats("prio")).estimatedWaitMs).toBe(50_000);
  });

  it("gives no estimate for a paused queue and NOT_FOUND for an unknown one", async () => {
    const q = "sometimes";
    await queues.configureQueue({ name: q, concurrency: 2 });
    // No run seen yet: a job that finds a free slot waits 0, otherwise there is no estimate.
    await jobs.enqueue({ queue: q, payload: 1 });
    expect((await queues.queueStats(q)).estimatedWaitMs).toBe(0);
    await jobs.enqueue({ queue: q, payload: 2 });
    expect((await queues.queueStats(q)).estimatedWaitMs).toBeNull();

    const [first] = await claimAll(q, 1);
    clock.advance(4_000);
    await jobs.complete({ jobId: first!.id, leaseToken: first!.leaseToken });
    const open = await queues.queueStats(q);
    expect(open.averageRunMs).toBe(4_000);
    expect(open.estimatedWaitMs).toBe(0); // one queued job, two free slots

    await queues.pauseQueue(q);
    const paused = await queues.queueStats(q);
    expect(paused.estimatedWaitMs).toBeNull();
    expect(paused.counts.QUEUED).toBe(1);
    await queues.resumeQueue(q);
    expect((await queues.queueStats(q)).estimatedWaitMs).toBe(0);

    await expect(queues.queueStats("no-such-queue")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(queues.queueStats("bad name!")).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
  });
});

/** The statements readQueueStats issues, captured from a store on a recording client. */
async function statsStatements(dialect: "sqlite" | "postgres", queue: string, since: Date): Promise<Sql[]> {
  const seen: Sql[] = [];
  const recorder: SqlClient = {
    $queryRaw: async <T>(query: Sql) => {
      seen.push(query);
      return [] as T;
    },
    $executeRaw: async () => 0,
    $transaction: () => Promise.reject(new Error("readQueueStats must not open a transaction")),
    $disconnect: async () => undefined,
  };
  const sqlOf = dialect === "postgres" ? postgresDialect : sqliteDialect("/nonexistent/stats.db");
  await new PrismaJobStore(recorder, sqlOf).readQueueStats(queue, since, 0);
  return seen;
}

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  Plans?: PlanNode[];
}

function planNodes(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(planNodes)];
}

describe.skipIf(!BACKENDS.includes("postgres"))("queue stats cost on postgres", () => {
  let db: TestDatabase;

  beforeEach(async () => {
    db = await createTestDatabase("postgres");
  });
  afterEach(async () => {
    await db.dispose();
  });

  it("reads every figure through an index, with 200,000 finished jobs in the table", async () => {
    const clock = new ManualClock();
    const store = await db.open();
    const jobs = new JobService(store, { now: clock.now });
    const queues = new QueueService(store, { now: clock.now });
    await jobs.enqueueMany(Array.from({ length: 20 }, (_, i) => ({ queue: "bulk", payload: i })));
    await jobs.claim({ queues: ["bulk"], workerId: "w", limit: 5 });

    // 200,000 jobs finished over the day before the clock: 9 in 10 in "bulk", 1 in 7 FAILED.
    const total = 200_000;
    const now = clock.now();
    await withPg(async (c) => {
      await c.query(
        `INSERT INTO jobs (queue, state, priority, run_at, attempts, max_attempts, backoff, tags, last_seq,
           created_at, started_at, finished_at, updated_at)
         SELECT CASE WHEN g % 10 = 0 THEN 'side' ELSE 'bulk' END,
                CASE WHEN g % 7 = 0 THEN 'FAILED' ELSE 'SUCCEEDED' END,
                0, t, 1, 3, $1::jsonb, '[]'::jsonb, 3, t, t, t + interval '1 ms' * (g % 5000), t + interval '5 s'
         FROM generate_series(1, $2::int) AS g,
              LATERAL (SELECT $3::timestamp - interval '1 day' + interval '400 ms' * g AS t) AS x`,
        [JSON.stringify(DEFAULT_BACKOFF), total, now.toISOString().replace("Z", "")],
      );
      await c.query("ANALYZE jobs");
      await c.query("ANALYZE queue_state_deltas");
    }, db.url);

    const stats = await queues.queueStats("bulk");
    const bulkFailed = Math.floor(total / 7) - Math.floor(total / 70);
    expect(stats.counts).toMatchObject({
      QUEUED: 15,
      RUNNING: 5,
      FAILED: bulkFailed,
      SUCCEEDED: (total * 9) / 10 - bulkFailed,
    });

    const since = new Date(now.getTime() - 60_000);
    let readingJobs = 0;
    for (const queue of ["bulk", "side"]) {
      const statements = await statsStatements("postgres", queue, since);
      expect(statements.length).toBeGreaterThanOrEqual(5);
      for (const statement of statements) {
        const [row] = await withPg(
          async (c) =>
            (
              await c.query<{ "QUERY PLAN": { Plan: PlanNode }[] }>(`EXPLAIN (FORMAT JSON) ${statement.text}`, [
                ...statement.values.map((v) => (v instanceof Date ? v.toISOString().replace("Z", "") : v)),
              ])
            ).rows,
          db.url,
        );
        const plan = row?.["QUERY PLAN"][0]?.Plan;
        expect(plan, statement.text).toBeDefined();
        if (planNodes(plan!).some((n) => n["Relation Name"] === "jobs")) readingJobs++;
        const scans = planNodes(plan!).filter((n) => n["Node Type"] === "Seq Scan" && n["Relation Name"] === "jobs");
        expect(scans, `seq scan of jobs in:\n${statement.text}\n${JSON.stringify(plan, null, 1)}`).toEqual([]);
      }
    }
    expect(readingJobs).toBe(2 * 6); // started, finished, recent runs, oldest ready, running, ahead
  }, 60_000);
});

describe("queue stats cost on sqlite", () => {
  it("plans every statement on jobs as an index search", async () => {
    const db = await createTestDatabase("sqlite");
    try {
      await db.open(); // migrate
      const statements = await statsStatements("sqlite", "bulk", new Date());
      expect(statements.length).toBeGreaterThanOrEqual(5);
      const conn = new (sqliteDatabaseClass())(db.url.slice("file:".length), { readonly: true });
      let readingJobs = 0;
      try {
        for (const statement of statements) {
          const values = statement.values.map((v) => (v instanceof Date ? v.toISOString() : v));
          const plan = conn.prepare(`EXPLAIN QUERY PLAN ${statement.sql}`).all(...values) as { detail: string }[];
          const onJobs = plan.map((p) => p.detail).filter((d) => /\bjobs\b/.test(d));
          if (onJobs.length > 0) readingJobs++;
          for (const detail of onJobs) expect(detail, statement.sql).toMatch(/^SEARCH jobs USING/);
        }
        expect(readingJobs).toBe(6);
      } finally {
        conn.close();
      }
    } finally {
      await db.dispose();
    }
  });
});
