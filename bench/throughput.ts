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
  percentile,
  RESULTS_DIR,
  round3,
  scriptCommand,
  spread,
  startServe,
} from "./lib/common.ts";
import type { Backend, Spread } from "./lib/common.ts";

const REPETITIONS = 3;
const SIZES = {
  full: { jobs: 10_000, pickup: 1_000 },
  quick: { jobs: 1_000, pickup: 100 },
};
const CONCURRENT_CLIENTS = 10;
const BULK = 1_000;
const PICKUP_RATE_PER_S = 200;
const QUEUE = "bench";
/** A scenario process that takes longer than this is killed and reported as failed. */
const SCENARIO_TIMEOUT_MS = 5 * 60_000;
const SELF = scriptCommand(import.meta.url, "throughput");
const DRAIN_WORKER = scriptCommand(import.meta.url, "drain-worker");
const silent = pino({ level: "silent" });

/** What one run of a scenario measured: named figures, and the server's peak RSS. */
interface RunFigures {
  figures: Record<string, number>;
  serverPeakRssMiB: number;
}

interface Scenario {
  /** The figure the table leads with. */
  primary: string;
  unit: string;
  run(backend: Backend, quick: boolean): Promise<RunFigures>;
}

const size = (quick: boolean) => (quick ? SIZES.quick : SIZES.full);

// ---- enqueue ---------------------------------------------------------------------

interface BenchJob {
  queue: string;
  payload?: { i: number };
}

/**
 * Warms up with 50 single enqueues, then enqueues `n` jobs: in calls of BULK
 * one after another, or one per call from CONCURRENT_CLIENTS callers at once.
 * Seconds taken by the `n`.
 */
async function timedEnqueue(
  n: number,
  bulk: boolean,
  one: (job: BenchJob) => Promise<unknown>,
  many: (jobs: BenchJob[]) => Promise<unknown>,
): Promise<number> {
  for (let i = 0; i < 50; i++) await one({ queue: "warmup" });
  const started = nowMs();
  if (bulk) {
    for (let i = 0; i < n; i += BULK) {
      await many(Array.from({ length: Math.min(BULK, n - i) }, (_, k) => ({ queue: QUEUE, payload: { i: i + k } })));
    }
  } else {
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENT_CLIENTS }, async () => {
        while (next < n) {
          const i = next++;
          await one({ queue: QUEUE, payload: { i } });
        }
      }),
    );
  }
  return (nowMs() - started) / 1000;
}

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
    for (let i = 0; i < n; i += BULK) {
      await jobs.enqueueMany(Array.from({ length: Math.min(BULK, n - i) }, () => ({ queue: QUEUE })));
    }
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
    worker.start();
    await done;
    await worker.stop();
    const succeeded = await jobs.countJobs({ queue: QUEUE, states: ["SUCCEEDED"] });
    if (succeeded !== n) throw new Error(`expected ${n} SUCCEEDED jobs, found ${succeeded}`);
    const seconds = (last - (first ?? last)) / 1000;
    return { figures: { jobsPerSecond: n / seconds, seconds }, serverPeakRssMiB: memoryMiB().peak };
  } finally {
    await server.close();
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
    for (let i = 0; i < n; i += BULK) {
      await client.enqueueJobs(Array.from({ length: Math.min(BULK, n - i) }, () => ({ queue: QUEUE })));
    }
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

/**
 * Enqueues `count` jobs at PICKUP_RATE_PER_S through `enqueue` (which resolves
 * once the enqueue is acknowledged) while `started` collects handler start
 * times; returns per-job latencies (handler start − acknowledgement, and
 * handler start − the moment the enqueue was sent).
 */
async function pickup(
  count: number,
  enqueue: (i: number) => Promise<string>,
  started: Map<string, number>,
): Promise<Record<string, number>> {
  const acks = new Map<string, { sent: number; ack: number }>();
  const interval = 1000 / PICKUP_RATE_PER_S;
  const begin = nowMs();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const wait = begin + i * interval - nowMs();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const sent = nowMs();
    pending.push(enqueue(i).then((id) => void acks.set(id, { sent, ack: nowMs() })));
  }
  await Promise.all(pending);
  const deadline = Date.now() + 60_000;
  while ([...acks.keys()].some((id) => !started.has(id))) {
    if (Date.now() > deadline) throw new Error("some jobs were never picked up");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const fromAck = [...acks].map(([id, t]) => (started.get(id) as number) - t.ack).sort((a, b) => a - b);
  const fromSend = [...acks].map(([id, t]) => (started.get(id) as number) - t.sent).sort((a, b) => a - b);
  return {
    p50Ms: percentile(fromAck, 50),
    p95Ms: percentile(fromAck, 95),
    p99Ms: percentile(fromAck, 99),
    maxMs: fromAck.at(-1) ?? Number.NaN,
    fromSendP50Ms: percentile(fromSend, 50),
    fromSendP99Ms: percentile(fromSend, 99),
  };
}

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
  "pickup-inprocess": { primary: "p50Ms", unit: "ms", run: pickupInProcess },
  "pickup-remote": { primary: "p50Ms", unit: "ms", run: pickupRemote },
};

// ---- orchestration ---------------------------------------------------------------------

export interface ScenarioReport {
  scenario: string;
  backend: Backend;
  status: "ok" | "failed";
  error?: string;
  repetitions: RunFigures[];
  /** Median and min–max over repetitions, per figure (and serverPeakRssMiB). */
  figures: Record<string, Spread>;
}

/** Runs one repetition in a fresh process: its peak RSS is its own. */
function runChild(scenario: string, backend: Backend, quick: boolean): Promise<RunFigures> {
  return new Promise((resolve, reject) => {
    const args = [...SELF, "--child", scenario, "--backend", backend, ...(quick ? ["--quick"] : [])];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let result: RunFigures | null = null;
    const timer = setTimeout(() => child.kill("SIGKILL"), SCENARIO_TIMEOUT_MS);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      if (line.startsWith("RESULT ")) result = JSON.parse(line.slice("RESULT ".length)) as RunFigures;
      else console.log(line);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && result) resolve(result);
      else reject(new Error(`${scenario} on ${backend} exited with ${code ?? signal}`));
    });
  });
}

function summarise(runs: RunFigures[]): Record<string, Spread> {
  const out: Record<string, Spread> = {};
  for (const key of Object.keys(runs[0]?.figures ?? {})) out[key] = spread(runs.map((r) => r.figures[key] as number));
  out.serverPeakRssMiB = spread(runs.map((r) => r.serverPeakRssMiB));
  return out;
}

function format(s: Spread | undefined, unit: string): string {
  if (!s) return "-";
  const digits = unit === "ms" ? 2 : 0;
  const f = (x: number) => x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
  return `${f(s.median)} ${unit} (${f(s.min)}–${f(s.max)})`;
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
      const runs: RunFigures[] = [];
      const startedAt = Date.now();
      try {
        for (let r = 0; r < repetitions; r++) runs.push(await runChild(name, backend, options.quick));
        const report: ScenarioReport = {
          scenario: name,
          backend,
          status: "ok",
          repetitions: runs,
          figures: summarise(runs),
        };
        reports.push(report);
        console.log(
          `${backend.padEnd(8)} ${name.padEnd(26)} ${format(report.figures[scenario.primary], scenario.unit).padEnd(34)} ` +
            `server peak RSS ${format(report.figures.serverPeakRssMiB, "MiB")}  [${((Date.now() - startedAt) / 1000).toFixed(0)} s]`,
        );
      } catch (e) {
        reports.push({
          scenario: name,
          backend,
          status: "failed",
          error: (e as Error).message,
          repetitions: runs,
          figures: {},
        });
        console.log(`${backend.padEnd(8)} ${name.padEnd(26)} FAILED: ${(e as Error).message}`);
      }
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
