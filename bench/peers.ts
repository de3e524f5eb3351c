/**
 * The peer benchmark: graphile-worker and pg-boss on the same PostgreSQL, and
 * BullMQ when Redis answers on 127.0.0.1:6379, on the workloads of
 * throughput.ts's in-process scenarios (same sizes, same loops:
 * bench/lib/workloads.ts). `npm run bench` runs it after jobwire's own
 * benchmarks and prints jobwire ÷ peer; `npm run bench:peers` runs it alone.
 *
 * The peers live in bench/peers/ with their own package.json and lock; this
 * installs them there (`npm ci --prefix bench/peers`) when they are missing
 * or the lock changed, never jobwire's own `npm install`. It bundles
 * bench/peers/runner.ts next to those node_modules (esbuild, packages left
 * external) and runs every repetition in a fresh process on a fresh schema of
 * the database `jobwire_bench_peers`, created for the run and dropped after.
 *
 * Usage: node dist/bench/peers.js [--quick] [--peer graphile-worker|pg-boss|bullmq]… [--scenario <name>]…
 * Results: bench/results/<UTC date>-peers[-quick].json.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { Socket } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { machineFacts, postgresUrl, RESULTS_DIR, ROOT, withPg } from "./lib/common.ts";
import { repeatChild, REPETITIONS, SIZES } from "./lib/workloads.ts";
import type { Repeated } from "./lib/workloads.ts";

const PEERS_DIR = join(ROOT, "bench", "peers");
const RUNNER = join(PEERS_DIR, "dist", "runner.js");
const DATABASE = "jobwire_bench_peers";
export const PEERS = ["graphile-worker", "pg-boss", "bullmq"] as const;
export type Peer = (typeof PEERS)[number];
/** throughput.ts's scenario names, so a peer's figure sits under the same name as jobwire's. */
export const PEER_SCENARIOS = [
  "enqueue-single-inprocess",
  "enqueue-bulk-inprocess",
  "drain-inprocess-c1",
  "drain-inprocess-c10",
  "pickup-inprocess",
];
const PRIMARY: Record<string, [string, string]> = { "pickup-inprocess": ["p50Ms", "ms"] };

/** How bench/peers/runner.ts sets each peer up (recorded with the figures). */
const SETTINGS: Record<Peer, string> = {
  "graphile-worker":
    "run() with preset.worker.localQueue.size 500 and completeJobBatchDelay 0; pg pool max 10; addJob/addJobs of WorkerUtils",
  "pg-boss":
    "one work() per concurrency slot, each batchSize 100 (handled one job at a time) and pollingIntervalSeconds 0.5 (its minimum); pool max 10; send/insert",
  bullmq: "defaults (completed jobs kept); Queue.add/addBulk; one Worker with the concurrency; Redis on 127.0.0.1:6379",
};

export interface PeerReport extends Repeated {
  peer: Peer;
  scenario: string;
}

export interface PeersResults {
  benchmark: "peers";
  mode: "quick" | "full";
  versions: Record<string, string>;
  settings: Record<Peer, string>;
  skipped: Record<string, string>;
  results: PeerReport[];
}

/** `npm ci` into bench/peers when its node_modules is missing or older than its lock. */
function ensureInstalled(): void {
  const lock = join(PEERS_DIR, "package-lock.json");
  const installed = join(PEERS_DIR, "node_modules", ".package-lock.json");
  if (existsSync(installed) && statSync(installed).mtimeMs >= statSync(lock).mtimeMs) return;
  console.log("peers: installing graphile-worker, pg-boss, bullmq into bench/peers (npm ci --prefix bench/peers)…");
  const started = Date.now();
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const r = spawnSync(npm, ["ci", "--prefix", PEERS_DIR, "--no-audit", "--no-fund", "--loglevel=http"], {
    stdio: "inherit",
  });
  if (r.status !== 0) throw new Error(`npm ci --prefix bench/peers failed (exit ${r.status ?? r.signal})`);
  console.log(`peers: installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function versions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [...PEERS, "ioredis", "pg"]) {
    const pkg = join(PEERS_DIR, "node_modules", name, "package.json");
    out[name] = (JSON.parse(readFileSync(pkg, "utf8")) as { version: string }).version;
  }
  return out;
}

/** True when something on 127.0.0.1:6379 answers a Redis PING within 1 s. */
function redisAnswers(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once("error", () => done(false));
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")));
    socket.connect(6379, "127.0.0.1", () => socket.write("PING\r\n"));
  });
}

export async function runPeers(options: { quick: boolean; peers: Peer[]; scenarios: string[] }): Promise<PeersResults> {
  const skipped: Record<string, string> = {};
  const pgBase = postgresUrl();
  const chosen = options.peers.filter((peer) => {
    if (peer === "bullmq") return true;
    if (!pgBase) skipped[peer] = "no PostgreSQL URL (JOBWIRE_BENCH_POSTGRES_URL or JOBWIRE_TEST_POSTGRES_URL)";
    return pgBase !== null;
  });
  if (chosen.includes("bullmq") && !(await redisAnswers())) {
    skipped.bullmq = "no Redis answering on 127.0.0.1:6379";
    chosen.splice(chosen.indexOf("bullmq"), 1);
  }
  for (const [peer, why] of Object.entries(skipped)) console.log(`peers: ${peer} SKIPPED: ${why}`);
  ensureInstalled();
  await build({
    entryPoints: [join(PEERS_DIR, "runner.ts")],
    outfile: RUNNER,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    logLevel: "warning",
  });
  const peersUrl = pgBase ? new URL(pgBase) : null;
  if (peersUrl) {
    peersUrl.pathname = `/${DATABASE}`;
    peersUrl.search = "";
  }
  const admin = (sql: string) => (pgBase ? withPg(pgBase, (c) => c.query(sql)) : Promise.resolve());
  await admin(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${DATABASE}`);
  const results: PeerReport[] = [];
  const repetitions = options.quick ? 1 : REPETITIONS;
  process.env.JOBWIRE_BENCH_PEERS_URL = peersUrl?.toString() ?? "";
  try {
    for (const peer of chosen) {
      for (const scenario of options.scenarios) {
        const args = [RUNNER, peer, scenario, ...(options.quick ? ["--quick"] : [])];
        const [primary, unit] = PRIMARY[scenario] ?? ["jobsPerSecond", "jobs/s"];
        const label = `${peer.padEnd(16)} ${scenario.padEnd(26)}`;
        results.push({ peer, scenario, ...(await repeatChild(label, args, repetitions, primary, unit)) });
      }
    }
  } finally {
    await admin(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
  }
  return {
    benchmark: "peers",
    mode: options.quick ? "quick" : "full",
    versions: versions(),
    settings: SETTINGS,
    skipped,
    results,
  };
}

export function peersResultsPath(day: string, quick: boolean): string {
  return join(RESULTS_DIR, `${day}-peers${quick ? "-quick" : ""}.json`);
}

function parseArgs(argv: string[]) {
  const out = { quick: false, peers: [] as Peer[], scenarios: [] as string[] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === "--quick") {
      out.quick = true;
      continue;
    }
    if (arg === "--peer" && PEERS.includes(value as Peer)) out.peers.push(value as Peer);
    else if (arg === "--scenario" && value && PEER_SCENARIOS.includes(value)) out.scenarios.push(value);
    else {
      throw new Error(
        `unknown argument ${arg} ${value ?? ""}; --quick, --peer <${PEERS.join("|")}>, --scenario <${PEER_SCENARIOS.join("|")}>`,
      );
    }
    i++;
  }
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const startedAt = new Date();
  const peers = args.peers.length > 0 ? args.peers : [...PEERS];
  const scenarios = args.scenarios.length > 0 ? args.scenarios : PEER_SCENARIOS;
  console.log(`peers${args.quick ? " --quick" : ""}: ${peers.join(", ")} on ${scenarios.length} scenarios`);
  const body = {
    ...(await runPeers({ quick: args.quick, peers, scenarios })),
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: await machineFacts(),
    sizes: args.quick ? SIZES.quick : SIZES.full,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = peersResultsPath(startedAt.toISOString().slice(0, 10), args.quick);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(body, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
  console.log(`results in ${path}`);
  process.exit(body.results.some((r) => r.status === "failed") ? 1 : 0);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
