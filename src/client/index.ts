/**
 * The jobwire SDK (`import { JobwireClient, Worker } from "@jobwire/client"`,
 * or "jobwire/client" from the server package): a typed GraphQL client
 * generated from the schema, resuming subscriptions, and the Worker.
 */
import type {
  BackoffFieldsFragment,
  ClaimJobsMutation,
  JobEventFieldsFragment,
  JobFieldsFragment,
  QueueFieldsFragment,
  QueueSettingsFieldsFragment,
  QueueStatsFieldsFragment,
} from "./__generated__/graphql.ts";

export { JobwireClient, defaultRetryDelayMs, FINISHED_STATES } from "./client.ts";
export type { JobwireClientOptions, JobPage } from "./client.ts";
export { JobwireRequestError, hasErrorCode } from "./errors.ts";
export type { ClientErrorCode, TransportErrorCode } from "./errors.ts";
export type { LiveSubscription } from "./live-subscription.ts";
export { JobCancelledError, LeaseLostError, NonRetryableError, Worker, WorkerShutdownError } from "./worker.ts";
export type { JobContext, JobHandler, WorkerEvents, WorkerJob, WorkerOptions } from "./worker.ts";
export { LocalTransport, RemoteTransport } from "./transport.ts";
export type {
  AvailabilityWatch,
  ClaimedJob,
  ClaimRequest,
  Completion,
  CompletionOutcome,
  Failure,
  HeartbeatRequest,
  LocalServices,
  Release,
  ReleaseOutcome,
  WorkerTransport,
} from "./transport.ts";
export type * from "./__generated__/graphql.ts";
export type { JsonValue } from "../jobs/types.ts";

// Friendly names for what the client returns (the generated fragment types,
// named by the schema type they select).
/** A job as `job`, `jobs`, `enqueueJob` and the subscriptions return it. */
export type Job = JobFieldsFragment;
/** One state transition of a job (`jobEvents`, `watchJobEvents`). */
export type JobEvent = JobEventFieldsFragment;
/** A claimed job with its lease (`claimJobs`). */
export type LeasedJob = ClaimJobsMutation["claimJobs"][number];
/** A queue with its settings and stats (`queue`, `queues`). */
export type Queue = QueueFieldsFragment;
export type QueueSettings = QueueSettingsFieldsFragment;
export type QueueStats = QueueStatsFieldsFragment;
/** A retry backoff policy. */
export type Backoff = BackoffFieldsFragment;
