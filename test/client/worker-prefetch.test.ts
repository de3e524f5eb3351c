/**
 * The SDK Worker's prefetch against a real server, on every backend, over
 * GraphQL (HTTP + graphql-ws) and in-process: a graceful stop gives every
 * prefetched job back in one releaseJobs call (attempts unchanged, claimable
 * at once); with a short lease and a slow handler no prefetched job's lease
 * lapses (the sweeper runs, and finds nothing); two prefetching workers run
 * every job exactly once.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JobwireClient, LocalTransport, RemoteTransport, Worker } from "../../src/client/index.ts";
import type { Release, WorkerOptions, WorkerTransport } from "../../src/client/index.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";

type Mode = "remote" | "in-process";
const MODES: Mode[] = ["remote", "in-process"];

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Records the claim limits and every release call a transport sends. */
function instrument(inner: WorkerTransport) {
  const seen = { claimLimits: [] as number[], releases: [] as Release[][] };
  const release = inner.release?.bind(inner);
  if (!release) throw new Error("the transport cannot release");
  const transport: WorkerTransport = {
    claim: (r) => {
      seen.claimLimits.push(r.limit);
      return inner.claim(r);
    },
    heartbeat: (r) => inner.heartbeat(r),
    complete: (items) => inner.complete(items),
    fail: (f) => inner.fail(f),
    release: (items) => {
      seen.releases.push(items);
      return release(items);
    },
    watchAvailable: (q, onSignal, onError) => inner.watchAvailable(q, onSignal, onError),
  };
  return { transport, seen };
}

describe.each(BACKENDS)("Worker prefetch on %s", (dialect) => {
  let t: TestServer;
  let client: JobwireClient;
  const workers: Worker[] = [];

  beforeEach(async () => {
    // The sweeper runs every 100 ms: a lease that lapses is swept at once (LEASE_EXPIRED).
    t = await startTestServer(dialect, { maintenance: { intervalMs: 100 } });
    client = new JobwireClient({ url: t.url });
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop({ timeoutMs: 0 })));
    await client.close();
    await t.close();
  });

  function transportFor(mode: Mode): WorkerTransport {
    return mode === "remote" ? new RemoteTransport(client) : new LocalTransport(t.server.services);
  }

  function startWorker(options: Omit<WorkerOptions, "transport"> & { transport: WorkerTransport }): Worker {
    const worker = new Worker(options);
    workers.push(worker);
    return worker.start();
  }

  async function eventTypesOf(queue: string): Promise<Map<string, string[]>> {
    const page = await client.jobs({ queue }, { first: 1_000 });
    const out = new Map<string, string[]>();
    for (const job of page.nodes)
      out.set(
        job.id,
        (await client.jobEvents(job.id)).map((e) => e.type),
      );
    return out;
  }

  describe.each(MODES)("%s", (mode) => {
    it("stop() gives back every prefetched job at once in one releaseJobs call: attempts unchanged, claimable at once", async () => {
      const { transport, seen } = instrument(transportFor(mode));
      await client.enqueueJobs(Array.from({ length: 20 }, (_, i) => ({ queue: "stop", payload: i })));
      const hold = deferred();
      let startedId: string | null = null;
      const worker = startWorker({
        transport,
        queues: ["stop"],
        concurrency: 1,
        prefetch: 10,
        handler: async (job) => {
          startedId = job.id;
          await hold.promise;
        },
      });
      // One claim for the free slot plus the prefetch queue.
      await until("1 running and 10 prefetched", () => worker.runningCount === 1 && worker.prefetchedCount === 10);
      expect(seen.claimLimits).toEqual([11]);
      const stopped = worker.stop({ timeoutMs: 10_000 });
      // Released while the running handler still runs: nobody waits for the worker's shutdown.
      await until("one release call", () => seen.releases.length === 1);
      expect(seen.releases[0]).toHaveLength(10);
      const releasedIds = (seen.releases[0] ?? []).map((r) => r.jobId);
      expect(releasedIds).not.toContain(startedId);
      await until("released jobs QUEUED", async () => (await client.queue("stop")).stats.counts.queued === 19);
      for (const id of releasedIds) {
        expect(await client.job(id)).toMatchObject({ state: "QUEUED", attempts: 0 });
        expect((await client.jobEvents(id)).map((e) => e.type)).toEqual(["ENQUEUED", "CLAIMED", "RELEASED"]);
      }
      // Claimable right now by another worker (no backoff), on attempt 1.
      const again = await client.claimJobs({ queues: ["stop"], workerId: "other", limit: 100 });
      expect(again).toHaveLength(19);
      expect(again.map((l) => l.job.id)).toEqual(expect.arrayContaining(releasedIds));
      expect(again.every((l) => l.job.attempts === 1)).toBe(true);
      hold.resolve();
      await stopped;
      expect(seen.releases).toHaveLength(1);
      expect(startedId).not.toBeNull();
      expect(await client.job(startedId ?? "")).toMatchObject({ state: "SUCCEEDED", attempts: 1 });
    });

    it("a short lease and a slow handler: no prefetched job's lease lapses; each job runs once, on attempt 1", async () => {
      const { transport, seen } = instrument(transportFor(mode));
      const n = 12;
      await client.enqueueJobs(Array.from({ length: n }, (_, i) => ({ queue: "slow", payload: i })));
      const runs = new Map<string, number[]>();
      const releasedByLease: string[] = [];
      const worker = startWorker({
        transport,
        queues: ["slow"],
        concurrency: 1,
        prefetch: 10,
        leaseSeconds: 2,
        handler: async (job) => {
          runs.set(job.id, [...(runs.get(job.id) ?? []), job.attempts]);
          await new Promise((resolve) => setTimeout(resolve, 250));
        },
      });
      worker.on("released", (e) => {
        if (e.reason === "lease") releasedByLease.push(...e.jobs.map((j) => j.id));
      });
      await until("all succeeded", async () => (await client.queue("slow")).stats.counts.succeeded === n, 30_000);
      // 12 jobs of 250 ms at concurrency 1 outlast the 2 s lease of the first
      // claim (11 jobs): the tail of that claim was given back, not left to lapse.
      expect(seen.claimLimits[0]).toBe(11);
      expect(releasedByLease.length).toBeGreaterThan(0);
      expect(runs.size).toBe(n);
      for (const attempts of runs.values()) expect(attempts).toEqual([1]);
      const events = await eventTypesOf("slow");
      expect(events.size).toBe(n);
      for (const types of events.values()) {
        expect(types).not.toContain("LEASE_EXPIRED");
        expect(types.filter((e) => e === "CLAIMED").length - types.filter((e) => e === "RELEASED").length).toBe(1);
        expect(types.at(-1)).toBe("SUCCEEDED");
      }
      const page = await client.jobs({ queue: "slow" }, { first: 100 });
      for (const job of page.nodes) expect(job).toMatchObject({ state: "SUCCEEDED", attempts: 1 });
    });

    it("two prefetching workers run every job exactly once", async () => {
      const n = 300;
      const enqueued = await client.enqueueJobs(Array.from({ length: n }, (_, i) => ({ queue: "two", payload: i })));
      const runs = new Map<string, number>();
      for (const name of ["a", "b"]) {
        startWorker({
          transport: transportFor(mode),
          workerId: name,
          queues: ["two"],
          concurrency: 3,
          prefetch: 25,
          handler: async () => {
            await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
          },
        }).on("started", ({ job }) => runs.set(job.id, (runs.get(job.id) ?? 0) + 1));
      }
      await until("all succeeded", async () => (await client.queue("two")).stats.counts.succeeded === n, 60_000);
      await Promise.all(workers.splice(0).map((w) => w.stop()));
      expect([...runs.keys()].sort()).toEqual(enqueued.map((e) => e.job.id).sort());
      expect([...runs.values()].every((c) => c === 1)).toBe(true);
      const page = await client.jobs({ queue: "two" }, { first: 1_000 });
      expect(page.nodes.every((j) => j.state === "SUCCEEDED" && j.attempts === 1)).toBe(true);
    });
  });
});

describe("Worker prefetch options", () => {
  const services = {} as never;
  const handler = () => null;

  it("defaults to max(2 x concurrency, 32), at most 1,000", () => {
    expect(new Worker({ services, queues: ["q"], handler }).prefetch).toBe(32);
    expect(new Worker({ services, queues: ["q"], handler, concurrency: 40 }).prefetch).toBe(80);
    expect(new Worker({ services, queues: ["q"], handler, concurrency: 1_000 }).prefetch).toBe(1_000);
    expect(new Worker({ services, queues: ["q"], handler, prefetch: 0 }).prefetch).toBe(0);
  });

  it("refuses a bad prefetch, and prefetch on a transport that cannot release", () => {
    for (const prefetch of [-1, 1.5, 1_001, Number.NaN]) {
      expect(() => new Worker({ services, queues: ["q"], handler, prefetch })).toThrow(/prefetch must be an integer/);
    }
    const transport: WorkerTransport = {
      claim: async () => [],
      heartbeat: async () => ({ cancelRequested: false, leaseExpiresAt: new Date() }),
      complete: async () => [],
      fail: async () => {},
      watchAvailable: () => ({ live: false, close: () => {} }),
    };
    expect(() => new Worker({ transport, queues: ["q"], handler, prefetch: 5 })).toThrow(/release\(\)/);
    // Without release() and without the option: no prefetch, as before.
    expect(new Worker({ transport, queues: ["q"], handler }).prefetch).toBe(0);
  });
});
