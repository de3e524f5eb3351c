/**
 * Subscription fan-out: one server, many subscribers, one transition at a
 * time. A real `jobwire serve` child process (its own RSS is what we read)
 * serves SUBSCRIBERS graphql-ws connections from this process, each with one
 * `jobChanged(filter: {queues: ["fanout"]})` subscription. Each round enqueues
 * one job over HTTP and waits until every subscriber has its ENQUEUED event.
 *
 *   latency  per (subscriber, event): arrival − the moment the enqueue request
 *            was sent (so it includes the mutation's own round trip); p50, p99,
 *            max over all deliveries
 *   rss      the server's VmRSS (/proc/<pid>/status): before the subscribers
 *            connect, with all of them connected after the rounds, and after
 *            they disconnected
 *
 * The subscribers run in this process, on the same 2 cores as the server, so
 * latencies include client-side work for 1,000 sockets. The run fails (exit 1)
 * unless every subscriber received every event exactly once.
 *
 * Usage: npx tsx bench/fanout.ts [--quick]   (or npm run bench, which runs every benchmark)
 *   --quick  QUICK subscribers and rounds instead of FULL (CI smoke)
 *   PostgreSQL too when JOBWIRE_BENCH_POSTGRES_URL (or JOBWIRE_TEST_POSTGRES_URL) names a
 *   loopback server; it gets a fresh schema, dropped at the end.
 *
 * Results: a table on stdout and JSON in bench/results/<UTC date>-fanout[-quick].json.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createClient } from "graphql-ws";
import type { Client } from "graphql-ws";
import pg from "pg";
import WebSocket from "ws";

const FULL = { subscribers: 1_000, rounds: 20 };
const QUICK = { subscribers: 200, rounds: 5 };
/** Connections opened at once while connecting the subscribers. */
const CONNECT_PARALLELISM = 50;
const QUEUE = "fanout";
const TIME_LIMIT_MS = { full: 10 * 60_000, quick: 3 * 60_000 };
/** Longest wait for one round's event to reach every subscriber. */
const ROUND_TIMEOUT_MS = 30_000;
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);
const BIN = fileURLToPath(new URL("../bin/jobwire.js", import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL("./results/", import.meta.url));
const startedAt = new Date();

interface Figures {
  dialect: "sqlite" | "postgres";
  subscribers: number;
  rounds: number;
  deliveries: number;
  latencyMs: { p50: number; p99: number; max: number; mean: number };
  rssMiB: { before: number; connected: number; after: number };
  connectSeconds: number;
}

function log(message: string): void {
  console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${message}`);
}
const t0 = performance.now();

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? Number.NaN);
  return Math.round((kb / 1024) * 10) / 10;
}

/** Starts `jobwire serve` on `databaseUrl`; resolves with its URL once it logs that it listens. */
async function startServer(databaseUrl: string, cwd: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [BIN, "serve", "--port", "0", "--database", databaseUrl, "--log-format", "json", "--ws-keepalive-ms", "0"],
    { cwd, stdio: ["ignore", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the server did not start within 30 s")), 30_000);
    child.once("exit", (code) => reject(new Error(`the server exited with ${code} before listening`)));
    lines.on("line", (line) => {
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
  return { child, url };
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

async function graphql<T>(url: string, query: string, variables: Record<string, unknown>): Promise<T> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: unknown[] };
  if (body.errors || !body.data) throw new Error(`GraphQL error: ${JSON.stringify(body.errors)}`);
  return body.data;
}

interface Subscriber {
  client: Client;
  /** Arrival time (performance.now()) of each job's ENQUEUED event, by job id. */
  arrivals: Map<string, number>;
  stop: () => void;
}

async function connectSubscriber(url: string, onArrival: () => void): Promise<Subscriber> {
  const client = createClient({ url: url.replace(/^http/, "ws"), webSocketImpl: WebSocket, retryAttempts: 0 });
  const arrivals = new Map<string, number>();
  let stop: () => void = () => {};
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("connect timed out")), 30_000);
    client.on("connected", () => {
      clearTimeout(timer);
      resolve();
    });
    client.on("closed", () => reject(new Error("closed while connecting")));
    stop = client.subscribe<{ jobChanged: { jobId: string; type: string } }>(
      {
        query: "subscription ($q: [String!]) { jobChanged(filter: { queues: $q }) { jobId type } }",
        variables: { q: [QUEUE] },
      },
      {
        next: ({ data }) => {
          if (!data || data.jobChanged.type !== "ENQUEUED") return;
          if (arrivals.has(data.jobChanged.jobId)) throw new Error(`duplicate event for job ${data.jobChanged.jobId}`);
          arrivals.set(data.jobChanged.jobId, performance.now());
          onArrival();
        },
        error: (e) => console.error("subscriber error", e),
        complete: () => {},
      },
    );
  });
  return { client, arrivals, stop: () => stop() };
}

async function measure(
  dialect: "sqlite" | "postgres",
  databaseUrl: string,
  size: { subscribers: number; rounds: number },
): Promise<Figures> {
  const cwd = mkdtempSync(join(os.tmpdir(), "jobwire-fanout-"));
  const { child, url } = await startServer(databaseUrl, cwd);
  const subscribers: Subscriber[] = [];
  try {
    const pid = child.pid as number;
    const before = rssMiB(pid);
    let arrived = 0;
    let waitingFor: { n: number; resolve: () => void } | null = null;
    const onArrival = () => {
      arrived++;
      if (waitingFor && arrived >= waitingFor.n) waitingFor.resolve();
    };
    const until = (n: number, what: string) =>
      new Promise<void>((resolve, reject) => {
        if (arrived >= n) return resolve();
        const timer = setTimeout(() => reject(new Error(`${what}: ${arrived} of ${n} deliveries`)), ROUND_TIMEOUT_MS);
        waitingFor = {
          n,
          resolve: () => {
            clearTimeout(timer);
            waitingFor = null;
            resolve();
          },
        };
      });

    const connectStarted = performance.now();
    for (let i = 0; i < size.subscribers; i += CONNECT_PARALLELISM) {
      const batch = Math.min(CONNECT_PARALLELISM, size.subscribers - i);
      subscribers.push(...(await Promise.all(Array.from({ length: batch }, () => connectSubscriber(url, onArrival)))));
    }
    // A first event reaching everyone proves every subscription is registered.
    const enqueue = (n: number) =>
      graphql<{ enqueueJob: { job: { id: string } } }>(
        url,
        'mutation ($n: Int!) { enqueueJob(input: { queue: "fanout", payload: { n: $n } }) { job { id } } }',
        { n },
      );
    await enqueue(-1);
    await until(size.subscribers, "warm-up");
    const connectSeconds = (performance.now() - connectStarted) / 1000;
    log(`${dialect}: ${size.subscribers} subscribers connected and registered in ${connectSeconds.toFixed(1)} s`);

    const latencies: number[] = [];
    for (let round = 0; round < size.rounds; round++) {
      const sent = performance.now();
      const { enqueueJob } = await enqueue(round);
      await until(size.subscribers * (round + 2), `round ${round}`);
      for (const s of subscribers) {
        const at = s.arrivals.get(enqueueJob.job.id);
        if (at === undefined) throw new Error(`a subscriber missed job ${enqueueJob.job.id}`);
        latencies.push(at - sent);
      }
    }
    const connected = rssMiB(pid);
    const deliveries = arrived - size.subscribers; // minus the warm-up round
    if (deliveries !== size.subscribers * size.rounds) {
      throw new Error(`expected ${size.subscribers * size.rounds} deliveries, got ${deliveries}`);
    }
    for (const s of subscribers.splice(0)) {
      s.stop();
      await s.client.dispose();
    }
    // Let the server notice the closes and free what they held.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const after = rssMiB(pid);
    latencies.sort((a, b) => a - b);
    const round2 = (x: number) => Math.round(x * 100) / 100;
    return {
      dialect,
      subscribers: size.subscribers,
      rounds: size.rounds,
      deliveries,
      latencyMs: {
        p50: round2(percentile(latencies, 50)),
        p99: round2(percentile(latencies, 99)),
        max: round2(latencies.at(-1) ?? Number.NaN),
        mean: round2(latencies.reduce((a, b) => a + b, 0) / latencies.length),
      },
      rssMiB: { before, connected, after },
      connectSeconds: round2(connectSeconds),
    };
  } finally {
    await Promise.all(subscribers.map((s) => s.client.dispose()));
    await stopServer(child);
    rmSync(cwd, { recursive: true, force: true });
  }
}

async function withPostgresSchema<T>(serverUrl: string, fn: (url: string) => Promise<T>): Promise<T> {
  const u = new URL(serverUrl);
  if (!LOOPBACK_HOSTS.has(u.hostname) || u.searchParams.has("host")) {
    throw new Error(`refusing to run against ${u.host}: the benchmark only talks to 127.0.0.1`);
  }
  const schema = `jw_bench_fanout_${process.pid}_${Date.now().toString(36)}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: serverUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE SCHEMA "${schema}"`);
  try {
    u.searchParams.set("options", `-c search_path=${schema}`);
    return await fn(u.toString());
  } finally {
    await admin(`DROP SCHEMA "${schema}" CASCADE`);
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== "--quick");
  if (unknown.length > 0) throw new Error(`unknown argument ${unknown[0]} (usage: bench/fanout.ts [--quick])`);
  const quick = args.includes("--quick");
  const size = quick ? QUICK : FULL;
  const watchdog = setTimeout(
    () => {
      console.error(`fanout: over the ${quick ? "quick" : "full"} time limit; stopping`);
      process.exit(1);
    },
    quick ? TIME_LIMIT_MS.quick : TIME_LIMIT_MS.full,
  );
  watchdog.unref();

  const results: Figures[] = [];
  const sqliteDir = mkdtempSync(join(os.tmpdir(), "jobwire-fanout-db-"));
  try {
    results.push(await measure("sqlite", `file:${join(sqliteDir, "jobwire.db")}`, size));
  } finally {
    rmSync(sqliteDir, { recursive: true, force: true });
  }
  const pgUrl = process.env.JOBWIRE_BENCH_POSTGRES_URL || process.env.JOBWIRE_TEST_POSTGRES_URL;
  if (pgUrl) results.push(await withPostgresSchema(pgUrl, (url) => measure("postgres", url, size)));
  else log("postgres: SKIPPED (set JOBWIRE_BENCH_POSTGRES_URL or JOBWIRE_TEST_POSTGRES_URL)");

  console.log("\ndialect   subscribers  deliveries  p50 ms  p99 ms  max ms  RSS MiB before/connected/after");
  for (const r of results) {
    console.log(
      `${r.dialect.padEnd(9)} ${String(r.subscribers).padStart(11)} ${String(r.deliveries).padStart(11)} ` +
        `${r.latencyMs.p50.toFixed(1).padStart(7)} ${r.latencyMs.p99.toFixed(1).padStart(7)} ${r.latencyMs.max.toFixed(1).padStart(7)}` +
        `  ${r.rssMiB.before} / ${r.rssMiB.connected} / ${r.rssMiB.after}`,
    );
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${startedAt.toISOString().slice(0, 10)}-fanout${quick ? "-quick" : ""}.json`);
  const body = {
    benchmark: "fanout",
    startedAt: startedAt.toISOString(),
    quick,
    machine: { cpus: os.cpus().length, node: process.version, platform: `${os.platform()} ${os.release()}` },
    results,
  };
  writeFileSync(`${path}.tmp`, `${JSON.stringify(body, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
  log(`figures written to ${path}`);
  clearTimeout(watchdog);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exit(1);
  },
);
