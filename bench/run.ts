/**
 * `npm run bench [-- --quick]`: every benchmark of this folder in turn, each
 * in its own process (so one's memory and handles cannot skew the next),
 * then one file per backend that gathers every figure with the machine facts
 * and the targets: bench/results/<UTC date>-<backend>[-quick].json, and a
 * targets table on stdout.
 *
 *   claim-cost.ts  claim latency with 1,000,000 finished jobs vs an empty table
 *   fanout.ts      1,000 graphql-ws subscribers: commit → client receipt
 *   throughput.ts  enqueue, drain and pickup-latency scenarios
 *   peers.ts       the same in-process workloads on graphile-worker, pg-boss
 *                  and BullMQ (installed into bench/peers/ on first use;
 *                  `--no-peers` leaves them out), then a jobwire ÷ peer table
 *
 * PostgreSQL runs when JOBWIRE_BENCH_POSTGRES_URL (or JOBWIRE_TEST_POSTGRES_URL)
 * names a loopback server. Exits non-zero when a benchmark fails to run;
 * figures that miss their targets are reported, not failed (machines are noisy).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { backends, machineFacts, RESULTS_DIR, ROOT } from "./lib/common.ts";
import type { Backend, Spread } from "./lib/common.ts";
import { PEERS, peersResultsPath } from "./peers.ts";
import type { PeersResults } from "./peers.ts";

const BENCHES = ["claim-cost.ts", "fanout.ts", "throughput.ts", "peers.ts"];

interface Target {
  name: string;
  /** Where the figure is in the merged scenarios of a backend. */
  pick: (scenarios: Record<string, unknown>) => number | undefined;
  /** "min": the figure must be at least `value`; "max": at most. */
  kind: "min" | "max";
  value: number;
  unit: string;
}

type Figures = Record<string, Spread>;
const median = (scenarios: Record<string, unknown>, scenario: string, figure: string): number | undefined =>
  ((scenarios[scenario] as { figures?: Figures } | undefined)?.figures?.[figure] as Spread | undefined)?.median;

/** The targets of issue 7 (2-core machine, medians). */
const TARGETS: Target[] = [
  {
    name: "drain in-process, concurrency 10",
    pick: (s) => median(s, "drain-inprocess-c10", "jobsPerSecond"),
    kind: "min",
    value: 25_000,
    unit: "jobs/s",
  },
  {
    name: "drain by remote workers over GraphQL",
    pick: (s) => median(s, "drain-remote-2x10", "jobsPerSecond"),
    kind: "min",
    value: 10_000,
    unit: "jobs/s",
  },
  {
    name: "enqueue one per request over GraphQL, 10 clients",
    pick: (s) => median(s, "enqueue-single-http", "jobsPerSecond"),
    kind: "min",
    value: 4_000,
    unit: "jobs/s",
  },
  {
    name: "bulk enqueue over GraphQL",
    pick: (s) => median(s, "enqueue-bulk-http", "jobsPerSecond"),
    kind: "min",
    value: 50_000,
    unit: "jobs/s",
  },
  {
    name: "pickup latency p50 (in-process worker)",
    pick: (s) => median(s, "pickup-inprocess", "p50Ms"),
    kind: "max",
    value: 2,
    unit: "ms",
  },
  {
    name: "pickup latency p99 (in-process worker)",
    pick: (s) => median(s, "pickup-inprocess", "p99Ms"),
    kind: "max",
    value: 5,
    unit: "ms",
  },
  {
    name: "pickup latency p50 (remote worker)",
    pick: (s) => median(s, "pickup-remote", "p50Ms"),
    kind: "max",
    value: 2,
    unit: "ms",
  },
  {
    name: "pickup latency p99 (remote worker)",
    pick: (s) => median(s, "pickup-remote", "p99Ms"),
    kind: "max",
    value: 5,
    unit: "ms",
  },
  {
    name: "fan-out to subscribers, p99",
    pick: (s) => (s.fanout as { latencyMs?: { p99?: Spread } } | undefined)?.latencyMs?.p99?.median,
    kind: "max",
    value: 50,
    unit: "ms",
  },
  {
    name: "claim cost, 1,000,000 finished / empty",
    pick: (s) => (s["claim-cost"] as { ratio?: number } | undefined)?.ratio,
    kind: "max",
    value: 1.5,
    unit: "x",
  },
  {
    name: "server peak RSS, drain in-process c10",
    pick: (s) => median(s, "drain-inprocess-c10", "serverPeakRssMiB"),
    kind: "max",
    value: 150,
    unit: "MiB",
  },
  {
    name: "server peak RSS, drain remote",
    pick: (s) => median(s, "drain-remote-2x10", "serverPeakRssMiB"),
    kind: "max",
    value: 150,
    unit: "MiB",
  },
];

/** The figures compared with the peers: the same scenario names in throughput.ts and peers.ts. */
/** `peerScenario`: the peers' workload this one is compared with, when its name differs. */
const COMPARED: { name: string; scenario: string; figure: string; unit: string; peerScenario?: string }[] = [
  {
    name: "drain 10,000 at the store (4 loops × claim 100 + completeMany) vs peer drain c10",
    scenario: "drain-store",
    peerScenario: "drain-inprocess-c10",
    figure: "jobsPerSecond",
    unit: "jobs/s",
  },
  {
    name: "WAL bytes per job, store drain vs peer drain c10",
    scenario: "drain-store",
    peerScenario: "drain-inprocess-c10",
    figure: "walBytesPerJob",
    unit: "B",
  },
  {
    name: "drain 10,000 no-op, concurrency 10",
    scenario: "drain-inprocess-c10",
    figure: "jobsPerSecond",
    unit: "jobs/s",
  },
  {
    name: "drain 10,000 no-op, concurrency 1",
    scenario: "drain-inprocess-c1",
    figure: "jobsPerSecond",
    unit: "jobs/s",
  },
  { name: "bulk enqueue, calls of 1,000", scenario: "enqueue-bulk-inprocess", figure: "jobsPerSecond", unit: "jobs/s" },
  {
    name: "enqueue one per call, 10 callers",
    scenario: "enqueue-single-inprocess",
    figure: "jobsPerSecond",
    unit: "jobs/s",
  },
  { name: "pickup p50", scenario: "pickup-inprocess", figure: "p50Ms", unit: "ms" },
  { name: "pickup p99", scenario: "pickup-inprocess", figure: "p99Ms", unit: "ms" },
  { name: "peak RSS, drain c10", scenario: "drain-inprocess-c10", figure: "serverPeakRssMiB", unit: "MiB" },
  { name: "WAL bytes per drained job, c10", scenario: "drain-inprocess-c10", figure: "walBytesPerJob", unit: "B" },
  { name: "WAL records per drained job, c10", scenario: "drain-inprocess-c10", figure: "walRecordsPerJob", unit: "" },
];

const num = (x: number | undefined, digits = 0) =>
  x === undefined ? "-" : x.toLocaleString("en-US", { maximumFractionDigits: digits });

/**
 * jobwire ÷ peer for every COMPARED figure, per jobwire backend (medians of
 * one run); the rows for each backend's results file and a markdown table.
 */
function peerRatios(all: Record<string, Record<string, unknown>>, peers: PeersResults) {
  const peerMedian = (peer: string, c: (typeof COMPARED)[number]) =>
    peers.results.find((r) => r.peer === peer && r.scenario === (c.peerScenario ?? c.scenario))?.figures[c.figure]
      ?.median;
  const present = PEERS.filter((p) => peers.results.some((r) => r.peer === p && r.status === "ok"));
  const backendList = Object.keys(all);
  const perBackend: Record<string, unknown[]> = {};
  const lines = [
    `| figure | ${backendList.map((b) => `jobwire ${b}`).join(" | ")} | ${present.map((p) => `${p} (jobwire ${backendList.join(" / ")} ÷ it)`).join(" | ")} |`,
    `| --- |${" --- |".repeat(backendList.length + present.length)}`,
  ];
  for (const c of COMPARED) {
    const ours = backendList.map((b) => median(all[b] as Record<string, unknown>, c.scenario, c.figure));
    if (ours.every((x) => x === undefined)) continue;
    const digits = c.unit === "ms" || c.unit === "" ? 2 : 0;
    const cells = present.map((peer) => {
      const theirs = peerMedian(peer, c);
      if (theirs === undefined) return "-";
      const ratios = ours.map((x, i) => {
        const ratio = x === undefined || theirs === 0 ? undefined : x / theirs;
        (perBackend[backendList[i] as string] ??= []).push({
          ...c,
          peer,
          jobwire: x ?? null,
          peerValue: theirs,
          ratio: ratio ?? null,
        });
        return ratio === undefined ? "-" : `${ratio < 0.1 ? ratio.toPrecision(2) : ratio.toFixed(2)}x`;
      });
      return `${num(theirs, digits)}: ${ratios.join(" / ")}`;
    });
    lines.push(
      `| ${c.name}${c.unit ? ` (${c.unit})` : ""} | ${ours.map((x) => num(x, digits)).join(" | ")} | ${cells.join(" | ")} |`,
    );
  }
  return { perBackend, lines };
}

function readJson(path: string): { results?: { dialect?: string; backend?: string; scenario?: string }[] } | null {
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as ReturnType<typeof readJson>) : null;
}

async function main(): Promise<void> {
  const noPeers = process.argv.includes("--no-peers");
  const args = process.argv.slice(2).filter((a) => a !== "--no-peers");
  const quick = args.includes("--quick");
  const startedAt = new Date();
  let failed = 0;
  // Measure what `jobwire serve` runs: the compiled code (scripts/build.mjs).
  const build = spawnSync(process.execPath, [join(ROOT, "scripts", "build.mjs"), "--with-bench"], { stdio: "inherit" });
  if (build.status !== 0) throw new Error("npm run build failed");
  for (const bench of BENCHES.filter((b) => !(noPeers && b === "peers.ts"))) {
    const path = join(ROOT, "dist", "bench", bench.replace(/\.ts$/, ".js"));
    console.log(`\n### ${bench} ${args.join(" ")}`.trimEnd());
    const started = Date.now();
    const run = spawnSync(process.execPath, [path, ...args], { stdio: "inherit" });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (run.status !== 0) {
      failed++;
      console.error(`### ${bench} failed (exit ${run.status ?? run.signal}) after ${seconds} s`);
    } else console.log(`### ${bench} done in ${seconds} s`);
  }

  // Gather each backend's figures from the files the benchmarks wrote today.
  const day = startedAt.toISOString().slice(0, 10);
  const suffix = quick ? "-quick" : "";
  const claimCost = readJson(join(RESULTS_DIR, `${day}-claim-cost${suffix}.json`));
  const fanout = readJson(join(RESULTS_DIR, `${day}-fanout${suffix}.json`));
  const throughput = readJson(join(RESULTS_DIR, `${day}-throughput${suffix}.json`));
  const machine = await machineFacts();
  const peers = readJson(peersResultsPath(day, quick)) as PeersResults | null;
  const all: Record<string, Record<string, unknown>> = {};
  for (const backend of backends() as Backend[]) {
    const scenarios: Record<string, unknown> = {};
    const cc = claimCost?.results?.find((r) => r.dialect === backend);
    if (cc) scenarios["claim-cost"] = cc;
    const fo = fanout?.results?.find((r) => r.dialect === backend);
    if (fo) scenarios.fanout = fo;
    for (const r of throughput?.results?.filter((x) => x.backend === backend) ?? []) scenarios[r.scenario ?? "?"] = r;
    all[backend] = scenarios;
  }
  const ratios = peers && !noPeers ? peerRatios(all, peers) : null;
  const rows: string[] = [];
  for (const backend of backends() as Backend[]) {
    const scenarios = all[backend] as Record<string, unknown>;
    const targets = TARGETS.map((t) => {
      const measured = t.pick(scenarios);
      const met = measured === undefined ? null : t.kind === "min" ? measured >= t.value : measured <= t.value;
      const ratio = measured === undefined ? null : t.kind === "min" ? measured / t.value : t.value / measured;
      rows.push(
        `${backend.padEnd(9)} ${t.name.padEnd(50)} ${(t.kind === "min" ? ">= " : "<= ") + t.value.toLocaleString("en-US")} ${t.unit}`.padEnd(
          82,
        ) +
          ` ${measured === undefined ? "not measured" : `${measured.toLocaleString("en-US", { maximumFractionDigits: 2 })} ${t.unit}`}`.padEnd(
            22,
          ) +
          ` ${met === null ? "" : met ? "met" : `MISSED (${ratio?.toFixed(2)}x of target)`}`,
      );
      return { name: t.name, target: { kind: t.kind, value: t.value, unit: t.unit }, measured: measured ?? null, met };
    });
    const path = join(RESULTS_DIR, `${day}-${backend}${suffix}.json`);
    const body = {
      backend,
      mode: quick ? "quick" : "full",
      startedAt: startedAt.toISOString(),
      machine,
      targets,
      scenarios,
      peers: ratios
        ? { versions: peers?.versions, skipped: peers?.skipped, ratios: ratios.perBackend[backend] ?? [] }
        : null,
    };
    writeFileSync(`${path}.tmp`, `${JSON.stringify(body, null, 2)}\n`);
    renameSync(`${path}.tmp`, path);
    console.log(`\n${backend}: every figure in ${path}`);
  }
  console.log(
    `\nTargets (medians; ${quick ? "quick run: small sizes, 1 repetition, not comparable" : "3 repetitions"}):`,
  );
  for (const row of rows) console.log(row);
  if (ratios) {
    const skipped = Object.entries(peers?.skipped ?? {}).map(([p, why]) => `${p} skipped: ${why}`);
    console.log(
      `\njobwire ÷ peer (medians; jobs/s: above 1x jobwire is faster; ms, MiB, WAL: below 1x jobwire is leaner):`,
    );
    for (const line of ratios.lines) console.log(line);
    if (skipped.length > 0) console.log(skipped.join("; "));
  } else if (!noPeers) console.log(`\nno peer figures (${peersResultsPath(day, quick)} missing)`);
  console.log(
    `\nnpm run bench${quick ? " -- --quick" : ""}: ${((Date.now() - startedAt.getTime()) / 60_000).toFixed(1)} min`,
  );
  process.exit(failed === 0 ? 0 : 1);
}

await main();
