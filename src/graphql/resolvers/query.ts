import type { JobState } from "../../jobs/states.ts";
import type { QueryResolvers } from "../__generated__/resolvers.ts";
import { withoutNulls } from "./input.ts";

export const Query: QueryResolvers = {
  job: (_, { id }, { jobs }) => jobs.getJob(id),
  jobByKey: (_, { queue, key }, { jobs }) => jobs.findJobByKey(queue, key),
  jobs: async (_, { filter, first, after }, { jobs }) => {
    const f = withoutNulls(filter ?? {});
    const jobFilter = { ...f, ...(f.states && { states: f.states as JobState[] }) };
    return { page: await jobs.listJobs(jobFilter, withoutNulls({ first, after })), filter: jobFilter };
  },
  jobEvents: (_, { jobId, afterSeq, first }, { jobs }) => jobs.listEvents(jobId, afterSeq ?? 0, first ?? 1_000),
  lastEventId: (_, __, { jobs }) => jobs.newestEventId(),
  queues: (_, __, { queues }) => queues.listQueues(),
  queue: (_, { name }, { queues }) => queues.getQueue(name),
  apiTokens: (_, __, { tokens }) => tokens.list(),
};
