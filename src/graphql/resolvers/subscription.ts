/**
 * Subscription resolvers: thin, like the others. Each `subscribe` returns the
 * live service's async iterator (subscriptions/live-service.ts); `resolve`
 * passes each item on as the field's value.
 */
import type { SubscriptionResolvers } from "../__generated__/resolvers.ts";

const itself = <T>(payload: T): T => payload;

export const Subscription: SubscriptionResolvers = {
  jobEvents: {
    subscribe: (_, args, ctx) => ctx.live.jobEvents(args.jobId, args.afterSeq),
    resolve: itself,
  },
  jobChanged: {
    subscribe: (_, args, ctx) => ctx.live.jobChanged(args.filter, args.afterEventId),
    resolve: itself,
  },
  queueStats: {
    subscribe: (_, args, ctx) => ctx.live.queueStats(args.name),
    resolve: itself,
  },
  jobsAvailable: {
    subscribe: (_, args, ctx) => ctx.live.jobsAvailable(args.queues),
    resolve: itself,
  },
};
