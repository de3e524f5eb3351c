/**
 * The SDK Worker in real processes against a real `jobwire serve` process:
 *
 * - 3 worker processes (examples/worker.ts, concurrency 5 each) and a producer
 *   process drain 3,000 jobs where 10% fail once and 2% fail for good; every
 *   job ends in its expected terminal state exactly once, and the producer's
 *   subscription sees every terminal transition exactly once;
 * - a worker killed with SIGKILL mid-job: once its leases expire the jobs run
 *   again on another worker, and complete;
 * - SIGTERM: running handlers finish, nothing new is claimed, exit code 0.
 *
 * On SQLite (the default deployment) and on PostgreSQL when its URL is set.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JobwireClient } from "../../src/client/index.ts";
import { BACKENDS, createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { queryDatabase } from "../helpers/inspect.ts";
import { runScript } from "../helpers/script-process.ts";
import type { ScriptProcess } from "../helpers/script-process.ts";
import { startServeProcess } from "../helpers/serve-process.ts";
import type { ServeProcess } from "../helpers/serve-process.ts";

const JOBS = 3_000;

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.each(BACKENDS)("worker processes on %s", (dialect) => {
  let db: TestDatabase;
  let server: ServeProcess;
  let client: JobwireClient;
  const processes: ScriptProcess[] = [];

  const worker = (...args: string[]) => {
    const p = runScript("examples/worker.ts", ["--url", server.url, ...args]);
    processes.push(p);
    return p;
  };

  beforeEach(async () => {
    db = await createTestDatabase(dialect);
    server = await startServeProcess(["--database", db.url]);
    client = new JobwireClient({ url: server.url });
  }, 60_000);
  afterEach(async () => {
    for (const p of processes.splice(0)) p.kill("SIGKILL");
    await client.close();
    expect(await server.stop()).toBe(0);
    await db.dispose();
  });

  it("3 workers × concurrency 5 and a producer drain 3,000 jobs; each ends as expected, exactly once", async () => {
    const workers = [1, 2, 3].map(() => worker("--queue", "drain", "--concurrency", "5"));
    await Promise.all(workers.map((w) => w.waitForJson((l) => l.event === "ready", "worker ready")));
    const producer = runScript("test/e2e/fixtures/drain-producer.ts", [server.url, "drain", String(JOBS)]);
    processes.push(producer);
    expect(await producer.exited).toBe(0);

    const done = producer.json.find((l) => l.event === "done");
    expect(done).toEqual({ event: "done", terminalEvents: JOBS, jobs: JOBS });
    const terminal = producer.json.filter((l) => l.event === "terminal");
    expect(new Set(terminal.map((l) => l.id)).size).toBe(JOBS);

    // The database agrees: per job, its state, attempts and events.
    const rows = await queryDatabase<{ id: string; state: string; attempts: number; n: number; types: string }>(
      db,
      dialect === "postgres"
        ? `SELECT j.id::text AS id, j.state, j.attempts, (j.payload->>'n')::int AS n,
             string_agg(e.type, ',' ORDER BY e.seq) AS types
           FROM jobs j JOIN job_events e ON e.job_id = j.id WHERE j.queue = 'drain' GROUP BY j.id`
        : `SELECT CAST(j.id AS TEXT) AS id, j.state, j.attempts, json_extract(j.payload, '$.n') AS n,
             (SELECT group_concat(type, ',') FROM (SELECT type FROM job_events WHERE job_id = j.id ORDER BY seq)) AS types
           FROM jobs j WHERE j.queue = 'drain'`,
    );
    expect(rows).toHaveLength(JOBS);
    const byState = { SUCCEEDED: 0, FAILED: 0 } as Record<string, number>;
    for (const row of rows) {
      const n = Number(row.n);
      byState[row.state] = (byState[row.state] ?? 0) + 1;
      if (n % 50 === 1) {
        expect([row.state, Number(row.attempts), row.types], `job n=${n}`).toEqual([
          "FAILED",
          1,
          "enqueued,claimed,failed",
        ]);
      } else if (n % 10 === 0) {
        expect([row.state, Number(row.attempts), row.types], `job n=${n}`).toEqual([
          "SUCCEEDED",
          2,
          "enqueued,claimed,retry_scheduled,promoted,claimed,succeeded",
        ]);
      } else {
        expect([row.state, Number(row.attempts), row.types], `job n=${n}`).toEqual([
          "SUCCEEDED",
          1,
          "enqueued,claimed,succeeded",
        ]);
      }
    }
    expect(byState).toEqual({ SUCCEEDED: JOBS - JOBS / 50, FAILED: JOBS / 50 });
    // The producer saw each job's terminal transition, with the state it ended in.
    const seen = new Map(terminal.map((l) => [String(l.jobId), String(l.toState)]));
    expect(rows.every((r) => seen.get(String(r.id)) === r.state)).toBe(true);
    // All three workers took part.
    const completedBy = workers.map((w) => w.json.filter((l) => l.event === "completed").length);
    expect(completedBy.every((n) => n > 0)).toBe(true);
    expect(completedBy.reduce((a, b) => a + b, 0)).toBe(JOBS - JOBS / 50);
  }, 180_000);

  it("runs a SIGKILLed worker's jobs again on another worker once the lease expires", async () => {
    const enqueued = await client.enqueueJobs(
      [1, 2].map((i) => ({
        queue: "kill",
        payload: { ms: 1_500, i },
        backoff: { type: "FIXED" as const, delayMs: 0 },
      })),
    );
    const doomed = worker("--queue", "kill", "--concurrency", "2", "--lease-seconds", "2");
    for (const { job } of enqueued) {
      await doomed.waitForJson((l) => l.event === "started" && l.jobId === job.id, `job ${job.id} started`);
    }
    doomed.kill("SIGKILL");
    expect(await doomed.exited).toBeNull();
    const killedAt = Date.now();
    const rescuer = worker("--queue", "kill", "--concurrency", "2");
    for (const { job } of enqueued) {
      await rescuer.waitForJson((l) => l.event === "completed" && l.jobId === job.id, `job ${job.id} rerun`, 30_000);
    }
    // Not before the 2 s lease ran out.
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(2_000);
    for (const { job } of enqueued) {
      const done = await client.job(job.id);
      expect(done).toMatchObject({ state: "SUCCEEDED", attempts: 2 });
      const types = (await client.jobEvents(job.id)).map((e) => e.type);
      expect(types).toEqual(["ENQUEUED", "CLAIMED", "LEASE_EXPIRED", "PROMOTED", "CLAIMED", "SUCCEEDED"]);
    }
  }, 60_000);

  it("SIGTERM: running handlers finish, nothing new is claimed, exit code 0", async () => {
    const enqueued = await client.enqueueJobs(
      Array.from({ length: 6 }, (_, i) => ({ queue: "term", payload: { ms: 800, i } })),
    );
    const w = worker("--queue", "term", "--concurrency", "2");
    await until("two handlers running", () => w.json.filter((l) => l.event === "started").length === 2);
    w.kill("SIGTERM");
    expect(await w.exited).toBe(0);
    const started = w.json.filter((l) => l.event === "started").map((l) => String(l.jobId));
    const completed = w.json.filter((l) => l.event === "completed").map((l) => String(l.jobId));
    expect(started).toHaveLength(2);
    expect(completed.sort()).toEqual([...started].sort());
    const stoppingAt = w.json.findIndex((l) => l.event === "stopping");
    expect(w.json.slice(stoppingAt).some((l) => l.event === "started")).toBe(false);
    const states = await Promise.all(enqueued.map(async ({ job }) => (await client.job(job.id)).state));
    expect(states.filter((s) => s === "SUCCEEDED")).toHaveLength(2);
    expect(states.filter((s) => s === "QUEUED")).toHaveLength(4);
  }, 60_000);
});
