/**
 * Issue 19: one clock. Servers and workers whose wall clocks are wrong
 * (libfaketime, helpers/faketime.ts), as real processes:
 *
 * - two servers on one PostgreSQL, one 10 minutes fast and one 10 minutes
 *   slow: leases expire on time by the database's clock (a dead worker's
 *   lease is swept after it ends, within the sweep interval; a live worker
 *   never loses its lease), delayed jobs never run before their runAt, and
 *   every job runs once;
 * - a SQLite server whose clock jumps by 2 minutes, forward then back, across
 *   two restarts: no live lease is swept;
 * - an SDK Worker 10 minutes fast whose server restarts mid-completion: the
 *   job completes once, on attempt 1.
 *
 * The test process itself runs on the true clock, which on this one machine
 * is also the database's clock.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { JobwireClient, Worker } from "../../src/client/index.ts";
import { createTestDatabase, POSTGRES_URL } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { FAKETIME_AVAILABLE, skewedClock } from "../helpers/faketime.ts";
import { runScript } from "../helpers/script-process.ts";
import type { ScriptProcess } from "../helpers/script-process.ts";
import { startServeProcess } from "../helpers/serve-process.ts";
import type { ServeProcess } from "../helpers/serve-process.ts";

const TEN_MINUTES = 10 * 60_000;
/** The maintenance loop's interval (MAINTENANCE_DEFAULTS.intervalMs), plus room for a loaded machine. */
const SWEEP_SLACK_MS = 1_000 + 1_500;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** How far the server's wall clock is off, from the time pino stamped on its first log line. */
function serverSkewMs(server: ServeProcess, loggedBefore: number): number {
  return Number(server.logs[0]?.time) - loggedBefore;
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function track<T extends { close?: () => Promise<void>; stop?: () => Promise<unknown> }>(thing: T): T {
  cleanups.push(async () => (thing.stop ? thing.stop() : thing.close?.()));
  return thing;
}

/** Counts handler runs and lost leases of workers made by `worker()`. */
class Runs {
  readonly started = new Map<string, number[]>();
  readonly lost: string[] = [];
  count(id: string): number {
    return this.started.get(id)?.length ?? 0;
  }
  worker(url: string, options: { queues: string[]; leaseSeconds: number; run: (id: string) => Promise<void> }) {
    const worker = new Worker({
      url,
      queues: options.queues,
      concurrency: 4,
      leaseSeconds: options.leaseSeconds,
      pollIntervalMs: 100,
      handler: async (job) => {
        this.started.set(job.id, [...(this.started.get(job.id) ?? []), Date.now()]);
        return options.run(job.id);
      },
    });
    worker.on("leaseLost", ({ job, reason }) => this.lost.push(`${job.id}: ${reason}`));
    cleanups.push(() => worker.stop({ timeoutMs: 2_000 }));
    return worker.start();
  }
}

describe.skipIf(!FAKETIME_AVAILABLE || !POSTGRES_URL)("two servers on one PostgreSQL, 10 minutes apart", () => {
  it("leases end on the database's clock, delayed jobs wait for it, every job runs once", async () => {
    const db: TestDatabase = await createTestDatabase("postgres");
    cleanups.push(() => db.dispose());
    const before = Date.now();
    // The first applies the migrations; then the other starts on the migrated database.
    const fast = track(await startServeProcess(["--database", db.url], 30_000, skewedClock("+10m")));
    const slow = track(await startServeProcess(["--database", db.url], 30_000, skewedClock("-10m")));
    // The skew is real (else this test would prove nothing).
    expect(serverSkewMs(fast, before)).toBeGreaterThan(TEN_MINUTES - 60_000);
    expect(serverSkewMs(slow, before)).toBeLessThan(-TEN_MINUTES + 60_000);
    const clients = [fast, slow].map((s) => track(new JobwireClient({ url: s.url })));

    const runs = new Runs();
    // Live workers, one on each server, with 2 s leases and jobs of 4 s: they
    // live by their heartbeats, whichever server granted the lease and whichever sweeps.
    for (const server of [fast, slow]) {
      runs.worker(server.url, { queues: ["long", "delayed"], leaseSeconds: 2, run: (id) => longOrShort(id) });
    }
    const longIds = new Set<string>();
    const longOrShort = async (id: string) => {
      if (longIds.has(id)) await sleep(4_000);
    };
    for (let i = 0; i < 4; i++) {
      const { job } = await clients[i % 2]!.enqueueJob({ queue: "long", payload: { i } });
      longIds.add(job.id);
    }

    // Delayed jobs, from both servers: runAt is the database's now + 3 s.
    const delayed: { id: string; sentAt: number; answeredAt: number; runAt: number }[] = [];
    for (let i = 0; i < 6; i++) {
      const sentAt = Date.now();
      const { job } = await clients[i % 2]!.enqueueJob({ queue: "delayed", payload: { i }, delayMs: 3_000 });
      delayed.push({ id: job.id, sentAt, answeredAt: Date.now(), runAt: Date.parse(job.runAt) });
    }
    for (const d of delayed) {
      expect(d.runAt).toBeGreaterThanOrEqual(d.sentAt + 3_000 - 5);
      expect(d.runAt).toBeLessThanOrEqual(d.answeredAt + 3_000 + 5);
    }

    // Dead workers: a lease taken on each server and never heartbeated.
    const dead: { id: string; sentAt: number; leaseExpiresAt: number }[] = [];
    for (const client of clients) {
      await client.enqueueJob({ queue: "dead", payload: null, maxAttempts: 5 });
      const sentAt = Date.now();
      const [leased] = await client.claimJobs({ queues: ["dead"], workerId: "dead", limit: 1, leaseSeconds: 2 });
      expect(leased).toBeDefined();
      dead.push({ id: leased!.job.id, sentAt, leaseExpiresAt: Date.parse(leased!.leaseExpiresAt) });
    }

    await until(
      "every job to run",
      () => [...longIds, ...delayed.map((d) => d.id)].every((id) => runs.count(id) > 0),
      20_000,
    );
    await until(
      "the long jobs to finish",
      async () =>
        (await Promise.all([...longIds].map((id) => clients[0]!.job(id)))).every((j) => j.state === "SUCCEEDED"),
      20_000,
    );

    expect(runs.lost).toEqual([]);
    for (const id of [...longIds, ...delayed.map((d) => d.id)]) expect(runs.count(id), `job ${id} runs`).toBe(1);
    for (const d of delayed) {
      // Never before its runAt (the test's clock is the database's).
      expect(runs.started.get(d.id)![0]!).toBeGreaterThanOrEqual(d.runAt - 5);
    }
    for (const d of dead) {
      expect(d.leaseExpiresAt).toBeGreaterThanOrEqual(d.sentAt + 2_000 - 5);
      const events = await clients[1]!.jobEvents(d.id);
      const expired = events.find((e) => e.type === "LEASE_EXPIRED");
      expect(expired, `job ${d.id} swept`).toBeDefined();
      const sweptAt = Date.parse(expired!.createdAt);
      // Swept after its lease ended, within a sweep interval of it.
      expect(sweptAt).toBeGreaterThanOrEqual(d.leaseExpiresAt);
      expect(sweptAt).toBeLessThanOrEqual(d.leaseExpiresAt + SWEEP_SLACK_MS);
    }
    for (const server of [fast, slow]) {
      expect(server.logs.filter((l) => l.msg === "maintenance tick failed")).toEqual([]);
    }
  }, 60_000);
});

describe.skipIf(!FAKETIME_AVAILABLE)("a SQLite server whose clock jumps across restarts", () => {
  it("2 minutes slow, then right, then slow again: no live lease is swept", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jobwire-skew-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const database = `file:${join(dir, "jobwire.db")}`;
    const before = Date.now();
    let server = await startServeProcess(["--database", database], 30_000, skewedClock("-2m"));
    const port = new URL(server.url).port;
    cleanups.push(() => server.stop());
    const restart = async (clock: NodeJS.ProcessEnv) => {
      server.child.kill("SIGKILL");
      await server.stop();
      server = await startServeProcess(["--database", database, "--port", port], 30_000, clock);
    };
    const client = track(new JobwireClient({ url: server.url }));

    const runs = new Runs();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    // 6 s leases, heartbeated every 2 s; the handlers hold until released.
    runs.worker(server.url, { queues: ["hold"], leaseSeconds: 6, run: () => released });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await client.enqueueJob({ queue: "hold", payload: { i } })).job.id);
    await until("the jobs to start", () => ids.every((id) => runs.count(id) === 1));
    expect(serverSkewMs(server, before)).toBeLessThan(-60_000);

    // Forward 2 minutes (the leases look 2 minutes overdue), then back.
    for (const clock of [{}, skewedClock("-2m")]) {
      await restart(clock);
      // Several sweeps, and heartbeats that found the server again.
      await sleep(3_500);
      const jobs = await Promise.all(ids.map((id) => client.job(id)));
      // Still the first run: not swept (and re-claimed), not lost.
      expect(jobs.map((j) => [j.state, j.attempts])).toEqual(ids.map(() => ["RUNNING", 1]));
      for (const id of ids) expect((await client.jobEvents(id)).map((e) => e.type)).not.toContain("LEASE_EXPIRED");
      expect(runs.lost).toEqual([]);
      expect(
        server.logs.find((l) => l.msg === "resumed the running leases of the previous run from now"),
      ).toMatchObject({ resumed: 3 });
    }

    release();
    await until("the jobs to succeed", async () =>
      (await Promise.all(ids.map((id) => client.job(id)))).every((j) => j.state === "SUCCEEDED"),
    );
    const jobs = await Promise.all(ids.map((id) => client.job(id)));
    expect(jobs.map((j) => j.attempts)).toEqual([1, 1, 1]);
    expect(ids.map((id) => runs.count(id))).toEqual([1, 1, 1]);
    expect(runs.lost).toEqual([]);
  }, 90_000);
});

describe.skipIf(!FAKETIME_AVAILABLE)("an SDK Worker 10 minutes fast", () => {
  it("keeps its result while the server restarts mid-completion: the job completes once, on attempt 1", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jobwire-skew-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const database = `file:${join(dir, "jobwire.db")}`;
    let server = await startServeProcess(["--database", database]);
    const port = new URL(server.url).port;
    cleanups.push(() => server.stop());
    const client = track(new JobwireClient({ url: server.url }));
    const worker: ScriptProcess = runScript(
      "examples/worker.ts",
      ["--url", server.url, "--queue", "skew", "--lease-seconds", "20"],
      skewedClock("+10m"),
    );
    cleanups.push(async () => {
      worker.kill("SIGKILL");
      await worker.exited;
    });
    await worker.waitForJson((l) => l.event === "ready", "worker ready");

    const { job } = await client.enqueueJob({ queue: "skew", payload: { ms: 1_500 } });
    await worker.waitForJson((l) => l.event === "started" && l.jobId === job.id, "the job to start");
    // The server dies while the handler runs; its completion finds no server.
    server.child.kill("SIGKILL");
    await server.stop();
    await until("a failed completion", () => worker.stderr().includes("worker: complete:"), 20_000);
    await sleep(500);
    server = await startServeProcess(["--database", database, "--port", port]);

    await until("the job to succeed", async () => (await client.job(job.id)).state === "SUCCEEDED", 30_000);
    const done = await client.job(job.id);
    expect(done.attempts).toBe(1);
    expect(worker.json.filter((l) => l.event === "started" && l.jobId === job.id)).toHaveLength(1);
    expect(worker.json.filter((l) => l.event === "leaseLost")).toEqual([]);
    const events = await client.jobEvents(job.id);
    expect(events.map((e) => e.type)).not.toContain("LEASE_EXPIRED");
  }, 90_000);
});
