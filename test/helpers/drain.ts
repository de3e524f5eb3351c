/**
 * A claimer loop used by the concurrency tests, in-process or in a child
 * process (see drain-process.ts): claims batches until the queue is empty and
 * completes each job, recording every id it was handed.
 */
import type { JobService } from "../../src/jobs/job-service.ts";

export async function drainQueue(service: JobService, queue: string, workerId: string, batch = 10): Promise<string[]> {
  const claimed: string[] = [];
  for (;;) {
    const jobs = await service.claim({ queues: [queue], workerId, limit: batch, leaseSeconds: 300 });
    if (jobs.length === 0) return claimed;
    for (const job of jobs) {
      claimed.push(job.id);
      await service.complete({ jobId: job.id, leaseToken: job.leaseToken, result: { by: workerId } });
    }
  }
}
