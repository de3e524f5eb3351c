/**
 * Claim cost versus table size: does claiming get slower as finished jobs pile
 * up? On each dialect it measures JobService.claim (limit 1: the promotion
 * transaction plus the claim transaction, exactly what a worker pays) on two
 * fresh databases:
 *
 *   ready-only     READY_JOBS queued jobs and nothing else
 *   with-finished  the same queued jobs plus FINISHED_ROWS finished jobs
 *
 * The finished jobs sit in the same queue as the ready ones (the worst case for
 * the (queue, …) indexes). The partial index jobs_claim_idx holds only QUEUED
 * rows, so the claim should not see them: the acceptance line is a median
 * per-claim cost within MAX_RATIO of the ready-only case. A full run exits 1
 * when a dialect's ratio is past MAX_RATIO (or a scenario fails to run); a
 * --quick run (CI smoke, 20,000 rows on a noisy machine) prints the verdict only.
 *
 * Usage: npm run bench [-- --quick]
 *   --quick  QUICK_FINISHED_ROWS finished jobs instead of FULL_FINISHED_ROWS (CI smoke run)
 *   PostgreSQL runs when JOBWIRE_BENCH_POSTGRES_URL (or JOBWIRE_TEST_POSTGRES_URL)
 *   names a loopback server; each database is a fresh schema, dropped at the end.
 *
 * Results: a table on stdout and JSON in bench/results/<UTC date>-claim-cost[-quick].json.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { JobService } from "../src/jobs/job-service.ts";
import { JobState } from "../src/jobs/states.ts";
import type { Dialect, JobStore } from "../src/store/job-store.ts";
import { migrateDatabase, openStore, parseDatabaseUrl } from "../src/store/open-store.ts";
import { sqliteDatabaseClass } from "../src/store/sqlite/driver.ts";
import { assertLoopback, RESULTS_DIR, withPg } from "./lib/common.ts";

const FULL_FINISHED_ROWS = 1_000_000;
const QUICK_FINISHED_ROWS = 20_000;
const READY_JOBS = 1_000;
const REPETITIONS = 3;
const MAX_RATIO = 2;
/** Claims before the first measured repetition: statement preparation, pool and page cache warm-up. */
const WARMUP_CLAIMS = 20;
const QUEUE = "bench";
const WORKER_ID = "bench-worker";
/** Rows per fill statement (PostgreSQL) and per progress line (both). */
const FILL_BATCH = 100_000;
/** Hard stop for the whole run, so a hung database cannot keep CI waiting. */
const TIME_LIMIT_MS = { full: 45 * 60_000, quick: 10 * 60_000 };

const FINISHED_STATES = [JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED] as const;
const UNFINISHED_STATES = [JobState.SCHEDULED, JobState.QUEUED, JobState.RUNNING] as const;

type CaseName = "ready-only" | "with-finished";

interface Spread {
  median: number;
  min: number;
  max: number;
}

interface RepetitionFigures {
  medianMs: number;
  p95Ms: number;
  minMs: number;
  maxMs: number;
  totalMs: number;
}

interface CaseFigures {
  case: CaseName;
  finishedRows: number;
  readyJobs: number;
  repetitions: RepetitionFigures[];
  /** Across repetitions: the median, min and max of each repetition's figure. */
  medianMs: Spread;
  p95Ms: Spread;
  totalMs: Spread;
}

type DialectReport =
  | { dialect: Dialect; status: "skipped"; reason: string }
  | { dialect: Dialect; status: "error"; error: string }
  | {
      dialect: Dialect;
      status: "ok";
      fillSeconds: number;
      readyOnly: CaseFigures;
      withFinished: CaseFigures;
      /** with-finished / ready-only, on the median per-claim latency. */
      ratio: number;
      /** The same on the total time of a repetition's claims (for reference). */
      totalRatio: number;
      verdict: "PASS" | "FAIL";
    };

/** One fresh database plus a side connection for the set-up SQL the store has no API for. */
interface BenchDatabase {
  readonly url: string;
  /** Bulk-inserts `count` finished jobs into QUEUE; `onProgress` after every FILL_BATCH rows. */
  fillFinished(count: number, onProgress: (done: number) => void): Promise<void>;
  /** Refreshes planner statistics (and on PostgreSQL the visibility map) after the bulk load. */
  analyze(): Promise<void>;
  /** Deletes every unfinished job and, by cascade, its events: back to the finished rows only. */
  clearUnfinished(): Promise<void>;
  countByState(): Promise<Map<string, number>>;
  dispose(): Promise<void>;
}

/** Temp folders and schemas not yet removed, named by the watchdog if the run is cut short. */
const leftovers = new Set<string>();
const startedAt = new Date();

function log(message: string): void {
  const seconds = ((Date.now() - startedAt.getTime()) / 1000).toFixed(1).padStart(7);
  console.log(`[${seconds}s] ${message}`);
}

const count = (n: number): string => n.toLocaleString("en-US");

// ---- finished rows ------------------------------------------------------------
//
// Row i of the fill (0-based), identical on both dialects: state by i % 10 —
// 8 SUCCEEDED, 1 FAILED, 1 CANCELLED (never started) — created one second apart
// ending a second before the run, finished 60 ms after creation, small JSON
// payload. No job_events rows: the claim never reads other jobs' events, and the
// events it writes append at the right edge of both event indexes, so a million
// more events would only lengthen the fill. last_seq is 0 to match.

function finishedState(i: number): (typeof FINISHED_STATES)[number] {
  const k = i % 10;
  return k < 8 ? JobState.SUCCEEDED : k === 8 ? JobState.FAILED : JobState.CANCELLED;
}

/** Creation time of finished row 0, so that row count-1 is created a second before now. */
function fillBase(rows: number): Date {
  return new Date(Date.now() - (rows + 1) * 1000);
}

const FAILURE_MESSAGE = "bench: simulated failure";
const FAILURE_CODE = "BENCH";
const FIXED_BACKOFF = JSON.stringify({ type: "fixed", delayMs: 1000 });

// ---- SQLite -------------------------------------------------------------------

/** How the SQLite adapter writes a DateTime (see a row written through the store). */
function sqliteDate(date: Date): string {
  return date.toISOString().replace("Z", "+00:00");
}

async function createSqliteDatabase(dir: string, name: string): Promise<BenchDatabase> {
  const filePath = join(dir, `${name}.db`);
  const url = `file:${filePath}`;
  // The store's own migration code; the store itself is opened after the fill
  // and ANALYZE, because a SQLite connection reads sqlite_stat1 only when it
  // loads the schema, and ANALYZE on another connection does not make it reload.
  await migrateDatabase(parseDatabaseUrl(url));
  const side = new (sqliteDatabaseClass())(filePath, { timeout: 30_000 });
  side.pragma("journal_mode = WAL"); // already set by the migration; the store uses WAL too
  side.pragma("foreign_keys = ON"); // clearUnfinished relies on ON DELETE CASCADE for events

  return {
    url,
    async fillFinished(rows, onProgress) {
      // Set-up data: no fsync per page; the single transaction commits once.
      side.pragma("synchronous = OFF");
      const insert = side.prepare(`
        INSERT INTO "jobs" ("queue", "state", "payload", "result", "error_message", "error_code", "priority",
          "run_at", "attempts", "max_attempts", "backoff", "worker_id", "tags", "last_seq",
          "created_at", "started_at", "finished_at", "updated_at")
        VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, 3, ?, ?, '[]', 0, ?, ?, ?, ?)`);
      const base = fillBase(rows).getTime();
      side.transaction(() => {
        for (let i = 0; i < rows; i++) {
          const state = finishedState(i);
          const created = base + i * 1000;
          const createdAt = sqliteDate(new Date(created));
          const finishedAt = sqliteDate(new Date(created + 60));
          const ran = state !== JobState.CANCELLED;
          insert.run(
            QUEUE,
            state,
            JSON.stringify({ n: i }),
            state === JobState.SUCCEEDED ? JSON.stringify({ ok: true }) : null,
            state === JobState.FAILED ? FAILURE_MESSAGE : null,
            state === JobState.FAILED ? FAILURE_CODE : null,
            createdAt,
            state === JobState.SUCCEEDED ? 1 : state === JobState.FAILED ? 3 : 0,
            FIXED_BACKOFF,
            ran ? WORKER_ID : null,
            createdAt,
            ran ? sqliteDate(new Date(created + 10)) : null,
            finishedAt,
            finishedAt,
          );
          if ((i + 1) % FILL_BATCH === 0 || i + 1 === rows) onProgress(i + 1);
        }
      })();
      side.pragma("synchronous = FULL");
      // Fold the ~GB of WAL into the database now rather than in the first measured commit.
      side.pragma("wal_checkpoint(TRUNCATE)");
    },
    async analyze() {
      side.exec("ANALYZE");
    },
    async clearUnfinished() {
      side
        .prepare(`DELETE FROM "jobs" WHERE "state" IN (${UNFINISHED_STATES.map(() => "?").join(", ")})`)
        .run(...UNFINISHED_STATES);
    },
    async countByState() {
      const rows = side.prepare(`SELECT "state", count(*) AS "n" FROM "jobs" GROUP BY "state"`).all() as {
        state: string;
        n: number;
      }[];
      return new Map(rows.map((r) => [r.state, r.n]));
    },
    async dispose() {
      side.close();
    },
  };
}

function sqliteVersion(): string {
  const db = new (sqliteDatabaseClass())(":memory:");
  try {
    return String(db.prepare("SELECT sqlite_version()").pluck().get());
  } finally {
    db.close();
  }
}

// ---- PostgreSQL ---------------------------------------------------------------

async function createPostgresDatabase(serverUrl: string, name: string): Promise<BenchDatabase> {
  const schema = `jw_bench_${process.pid}_${Date.now().toString(36)}_${name.replace(/-/g, "_")}`;
  await withPg(serverUrl, (c) => c.query(`CREATE SCHEMA "${schema}"`));
  leftovers.add(`PostgreSQL schema ${schema}`);
  const drop = async (): Promise<void> => {
    await withPg(serverUrl, (c) => c.query(`DROP SCHEMA "${schema}" CASCADE`));
    leftovers.delete(`PostgreSQL schema ${schema}`);
  };
  // Same addressing as test/helpers/backends.ts: every connection of the store
  // (and ours) lands in the fresh schema through search_path.
  const u = new URL(serverUrl);
  u.searchParams.set("options", `-c search_path=${schema}`);
  const url = u.toString();
  let side: pg.Client;
  try {
    await migrateDatabase(parseDatabaseUrl(url));
    side = new pg.Client({ connectionString: url });
    await side.connect();
  } catch (error) {
    await drop();
    throw error;
  }

  return {
    url,
    async fillFinished(rows, onProgress) {
      // Generated server-side: a batch is one statement, no rows cross the wire.
      // $4 is row 0's creation time as a UTC wall-clock timestamp, which is how
      // the store's adapter writes TIMESTAMP(3) columns.
      const base = fillBase(rows).toISOString().replace("T", " ").replace("Z", "");
      for (let from = 0; from < rows; from += FILL_BATCH) {
        const to = Math.min(from + FILL_BATCH, rows) - 1;
        await side.query(
          `INSERT INTO "jobs" ("queue", "state", "payload", "result", "error_message", "error_code", "priority",
             "run_at", "attempts", "max_attempts", "backoff", "worker_id", "tags", "last_seq",
             "created_at", "started_at", "finished_at", "updated_at")
           SELECT $1, s.state, jsonb_build_object('n', g.i),
             CASE WHEN s.state = $5 THEN '{"ok":true}'::jsonb END,
             CASE WHEN s.state = $6 THEN $8 END,
             CASE WHEN s.state = $6 THEN $9 END,
             0, t.at, CASE s.state WHEN $5 THEN 1 WHEN $6 THEN 3 ELSE 0 END, 3, $10::jsonb,
             CASE WHEN s.state <> $7 THEN $11 END, '[]'::jsonb, 0,
             t.at, CASE WHEN s.state <> $7 THEN t.at + interval '10 ms' END,
             t.at + interval '60 ms', t.at + interval '60 ms'
           FROM generate_series($2::int, $3::int) AS g(i)
           CROSS JOIN LATERAL (
             SELECT CASE WHEN g.i % 10 < 8 THEN $5 WHEN g.i % 10 = 8 THEN $6 ELSE $7 END AS state) s
           CROSS JOIN LATERAL (SELECT $4::timestamp + g.i * interval '1 second' AS at) t`,
          [
            QUEUE,
            from,
            to,
            base,
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.CANCELLED,
            FAILURE_MESSAGE,
            FAILURE_CODE,
            FIXED_BACKOFF,
            WORKER_ID,
          ],
        );
        onProgress(to + 1);
      }
    },
    async analyze() {
      // VACUUM too: a freshly bulk-loaded table has no visibility map and unset
      // hint bits, which autovacuum would fix in production before long.
      await side.query(`VACUUM (ANALYZE) "jobs", "job_events"`);
    },
    async clearUnfinished() {
      await side.query(`DELETE FROM "jobs" WHERE "state" = ANY($1::text[])`, [[...UNFINISHED_STATES]]);
      // Every repetition starts from the same physical state: no dead rows or
      // dead jobs_claim_idx entries left by the previous repetition's claims.
      await side.query(`VACUUM "jobs", "job_events"`);
    },
    async countByState() {
      const { rows } = await side.query<{ state: string; n: string }>(
        `SELECT "state", count(*) AS "n" FROM "jobs" GROUP BY "state"`,
      );
      return new Map(rows.map((r) => [r.state, Number(r.n)]));
    },
    async dispose() {
      await side.end();
      await drop();
    },
  };
}

// ---- measurement --------------------------------------------------------------

function median(sorted: readonly number[]): number {
  const mid = sorted.length >> 1;
  const hi = sorted[mid];
  const lo = sorted[sorted.length % 2 === 0 ? mid - 1 : mid];
  if (hi === undefined || lo === undefined) throw new Error("median of no values");
  return (lo + hi) / 2;
}

/** Nearest-rank percentile of an ascending list. */
function percentile(sorted: readonly number[], p: number): number {
  const value = sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
  if (value === undefined) throw new Error("percentile of no values");
  return value;
}

function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: median(sorted), min: sorted[0] ?? NaN, max: sorted.at(-1) ?? NaN };
}

function figures(samples: readonly number[]): RepetitionFigures {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    medianMs: median(sorted),
    p95Ms: percentile(sorted, 95),
    minMs: sorted[0] ?? NaN,
    maxMs: sorted.at(-1) ?? NaN,
    totalMs: samples.reduce((sum, s) => sum + s, 0),
  };
}

async function enqueueReady(service: JobService, n: number): Promise<void> {
  await service.enqueueMany(Array.from({ length: n }, (_, i) => ({ queue: QUEUE, payload: { ready: i } })));
}

/** Claims the queue dry one job at a time; returns each claim's latency in ms. */
async function claimAll(service: JobService, n: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const jobs = await service.claim({ queues: [QUEUE], workerId: WORKER_ID, limit: 1 });
    samples.push(performance.now() - t0);
    if (jobs.length !== 1) throw new Error(`claim ${i + 1} of ${n} returned ${jobs.length} jobs, expected 1`);
  }
  // Not timed: proves every ready job was claimed exactly once and none is left.
  const extra = await service.claim({ queues: [QUEUE], workerId: WORKER_ID, limit: 1 });
  if (extra.length !== 0) throw new Error(`the queue still had a job after ${n} claims`);
  return samples;
}

interface Scenario {
  name: CaseName;
  finishedRows: number;
  db: BenchDatabase;
  service?: JobService;
  samples: RepetitionFigures[];
}

async function checkRows(dialect: Dialect, s: Scenario): Promise<void> {
  const byState = await s.db.countByState();
  const finished = FINISHED_STATES.reduce((sum, state) => sum + (byState.get(state) ?? 0), 0);
  const queued = byState.get(JobState.QUEUED) ?? 0;
  const total = [...byState.values()].reduce((sum, n) => sum + n, 0);
  if (finished !== s.finishedRows || queued !== READY_JOBS || total !== finished + queued) {
    throw new Error(
      `${dialect}/${s.name}: expected ${s.finishedRows} finished + ${READY_JOBS} queued jobs, ` +
        `found ${JSON.stringify(Object.fromEntries(byState))}`,
    );
  }
}

async function runDialect(
  dialect: Dialect,
  create: (name: CaseName) => Promise<BenchDatabase>,
  finishedRows: number,
): Promise<DialectReport> {
  const scenarios: Scenario[] = [];
  const stores: JobStore[] = [];
  try {
    for (const [name, rows] of [
      ["ready-only", 0],
      ["with-finished", finishedRows],
    ] as const) {
      scenarios.push({ name, finishedRows: rows, db: await create(name), samples: [] });
    }
    const [readyOnly, withFinished] = scenarios as [Scenario, Scenario];

    log(`${dialect}: filling ${count(finishedRows)} finished jobs`);
    const fillStart = performance.now();
    await withFinished.db.fillFinished(finishedRows, (done) => {
      const seconds = (performance.now() - fillStart) / 1000;
      log(`${dialect}:   ${count(done).padStart(9)} rows  (${count(Math.round(done / seconds))} rows/s)`);
    });
    const fillSeconds = (performance.now() - fillStart) / 1000;
    log(`${dialect}: ANALYZE`);
    for (const s of scenarios) await s.db.analyze();

    for (const s of scenarios) {
      const store = await openStore(s.db.url);
      stores.push(store);
      s.service = new JobService(store);
      await enqueueReady(s.service, WARMUP_CLAIMS);
      await claimAll(s.service, WARMUP_CLAIMS);
    }

    for (let rep = 1; rep <= REPETITIONS; rep++) {
      // Alternate the order so drift (cache, autovacuum, CPU clock) does not favour one case.
      const order = rep % 2 === 1 ? [readyOnly, withFinished] : [withFinished, readyOnly];
      for (const s of order) {
        if (!s.service) throw new Error("scenario has no service");
        await s.db.clearUnfinished();
        await enqueueReady(s.service, READY_JOBS);
        await checkRows(dialect, s);
        const f = figures(await claimAll(s.service, READY_JOBS));
        s.samples.push(f);
        log(
          `${dialect}: repetition ${rep}/${REPETITIONS} ${s.name.padEnd(13)} ` +
            `median ${f.medianMs.toFixed(3)} ms  p95 ${f.p95Ms.toFixed(3)} ms  total ${(f.totalMs / 1000).toFixed(2)} s`,
        );
      }
    }

    const summarize = (s: Scenario): CaseFigures => ({
      case: s.name,
      finishedRows: s.finishedRows,
      readyJobs: READY_JOBS,
      repetitions: s.samples,
      medianMs: spread(s.samples.map((f) => f.medianMs)),
      p95Ms: spread(s.samples.map((f) => f.p95Ms)),
      totalMs: spread(s.samples.map((f) => f.totalMs)),
    });
    const a = summarize(readyOnly);
    const b = summarize(withFinished);
    const ratio = b.medianMs.median / a.medianMs.median;
    return {
      dialect,
      status: "ok",
      fillSeconds,
      readyOnly: a,
      withFinished: b,
      ratio,
      totalRatio: b.totalMs.median / a.totalMs.median,
      verdict: ratio <= MAX_RATIO ? "PASS" : "FAIL",
    };
  } finally {
    // Close the stores before dropping what they point at; report every failure.
    const results = await Promise.allSettled(stores.map((s) => s.close()));
    for (const s of scenarios) results.push(...(await Promise.allSettled([s.db.dispose()])));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    // Reported, not thrown: a throw here would replace the figures (or the real error).
    for (const f of failed) console.error(`${dialect}: cleanup failed: ${String(f.reason)}`);
  }
}

// ---- report -------------------------------------------------------------------

function printTable(reports: readonly DialectReport[]): void {
  const header = ["dialect", "case", "finished rows", "per-claim median ms", "p95 ms", "1000 claims s"];
  const rows: string[][] = [];
  const range = (s: Spread, scale: number, digits: number): string =>
    `${(s.median / scale).toFixed(digits)} (${(s.min / scale).toFixed(digits)}–${(s.max / scale).toFixed(digits)})`;
  for (const r of reports) {
    if (r.status !== "ok") continue;
    for (const c of [r.readyOnly, r.withFinished]) {
      rows.push([
        r.dialect,
        c.case,
        count(c.finishedRows),
        range(c.medianMs, 1, 3),
        range(c.p95Ms, 1, 3),
        range(c.totalMs, 1000, 2),
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (i >= 2 ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0))).join("  ");
  console.log();
  console.log(
    `median of ${REPETITIONS} repetitions (min–max); each repetition claims ${READY_JOBS} jobs one at a time`,
  );
  console.log(line(header));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const row of rows) console.log(line(row));
  console.log();
  for (const r of reports) {
    if (r.status === "ok") {
      console.log(
        `${r.dialect}: ratio ${r.ratio.toFixed(2)}x (total ${r.totalRatio.toFixed(2)}x) → ${r.verdict} (limit ${MAX_RATIO}x)`,
      );
    } else if (r.status === "skipped") {
      console.log(`${r.dialect}: SKIPPED — ${r.reason}`);
    } else {
      console.log(`${r.dialect}: ERROR — ${r.error}`);
    }
  }
}

function writeResults(quick: boolean, body: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const day = startedAt.toISOString().slice(0, 10);
  const path = join(RESULTS_DIR, `${day}-claim-cost${quick ? "-quick" : ""}.json`);
  // Write-then-rename: an interrupted run never leaves a half-written result (*.tmp is git-ignored).
  writeFileSync(`${path}.tmp`, `${JSON.stringify(body, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
  return path;
}

// ---- main ---------------------------------------------------------------------

function parseArgs(argv: readonly string[]): { quick: boolean } {
  let quick = false;
  for (const arg of argv) {
    if (arg === "--quick") quick = true;
    else throw new Error(`unknown argument ${arg} (usage: npm run bench [-- --quick])`);
  }
  return { quick };
}

async function main(): Promise<number> {
  const { quick } = parseArgs(process.argv.slice(2));
  const finishedRows = quick ? QUICK_FINISHED_ROWS : FULL_FINISHED_ROWS;
  const postgresUrl = process.env.JOBWIRE_BENCH_POSTGRES_URL || process.env.JOBWIRE_TEST_POSTGRES_URL || "";

  const limitMs = quick ? TIME_LIMIT_MS.quick : TIME_LIMIT_MS.full;
  setTimeout(() => {
    console.error(`claim-cost: gave up after ${limitMs / 60_000} minutes`);
    for (const item of leftovers) console.error(`  left behind: ${item}`);
    process.exit(2);
  }, limitMs).unref();

  log(
    `claim-cost${quick ? " --quick" : ""}: ${count(finishedRows)} finished + ${count(READY_JOBS)} ready jobs ` +
      `vs ${count(READY_JOBS)} ready jobs, ${REPETITIONS} repetitions`,
  );
  if (!postgresUrl) {
    log("PostgreSQL: SKIPPED (set JOBWIRE_BENCH_POSTGRES_URL or JOBWIRE_TEST_POSTGRES_URL to include it)");
  }

  const machine: Record<string, string | number | null> = {
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? null,
    totalMemoryBytes: os.totalmem(),
    node: process.version,
    sqlite: sqliteVersion(),
    postgres: null,
  };

  const reports: DialectReport[] = [];
  const sqliteDir = mkdtempSync(join(os.tmpdir(), "jobwire-bench-"));
  leftovers.add(`folder ${sqliteDir}`);
  try {
    reports.push(await runDialect("sqlite", (name) => createSqliteDatabase(sqliteDir, name), finishedRows));
  } catch (error) {
    reports.push({ dialect: "sqlite", status: "error", error: describe(error) });
    console.error(error);
  } finally {
    rmSync(sqliteDir, { recursive: true, force: true });
    leftovers.delete(`folder ${sqliteDir}`);
  }

  if (!postgresUrl) {
    reports.push({
      dialect: "postgres",
      status: "skipped",
      reason: "neither JOBWIRE_BENCH_POSTGRES_URL nor JOBWIRE_TEST_POSTGRES_URL is set",
    });
  } else {
    try {
      assertLoopback(postgresUrl); // it writes a million rows and drops schemas: only ever on this machine
      machine.postgres = await withPg(postgresUrl, async (c) =>
        String((await c.query<{ server_version: string }>("SHOW server_version")).rows[0]?.server_version),
      );
      reports.push(await runDialect("postgres", (name) => createPostgresDatabase(postgresUrl, name), finishedRows));
    } catch (error) {
      reports.push({ dialect: "postgres", status: "error", error: describe(error) });
      console.error(error);
    }
  }

  const finishedAt = new Date();
  const path = writeResults(quick, {
    benchmark: "claim-cost",
    mode: quick ? "quick" : "full",
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationSeconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
    config: {
      finishedRows,
      readyJobs: READY_JOBS,
      repetitions: REPETITIONS,
      warmupClaims: WARMUP_CLAIMS,
      claimLimit: 1,
      maxRatio: MAX_RATIO,
      measured: "JobService.claim latency (promoteDueJobs + claimJobs), one job per call, same queue",
      finishedMix: "80% SUCCEEDED, 10% FAILED, 10% CANCELLED; no job_events rows",
    },
    machine,
    results: reports,
  });

  printTable(reports);
  console.log();
  log(`done; results in ${path}`);
  if (reports.some((r) => r.status === "error")) return 1;
  const failed = reports.filter((r) => r.status === "ok" && r.verdict === "FAIL");
  if (failed.length > 0 && !quick) {
    log(`claim cost grew past ${MAX_RATIO}x on ${failed.map((r) => r.dialect).join(", ")}`);
    return 1;
  }
  return 0;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
