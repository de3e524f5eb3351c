import { JobEventType as DomainEventType } from "../../jobs/states.ts";
import type {
  BackoffResolvers,
  CompleteJobResultResolvers,
  EnqueueJobPayloadResolvers,
  HeartbeatJobPayloadResolvers,
  JobConnectionResolvers,
  JobEventResolvers,
  JobEventTypeResolvers,
  JobResolvers,
  LeasedJobResolvers,
  ReleaseJobResultResolvers,
} from "../__generated__/resolvers.ts";
import { NotFoundError } from "../../jobs/errors.ts";

export const Job: JobResolvers = {
  queueName: (job) => job.queue,
  queue: async (job, _, { loaders }) => {
    const queue = await loaders.queueByName.load(job.queue);
    // A job's queue row is created in the job's own enqueue transaction.
    if (!queue) throw new NotFoundError("queue", job.queue);
    return queue;
  },
  cancelRequested: (job) => job.cancelRequestedAt !== null,
  events: (job, { last }, { loaders }) => loaders.recentEvents.load({ jobId: job.id, last: last ?? 10 }),
};

export const CompleteJobResult: CompleteJobResultResolvers = {
  // A plain object: graphql-js would raise an Error instance returned as a value.
  error: (outcome) => (outcome.error === null ? null : { code: outcome.error.code, message: outcome.error.message }),
};

export const ReleaseJobResult: ReleaseJobResultResolvers = {
  error: (outcome) => (outcome.error === null ? null : { code: outcome.error.code, message: outcome.error.message }),
};

export const JobEvent: JobEventResolvers = {
  job: async (event, _, { loaders }) => {
    const job = await loaders.jobById.load(event.jobId);
    // Possible only when the job was purged between reading the event and now.
    if (!job) throw new NotFoundError("job", event.jobId);
    return job;
  },
};

export const LeasedJob: LeasedJobResolvers = {
  job: (leased) => leased,
};

export const EnqueueJobPayload: EnqueueJobPayloadResolvers = {};

export const HeartbeatJobPayload: HeartbeatJobPayloadResolvers = {
  leaseExpiresAt: ({ job }) => {
    if (!job.leaseExpiresAt) throw new Error(`job ${job.id} has no lease after a heartbeat`);
    return job.leaseExpiresAt;
  },
};

export const JobConnection: JobConnectionResolvers = {
  edges: ({ page }) => page.jobs.map((node, i) => ({ node, cursor: page.cursors[i] ?? "" })),
  nodes: ({ page }) => page.jobs,
  pageInfo: ({ page }) => ({ hasNextPage: page.nextCursor !== null, endCursor: page.cursors.at(-1) ?? null }),
  totalCount: ({ filter }, _, { jobs }) => jobs.countJobs(filter),
};

/** Wire names (ENQUEUED) ↔ stored names (enqueued), from the domain's own table. */
export const JobEventType: JobEventTypeResolvers = { ...DomainEventType };

export const BackoffType = { FIXED: "fixed", EXPONENTIAL: "exponential", SCHEDULE: "schedule" } as const;

export const Backoff: BackoffResolvers = {
  delayMs: (b) => (b.type === "fixed" ? b.delayMs : null),
  baseMs: (b) => (b.type === "exponential" ? b.baseMs : null),
  factor: (b) => (b.type === "exponential" ? b.factor : null),
  maxMs: (b) => (b.type === "exponential" ? b.maxMs : null),
  jitter: (b) => (b.type === "exponential" ? b.jitter : null),
  delaysMs: (b) => (b.type === "schedule" ? b.delaysMs : null),
};
