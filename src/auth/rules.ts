/**
 * The rule table: for every root field of Query, Mutation and Subscription,
 * the action it performs (roles.ts says which role may) and the queues it
 * touches, so the guard (guard.ts) can check role and queue scope in one
 * place before any resolver runs.
 *
 * The tables are typed against the generated resolver types with every key
 * required, so a field added to the schema does not compile until it has a
 * rule; test/unit/auth-rules.test.ts also checks the executable schema.
 */
import type { JobEventInQueue } from "../jobs/types.ts";
import type { QueueSettings } from "../queues/types.ts";
import type { JobsAvailableSignal } from "../subscriptions/live-service.ts";
import type { MutationResolvers, QueryResolvers, SubscriptionResolvers } from "../graphql/__generated__/resolvers.ts";
import type { Action } from "./roles.ts";

/**
 * The queues a call touches:
 * - `{ queues }`: each must be in the token's scope (an empty list passes: the
 *   call names no existing job, and the resolver answers NOT_FOUND);
 * - "everything": the call reads or changes all queues (a job list without a
 *   queue, the token operations): only a token without queue patterns may;
 * - "nothing": no queue at all (lastEventId), or one whose results or items
 *   are narrowed to the scope instead (queues, jobChanged without queues).
 */
export type Target = { queues: readonly string[] } | "everything" | "nothing";

/** How a rule finds the queue of a job named by id. */
export interface Lookup {
  /** The queues of the jobs with these ids (unknown or malformed ids are skipped). */
  queuesOfJobs(ids: readonly unknown[]): Promise<string[]>;
}

export interface Rule<A> {
  action: Action;
  target(args: A, lookup: Lookup): Target | Promise<Target>;
  /** A query result narrowed to what the token may see, instead of refusing the call. */
  narrow?(result: unknown, inScope: (queue: string) => boolean): unknown;
  /** The queue of each subscription item; items outside the scope are never delivered. */
  itemQueue?(item: unknown): string;
}

type ArgsOf<R> = R extends (parent: never, args: infer A, ...rest: never[]) => unknown
  ? A
  : R extends { subscribe: (parent: never, args: infer A, ...rest: never[]) => unknown }
    ? A
    : R extends { resolve: (parent: never, args: infer A, ...rest: never[]) => unknown }
      ? A
      : never;

type RuleTable<R> = { [K in keyof Required<R>]: Rule<ArgsOf<NonNullable<R[K]>>> };

const queues = (...names: readonly (string | null | undefined)[]): Target => ({
  queues: names.filter((n): n is string => typeof n === "string"),
});
const ofJob = async (lookup: Lookup, id: unknown): Promise<Target> => ({ queues: await lookup.queuesOfJobs([id]) });

export const QUERY_RULES: RuleTable<QueryResolvers> = {
  job: { action: "read", target: (a, l) => ofJob(l, a.id) },
  jobByKey: { action: "read", target: (a) => queues(a.queue) },
  // Listing without a queue would show every queue's jobs.
  jobs: { action: "read", target: (a) => (a.filter?.queue ? queues(a.filter.queue) : "everything") },
  jobEvents: { action: "read", target: (a, l) => ofJob(l, a.jobId) },
  // A global counter: it tells how many events exist, nothing of their queues.
  lastEventId: { action: "read", target: () => "nothing" },
  queues: {
    action: "read",
    target: () => "nothing",
    narrow: (result, inScope) => (result as QueueSettings[]).filter((q) => inScope(q.name)),
  },
  queue: { action: "read", target: (a) => queues(a.name) },
  apiTokens: { action: "tokenAdmin", target: () => "everything" },
};

export const MUTATION_RULES: RuleTable<MutationResolvers> = {
  enqueueJob: { action: "enqueue", target: (a) => queues(a.input.queue) },
  enqueueJobs: { action: "enqueue", target: (a) => queues(...a.jobs.map((j) => j.queue)) },
  claimJobs: { action: "claim", target: (a) => queues(...a.queues) },
  heartbeatJob: { action: "heartbeat", target: (a, l) => ofJob(l, a.jobId) },
  completeJob: { action: "complete", target: (a, l) => ofJob(l, a.jobId) },
  completeJobs: {
    action: "complete",
    target: async (a, l) => ({ queues: await l.queuesOfJobs(a.jobs.map((j) => j.jobId)) }),
  },
  releaseJobs: {
    action: "release",
    target: async (a, l) => ({ queues: await l.queuesOfJobs(a.jobs.map((j) => j.jobId)) }),
  },
  failJob: { action: "fail", target: (a, l) => ofJob(l, a.jobId) },
  cancelJob: { action: "cancel", target: (a, l) => ofJob(l, a.jobId) },
  retryJob: { action: "retry", target: (a, l) => ofJob(l, a.jobId) },
  rescheduleJob: { action: "reschedule", target: (a, l) => ofJob(l, a.jobId) },
  pauseQueue: { action: "queueAdmin", target: (a) => queues(a.name) },
  resumeQueue: { action: "queueAdmin", target: (a) => queues(a.name) },
  configureQueue: { action: "queueAdmin", target: (a) => queues(a.input.name) },
  purgeJobs: { action: "queueAdmin", target: (a) => queues(a.queue) },
  // A token limited to some queues must not mint one that is not.
  createApiToken: { action: "tokenAdmin", target: () => "everything" },
  revokeApiToken: { action: "tokenAdmin", target: () => "everything" },
};

export const SUBSCRIPTION_RULES: RuleTable<SubscriptionResolvers> = {
  jobEvents: { action: "read", target: (a, l) => ofJob(l, a.jobId) },
  // Without filter.queues a scoped token still subscribes: each event is
  // checked against the scope (itemQueue) and those outside are dropped.
  jobChanged: {
    action: "read",
    target: (a) => (a.filter?.queues ? queues(...a.filter.queues) : "nothing"),
    itemQueue: (item) => (item as JobEventInQueue).queue,
  },
  queueStats: { action: "read", target: (a) => queues(a.name) },
  jobsAvailable: {
    action: "read",
    target: (a) => queues(...a.queues),
    itemQueue: (item) => (item as JobsAvailableSignal).queue,
  },
};

export const ROOT_RULES = {
  Query: QUERY_RULES,
  Mutation: MUTATION_RULES,
  Subscription: SUBSCRIPTION_RULES,
} as const satisfies Record<string, Record<string, Rule<never>>>;
