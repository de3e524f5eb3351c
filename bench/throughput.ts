/**
 * Throughput and latency of the whole system, on SQLite and PostgreSQL:
 *
 *   enqueue-single-inprocess  N jobs, one JobService.enqueue per job, 10 concurrent callers
 *   enqueue-bulk-inprocess    N jobs in enqueueMany calls of 1,000
 *   enqueue-single-http       N jobs, one enqueueJob request per job, 10 concurrent clients
 *   enqueue-bulk-http         N jobs in enqueueJobs requests of 1,000
 *   drain-inprocess-c1        N queued no-op jobs drained by the SDK Worker in-process, concurrency 1
 *   drain-inprocess-c10       … concurrency 10
 *   drain-remote-2x10         … by 2 Worker processes over GraphQL, concurrency 10 each
 *   drain-store               … by the job service itself, no Worker: 4 loops, each claiming 100 and
 *                             completing them in one completeMany (the store's capacity, issue 13)
 *   pickup-inprocess          PICKUP jobs enqueued at 200/s, idle in-process workers (concurrency 10)
 *                             waiting on jobsAvailable: enqueue acknowledged → handler start
 *   pickup-remote             … the worker over GraphQL/graphql-ws, the producer over HTTP
 *
 * Drain rates run from the first handler start to the last completion
 * acknowledged. Every scenario also reports the server's peak RSS (VmHWM):
 * the `jobwire serve` child for the HTTP scenarios, this scenario's own
 * process for the in-process ones (each repetition runs in a fresh process
 * on a fresh database, so peaks do not carry over).
 *
 * Usage: tsx bench/throughput.ts [--quick] [--backend sqlite|postgres] [--scenario <name>]…
 *   (npm run bench runs it with the others). Each scenario repeats REPETITIONS
 *   times (1 with --quick, on smaller sizes); the table shows the median and
 *   min–max. Results: bench/results/<UTC date>-throughput[-quick].json.
 */
import { spawn } from "node:child_process";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { JobwireClient, Worker } from "../src/client/index.ts";
import { JobService } from "../src/jobs/job-service.ts";
import { startServer } from "../src/server/server.ts";
import { openStore } from "../src/store/open-store.ts";
import {
  backends,
  freshDatabase,
  machineFacts,
  memoryMiB,
  nowMs,
  postgresUrl,
  RESULTS_DIR,
  round3,
  scriptCommand,
  startServe,
} from "./lib/common.ts";
import type { Backend } from "./lib/common.ts";
import {
  countWal,
  enqueueInBulk,
  pickup,
  QUEUE,
  REPETITIONS,
  repeatChild,
  SCENARIO_TIMEOUT_MS,
  size,
  SIZES,
  timedEnqueue,
} from "./lib/workloads.ts";
import type { Repeated, RunFigures } from "./lib/workloads.ts";

const SELF = scriptCommand(import.meta.url, "throughput");
const DRAIN_WORKER = scriptCommand(import.meta.url, "drain-worker");
const silent = pino({ level: "silent" });

interface Scenario {
  /** The figure the table leads with. */
  primary: string;
  unit: string;
  run(backend: Backend, quick: boolean): Promise<RunFigures>;
}

// ---- enqueue ---------------------------------------------------------------------

async function enqueueInProcess(backend: Backend, quick: boolean, bulk: boolean): Promise<RunFigures> {
  const db = await freshDatabase(backend);
  const store = await openStore(db.url);
  try {
    const jobs = new JobService(store);
    const n = size(quick).jobs;
    const seconds = await timedEnqueue(
      n,
      bulk,
      (job) => jobs.enqueue(job),
      (list) => jobs.enqueueMany(list),
    );
    const count = await jobs.countJobs({ queue: QUEUE });
    if (count !== n) throw new Error(`expected ${n} jobs, found ${count}`);
    return { figures: { jobsPerSecond: n / seconds, seconds }, serverPeakRssMiB: memoryMiB().peak };
  } finally {
    await store.close();
    await db.dispose();
  }
}

async function enqueueHttp(backend: Backend, quick: boolean, bulk: boolean): Promise<RunFigures> {
  const db = await freshDatabase(backend);
  const serve = await startServe(db.url);
  const client = new JobwireClient({ url: serve.url });
  try {
    const n = size(quick).jobs;
    const seconds = await timedEnqueue(
      n,
      bulk,
      (job) => client.enqueueJob(job),
      (list) => client.enqueueJobs(list),
    );
    const page = await client.jobs({ queue: QUEUE }, { first: 1 });
    if (page.totalCount !== n) throw new Error(`expected ${n} jobs, found ${page.totalCount}`);
    return { figures: { jobsPerSecond: n / seconds, seconds }, serverPeakRssMiB: memoryMiB(serve.pid).peak };
  } finally {
    await client.close();
    await serve.stop();
    await db.dispose();
  }
}

// ---- drain -------------------------------------------------------------------------

async function drainInProcess(backend: Backend, quick: boolean, concurrency: number): Promise<RunFigures> {
  const db = await freshDatabase(backend);
  const server = await startServer({ store: await openStore(db.url), logger: silent, port: 0, databaseUrl: db.url });
  try {
    const { jobs } = server.services;
    const n = size(quick).jobs;
    await enqueueInBulk(n, (list) => jobs.enqueueMany(list));
    let first: number | null = null;
    let last = 0;
    let completed = 0;
    const worker = new Worker({ services: server.services, queues: [QUEUE], concurrency, handler: () => null });
    const done = new Promise<void>((resolve) => {
      worker.on("started", () => (first ??= nowMs()));
      worker.on("completed", () => {
        last = nowMs();
        if (++completed === n) resolve();
      });
    });
    // The drain's WAL (claims, completions, their events), as for graphile-worker in bench/peers/.
    const pgUrl = backend === "postgres" ? postgresUrl() : null;
    const wal = pgUrl ? await countWal(pgUrl) : null;
    worker.start();
    await done;
    await worker.stop();
    const walFigures = wal ? await wal(n) : {};
    const succeeded = await jobs.countJobs({ queue: QUEUE, states: ["SUCCEEDED"] });
    if (succeeded !== n) throw new Error(`expected ${n} SUCCEEDED jobs, found ${succeeded}`);
    const seconds = (last - (first ?? last)) / 1000;
    return { figures: { jobsPerSecond: n / seconds, seconds, ...walFigures }, serverPeakRssMiB: memoryMiB().peak };
  } finally {
    await server.close();
    await db.dispose();
  }
}

const STORE_DRAIN_LOOPS = 4;
const STORE_DRAIN_BATCH = 100;

async function drainStore(backend: Backend, quick: boolean): Promise<RunFigures> {
  const db = await freshDatabase(backend);
  const store = await openStore(db.url);
  try {
    const jobs = new JobService(store);
    const n = size(quick).jobs;
    await enqueueInBulk(n, (list) => jobs.enqueueMany(list));
    const pgUrl = backend === "postgres" ? postgresUrl() : null;
    const wal = pgUrl ? await countWal(pgUrl) : null;
    let completed = 0;
    const started = nowMs();
    await Promise.all(
      Array.from({ length: STORE_DRAIN_LOOPS }, async (_, loop) => {
        for (;;) {
          const leased = await jobs.claim({ queues: [QUEUE], workerId: `loop-${loop}`, limit: STORE_DRAIN_BATCH });
          if (leased.length === 0) return;
          const outcomes = await jobs.completeMany(
            leased.map((j) => ({ jobId: j.id, leaseToken: j.leaseToken, result: null })),
          );
          completed += outcomes.length;
        }
      }),
    );
    const seconds = (nowMs() - started) / 1000;
    const walFigures = wal ? await wal(n) : {};
    const succeeded = await jobs.countJobs({ queue: QUEUE, states: ["SUCCEEDED"] });
    if (succeeded !== n || completed !== n) throw new Error(`expected ${n} SUCCEEDED jobs, found ${succeeded}`);
    return { figures: { jobsPerSecond: n / seconds, seconds, ...walFigures }, serverPeakRssMiB: memoryMiB().peak };
  } finally {
    await store.close();
    await db.dispose();
  }
}

async function drainRemote(backend: Backend, quick: boolean): Promise<RunFigures> {
  const db = await freshDatabase(backend);
  const serve = await startServe(db.url);
  const client = new JobwireClient({ url: serve.url });
  const workers: ReturnType<typeof spawn>[] = [];
  try {
    const n = size(quick).jobs;
    await enqueueInBulk(n, (list) => client.enqueueJobs(list));
    const reports: { firstStartMs: number | null; lastCompleteMs: number | null; completed: number }[] = [];
    const exited: Promise<void>[] = [];
    const ready: Promise<void>[] = [];
    for (let w = 0; w < 2; w++) {
      const child = spawn(process.execPath, [...DRAIN_WORKER, serve.url, QUEUE, "10"], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      workers.push(child);
      let onReady!: () => void;
      ready.push(new Promise((resolve) => (onReady = resolve)));
      exited.push(new Promise((resolve) => child.once("exit", () => resolve())));
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
        const msg = JSON.parse(line) as { event: string } & (typeof reports)[number];
        if (msg.event === "ready") onReady();
        if (msg.event === "stopped") reports.push(msg);
      });
    }
    await Promise.all(ready);
    const deadline = Date.now() + SCENARIO_TIMEOUT_MS;
    while ((await client.queue(QUEUE)).stats.counts.succeeded < n) {
      if (Date.now() > deadline) throw new Error("the remote drain did not finish in time");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const child of workers) child.kill("SIGTERM");
    await Promise.all(exited);
    const completed = reports.reduce((sum, r) => sum + r.completed, 0);
    if (reports.length !== 2 || completed !== n) {
      throw new Error(`workers reported ${completed} completions in ${reports.length} reports, expected ${n}`);
    }
    const first = Math.min(...reports.map((r) => r.firstStartMs ?? Number.POSITIVE_INFINITY));
    const last = Math.max(...reports.map((r) => r.lastCompleteMs ?? 0));
    const seconds = (last - first) / 1000;
    return { figures: { jobsPerSecond: n / seconds, seconds }, serverPeakRssMiB: memoryMiB(serve.pid).peak };
  } finally {
    for (const child of workers) if (child.exitCode === null) child.kill("SIGKILL");
    await client.close();
    await serve.stop();
    await db.dispose();
  }
}

// ---- pickup latency ------------------------------------------------------------------

async function pickupInProcess(backend: Backend, quick: boolean): Promise<RunFigures> {
  const db = await freshDatabase(backend);
  const server = await startServer({ store: await openStore(db.url), logger: silent, port: 0, databaseUrl: db.url });
  const started = new Map<string, number>();
  const worker = new Worker({
    services: server.services,
    queues: [QUEUE],
    concurrency: 10,
    // No polling: every pickup must come from a jobsAvailable wake-up.
    pollIntervalMs: 3_600_000,
    safetyPollMs: 3_600_000,
    handler: (job) => void started.set(job.id, nowMs()),
  });
  try {
    worker.start();
    const { jobs } = server.services;
    await pickup(20, async () => (await jobs.enqueue({ queue: QUEUE })).job.id, started); // warm-up
    const figures = await pickup(
      size(quick).pickup,
      async () => (await jobs.enqueue({ queue: QUEUE })).job.id,
      started,
    );
    return { figures, serverPeakRssMiB: memoryMiB().peak };
  } finally {
    await worker.stop();
    await server.close();
    await db.dispose();
  }
}

async function pickupRemote(backend: Backend, quick: boolean): Promise<RunFigures> {
  const db = await freshDatabase(backend);
  const serve = await startServe(db.url);
  const client = new JobwireClient({ url: serve.url });
  const started = new Map<string, number>();
  const worker = new Worker({
    url: serve.url,
    queues: [QUEUE],
    concurrency: 10,
    pollIntervalMs: 3_600_000,
    safetyPollMs: 3_600_000,
    handler: (job) => void started.set(job.id, nowMs()),
  });
  try {
    worker.start();
    await pickup(20, async () => (await client.enqueueJob({ queue: QUEUE })).job.id, started);
    const figures = await pickup(
      size(quick).pickup,
      async () => (await client.enqueueJob({ queue: QUEUE })).job.id,
      started,
    );
    return { figures, serverPeakRssMiB: memoryMiB(serve.pid).peak };
  } finally {
    await worker.stop();
    await client.close();
    await serve.stop();
    await db.dispose();
  }
}

export const SCENARIOS: Record<string, Scenario> = {
  "enqueue-single-inprocess": {
    primary: "jobsPerSecond",
    unit: "jobs/s",
    run: (b, q) => enqueueInProcess(b, q, false),
  },
  "enqueue-bulk-inprocess": { primary: "jobsPerSecond", unit: "jobs/s", run: (b, q) => enqueueInProcess(b, q, true) },
  "enqueue-single-http": { primary: "jobsPerSecond", unit: "jobs/s", run: (b, q) => enqueueHttp(b, q, false) },
  "enqueue-bulk-http": { primary: "jobsPerSecond", unit: "jobs/s", run: (b, q) => enqueueHttp(b, q, true) },
  "drain-inprocess-c1": { primary: "jobsPerSecond", unit: "jobs/s", run: (b, q) => drainInProcess(b, q, 1) },
  "drain-inprocess-c10": { primary: "jobsPerSecond", unit: "jobs/s", run: (b, q) => drainInProcess(b, q, 10) },
  "drain-remote-2x10": { primary: "jobsPerSecond", unit: "jobs/s", run: drainRemote },
  "drain-store": { primary: "jobsPerSecond", unit: "jobs/s", run: drainStore },
  "pickup-inprocess": { primary: "p50Ms", unit: "ms", run: pickupInProcess },
  "pickup-remote": { primary: "p50Ms", unit: "ms", run: pickupRemote },
};

// ---- orchestration ---------------------------------------------------------------------

export interface ScenarioReport extends Repeated {
  scenario: string;
  backend: Backend;
}

export async function runThroughput(options: {
  quick: boolean;
  backends: Backend[];
  scenarios: string[];
}): Promise<ScenarioReport[]> {
  const reports: ScenarioReport[] = [];
  const repetitions = options.quick ? 1 : REPETITIONS;
  for (const backend of options.backends) {
    for (const name of options.scenarios) {
      const scenario = SCENARIOS[name] as Scenario;
      const args = [...SELF, "--child", name, "--backend", backend, ...(options.quick ? ["--quick"] : [])];
      const label = `${backend.padEnd(8)} ${name.padEnd(26)}`;
      reports.push({
        scenario: name,
        backend,
        ...(await repeatChild(label, args, repetitions, scenario.primary, scenario.unit)),
      });
    }
  }
  return reports;
}

function parseArgs(argv: string[]) {
  let quick = false;
  let child: string | null = null;
  const chosenBackends: Backend[] = [];
  const scenarios: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === "--quick") quick = true;
    else if (arg === "--child") child = value();
    else if (arg === "--backend") {
      const b = value();
      if (b !== "sqlite" && b !== "postgres") throw new Error(`--backend must be sqlite or postgres, got ${b}`);
      chosenBackends.push(b);
    } else if (arg === "--scenario") {
      const s = value();
      if (!(s in SCENARIOS)) throw new Error(`unknown scenario ${s}; one of: ${Object.keys(SCENARIOS).join(", ")}`);
      scenarios.push(s);
    } else throw new Error(`unknown argument ${arg}`);
  }
  return { quick, child, backends: chosenBackends, scenarios };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.child) {
    const backend = args.backends[0] ?? "sqlite";
    const result = await (SCENARIOS[args.child] as Scenario).run(backend, args.quick);
    const rounded = Object.fromEntries(Object.entries(result.figures).map(([k, v]) => [k, round3(v)]));
    console.log(`RESULT ${JSON.stringify({ ...result, figures: rounded })}`);
    process.exit(0);
  }
  const chosen = args.backends.length > 0 ? args.backends : backends();
  const scenarios = args.scenarios.length > 0 ? args.scenarios : Object.keys(SCENARIOS);
  const startedAt = new Date();
  console.log(`throughput${args.quick ? " --quick" : ""}: ${scenarios.length} scenarios on ${chosen.join(", ")}`);
  const reports = await runThroughput({ quick: args.quick, backends: chosen, scenarios });
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(
    RESULTS_DIR,
    `${startedAt.toISOString().slice(0, 10)}-throughput${args.quick ? "-quick" : ""}.json`,
  );
  const body = {
    benchmark: "throughput",
    mode: args.quick ? "quick" : "full",
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: await machineFacts(),
    sizes: args.quick ? SIZES.quick : SIZES.full,
    results: reports,
  };
  writeFileSync(`${path}.tmp`, `${JSON.stringify(body, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
  console.log(`results in ${path}`);
  process.exit(reports.some((r) => r.status === "failed") ? 1 : 0);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
