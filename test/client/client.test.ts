/**
 * The SDK's JobwireClient against the real server over HTTP and graphql-ws,
 * on every backend: every query and mutation through its typed method,
 * errors with the server's codes, and subscriptions that resume by
 * themselves — after the socket is cut, after a server restart, and after
 * the client paused a subscription for a slow consumer — with every event
 * exactly once, in order.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JobwireClient, JobwireRequestError } from "../../src/client/index.ts";
import type { JobEventFieldsFragment } from "../../src/client/index.ts";
import { startServer } from "../../src/server/server.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { openStore } from "../../src/store/open-store.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";

async function take<T>(iterator: AsyncIterator<T>, n: number, timeoutMs = 10_000): Promise<T[]> {
  const out: T[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const left = deadline - Date.now();
    const next = await Promise.race([
      iterator.next(),
      new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), Math.max(0, left))),
    ]);
    if (next === "timeout") throw new Error(`timed out with ${out.length} of ${n} items`);
    if (next.done) throw new Error(`ended after ${out.length} of ${n} items`);
    out.push(next.value);
  }
  return out;
}

/** Cuts the client's WebSocket (as a network failure would), once it is open. */
async function cutSocket(client: JobwireClient): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!client.connected) {
    if (Date.now() > deadline) throw new Error("the client never connected");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  client.wsClient().terminate();
}

const seqs = (events: JobEventFieldsFragment[]) => events.map((e) => e.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe.each(BACKENDS)("JobwireClient on %s", (dialect) => {
  let t: TestServer;
  let client: JobwireClient;
  let drops: number;

  beforeEach(async () => {
    t = await startTestServer(dialect);
    drops = 0;
    client = new JobwireClient({
      url: t.url,
      retryDelayMs: () => 50,
      onConnectionChange: (connected) => {
        if (!connected) drops++;
      },
    });
  });
  afterEach(async () => {
    await client.close();
    await t.close();
  });

  it("runs every query and mutation through its typed method", async () => {
    const first = await client.enqueueJob({ queue: "mail", payload: { to: "a" }, idempotencyKey: "k1", tags: ["x"] });
    expect(first.created).toBe(true);
    expect(first.job).toMatchObject({ queueName: "mail", state: "QUEUED", payload: { to: "a" }, tags: ["x"] });
    const again = await client.enqueueJob({ queue: "mail", idempotencyKey: "k1" });
    expect(again).toMatchObject({ created: false, job: { id: first.job.id } });
    const bulk = await client.enqueueJobs([{ queue: "mail" }, { queue: "mail", delayMs: 60_000 }]);
    expect(bulk.map((b) => b.job.state)).toEqual(["QUEUED", "SCHEDULED"]);

    expect((await client.job(first.job.id)).id).toBe(first.job.id);
    expect((await client.jobByKey("mail", "k1"))?.id).toBe(first.job.id);
    expect(await client.jobByKey("mail", "nope")).toBeNull();
    const page = await client.jobs({ queue: "mail" }, { first: 2 });
    expect(page.totalCount).toBe(3);
    expect(page.nodes).toHaveLength(2);
    expect(page.pageInfo.hasNextPage).toBe(true);
    const rest = await client.jobs({ queue: "mail" }, { first: 2, after: page.pageInfo.endCursor ?? "" });
    expect(rest.nodes.map((n) => n.id)).toEqual([first.job.id]);

    const leased = await client.claimJobs({ queues: ["mail"], workerId: "w1", limit: 2, leaseSeconds: 60 });
    expect(leased).toHaveLength(2);
    const [a, b] = leased;
    if (!a || !b) throw new Error("not claimed");
    const hb = await client.heartbeatJob({ jobId: a.job.id, leaseToken: a.leaseToken, progress: { pct: 10 } });
    expect(hb).toMatchObject({ cancelRequested: false, job: { progress: { pct: 10 } } });
    expect(await client.completeJob({ jobId: a.job.id, leaseToken: a.leaseToken, result: 1 })).toMatchObject({
      state: "SUCCEEDED",
      result: 1,
    });
    const failed = await client.failJob({
      jobId: b.job.id,
      leaseToken: b.leaseToken,
      error: { message: "boom", code: "E1" },
      retryable: false,
    });
    expect(failed).toMatchObject({ state: "FAILED", error: { message: "boom", code: "E1" } });
    expect((await client.retryJob(b.job.id)).state).toBe("QUEUED");
    expect((await client.cancelJob(b.job.id)).state).toBe("CANCELLED");
    const moved = await client.rescheduleJob({ jobId: bulk[1]?.job.id ?? "", delayMs: 0, priority: -5 });
    expect(moved).toMatchObject({ state: "QUEUED", priority: -5 });

    const events = await client.jobEvents(a.job.id);
    expect(events.map((e) => e.type)).toEqual(["ENQUEUED", "CLAIMED", "SUCCEEDED"]);
    expect(await client.jobEvents(a.job.id, { afterSeq: 2 })).toHaveLength(1);
    const lastEventId = await client.lastEventId();
    expect(BigInt(lastEventId)).toBeGreaterThanOrEqual(BigInt(events.at(-1)?.id ?? "0"));

    expect((await client.configureQueue({ name: "mail", concurrency: 2 })).settings.concurrency).toBe(2);
    expect((await client.pauseQueue("mail")).settings.paused).toBe(true);
    expect((await client.resumeQueue("mail")).settings.paused).toBe(false);
    expect((await client.queues()).map((q) => q.name)).toEqual(["mail"]);
    const queue = await client.queue("mail");
    expect(queue.stats.counts).toMatchObject({ succeeded: 1, cancelled: 1, queued: 1 });
    expect(await client.purgeJobs({ queue: "mail" })).toBe(2);
  });

  it("completes a batch with per-job outcomes", async () => {
    await client.enqueueJobs([{ queue: "b" }, { queue: "b" }, { queue: "b" }]);
    const [x, y, z] = await client.claimJobs({ queues: ["b"], workerId: "w", limit: 3 });
    if (!x || !y || !z) throw new Error("not claimed");
    const outcomes = await client.completeJobs([
      { jobId: x.job.id, leaseToken: x.leaseToken, result: { n: 1 } },
      { jobId: y.job.id, leaseToken: "wrong" },
      { jobId: z.job.id, leaseToken: z.leaseToken },
    ]);
    expect(outcomes.map((o) => [o.jobId, o.job?.state ?? null, o.error?.code ?? null])).toEqual([
      [x.job.id, "SUCCEEDED", null],
      [y.job.id, null, "LEASE_LOST"],
      [z.job.id, "SUCCEEDED", null],
    ]);
  });

  it("releases a batch over GraphQL: back to QUEUED, attempt not counted; per-job outcomes, nothing written for a miss", async () => {
    await client.enqueueJobs([{ queue: "r" }, { queue: "r" }, { queue: "r" }]);
    const [x, y, z] = await client.claimJobs({ queues: ["r"], workerId: "w", limit: 3 });
    if (!x || !y || !z) throw new Error("not claimed");
    await client.completeJob({ jobId: z.job.id, leaseToken: z.leaseToken });
    const outcomes = await client.releaseJobs([
      { jobId: x.job.id, leaseToken: x.leaseToken },
      { jobId: y.job.id, leaseToken: "wrong" },
      { jobId: z.job.id, leaseToken: z.leaseToken },
    ]);
    expect(
      outcomes.map((o) => [o.jobId, o.job?.state ?? null, o.job?.attempts ?? null, o.error?.code ?? null]),
    ).toEqual([
      [x.job.id, "QUEUED", 0, null],
      [y.job.id, null, null, "LEASE_LOST"],
      [z.job.id, null, null, "INVALID_TRANSITION"],
    ]);
    expect(await client.job(y.job.id)).toMatchObject({ state: "RUNNING", attempts: 1 });
    const events = await client.jobEvents(x.job.id);
    expect(events.map((e) => e.type)).toEqual(["ENQUEUED", "CLAIMED", "RELEASED"]);
    const [again] = await client.claimJobs({ queues: ["r"], workerId: "w2" });
    expect(again?.job).toMatchObject({ id: x.job.id, attempts: 1 });
    const dup = await client
      .releaseJobs([
        { jobId: y.job.id, leaseToken: y.leaseToken },
        { jobId: y.job.id, leaseToken: y.leaseToken },
      ])
      .catch((e: unknown) => e);
    expect(dup).toMatchObject({ code: "BAD_USER_INPUT", details: { field: "jobs[1].jobId" } });
  });

  it("throws JobwireRequestError with the server's code and details", async () => {
    const notFound = await client.job("424242").catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(JobwireRequestError);
    expect(notFound).toMatchObject({ code: "NOT_FOUND", details: { id: "424242" } });

    const bad = await client.enqueueJob({ queue: "bad name!" }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ code: "BAD_USER_INPUT", details: { field: "queue" } });

    const { job } = await client.enqueueJob({ queue: "lease" });
    const [leased] = await client.claimJobs({ queues: ["lease"], workerId: "w" });
    const lost = await client
      .completeJob({ jobId: job.id, leaseToken: `${leased?.leaseToken ?? ""}x` })
      .catch((e: unknown) => e);
    expect(lost).toMatchObject({ code: "LEASE_LOST", details: { jobId: job.id } });

    const closed = new JobwireClient({ url: "http://127.0.0.1:1/graphql" });
    await expect(closed.queues()).rejects.toMatchObject({ code: "NETWORK_ERROR" });
    expect(() => new JobwireClient({ url: "ftp://x" })).toThrow(/http/);
  });

  it("watchJobEvents: a whole lifecycle, then resumes after the socket is cut with exactly the missed events", async () => {
    const { job } = await client.enqueueJob({ queue: "watch" });
    const events = client.watchJobEvents({ jobId: job.id });
    expect(seqs(await take(events, 1))).toEqual([1]);
    const [leased] = await client.claimJobs({ queues: ["watch"], workerId: "w" });
    if (!leased) throw new Error("not claimed");
    await client.failJob({ jobId: job.id, leaseToken: leased.leaseToken, error: { message: "x" }, retryInMs: 0 });
    expect(seqs(await take(events, 2))).toEqual([2, 3]);

    // Cut the socket, and commit 20 transitions while the client reconnects.
    await cutSocket(client);
    for (let i = 0; i < 10; i++) {
      await client.cancelJob(job.id);
      await client.retryJob(job.id);
    }
    const resumed = await take(events, 20);
    expect(drops).toBeGreaterThanOrEqual(1);
    expect(seqs(resumed)).toEqual(range(4, 23));
    await client.cancelJob(job.id);
    const live = await take(events, 1);
    expect(seqs(live)).toEqual([24]);
    const stored = await client.jobEvents(job.id);
    expect([...resumed, ...live].map((e) => e.id)).toEqual(stored.slice(3).map((e) => e.id));
    events.close();
    expect(await events.next()).toEqual({ value: undefined, done: true });
  });

  it("watchJobChanges: starts at lastEventId, so a drop before the first event loses nothing", async () => {
    const changes = await client.watchJobChanges({ filter: { queues: ["changes"] } });
    await cutSocket(client);
    const enqueued = await client.enqueueJobs(Array.from({ length: 5 }, () => ({ queue: "changes" })));
    const got = await take(changes, 5);
    expect(got.map((e) => e.jobId)).toEqual(enqueued.map((e) => e.job.id));
    expect(got.every((e) => e.type === "ENQUEUED")).toBe(true);
    await cutSocket(client);
    await client.cancelJob(enqueued[0]?.job.id ?? "");
    expect((await take(changes, 1)).map((e) => [e.jobId, e.type])).toEqual([[enqueued[0]?.job.id, "CANCELLED"]]);
    changes.close();
  });

  it("pauses a subscription for a slow consumer and resumes it from its cursor, losing nothing", async () => {
    const slow = new JobwireClient({ url: t.url, subscriptionBuffer: 8, retryDelayMs: () => 20 });
    try {
      const { job } = await slow.enqueueJob({ queue: "slow" });
      const events = slow.watchJobEvents({ jobId: job.id });
      expect(seqs(await take(events, 1))).toEqual([1]);
      for (let i = 0; i < 20; i++) {
        await client.cancelJob(job.id);
        await client.retryJob(job.id);
      }
      // Nothing read for a while: the client's buffer fills to 8 and it unsubscribes.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(t.server.liveCounts().subscriptions).toBe(0);
      const rest: JobEventFieldsFragment[] = [];
      while (rest.length < 40) {
        rest.push(...(await take(events, 1)));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      expect(seqs(rest)).toEqual(range(2, 41));
      events.close();
    } finally {
      await slow.close();
    }
  });

  it("ends a subscription with the server's error when the caller must fix something", async () => {
    const events = client.watchJobEvents({ jobId: "999999" });
    await expect(events.next()).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(await events.next()).toEqual({ value: undefined, done: true });
  });

  it("watchQueueStats gives the latest figures; watchJobsAvailable signals once per queue", async () => {
    await client.enqueueJob({ queue: "stats" });
    const stats = client.watchQueueStats("stats");
    expect((await take(stats, 1))[0]?.counts.queued).toBe(1);
    await client.enqueueJob({ queue: "stats" });
    const next = await take(stats, 1);
    expect(next[0]?.counts.queued).toBe(2);
    stats.close();

    const available = client.watchJobsAvailable(["stats", "empty"]);
    expect(await take(available, 1)).toEqual([{ queue: "stats" }]);
    await client.enqueueJob({ queue: "empty" });
    expect(await take(available, 1)).toEqual([{ queue: "empty" }]);
    available.close();
  });
});

describe("JobwireClient across a server restart", () => {
  let dir: string;
  let server: RunningServer | null = null;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "jobwire-client-"));
  });
  afterEach(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(port: number): Promise<RunningServer> {
    const url = `file:${join(dir, "jobwire.db")}`;
    return startServer({ store: await openStore(url), logger: pino({ level: "silent" }), port, databaseUrl: url });
  }

  it("resubscribes from the last seq once the server is back", async () => {
    server = await start(0);
    const port = server.port;
    const client = new JobwireClient({ url: server.url, retryDelayMs: () => 50 });
    try {
      const { job } = await client.enqueueJob({ queue: "restart" });
      const events = client.watchJobEvents({ jobId: job.id });
      expect(seqs(await take(events, 1))).toEqual([1]);
      await server.close();
      // While the server is down, its database moves on.
      const store = await openStore(`file:${join(dir, "jobwire.db")}`);
      const { JobService } = await import("../../src/jobs/job-service.ts");
      const jobs = new JobService(store);
      await jobs.cancel(job.id);
      await jobs.retry(job.id);
      await store.close();
      server = await start(port);
      await client.cancelJob(job.id);
      expect((await take(events, 3)).map((e) => [e.seq, e.type])).toEqual([
        [2, "CANCELLED"],
        [3, "RETRIED"],
        [4, "CANCELLED"],
      ]);
      events.close();
    } finally {
      await client.close();
    }
  });
});

describe("JobwireClient transport", () => {
  it("gives up on a server that never answers with NETWORK_ERROR after requestTimeoutMs", async () => {
    const { createServer } = await import("node:http");
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as { port: number };
    const client = new JobwireClient({ url: `http://127.0.0.1:${port}/graphql`, requestTimeoutMs: 200 });
    try {
      const started = Date.now();
      await expect(client.queues()).rejects.toMatchObject({ code: "NETWORK_ERROR" });
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      await client.close();
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("sends through a given fetch, and reports a non-GraphQL answer as BAD_RESPONSE", async () => {
    const calls: string[] = [];
    const fake: typeof fetch = async (input, init) => {
      calls.push(`${String(input)} ${String(init?.body)}`);
      return new Response("<html>bad gateway</html>", { status: 502 });
    };
    const client = new JobwireClient({ url: "http://example.invalid/graphql", fetch: fake });
    await expect(client.queues()).rejects.toMatchObject({ code: "BAD_RESPONSE", status: 502 });
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatch(/^http:\/\/example\.invalid\/graphql \{"query":"query Queues/);
    await client.close();
  });
});
