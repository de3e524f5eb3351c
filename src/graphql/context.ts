/**
 * The context of one GraphQL operation (HTTP request or subscription): the
 * services every resolver calls, and fresh batch loaders (their caches live
 * exactly as long as the operation).
 */
import type { Logger } from "pino";
import type { Principal, TokenService } from "../auth/token-service.ts";
import type { JobService } from "../jobs/job-service.ts";
import type { QueueService } from "../queues/queue-service.ts";
import type { LiveService } from "../subscriptions/live-service.ts";
import { createLoaders } from "./loaders.ts";
import type { Loaders } from "./loaders.ts";

export interface Services {
  jobs: JobService;
  queues: QueueService;
  live: LiveService;
  tokens: TokenService;
}

export interface GraphQLContext extends Services {
  loaders: Loaders;
  logger: Logger;
  /** Who is calling (src/auth/): the verified token, or everyone when auth is off. */
  principal: Principal;
}

/**
 * `cache: false` for subscriptions: their context lives as long as the
 * subscription, and each event must read the job as it is now; loaders still
 * batch the reads of one event's fields.
 */
export function createContext(
  services: Services,
  logger: Logger,
  principal: Principal,
  options: { cache?: boolean } = {},
): GraphQLContext {
  return { ...services, loaders: createLoaders(services.jobs, services.queues, options), logger, principal };
}
