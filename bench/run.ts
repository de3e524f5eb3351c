/**
 * `npm run bench [-- --quick]`: runs every benchmark of this folder in turn,
 * each in its own process (so one's memory and handles cannot skew the next),
 * passing the flags on. Each writes its own figures to bench/results/. Exits
 * non-zero when any benchmark does.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const BENCHES = ["claim-cost.ts", "fanout.ts"];

const args = process.argv.slice(2);
let failed = 0;
for (const bench of BENCHES) {
  const path = fileURLToPath(new URL(`./${bench}`, import.meta.url));
  console.log(`\n### ${bench} ${args.join(" ")}`.trimEnd());
  const started = Date.now();
  const run = spawnSync(process.execPath, ["--import", "tsx", path, ...args], { stdio: "inherit" });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (run.status !== 0) {
    failed++;
    console.error(`### ${bench} failed (exit ${run.status ?? run.signal}) after ${seconds} s`);
  } else console.log(`### ${bench} done in ${seconds} s`);
}
process.exit(failed === 0 ? 0 : 1);
