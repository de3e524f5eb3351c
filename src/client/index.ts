/**
 * The jobwire SDK (`import { JobwireClient, Worker } from "jobwire/client"`):
 * a typed GraphQL client generated from the schema, resuming subscriptions,
 * and the Worker.
 */
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
  WorkerTransport,
} from "./transport.ts";
export type * from "./__generated__/graphql.ts";
export type { JsonValue } from "../jobs/types.ts";
