/**
 * Per-request batch loaders, so a page of jobs with nested fields costs a
 * fixed number of database reads whatever the page size: every Job.queue of
 * the page is one read, every Job.events(last: n) is one read per distinct n,
 * every JobEvent.job is one read, and each queue's stats are read once per
 * request.
 */
import DataLoader from "dataloader";
import type { JobService } from "../jobs/job-service.ts";
import type { Job, JobEvent } from "../jobs/types.ts";
import type { QueueService } from "../queues/queue-service.ts";
import type { QueueSettings, QueueStats } from "../queues/types.ts";

export interface Loaders {
  jobById: DataLoader<string, Job | null>;
  queueByName: DataLoader<string, QueueSettings | null>;
  queueStats: DataLoader<string, QueueStats>;
  recentEvents: DataLoader<{ jobId: string; last: number }, JobEvent[], string>;
}

export function createLoaders(jobs: JobService, queues: QueueService, options: { cache?: boolean } = {}): Loaders {
  const cache = options.cache ?? true;
  return {
    jobById: new DataLoader(
      async (ids) => {
        const found = new Map((await jobs.findJobs(ids)).map((j) => [j.id, j]));
        return ids.map((id) => found.get(id) ?? null);
      },
      { cache },
    ),
    queueByName: new DataLoader(
      async (names) => {
        const found = new Map((await queues.findQueues(names)).map((q) => [q.name, q]));
        return names.map((name) => found.get(name) ?? null);
      },
      { cache },
    ),
    // Stats are several reads per queue and cannot be merged across queues; the
    // loader still reads each queue once however many jobs of the page ask.
    queueStats: new DataLoader((names) => Promise.all(names.map((name) => queues.queueStats(name).catch(asError))), {
      cache,
    }),
    recentEvents: new DataLoader(
      async (keys) => {
        const byLast = new Map<number, string[]>();
        for (const { jobId, last } of keys) byLast.set(last, [...(byLast.get(last) ?? []), jobId]);
        const results = new Map<number, Map<string, JobEvent[]>>();
        await Promise.all(
          [...byLast].map(async ([last, ids]) => results.set(last, await jobs.recentEvents(ids, last))),
        );
        return keys.map(({ jobId, last }) => results.get(last)?.get(jobId) ?? []);
      },
      { cacheKeyFn: ({ jobId, last }) => `${jobId}:${last}`, cache },
    ),
  };
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
