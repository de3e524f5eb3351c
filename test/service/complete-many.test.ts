/**
 * Batch completion (JobService.completeMany, the completeJobs mutation), on
 * every backend: one transaction for the batch, each job guarded on its own
 * (a lost lease or a finished job gets its own error and is left untouched),
 * events gapless and published once, bad input rejected whole before any write.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { JobService } from "../../src/jobs/job-service.ts";
import type { JobEvent, LeasedJob } from "../../src/jobs/types.ts";
import { BACKENDS, createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { ManualClock } from "../helpers/clock.ts";

describe.each(BACKENDS)("batch completion on %s", (dialect) => {
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

  async function leaseJobs(n: number): Promise<LeasedJob[]> {
    await service.enqueueMany(Array.from({ length: n }, (_, i) => ({ queue: "batch", payload: { i } })));
    const leased = await service.claim({ queues: ["batch"], workerId: "w1", limit: n });
    expect(leased).toHaveLength(n);
    return leased;
  }

  it("completes every job of the batch with its own result and one succeeded event each", async () => {
    const leased = await leaseJobs(50);
    clock.advance(1_000);
    published.length = 0;
    const outcomes = await service.completeMany(
      leased.map((j, i) => ({ jobId: j.id, leaseToken: j.leaseToken, result: i % 2 === 0 ? { i } : null })),
    );
    expect(outcomes.map((o) => o.jobId)).toEqual(leased.map((j) => j.id));
    for (const [i, o] of outcomes.entries()) {
      expect(o.error).toBeNull();
      expect(o.job).toMatchObject({ state: "SUCCEEDED", result: i % 2 === 0 ? { i } : null, lastSeq: 3 });
      expect(o.job?.finishedAt).toEqual(clock.now());
      expect(o.job?.leaseExpiresAt).toBeNull();
    }
    expect(published.map((e) => [e.type, e.seq, e.fromState, e.toState])).toEqual(
      leased.map(() => ["succeeded", 3, "RUNNING", "SUCCEEDED"]),
    );
    expect(published.map((e) => e.jobId).sort()).toEqual(leased.map((j) => j.id).sort());
    for (const j of leased.slice(0, 5)) {
      expect((await service.listEvents(j.id)).map((e) => e.type)).toEqual(["enqueued", "claimed", "succeeded"]);
    }
  });

  it("reports each miss on its own and writes nothing for it: lost lease, finished, unknown", async () => {
    const [a, b, c, d] = await leaseJobs(4);
    if (!a || !b || !c || !d) throw new Error("not leased");
    await service.complete({ jobId: c.id, leaseToken: c.leaseToken });
    published.length = 0;
    const outcomes = await service.completeMany([
      { jobId: a.id, leaseToken: a.leaseToken, result: { ok: true } },
      { jobId: b.id, leaseToken: "0".repeat(32) },
      { jobId: c.id, leaseToken: c.leaseToken },
      { jobId: "987654321", leaseToken: "x" },
      { jobId: d.id, leaseToken: d.leaseToken },
    ]);
    expect(outcomes.map((o) => [o.jobId, o.job?.state ?? null, o.error?.code ?? null])).toEqual([
      [a.id, "SUCCEEDED", null],
      [b.id, null, "LEASE_LOST"],
      [c.id, null, "INVALID_TRANSITION"],
      ["987654321", null, "NOT_FOUND"],
      [d.id, "SUCCEEDED", null],
    ]);
    expect(published.map((e) => e.jobId)).toEqual([a.id, d.id]);
    expect(await service.getJob(b.id)).toMatchObject({ state: "RUNNING", lastSeq: 2, result: null });
    expect(await service.getJob(c.id)).toMatchObject({ state: "SUCCEEDED", lastSeq: 3 });
  });

  it("gives LEASE_LOST to a stale worker after a sweep and re-claim, and leaves the new holder's run alone", async () => {
    const [job] = await leaseJobs(1);
    if (!job) throw new Error("not leased");
    clock.advance(31_000);
    expect(await service.sweepExpiredLeases()).toBe(1);
    clock.advance(60_000);
    const [again] = await service.claim({ queues: ["batch"], workerId: "w2" });
    expect(again?.id).toBe(job.id);
    const [stale] = await service.completeMany([{ jobId: job.id, leaseToken: job.leaseToken, result: "stale" }]);
    expect(stale?.error?.code).toBe("LEASE_LOST");
    expect(await service.getJob(job.id)).toMatchObject({ state: "RUNNING", workerId: "w2", result: null });
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
      [[{ jobId: a.id, leaseToken: a.leaseToken, result: { n: Number.NaN } }], "jobs[0].result"],
      [[null], "jobs[0]"],
    ];
    for (const [input, field] of cases) {
      await expect(service.completeMany(input as never), field).rejects.toMatchObject({
        code: "BAD_USER_INPUT",
        details: { field },
      });
    }
    expect((await service.getJob(a.id)).state).toBe("RUNNING");
    expect((await service.getJob(b.id)).state).toBe("RUNNING");
  });
});
