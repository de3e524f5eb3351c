/**
 * The job lifecycle contract, run against every backend (SQLite always,
 * PostgreSQL when JOBWIRE_TEST_POSTGRES_URL is set).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { JobService } from "../../src/jobs/job-service.ts";
import type { JobEvent } from "../../src/jobs/types.ts";
import { BACKENDS, createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { ManualClock } from "../helpers/clock.ts";

describe.each(BACKENDS)("job lifecycle on %s", (dialect) => {
  let db: TestDatabase;
  let clock: ManualClock;
  let service: JobService;
  let published: JobEvent[];

  beforeEach(async () => {
    db = await createTestDatabase(dialect);
    clock = new ManualClock();
    published = [];
    service = await db.service({ now: clock.now, random: () => 0.5, onEvents: (e) => published.push(...e) });
  });
  afterEach(async () => {
    await db.dispose();
  });

  async function seqsOf(jobId: string): Promise<number[]> {
    return (await service.listEvents(jobId)).map((e) => e.seq);
  }

  it("enqueues, claims, heartbeats and completes with a gapless event history", async () => {
    const { job, created } = await service.enqueue({
      queue: "email",
      payload: { to: "a@example.com" },
      tags: ["welcome", "welcome", "eu"],
      metadata: { source: "test" },
    });
    expect(created).toBe(true);
    expect(job).toMatchObject({ state: "QUEUED", attempts: 0, priority: 0, maxAttempts: 3, tags: ["welcome", "eu"] });

    const [leased] = await service.claim({ queues: ["email"], workerId: "w1", leaseSeconds: 10 });
    expect(leased).toMatchObject({ id: job.id, state: "RUNNING", attempts: 1, workerId: "w1" });
    expect(leased!.leaseToken).toMatch(/^[0-9a-f]{32}$/);
    expect(leased!.leaseExpiresAt.getTime()).toBe(clock.now().getTime() + 10_000);

    clock.advance(5_000);
    const hb = await service.heartbeat({
      jobId: job.id,
      leaseToken: leased!.leaseToken,
      progress: { pct: 50 },
      leaseSeconds: 20,
    });
    expect(hb.cancelRequested).toBe(false);
    expect(hb.job.progress).toEqual({ pct: 50 });
    expect(hb.job.leaseExpiresAt!.getTime()).toBe(clock.now().getTime() + 20_000);

    const done = await service.complete({ jobId: job.id, leaseToken: leased!.leaseToken, result: { sent: true } });
    expect(done).toMatchObject({ state: "SUCCEEDED", result: { sent: true } });
    expect(done.finishedAt).toEqual(clock.now());

    const events = await service.listEvents(job.id);
    expect(events.map((e) => [e.seq, e.type, e.fromState, e.toState])).toEqual([
      [1, "enqueued", null, "QUEUED"],
      [2, "claimed", "QUEUED", "RUNNING"],
      [3, "succeeded", "RUNNING", "SUCCEEDED"],
    ]);
    expect(published.map((e) => e.id)).toEqual(events.map((e) => e.id));
    expect(Number(events[2]!.id)).toBeGreaterThan(Number(events[1]!.id));
    expect(await service.listEvents(job.id, 2)).toHaveLength(1);
  });

  it("claims by priority, then runAt, then enqueue order, and respects the limit", async () => {
    const a = await service.enqueue({ queue: "q", payload: "a", priority: 5 });
    const b = await service.enqueue({ queue: "q", payload: "b", priority: 1 });
    const c = await service.enqueue({ queue: "q", payload: "c", priority: 1 });
    const d = await service.enqueue({
      queue: "q",
      payload: "d",
      priority: 1,
      runAt: new Date(clock.now().getTime() - 60_000),
    });
    await service.enqueue({ queue: "other", payload: "x" });
    const claimed = await service.claim({ queues: ["q"], workerId: "w", limit: 3 });
    expect(claimed.map((j) => j.id)).toEqual([d.job.id, b.job.id, c.job.id]);
    const rest = await service.claim({ queues: ["q"], workerId: "w", limit: 10 });
    expect(rest.map((j) => j.id)).toEqual([a.job.id]);
    expect(await service.claim({ queues: ["q"], workerId: "w", limit: 10 })).toEqual([]);
  });

  it("keeps scheduled jobs until runAt, then promotes them inside claim", async () => {
    const { job } = await service.enqueue({ queue: "q", delayMs: 60_000 });
    expect(job.state).toBe("SCHEDULED");
    expect(await service.claim({ queues: ["q"], workerId: "w" })).toEqual([]);
    clock.advance(59_999);
    expect(await service.claim({ queues: ["q"], workerId: "w" })).toEqual([]);
    clock.advance(1);
    const [leased] = await service.claim({ queues: ["q"], workerId: "w" });
    expect(leased?.id).toBe(job.id);
    expect((await service.listEvents(job.id)).map((e) => e.type)).toEqual(["enqueued", "promoted", "claimed"]);
  });

  it("honours the backoff schedule 30s, 2m, 8m, 30m, 2h to the second", async () => {
    const delays = [30_000, 120_000, 480_000, 1_800_000, 7_200_000];
    const { job } = await service.enqueue({
      queue: "q",
      maxAttempts: 6,
      backoff: { type: "schedule", delaysMs: delays },
    });
    for (const delay of delays) {
      const [leased] = await service.claim({ queues: ["q"], workerId: "w" });
      expect(leased?.id).toBe(job.id);
      const failed = await service.fail({
        jobId: job.id,
        leaseToken: leased!.leaseToken,
        error: { message: "boom", code: "E_BOOM" },
      });
      expect(failed.state).toBe("SCHEDULED");
      expect(failed.runAt.getTime() - clock.now().getTime()).toBe(delay);
      clock.advance(delay - 1_000);
      expect(await service.claim({ queues: ["q"], workerId: "w" })).toEqual([]);
      clock.advance(1_000);
    }
    const [last] = await service.claim({ queues: ["q"], workerId: "w" });
    expect(last?.attempts).toBe(6);
    const dead = await service.fail({ jobId: job.id, leaseToken: last!.leaseToken, error: { message: "final" } });
    expect(dead).toMatchObject({ state: "FAILED", attempts: 6, error: { message: "final", code: null } });
    const seqs = await seqsOf(job.id);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
  });

  it("fails non-retryable jobs at once and honours an explicit retryIn", async () => {
    const { job } = await service.enqueue({ queue: "q", maxAttempts: 5 });
    let [leased] = await service.claim({ queues: ["q"], workerId: "w" });
    const retried = await service.fail({
      jobId: job.id,
      leaseToken: leased!.leaseToken,
      error: { message: "x" },
      retryInMs: 1234,
    });
    expect(retried.runAt.getTime() - clock.now().getTime()).toBe(1234);
    clock.advance(1234);
    [leased] = await service.claim({ queues: ["q"], workerId: "w" });
    const dead = await service.fail({
      jobId: job.id,
      leaseToken: leased!.leaseToken,
      error: { message: "bad input", details: { field: "to" } },
      retryable: false,
    });
    expect(dead).toMatchObject({
      state: "FAILED",
      attempts: 2,
      error: { message: "bad input", details: { field: "to" } },
    });
    expect(dead.finishedAt).toEqual(clock.now());
  });

  it("uses exponential backoff with cap and jitter", async () => {
    const { job } = await service.enqueue({
      queue: "q",
      maxAttempts: 10,
      backoff: { type: "exponential", baseMs: 1_000, factor: 3, maxMs: 5_000, jitter: 0.2 },
    });
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      const [leased] = await service.claim({ queues: ["q"], workerId: "w" });
      const failed = await service.fail({ jobId: job.id, leaseToken: leased!.leaseToken, error: { message: "x" } });
      seen.push(failed.runAt.getTime() - clock.now().getTime());
      clock.advance(10_000);
    }
    // random() = 0.5 puts the jitter at its midpoint: 1s, 3s, then capped at 5s.
    expect(seen).toEqual([1_000, 3_000, 5_000]);
  });

  it("fences stale workers with LEASE_LOST after their lease expired and was swept", async () => {
    const { job } = await service.enqueue({ queue: "q", maxAttempts: 2, backoff: { type: "fixed", delayMs: 0 } });
    const [stale] = await service.claim({ queues: ["q"], workerId: "old", leaseSeconds: 5 });
    clock.advance(4_000);
    expect(await service.sweepExpiredLeases()).toBe(0);
    clock.advance(1_001);
    expect(await service.sweepExpiredLeases()).toBe(1);
    const swept = await service.getJob(job.id);
    expect(swept).toMatchObject({ state: "SCHEDULED", leaseToken: null, error: { code: "LEASE_EXPIRED" } });

    const [fresh] = await service.claim({ queues: ["q"], workerId: "new" });
    expect(fresh?.id).toBe(job.id);
    const before = await service.getJob(job.id);
    await expect(
      service.complete({ jobId: job.id, leaseToken: stale!.leaseToken, result: "stale" }),
    ).rejects.toMatchObject({
      code: "LEASE_LOST",
    });
    await expect(service.heartbeat({ jobId: job.id, leaseToken: stale!.leaseToken })).rejects.toMatchObject({
      code: "LEASE_LOST",
    });
    await expect(
      service.fail({ jobId: job.id, leaseToken: stale!.leaseToken, error: { message: "x" } }),
    ).rejects.toMatchObject({
      code: "LEASE_LOST",
    });
    expect(await service.getJob(job.id)).toEqual(before);

    const done = await service.complete({ jobId: job.id, leaseToken: fresh!.leaseToken, result: "fresh" });
    expect(done).toMatchObject({ state: "SUCCEEDED", result: "fresh", attempts: 2 });
    await expect(service.complete({ jobId: job.id, leaseToken: fresh!.leaseToken })).rejects.toMatchObject({
      code: "INVALID_TRANSITION",
    });
  });

  it("sends a job whose lease expires on its last attempt to FAILED", async () => {
    const { job } = await service.enqueue({ queue: "q", maxAttempts: 1 });
    const [leased] = await service.claim({ queues: ["q"], workerId: "w", leaseSeconds: 1 });
    clock.advance(2_000);
    expect(await service.sweepExpiredLeases()).toBe(1);
    expect(await service.getJob(job.id)).toMatchObject({
      state: "FAILED",
      attempts: 1,
      error: { code: "LEASE_EXPIRED" },
    });
    await expect(service.complete({ jobId: job.id, leaseToken: leased!.leaseToken })).rejects.toMatchObject({
      code: "LEASE_LOST",
    });
  });

  it("does not sweep a lease that a heartbeat extended", async () => {
    const { job } = await service.enqueue({ queue: "q" });
    const [leased] = await service.claim({ queues: ["q"], workerId: "w", leaseSeconds: 5 });
    clock.advance(4_000);
    await service.heartbeat({ jobId: job.id, leaseToken: leased!.leaseToken, leaseSeconds: 5 });
    clock.advance(4_000);
    expect(await service.sweepExpiredLeases()).toBe(0);
    expect((await service.getJob(job.id)).state).toBe("RUNNING");
  });

  it("cancels waiting jobs at once and running jobs through their worker", async () => {
    const queued = await service.enqueue({ queue: "q", payload: 1 });
    const scheduled = await service.enqueue({ queue: "q", delayMs: 10_000 });
    expect(await service.cancel(queued.job.id)).toMatchObject({ state: "CANCELLED" });
    expect(await service.cancel(scheduled.job.id)).toMatchObject({ state: "CANCELLED" });
    await expect(service.cancel(queued.job.id)).rejects.toMatchObject({ code: "INVALID_TRANSITION" });

    const running = await service.enqueue({ queue: "q", payload: 2 });
    const [leased] = await service.claim({ queues: ["q"], workerId: "w" });
    expect(leased?.id).toBe(running.job.id);
    const requested = await service.cancel(running.job.id);
    expect(requested.state).toBe("RUNNING");
    expect(requested.cancelRequestedAt).toEqual(clock.now());
    expect((await service.cancel(running.job.id)).lastSeq).toBe(requested.lastSeq);
    const hb = await service.heartbeat({ jobId: running.job.id, leaseToken: leased!.leaseToken });
    expect(hb.cancelRequested).toBe(true);
    const ended = await service.fail({
      jobId: running.job.id,
      leaseToken: leased!.leaseToken,
      error: { message: "aborted" },
    });
    expect(ended.state).toBe("CANCELLED");
    expect((await service.listEvents(running.job.id)).map((e) => e.type)).toEqual([
      "enqueued",
      "claimed",
      "cancel_requested",
      "cancelled",
    ]);
  });

  it("ends a cancel-requested job CANCELLED when its worker never answers", async () => {
    const { job } = await service.enqueue({ queue: "q", maxAttempts: 5 });
    await service.claim({ queues: ["q"], workerId: "w", leaseSeconds: 5 });
    await service.cancel(job.id);
    clock.advance(6_000);
    expect(await service.sweepExpiredLeases()).toBe(1);
    expect(await service.getJob(job.id)).toMatchObject({ state: "CANCELLED" });
  });

  it("retries dead jobs from zero attempts and reschedules waiting ones", async () => {
    const { job } = await service.enqueue({ queue: "q", maxAttempts: 1 });
    const [leased] = await service.claim({ queues: ["q"], workerId: "w" });
    await service.fail({ jobId: job.id, leaseToken: leased!.leaseToken, error: { message: "x" } });
    await expect(service.reschedule({ jobId: job.id, delayMs: 5 })).rejects.toMatchObject({
      code: "INVALID_TRANSITION",
    });
    const again = await service.retry(job.id);
    expect(again).toMatchObject({ state: "QUEUED", attempts: 0, error: null, finishedAt: null });
    await expect(service.retry(job.id)).rejects.toMatchObject({ code: "INVALID_TRANSITION" });

    const later = await service.reschedule({ jobId: job.id, delayMs: 60_000, priority: 7 });
    expect(later).toMatchObject({ state: "SCHEDULED", priority: 7 });
    expect(later.runAt.getTime()).toBe(clock.now().getTime() + 60_000);
    const now = await service.reschedule({ jobId: job.id, runAt: clock.now().toISOString() });
    expect(now.state).toBe("QUEUED");
    const [again2] = await service.claim({ queues: ["q"], workerId: "w" });
    expect(again2?.attempts).toBe(1);
    expect(await seqsOf(job.id)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("returns the existing job for a seen idempotency key", async () => {
    const first = await service.enqueue({ queue: "q", idempotencyKey: "order-1", payload: { n: 1 } });
    const second = await service.enqueue({ queue: "q", idempotencyKey: "order-1", payload: { n: 2 } });
    expect(second.created).toBe(false);
    expect(second.job).toEqual(first.job);
    const otherQueue = await service.enqueue({ queue: "q2", idempotencyKey: "order-1" });
    expect(otherQueue.created).toBe(true);
    expect(await service.findJobByKey("q", "order-1")).toEqual(first.job);
    expect(await service.findJobByKey("q", "nope")).toBeNull();
  });

  it("bulk-enqueues in one transaction, deduplicating keys inside the batch", async () => {
    const results = await service.enqueueMany([
      { queue: "q", payload: 1, idempotencyKey: "k" },
      { queue: "q", payload: 2 },
      { queue: "q", payload: 3, idempotencyKey: "k" },
    ]);
    expect(results.map((r) => r.created)).toEqual([true, true, false]);
    expect(results[2]!.job.id).toBe(results[0]!.job.id);
    await expect(
      service.enqueueMany([
        { queue: "q", payload: 4 },
        { queue: "", payload: 5 },
      ]),
    ).rejects.toMatchObject({ code: "BAD_USER_INPUT", field: "jobs[1].queue" });
    expect((await service.listJobs({ queue: "q" })).jobs).toHaveLength(2);
  });

  it("lists with filters and cursor pagination, newest first", async () => {
    for (let i = 0; i < 7; i++) {
      await service.enqueue({ queue: i % 2 ? "odd" : "even", payload: i, tags: i < 3 ? ["early"] : [] });
      clock.advance(1_000);
    }
    const p1 = await service.listJobs({}, { first: 3 });
    const p2 = await service.listJobs({}, { first: 3, after: p1.nextCursor });
    const p3 = await service.listJobs({}, { first: 3, after: p2.nextCursor });
    expect([...p1.jobs, ...p2.jobs, ...p3.jobs].map((j) => j.payload)).toEqual([6, 5, 4, 3, 2, 1, 0]);
    expect(p3.nextCursor).toBeNull();
    expect((await service.listJobs({ queue: "odd" })).jobs.map((j) => j.payload)).toEqual([5, 3, 1]);
    expect((await service.listJobs({ tags: ["early"] })).jobs.map((j) => j.payload)).toEqual([2, 1, 0]);
    const start = Date.parse("2026-01-01T00:00:00.000Z");
    const window = await service.listJobs({
      createdAfter: new Date(start + 2_000).toISOString(),
      createdBefore: new Date(start + 4_000),
    });
    expect(window.jobs.map((j) => j.payload)).toEqual([3, 2]);
    await service.claim({ queues: ["even"], workerId: "w" });
    expect((await service.listJobs({ states: ["RUNNING"] })).jobs.map((j) => j.payload)).toEqual([0]);
    await expect(service.listJobs({}, { after: "garbage" })).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
  });

  it("reports unknown jobs as NOT_FOUND", async () => {
    await expect(service.getJob("999999")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(service.cancel("999999")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(service.retry("999999")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(service.complete({ jobId: "999999", leaseToken: "x" })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(service.heartbeat({ jobId: "999999", leaseToken: "x" })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(service.listEvents("999999")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(service.getJob("abc")).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
  });

  it("prunes only finished jobs past their age, with their events, in batches", async () => {
    const make = async (outcome: "ok" | "dead" | "cancel" | "run" | "wait") => {
      const { job } = await service.enqueue({ queue: "q", maxAttempts: 1, payload: outcome });
      if (outcome === "wait") return job.id;
      if (outcome === "cancel") return (await service.cancel(job.id)).id;
      const [leased] = await service.claim({ queues: ["q"], workerId: "w" });
      if (outcome === "ok") await service.complete({ jobId: job.id, leaseToken: leased!.leaseToken });
      if (outcome === "dead")
        await service.fail({ jobId: job.id, leaseToken: leased!.leaseToken, error: { message: "x" } });
      return job.id;
    };
    const old = [];
    for (let i = 0; i < 5; i++) old.push(await make("ok"));
    const oldDead = await make("dead");
    const oldCancelled = await make("cancel");
    clock.advance(3_600_000);
    const recent = await make("ok");
    const running = await make("run");
    const waiting = await make("wait");

    const cutoff = new Date(clock.now().getTime() - 60_000);
    expect(await service.pruneFinishedJobs({ succeededBefore: cutoff, batchSize: 2 })).toBe(5);
    for (const id of old) await expect(service.getJob(id)).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(service.listEvents(old[0]!)).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect((await service.getJob(oldDead)).state).toBe("FAILED");
    expect(await service.pruneFinishedJobs({ failedBefore: cutoff })).toBe(2);
    await expect(service.getJob(oldCancelled)).rejects.toMatchObject({ code: "NOT_FOUND" });
    for (const id of [recent, running, waiting]) expect((await service.getJob(id)).id).toBe(id);
    const later = new Date(clock.now().getTime() + 1);
    expect(await service.pruneFinishedJobs({ succeededBefore: later, failedBefore: later })).toBe(1);
    expect((await service.listJobs()).jobs.map((j) => j.state).sort()).toEqual(["QUEUED", "RUNNING"]);
  });
});
