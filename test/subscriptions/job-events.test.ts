/**
 * jobEvents over a real graphql-ws client against the real server, on every
 * backend: a whole lifecycle arrives in order and gapless and equals the
 * stored history; a client that drops mid-run resumes from its last seq with
 * exactly the missed events and then live ones; and 1,000 subscriptions
 * started while commits keep landing switch from replay to live without a
 * gap or a duplicate.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CancelJobDocument,
  ClaimJobsDocument,
  CompleteJobDocument,
  EnqueueJobDocument,
  FailJobDocument,
  JobEventsDocument,
  RetryJobDocument,
  WatchJobEventsDocument,
} from "../../src/client/__generated__/graphql.ts";
import type { JobEventFieldsFragment } from "../../src/client/__generated__/graphql.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";
import { connect, record } from "../helpers/ws.ts";

type Event = JobEventFieldsFragment;

const seqs = (items: { jobEvents: Event }[]) => items.map((i) => i.jobEvents.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe.each(BACKENDS)("jobEvents subscription on %s", (dialect) => {
  let t: TestServer;
  beforeEach(async () => {
    t = await startTestServer(dialect);
  });
  afterEach(async () => {
    await t.close();
  });

  const enqueue = async (queue: string) =>
    (await t.data(EnqueueJobDocument, { input: { queue, payload: { n: 1 } } })).enqueueJob.job;

  /** QUEUED → CANCELLED → QUEUED: two events per cycle. */
  const cancelRetry = async (jobId: string, cycles: number) => {
    for (let i = 0; i < cycles; i++) {
      await t.data(CancelJobDocument, { jobId });
      await t.data(RetryJobDocument, { jobId });
    }
  };

  it("delivers a whole lifecycle in order, gapless, equal to the stored history", async () => {
    const job = await enqueue("life");
    const client = connect(t.url);
    const sub = record(client, WatchJobEventsDocument, { jobId: job.id });
    await sub.waitForItems(1);

    const claim = async () => {
      const claimed = await t.data(ClaimJobsDocument, { queues: ["life"], workerId: "w1" });
      const leased = claimed.claimJobs[0];
      if (!leased) throw new Error("nothing claimed");
      return leased.leaseToken;
    };
    let token = await claim();
    await t.data(FailJobDocument, { jobId: job.id, leaseToken: token, error: { message: "boom" }, retryInMs: 0 });
    await t.server.services.jobs.promoteDueJobs();
    token = await claim();
    await t.data(CompleteJobDocument, { jobId: job.id, leaseToken: token, result: { ok: true } });

    const items = await sub.waitForItems(6);
    const got = items.map((i) => i.jobEvents);
    expect(got.map((e) => [e.seq, e.type, e.fromState, e.toState])).toEqual([
      [1, "ENQUEUED", null, "QUEUED"],
      [2, "CLAIMED", "QUEUED", "RUNNING"],
      [3, "RETRY_SCHEDULED", "RUNNING", "SCHEDULED"],
      [4, "PROMOTED", "SCHEDULED", "QUEUED"],
      [5, "CLAIMED", "QUEUED", "RUNNING"],
      [6, "SUCCEEDED", "RUNNING", "SUCCEEDED"],
    ]);
    const stored = (await t.data(JobEventsDocument, { jobId: job.id })).jobEvents;
    expect(got).toEqual(stored);
    expect(sub.errors).toBeNull();
    sub.stop();
    await client.dispose();
  });

  it("resumes after a disconnect with exactly the 50 missed events, then live ones", async () => {
    const job = await enqueue("resume");
    await cancelRetry(job.id, 2); // seq 1..5
    const first = connect(t.url);
    const before = record(first, WatchJobEventsDocument, { jobId: job.id });
    await before.waitForItems(5);
    await first.dispose(); // the client drops mid-run
    const lastSeen = before.items.at(-1)?.jobEvents.seq ?? 0;
    expect(lastSeen).toBe(5);

    await cancelRetry(job.id, 25); // 50 transitions while away: seq 6..55

    const second = connect(t.url);
    const after = record(second, WatchJobEventsDocument, { jobId: job.id, afterSeq: lastSeen });
    await after.waitForItems(50);
    expect(seqs(after.items)).toEqual(range(6, 55));
    await cancelRetry(job.id, 1); // live: 56, 57
    await after.waitForItems(52);
    expect(seqs(after.items)).toEqual(range(6, 57));
    const stored = (await t.data(JobEventsDocument, { jobId: job.id, afterSeq: lastSeen })).jobEvents;
    expect(after.items.map((i) => i.jobEvents)).toEqual(stored);
    after.stop();
    await second.dispose();
  });

  it("switches from replay to live 1,000 times while commits land, never a gap or a duplicate", async () => {
    const job = await enqueue("stress");
    const client = connect(t.url);
    let lastCommitted = 1;
    let writing = true;
    // One writer commits transition after transition for the whole test.
    const writer = (async () => {
      while (writing) {
        await t.data(CancelJobDocument, { jobId: job.id });
        await t.data(RetryJobDocument, { jobId: job.id });
        lastCommitted += 2;
      }
    })();
    try {
      let sawReplayAndLive = 0;
      for (let i = 0; i < 1_000; i++) {
        // Start a little behind the head, so each subscription replays a few
        // stored events and must then pick up the ones committing meanwhile.
        const head = lastCommitted;
        const afterSeq = Math.max(0, head - (i % 7));
        const sub = record(client, WatchJobEventsDocument, { jobId: job.id, afterSeq });
        const target = head + 3; // committed only after the subscription started
        await sub.waitUntil((items) => (items.at(-1)?.jobEvents.seq ?? 0) >= target, `iteration ${i}`);
        sub.stop();
        const got = seqs(sub.items);
        expect(got, `iteration ${i} from ${afterSeq}`).toEqual(range(afterSeq + 1, afterSeq + got.length));
        if (head > afterSeq) sawReplayAndLive++;
      }
      expect(sawReplayAndLive).toBeGreaterThan(800);
    } finally {
      writing = false;
      await writer;
      await client.dispose();
    }
  }, 120_000);

  it("refuses an unknown job and an afterSeq past the last event", async () => {
    const job = await enqueue("bad");
    const client = connect(t.url);
    const unknown = record(client, WatchJobEventsDocument, { jobId: "999999" });
    const [notFound] = await unknown.waitForErrors();
    expect(notFound).toMatchObject({ message: "job 999999 was not found", extensions: { code: "NOT_FOUND" } });
    const future = record(client, WatchJobEventsDocument, { jobId: job.id, afterSeq: 2 });
    const [bad] = await future.waitForErrors();
    expect(bad).toMatchObject({
      message: `afterSeq: job ${job.id} has no event with seq 2 (its last is 1)`,
      extensions: { code: "BAD_USER_INPUT", field: "afterSeq" },
    });
    await client.dispose();
  });
});
