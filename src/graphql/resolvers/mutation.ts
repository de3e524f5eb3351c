import type { EnqueueInput } from "../../jobs/types.ts";
import type { EnqueueJobInput, MutationResolvers } from "../__generated__/resolvers.ts";
import { withoutNulls } from "./input.ts";

function toEnqueueInput(input: EnqueueJobInput): EnqueueInput {
  const { backoff, ...rest } = withoutNulls(input);
  return { ...rest, ...(backoff !== undefined && { backoff: withoutNulls(backoff) as EnqueueInput["backoff"] }) };
}

export const Mutation: MutationResolvers = {
  enqueueJob: (_, { input }, { jobs }) => jobs.enqueue(toEnqueueInput(input)),
  enqueueJobs: (_, { jobs: inputs }, { jobs }) => jobs.enqueueMany(inputs.map(toEnqueueInput)),
  claimJobs: (_, args, { jobs }) => jobs.claim(withoutNulls(args)),
  heartbeatJob: (_, { progress, ...rest }, { jobs }) =>
    // progress: null records "no progress"; omitted leaves the last one.
    jobs.heartbeat({ ...withoutNulls(rest), ...(progress !== undefined && { progress }) }),
  completeJob: (_, args, { jobs }) => jobs.complete(args),
  completeJobs: (_, { jobs: items }, { jobs }) => jobs.completeMany(items),
  releaseJobs: (_, { jobs: items }, { jobs }) => jobs.releaseMany(items),
  failJob: (_, { error, ...rest }, { jobs }) => jobs.fail({ ...withoutNulls(rest), error }),
  cancelJob: (_, { jobId }, { jobs }) => jobs.cancel(jobId),
  retryJob: (_, { jobId }, { jobs }) => jobs.retry(jobId),
  rescheduleJob: (_, args, { jobs }) => jobs.reschedule(withoutNulls(args)),
  pauseQueue: (_, { name }, { queues }) => queues.pauseQueue(name),
  resumeQueue: (_, { name }, { queues }) => queues.resumeQueue(name),
  // Explicit nulls stay: in configureQueue, null clears a setting. Inside a
  // BackoffInput, as for enqueueJob, a null field means "not given".
  configureQueue: (_, { input }, { queues }) =>
    queues.configureQueue({
      ...input,
      ...(input.defaultBackoff && { defaultBackoff: withoutNulls(input.defaultBackoff) }),
    }),
  createApiToken: (_, { input }, { tokens }) => tokens.create(withoutNulls(input)),
  revokeApiToken: (_, { name }, { tokens }) => tokens.revoke(name),
  purgeJobs: async (_, args, { jobs }) => ({ deletedCount: await jobs.purgeJobs(withoutNulls(args)) }),
};
