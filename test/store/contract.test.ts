/**
 * The store contract (src/store/job-store.ts), exercised on the store itself,
 * with no job service in between, on every driver (SQLite and PostgreSQL):
 * each write's guards and outcomes, exactly-once claims under concurrent
 * claimers on separate connections, gapless per-job seqs, lease fencing,
 * idempotent and all-or-nothing inserts, batch completion, and that a job's
 * events go with it. A driver whose guard is broken (a completion that ignores
 * the lease token, a transition that ignores its from-states) fails here.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CLAIM_POLICY } from "../../src/jobs/job-service.ts";
import { QueueFullError } from "../../src/jobs/errors.ts";
import { JobEventType, JobState } from "../../src/jobs/states.ts";
import type { Job } from "../../src/jobs/types.ts";
import type { ClaimSpec, JobStore, NewJob, TransitionSpec } from "../../src/store/job-store.ts";
import { BACKENDS, createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";

const T0 = Date.parse("2026-06-01T00:00:00.000Z");
const at = (ms: number) => new Date(T0 + ms);

function newJob(queue: string, extra: Partial<NewJob> = {}): NewJob {
  return {
    queue,
    state: JobState.QUEUED,
    payload: null,
    priority: null,
    runAt: at(0),
    maxAttempts: null,
    backoff: null,
    idempotencyKey: null,
    tags: [],
    metadata: null,
    ...extra,
  };
}

function claimSpec(queue: string, limit: number, now = at(1_000), workerId = "w"): ClaimSpec {
  return { queues: [queue], workerId, limit, leaseSeconds: 30, clock: () => now, policy: CLAIM_POLICY };
}

describe.each(BACKENDS)("store contract on %s", (dialect) => {
  let db: TestDatabase;
  let store: JobStore;
  beforeEach(async () => {
    db = await createTestDatabase(dialect);
    store = await db.open();
  });
  afterEach(async () => {
    await db.dispose();
  });

  async function seqs(job: Job): Promise<number[]> {
    return (await store.listEvents(job.id, 0, 1_000)).map((e) => e.seq);
  }

  describe("insertJobs", () => {
    it("writes each job with its ENQUEUED event (seq 1); a seen idempotency key writes nothing", async () => {
      const first = await store.insertJobs([newJob("q", { idempotencyKey: "k" }), newJob("q")], at(0));
      expect(first.value.map((r) => r.created)).toEqual([true, true]);
      expect(first.events.map((e) => [e.jobId, e.seq, e.type])).toEqual(
        first.value.map((r) => [r.job.id, 1, JobEventType.ENQUEUED]),
      );
      const again = await store.insertJobs([newJob("q", { idempotencyKey: "k", payload: { other: 1 } })], at(5));
      expect(again.value).toEqual([{ job: first.value[0]!.job, created: false }]);
      expect(again.events).toEqual([]);
      expect(await seqs(first.value[0]!.job)).toEqual([1]);
      // The same key in another queue is another job; jobs without a key never collide.
      const other = await store.insertJobs([newJob("r", { idempotencyKey: "k" }), newJob("q"), newJob("q")], at(6));
      expect(other.value.map((r) => r.created)).toEqual([true, true, true]);
    });

    it("is all or nothing: a batch that overfills a queue's maxQueued writes no job, no event", async () => {
      await store.configureQueue("bounded", { maxQueued: 2 }, at(0));
      await store.insertJobs([newJob("bounded")], at(0));
      await expect(store.insertJobs([newJob("bounded"), newJob("bounded")], at(1))).rejects.toBeInstanceOf(
        QueueFullError,
      );
      expect(await store.countJobs({ queue: "bounded" })).toBe(1);
      const log = await store.readEventLog("0", 100);
      expect(log.events).toHaveLength(1);
    });
  });

  describe("claimJobs", () => {
    it("leases by priority, runAt, id: attempts + 1, a fresh token each, a CLAIMED event (seq 2)", async () => {
      const inserted = await store.insertJobs(
        [
          newJob("q", { priority: 5 }),
          newJob("q", { priority: 1, runAt: at(200) }),
          newJob("q", { priority: 1, runAt: at(100) }),
          newJob("q", { priority: 1, runAt: at(100) }),
          newJob("q", { runAt: at(5_000) }), // not due at 1,000
        ],
        at(0),
      );
      const ids = inserted.value.map((r) => r.job.id);
      const claimed = await store.claimJobs(claimSpec("q", 10));
      expect(claimed.value.map((j) => j.id)).toEqual([ids[2], ids[3], ids[1], ids[0]]);
      for (const job of claimed.value) {
        expect(job).toMatchObject({ state: JobState.RUNNING, attempts: 1, workerId: "w" });
        expect(job.leaseExpiresAt?.getTime()).toBe(at(1_000).getTime() + 30_000);
      }
      expect(new Set(claimed.value.map((j) => j.leaseToken)).size).toBe(4);
      expect(claimed.events.map((e) => [e.jobId, e.seq, e.type])).toEqual(
        claimed.value.map((j) => [j.id, 2, JobEventType.CLAIMED]),
      );
      expect((await store.claimJobs(claimSpec("q", 10))).value).toEqual([]);
    });

    it("exactly once under 6 concurrent claimers on their own connections", async () => {
      await store.insertJobs(
        Array.from({ length: 300 }, () => newJob("race")),
        at(0),
      );
      const claimers = await Promise.all(Array.from({ length: 6 }, () => db.open()));
      const got: string[] = [];
      await Promise.all(
        claimers.map(async (s, i) => {
          for (;;) {
            const { value } = await s.claimJobs(claimSpec("race", 7, at(1_000), `w${i}`));
            if (value.length === 0) return;
            got.push(...value.map((j) => j.id));
          }
        }),
      );
      expect(got).toHaveLength(300);
      expect(new Set(got).size).toBe(300);
    });

    it("a paused queue gives nothing; a concurrency limit gives only the free slots", async () => {
      await store.insertJobs(
        Array.from({ length: 5 }, () => newJob("p")),
        at(0),
      );
      await store.configureQueue("p", { paused: true }, at(0));
      expect((await store.claimJobs(claimSpec("p", 5))).value).toEqual([]);
      await store.configureQueue("p", { paused: false, concurrency: 2 }, at(0));
      expect((await store.claimJobs(claimSpec("p", 5))).value).toHaveLength(2);
      expect((await store.claimJobs(claimSpec("p", 5))).value).toHaveLength(0);
    });
  });

  describe("completeJobs", () => {
    it("completes each item under its token; a wrong token or a job not RUNNING is left untouched", async () => {
      await store.insertJobs([newJob("c"), newJob("c"), newJob("c")], at(0));
      const [a, b, c] = (await store.claimJobs(claimSpec("c", 3))).value as [Job, Job, Job];
      const done = await store.completeJobs(
        [
          { jobId: a.id, leaseToken: a.leaseToken!, result: { ok: true } },
          { jobId: b.id, leaseToken: "not-the-token", result: null },
        ],
        at(2_000),
      );
      expect(done.value.map((j) => j.id)).toEqual([a.id]);
      expect(done.value[0]).toMatchObject({ state: JobState.SUCCEEDED, result: { ok: true } });
      expect(done.value[0]!.finishedAt?.getTime()).toBe(at(2_000).getTime());
      expect(done.events.map((e) => [e.jobId, e.seq, e.type])).toEqual([[a.id, 3, JobEventType.SUCCEEDED]]);
      expect(await store.getJob(b.id)).toMatchObject({ state: JobState.RUNNING, leaseToken: b.leaseToken });
      expect(await seqs(b)).toEqual([1, 2]);
      // Completing again (no longer RUNNING) is a no-op.
      const twice = await store.completeJobs([{ jobId: a.id, leaseToken: a.leaseToken!, result: null }], at(3_000));
      expect(twice.value).toEqual([]);
      expect(twice.events).toEqual([]);
      expect(await seqs(a)).toEqual([1, 2, 3]);
      expect((await store.getJob(c.id))?.state).toBe(JobState.RUNNING);
    });
  });

  describe("releaseJobs", () => {
    it("puts each item back to QUEUED under its token, attempt taken back; a wrong token or a job not RUNNING is left untouched", async () => {
      await store.insertJobs([newJob("r"), newJob("r"), newJob("r")], at(0));
      const [a, b, c] = (await store.claimJobs(claimSpec("r", 3))).value as [Job, Job, Job];
      await store.completeJobs([{ jobId: c.id, leaseToken: c.leaseToken!, result: null }], at(1_500));
      const released = await store.releaseJobs(
        [
          { jobId: a.id, leaseToken: a.leaseToken! },
          { jobId: b.id, leaseToken: "not-the-token" },
          { jobId: c.id, leaseToken: c.leaseToken! },
        ],
        at(2_000),
      );
      expect(released.value.map((j) => j.id)).toEqual([a.id]);
      expect(released.value[0]).toMatchObject({
        state: JobState.QUEUED,
        attempts: 0,
        workerId: null,
        leaseToken: null,
        leaseExpiresAt: null,
        startedAt: null,
        finishedAt: null,
      });
      // runAt is kept: due at once, in its old place in claim order.
      expect(released.value[0]!.runAt.getTime()).toBe(at(0).getTime());
      expect(released.events.map((e) => [e.jobId, e.seq, e.type, e.fromState, e.toState, e.attempt])).toEqual([
        [a.id, 3, JobEventType.RELEASED, JobState.RUNNING, JobState.QUEUED, 0],
      ]);
      expect(await store.getJob(b.id)).toMatchObject({
        state: JobState.RUNNING,
        leaseToken: b.leaseToken,
        attempts: 1,
      });
      expect(await seqs(b)).toEqual([1, 2]);
      expect(await store.getJob(c.id)).toMatchObject({ state: JobState.SUCCEEDED, attempts: 1 });
      expect(await seqs(c)).toEqual([1, 2, 3]);
      const again = await store.claimJobs(claimSpec("r", 3, at(2_000), "w2"));
      expect(again.value.map((j) => [j.id, j.attempts])).toEqual([[a.id, 1]]);
    });
  });

  describe("transition", () => {
    async function running(): Promise<Job> {
      await store.insertJobs([newJob("t")], at(0));
      return (await store.claimJobs(claimSpec("t", 1))).value[0]!;
    }
    const fail = (job: Job, over: Partial<TransitionSpec> = {}): TransitionSpec => ({
      jobId: job.id,
      from: [JobState.RUNNING],
      to: JobState.FAILED,
      leaseToken: job.leaseToken!,
      expectedSeq: job.lastSeq,
      patch: { errorMessage: "boom", finishedAt: at(2_000), leaseToken: null, leaseExpiresAt: null },
      event: { type: JobEventType.FAILED },
      now: at(2_000),
      ...over,
    });

    it("writes when every guard holds, with its event at the next seq", async () => {
      const job = await running();
      const written = await store.transition(fail(job));
      expect(written?.value).toMatchObject({ state: JobState.FAILED, error: { message: "boom" } });
      expect(written?.events.map((e) => [e.seq, e.type, e.fromState, e.toState])).toEqual([
        [3, JobEventType.FAILED, JobState.RUNNING, JobState.FAILED],
      ]);
    });

    it.each([
      ["from-states", { from: [JobState.QUEUED] }],
      ["lease token", { leaseToken: "someone-else" }],
      ["expected seq", { expectedSeq: 1 }],
      ["lease expired before", { leaseExpiredBefore: at(1_000) }],
    ] as const)("a failing %s guard writes nothing and returns null", async (_, over) => {
      const job = await running();
      expect(await store.transition(fail(job, over as Partial<TransitionSpec>))).toBeNull();
      expect(await store.getJob(job.id)).toMatchObject({ state: JobState.RUNNING, lastSeq: 2 });
      expect(await seqs(job)).toEqual([1, 2]);
    });
  });

  describe("leases", () => {
    it("extendLease needs the token and writes no event; findExpiredLeases sees only lapsed RUNNING leases", async () => {
      await store.insertJobs([newJob("l"), newJob("l")], at(0));
      const [a, b] = (await store.claimJobs(claimSpec("l", 2))).value as [Job, Job];
      expect(await store.extendLease(a.id, "wrong", 60, undefined, at(10_000))).toBeNull();
      const extended = await store.extendLease(a.id, a.leaseToken!, 60, { half: true }, at(10_000));
      expect(extended?.leaseExpiresAt?.getTime()).toBe(at(70_000).getTime());
      expect(extended?.progress).toEqual({ half: true });
      expect(await seqs(a)).toEqual([1, 2]);
      // b's lease ends at 31,000; a's at 70,000. A lease ending at T is live at T.
      expect(await store.findExpiredLeases(at(31_000), 10)).toEqual([]);
      expect(await store.findExpiredLeases(at(31_001), 10)).toEqual([{ id: b.id, leaseToken: b.leaseToken }]);
    });
  });

  describe("promoteDueJobs and the event log", () => {
    it("promotes due SCHEDULED jobs only, each with a PROMOTED event; seqs stay gapless", async () => {
      const { value } = await store.insertJobs(
        [
          newJob("s", { state: JobState.SCHEDULED, runAt: at(100) }),
          newJob("s", { state: JobState.SCHEDULED, runAt: at(9_000) }),
        ],
        at(0),
      );
      const promoted = await store.promoteDueJobs([], at(1_000), 100);
      expect(promoted.value).toBe(1);
      expect(promoted.events.map((e) => [e.jobId, e.seq, e.type])).toEqual([
        [value[0]!.job.id, 2, JobEventType.PROMOTED],
      ]);
      const [job] = (await store.claimJobs(claimSpec("s", 5))).value;
      expect(job?.id).toBe(value[0]!.job.id);
      await store.completeJobs([{ jobId: job!.id, leaseToken: job!.leaseToken!, result: null }], at(2_000));
      expect(await seqs(job!)).toEqual([1, 2, 3, 4]);
      const log = await store.readEventLog("0", 100);
      const ids = log.events.map((e) => BigInt(e.id));
      expect(ids).toEqual([...ids].sort((x, y) => (x < y ? -1 : 1)));
      expect(log.maxId).toBe(String(ids.at(-1)));
    });

    it("deleteFinishedJobs takes a job's events with it and leaves unfinished jobs alone", async () => {
      await store.insertJobs([newJob("d"), newJob("d"), newJob("d")], at(0));
      const claimed = (await store.claimJobs(claimSpec("d", 2))).value;
      await store.completeJobs(
        claimed.map((j) => ({ jobId: j.id, leaseToken: j.leaseToken!, result: null })),
        at(2_000),
      );
      const deleted = await store.deleteFinishedJobs({
        queue: "d",
        states: [JobState.SUCCEEDED],
        finishedBefore: at(3_000),
        limit: 10,
      });
      expect(deleted).toBe(2);
      for (const j of claimed) {
        expect(await store.getJob(j.id)).toBeNull();
        expect(await store.listEvents(j.id, 0, 100)).toEqual([]);
      }
      expect(await store.countJobs({ queue: "d" })).toBe(1);
    });
  });
});
