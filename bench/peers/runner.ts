/**
 * One repetition of one scenario on one peer queue, in its own process (so
 * the peak RSS is the peer's worker alone): the workloads of
 * bench/throughput.ts's in-process scenarios, through each peer's own API.
 * bench/peers.ts bundles this file next to bench/peers/node_modules and runs
 * it; it prints `RESULT {json}` as throughput.ts's children do.
 *
 *   node bench/peers/dist/runner.js <graphile-worker|pg-boss|bullmq> <scenario> [--quick]
 *
 * PostgreSQL peers get a fresh schema in JOBWIRE_BENCH_PEERS_URL's database
 * (dropped afterwards); BullMQ a fresh key prefix on 127.0.0.1:6379
 * (obliterated afterwards).
 */
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import type { Runner, WorkerUtils } from "graphile-worker";
import { Queue, Worker as BullWorker } from "bullmq";
import { Redis } from "ioredis";
import pg from "pg";
import PgBoss from "pg-boss";
import { memoryMiB, nowMs, round3 } from "../lib/common.ts";
import { countWal, enqueueInBulk, pickup, QUEUE, size, timedEnqueue } from "../lib/workloads.ts";
import type { BenchJob, RunFigures } from "../lib/workloads.ts";

/** What the workloads need of a queue; one adapter per peer. */
interface PeerQueue {
  /** The PostgreSQL database the peer writes to (for WAL accounting), or null. */
  postgresUrl: string | null;
  add(job: BenchJob): Promise<string>;
  addMany(jobs: BenchJob[]): Promise<unknown>;
  /** Starts `concurrency` handlers on QUEUE: `onStart(id)` as one begins, `onEnd()` as it returns. */
  work(concurrency: number, onStart: (id: string) => void, onEnd: () => void): Promise<void>;
  /** Jobs of QUEUE not yet finished (queued, running, or completed but not yet recorded). */
  outstanding(): Promise<number>;
  close(): Promise<void>;
}

const PEERS_URL = process.env.JOBWIRE_BENCH_PEERS_URL ?? "";
const schemaName = (peer: string) => `${peer.replace(/\W/g, "_")}_${process.pid}`;

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: PEERS_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
}

/** graphile-worker 0.17, tuned as its docs suggest for throughput: a local queue and batched completions. */
async function graphileWorker(): Promise<PeerQueue> {
  const schema = schemaName("graphile");
  const pool = new pg.Pool({ connectionString: PEERS_URL, max: 10 });
  pool.on("error", (e) => console.error(`graphile-worker pool: ${e.message}`));
  pool.on("connect", (client) => client.on("error", (e) => console.error(`graphile-worker client: ${e.message}`)));
  const utils: WorkerUtils = await makeWorkerUtils({ pgPool: pool, schema });
  await utils.migrate();
  let runner: Runner | null = null;
  const spec = (job: BenchJob) => ({ identifier: job.queue, payload: job.payload ?? {} });
  return {
    postgresUrl: PEERS_URL,
    add: async (job) => (await utils.addJob(job.queue, job.payload ?? {})).id,
    addMany: (jobs) => utils.addJobs(jobs.map(spec)),
    async work(concurrency, onStart, onEnd) {
      runner = await run({
        pgPool: pool,
        schema,
        concurrency,
        noHandleSignals: true,
        logger: new Logger(() => () => {}),
        taskList: {
          [QUEUE]: async (_payload, helpers) => {
            onStart(helpers.job.id);
            onEnd();
          },
        },
        preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0 } },
      });
    },
    async outstanding() {
      const r = await pool.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM "${schema}"._private_jobs j JOIN "${schema}"._private_tasks t ON t.id = j.task_id WHERE t.identifier = $1`,
        [QUEUE],
      );
      return Number(r.rows[0]?.n);
    },
    async close() {
      await runner?.stop();
      await utils.release();
      await pool.end();
      await dropSchema(schema);
    },
  };
}

/**
 * pg-boss 10: it has no wake-up on insert, so workers poll at its minimum
 * interval (0.5 s) and fetch 100 jobs per poll; `concurrency` workers, each
 * running its batch one job at a time, so at most `concurrency` handlers run.
 */
async function pgBoss(): Promise<PeerQueue> {
  const schema = schemaName("pgboss");
  const boss = new PgBoss({ connectionString: PEERS_URL, schema, max: 10, schedule: false, supervise: false });
  boss.on("error", (e: Error) => console.error(`pg-boss: ${e.message}`));
  await boss.start();
  for (const name of [QUEUE, "warmup"]) await boss.createQueue(name);
  return {
    postgresUrl: PEERS_URL,
    add: async (job) => (await boss.send(job.queue, job.payload ?? {})) as string,
    addMany: (jobs) => boss.insert(jobs.map((job) => ({ name: job.queue, data: job.payload ?? {} }))),
    async work(concurrency, onStart, onEnd) {
      for (let w = 0; w < concurrency; w++) {
        await boss.work(QUEUE, { batchSize: 100, pollingIntervalSeconds: 0.5 }, async (jobs) => {
          for (const job of jobs) {
            onStart(job.id);
            onEnd();
          }
        });
      }
    },
    async outstanding() {
      const r = await boss
        .getDb()
        .executeSql(`SELECT count(*)::text AS n FROM "${schema}".job WHERE name = $1 AND state < 'completed'`, [QUEUE]);
      return Number((r.rows[0] as { n: string } | undefined)?.n);
    },
    async close() {
      await boss.stop({ graceful: false, wait: true });
      await dropSchema(schema);
    },
  };
}

/** BullMQ on Redis (127.0.0.1:6379), its defaults. */
async function bullmq(): Promise<PeerQueue> {
  const prefix = `jobwire-bench-${process.pid}`;
  const connection = new Redis({ host: "127.0.0.1", port: 6379, maxRetriesPerRequest: null });
  const queues = new Map<string, Queue>();
  const queue = (name: string) => {
    let q = queues.get(name);
    if (!q) queues.set(name, (q = new Queue(name, { connection, prefix })));
    return q;
  };
  let worker: BullWorker | null = null;
  return {
    postgresUrl: null,
    add: async (job) => (await queue(job.queue).add("job", job.payload ?? {})).id as string,
    addMany: (jobs) => queue(QUEUE).addBulk(jobs.map((job) => ({ name: "job", data: job.payload ?? {} }))),
    async work(concurrency, onStart, onEnd) {
      worker = new BullWorker(
        QUEUE,
        async (job) => {
          onStart(job.id as string);
          onEnd();
        },
        { connection: new Redis({ host: "127.0.0.1", port: 6379, maxRetriesPerRequest: null }), prefix, concurrency },
      );
      await worker.waitUntilReady();
    },
    async outstanding() {
      const counts = await queue(QUEUE).getJobCounts("wait", "active", "delayed", "prioritized");
      return Object.values(counts).reduce((a, b) => a + b, 0);
    },
    async close() {
      await worker?.close();
      for (const q of queues.values()) {
        await q.obliterate({ force: true });
        await q.close();
      }
      connection.disconnect();
    },
  };
}

const PEERS: Record<string, () => Promise<PeerQueue>> = {
  "graphile-worker": graphileWorker,
  "pg-boss": pgBoss,
  bullmq,
};

/** Until `outstanding()` is 0: the last completions are recorded (batched completions included). */
async function settled(q: PeerQueue): Promise<number> {
  const deadline = Date.now() + 60_000;
  while ((await q.outstanding()) > 0) {
    if (Date.now() > deadline) throw new Error("jobs were still outstanding 60 s after the last handler ran");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return nowMs();
}

/**
 * Drains `n` queued jobs at `concurrency`: jobs/s from the first handler start
 * until the database (or Redis) holds no unfinished job, and on PostgreSQL the
 * WAL written per job meanwhile.
 */
async function drain(q: PeerQueue, n: number, concurrency: number): Promise<Record<string, number>> {
  await enqueueInBulk(n, (jobs) => q.addMany(jobs));
  const wal = q.postgresUrl ? await countWal(q.postgresUrl) : null;
  let first: number | null = null;
  let ended = 0;
  let allRan!: () => void;
  const ran = new Promise<void>((resolve) => (allRan = resolve));
  await q.work(
    concurrency,
    () => (first ??= nowMs()),
    () => void (++ended === n && allRan()),
  );
  await ran;
  const last = await settled(q);
  const walFigures = wal ? await wal(n) : {};
  const seconds = (last - (first ?? last)) / 1000;
  return { jobsPerSecond: n / seconds, seconds, ...walFigures };
}

const SCENARIOS: Record<string, (q: PeerQueue, quick: boolean) => Promise<Record<string, number>>> = {
  "enqueue-single-inprocess": (q, quick) => enqueueRate(q, size(quick).jobs, false),
  "enqueue-bulk-inprocess": (q, quick) => enqueueRate(q, size(quick).jobs, true),
  "drain-inprocess-c1": (q, quick) => drain(q, size(quick).jobs, 1),
  "drain-inprocess-c10": (q, quick) => drain(q, size(quick).jobs, 10),
  async "pickup-inprocess"(q, quick) {
    const started = new Map<string, number>();
    await q.work(
      10,
      (id) => void started.set(id, nowMs()),
      () => undefined,
    );
    const enqueue = (i: number) => q.add({ queue: QUEUE, payload: { i } });
    await pickup(20, enqueue, started); // warm-up
    return pickup(size(quick).pickup, enqueue, started);
  },
};

async function enqueueRate(q: PeerQueue, n: number, bulk: boolean): Promise<Record<string, number>> {
  const seconds = await timedEnqueue(
    n,
    bulk,
    (job) => q.add(job),
    (jobs) => q.addMany(jobs),
  );
  return { jobsPerSecond: n / seconds, seconds };
}

async function main(): Promise<void> {
  const [peer, scenario] = process.argv.slice(2);
  const open = PEERS[peer ?? ""];
  const measure = SCENARIOS[scenario ?? ""];
  if (!open || !measure) {
    throw new Error(
      `usage: runner.js <${Object.keys(PEERS).join("|")}> <${Object.keys(SCENARIOS).join("|")}> [--quick]`,
    );
  }
  const q = await open();
  let result: RunFigures;
  try {
    const figures = await measure(q, process.argv.includes("--quick"));
    result = {
      figures: Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, round3(v)])),
      serverPeakRssMiB: memoryMiB().peak,
    };
  } finally {
    await q.close();
  }
  console.log(`RESULT ${JSON.stringify(result)}`);
  process.exit(0);
}

await main();
