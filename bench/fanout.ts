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
 * latencies include client-side work for 1,000 sockets. Each dialect repeats
 * the whole measurement 3 times (1 with --quick) on a fresh server and
 * database; the table shows the median and min–max of the repetitions. The run fails (exit 1)
 * unless every subscriber received every event exactly once.
 *
 * Usage: npx tsx bench/fanout.ts [--quick]   (or npm run bench, which runs every benchmark)
 *   --quick  QUICK subscribers and rounds instead of FULL (CI smoke)
 *   PostgreSQL too when JOBWIRE_BENCH_POSTGRES_URL (or JOBWIRE_TEST_POSTGRES_URL) names a
 *   loopback server; it gets a fresh schema, dropped at the end.
 *
 * Results: a table on stdout and JSON in bench/results/<UTC date>-fanout[-quick].json.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createClient } from "graphql-ws";
import type { Client } from "graphql-ws";
import WebSocket from "ws";
import {
  backends,
  freshDatabase,
  machineFacts,
  memoryMiB,
  percentile,
  RESULTS_DIR,
  spread,
  startServe,
} from "./lib/common.ts";
import type { Backend, Spread } from "./lib/common.ts";

const FULL = { subscribers: 1_000, rounds: 20 };
const QUICK = { subscribers: 200, rounds: 5 };
/** Connections opened at once while connecting the subscribers. */
const CONNECT_PARALLELISM = 50;
const QUEUE = "fanout";
const TIME_LIMIT_MS = { full: 10 * 60_000, quick: 3 * 60_000 };
/** Longest wait for one round's event to reach every subscriber. */
const ROUND_TIMEOUT_MS = 30_000;
/** Fresh server, database and subscribers per repetition. */
const REPETITIONS = { full: 3, quick: 1 };
const startedAt = new Date();

interface Figures {
  dialect: "sqlite" | "postgres";
  subscribers: number;
  rounds: number;
  deliveries: number;
  latencyMs: { p50: number; p99: number; max: number; mean: number };
  rssMiB: { before: number; connected: number; after: number; peak: number };
  connectSeconds: number;
}

function log(message: string): void {
  console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${message}`);
}
const t0 = performance.now();

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

/** One dialect's repetitions: median and min–max of each repetition's p50, p99 and peak RSS. */
interface DialectReport {
  dialect: Backend;
  subscribers: number;
  rounds: number;
  repetitions: Figures[];
  latencyMs: { p50: Spread; p99: Spread };
  serverPeakRssMiB: Spread;
}

async function measure(
  dialect: Backend,
  databaseUrl: string,
  size: { subscribers: number; rounds: number },
): Promise<Figures> {
  const serve = await startServe(databaseUrl, ["--ws-keepalive-ms", "0"]);
  const url = serve.url;
  const subscribers: Subscriber[] = [];
  try {
    const pid = serve.pid;
    const before = memoryMiB(pid).rss;
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
    const connected = memoryMiB(pid).rss;
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
    const { rss: after, peak } = memoryMiB(pid);
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
      rssMiB: { before, connected, after, peak },
      connectSeconds: round2(connectSeconds),
    };
  } finally {
    await Promise.all(subscribers.map((s) => s.client.dispose()));
    await serve.stop();
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

  const results: DialectReport[] = [];
  for (const dialect of backends()) {
    const runs: Figures[] = [];
    for (let r = 0; r < (quick ? REPETITIONS.quick : REPETITIONS.full); r++) {
      const db = await freshDatabase(dialect);
      try {
        runs.push(await measure(dialect, db.url, size));
      } finally {
        await db.dispose();
      }
    }
    results.push({
      dialect,
      subscribers: size.subscribers,
      rounds: size.rounds,
      repetitions: runs,
      latencyMs: { p50: spread(runs.map((r) => r.latencyMs.p50)), p99: spread(runs.map((r) => r.latencyMs.p99)) },
      serverPeakRssMiB: spread(runs.map((r) => r.rssMiB.peak)),
    });
  }
  if (!backends().includes("postgres"))
    log("postgres: SKIPPED (set JOBWIRE_BENCH_POSTGRES_URL or JOBWIRE_TEST_POSTGRES_URL)");

  const range = (s: Spread, digits = 1) =>
    `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
  console.log("\ndialect   subscribers  p50 ms               p99 ms               server peak RSS MiB");
  for (const r of results) {
    console.log(
      `${r.dialect.padEnd(9)} ${String(r.subscribers).padStart(11)}  ${range(r.latencyMs.p50).padEnd(20)} ` +
        `${range(r.latencyMs.p99).padEnd(20)} ${range(r.serverPeakRssMiB)}`,
    );
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${startedAt.toISOString().slice(0, 10)}-fanout${quick ? "-quick" : ""}.json`);
  const body = {
    benchmark: "fanout",
    startedAt: startedAt.toISOString(),
    quick,
    machine: await machineFacts(),
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
