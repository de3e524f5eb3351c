/**
 * Queue policies enforced by the store for every claimer: concurrency, rate
 * limit, maxQueued, pause, defaults. Racing claimers use separate connections
 * (separate pools on PostgreSQL), so the limits hold across processes too.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JobService } from "../../src/jobs/job-service.ts";
import type { LeasedJob } from "../../src/jobs/types.ts";
import { QueueService } from "../../src/queues/queue-service.ts";
import { BACKENDS, createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { ManualClock } from "../helpers/clock.ts";
import { readEventLog } from "../helpers/inspect.ts";
import type { EventRecord } from "../helpers/inspect.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function enqueueN(jobs: JobService, queue: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 1_000) {
    await jobs.enqueueMany(
      Array.from({ length: Math.min(1_000, n - i) }, (_, k) => ({ queue, payload: { n: i + k } })),
    );
  }
}

/** Claimers on their own connections race until `total` jobs are done; each job "runs" for holdMs. */
async function race(db: TestDatabase, queue: string, claimers: number, total: number, holdMs: number): Promise<void> {
  const services = await Promise.all(Array.from({ length: claimers }, async () => new JobService(await db.open())));
  let done = 0;
  const deadline = Date.now() + 50_000;
  await Promise.all(
    services.map(async (jobs, w) => {
      while (done < total) {
        if (Date.now() > deadline) throw new Error(`race on ${queue}: only ${done}/${total} done`);
        const claimed = await jobs.claim({ queues: [queue], workerId: `w${w}`, limit: 3, leaseSeconds: 300 });
        if (claimed.length === 0) {
          await sleep(1);
          continue;
        }
        if (holdMs > 0) await sleep(holdMs);
        for (const job of claimed) {
          await jobs.complete({ jobId: job.id, leaseToken: job.leaseToken });
          done++;
        }
      }
    }),
  );
}

/** Most jobs RUNNING at once, replaying the event log in write order. */
function maxRunningByWriteOrder(log: EventRecord[]): number {
  let running = 0;
  let max = 0;
  for (const e of log) {
    if (e.type === "claimed") max = Math.max(max, ++running);
    else if (e.type === "succeeded") running--;
  }
  return max;
}

/** Most jobs whose [start, finish) intervals overlap, from the events' times. */
function maxOverlapByTime(log: EventRecord[]): number {
  const points: [number, number][] = [];
  for (const e of log) {
    if (e.type === "claimed") points.push([e.at, 1]);
    else if (e.type === "succeeded") points.push([e.at, -1]);
  }
  // At equal times a finish comes before a start: [start, finish) intervals.
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let running = 0;
  let max = 0;
  for (const [, d] of points) max = Math.max(max, (running += d));
  return max;
}

describe.each(BACKENDS)("queue policies on %s", (dialect) => {
  let db: TestDatabase;
  let clock: ManualClock;
  let jobs: JobService;
  let queues: QueueService;

  beforeEach(async () => {
    db = await createTestDatabase(dialect);
    clock = new ManualClock();
    const store = await db.open();
    jobs = new JobService(store, { now: clock.now });
    queues = new QueueService(store, { now: clock.now });
  });
  afterEach(() => db.dispose());

  it("concurrency 1: 6 racing claimers never run two jobs at once, and all 500 finish", async () => {
    await queues.configureQueue({ name: "gpu", concurrency: 1 });
    await enqueueN(new JobService(await db.open()), "gpu", 500);
    await race(db, "gpu", 6, 500, 0);

    const log = await readEventLog(db);
    expect(log.filter((e) => e.type === "claimed")).toHaveLength(500);
    expect(log.filter((e) => e.type === "succeeded")).toHaveLength(500);
    expect(maxRunningByWriteOrder(log)).toBe(1);
    expect(maxOverlapByTime(log)).toBe(1);
  });

  it("concurrency 3: under 8 racing claimers at most (and at some point exactly) 3 run at once", async () => {
    await queues.configureQueue({ name: "api", concurrency: 3 });
    await enqueueN(new JobService(await db.open()), "api", 150);
    await race(db, "api", 8, 150, 5);

    const log = await readEventLog(db);
    expect(log.filter((e) => e.type === "succeeded")).toHaveLength(150);
    expect(maxRunningByWriteOrder(log)).toBe(3);
    expect(maxOverlapByTime(log)).toBe(3);
  });

  it("a claim for 10 jobs from a queue with 2 free slots gets 2", async () => {
    await queues.configureQueue({ name: "q", concurrency: 3 });
    await enqueueN(jobs, "q", 20);
    expect(await jobs.claim({ queues: ["q"], workerId: "a" })).toHaveLength(1);
    expect(await jobs.claim({ queues: ["q"], workerId: "b", limit: 10 })).toHaveLength(2);
    expect(await jobs.claim({ queues: ["q"], workerId: "c", limit: 10 })).toHaveLength(0);
  });

  it("rate limit 5 per second over 50 jobs: no 1-second window holds more than 5 starts", async () => {
    await queues.configureQueue({ name: "sms", rateLimit: { count: 5, intervalMs: 1_000 } });
    await enqueueN(jobs, "sms", 50);
    const claimers = await Promise.all([1, 2, 3].map(async () => new JobService(await db.open(), { now: clock.now })));
    const biggest: number[] = [];
    let done = 0;
    for (let tick = 0; done < 50; tick++) {
      if (tick > 2_000) throw new Error(`rate-limited drain stalled at ${done}/50`);
      const batches = await Promise.all(
        claimers.map((c, i) => c.claim({ queues: ["sms"], workerId: `w${i}`, limit: 10, leaseSeconds: 300 })),
      );
      biggest.push(Math.max(...batches.map((b) => b.length)));
      for (const job of batches.flat() as LeasedJob[]) {
        await jobs.complete({ jobId: job.id, leaseToken: job.leaseToken });
        done++;
      }
      clock.advance(50);
    }
    const starts = (await readEventLog(db)).filter((e) => e.type === "claimed").map((e) => e.at);
    expect(starts).toHaveLength(50);
    for (const t of starts) expect(starts.filter((s) => s >= t && s < t + 1_000).length).toBeLessThanOrEqual(5);
    // Spread, not starved: 50 starts at 5 per second take 9 s and change.
    const span = Math.max(...starts) - Math.min(...starts);
    expect(span).toBeGreaterThanOrEqual(9_000);
    expect(span).toBeLessThan(10_000);
    expect(Math.max(...biggest)).toBe(5);
  });

  it("maxQueued 50: the 51st enqueue fails with QUEUE_FULL and writes nothing; after one job finishes it succeeds", async () => {
    await queues.configureQueue({ name: "mail", maxQueued: 50 });
    await enqueueN(jobs, "mail", 50);
    const before = await readEventLog(db);

    await expect(jobs.enqueue({ queue: "mail", payload: { n: 51 } })).rejects.toMatchObject({
      code: "QUEUE_FULL",
      details: { queue: "mail", maxQueued: 50 },
    });
    // A bulk enqueue is all or nothing, even when part of it would fit elsewhere.
    await expect(
      jobs.enqueueMany([
        { queue: "other", payload: 1 },
        { queue: "mail", payload: 2 },
      ]),
    ).rejects.toMatchObject({ code: "QUEUE_FULL" });
    expect(await readEventLog(db)).toEqual(before);
    expect((await jobs.listJobs({ queue: "other" })).jobs).toEqual([]);
    expect((await jobs.listJobs({ queue: "mail" }, { first: 100 })).jobs).toHaveLength(50);

    // A repeated idempotent enqueue is not new work: it returns its job.
    await queues.configureQueue({ name: "mail", maxQueued: null });
    const keyed = await jobs.enqueue({ queue: "mail", idempotencyKey: "k1" });
    await queues.configureQueue({ name: "mail", maxQueued: 50 });
    expect(await jobs.enqueue({ queue: "mail", idempotencyKey: "k1" })).toMatchObject({
      created: false,
      job: { id: keyed.job.id },
    });
    await jobs.cancel(keyed.job.id);

    const [running] = await jobs.claim({ queues: ["mail"], workerId: "w" });
    await jobs.complete({ jobId: running!.id, leaseToken: running!.leaseToken });
    expect((await jobs.enqueue({ queue: "mail", payload: { n: 51 } })).created).toBe(true);
    await expect(jobs.enqueue({ queue: "mail" })).rejects.toMatchObject({ code: "QUEUE_FULL" });
  });

  it("maxQueued holds against 20 racing producers on separate connections", async () => {
    const producers = await Promise.all(Array.from({ length: 20 }, async () => new JobService(await db.open())));
    // Warm every pool's connections first, so the enqueues below really overlap.
    await Promise.all(producers.map((p) => p.listJobs({ queue: "burst" })));
    // The race is at the boundary, so cross it many times: each round raises
    // the limit by 5 and lets 20 producers (3 jobs each) fight for the room.
    for (let round = 1; round <= 8; round++) {
      await queues.configureQueue({ name: "burst", maxQueued: 5 * round });
      const outcomes = await Promise.allSettled(
        producers.flatMap((p) => [1, 2, 3].map((n) => p.enqueue({ queue: "burst", payload: { round, n } }))),
      );
      const ok = outcomes.filter((o) => o.status === "fulfilled").length;
      const full = outcomes.filter(
        (o) => o.status === "rejected" && (o.reason as { code?: string }).code === "QUEUE_FULL",
      );
      expect({ round, ok, full: full.length }).toEqual({ round, ok: 5, full: 55 });
    }
    expect((await jobs.listJobs({ queue: "burst" }, { first: 100 })).jobs).toHaveLength(40);
  });

  it("pause stops new claims while running jobs finish; resume restarts them", async () => {
    await enqueueN(jobs, "batch", 5);
    const [first] = await jobs.claim({ queues: ["batch"], workerId: "w" });
    expect((await queues.pauseQueue("batch")).paused).toBe(true);

    expect(await jobs.claim({ queues: ["batch"], workerId: "w", limit: 10 })).toEqual([]);
    // The running job is not disturbed: heartbeats and completes as usual.
    await jobs.heartbeat({ jobId: first!.id, leaseToken: first!.leaseToken });
    expect((await jobs.complete({ jobId: first!.id, leaseToken: first!.leaseToken })).state).toBe("SUCCEEDED");
    // Enqueue still works; a multi-queue claim skips only the paused queue.
    await jobs.enqueue({ queue: "live" });
    expect((await jobs.claim({ queues: ["batch", "live"], workerId: "w", limit: 10 })).map((j) => j.queue)).toEqual([
      "live",
    ]);

    expect((await queues.resumeQueue("batch")).paused).toBe(false);
    expect(await jobs.claim({ queues: ["batch"], workerId: "w", limit: 10 })).toHaveLength(4);
  });

  it("a multi-queue claim honours each queue's allowance and keeps priority order across them", async () => {
    await queues.configureQueue({ name: "one", concurrency: 1 });
    await jobs.enqueueMany([
      { queue: "one", priority: 1 },
      { queue: "one", priority: 1 },
      { queue: "free", priority: 2 },
      { queue: "free", priority: 0 },
      { queue: "free", priority: 3 },
    ]);
    const claimed = await jobs.claim({ queues: ["one", "free"], workerId: "w", limit: 3 });
    expect(claimed.map((j) => [j.queue, j.priority])).toEqual([
      ["free", 0],
      ["one", 1],
      ["free", 2],
    ]);
  });

  it("queue defaults apply where the job says nothing: priority, maxAttempts, backoff, lease", async () => {
    await queues.configureQueue({
      name: "d",
      defaultPriority: 7,
      defaultMaxAttempts: 6,
      defaultBackoff: { type: "schedule", delaysMs: [30_000, 120_000, 480_000, 1_800_000, 7_200_000] },
      defaultLeaseSeconds: 90,
    });
    const { job } = await jobs.enqueue({ queue: "d" });
    expect(job).toMatchObject({ priority: 7, maxAttempts: 6, backoff: { type: "schedule" } });
    const own = await jobs.enqueue({ queue: "d", priority: -1, maxAttempts: 2 });
    expect(own.job).toMatchObject({ priority: -1, maxAttempts: 2 });

    const [leased] = await jobs.claim({ queues: ["d"], workerId: "w" });
    expect(leased!.id).toBe(own.job.id);
    expect(leased!.leaseExpiresAt!.getTime() - clock.now().getTime()).toBe(90_000);
    clock.advance(10_000);
    const beat = await jobs.heartbeat({ jobId: leased!.id, leaseToken: leased!.leaseToken });
    expect(beat.job.leaseExpiresAt!.getTime() - clock.now().getTime()).toBe(90_000);
    const [explicit] = await jobs.claim({ queues: ["d"], workerId: "w", leaseSeconds: 5 });
    expect(explicit!.leaseExpiresAt!.getTime() - clock.now().getTime()).toBe(5_000);

    // "retry 5 times on 30s, 2m, 8m, 30m, 2h"
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 6; attempt++) {
      const failed = await jobs.fail({
        jobId: explicit!.id,
        leaseToken: explicit!.leaseToken,
        error: { message: "x" },
      });
      if (failed.state === "FAILED") break;
      delays.push(failed.runAt.getTime() - clock.now().getTime());
      clock.set(failed.runAt);
      const [again] = await jobs.claim({ queues: ["d"], workerId: "w", leaseSeconds: 5 });
      Object.assign(explicit!, again);
    }
    expect(delays).toEqual([30_000, 120_000, 480_000, 1_800_000, 7_200_000]);
  });

  it("settings are validated, listed and cleared with null", async () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ name: "q", concurrency: 0 }, "concurrency"],
      [{ name: "q", concurrency: 1.5 }, "concurrency"],
      [{ name: "q", rateLimit: { count: 5 } }, "rateLimit.intervalMs"],
      [{ name: "q", rateLimit: 5 }, "rateLimit"],
      [{ name: "q", maxQueued: -1 }, "maxQueued"],
      [{ name: "q", paused: "yes" }, "paused"],
      [{ name: "q", defaultBackoff: { type: "linear" } }, "defaultBackoff.type"],
      [{ name: "q", concurrencyLimit: 2 }, "concurrencyLimit"],
      [{ name: "bad name" }, "name"],
      [{ name: "q" }, "name"],
    ];
    for (const [input, field] of bad) {
      await expect(queues.configureQueue(input as never)).rejects.toMatchObject({
        code: "BAD_USER_INPUT",
        details: { field },
      });
    }
    expect(await queues.listQueues()).toEqual([]);

    await queues.configureQueue({ name: "q", concurrency: 2, rateLimit: { count: 1, intervalMs: 10_000 } });
    expect(await queues.getQueue("q")).toMatchObject({ concurrency: 2, rateLimit: { count: 1, intervalMs: 10_000 } });
    await queues.configureQueue({ name: "q", rateLimit: null });
    expect(await queues.getQueue("q")).toMatchObject({ concurrency: 2, rateLimit: null, paused: false });
    await jobs.enqueue({ queue: "auto" });
    expect((await queues.listQueues()).map((q) => q.name)).toEqual(["auto", "q"]);
    await expect(queues.getQueue("nope")).rejects.toMatchObject({ code: "NOT_FOUND" });
  });
});
