/**
 * What the benchmarks share: the PostgreSQL URL (loopback only), fresh
 * databases, a `jobwire serve` child process with its memory figures, machine
 * facts, and the statistics every scenario reports (median and min–max over
 * repetitions; percentiles over samples).
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import pg from "pg";

export type Backend = "sqlite" | "postgres";

/** The repository root: the benchmarks run from bench/ (tsx) or compiled from dist/bench/ (run.ts). */
export const ROOT = (() => {
  const start = fileURLToPath(new URL(".", import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "bin", "jobwire.js")) && existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) throw new Error(`no jobwire checkout above ${start}`);
  }
})();
export const RESULTS_DIR = join(ROOT, "bench", "results");
const BIN = join(ROOT, "bin", "jobwire.js");

/**
 * How to run a sibling script of the calling module (`name` without
 * extension): compiled with plain node when the caller is compiled, else
 * through tsx.
 */
export function scriptCommand(callerUrl: string, name: string): string[] {
  const compiled = callerUrl.endsWith(".js");
  const path = fileURLToPath(new URL(`./${name}${compiled ? ".js" : ".ts"}`, callerUrl));
  return compiled ? [path] : ["--import", "tsx", path];
}
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** Throws unless `url` names a PostgreSQL on this machine: benchmarks talk only to loopback. */
export function assertLoopback(url: string): void {
  const u = new URL(url);
  // `?host=` would override the authority (a socket path or another server).
  if (!LOOPBACK_HOSTS.has(u.hostname) || u.searchParams.has("host")) {
    throw new Error(`refusing to run against ${u.host || url}: the benchmark only talks to 127.0.0.1`);
  }
}

/** The PostgreSQL server to benchmark on, or null; refuses anything but loopback. */
export function postgresUrl(): string | null {
  const url = process.env.JOBWIRE_BENCH_POSTGRES_URL || process.env.JOBWIRE_TEST_POSTGRES_URL || "";
  if (!url) return null;
  assertLoopback(url);
  return url;
}

export function backends(): Backend[] {
  return postgresUrl() ? ["sqlite", "postgres"] : ["sqlite"];
}

export interface FreshDatabase {
  backend: Backend;
  url: string;
  dispose(): Promise<void>;
}

let counter = 0;

/** A new SQLite file in a temp folder, or a new schema on the PostgreSQL server; dispose() drops it. */
export async function freshDatabase(backend: Backend): Promise<FreshDatabase> {
  if (backend === "sqlite") {
    const dir = mkdtempSync(join(os.tmpdir(), "jobwire-bench-"));
    return {
      backend,
      url: `file:${join(dir, "jobwire.db")}`,
      dispose: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const base = postgresUrl();
  if (!base) throw new Error("no PostgreSQL URL (JOBWIRE_BENCH_POSTGRES_URL or JOBWIRE_TEST_POSTGRES_URL)");
  const schema = `jw_bench_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  await withPg(base, (c) => c.query(`CREATE SCHEMA "${schema}"`));
  const u = new URL(base);
  u.searchParams.set("options", `-c search_path=${schema}`);
  return {
    backend,
    url: u.toString(),
    dispose: () => withPg(base, (c) => c.query(`DROP SCHEMA "${schema}" CASCADE`)).then(() => undefined),
  };
}

export async function withPg<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A process's resident memory (VmRSS) and its peak (VmHWM), in MiB, from /proc. */
export function memoryMiB(pid: number = process.pid): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)\\s+kB`).exec(status)?.[1] ?? Number.NaN);
  return { rss: round1(kb("VmRSS") / 1024), peak: round1(kb("VmHWM") / 1024) };
}

export interface ServeChild {
  child: ChildProcess;
  url: string;
  pid: number;
  stop(): Promise<number | null>;
}

/** `jobwire serve` on `databaseUrl`, port 0, JSON logs; resolves once it listens. */
export async function startServe(databaseUrl: string, extraArgs: string[] = []): Promise<ServeChild> {
  const cwd = mkdtempSync(join(os.tmpdir(), "jobwire-bench-serve-"));
  // JOBWIRE_BENCH_SERVER_NODE_ARGS: extra node flags for the server, e.g.
  // "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it under a scenario.
  const nodeArgs = (process.env.JOBWIRE_BENCH_SERVER_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const child = spawn(
    process.execPath,
    [...nodeArgs, BIN, "serve", "--port", "0", "--database", databaseUrl, "--log-format", "json", ...extraArgs],
    { cwd, stdio: ["ignore", "pipe", "inherit"] },
  );
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("jobwire serve did not listen within 30 s")), 30_000);
    void exited.then((code) => reject(new Error(`jobwire serve exited with ${code} before listening`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg?.startsWith("jobwire listening on ") && entry.url) {
          clearTimeout(timer);
          resolve(entry.url);
        }
      } catch {
        // not a log line
      }
    });
  });
  return {
    child,
    url,
    pid: child.pid as number,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const code = await exited;
      rmSync(cwd, { recursive: true, force: true });
      return code;
    },
  };
}

/** Wall-clock time in ms with sub-ms precision, comparable across processes of this machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: round3(median(sorted)),
    min: round3(sorted[0] ?? Number.NaN),
    max: round3(sorted.at(-1) ?? Number.NaN),
  };
}

export function median(sorted: readonly number[]): number {
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Nearest-rank percentile of ascending `sorted`. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

export function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** The machine and software the figures were measured on. */
export async function machineFacts(): Promise<Record<string, unknown>> {
  const cpus = os.cpus();
  const facts: Record<string, unknown> = {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? "unknown",
    memoryGiB: round1(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.release()}`,
    node: process.version,
    // Other work on the machine skews every figure; the 1, 5 and 15 minute load averages at the end of the run.
    loadAverage: os.loadavg().map(round1),
  };
  try {
    const { sqliteDatabaseClass } = await import("../../src/store/sqlite/driver.ts");
    const Database = sqliteDatabaseClass();
    const db = new Database(":memory:");
    facts.sqlite = (db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v;
    db.close();
  } catch (e) {
    facts.sqlite = `unknown (${(e as Error).message})`;
  }
  const pgUrl = postgresUrl();
  if (pgUrl) {
    facts.postgres = await withPg(pgUrl, async (c) => {
      // SHOW names its column after the setting; current_setting() can be aliased.
      const setting = async (name: string) =>
        (await c.query<{ v: string }>("SELECT current_setting($1) AS v", [name])).rows[0]?.v ?? "unknown";
      const version = await setting("server_version");
      const fsync = await setting("fsync");
      const commit = await setting("synchronous_commit");
      return { version, fsync, synchronousCommit: commit };
    });
  }
  return facts;
}
