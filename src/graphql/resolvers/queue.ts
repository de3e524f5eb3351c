import type {
  JobStateCountsResolvers,
  QueueResolvers,
  QueueSettingsResolvers,
  QueueStatsResolvers,
} from "../__generated__/resolvers.ts";

export const Queue: QueueResolvers = {
  settings: (queue) => queue,
  stats: (queue, _, { loaders }) => loaders.queueStats.load(queue.name),
};

export const QueueSettings: QueueSettingsResolvers = {};

export const QueueStats: QueueStatsResolvers = {};

export const JobStateCounts: JobStateCountsResolvers = {
  scheduled: (c) => c.SCHEDULED,
  queued: (c) => c.QUEUED,
  running: (c) => c.RUNNING,
  succeeded: (c) => c.SUCCEEDED,
  failed: (c) => c.FAILED,
  cancelled: (c) => c.CANCELLED,
};
