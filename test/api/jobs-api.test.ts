/**
 * The job half of the GraphQL contract, over HTTP against the real server on
 * every backend: each job query and mutation, each domain error code with its
 * exact extensions and HTTP status, and one whole retrying lifecycle whose
 * event history is checked against the database itself. Time is a
 * ManualClock, so every runAt, lease and backoff is asserted to the ms.
 */
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { parse } from "graphql";
import type { GraphQLFormattedError } from "graphql";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CancelJobDocument,
  ClaimJobsDocument,
  CompleteJobDocument,
  EnqueueJobDocument,
  EnqueueJobsDocument,
  FailJobDocument,
  HeartbeatJobDocument,
  JobByKeyDocument,
  JobDocument,
  JobEventsDocument,
  JobsDocument,
  RescheduleJobDocument,
  RetryJobDocument,
} from "../../src/client/__generated__/graphql.ts";
import type {
  ClaimJobsMutationVariables,
  EnqueueJobInput,
  JobFieldsFragment,
  JobFilter,
} from "../../src/client/__generated__/graphql.ts";
import { onlyError, startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";
import { ManualClock } from "../helpers/clock.ts";
import { isGapless, summariseEvents } from "../helpers/inspect.ts";

/** An ad-hoc operation, typed by hand (for fields the shared documents do not select). */
function typed<T, V>(source: string): TypedDocumentNode<T, V> {
  return parse(source) as TypedDocumentNode<T, V>;
}

interface PageData {
  jobs: {
    edges: { cursor: string; node: { id: string } }[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
    totalCount: number;
  };
}
const PageDocument = typed<PageData, { filter?: JobFilter; first?: number; after?: string }>(`
  query Page($filter: JobFilter, $first: Int, $after: String) {
    jobs(filter: $filter, first: $first, after: $after) {
      edges { cursor node { id } }
      pageInfo { hasNextPage endCursor }
      totalCount
    }
  }`);

describe.each(BACKENDS)("jobs API on %s", (dialect) => {
  let t: TestServer;
  let clock: ManualClock;

  beforeEach(async () => {
    clock = new ManualClock();
    t = await startTestServer(dialect, { now: clock.now });
  });
  afterEach(async () => {
    await t.close();
  });

  /** The clock's time plus `ms`, as the API prints it. */
  const at = (ms = 0): string => new Date(clock.now().getTime() + ms).toISOString();

  async function enqueue(input: EnqueueJobInput): Promise<JobFieldsFragment> {
    return (await t.data(EnqueueJobDocument, { input })).enqueueJob.job;
  }
  async function claim(queue: string, vars: Partial<ClaimJobsMutationVariables> = {}) {
    return (await t.data(ClaimJobsDocument, { queues: [queue], workerId: "w1", ...vars })).claimJobs;
  }
  async function claimOne(queue: string, vars: Partial<ClaimJobsMutationVariables> = {}) {
    const leased = await claim(queue, vars);
    expect(leased).toHaveLength(1);
    const [first] = leased;
    if (!first) throw new Error("nothing claimed");
    return first;
  }
  async function readJob(id: string): Promise<JobFieldsFragment> {
    return (await t.data(JobDocument, { id })).job;
  }
  async function total(filter: JobFilter = {}): Promise<number> {
    return (await t.data(JobsDocument, { filter, first: 1 })).jobs.totalCount;
  }

  describe("enqueueJob and job", () => {
    it("applies the documented defaults and job(id) reads back the same job", async () => {
      const job = await enqueue({ queue: "email", payload: { to: "a@example.com" } });
      expect(job).toEqual({
        id: expect.stringMatching(/^[1-9][0-9]*$/),
        queueName: "email",
        state: "QUEUED",
        payload: { to: "a@example.com" },
        result: null,
        error: null,
        priority: 0,
        runAt: at(),
        attempts: 0,
        maxAttempts: 3,
        backoff: {
          type: "EXPONENTIAL",
          baseMs: 1_000,
          factor: 2,
          maxMs: 3_600_000,
          jitter: 0.1,
          delayMs: null,
          delaysMs: null,
        },
        idempotencyKey: null,
        workerId: null,
        leaseExpiresAt: null,
        cancelRequested: false,
        cancelRequestedAt: null,
        progress: null,
        tags: [],
        metadata: null,
        lastSeq: 1,
        createdAt: at(),
        startedAt: null,
        finishedAt: null,
        updatedAt: at(),
      });
      expect(await readJob(job.id)).toEqual(job);
    });

    it("schedules by runAt or delayMs and stores tags, metadata and FIXED/SCHEDULE backoffs", async () => {
      const later = await enqueue({ queue: "q", runAt: at(60_000), priority: -7, maxAttempts: 9 });
      expect(later).toMatchObject({ state: "SCHEDULED", runAt: at(60_000), priority: -7, maxAttempts: 9 });

      const delayed = await enqueue({
        queue: "q",
        delayMs: 1_500,
        tags: ["eu", "vip", "eu"],
        metadata: { source: "api-test", n: [1, 2] },
        backoff: { type: "FIXED", delayMs: 5_000 },
      });
      expect(delayed).toMatchObject({
        state: "SCHEDULED",
        runAt: at(1_500),
        tags: ["eu", "vip"],
        metadata: { source: "api-test", n: [1, 2] },
      });
      expect(delayed.backoff).toEqual({
        type: "FIXED",
        delayMs: 5_000,
        baseMs: null,
        factor: null,
        maxMs: null,
        jitter: null,
        delaysMs: null,
      });

      const scheduled = await enqueue({ queue: "q", backoff: { type: "SCHEDULE", delaysMs: [30_000, 120_000] } });
      expect(scheduled.state).toBe("QUEUED");
      expect((await readJob(scheduled.id)).backoff).toEqual({
        type: "SCHEDULE",
        delaysMs: [30_000, 120_000],
        delayMs: null,
        baseMs: null,
        factor: null,
        maxMs: null,
        jitter: null,
      });
      // A runAt of exactly now is ready at once.
      expect((await enqueue({ queue: "q", runAt: at() })).state).toBe("QUEUED");
    });

    it("accepts a backoff factor up to the documented 100 and refuses more", async () => {
      const ok = await t.data(EnqueueJobDocument, {
        input: { queue: "q", backoff: { type: "EXPONENTIAL", baseMs: 1_000, factor: 100 } },
      });
      expect(ok.enqueueJob.job.backoff).toMatchObject({ type: "EXPONENTIAL", factor: 100 });
      const res = await t.request(EnqueueJobDocument, {
        input: { queue: "q", backoff: { type: "EXPONENTIAL", baseMs: 1_000, factor: 101 } },
      });
      expect(onlyError(res).extensions).toEqual({ code: "BAD_USER_INPUT", field: "backoff.factor" });
    });

    it("answers NOT_FOUND for an unknown id and BAD_USER_INPUT for a malformed one", async () => {
      const missing = await t.request(JobDocument, { id: "999999" });
      expect(missing.status).toBe(200);
      expect(missing.data).toBeNull();
      expect(onlyError(missing)).toMatchObject({
        message: "job 999999 was not found",
        path: ["job"],
        extensions: { code: "NOT_FOUND", id: "999999" },
      });
      expect(onlyError(missing).extensions).toEqual({ code: "NOT_FOUND", id: "999999" });

      const malformed = await t.request(JobDocument, { id: "abc" });
      expect(malformed.status).toBe(200);
      expect(onlyError(malformed).extensions).toEqual({ code: "BAD_USER_INPUT", field: "jobId" });
    });
  });

  describe("enqueueJobs", () => {
    it("writes a batch in order", async () => {
      const { enqueueJobs } = await t.data(EnqueueJobsDocument, {
        jobs: [
          { queue: "bulk", payload: 1 },
          { queue: "bulk", payload: 2, delayMs: 10 },
          { queue: "other", payload: 3 },
        ],
      });
      expect(enqueueJobs.map((r) => [r.created, r.job.queueName, r.job.state])).toEqual([
        [true, "bulk", "QUEUED"],
        [true, "bulk", "SCHEDULED"],
        [true, "other", "QUEUED"],
      ]);
      const ids = enqueueJobs.map((r) => Number(r.job.id));
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect(await total()).toBe(3);
    });

    it("is all or nothing: one invalid job rejects the batch and writes nothing", async () => {
      const res = await t.request(EnqueueJobsDocument, {
        jobs: [
          { queue: "bulk", payload: 1 },
          { queue: "bulk", priority: 2_000_000 },
          { queue: "bulk", payload: 3 },
        ],
      });
      expect(res.status).toBe(200);
      expect(res.data).toBeNull();
      expect(onlyError(res).extensions).toEqual({ code: "BAD_USER_INPUT", field: "jobs[1].priority" });
      expect(await total()).toBe(0);
      expect(await summariseEvents(t.db)).toEqual([]);

      const empty = await t.request(EnqueueJobsDocument, { jobs: [] });
      expect(onlyError(empty).extensions).toEqual({ code: "BAD_USER_INPUT", field: "jobs" });
    });
  });

  describe("idempotency keys", () => {
    it("returns the existing job with created: false, and jobByKey finds it", async () => {
      const first = await t.data(EnqueueJobDocument, {
        input: { queue: "pay", idempotencyKey: "order-1", payload: 1 },
      });
      const again = await t.data(EnqueueJobDocument, {
        input: { queue: "pay", idempotencyKey: "order-1", payload: 2 },
      });
      expect(first.enqueueJob.created).toBe(true);
      expect(again.enqueueJob.created).toBe(false);
      expect(again.enqueueJob.job).toEqual(first.enqueueJob.job); // the stored job, payload 1
      // The key is unique per queue only.
      const elsewhere = await t.data(EnqueueJobDocument, { input: { queue: "refund", idempotencyKey: "order-1" } });
      expect(elsewhere.enqueueJob.created).toBe(true);
      expect(elsewhere.enqueueJob.job.id).not.toBe(first.enqueueJob.job.id);

      const hit = await t.data(JobByKeyDocument, { queue: "pay", key: "order-1" });
      expect(hit.jobByKey).toEqual(first.enqueueJob.job);
      const miss = await t.request(JobByKeyDocument, { queue: "pay", key: "order-2" });
      expect(miss).toEqual({ status: 200, data: { jobByKey: null } });
      expect((await t.data(JobByKeyDocument, { queue: "nowhere", key: "order-1" })).jobByKey).toBeNull();

      const { enqueueJobs } = await t.data(EnqueueJobsDocument, {
        jobs: [
          { queue: "pay", idempotencyKey: "order-1" },
          { queue: "pay", idempotencyKey: "order-3" },
          { queue: "pay", idempotencyKey: "order-3" },
        ],
      });
      expect(enqueueJobs.map((r) => [r.created, r.job.idempotencyKey])).toEqual([
        [false, "order-1"],
        [true, "order-3"],
        [false, "order-3"],
      ]);
      expect(enqueueJobs[0]?.job.id).toBe(first.enqueueJob.job.id);
      expect(enqueueJobs[2]?.job.id).toBe(enqueueJobs[1]?.job.id);
      expect(await total({ queue: "pay" })).toBe(2);
      // A repeat writes no event either.
      expect((await readJob(first.enqueueJob.job.id)).lastSeq).toBe(1);
    });
  });

  describe("jobs", () => {
    it("filters by queue, states, tags (all of them) and creation time; totalCount counts the filter", async () => {
      const t0 = at();
      const a = await enqueue({ queue: "a", tags: ["x", "y"] });
      clock.advance(1_000);
      const t1 = at();
      const b = await enqueue({ queue: "a", tags: ["x"] });
      clock.advance(1_000);
      const t2 = at();
      const c = await enqueue({ queue: "a", tags: ["y"], delayMs: 60_000 });
      const d = await enqueue({ queue: "b", tags: ["x", "y"] });
      await claimOne("a"); // a (enqueued first) → RUNNING

      const ids = async (filter: JobFilter) => {
        const { jobs } = await t.data(JobsDocument, { filter });
        expect(jobs.totalCount).toBe(jobs.nodes.length);
        return jobs.nodes.map((j) => j.id);
      };
      // Newest first.
      expect(await ids({})).toEqual([d.id, c.id, b.id, a.id]);
      expect(await ids({ queue: "a" })).toEqual([c.id, b.id, a.id]);
      expect(await ids({ queue: "b" })).toEqual([d.id]);
      expect(await ids({ states: ["RUNNING"] })).toEqual([a.id]);
      expect(await ids({ states: ["QUEUED", "SCHEDULED"] })).toEqual([d.id, c.id, b.id]);
      expect(await ids({ queue: "a", states: ["QUEUED"] })).toEqual([b.id]);
      expect(await ids({ tags: ["x"] })).toEqual([d.id, b.id, a.id]);
      expect(await ids({ tags: ["x", "y"] })).toEqual([d.id, a.id]);
      expect(await ids({ tags: ["x", "y"], queue: "a" })).toEqual([a.id]);
      expect(await ids({ tags: ["z"] })).toEqual([]);
      // createdAfter is inclusive, createdBefore exclusive.
      expect(await ids({ createdAfter: t1 })).toEqual([d.id, c.id, b.id]);
      expect(await ids({ createdBefore: t1 })).toEqual([a.id]);
      expect(await ids({ createdAfter: t0, createdBefore: t2 })).toEqual([b.id, a.id]);
      expect(await ids({ createdAfter: t1, createdBefore: t2 })).toEqual([b.id]);
      expect(await ids({ createdAfter: at(1) })).toEqual([]);

      // totalCount is the filter's, not the page's.
      const { jobs } = await t.data(JobsDocument, { filter: { tags: ["y"] }, first: 1 });
      expect(jobs.nodes.map((j) => j.id)).toEqual([d.id]);
      expect(jobs.totalCount).toBe(3);
      expect(jobs.pageInfo.hasNextPage).toBe(true);
    });

    it("pages through a whole set with first/after: no duplicates, no gaps", async () => {
      const { enqueueJobs } = await t.data(EnqueueJobsDocument, {
        jobs: Array.from({ length: 7 }, (_, i) => ({ queue: "pages", payload: i })),
      });
      await enqueue({ queue: "not-paged" });
      const all = enqueueJobs.map((r) => r.job.id).reverse(); // newest first
      const filter = { queue: "pages" };

      const seen: string[] = [];
      const pages: { size: number; hasNextPage: boolean; totalCount: number }[] = [];
      let after: string | undefined;
      for (let i = 0; i < 5; i++) {
        const { jobs } = await t.data(PageDocument, { filter, first: 3, ...(after !== undefined && { after }) });
        seen.push(...jobs.edges.map((e) => e.node.id));
        pages.push({ size: jobs.edges.length, hasNextPage: jobs.pageInfo.hasNextPage, totalCount: jobs.totalCount });
        expect(jobs.pageInfo.endCursor).toBe(jobs.edges.at(-1)?.cursor);
        if (!jobs.pageInfo.hasNextPage) break;
        after = jobs.pageInfo.endCursor ?? undefined;
      }
      expect(pages).toEqual([
        { size: 3, hasNextPage: true, totalCount: 7 },
        { size: 3, hasNextPage: true, totalCount: 7 },
        { size: 1, hasNextPage: false, totalCount: 7 },
      ]);
      expect(seen).toEqual(all);

      // Any edge's cursor continues right after that job.
      const first = await t.data(PageDocument, { filter, first: 3 });
      const second = first.jobs.edges[1];
      if (!second) throw new Error("no second edge");
      const rest = await t.data(PageDocument, { filter, first: 2, after: second.cursor });
      expect(rest.jobs.edges.map((e) => e.node.id)).toEqual(all.slice(2, 4));

      // A page that ends exactly at the last job says there is nothing more.
      const exact = await t.data(PageDocument, { filter, first: 7 });
      expect(exact.jobs.pageInfo).toEqual({ hasNextPage: false, endCursor: exact.jobs.edges[6]?.cursor });
      expect((await t.data(PageDocument, { filter, first: 6 })).jobs.pageInfo.hasNextPage).toBe(true);
      const none = await t.data(PageDocument, { filter: { queue: "empty" }, first: 3 });
      expect(none.jobs).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null }, totalCount: 0 });

      const bad = await t.request(PageDocument, { filter, first: 3, after: "not-a-cursor" });
      expect(onlyError(bad).extensions).toEqual({ code: "BAD_USER_INPUT", field: "after" });
      const big = await t.request(PageDocument, { filter, first: 1_001 });
      expect(onlyError(big).extensions).toEqual({ code: "BAD_USER_INPUT", field: "first" });
    });
  });

  describe("claimJobs", () => {
    it("leases in priority, then enqueue order, up to limit, with leaseSeconds from the clock", async () => {
      const p5 = await enqueue({ queue: "c", priority: 5 });
      const m1a = await enqueue({ queue: "c", priority: -1 });
      const p0 = await enqueue({ queue: "c" });
      const m1b = await enqueue({ queue: "c", priority: -1 });
      await enqueue({ queue: "elsewhere", priority: -100 });

      const leased = await claim("c", { limit: 3, leaseSeconds: 90, workerId: "worker-7" });
      expect(leased.map((l) => l.job.id)).toEqual([m1a.id, m1b.id, p0.id]);
      for (const l of leased) {
        expect(l.leaseToken).toMatch(/^[0-9a-f]{32}$/);
        expect(l.leaseExpiresAt).toBe(at(90_000));
        expect(l.job).toMatchObject({
          state: "RUNNING",
          attempts: 1,
          workerId: "worker-7",
          leaseExpiresAt: at(90_000),
          startedAt: at(),
          lastSeq: 2,
        });
      }
      expect(new Set(leased.map((l) => l.leaseToken)).size).toBe(3);

      // Without leaseSeconds: the server default, 30 s.
      const [last] = await claim("c", { limit: 10 });
      expect(last?.job.id).toBe(p5.id);
      expect(last?.leaseExpiresAt).toBe(at(30_000));
      expect(await claim("c", { limit: 10 })).toEqual([]);

      const bad = await t.request(ClaimJobsDocument, { queues: ["c"], workerId: "w", leaseSeconds: 0 });
      expect(onlyError(bad).extensions).toEqual({ code: "BAD_USER_INPUT", field: "leaseSeconds" });
    });
  });

  describe("heartbeatJob, cancelJob and a running job", () => {
    it("records progress, extends the lease, and reports a cancel request that failJob acknowledges", async () => {
      const job = await enqueue({ queue: "hb" });
      const { leaseToken } = await claimOne("hb", { leaseSeconds: 10 });

      clock.advance(4_000);
      const first = await t.data(HeartbeatJobDocument, {
        jobId: job.id,
        leaseToken,
        progress: { pct: 25 },
        leaseSeconds: 60,
      });
      expect(first.heartbeatJob.cancelRequested).toBe(false);
      expect(first.heartbeatJob.leaseExpiresAt).toBe(at(60_000));
      expect(first.heartbeatJob.job).toMatchObject({
        state: "RUNNING",
        progress: { pct: 25 },
        leaseExpiresAt: at(60_000),
        updatedAt: at(),
        cancelRequested: false,
      });
      // Heartbeats write no event.
      expect(first.heartbeatJob.job.lastSeq).toBe(2);

      // Omitted progress keeps the last one; omitted leaseSeconds is the default 30 s.
      clock.advance(1_000);
      const second = await t.data(HeartbeatJobDocument, { jobId: job.id, leaseToken });
      expect(second.heartbeatJob.job.progress).toEqual({ pct: 25 });
      expect(second.heartbeatJob.leaseExpiresAt).toBe(at(30_000));

      // Cancelling a RUNNING job only asks: it stays RUNNING.
      const cancelled = await t.data(CancelJobDocument, { jobId: job.id });
      expect(cancelled.cancelJob).toMatchObject({
        state: "RUNNING",
        cancelRequested: true,
        cancelRequestedAt: at(),
        lastSeq: 3,
      });
      // Asking twice changes nothing.
      expect((await t.data(CancelJobDocument, { jobId: job.id })).cancelJob.lastSeq).toBe(3);

      const told = await t.data(HeartbeatJobDocument, { jobId: job.id, leaseToken, progress: { pct: 50 } });
      expect(told.heartbeatJob.cancelRequested).toBe(true);
      expect(told.heartbeatJob.job).toMatchObject({ state: "RUNNING", progress: { pct: 50 }, cancelRequested: true });

      clock.advance(500);
      const failed = await t.data(FailJobDocument, { jobId: job.id, leaseToken, error: { message: "stopped" } });
      expect(failed.failJob).toMatchObject({
        state: "CANCELLED",
        finishedAt: at(),
        leaseExpiresAt: null,
        error: { message: "stopped", code: null, details: null },
      });
      const events = (await t.data(JobEventsDocument, { jobId: job.id })).jobEvents;
      expect(events.map((e) => [e.type, e.fromState, e.toState])).toEqual([
        ["ENQUEUED", null, "QUEUED"],
        ["CLAIMED", "QUEUED", "RUNNING"],
        ["CANCEL_REQUESTED", "RUNNING", "RUNNING"],
        ["CANCELLED", "RUNNING", "CANCELLED"],
      ]);

      // The token stays on the finished job: its own worker learns the job is over.
      const over = await t.request(HeartbeatJobDocument, { jobId: job.id, leaseToken });
      expect(onlyError(over).extensions).toEqual({
        code: "INVALID_TRANSITION",
        jobId: job.id,
        operation: "heartbeat",
        state: "CANCELLED",
      });
      const other = await t.request(HeartbeatJobDocument, { jobId: job.id, leaseToken: "f".repeat(32) });
      expect(onlyError(other).extensions).toEqual({ code: "LEASE_LOST", jobId: job.id });
    });
  });

  describe("completeJob and failJob", () => {
    it("completes with a result; completing again is INVALID_TRANSITION", async () => {
      const job = await enqueue({ queue: "done" });
      const { leaseToken } = await claimOne("done");
      clock.advance(2_500);
      const { completeJob } = await t.data(CompleteJobDocument, {
        jobId: job.id,
        leaseToken,
        result: { sent: 3, ids: ["a"] },
      });
      expect(completeJob).toMatchObject({
        state: "SUCCEEDED",
        result: { sent: 3, ids: ["a"] },
        finishedAt: at(),
        startedAt: at(-2_500),
        leaseExpiresAt: null,
        attempts: 1,
        lastSeq: 3,
      });
      expect(await readJob(job.id)).toEqual(completeJob);

      const twice = await t.request(CompleteJobDocument, { jobId: job.id, leaseToken, result: 1 });
      expect(twice.status).toBe(200);
      expect(onlyError(twice).extensions).toEqual({
        code: "INVALID_TRANSITION",
        jobId: job.id,
        operation: "complete",
        state: "SUCCEEDED",
      });
      expect(await readJob(job.id)).toEqual(completeJob);
    });

    it("schedules a retryable failure at now + retryInMs and dead-letters a non-retryable one", async () => {
      const job = await enqueue({ queue: "f", maxAttempts: 5 });
      const first = await claimOne("f");
      const retried = await t.data(FailJobDocument, {
        jobId: job.id,
        leaseToken: first.leaseToken,
        error: { message: "timeout", code: "E_TIMEOUT", details: { host: "db1", tries: [1, 2] } },
        retryInMs: 1_234,
      });
      expect(retried.failJob).toMatchObject({
        state: "SCHEDULED",
        runAt: at(1_234),
        attempts: 1,
        leaseExpiresAt: null,
        finishedAt: null,
        error: { message: "timeout", code: "E_TIMEOUT", details: { host: "db1", tries: [1, 2] } },
      });

      clock.advance(1_234);
      const second = await claimOne("f");
      expect(second.job.attempts).toBe(2);
      const dead = await t.data(FailJobDocument, {
        jobId: job.id,
        leaseToken: second.leaseToken,
        error: { message: "bad input", code: "E_INPUT" },
        retryable: false,
      });
      expect(dead.failJob).toMatchObject({
        state: "FAILED",
        attempts: 2,
        finishedAt: at(),
        error: { message: "bad input", code: "E_INPUT", details: null },
      });
      const events = (await t.data(JobEventsDocument, { jobId: job.id })).jobEvents;
      expect(events.map((e) => [e.type, e.data])).toEqual([
        ["ENQUEUED", null],
        ["CLAIMED", { workerId: "w1" }],
        ["RETRY_SCHEDULED", { error: "timeout", runAt: at(), delayMs: 1_234 }],
        ["PROMOTED", null],
        ["CLAIMED", { workerId: "w1" }],
        ["FAILED", { error: "bad input", retryable: false }],
      ]);
    });

    it("dead-letters a retryable failure once attempts run out", async () => {
      const job = await enqueue({ queue: "once", maxAttempts: 1 });
      const { leaseToken } = await claimOne("once");
      const { failJob } = await t.data(FailJobDocument, { jobId: job.id, leaseToken, error: { message: "x" } });
      expect(failJob).toMatchObject({ state: "FAILED", attempts: 1, maxAttempts: 1, finishedAt: at() });
    });
  });

  describe("cancelJob, retryJob and rescheduleJob", () => {
    it("cancels waiting jobs and retries finished ones with attempts reset", async () => {
      const queued = await enqueue({ queue: "ops" });
      const scheduled = await enqueue({ queue: "ops", delayMs: 60_000 });
      clock.advance(10);
      for (const job of [queued, scheduled]) {
        const { cancelJob } = await t.data(CancelJobDocument, { jobId: job.id });
        expect(cancelJob).toMatchObject({ state: "CANCELLED", finishedAt: at(), cancelRequested: false, lastSeq: 2 });
      }

      const retried = await t.data(RetryJobDocument, { jobId: queued.id });
      expect(retried.retryJob).toMatchObject({ state: "QUEUED", attempts: 0, runAt: at(), finishedAt: null });

      const failing = await enqueue({ queue: "ops2", maxAttempts: 1 });
      const { leaseToken } = await claimOne("ops2");
      await t.data(FailJobDocument, { jobId: failing.id, leaseToken, error: { message: "no" }, retryable: false });
      clock.advance(10);
      const { retryJob } = await t.data(RetryJobDocument, { jobId: failing.id });
      expect(retryJob).toMatchObject({
        state: "QUEUED",
        attempts: 0,
        runAt: at(),
        error: null,
        workerId: null,
        leaseExpiresAt: null,
        startedAt: null,
        finishedAt: null,
        lastSeq: 4,
      });
      const again = await claimOne("ops2");
      expect(again.job.attempts).toBe(1);
      expect(again.leaseToken).not.toBe(leaseToken);

      const notFinished = await t.request(RetryJobDocument, { jobId: queued.id });
      expect(notFinished.status).toBe(200);
      expect(onlyError(notFinished).extensions).toEqual({
        code: "INVALID_TRANSITION",
        jobId: queued.id,
        operation: "retry",
        state: "QUEUED",
      });
    });

    it("moves a waiting job's runAt (by runAt or delayMs) and priority", async () => {
      const job = await enqueue({ queue: "r", priority: 3 });
      const later = await t.data(RescheduleJobDocument, { jobId: job.id, runAt: at(120_000) });
      expect(later.rescheduleJob).toMatchObject({ state: "SCHEDULED", runAt: at(120_000), priority: 3, lastSeq: 2 });

      const sooner = await t.data(RescheduleJobDocument, { jobId: job.id, delayMs: 5_000, priority: -2 });
      expect(sooner.rescheduleJob).toMatchObject({ state: "SCHEDULED", runAt: at(5_000), priority: -2 });

      clock.advance(1_000);
      const priorityOnly = await t.data(RescheduleJobDocument, { jobId: job.id, priority: 8 });
      expect(priorityOnly.rescheduleJob).toMatchObject({ state: "SCHEDULED", runAt: at(4_000), priority: 8 });

      const now = await t.data(RescheduleJobDocument, { jobId: job.id, runAt: at(-1) });
      expect(now.rescheduleJob).toMatchObject({ state: "QUEUED", runAt: at(-1), priority: 8 });
      const events = (await t.data(JobEventsDocument, { jobId: job.id, afterSeq: 1 })).jobEvents;
      expect(events.map((e) => [e.type, e.fromState, e.toState, e.data])).toEqual([
        ["RESCHEDULED", "QUEUED", "SCHEDULED", { runAt: at(119_000), priority: 3 }],
        ["RESCHEDULED", "SCHEDULED", "SCHEDULED", { runAt: at(4_000), priority: -2 }],
        ["RESCHEDULED", "SCHEDULED", "SCHEDULED", { runAt: at(4_000), priority: 8 }],
        ["RESCHEDULED", "SCHEDULED", "QUEUED", { runAt: at(-1), priority: 8 }],
      ]);

      const both = await t.request(RescheduleJobDocument, { jobId: job.id, runAt: at(), delayMs: 1 });
      expect(onlyError(both).extensions).toEqual({ code: "BAD_USER_INPUT", field: "runAt" });
      const nothing = await t.request(RescheduleJobDocument, { jobId: job.id });
      expect(onlyError(nothing).extensions).toEqual({ code: "BAD_USER_INPUT", field: "runAt" });

      await claimOne("r");
      const running = await t.request(RescheduleJobDocument, { jobId: job.id, priority: 1 });
      expect(onlyError(running).extensions).toEqual({
        code: "INVALID_TRANSITION",
        jobId: job.id,
        operation: "reschedule",
        state: "RUNNING",
      });
    });
  });

  describe("jobEvents", () => {
    it("pages a job's history by afterSeq and first, and is NOT_FOUND for an unknown job", async () => {
      const job = await enqueue({ queue: "ev", delayMs: 1_000 });
      clock.advance(1_000);
      const { leaseToken } = await claimOne("ev");
      await t.data(CompleteJobDocument, { jobId: job.id, leaseToken });

      const all = (await t.data(JobEventsDocument, { jobId: job.id })).jobEvents;
      expect(all.map((e) => [e.seq, e.type, e.attempt, e.jobId])).toEqual([
        [1, "ENQUEUED", 0, job.id],
        [2, "PROMOTED", 0, job.id],
        [3, "CLAIMED", 1, job.id],
        [4, "SUCCEEDED", 1, job.id],
      ]);
      const ids = all.map((e) => Number(e.id));
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect(all.map((e) => e.createdAt)).toEqual([at(-1_000), at(), at(), at()]);

      const page = async (afterSeq: number, first: number) =>
        (await t.data(JobEventsDocument, { jobId: job.id, afterSeq, first })).jobEvents.map((e) => e.seq);
      expect(await page(0, 2)).toEqual([1, 2]);
      expect(await page(2, 2)).toEqual([3, 4]);
      expect(await page(3, 10)).toEqual([4]);
      expect(await page(4, 10)).toEqual([]);

      const unknown = await t.request(JobEventsDocument, { jobId: "424242" });
      expect(unknown.status).toBe(200);
      expect(unknown.data).toBeNull();
      expect(onlyError(unknown).extensions).toEqual({ code: "NOT_FOUND", id: "424242" });
      // A lean selection, so the query's cost stays under the limit and the bound is the service's.
      const tooMany = await t.post({ query: `{ jobEvents(jobId: "${job.id}", first: 10001) { seq } }` });
      const body = (await tooMany.json()) as { errors?: GraphQLFormattedError[] };
      expect(body.errors?.map((e) => e.extensions)).toEqual([{ code: "BAD_USER_INPUT", field: "first" }]);
    });
  });

  describe("error codes over HTTP", () => {
    it("NOT_FOUND for an unknown id on completeJob and cancelJob", async () => {
      for (const res of [
        await t.request(CompleteJobDocument, { jobId: "987654", leaseToken: "t" }),
        await t.request(CancelJobDocument, { jobId: "987654" }),
      ]) {
        expect(res.status).toBe(200);
        expect(res.data).toBeNull();
        expect(onlyError(res)).toMatchObject({ message: "job 987654 was not found" });
        expect(onlyError(res).extensions).toEqual({ code: "NOT_FOUND", id: "987654" });
      }
    });

    it("LEASE_LOST for a wrong lease token, leaving the job unchanged", async () => {
      const job = await enqueue({ queue: "lease" });
      await claimOne("lease");
      const before = await readJob(job.id);
      const res = await t.request(CompleteJobDocument, { jobId: job.id, leaseToken: "0".repeat(32), result: 1 });
      expect(res.status).toBe(200);
      expect(res.data).toBeNull();
      expect(onlyError(res)).toMatchObject({ path: ["completeJob"] });
      expect(onlyError(res).extensions).toEqual({ code: "LEASE_LOST", jobId: job.id });
      const fail = await t.request(FailJobDocument, { jobId: job.id, leaseToken: "nope", error: { message: "m" } });
      expect(onlyError(fail).extensions).toEqual({ code: "LEASE_LOST", jobId: job.id });
      expect(await readJob(job.id)).toEqual(before);
    });

    it("INVALID_TRANSITION with the job's state for cancelling a finished job", async () => {
      const job = await enqueue({ queue: "fin" });
      const { leaseToken } = await claimOne("fin");
      await t.data(CompleteJobDocument, { jobId: job.id, leaseToken });
      const res = await t.request(CancelJobDocument, { jobId: job.id });
      expect(res.status).toBe(200);
      expect(res.data).toBeNull();
      expect(onlyError(res)).toMatchObject({ message: `cannot cancel job ${job.id}: it is SUCCEEDED` });
      expect(onlyError(res).extensions).toEqual({
        code: "INVALID_TRANSITION",
        jobId: job.id,
        operation: "cancel",
        state: "SUCCEEDED",
      });
      expect((await readJob(job.id)).lastSeq).toBe(3);
    });

    it("input the schema itself refuses is a 400 with BAD_USER_INPUT", async () => {
      // A variable GraphQL cannot coerce fails before execution: Apollo answers 400, no data.
      const res = await t.request(EnqueueJobDocument, {
        input: { queue: "q", runAt: "tomorrow" },
      });
      expect(res.status).toBe(400);
      expect(res.data).toBeUndefined();
      expect(onlyError(res).extensions?.code).toBe("BAD_USER_INPUT");
      expect(await total()).toBe(0);
    });
  });

  it("runs a whole retrying lifecycle with a gapless, consistent event history", async () => {
    const t0 = clock.now().getTime();
    const job = await enqueue({
      queue: "life",
      payload: { n: 1 },
      maxAttempts: 3,
      backoff: { type: "FIXED", delayMs: 5_000 },
    });
    expect(job).toMatchObject({ state: "QUEUED", maxAttempts: 3, backoff: { type: "FIXED", delayMs: 5_000 } });

    const first = await claimOne("life", { leaseSeconds: 30 });
    expect(first.job).toMatchObject({ id: job.id, state: "RUNNING", attempts: 1 });
    expect(first.leaseExpiresAt).toBe(at(30_000));

    clock.advance(1_000);
    const hb = await t.data(HeartbeatJobDocument, {
      jobId: job.id,
      leaseToken: first.leaseToken,
      progress: { step: 1 },
    });
    expect(hb.heartbeatJob).toMatchObject({ cancelRequested: false, leaseExpiresAt: at(30_000) });
    expect(hb.heartbeatJob.job.progress).toEqual({ step: 1 });

    clock.advance(1_000);
    const failed = await t.data(FailJobDocument, {
      jobId: job.id,
      leaseToken: first.leaseToken,
      error: { message: "flaky", code: "E_FLAKY" },
    });
    expect(failed.failJob).toMatchObject({ state: "SCHEDULED", runAt: at(5_000), attempts: 1 });

    expect(await claim("life")).toEqual([]);
    clock.advance(4_999);
    expect(await claim("life")).toEqual([]);
    clock.advance(1);
    const second = await claimOne("life");
    expect(second.job).toMatchObject({ id: job.id, state: "RUNNING", attempts: 2, progress: null });
    expect(second.leaseToken).not.toBe(first.leaseToken);

    const stale = await t.request(CompleteJobDocument, { jobId: job.id, leaseToken: first.leaseToken, result: 0 });
    expect(onlyError(stale).extensions).toEqual({ code: "LEASE_LOST", jobId: job.id });

    clock.advance(250);
    const done = await t.data(CompleteJobDocument, {
      jobId: job.id,
      leaseToken: second.leaseToken,
      result: { ok: true },
    });
    expect(done.completeJob).toMatchObject({
      state: "SUCCEEDED",
      result: { ok: true },
      attempts: 2,
      startedAt: new Date(t0 + 7_000).toISOString(),
      finishedAt: new Date(t0 + 7_250).toISOString(),
      lastSeq: 6,
    });

    const events = (await t.data(JobEventsDocument, { jobId: job.id })).jobEvents;
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    // Heartbeats write no event; the claim promotes the due retry first.
    expect(events.map((e) => e.type)).toEqual([
      "ENQUEUED",
      "CLAIMED",
      "RETRY_SCHEDULED",
      "PROMOTED",
      "CLAIMED",
      "SUCCEEDED",
    ]);
    expect(events.map((e) => e.attempt)).toEqual([0, 1, 1, 1, 2, 2]);
    expect(events[0]?.fromState).toBeNull();
    events.slice(1).forEach((e, i) => expect(e.fromState).toBe(events[i]?.toState));
    expect(events.at(-1)?.toState).toBe("SUCCEEDED");
    expect(events[2]?.data).toEqual({ error: "flaky", runAt: new Date(t0 + 7_000).toISOString(), delayMs: 5_000 });

    const summary = (await summariseEvents(t.db)).find((s) => s.jobId === job.id);
    expect(summary).toEqual({ jobId: job.id, state: "SUCCEEDED", lastSeq: 6, seqs: [1, 2, 3, 4, 5, 6] });
    expect(summary && isGapless(summary)).toBe(true);
  });

  it("resolves JobEvent.job, Job.events(last) and Job.queue", async () => {
    const job = await enqueue({ queue: "nested", payload: "p" });
    const { leaseToken } = await claimOne("nested");
    await t.data(CompleteJobDocument, { jobId: job.id, leaseToken });

    const res = await t.post({
      query: `query Nested($id: ID!) {
        job(id: $id) {
          id
          queue { name settings { paused } stats { counts { succeeded } } }
          events(last: 2) { seq type job { id state } }
          allEvents: events { seq }
        }
        jobEvents(jobId: $id, first: 1) { seq job { id state queueName events(last: 1) { type } } }
      }`,
      variables: { id: job.id },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      data: {
        job: {
          id: job.id,
          queue: { name: "nested", settings: { paused: false }, stats: { counts: { succeeded: 1 } } },
          events: [
            { seq: 2, type: "CLAIMED", job: { id: job.id, state: "SUCCEEDED" } },
            { seq: 3, type: "SUCCEEDED", job: { id: job.id, state: "SUCCEEDED" } },
          ],
          allEvents: [{ seq: 1 }, { seq: 2 }, { seq: 3 }],
        },
        jobEvents: [
          { seq: 1, job: { id: job.id, state: "SUCCEEDED", queueName: "nested", events: [{ type: "SUCCEEDED" }] } },
        ],
      },
    });

    const tooMany = await t.post({ query: `{ job(id: "${job.id}") { events(last: 101) { seq } } }` });
    const body = (await tooMany.json()) as { errors?: GraphQLFormattedError[] };
    expect(body.errors?.[0]?.extensions).toEqual({ code: "BAD_USER_INPUT", field: "last" });
  });
});
