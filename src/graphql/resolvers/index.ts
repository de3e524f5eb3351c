/** Every resolver of the schema, type-checked against the generated Resolvers type. */
import type { Resolvers } from "../__generated__/resolvers.ts";
import {
  Backoff,
  BackoffType,
  CompleteJobResult,
  EnqueueJobPayload,
  HeartbeatJobPayload,
  Job,
  JobConnection,
  JobEvent,
  JobEventType,
  LeasedJob,
  ReleaseJobResult,
} from "./job.ts";
import { Mutation } from "./mutation.ts";
import { Query } from "./query.ts";
import { JobStateCounts, Queue, QueueSettings, QueueStats } from "./queue.ts";
import { DateTime, JSONScalar, SafeInt } from "./scalars.ts";
import { Subscription } from "./subscription.ts";
import { ApiTokenRole } from "./token.ts";

export const resolvers: Resolvers = {
  Query,
  Mutation,
  Subscription,
  Job,
  LeasedJob,
  EnqueueJobPayload,
  HeartbeatJobPayload,
  CompleteJobResult,
  ReleaseJobResult,
  JobConnection,
  JobEvent,
  JobEventType,
  BackoffType,
  ApiTokenRole,
  Backoff,
  Queue,
  QueueSettings,
  QueueStats,
  JobStateCounts,
  DateTime,
  JSON: JSONScalar,
  SafeInt,
};
