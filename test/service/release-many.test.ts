/**
 * Batch release (JobService.releaseMany, the releaseJobs mutation), on every
 * backend: a worker gives back jobs it claimed but never started. One
 * transaction for the batch; each job goes back to QUEUED at once with the
 * claim's attempt taken back (no backoff, lease cleared, a `released` event);
 * each job is guarded on its own (wrong token → LEASE_LOST, not RUNNING →
 * INVALID_TRANSITION, nothing written for it); bad input rejected whole.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { JobService } from "../../src/jobs/job-service.ts";
import type { JobEvent, LeasedJob } from "../../src/jobs/types.ts";
import { BACKENDS, createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { ManualClock } from "../helpers/clock.ts";

describe.each(BACKENDS)("batch release on %s", (dialect) => {
  let db: TestDatabase;
  let clock: ManualClock;
  let service: JobService;
  let published: JobEvent[];

  beforeEach(async () => {
    db = await createTestDatabase(dialect);
    clock = new ManualClock();
    published = [];
    service = await db.service({ now: clock.now, onEvents: (e) => published.push(...e) });
  });
  afterEach(async () => {
    await db.dispose();
  });

  async function leaseJobs(n: number, backoff = true): Promise<LeasedJob[]> {
    await service.enqueueMany(
      Array.from({ length: n }, (_, i) => ({
        queue: "rel",
        payload: { i },
        ...(backoff && { backoff: { type: "schedule" as const, delaysMs: [30_000, 120_000] } }),
      })),
    );
    const leased = await service.claim({ queues: ["rel"], workerId: "w1", limit: n });
    expect(leased).toHaveLength(n);
    return leased;
  }

  it("puts every job back to QUEUED at once, attempt not counted, lease cleared, one released event each", async () => {
    const leased = await leaseJobs(20);
    expect(leased.every((j) => j.attempts === 1)).toBe(true);
    clock.advance(1_000);
    published.length = 0;
    const outcomes = await service.releaseMany(leased.map((j) => ({ jobId: j.id, leaseToken: j.leaseToken })));
    expect(outcomes.map((o) => o.jobId)).toEqual(leased.map((j) => j.id));
    for (const o of outcomes) {
      expect(o.error).toBeNull();
      expect(o.job).toMatchObject({
        state: "QUEUED",
        attempts: 0,
        workerId: null,
        leaseToken: null,
        leaseExpiresAt: null,
        startedAt: null,
        lastSeq: 3,
      });
    }
    expect(published.map((e) => [e.type, e.seq, e.fromState, e.toState, e.attempt])).toEqual(
      leased.map(() => ["released", 3, "RUNNING", "QUEUED", 0]),
    );
    const first = leased[0];
    if (!first) throw new Error("not leased");
    expect((await service.listEvents(first.id)).map((e) => e.type)).toEqual(["enqueued", "claimed", "released"]);
    expect(await service.countJobs({ queue: "rel", states: ["QUEUED"] })).toBe(20);

    // Claimable at once (no backoff, the clock has not moved), in the old claim order, on attempt 1 again.
    const again = await service.claim({ queues: ["rel"], workerId: "w2", limit: 20 });
    expect(again.map((j) => j.id)).toEqual(leased.map((j) => j.id));
    expect(again.every((j) => j.attempts === 1 && j.workerId === "w2")).toBe(true);
  });

  it("reports each miss on its own and writes nothing for it: wrong token, not RUNNING, unknown", async () => {
    const [a, b, c, d] = await leaseJobs(4);
    if (!a || !b || !c || !d) throw new Error("not leased");
    await service.complete({ jobId: c.id, leaseToken: c.leaseToken });
    published.length = 0;
    const outcomes = await service.releaseMany([
      { jobId: a.id, leaseToken: a.leaseToken },
      { jobId: b.id, leaseToken: "0".repeat(32) },
      { jobId: c.id, leaseToken: c.leaseToken },
      { jobId: "987654321", leaseToken: "x" },
      { jobId: d.id, leaseToken: d.leaseToken },
    ]);
    expect(outcomes.map((o) => [o.jobId, o.job?.state ?? null, o.error?.code ?? null])).toEqual([
      [a.id, "QUEUED", null],
      [b.id, null, "LEASE_LOST"],
      [c.id, null, "INVALID_TRANSITION"],
      ["987654321", null, "NOT_FOUND"],
      [d.id, "QUEUED", null],
    ]);
    expect(published.map((e) => e.jobId)).toEqual([a.id, d.id]);
    expect(await service.getJob(b.id)).toMatchObject({ state: "RUNNING", attempts: 1, lastSeq: 2, workerId: "w1" });
    expect(await service.getJob(c.id)).toMatchObject({ state: "SUCCEEDED", attempts: 1, lastSeq: 3 });
    expect((await service.listEvents(b.id)).map((e) => e.type)).toEqual(["enqueued", "claimed"]);

    // A second release of a released job: it is QUEUED now, and its token is gone.
    const [twice] = await service.releaseMany([{ jobId: a.id, leaseToken: a.leaseToken }]);
    expect(twice?.error?.code).toBe("LEASE_LOST");
    expect(await service.getJob(a.id)).toMatchObject({ state: "QUEUED", attempts: 0, lastSeq: 3 });
  });

  it("gives LEASE_LOST to a stale worker after a sweep and re-claim, and leaves the new holder's run alone", async () => {
    const [job] = await leaseJobs(1, false);
    if (!job) throw new Error("not leased");
    clock.advance(31_000);
    expect(await service.sweepExpiredLeases()).toBe(1);
    clock.advance(60_000);
    const [again] = await service.claim({ queues: ["rel"], workerId: "w2" });
    expect(again?.id).toBe(job.id);
    const [stale] = await service.releaseMany([{ jobId: job.id, leaseToken: job.leaseToken }]);
    expect(stale?.error?.code).toBe("LEASE_LOST");
    expect(await service.getJob(job.id)).toMatchObject({ state: "RUNNING", workerId: "w2" });
  });

  it("ends a job whose cancel was requested while it waited as CANCELLED, not QUEUED", async () => {
    const [job] = await leaseJobs(1);
    if (!job) throw new Error("not leased");
    await service.cancel(job.id);
    const [outcome] = await service.releaseMany([{ jobId: job.id, leaseToken: job.leaseToken }]);
    expect(outcome?.job).toMatchObject({ state: "CANCELLED", attempts: 0, leaseToken: null });
    expect(outcome?.job?.finishedAt).toEqual(clock.now());
    expect((await service.listEvents(job.id)).map((e) => [e.type, e.toState])).toEqual([
      ["enqueued", "QUEUED"],
      ["claimed", "RUNNING"],
      ["cancel_requested", "RUNNING"],
      ["cancelled", "CANCELLED"],
    ]);
  });

  it("rejects bad input whole, before any write", async () => {
    const [a, b] = await leaseJobs(2);
    if (!a || !b) throw new Error("not leased");
    const cases: [unknown, string][] = [
      [[], "jobs"],
      [Array.from({ length: 1_001 }, () => ({ jobId: a.id, leaseToken: a.leaseToken })), "jobs"],
      [
        [
          { jobId: a.id, leaseToken: a.leaseToken },
          { jobId: a.id, leaseToken: a.leaseToken },
        ],
        "jobs[1].jobId",
      ],
      [
        [
          { jobId: a.id, leaseToken: a.leaseToken },
          { jobId: "x", leaseToken: b.leaseToken },
        ],
        "jobs[1].jobId",
      ],
      [[{ jobId: a.id, leaseToken: "" }], "jobs[0].leaseToken"],
      [[null], "jobs[0]"],
    ];
    for (const [input, field] of cases) {
      await expect(service.releaseMany(input as never), field).rejects.toMatchObject({
        code: "BAD_USER_INPUT",
        details: { field },
      });
    }
    expect(await service.getJob(a.id)).toMatchObject({ state: "RUNNING", attempts: 1 });
    expect(await service.getJob(b.id)).toMatchObject({ state: "RUNNING", attempts: 1 });
  });
});
