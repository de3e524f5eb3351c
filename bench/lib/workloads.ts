/**
 * The workloads every queue is measured on, jobwire and its peers alike
 * (bench/throughput.ts, bench/peers/runner.ts): the sizes, the timed enqueue
 * loop, the paced pickup probe, PostgreSQL WAL accounting, and the
 * one-repetition-per-child-process runner with its summary. Nothing here
 * imports jobwire, so a peer's process loads only the peer.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { nowMs, percentile, spread, withPg } from "./common.ts";
import type { Spread } from "./common.ts";

export const SIZES = {
  full: { jobs: 10_000, pickup: 1_000 },
  quick: { jobs: 1_000, pickup: 100 },
};
export const REPETITIONS = 3;
export const CONCURRENT_CLIENTS = 10;
export const BULK = 1_000;
export const PICKUP_RATE_PER_S = 200;
export const QUEUE = "bench";
/** A scenario process that takes longer than this is killed and reported as failed. */
export const SCENARIO_TIMEOUT_MS = 5 * 60_000;

export const size = (quick: boolean) => (quick ? SIZES.quick : SIZES.full);

export interface BenchJob {
  queue: string;
  payload?: { i: number };
}

/** What one run of a scenario measured: named figures, and the (server or worker) process's peak RSS. */
export interface RunFigures {
  figures: Record<string, number>;
  serverPeakRssMiB: number;
}

/** `n` jobs for QUEUE in calls of BULK, one call after another. */
export async function enqueueInBulk(n: number, many: (jobs: BenchJob[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n; i += BULK) {
    await many(Array.from({ length: Math.min(BULK, n - i) }, (_, k) => ({ queue: QUEUE, payload: { i: i + k } })));
  }
}

/**
 * Warms up with 50 single enqueues, then enqueues `n` jobs: in calls of BULK
 * one after another, or one per call from CONCURRENT_CLIENTS callers at once
 * (each awaiting its call before the next). Seconds taken by the `n`.
 */
export async function timedEnqueue(
  n: number,
  bulk: boolean,
  one: (job: BenchJob) => Promise<unknown>,
  many: (jobs: BenchJob[]) => Promise<unknown>,
): Promise<number> {
  for (let i = 0; i < 50; i++) await one({ queue: "warmup" });
  const started = nowMs();
  if (bulk) await enqueueInBulk(n, many);
  else {
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

/**
 * Enqueues `count` jobs at PICKUP_RATE_PER_S through `enqueue` (which resolves
 * with the job's id once the enqueue is acknowledged) while `started` collects
 * handler start times; returns per-job latencies (handler start −
 * acknowledgement, and handler start − the moment the enqueue was sent).
 */
export async function pickup(
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

// ---- PostgreSQL WAL -------------------------------------------------------------------

let walSchemas = 0;

/**
 * Starts counting the WAL the server writes; the returned function gives the
 * bytes (pg_current_wal_lsn() difference) and, where the pg_walinspect
 * extension can be created (contrib, PostgreSQL 15+, superuser), the records
 * per job for `jobs` jobs. (pg_stat_wal is no substitute: an idle backend adds
 * its counts to it only up to 10 s later.) Both are server-wide: whatever else
 * runs on the server in between counts too, so the minimum over repetitions is
 * the cleanest figure. The extension lives in a schema of its own, dropped
 * when the count is read.
 */
export async function countWal(url: string): Promise<(jobs: number) => Promise<Record<string, number>>> {
  const schema = `jobwire_bench_wal_${process.pid}_${walSchemas++}`;
  const inspect = await withPg(url, async (c) => {
    try {
      await c.query(`CREATE SCHEMA "${schema}"`);
      await c.query(`CREATE EXTENSION IF NOT EXISTS pg_walinspect WITH SCHEMA "${schema}"`);
      const r = await c.query<{ s: string }>(
        "SELECT n.nspname AS s FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_walinspect'",
      );
      return r.rows[0]?.s ?? null;
    } catch {
      return null;
    }
  });
  const before = await withPg(url, (c) => c.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn"));
  const from = before.rows[0]?.lsn as string;
  return (jobs) =>
    withPg(url, async (c) => {
      const to = (await c.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn")).rows[0]?.lsn as string;
      const bytes = await c.query<{ d: string }>("SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::text AS d", [
        to,
        from,
      ]);
      const figures: Record<string, number> = { walBytesPerJob: Number(bytes.rows[0]?.d) / jobs };
      if (inspect) {
        // The extension may have gone meanwhile (someone else's schema it was
        // found in was dropped): then the bytes alone.
        const records = await c
          .query<{ n: string }>(
            `SELECT sum(count)::text AS n FROM "${inspect}".pg_get_wal_stats($1::pg_lsn, $2::pg_lsn)`,
            [from, to],
          )
          .catch(() => null);
        if (records) figures.walRecordsPerJob = Number(records.rows[0]?.n) / jobs;
      }
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      return figures;
    });
}

// ---- one repetition per child process ---------------------------------------------------

/**
 * Runs `args` with this Node and resolves with the RunFigures the child
 * printed on a `RESULT {json}` line (other lines are passed through); a child
 * that fails, prints no result or outlives SCENARIO_TIMEOUT_MS rejects.
 */
function runResultChild(args: string[], label: string): Promise<RunFigures> {
  return new Promise((resolve, reject) => {
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
      else reject(new Error(`${label} exited with ${code ?? signal}`));
    });
  });
}

export interface Repeated {
  status: "ok" | "failed";
  error?: string;
  repetitions: RunFigures[];
  /** Median and min–max over repetitions, per figure (and serverPeakRssMiB). */
  figures: Record<string, Spread>;
}

/**
 * `repetitions` runs of `args` (runResultChild), summarised, with one line of
 * progress led by `label`: the `primary` figure and the peak RSS, or why it failed.
 */
export async function repeatChild(
  label: string,
  args: string[],
  repetitions: number,
  primary: string,
  unit: string,
): Promise<Repeated> {
  const runs: RunFigures[] = [];
  const startedAt = Date.now();
  try {
    for (let r = 0; r < repetitions; r++) runs.push(await runResultChild(args, label.trim()));
    const figures = summarise(runs);
    console.log(
      `${label} ${formatSpread(figures[primary], unit).padEnd(34)} ` +
        `peak RSS ${formatSpread(figures.serverPeakRssMiB, "MiB")}  [${((Date.now() - startedAt) / 1000).toFixed(0)} s]`,
    );
    return { status: "ok", repetitions: runs, figures };
  } catch (e) {
    console.log(`${label} FAILED: ${(e as Error).message}`);
    return { status: "failed", error: (e as Error).message, repetitions: runs, figures: {} };
  }
}

/** Median and min–max over repetitions, per figure and for serverPeakRssMiB. */
function summarise(runs: RunFigures[]): Record<string, Spread> {
  const out: Record<string, Spread> = {};
  for (const key of Object.keys(runs[0]?.figures ?? {})) out[key] = spread(runs.map((r) => r.figures[key] as number));
  out.serverPeakRssMiB = spread(runs.map((r) => r.serverPeakRssMiB));
  return out;
}

function formatSpread(s: Spread | undefined, unit: string): string {
  if (!s) return "-";
  const digits = unit === "ms" ? 2 : 0;
  const f = (x: number) => x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
  return `${f(s.median)} ${unit} (${f(s.min)}–${f(s.max)})`;
}
