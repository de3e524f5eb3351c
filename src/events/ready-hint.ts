/**
 * The "jobs:ready" hint (event-map.ts) of one committed write: which queues
 * got a job into QUEUED, and which had a running job end. Computed by the
 * writing process from what it just committed, so jobsAvailable can wake idle
 * workers at once, here and (over NOTIFY) on every other server, instead of
 * after the event feed has read the log back.
 */
import { JobState } from "../jobs/states.ts";
import type { Job, JobEvent } from "../jobs/types.ts";
import type { EventMap } from "./event-map.ts";

export function readyHint(events: readonly JobEvent[], jobs: readonly Job[]): EventMap["jobs:ready"] | null {
  const queueOf = new Map(jobs.map((j) => [j.id, j.queue]));
  const ready = new Set<string>();
  const freed = new Set<string>();
  let anyQueue = false;
  for (const e of events) {
    const queue = queueOf.get(e.jobId);
    if (e.toState === JobState.QUEUED) {
      // A write that reports no jobs (a promotion) names no queue: any may have work.
      if (queue === undefined) anyQueue = true;
      else ready.add(queue);
    } else if (e.fromState === JobState.RUNNING && e.toState !== JobState.RUNNING && queue !== undefined) {
      freed.add(queue);
    }
  }
  if (!anyQueue && ready.size === 0 && freed.size === 0) return null;
  return { queues: anyQueue ? null : [...ready], freed: [...freed] };
}
