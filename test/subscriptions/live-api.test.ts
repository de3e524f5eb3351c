/**
 * jobChanged, queueStats and jobsAvailable over a real graphql-ws client
 * against the real server, on every backend: filters, replay from an event id
 * and resume after a disconnect without gap or duplicate, fresh nested job
 * reads per event, coalesced stats pushes, and worker wake-up signals
 * (initial, on enqueue, none while paused, on resume, on a freed concurrency
 * slot). Errors carry the same codes as over HTTP.
 */
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { parse } from "graphql";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CancelJobDocument,
  ClaimJobsDocument,
  CompleteJobDocument,
  ConfigureQueueDocument,
  EnqueueJobDocument,
  JobEventsDocument,
  PauseQueueDocument,
  ResumeQueueDocument,
  RetryJobDocument,
  WatchJobChangesDocument,
  WatchJobsAvailableDocument,
  WatchQueueStatsDocument,
} from "../../src/client/__generated__/graphql.ts";
import type { JobEventFieldsFragment } from "../../src/client/__generated__/graphql.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";
import { connect, record, untilSubscribed } from "../helpers/ws.ts";
import type { Client } from "graphql-ws";

const ids = (items: { jobChanged: JobEventFieldsFragment }[]) => items.map((i) => i.jobChanged.id);

describe.each(BACKENDS)("live subscriptions on %s", (dialect) => {
  let t: TestServer;
  let client: Client;
  beforeEach(async () => {
    t = await startTestServer(dialect, { statsIntervalMs: 250 });
    client = connect(t.url);
  });
  afterEach(async () => {
    await client.dispose();
    await t.close();
  });

  const enqueue = async (queue: string) =>
    (await t.data(EnqueueJobDocument, { input: { queue, payload: { n: 1 } } })).enqueueJob.job;
  const storedEvents = async (jobId: string) => (await t.data(JobEventsDocument, { jobId })).jobEvents;

  describe("jobChanged", () => {
    it("sends only transitions matching every list of the filter", async () => {
      const sub = record(client, WatchJobChangesDocument, {
        filter: { queues: ["a"], states: ["CANCELLED"] },
      });
      await untilSubscribed(t.server, 1);
      const inA = await enqueue("a");
      const inB = await enqueue("b");
      await t.data(CancelJobDocument, { jobId: inB.id });
      await t.data(CancelJobDocument, { jobId: inA.id });
      const [only] = await sub.waitForItems(1);
      // A later transition of another job in the same queue arrives after it, so
      // nothing that should have been filtered out can still be in flight before.
      await t.data(RetryJobDocument, { jobId: inA.id });
      await t.data(CancelJobDocument, { jobId: inA.id });
      await sub.waitForItems(2);
      expect(sub.items.map((i) => [i.jobChanged.jobId, i.jobChanged.toState])).toEqual([
        [inA.id, "CANCELLED"],
        [inA.id, "CANCELLED"],
      ]);
      expect(only?.jobChanged.seq).toBe(2);

      const byId = record(client, WatchJobChangesDocument, { filter: { jobIds: [inB.id] } });
      await untilSubscribed(t.server, 2);
      await t.data(RetryJobDocument, { jobId: inA.id });
      await t.data(RetryJobDocument, { jobId: inB.id });
      const [mine] = await byId.waitForItems(1);
      expect(mine?.jobChanged).toMatchObject({ jobId: inB.id, type: "RETRIED" });
    });

    it("replays stored events after afterEventId, then goes live", async () => {
      const job = await enqueue("replay");
      await t.data(CancelJobDocument, { jobId: job.id });
      await t.data(RetryJobDocument, { jobId: job.id });
      const stored = await storedEvents(job.id);
      const first = stored[0];
      if (!first) throw new Error("no events");
      const sub = record(client, WatchJobChangesDocument, {
        filter: { queues: ["replay"] },
        afterEventId: first.id,
      });
      await sub.waitForItems(2);
      await t.data(CancelJobDocument, { jobId: job.id });
      await sub.waitForItems(3);
      expect(sub.items.map((i) => i.jobChanged)).toEqual((await storedEvents(job.id)).slice(1));
    });

    it("resumes after a disconnect with exactly the missed events, then live ones", async () => {
      const job = await enqueue("resume");
      const first = connect(t.url);
      const before = record(first, WatchJobChangesDocument, { filter: { queues: ["resume"] } });
      await untilSubscribed(t.server, 1);
      await t.data(CancelJobDocument, { jobId: job.id });
      // Without afterEventId a subscription starts at its server's feed cursor,
      // which may trail the enqueue's commit (on PostgreSQL the feed settles ids
      // over two reads): the enqueue may come first. Wait for the cancel.
      await before.waitUntil((items) => items.some((i) => i.jobChanged.toState === "CANCELLED"), "the cancel");
      await first.dispose();
      const lastSeen = before.items.at(-1)?.jobChanged.id;
      if (!lastSeen) throw new Error("nothing seen");

      for (let i = 0; i < 25; i++) {
        await t.data(RetryJobDocument, { jobId: job.id });
        await t.data(CancelJobDocument, { jobId: job.id });
      }
      const after = record(client, WatchJobChangesDocument, {
        filter: { queues: ["resume"] },
        afterEventId: lastSeen,
      });
      await after.waitForItems(50);
      await t.data(RetryJobDocument, { jobId: job.id });
      await after.waitForItems(51);
      const stored = (await storedEvents(job.id)).filter((e) => BigInt(e.id) > BigInt(lastSeen));
      expect(stored).toHaveLength(51);
      expect(ids(after.items)).toEqual(stored.map((e) => e.id));
      expect(new Set(ids(after.items)).size).toBe(51);
    });

    it("reads nested job fields fresh for every event", async () => {
      type Data = { jobChanged: { seq: number; toState: string; job: { state: string; attempts: number } | null } };
      const doc = parse(`subscription ($q: [String!]) {
        jobChanged(filter: { queues: $q }) { seq toState job { state attempts } }
      }`) as TypedDocumentNode<Data, { q: string[] }>;
      const sub = record(client, doc, { q: ["fresh"] });
      await untilSubscribed(t.server, 1);
      const job = await enqueue("fresh");
      await sub.waitForItems(1);
      await t.data(CancelJobDocument, { jobId: job.id });
      const items = await sub.waitForItems(2);
      // A loader cache kept for the subscription's life would still say QUEUED here.
      expect(items[1]?.jobChanged).toEqual({ seq: 2, toState: "CANCELLED", job: { state: "CANCELLED", attempts: 0 } });
    });

    it("refuses an afterEventId no event has yet, and bad filters, with BAD_USER_INPUT", async () => {
      const job = await enqueue("bad");
      const newest = (await storedEvents(job.id)).at(-1)?.id ?? "0";
      const future = String(BigInt(newest) + 1000n);
      const [tooNew] = await record(client, WatchJobChangesDocument, { afterEventId: future }).waitForErrors();
      expect(tooNew).toMatchObject({
        message: `afterEventId: no event has id ${future} yet (the newest is ${newest})`,
        extensions: { code: "BAD_USER_INPUT", field: "afterEventId" },
      });
      const [badQueue] = await record(client, WatchJobChangesDocument, {
        filter: { queues: ["no spaces"] },
      }).waitForErrors();
      expect(badQueue?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "filter.queues[0]" });
      const [badId] = await record(client, WatchJobChangesDocument, { afterEventId: "-1" }).waitForErrors();
      expect(badId?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "afterEventId" });
    });
  });

  describe("queueStats", () => {
    it("sends the current stats at once, then coalesced updates as they change", async () => {
      await enqueue("stats");
      const sub = record(client, WatchQueueStatsDocument, { name: "stats" });
      const [first] = await sub.waitForItems(1);
      expect(first?.queueStats.counts).toMatchObject({ queued: 1, running: 0 });

      const started = Date.now();
      for (let i = 0; i < 40; i++) await enqueue("stats");
      await sub.waitUntil((items) => items.at(-1)?.queueStats.counts.queued === 41, "41 queued");
      const elapsed = Date.now() - started;
      // 40 commits, but at most one read per 250 ms (+ the first, + one in flight).
      expect(sub.items.length).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + 3);
      expect(sub.items.length).toBeLessThan(41);
    });

    it("refuses an unknown queue with NOT_FOUND", async () => {
      const [error] = await record(client, WatchQueueStatsDocument, { name: "nope" }).waitForErrors();
      expect(error).toMatchObject({ message: "queue nope was not found", extensions: { code: "NOT_FOUND" } });
    });
  });

  describe("jobsAvailable", () => {
    it("signals queues with waiting jobs at once, and each enqueue after", async () => {
      await enqueue("full");
      const sub = record(client, WatchJobsAvailableDocument, { queues: ["full", "empty"] });
      const [initial] = await sub.waitForItems(1);
      expect(initial?.jobsAvailable.queue).toBe("full");
      await enqueue("empty");
      await sub.waitForItems(2);
      expect(sub.items[1]?.jobsAvailable.queue).toBe("empty");
    });

    it("sends nothing for a paused queue, and a signal when it resumes", async () => {
      await t.data(PauseQueueDocument, { name: "held" }).catch(async () => {
        await enqueue("held"); // the queue exists once it has a job
      });
      await t.data(PauseQueueDocument, { name: "held" });
      const sub = record(client, WatchJobsAvailableDocument, { queues: ["held", "open"] });
      await enqueue("held");
      await enqueue("open");
      const [first] = await sub.waitForItems(1);
      // The paused queue's enqueue committed first; had it signalled, it would be first.
      expect(first?.jobsAvailable.queue).toBe("open");
      await t.data(ResumeQueueDocument, { name: "held" });
      await sub.waitForItems(2);
      expect(sub.items[1]?.jobsAvailable.queue).toBe("held");
    });

    it("signals a freed slot in a queue with a concurrency limit", async () => {
      await t.data(ConfigureQueueDocument, { input: { name: "slots", concurrency: 1 } });
      const a = await enqueue("slots");
      await enqueue("slots");
      const claimed = await t.data(ClaimJobsDocument, { queues: ["slots"], workerId: "w", limit: 2 });
      expect(claimed.claimJobs).toHaveLength(1); // the limit holds the second back
      const sub = record(client, WatchJobsAvailableDocument, { queues: ["slots"] });
      await sub.waitForItems(1); // the second job waits: an initial signal
      // Read it, so the next signal cannot merge into the unread one.
      const leased = claimed.claimJobs[0];
      if (!leased) throw new Error("nothing claimed");
      expect(leased.job.id).toBe(a.id);
      await t.data(CompleteJobDocument, { jobId: a.id, leaseToken: leased.leaseToken });
      await sub.waitForItems(2);
      expect(sub.items.map((i) => i.jobsAvailable.queue)).toEqual(["slots", "slots"]);
    });
  });
});
