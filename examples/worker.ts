/**
 * A worker process built on the SDK's Worker. It runs the jobs of one or more
 * queues with a demo handler, prints one JSON line per outcome, and on SIGTERM
 * or SIGINT stops claiming, lets running handlers finish (up to
 * --shutdown-ms), and exits 0.
 *
 *   npx tsx examples/worker.ts --url http://127.0.0.1:4000/graphql --queue email --concurrency 5
 *
 * The demo handler reads its instructions from the payload, so you can watch
 * retries, dead letters and cancellation from the command line:
 *   { "ms": 200 }                  take 200 ms (and report progress halfway)
 *   { "failAttempts": 1 }          throw on attempts 1..n (retryable: runs again after the backoff)
 *   { "fail": "permanent" }        throw a NonRetryableError: the job ends FAILED at once
 * A real handler does the work and returns its result (any JSON); it should
 * stop when `signal` aborts (cancelled, lease lost, shutdown), and be
 * idempotent: delivery is at least once.
 */
import { parseArgs } from "node:util";
import { NonRetryableError, Worker } from "jobwire/client";
import type { JobContext, WorkerJob } from "jobwire/client";

const { values } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:4000/graphql" },
    queue: { type: "string", multiple: true, default: ["email"] },
    concurrency: { type: "string", default: "5" },
    "lease-seconds": { type: "string", default: "30" },
    "shutdown-ms": { type: "string", default: "10000" },
  },
});

interface DemoPayload {
  ms?: number;
  failAttempts?: number;
  fail?: "permanent";
}

async function handle(job: WorkerJob, { signal, reportProgress }: JobContext) {
  const payload = (job.payload ?? {}) as DemoPayload;
  if (payload.fail === "permanent") throw new NonRetryableError(`job ${job.id}: payload says fail for good`);
  if (payload.failAttempts !== undefined && job.attempts <= payload.failAttempts) {
    throw new Error(`job ${job.id}: failing attempt ${job.attempts} of ${payload.failAttempts} on purpose`);
  }
  if (payload.ms) {
    await sleep(payload.ms / 2, signal);
    reportProgress({ done: 0.5 });
    await sleep(payload.ms / 2, signal);
  }
  return { handledBy: process.pid, attempt: job.attempts };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    });
  });
}

const worker = new Worker({
  url: values.url,
  queues: values.queue,
  concurrency: Number(values.concurrency),
  leaseSeconds: Number(values["lease-seconds"]),
  shutdownTimeoutMs: Number(values["shutdown-ms"]),
  handler: handle,
});
const log = (line: Record<string, unknown>) => console.log(JSON.stringify({ pid: process.pid, ...line }));
worker.on("started", ({ job }) => log({ event: "started", jobId: job.id, attempt: job.attempts }));
worker.on("completed", ({ job }) => log({ event: "completed", jobId: job.id, attempt: job.attempts }));
worker.on("failed", ({ job, error, retryable }) =>
  log({ event: "failed", jobId: job.id, attempt: job.attempts, retryable, error: error.message }),
);
worker.on("leaseLost", ({ job, reason }) => log({ event: "leaseLost", jobId: job.id, reason }));
worker.on("error", ({ error, during }) =>
  console.error(`worker: ${during}: ${error instanceof Error ? error.message : String(error)}`),
);

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    log({ event: "stopping", signal });
    worker.stop().then(
      () => {
        log({ event: "stopped" });
        process.exit(0);
      },
      (e: unknown) => {
        console.error("worker: stop failed", e);
        process.exit(1);
      },
    );
  });
}

worker.start();
log({ event: "ready", workerId: worker.workerId, queues: values.queue, concurrency: worker.concurrency });
