/**
 * The maintenance loop (src/maintenance/maintenance.ts) on every backend:
 * retention pruning (bounded per tick, events removed with their jobs), lease
 * sweeping, promotion of due jobs, several maintainers at once on one database
 * (connections in one process, and separate processes), and the start/stop loop.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LeaseLostError } from "../../src/jobs/errors.ts";
import { JobService } from "../../src/jobs/job-service.ts";
import type { LeasedJob } from "../../src/jobs/types.ts";
import { Maintenance } from "../../src/maintenance/maintenance.ts";
import type { MaintenanceOptions, MaintenanceReport } from "../../src/maintenance/maintenance.ts";
import { QueueService } from "../../src/queues/queue-service.ts";
import type { JobStore } from "../../src/store/job-store.ts";
import { BACKENDS, createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { ManualClock } from "../helpers/clock.ts";
import { isGapless, queryDatabase, summariseEvents } from "../helpers/inspect.ts";

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

async function jobIdsInDb(db: TestDatabase): Promise<string[]> {
  const rows = await queryDatabase<{ id: number | string }>(db, `SELECT "id" FROM "jobs"`);
  return rows.map((r) => String(r.id)).sort(byId);
}

/** Job ids that own at least one job_events row (orphans included). */
async function eventJobIdsInDb(db: TestDatabase): Promise<string[]> {
  const rows = await queryDatabase<{ job_id: number | string }>(db, `SELECT DISTINCT "job_id" FROM "job_events"`);
  return rows.map((r) => String(r.job_id)).sort(byId);
}

async function pendingDeltas(db: TestDatabase): Promise<number> {
  const rows = await queryDatabase<{ n: number | string }>(db, `SELECT COUNT(*) AS "n" FROM "queue_state_deltas"`);
  return Number(rows[0]?.n ?? -1);
}

/** Counts by queue and state, straight from `jobs`. */
async function countsInDb(db: TestDatabase): Promise<Record<string, Record<string, number>>> {
  const rows = await queryDatabase<{ queue: string; state: string; n: number | string }>(
    db,
    `SELECT "queue", "state", COUNT(*) AS "n" FROM "jobs" GROUP BY "queue", "state"`,
  );
  const out: Record<string, Record<string, number>> = {};
  for (const r of rows) (out[r.queue] ??= {})[r.state] = Number(r.n);
  return out;
}

function byId(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

function sum(reports: MaintenanceReport[]): MaintenanceReport {
  return reports.reduce(
    (a, r) => ({
      swept: a.swept + r.swept,
      promoted: a.promoted + r.promoted,
      pruned: a.pruned + r.pruned,
      folded: a.folded + r.folded,
    }),
    { swept: 0, promoted: 0, pruned: 0, folded: 0 },
  );
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 10 ms; fails after `timeoutMs`. */
async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

interface Services {
  store: JobStore;
  jobs: JobService;
  queues: QueueService;
}

async function servicesOn(db: TestDatabase, clock: ManualClock): Promise<Services> {
  const store = await db.open({ poolSize: 3 });
  return {
    store,
    // random 0.5: exponential backoff without jitter (1 s after the first attempt).
    jobs: new JobService(store, { now: clock.now, random: () => 0.5 }),
    queues: new QueueService(store, { now: clock.now }),
  };
}

async function claimAll(jobs: JobService, queue: string, count: number, leaseSeconds: number): Promise<LeasedJob[]> {
  const out: LeasedJob[] = [];
  while (out.length < count) {
    const got = await jobs.claim({ queues: [queue], workerId: "setup", limit: 1_000, leaseSeconds });
    if (got.length === 0) break;
    out.push(...got);
  }
  expect(out).toHaveLength(count);
  return out;
}

describe.each(BACKENDS)("maintenance on %s", (dialect) => {
  let db: TestDatabase;
  let clock: ManualClock;
  let s: Services;
  const T0 = Date.parse("2026-01-01T00:00:00.000Z");

  beforeEach(async () => {
    db = await createTestDatabase(dialect);
    clock = new ManualClock(T0);
    s = await servicesOn(db, clock);
  });
  afterEach(async () => {
    await db.dispose();
  });

  function maintenance(options: MaintenanceOptions = {}, on: Services = s): Maintenance {
    return new Maintenance(on.jobs, on.queues, { now: clock.now, onError: (e) => expect.fail(e.message), ...options });
  }

  type Outcome = "SUCCEEDED" | "FAILED" | "CANCELLED";

  /** A job of `queue` that reached `outcome` at `at` (epoch ms). */
  async function finishedAt(queue: string, outcome: Outcome, at: number): Promise<string> {
    clock.set(new Date(at));
    // Priority -10: claimed before the long-waiting jobs of the queue (priority 0).
    const { job } = await s.jobs.enqueue({ queue, payload: { outcome }, priority: -10, maxAttempts: 1 });
    if (outcome === "CANCELLED") {
      expect((await s.jobs.cancel(job.id)).finishedAt).toEqual(new Date(at));
      return job.id;
    }
    const [leased] = await s.jobs.claim({ queues: [queue], workerId: "w", leaseSeconds: 60 });
    expect(leased?.id).toBe(job.id);
    const done =
      outcome === "SUCCEEDED"
        ? await s.jobs.complete({ jobId: job.id, leaseToken: leased!.leaseToken })
        : await s.jobs.fail({
            jobId: job.id,
            leaseToken: leased!.leaseToken,
            error: { message: "x" },
            retryable: false,
          });
    expect(done).toMatchObject({ state: outcome, finishedAt: new Date(at) });
    return job.id;
  }

  async function many(n: number, queue: string, outcome: Outcome, at: (i: number) => number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push(await finishedAt(queue, outcome, at(i)));
    return ids;
  }

  describe("retention", () => {
    it("prunes only finished jobs past their queue's (or the server's) retention, bounded per tick, with their events", async () => {
      const NOW = T0 + 10 * DAY;
      await s.queues.configureQueue({ name: "custom", retainSucceededSeconds: 3600, retainFailedSeconds: 7200 });
      // Only the succeeded retention set: failed jobs fall back to the server default.
      await s.queues.configureQueue({ name: "mixed", retainSucceededSeconds: 60 });
      // "fallback" sets nothing (its row is created by its first job).

      // Long-waiting and running jobs, created at T0 (10 days before NOW).
      clock.set(new Date(T0));
      const waiting: string[] = [];
      const runningIds: Record<string, string> = {};
      const runningTokens: Record<string, string> = {};
      for (const queue of ["custom", "fallback", "mixed"]) {
        waiting.push((await s.jobs.enqueue({ queue, payload: "scheduled", runAt: new Date(NOW + 365 * DAY) })).job.id);
        const running = (await s.jobs.enqueue({ queue, payload: "running" })).job.id;
        const [leased] = await s.jobs.claim({ queues: [queue], workerId: "w", leaseSeconds: 24 * 3600 });
        expect(leased?.id).toBe(running);
        runningIds[queue] = running;
        runningTokens[queue] = leased!.leaseToken;
        // Enqueued after the claim, so that the claim above took the running one.
        waiting.push((await s.jobs.enqueue({ queue, payload: "queued" })).job.id);
      }
      // Failed long ago, then retried: QUEUED again, finishedAt cleared.
      const retried = await finishedAt("custom", "FAILED", T0 + HOUR);

      // custom: succeeded after 1 h, failed/cancelled after 2 h.
      const customSucceededOld = await many(12, "custom", "SUCCEEDED", (i) => NOW - 2 * HOUR - (12 - i) * MINUTE);
      const customFailedOld = [
        ...(await many(7, "custom", "FAILED", (i) => NOW - 3 * HOUR - (20 - i) * MINUTE)),
        ...(await many(6, "custom", "CANCELLED", (i) => NOW - 3 * HOUR - (6 - i) * MINUTE)),
      ];
      const customKept = [
        await finishedAt("custom", "SUCCEEDED", NOW - HOUR), // exactly at the cutoff: not older than it
        await finishedAt("custom", "FAILED", NOW - 90 * MINUTE), // past the succeeded retention, not the failed one
        await finishedAt("custom", "CANCELLED", NOW - HOUR),
        await finishedAt("custom", "SUCCEEDED", NOW - 30 * MINUTE),
      ];
      // fallback: the server's 1 day / 3 days.
      const fallbackOld = [
        ...(await many(6, "fallback", "SUCCEEDED", (i) => NOW - 2 * DAY - i * MINUTE)),
        await finishedAt("fallback", "FAILED", NOW - 4 * DAY),
        await finishedAt("fallback", "CANCELLED", NOW - 4 * DAY),
      ];
      const fallbackKept = [
        await finishedAt("fallback", "SUCCEEDED", NOW - 12 * HOUR),
        await finishedAt("fallback", "FAILED", NOW - 2 * DAY),
      ];
      // mixed: succeeded after 60 s, failed after the server's 3 days.
      const mixedOld = [await finishedAt("mixed", "SUCCEEDED", NOW - 2 * MINUTE)];
      const mixedKept = [await finishedAt("mixed", "FAILED", NOW - 2 * DAY)];

      // The running jobs, claimed at T0, are still alive (heartbeat).
      clock.set(new Date(NOW - 20 * MINUTE));
      for (const queue of ["custom", "fallback", "mixed"]) {
        const jobId = runningIds[queue]!;
        await s.jobs.heartbeat({ jobId, leaseToken: runningTokens[queue]!, leaseSeconds: 24 * 3600 });
      }
      clock.set(new Date(NOW - 10 * MINUTE));
      expect((await s.jobs.retry(retried)).finishedAt).toBeNull();
      clock.set(new Date(NOW));

      const before = new Map((await summariseEvents(db)).map((e) => [e.jobId, e]));
      const allIds = await jobIdsInDb(db);
      const prunedIds = new Set([...customSucceededOld, ...customFailedOld, ...fallbackOld, ...mixedOld]);
      const keptIds = [
        ...waiting,
        ...Object.values(runningIds),
        retried,
        ...customKept,
        ...fallbackKept,
        ...mixedKept,
      ].sort(byId);
      expect(allIds).toEqual([...keptIds, ...prunedIds].sort(byId));

      const m = maintenance({
        batchSize: 5,
        maxBatches: 2,
        retainSucceededSeconds: DAY / SECOND,
        retainFailedSeconds: (3 * DAY) / SECOND,
      });

      // Tick 1: at most 5 × 2 per state group and queue.
      const first = await m.runOnce();
      expect(first).toMatchObject({ swept: 0, promoted: 0, pruned: 10 + 10 + 8 + 1 });
      let remaining = new Set(await jobIdsInDb(db));
      expect(customSucceededOld.filter((id) => remaining.has(id))).toHaveLength(2);
      expect(customFailedOld.filter((id) => remaining.has(id))).toHaveLength(3);
      expect(fallbackOld.filter((id) => remaining.has(id))).toEqual([]);
      expect(mixedOld.filter((id) => remaining.has(id))).toEqual([]);
      for (const id of keptIds) expect(remaining.has(id)).toBe(true);

      // Tick 2 finishes; tick 3 finds nothing.
      expect(await m.runOnce()).toMatchObject({ swept: 0, promoted: 0, pruned: 2 + 3 });
      expect(await m.runOnce()).toMatchObject({ swept: 0, promoted: 0, pruned: 0 });
      remaining = new Set(await jobIdsInDb(db));
      expect([...remaining].sort(byId)).toEqual(keptIds);

      // The events of pruned jobs went with them; the others' are untouched.
      expect(await eventJobIdsInDb(db)).toEqual(keptIds);
      const after = await summariseEvents(db);
      expect(after.map((e) => e.jobId).sort(byId)).toEqual(keptIds);
      for (const e of after) {
        expect(isGapless(e)).toBe(true);
        expect(e).toEqual(before.get(e.jobId));
      }

      // Waiting and running jobs are as they were.
      for (const id of waiting) expect((await s.jobs.getJob(id)).state).toMatch(/^(QUEUED|SCHEDULED)$/);
      for (const id of Object.values(runningIds)) expect((await s.jobs.getJob(id)).state).toBe("RUNNING");
      expect((await s.jobs.getJob(retried)).state).toBe("QUEUED");

      // The queue counts followed the deletes, and every delta was folded.
      expect(await pendingDeltas(db)).toBe(0);
      const stats = await s.queues.queueStats("custom");
      expect(stats.counts).toEqual({ SCHEDULED: 1, QUEUED: 2, RUNNING: 1, SUCCEEDED: 2, FAILED: 1, CANCELLED: 1 });
      const actual = await countsInDb(db);
      for (const queue of ["custom", "fallback", "mixed"]) {
        const c = (await s.queues.queueStats(queue)).counts;
        expect(Object.fromEntries(Object.entries(c).filter(([, n]) => n !== 0))).toEqual(actual[queue]);
      }
    });

    it("keeps everything when neither the queue nor the server sets a retention; 0 means 'as soon as finished'", async () => {
      await s.queues.configureQueue({ name: "keep", retainSucceededSeconds: 3600, retainFailedSeconds: 3600 });
      // Cleared again: null means "the server default", here none.
      await s.queues.configureQueue({ name: "keep", retainSucceededSeconds: null, retainFailedSeconds: null });
      await s.queues.configureQueue({ name: "half", retainSucceededSeconds: 3600 });
      await s.queues.configureQueue({ name: "zero", retainSucceededSeconds: 0, retainFailedSeconds: 0 });

      const kept = [
        await finishedAt("keep", "SUCCEEDED", T0),
        await finishedAt("keep", "FAILED", T0),
        await finishedAt("keep", "CANCELLED", T0),
        await finishedAt("half", "FAILED", T0),
        await finishedAt("half", "CANCELLED", T0),
      ];
      const halfSucceeded = await finishedAt("half", "SUCCEEDED", T0);
      const NOW = T0 + 400 * DAY;
      const zeroOld = [
        await finishedAt("zero", "SUCCEEDED", NOW - 1),
        await finishedAt("zero", "FAILED", NOW - 1),
        await finishedAt("zero", "CANCELLED", NOW - 1),
      ];
      clock.set(new Date(NOW));
      const zeroNow = await finishedAt("zero", "SUCCEEDED", NOW); // finished at this very instant

      const m = maintenance({ retainSucceededSeconds: null, retainFailedSeconds: null });
      const report = await m.runOnce();
      expect(report.pruned).toBe(1 + zeroOld.length);
      expect(await jobIdsInDb(db)).toEqual([...kept, zeroNow].sort(byId));
      expect(await eventJobIdsInDb(db)).toEqual([...kept, zeroNow].sort(byId));
      expect(await jobIdsInDb(db)).not.toContain(halfSucceeded);
      expect((await m.runOnce()).pruned).toBe(0);
    });
  });

  describe("leases and scheduled jobs", () => {
    it("sweeps expired leases (retry, dead-letter, cancel) and promotes due jobs, with events and report", async () => {
      const enqueue = async (payload: string, extra: { maxAttempts?: number } = {}): Promise<string> =>
        (await s.jobs.enqueue({ queue: "work", payload, ...extra })).job.id;
      const claimOne = async (id: string, leaseSeconds: number): Promise<string> => {
        const [leased] = await s.jobs.claim({ queues: ["work"], workerId: `w-${id}`, leaseSeconds });
        expect(leased?.id).toBe(id);
        return leased!.leaseToken;
      };
      const retry = await enqueue("retry");
      const retryToken = await claimOne(retry, 30);
      const dead = await enqueue("dead", { maxAttempts: 1 });
      await claimOne(dead, 30);
      const cancel = await enqueue("cancel");
      await claimOne(cancel, 30);
      await s.jobs.cancel(cancel); // cancel requested; the worker never answers
      const edge = await enqueue("edge");
      await claimOne(edge, 31); // expires exactly at the first tick: not yet "before now"
      const alive = await enqueue("alive");
      await claimOne(alive, 3600);

      const due = (await s.jobs.enqueue({ queue: "later", payload: "due", delayMs: 10 * SECOND })).job.id;
      const dueExactly = (await s.jobs.enqueue({ queue: "later", payload: "exact", delayMs: 31 * SECOND })).job.id;
      const notDue = (await s.jobs.enqueue({ queue: "later", payload: "not due", delayMs: HOUR })).job.id;

      clock.advance(31 * SECOND);
      const tick1At = clock.now();
      const m = maintenance();
      const first = await m.runOnce();
      expect(first).toMatchObject({ swept: 3, promoted: 2, pruned: 0 });
      expect(first.folded).toBeGreaterThan(0);

      const r = await s.jobs.getJob(retry);
      expect(r).toMatchObject({
        state: "SCHEDULED",
        attempts: 1,
        error: { code: "LEASE_EXPIRED" },
        leaseToken: null,
        leaseExpiresAt: null,
        finishedAt: null,
        runAt: new Date(tick1At.getTime() + 1_000),
      });
      expect(r.error?.message).toMatch(/lease expired/);
      const rEvents = await s.jobs.listEvents(retry);
      expect(rEvents.map((e) => [e.seq, e.type, e.fromState, e.toState])).toEqual([
        [1, "enqueued", null, "QUEUED"],
        [2, "claimed", "QUEUED", "RUNNING"],
        [3, "lease_expired", "RUNNING", "SCHEDULED"],
      ]);
      expect(rEvents[2]!.data).toMatchObject({ delayMs: 1_000 });
      // The stale worker lost its lease.
      await expect(s.jobs.complete({ jobId: retry, leaseToken: retryToken })).rejects.toBeInstanceOf(LeaseLostError);

      expect(await s.jobs.getJob(dead)).toMatchObject({
        state: "FAILED",
        error: { code: "LEASE_EXPIRED" },
        finishedAt: tick1At,
        leaseToken: null,
      });
      expect((await s.jobs.listEvents(dead)).map((e) => [e.type, e.toState]).at(-1)).toEqual([
        "lease_expired",
        "FAILED",
      ]);
      expect(await s.jobs.getJob(cancel)).toMatchObject({ state: "CANCELLED", finishedAt: tick1At });
      expect((await s.jobs.listEvents(cancel)).map((e) => e.type)).toEqual([
        "enqueued",
        "claimed",
        "cancel_requested",
        "lease_expired" /* the schema: LEASE_EXPIRED covers RUNNING → CANCELLED */,
      ]);
      expect(await s.jobs.getJob(edge)).toMatchObject({ state: "RUNNING", lastSeq: 2 });
      expect(await s.jobs.getJob(alive)).toMatchObject({ state: "RUNNING", lastSeq: 2 });

      for (const id of [due, dueExactly]) {
        expect((await s.jobs.getJob(id)).state).toBe("QUEUED");
        expect((await s.jobs.listEvents(id)).map((e) => [e.seq, e.type, e.fromState, e.toState])).toEqual([
          [1, "enqueued", null, "SCHEDULED"],
          [2, "promoted", "SCHEDULED", "QUEUED"],
        ]);
      }
      expect(await s.jobs.getJob(notDue)).toMatchObject({ state: "SCHEDULED", lastSeq: 1 });

      // A second later: the edge lease has now expired, and the retry is due.
      clock.advance(SECOND);
      expect(await m.runOnce()).toMatchObject({ swept: 1, promoted: 1, pruned: 0 });
      expect(await s.jobs.getJob(edge)).toMatchObject({ state: "SCHEDULED", error: { code: "LEASE_EXPIRED" } });
      expect(await s.jobs.getJob(retry)).toMatchObject({ state: "QUEUED", lastSeq: 4 });
      expect((await s.jobs.listEvents(retry, 3)).map((e) => [e.type, e.fromState, e.toState])).toEqual([
        ["promoted", "SCHEDULED", "QUEUED"],
      ]);
      expect(await m.runOnce()).toMatchObject({ swept: 0, promoted: 0, pruned: 0, folded: expect.any(Number) });
      expect((await summariseEvents(db)).filter((e) => !isGapless(e))).toEqual([]);
    });

    it("sweeps and promotes at most batchSize × maxBatches per tick", async () => {
      for (let i = 0; i < 5; i++) await s.jobs.enqueue({ queue: "run", payload: i });
      await claimAll(s.jobs, "run", 5, 30);
      await s.jobs.enqueueMany(Array.from({ length: 5 }, (_, i) => ({ queue: "later", payload: i, delayMs: 1_000 })));
      clock.advance(31 * SECOND);
      const m = maintenance({ batchSize: 2, maxBatches: 2 });
      expect(await m.runOnce()).toMatchObject({ swept: 4, promoted: 4 });
      expect(await m.runOnce()).toMatchObject({ swept: 1, promoted: 1 });
      expect(await m.runOnce()).toMatchObject({ swept: 0, promoted: 0 });
      const counts = await countsInDb(db);
      expect(counts.run).toEqual({ SCHEDULED: 5 });
      expect(counts.later).toEqual({ QUEUED: 5 });
    });
  });

  describe("several maintainers at once", () => {
    const N = 300;

    /** N expired leases in "sweep", N due jobs in "sched", N succeeded jobs in "old"; returns the ids. */
    async function prepare(): Promise<{ sweep: string[]; sched: string[]; old: string[]; now: Date }> {
      const mk = (queue: string, delayMs?: number) =>
        Array.from({ length: N }, (_, i) => ({ queue, payload: i, ...(delayMs !== undefined && { delayMs }) }));
      const sweep = (await s.jobs.enqueueMany(mk("sweep"))).map((r) => r.job.id);
      await claimAll(s.jobs, "sweep", N, 30);
      const old = (await s.jobs.enqueueMany(mk("old"))).map((r) => r.job.id);
      for (const job of await claimAll(s.jobs, "old", N, 600)) {
        await s.jobs.complete({ jobId: job.id, leaseToken: job.leaseToken });
      }
      const sched = (await s.jobs.enqueueMany(mk("sched", MINUTE))).map((r) => r.job.id);
      clock.advance(2 * HOUR);
      return { sweep, sched, old, now: clock.now() };
    }

    async function expectEachDoneOnce(ids: { sweep: string[]; sched: string[]; old: string[] }): Promise<void> {
      const summary = new Map((await summariseEvents(db)).map((e) => [e.jobId, e]));
      expect([...summary.keys()].sort(byId)).toEqual([...ids.sweep, ...ids.sched].sort(byId));
      expect([...summary.values()].filter((e) => !isGapless(e))).toEqual([]);
      for (const id of ids.sweep) {
        const types = (await s.jobs.listEvents(id)).map((e) => e.type);
        expect(types, `job ${id}`).toEqual(["enqueued", "claimed", "lease_expired"]);
      }
      for (const id of ids.sched) {
        const types = (await s.jobs.listEvents(id)).map((e) => e.type);
        expect(types, `job ${id}`).toEqual(["enqueued", "promoted"]);
      }
      expect(await eventJobIdsInDb(db)).toEqual([...ids.sweep, ...ids.sched].sort(byId));
      const counts = await countsInDb(db);
      expect(counts).toEqual({ sweep: { SCHEDULED: N }, sched: { QUEUED: N } });
      // Concurrent folding neither lost nor doubled a delta.
      for (const queue of ["sweep", "sched", "old"]) {
        const c = (await s.queues.queueStats(queue)).counts;
        expect(Object.fromEntries(Object.entries(c).filter(([, n]) => n !== 0))).toEqual(counts[queue] ?? {});
      }
    }

    it(`3 maintainers on separate connections sweep, promote and prune ${N} jobs each exactly once`, async () => {
      const ids = await prepare();
      const workers = await Promise.all([0, 1, 2].map(() => servicesOn(db, clock)));
      const errors: Error[] = [];
      const ms = workers.map((w) =>
        maintenance({ batchSize: 10, maxBatches: 5, retainSucceededSeconds: 3600, onError: (e) => errors.push(e) }, w),
      );
      const perProcess = ms.map(() => [] as MaintenanceReport[]);
      // Rounds of three concurrent ticks until a round finds nothing to do.
      for (let round = 0; round < 30; round++) {
        const reports = await Promise.all(ms.map((m) => m.runOnce()));
        reports.forEach((r, i) => perProcess[i]!.push(r));
        const t = sum(reports);
        if (t.swept + t.promoted + t.pruned === 0) break;
      }
      expect(errors).toEqual([]);
      const totals = sum(perProcess.flat());
      expect(totals).toMatchObject({ swept: N, promoted: N, pruned: N });
      // More than one maintainer did real work: the race was real.
      const worked = perProcess.map((rs) => sum(rs)).filter((t) => t.swept + t.promoted + t.pruned > 0);
      expect(worked.length).toBeGreaterThan(1);
      await expectEachDoneOnce(ids);
      expect(await pendingDeltas(db)).toBe(0);
    });

    it(`3 processes run maintenance on one database at once, each job handled exactly once`, async () => {
      const ids = await prepare();
      const root = pathToFileURL(resolve(import.meta.dirname, "../..")).href;
      // Each child: open the store, wait for "go", tick until two ticks in a row
      // find nothing, print the summed report.
      const child = `
        const root = process.env.JW_ROOT;
        const { openStore } = await import(root + "/src/store/open-store.ts");
        const { JobService } = await import(root + "/src/jobs/job-service.ts");
        const { QueueService } = await import(root + "/src/queues/queue-service.ts");
        const { Maintenance } = await import(root + "/src/maintenance/maintenance.ts");
        const now = () => new Date(Number(process.env.JW_NOW));
        const store = await openStore(process.env.JW_URL, { migrate: false, poolSize: 3 });
        const m = new Maintenance(new JobService(store, { now, random: () => 0.5 }), new QueueService(store, { now }), {
          now, batchSize: 10, maxBatches: 5, retainSucceededSeconds: 3600,
        });
        process.stdout.write("ready\\n");
        await new Promise((r) => process.stdin.once("data", r));
        const total = { swept: 0, promoted: 0, pruned: 0, folded: 0 };
        for (let idle = 0, n = 0; idle < 2 && n < 100; n++) {
          const r = await m.runOnce();
          for (const k of Object.keys(total)) total[k] += r[k];
          idle = r.swept + r.promoted + r.pruned === 0 ? idle + 1 : 0;
        }
        await store.close();
        process.stdout.write(JSON.stringify(total) + "\\n");
      `;
      const children = [0, 1, 2].map(() =>
        spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", child], {
          stdio: ["pipe", "pipe", "inherit"],
          env: { ...process.env, JW_ROOT: root, JW_URL: db.url, JW_NOW: String(ids.now.getTime()) },
        }),
      );
      const outputs = children.map((c) => {
        let out = "";
        c.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
        return { child: c, text: () => out };
      });
      const exits = children.map(async (c) => (await once(c, "exit"))[0] as number);
      await Promise.all(
        outputs.map(async ({ child: c, text }) => {
          while (!text().includes("ready\n")) await once(c.stdout, "data");
        }),
      );
      for (const c of children) c.stdin.end("go\n");
      expect(await Promise.all(exits)).toEqual([0, 0, 0]);
      const reports = outputs.map(
        ({ text }) => JSON.parse(text().split("\n").filter(Boolean).at(-1)!) as MaintenanceReport,
      );
      expect(sum(reports)).toMatchObject({ swept: N, promoted: N, pruned: N });
      await expectEachDoneOnce(ids);
      expect(await pendingDeltas(db)).toBe(0);
    });
  });

  describe("start() and stop()", () => {
    /** Counts ticks (and overlapping ticks) of `m`. */
    function countTicks(m: Maintenance): { ticks: () => number; maxInFlight: () => number } {
      let ticks = 0;
      let inFlight = 0;
      let maxInFlight = 0;
      const real = Maintenance.prototype.runOnce;
      vi.spyOn(m, "runOnce").mockImplementation(async function (this: Maintenance) {
        ticks++;
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        try {
          return await real.call(this);
        } finally {
          inFlight--;
        }
      });
      return { ticks: () => ticks, maxInFlight: () => maxInFlight };
    }

    async function expiredLease(): Promise<string> {
      const { job } = await s.jobs.enqueue({ queue: "loop", payload: null });
      await claimAll(s.jobs, "loop", 1, 30);
      clock.advance(31 * SECOND);
      return job.id;
    }

    it("ticks every intervalMs until stop(), one tick at a time, and not after stop()", async () => {
      const m = maintenance({ intervalMs: 20 });
      const c = countTicks(m);
      m.start();
      m.start(); // no second loop
      await waitFor("3 ticks", () => c.ticks() >= 3);

      const id = await expiredLease();
      await waitFor("the lease sweep", async () => (await s.jobs.getJob(id)).state === "SCHEDULED");
      expect(await s.jobs.getJob(id)).toMatchObject({ error: { code: "LEASE_EXPIRED" } });

      await m.stop();
      const ticksAtStop = c.ticks();
      await sleep(150); // 7 intervals
      expect(c.ticks()).toBe(ticksAtStop);
      expect(c.maxInFlight()).toBe(1);

      // It can be started again.
      m.start();
      await waitFor("a tick after restart", () => c.ticks() > ticksAtStop + 1);
      await m.stop();
      await m.stop(); // idempotent
    });

    it("stop() waits for the tick in progress", async () => {
      const m = maintenance({ intervalMs: 5 });
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let ticks = 0;
      let finished = 0;
      vi.spyOn(m, "runOnce").mockImplementation(async () => {
        ticks++;
        await gate;
        finished++;
        return { swept: 0, promoted: 0, pruned: 0, folded: 0 };
      });
      m.start();
      await waitFor("the first tick", () => ticks === 1);
      let stopped = false;
      const stopping = m.stop().then(() => (stopped = true));
      await sleep(50);
      expect(stopped).toBe(false);
      release();
      await stopping;
      expect(finished).toBe(1);
      await sleep(50);
      expect(ticks).toBe(1);
    });

    it("start() right after an unawaited stop() does not leave a second loop running", async () => {
      const m = maintenance({ intervalMs: 5 });
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let ticks = 0;
      let inFlight = 0;
      let maxInFlight = 0;
      vi.spyOn(m, "runOnce").mockImplementation(async () => {
        const n = ++ticks;
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        try {
          if (n === 1) await gate;
          return { swept: 0, promoted: 0, pruned: 0, folded: 0 };
        } finally {
          inFlight--;
        }
      });
      m.start();
      await waitFor("the first tick", () => ticks === 1);
      void m.stop(); // the first tick is still running
      m.start();
      release();
      await waitFor("ticks of the restarted loop", () => ticks >= 5);
      await m.stop();
      const ticksAtStop = ticks;
      expect(inFlight).toBe(0);
      await sleep(100); // 20 intervals
      expect(ticks).toBe(ticksAtStop);
      expect(maxInFlight).toBe(1);
    });

    it("reports a failing tick to onError and keeps going", async () => {
      const errors: Error[] = [];
      const m = maintenance({ intervalMs: 20, onError: (e) => errors.push(e) });
      const spy = vi
        .spyOn(s.store, "findExpiredLeases")
        .mockRejectedValueOnce(new Error("database went away"))
        .mockRejectedValueOnce("not an Error");
      m.start();
      try {
        await waitFor("two reported failures", () => errors.length >= 2);
        expect(errors[0]?.message).toBe("database went away");
        expect(errors[1]).toBeInstanceOf(Error);
        expect(errors[1]?.message).toBe("not an Error");

        // The loop survived: a later lease expiry is still swept.
        const id = await expiredLease();
        await waitFor("the lease sweep after failures", async () => (await s.jobs.getJob(id)).state === "SCHEDULED");
        expect(spy.mock.calls.length).toBeGreaterThan(2);
        expect(errors).toHaveLength(2);
      } finally {
        await m.stop();
      }
    });

    it("reports a failure repeating every tick once (then per repeatReportMs), and the recovery", async () => {
      const reports: { message: string; failedTicks: number }[] = [];
      const recoveries: number[] = [];
      const m = maintenance({
        intervalMs: 5,
        repeatReportMs: 60_000,
        onError: (e, { failedTicks }) => reports.push({ message: e.message, failedTicks }),
        onRecovered: ({ failedTicks }) => recoveries.push(failedTicks),
      });
      let failing = 20;
      const original = s.store.findExpiredLeases.bind(s.store);
      const spy = vi.spyOn(s.store, "findExpiredLeases").mockImplementation(async (...args) => {
        if (failing > 0) {
          failing -= 1;
          throw new Error(failing === 0 ? "something else" : "attempt to write a readonly database");
        }
        return original(...args);
      });
      m.start();
      try {
        await waitFor("the recovery", () => recoveries.length === 1);
        // 19 ticks with one message: reported once; the 20th differs: reported at once.
        expect(reports).toEqual([
          { message: "attempt to write a readonly database", failedTicks: 1 },
          { message: "something else", failedTicks: 20 },
        ]);
        expect(recoveries).toEqual([20]);
      } finally {
        await m.stop();
        spy.mockRestore();
      }
    });
  });
});
