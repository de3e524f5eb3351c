/**
 * The SDK Worker against a real server, on every backend, both over GraphQL
 * (HTTP + graphql-ws) and in-process on the server's services: it drains
 * queues with batched completions, fails and retries by the handler's error,
 * aborts a cancelled job's handler within one heartbeat interval, stops a
 * handler whose lease is lost without overwriting the new holder's result,
 * shuts down gracefully, and wakes on jobsAvailable instead of polling (or
 * polls while that subscription is down).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  JobCancelledError,
  JobwireClient,
  LeaseLostError,
  LocalTransport,
  NonRetryableError,
  RemoteTransport,
  Worker,
  WorkerShutdownError,
} from "../../src/client/index.ts";
import type { Completion, HeartbeatRequest, WorkerOptions, WorkerTransport } from "../../src/client/index.ts";
import type { JsonValue } from "../../src/jobs/types.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";

type Mode = "remote" | "in-process";
const MODES: Mode[] = ["remote", "in-process"];

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return Date.now() - started;
}

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Counts what a transport sends, and can cut heartbeats (a network partition). */
function instrument(inner: WorkerTransport) {
  const counts = { claims: 0, completeCalls: 0, completed: 0, heartbeats: 0 };
  let partitioned = false;
  const transport: WorkerTransport = {
    claim: (r) => {
      counts.claims++;
      return inner.claim(r);
    },
    heartbeat: (r: HeartbeatRequest) => {
      counts.heartbeats++;
      if (partitioned) return Promise.reject(Object.assign(new Error("partitioned"), { code: "NETWORK_ERROR" }));
      return inner.heartbeat(r);
    },
    complete: (items: Completion[]) => {
      counts.completeCalls++;
      counts.completed += items.length;
      return inner.complete(items);
    },
    fail: (f) => inner.fail(f),
    watchAvailable: (q, onSignal, onError) => inner.watchAvailable(q, onSignal, onError),
  };
  return { transport, counts, partition: (on: boolean) => (partitioned = on) };
}

describe.each(BACKENDS)("Worker on %s", (dialect) => {
  let t: TestServer;
  let client: JobwireClient;
  const workers: Worker[] = [];

  beforeEach(async () => {
    t = await startTestServer(dialect);
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

  const jobState = async (id: string) => (await client.job(id)).state;

  describe.each(MODES)("%s", (mode) => {
    it("drains a queue, completing in batches, each job once with its result", async () => {
      const { transport, counts } = instrument(transportFor(mode));
      const enqueued = await client.enqueueJobs(Array.from({ length: 60 }, (_, i) => ({ queue: "drain", payload: i })));
      const seen: string[] = [];
      startWorker({
        transport,
        queues: ["drain"],
        concurrency: 6,
        handler: (job) => {
          seen.push(job.id);
          return { doubled: (job.payload as number) * 2 };
        },
      });
      await until("60 succeeded", async () => (await client.queue("drain")).stats.counts.succeeded === 60);
      expect(seen.sort()).toEqual(enqueued.map((e) => e.job.id).sort());
      const page = await client.jobs({ queue: "drain" }, { first: 100 });
      for (const job of page.nodes) {
        expect(job).toMatchObject({
          state: "SUCCEEDED",
          attempts: 1,
          result: { doubled: (job.payload as number) * 2 },
        });
      }
      expect(counts.completed).toBe(60);
      // Handlers of one claim finish in the same turn and go in one call.
      expect(counts.completeCalls).toBeLessThan(60 / 2);
    });

    it("fails by the handler's error: retryable by default, NonRetryableError ends FAILED, retryInMs respected", async () => {
      const [flaky, fatal, later] = await client.enqueueJobs([
        { queue: "errors", payload: "flaky", maxAttempts: 3, backoff: { type: "FIXED", delayMs: 0 } },
        { queue: "errors", payload: "fatal", maxAttempts: 3 },
        { queue: "errors", payload: "later", maxAttempts: 3 },
      ]);
      const failures: string[] = [];
      const worker = startWorker({
        transport: transportFor(mode),
        queues: ["errors"],
        concurrency: 3,
        pollIntervalMs: 50,
        safetyPollMs: 50,
        handler: (job) => {
          if (job.payload === "flaky" && job.attempts === 1) throw new Error("try again");
          if (job.payload === "fatal") throw new NonRetryableError("bad payload");
          if (job.payload === "later") throw Object.assign(new Error("busy"), { retryInMs: 3_600_000 });
          return "ok";
        },
      });
      worker.on("failed", ({ job, error }) => failures.push(`${String(job.payload)}:${error.message}`));
      await until("flaky succeeded", async () => (await jobState(flaky?.job.id ?? "")) === "SUCCEEDED");
      await until("fatal failed", async () => (await jobState(fatal?.job.id ?? "")) === "FAILED");
      await until("later scheduled", async () => (await jobState(later?.job.id ?? "")) === "SCHEDULED");
      const fatalJob = await client.job(fatal?.job.id ?? "");
      expect(fatalJob).toMatchObject({ attempts: 1, error: { message: "bad payload", code: "NonRetryableError" } });
      const laterJob = await client.job(later?.job.id ?? "");
      expect(new Date(laterJob.runAt).getTime() - Date.now()).toBeGreaterThan(3_500_000);
      expect(failures.sort()).toEqual(["fatal:bad payload", "flaky:try again", "later:busy"]);
    });

    it("aborts a cancelled job's handler within one heartbeat interval; the job ends CANCELLED", async () => {
      const { job } = await client.enqueueJob({ queue: "cancel" });
      const started = deferred();
      let abortedAt = 0;
      let reason: unknown = null;
      startWorker({
        transport: transportFor(mode),
        queues: ["cancel"],
        heartbeatIntervalMs: 200,
        handler: (_job, { signal }) =>
          new Promise((_, reject) => {
            started.resolve();
            signal.addEventListener("abort", () => {
              abortedAt = Date.now();
              reason = signal.reason;
              reject(signal.reason);
            });
          }),
      });
      await started.promise;
      const cancelledAt = Date.now();
      expect((await client.cancelJob(job.id)).state).toBe("RUNNING");
      await until("the handler aborted", () => abortedAt > 0);
      expect(reason).toBeInstanceOf(JobCancelledError);
      expect(abortedAt - cancelledAt).toBeLessThan(200 + 150);
      await until("CANCELLED", async () => (await jobState(job.id)) === "CANCELLED");
    });

    it("stops a handler whose lease is lost, and cannot overwrite the new holder's result", async () => {
      const { job } = await client.enqueueJob({ queue: "lease", maxAttempts: 5 });
      const { transport, partition } = instrument(transportFor(mode));
      const started = deferred();
      const release = deferred();
      let reason: unknown = null;
      const lost: string[] = [];
      const stale = startWorker({
        transport,
        queues: ["lease"],
        leaseSeconds: 1,
        heartbeatIntervalMs: 250,
        handler: async (_job, { signal }) => {
          started.resolve();
          signal.addEventListener("abort", () => (reason = signal.reason));
          await release.promise;
          return "stale result";
        },
      });
      stale.on("leaseLost", ({ reason: why }) => lost.push(why));
      await started.promise;
      // The worker's heartbeats stop getting through: its lease runs out, the
      // sweeper re-queues the job and another worker takes it.
      partition(true);
      await until("the lease expired", () => reason !== null, 5_000);
      expect(reason).toBeInstanceOf(LeaseLostError);
      const { jobs } = t.server.services;
      await until("swept", async () => (await jobs.sweepExpiredLeases()) > 0 || (await jobState(job.id)) !== "RUNNING");
      await jobs.reschedule({ jobId: job.id, delayMs: 0 });
      const [fresh] = await jobs.claim({ queues: ["lease"], workerId: "fresh" });
      expect(fresh?.id).toBe(job.id);
      await jobs.complete({ jobId: job.id, leaseToken: fresh?.leaseToken ?? "", result: "fresh result" });
      partition(false);
      release.resolve();
      await until("the stale outcome was dropped", () => lost.length > 0);
      expect(await client.job(job.id)).toMatchObject({ state: "SUCCEEDED", result: "fresh result", workerId: "fresh" });
    });

    it("stop(): running handlers finish, nothing new is claimed", async () => {
      const enqueued = await client.enqueueJobs(Array.from({ length: 10 }, () => ({ queue: "stop" })));
      const running = deferred();
      const release = deferred();
      let started = 0;
      const { transport, counts } = instrument(transportFor(mode));
      const worker = startWorker({
        transport,
        queues: ["stop"],
        concurrency: 2,
        handler: async () => {
          if (++started === 2) running.resolve();
          await release.promise;
          return "done";
        },
      });
      await running.promise;
      const claimsBefore = counts.claims;
      const stopped = worker.stop({ timeoutMs: 10_000 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      release.resolve();
      await stopped;
      expect(counts.claims).toBe(claimsBefore);
      expect(started).toBe(2);
      const states = await Promise.all(enqueued.map((e) => jobState(e.job.id)));
      expect(states.filter((s) => s === "SUCCEEDED")).toHaveLength(2);
      expect(states.filter((s) => s === "QUEUED")).toHaveLength(8);
    });

    it("stop() with a handler that does not finish: aborts it and fails the job as retryable", async () => {
      const { job } = await client.enqueueJob({ queue: "hang", maxAttempts: 3 });
      const started = deferred();
      let reason: unknown = null;
      const worker = startWorker({
        transport: transportFor(mode),
        queues: ["hang"],
        handler: (_job, { signal }) => {
          started.resolve();
          signal.addEventListener("abort", () => (reason = signal.reason));
          return new Promise<JsonValue>(() => {});
        },
      });
      await started.promise;
      await worker.stop({ timeoutMs: 100 });
      expect(reason).toBeInstanceOf(WorkerShutdownError);
      expect(await client.job(job.id)).toMatchObject({
        state: "SCHEDULED",
        attempts: 1,
        error: { code: "WorkerShutdownError" },
      });
    });

    it("wakes on jobsAvailable without polling, and sends the progress its handler reports", async () => {
      const { transport, counts } = instrument(transportFor(mode));
      const started = deferred<string>();
      const release = deferred();
      startWorker({
        transport,
        queues: ["wake"],
        pollIntervalMs: 60_000,
        safetyPollMs: 60_000,
        heartbeatIntervalMs: 100,
        handler: async (job, { reportProgress }) => {
          reportProgress({ step: 1 });
          started.resolve(job.id);
          await release.promise;
        },
      });
      // Idle: one claim at start (finds nothing), then it waits for a hint.
      await until("the first claim", () => counts.claims === 1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(counts.claims).toBe(1);
      const enqueuedAt = Date.now();
      const { job } = await client.enqueueJob({ queue: "wake" });
      expect(await started.promise).toBe(job.id);
      expect(Date.now() - enqueuedAt).toBeLessThan(2_000);
      await until("progress recorded", async () => (await client.job(job.id)).progress !== null);
      expect((await client.job(job.id)).progress).toEqual({ step: 1 });
      release.resolve();
      await until("SUCCEEDED", async () => (await jobState(job.id)) === "SUCCEEDED");
    });
  });

  it("polls with jitter while the jobsAvailable subscription is down", async () => {
    // The WebSocket URL points nowhere: no hints can arrive; HTTP works.
    const blind = new JobwireClient({ url: t.url, wsUrl: "ws://127.0.0.1:1/graphql" });
    try {
      const { transport, counts } = instrument(new RemoteTransport(blind));
      const done = deferred<string>();
      startWorker({
        transport,
        queues: ["poll"],
        pollIntervalMs: 100,
        safetyPollMs: 60_000,
        handler: (job) => done.resolve(job.id),
      });
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(counts.claims).toBeGreaterThanOrEqual(3);
      const { job } = await client.enqueueJob({ queue: "poll" });
      expect(await done.promise).toBe(job.id);
    } finally {
      await Promise.all(workers.splice(0).map((w) => w.stop({ timeoutMs: 0 })));
      await blind.close();
    }
  });

  it("refuses bad options with a clear message", () => {
    const handler = () => null;
    expect(() => new Worker({ queues: ["q"], handler })).toThrow(/exactly one of url, client, services/);
    expect(() => new Worker({ url: t.url, queues: [], handler })).toThrow(/queues/);
    expect(() => new Worker({ url: t.url, queues: ["q"], handler, concurrency: 0 })).toThrow(/concurrency/);
    expect(() => new Worker({ url: t.url, queues: ["q"], handler, leaseSeconds: 1.5 })).toThrow(/leaseSeconds/);
  });
});
