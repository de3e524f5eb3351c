/**
 * One remote worker process of the drain benchmark: the SDK Worker over
 * GraphQL with a no-op handler. Prints {"event":"ready"} once started, and on
 * SIGTERM stops gracefully and prints its figures: when its first handler
 * started and its last completion was acknowledged (epoch ms, sub-ms
 * precision), and how many jobs it completed.
 *
 *   tsx bench/drain-worker.ts <url> <queue> <concurrency>
 */
import { Worker } from "../src/client/index.ts";
import { nowMs } from "./lib/common.ts";

const [url, queue, concurrencyText] = process.argv.slice(2);
if (!url || !queue || !concurrencyText) throw new Error("usage: drain-worker.ts <url> <queue> <concurrency>");

let firstStartMs: number | null = null;
let lastCompleteMs: number | null = null;
let completed = 0;
let errors = 0;

const worker = new Worker({ url, queues: [queue], concurrency: Number(concurrencyText), handler: () => null });
worker.on("started", () => (firstStartMs ??= nowMs()));
worker.on("completed", () => {
  completed++;
  lastCompleteMs = nowMs();
});
worker.on("error", ({ error, during }) => {
  errors++;
  if (errors <= 5) console.error(`drain-worker ${process.pid}: ${during}: ${(error as Error).message}`);
});

process.once("SIGTERM", () => {
  void worker.stop().then(() => {
    console.log(JSON.stringify({ event: "stopped", firstStartMs, lastCompleteMs, completed, errors }));
    process.exit(0);
  });
});

worker.start();
console.log(JSON.stringify({ event: "ready" }));
