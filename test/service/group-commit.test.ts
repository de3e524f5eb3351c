/**
 * Group commit in the job service, on every backend: concurrent enqueue and
 * complete calls share store writes (fewer insertJobs / completeJobs
 * statements than calls), and each call still gets exactly the outcome it
 * would have got alone — QUEUE_FULL for the call that overfills its queue
 * only, the same job for a repeated idempotency key, LEASE_LOST /
 * INVALID_TRANSITION / NOT_FOUND per completion — with events published once,
 * after commit.
 */
import type { Sql } from "../../src/store/sql.ts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { QueueFullError } from "../../src/jobs/errors.ts";
import type { JobService } from "../../src/jobs/job-service.ts";
import type { JobEvent } from "../../src/jobs/types.ts";
import { QueueService } from "../../src/queues/queue-service.ts";
import { BACKENDS, createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { isGapless, summariseEvents } from "../helpers/inspect.ts";

describe.each(BACKENDS)("group commit on %s", (dialect) => {
  let db: TestDatabase;
  let service: JobService;
  let published: JobEvent[];
  let statements: string[];

  beforeEach(async () => {
    db = await createTestDatabase(dialect);
    published = [];
    statements = [];
    const store = await db.open({ onStatement: (s: Sql) => statements.push(s.sql) });
    service = await db.service({ store, onEvents: (e) => published.push(...e) });
  });
  afterEach(async () => {
    await db.dispose();
  });

  /** One per insertJobs call on both dialects (the queue-row insert opens it). */
  const insertWrites = () => statements.filter((s) => s.includes('INSERT INTO "queues"')).length;
  /** One per completeJobs call on both dialects. */
  const completeWrites = () => statements.filter((s) => s.includes('WITH "done"')).length;

  it("merges 100 concurrent enqueues into a few writes; each caller gets its own job", async () => {
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => service.enqueue({ queue: "merge", payload: { i } })),
    );
    expect(results.map((r) => r.job.payload)).toEqual(Array.from({ length: 100 }, (_, i) => ({ i })));
    expect(results.every((r) => r.created && r.job.state === "QUEUED")).toBe(true);
    expect(new Set(results.map((r) => r.job.id)).size).toBe(100);
    expect(insertWrites()).toBeLessThanOrEqual(10);
    expect(service.enqueues.stats.writes).toBe(insertWrites());
    // Published once each, after commit, in id order.
    expect(published.map((e) => e.jobId).sort()).toEqual(results.map((r) => r.job.id).sort());
    const ids = published.map((e) => BigInt(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => (a < b ? -1 : 1)));
    expect(await service.countJobs({ queue: "merge" })).toBe(100);
  });

  it("keeps idempotent enqueue: concurrent repeats of one key in one write return the one job", async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        service.enqueue({ queue: "keyed", idempotencyKey: i % 2 === 0 ? "even" : "odd", payload: { i } }),
      ),
    );
    expect(results.filter((r) => r.created)).toHaveLength(2);
    const even = results.filter((_, i) => i % 2 === 0);
    expect(new Set(even.map((r) => r.job.id)).size).toBe(1);
    expect(even[0]?.created).toBe(true); // the first caller's input is the one stored
    expect(even[0]?.job.payload).toEqual({ i: 0 });
    expect(insertWrites()).toBeLessThan(20);
    expect(published).toHaveLength(2);
  });

  it("gives QUEUE_FULL only to the calls that overfill their queue, not to the calls they were merged with", async () => {
    await new QueueService(service.store).configureQueue({ name: "small", maxQueued: 3 });
    const outcomes = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        service.enqueue({ queue: i % 2 === 0 ? "small" : "roomy", payload: { i } }).then(
          (r) => ({ ok: r.job.queue }),
          (e: unknown) => ({ error: e instanceof QueueFullError ? e.code : String(e) }),
        ),
      ),
    );
    expect(outcomes.filter((o) => "ok" in o && o.ok === "roomy")).toHaveLength(6);
    expect(outcomes.filter((o) => "ok" in o && o.ok === "small")).toHaveLength(3);
    expect(outcomes.filter((o) => "error" in o)).toEqual([
      { error: "QUEUE_FULL" },
      { error: "QUEUE_FULL" },
      { error: "QUEUE_FULL" },
    ]);
    expect(service.enqueues.stats.retries).toBeGreaterThan(0); // a merged write failed and was split
    expect(await service.countJobs({ queue: "small" })).toBe(3);
    expect(await service.countJobs({ queue: "roomy" })).toBe(6);
    expect(published).toHaveLength(9);
  });

  it("merges concurrent completes; each gets its own outcome; a job completed twice at once succeeds once", async () => {
    await service.enqueueMany(Array.from({ length: 40 }, (_, i) => ({ queue: "done", payload: { i } })));
    const leased = await service.claim({ queues: ["done"], workerId: "w", limit: 40 });
    expect(leased).toHaveLength(40);
    const [twice, stale] = leased;
    if (!twice || !stale) throw new Error("nothing claimed");
    published.length = 0;
    const before = completeWrites();

    const settle = (p: Promise<unknown>) =>
      p.then(
        () => "ok",
        (e: { code?: string }) => e.code ?? String(e),
      );
    const outcomes = await Promise.all([
      ...leased.slice(2).map((j) => settle(service.complete({ jobId: j.id, leaseToken: j.leaseToken, result: 1 }))),
      settle(service.complete({ jobId: twice.id, leaseToken: twice.leaseToken })),
      settle(service.complete({ jobId: twice.id, leaseToken: twice.leaseToken })),
      settle(service.complete({ jobId: stale.id, leaseToken: "not-the-token" })),
      settle(service.complete({ jobId: "999999999", leaseToken: "x" })),
    ]);
    expect(outcomes.slice(0, 38).every((o) => o === "ok")).toBe(true);
    expect(outcomes.slice(38)).toEqual(["ok", "INVALID_TRANSITION", "LEASE_LOST", "NOT_FOUND"]);
    expect(completeWrites() - before).toBeGreaterThan(0);
    expect(completeWrites() - before).toBeLessThanOrEqual(6);
    expect(service.completions.stats.calls).toBe(42);
    expect(published.map((e) => e.type)).toEqual(Array.from({ length: 39 }, () => "succeeded"));
    expect((await service.getJob(stale.id)).state).toBe("RUNNING");
    expect((await summariseEvents(db)).every(isGapless)).toBe(true);
  });

  it("merges concurrent completeMany calls with single completes, outcomes in each call's order", async () => {
    await service.enqueueMany(Array.from({ length: 30 }, (_, i) => ({ queue: "mixed", payload: { i } })));
    const leased = await service.claim({ queues: ["mixed"], workerId: "w", limit: 30 });
    const before = completeWrites();
    const [many1, many2, ...singles] = await Promise.all([
      service.completeMany(leased.slice(0, 10).map((j) => ({ jobId: j.id, leaseToken: j.leaseToken }))),
      service.completeMany(
        leased.slice(10, 20).map((j, i) => ({ jobId: j.id, leaseToken: i === 3 ? "wrong" : j.leaseToken })),
      ),
      ...leased.slice(20).map((j) => service.complete({ jobId: j.id, leaseToken: j.leaseToken })),
    ]);
    expect(many1?.map((o) => o.jobId)).toEqual(leased.slice(0, 10).map((j) => j.id));
    expect(many1?.every((o) => o.error === null)).toBe(true);
    expect(many2?.map((o) => o.error?.code ?? null)).toEqual([null, null, null, "LEASE_LOST", ...Array(6).fill(null)]);
    expect(singles.map((j) => (j as { state: string }).state)).toEqual(Array(10).fill("SUCCEEDED"));
    expect(completeWrites() - before).toBeGreaterThan(0);
    expect(completeWrites() - before).toBeLessThan(12);
  });
});
