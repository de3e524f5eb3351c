/**
 * The queue half of the GraphQL contract, over HTTP against the real server on
 * every backend: queues / queue(name) with settings and live stats,
 * pauseQueue / resumeQueue, configureQueue (set, omit, clear with null, and the
 * defaults it gives new jobs and claims), maxQueued → QUEUE_FULL with nothing
 * written, and purgeJobs deleting exactly the finished jobs it names.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CancelJobDocument,
  ClaimJobsDocument,
  CompleteJobDocument,
  ConfigureQueueDocument,
  EnqueueJobDocument,
  EnqueueJobsDocument,
  FailJobDocument,
  HeartbeatJobDocument,
  JobDocument,
  JobEventsDocument,
  JobsDocument,
  PauseQueueDocument,
  PurgeJobsDocument,
  QueueDocument,
  QueuesDocument,
  ResumeQueueDocument,
} from "../../src/client/__generated__/graphql.ts";
import type {
  ClaimJobsMutationVariables,
  ConfigureQueueInput,
  EnqueueJobInput,
  JobFieldsFragment,
  QueueSettingsFieldsFragment,
} from "../../src/client/__generated__/graphql.ts";
import { startTestServer } from "../helpers/api.ts";
import type { GraphQLResponse, TestServer } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";
import { ManualClock } from "../helpers/clock.ts";
import { queryDatabase, summariseEvents } from "../helpers/inspect.ts";

/** A queue nobody configured: every setting unset. */
const UNSET: QueueSettingsFieldsFragment = {
  paused: false,
  concurrency: null,
  rateLimit: null,
  maxQueued: null,
  defaultPriority: null,
  defaultMaxAttempts: null,
  defaultBackoff: null,
  defaultLeaseSeconds: null,
  retainSucceededSeconds: null,
  retainFailedSeconds: null,
};

function extensionsOf(res: GraphQLResponse<unknown>): Record<string, unknown> | undefined {
  expect(res.errors).toHaveLength(1);
  return res.errors?.[0]?.extensions;
}

describe.each(BACKENDS)("queues API on %s", (dialect) => {
  let t: TestServer;
  let clock: ManualClock;

  beforeEach(async () => {
    clock = new ManualClock();
    t = await startTestServer(dialect, { now: clock.now });
  });
  afterEach(async () => {
    await t.close();
  });

  const at = (ms = 0): string => new Date(clock.now().getTime() + ms).toISOString();

  async function enqueue(input: EnqueueJobInput): Promise<JobFieldsFragment> {
    return (await t.data(EnqueueJobDocument, { input })).enqueueJob.job;
  }
  async function claim(queues: string[], vars: Partial<ClaimJobsMutationVariables> = {}) {
    return (await t.data(ClaimJobsDocument, { queues, workerId: "w1", ...vars })).claimJobs;
  }
  async function claimOne(queue: string) {
    const [leased] = await claim([queue]);
    if (!leased) throw new Error(`nothing to claim in ${queue}`);
    return leased;
  }
  async function readQueue(name: string) {
    return (await t.data(QueueDocument, { name })).queue;
  }
  async function queueNames(): Promise<string[]> {
    return (await t.data(QueuesDocument)).queues.map((q) => q.name);
  }
  async function total(queue?: string): Promise<number> {
    return (await t.data(JobsDocument, { filter: queue === undefined ? {} : { queue }, first: 1 })).jobs.totalCount;
  }

  describe("queues and queue", () => {
    it("lists every queue by name, created by enqueue, configureQueue or pauseQueue", async () => {
      expect(await t.data(QueuesDocument)).toEqual({ queues: [] });
      await enqueue({ queue: "zeta" });
      clock.advance(1_000);
      await t.data(ConfigureQueueDocument, { input: { name: "alpha", concurrency: 1 } });
      await t.data(PauseQueueDocument, { name: "mid" });

      const { queues } = await t.data(QueuesDocument);
      expect(queues.map((q) => [q.name, q.settings.paused, q.settings.concurrency])).toEqual([
        ["alpha", false, 1],
        ["mid", true, null],
        ["zeta", false, null],
      ]);
      expect(queues.find((q) => q.name === "zeta")).toEqual({
        name: "zeta",
        settings: UNSET,
        createdAt: at(-1_000),
        updatedAt: at(-1_000),
      });
    });

    it("is NOT_FOUND for a queue never used, BAD_USER_INPUT for an invalid name", async () => {
      const res = await t.request(QueueDocument, { name: "ghost" });
      expect(res.status).toBe(200);
      expect(res.data).toBeNull();
      expect(res.errors?.[0]?.message).toBe("queue ghost was not found");
      expect(extensionsOf(res)).toEqual({ code: "NOT_FOUND", id: "ghost" });
      expect(extensionsOf(await t.request(QueueDocument, { name: "bad name" }))).toEqual({
        code: "BAD_USER_INPUT",
        field: "name",
      });
      // Reading does not create it.
      expect(await queueNames()).toEqual([]);
    });

    it("reports live stats: counts by state, the one-minute window, run times and waits", async () => {
      await enqueue({ queue: "fresh" });
      const fresh = await readQueue("fresh");
      expect(fresh.settings).toEqual(UNSET);
      expect(fresh.stats).toEqual({
        counts: { scheduled: 0, queued: 1, running: 0, succeeded: 0, failed: 0, cancelled: 0 },
        startedLastMinute: 0,
        finishedLastMinute: 0,
        averageRunMs: null,
        p95RunMs: null,
        oldestWaitingMs: 0,
        estimatedWaitMs: null,
      });

      const { enqueueJobs } = await t.data(EnqueueJobsDocument, {
        jobs: [...Array.from({ length: 5 }, (_, i) => ({ queue: "s", payload: i })), { queue: "s", delayMs: 600_000 }],
      });
      const [j1, j2, j3, j4] = enqueueJobs.map((r) => r.job.id);
      const leased = await claim(["s"], { limit: 3 });
      expect(leased.map((l) => l.job.id)).toEqual([j1, j2, j3]);
      clock.advance(2_000);
      const token = (id: string | undefined) => leased.find((l) => l.job.id === id)?.leaseToken ?? "";
      await t.data(CompleteJobDocument, { jobId: j1 ?? "", leaseToken: token(j1) });
      await t.data(FailJobDocument, {
        jobId: j2 ?? "",
        leaseToken: token(j2),
        error: { message: "x" },
        retryable: false,
      });
      await t.data(CancelJobDocument, { jobId: j4 ?? "" });
      void j3; // still RUNNING

      const s = await readQueue("s");
      expect(s.stats).toEqual({
        counts: { scheduled: 1, queued: 1, running: 1, succeeded: 1, failed: 1, cancelled: 1 },
        startedLastMinute: 3,
        finishedLastMinute: 3,
        averageRunMs: 2_000,
        p95RunMs: 2_000,
        // The last QUEUED job has been ready since it was enqueued.
        oldestWaitingMs: 2_000,
        // One job ahead, one slot (the running job's), which frees now; then one 2 s run.
        estimatedWaitMs: 2_000,
      });

      clock.advance(61_000);
      const later = await readQueue("s");
      expect(later.stats).toMatchObject({ startedLastMinute: 0, finishedLastMinute: 0, oldestWaitingMs: 63_000 });

      await t.data(PauseQueueDocument, { name: "s" });
      expect((await readQueue("s")).stats.estimatedWaitMs).toBeNull();
    });
  });

  describe("pauseQueue and resumeQueue", () => {
    it("a paused queue gives [] to claims while other queues still give; resume gives the job", async () => {
      const job = await enqueue({ queue: "pz" });
      const open = await enqueue({ queue: "open" });
      clock.advance(500);

      const { pauseQueue } = await t.data(PauseQueueDocument, { name: "pz" });
      expect(pauseQueue).toEqual({
        name: "pz",
        settings: { ...UNSET, paused: true },
        createdAt: at(-500),
        updatedAt: at(),
      });
      expect(await claim(["pz"])).toEqual([]);
      expect((await claim(["pz", "open"], { limit: 10 })).map((l) => l.job.id)).toEqual([open.id]);
      expect((await t.data(JobDocument, { id: job.id })).job.state).toBe("QUEUED");

      // Pausing twice is harmless.
      expect((await t.data(PauseQueueDocument, { name: "pz" })).pauseQueue.settings.paused).toBe(true);

      const { resumeQueue } = await t.data(ResumeQueueDocument, { name: "pz" });
      expect(resumeQueue.settings).toEqual(UNSET);
      expect((await claim(["pz"])).map((l) => l.job.id)).toEqual([job.id]);

      // pauseQueue creates a queue that did not exist.
      await t.data(PauseQueueDocument, { name: "brand-new" });
      expect(await queueNames()).toEqual(["brand-new", "open", "pz"]);
    });
  });

  describe("configureQueue", () => {
    it("sets settings, leaves omitted ones, and clears explicit nulls", async () => {
      const all = {
        concurrency: 2,
        rateLimit: { count: 5, intervalMs: 1_000 },
        maxQueued: 100,
        defaultPriority: 7,
        defaultMaxAttempts: 4,
        defaultLeaseSeconds: 45,
        retainSucceededSeconds: 3_600,
        retainFailedSeconds: 86_400,
      };
      const { configureQueue } = await t.data(ConfigureQueueDocument, {
        input: { name: "cfg", ...all, defaultBackoff: { type: "FIXED", delayMs: 2_000 } },
      });
      const fixed = {
        type: "FIXED" as const,
        delayMs: 2_000,
        baseMs: null,
        factor: null,
        maxMs: null,
        jitter: null,
        delaysMs: null,
      };
      expect(configureQueue).toEqual({
        name: "cfg",
        settings: { ...all, paused: false, defaultBackoff: fixed },
        createdAt: at(),
        updatedAt: at(),
      });

      clock.advance(1_000);
      const one = await t.data(ConfigureQueueDocument, { input: { name: "cfg", concurrency: 3 } });
      expect(one.configureQueue.settings).toEqual({ ...all, concurrency: 3, paused: false, defaultBackoff: fixed });
      expect(one.configureQueue.updatedAt).toBe(at());
      expect(one.configureQueue.createdAt).toBe(at(-1_000));

      const cleared = await t.data(ConfigureQueueDocument, {
        input: { name: "cfg", rateLimit: null, maxQueued: null, defaultBackoff: null, defaultPriority: null },
      });
      const expected = {
        ...all,
        concurrency: 3,
        paused: false,
        rateLimit: null,
        maxQueued: null,
        defaultBackoff: null,
        defaultPriority: null,
      };
      expect(cleared.configureQueue.settings).toEqual(expected);
      expect((await readQueue("cfg")).settings).toEqual(expected);

      const exponential = await t.data(ConfigureQueueDocument, {
        input: { name: "cfg", defaultBackoff: { type: "EXPONENTIAL", baseMs: 500 } },
      });
      expect(exponential.configureQueue.settings.defaultBackoff).toEqual({
        type: "EXPONENTIAL",
        baseMs: 500,
        factor: 2,
        maxMs: 30 * 24 * 3_600_000,
        jitter: 0,
        delayMs: null,
        delaysMs: null,
      });
    });

    it("refuses bad settings with the field named, and changes nothing", async () => {
      await t.data(ConfigureQueueDocument, { input: { name: "v", concurrency: 4 } });
      const before = await readQueue("v");
      const cases: [ConfigureQueueInput, string][] = [
        [{ name: "v" }, "name"],
        [{ name: "v", concurrency: 0 }, "concurrency"],
        [{ name: "v", maxQueued: 0 }, "maxQueued"],
        [{ name: "v", rateLimit: { count: 0, intervalMs: 1_000 } }, "rateLimit.count"],
        [{ name: "v", defaultBackoff: { type: "FIXED" } }, "defaultBackoff.delayMs"],
        [{ name: "v", defaultMaxAttempts: 1_001 }, "defaultMaxAttempts"],
        [{ name: "v", paused: null }, "paused"],
        [{ name: "not a name", concurrency: 1 }, "name"],
      ];
      for (const [input, field] of cases) {
        const res = await t.request(ConfigureQueueDocument, { input });
        expect(res.status).toBe(200);
        expect(extensionsOf(res)).toEqual({ code: "BAD_USER_INPUT", field });
      }
      expect(await readQueue("v")).toEqual(before);
      expect(await queueNames()).toEqual(["v"]);
    });

    it("accepts a retention of 0 s (delete at the next tick) and refuses a negative one", async () => {
      const ok = await t.data(ConfigureQueueDocument, { input: { name: "r", retainSucceededSeconds: 0 } });
      expect(ok.configureQueue.settings.retainSucceededSeconds).toBe(0);
      const res = await t.request(ConfigureQueueDocument, { input: { name: "r", retainFailedSeconds: -1 } });
      expect(extensionsOf(res)).toEqual({ code: "BAD_USER_INPUT", field: "retainFailedSeconds" });
    });

    it("gives new jobs the queue's defaults and claims its lease length and concurrency", async () => {
      await t.data(ConfigureQueueDocument, {
        input: {
          name: "d",
          defaultPriority: 7,
          defaultMaxAttempts: 4,
          defaultBackoff: { type: "SCHEDULE", delaysMs: [100, 200] },
          defaultLeaseSeconds: 45,
          concurrency: 2,
        },
      });
      const plain = await enqueue({ queue: "d" });
      expect(plain).toMatchObject({
        priority: 7,
        maxAttempts: 4,
        backoff: { type: "SCHEDULE", delaysMs: [100, 200] },
      });
      const own = await enqueue({ queue: "d", priority: 1, maxAttempts: 2, backoff: { type: "FIXED", delayMs: 9 } });
      expect(own).toMatchObject({ priority: 1, maxAttempts: 2, backoff: { type: "FIXED", delayMs: 9 } });
      await enqueue({ queue: "d" });

      // Concurrency 2: a claim of 10 gets two; the queue's lease is 45 s.
      const leased = await claim(["d"], { limit: 10 });
      expect(leased.map((l) => l.job.id)).toEqual([own.id, plain.id]);
      expect(leased.map((l) => l.leaseExpiresAt)).toEqual([at(45_000), at(45_000)]);
      expect(await claim(["d"], { limit: 10 })).toEqual([]);

      clock.advance(10_000);
      const hb = await t.data(HeartbeatJobDocument, { jobId: own.id, leaseToken: leased[0]?.leaseToken ?? "" });
      expect(hb.heartbeatJob.leaseExpiresAt).toBe(at(45_000));

      // Clearing the defaults brings back the server's.
      await t.data(ConfigureQueueDocument, {
        input: { name: "d", defaultPriority: null, defaultMaxAttempts: null, defaultBackoff: null },
      });
      expect(await enqueue({ queue: "d" })).toMatchObject({
        priority: 0,
        maxAttempts: 3,
        backoff: { type: "EXPONENTIAL", baseMs: 1_000 },
      });
    });

    // enqueueJob and configureQueue read a BackoffInput the same way: a null
    // field inside it means "not given" (the default applies).
    it("accepts the same BackoffInput (with explicit nulls) as enqueueJob", async () => {
      const backoff = { type: "EXPONENTIAL" as const, baseMs: 500, factor: null, maxMs: null, jitter: null };
      const job = await enqueue({ queue: "nulls", backoff });
      expect(job.backoff).toMatchObject({ type: "EXPONENTIAL", baseMs: 500, factor: 2 });
      const res = await t.request(ConfigureQueueDocument, { input: { name: "nulls", defaultBackoff: backoff } });
      expect(res.errors).toBeUndefined();
      expect(res.data?.configureQueue.settings.defaultBackoff).toMatchObject({ type: "EXPONENTIAL", baseMs: 500 });
    });
  });

  describe("maxQueued", () => {
    it("answers QUEUE_FULL past the limit and writes nothing, for one job or a batch", async () => {
      await t.data(ConfigureQueueDocument, { input: { name: "full", maxQueued: 2 } });
      const a = await enqueue({ queue: "full", idempotencyKey: "a" });
      await enqueue({ queue: "full", delayMs: 60_000 }); // SCHEDULED jobs wait too

      const third = await t.request(EnqueueJobDocument, { input: { queue: "full", payload: 3 } });
      expect(third.status).toBe(200);
      expect(third.data).toBeNull();
      expect(third.errors?.[0]?.message).toBe("queue full is full (maxQueued 2)");
      expect(extensionsOf(third)).toEqual({ code: "QUEUE_FULL", queue: "full", maxQueued: 2 });
      expect(await total("full")).toBe(2);
      expect(await summariseEvents(t.db)).toHaveLength(2);

      // A bulk enqueue that would overfill it writes nothing at all, not even the other queue's job.
      const bulk = await t.request(EnqueueJobsDocument, {
        jobs: [{ queue: "elsewhere" }, { queue: "full" }],
      });
      expect(extensionsOf(bulk)).toEqual({ code: "QUEUE_FULL", queue: "full", maxQueued: 2 });
      expect(await total()).toBe(2);
      expect(await queueNames()).toEqual(["full"]);

      // A repeated idempotency key adds nothing, so it is answered even when full.
      const repeat = await t.data(EnqueueJobDocument, { input: { queue: "full", idempotencyKey: "a" } });
      expect(repeat.enqueueJob).toMatchObject({ created: false, job: { id: a.id } });

      // A RUNNING job no longer waits: there is room again.
      await claimOne("full");
      expect((await enqueue({ queue: "full" })).state).toBe("QUEUED");
      expect(extensionsOf(await t.request(EnqueueJobDocument, { input: { queue: "full" } }))?.code).toBe("QUEUE_FULL");
      // Clearing the limit lifts it.
      await t.data(ConfigureQueueDocument, { input: { name: "full", maxQueued: null } });
      expect((await enqueue({ queue: "full" })).state).toBe("QUEUED");
      expect((await readQueue("full")).stats.counts).toMatchObject({ queued: 2, scheduled: 1, running: 1 });
    });
  });

  describe("purgeJobs", () => {
    it("deletes only the finished jobs of the queue, by states and finishedBefore, with their events", async () => {
      const t0 = clock.now().getTime();
      const iso = (ms: number) => new Date(t0 + ms).toISOString();
      const { enqueueJobs } = await t.data(EnqueueJobsDocument, {
        jobs: [{ queue: "p" }, { queue: "p" }, { queue: "p" }, { queue: "p" }, { queue: "p" }, { queue: "other" }],
      });
      const [succeeded, failed, cancelled, willRun, waiting, otherDone] = enqueueJobs.map((r) => r.job.id);
      const [l1, l2] = await claim(["p"], { limit: 2 });
      const [lOther] = await claim(["other"]);
      clock.advance(1_000);
      await t.data(CompleteJobDocument, { jobId: succeeded ?? "", leaseToken: l1?.leaseToken ?? "" });
      await t.data(CompleteJobDocument, { jobId: otherDone ?? "", leaseToken: lOther?.leaseToken ?? "" });
      clock.advance(1_000);
      await t.data(FailJobDocument, {
        jobId: failed ?? "",
        leaseToken: l2?.leaseToken ?? "",
        error: { message: "no" },
        retryable: false,
      });
      clock.advance(1_000);
      await t.data(CancelJobDocument, { jobId: cancelled ?? "" });
      expect((await claimOne("p")).job.id).toBe(willRun); // the fifth job stays QUEUED
      clock.advance(7_000);

      // Unfinished states are refused, and nothing is deleted.
      for (const states of [["QUEUED"], ["RUNNING", "SUCCEEDED"], ["SCHEDULED"], []] as const) {
        const res = await t.request(PurgeJobsDocument, { queue: "p", states: [...states] });
        expect(res.status).toBe(200);
        expect(extensionsOf(res)).toEqual({ code: "BAD_USER_INPUT", field: "states" });
      }
      expect(await total("p")).toBe(5);

      const purge = async (vars: { states?: ("SUCCEEDED" | "FAILED" | "CANCELLED")[]; finishedBefore?: string }) =>
        (await t.data(PurgeJobsDocument, { queue: "p", ...vars })).purgeJobs.deletedCount;
      expect(await purge({ states: ["CANCELLED"] })).toBe(1);
      // `succeeded` finished at +1 s, `failed` at +2 s.
      expect(await purge({ finishedBefore: iso(1_500) })).toBe(1);
      expect(await purge({ finishedBefore: iso(1_000) })).toBe(0);
      expect(await purge({})).toBe(1);
      expect(await purge({})).toBe(0);

      const left = (await t.data(JobsDocument, { filter: {} })).jobs.nodes.map((j) => [j.id, j.state]);
      expect(left).toEqual([
        [otherDone, "SUCCEEDED"],
        [waiting, "QUEUED"],
        [willRun, "RUNNING"],
      ]);
      for (const id of [succeeded, failed, cancelled]) {
        expect(extensionsOf(await t.request(JobEventsDocument, { jobId: id ?? "" }))).toEqual({
          code: "NOT_FOUND",
          id,
        });
      }
      const eventJobs = await queryDatabase<{ job_id: number | string }>(
        t.db,
        "SELECT DISTINCT job_id FROM job_events ORDER BY job_id",
      );
      expect(eventJobs.map((r) => String(r.job_id))).toEqual([willRun, waiting, otherDone]);
      expect((await readQueue("p")).stats.counts).toEqual({
        scheduled: 0,
        queued: 1,
        running: 1,
        succeeded: 0,
        failed: 0,
        cancelled: 0,
      });
      // Another queue's finished job is untouched; a queue with nothing finished purges 0.
      expect((await t.data(PurgeJobsDocument, { queue: "other" })).purgeJobs.deletedCount).toBe(1);
      expect((await t.data(PurgeJobsDocument, { queue: "never-used" })).purgeJobs.deletedCount).toBe(0);
    });
  });
});
