/**
 * The context of one GraphQL operation (HTTP request or subscription): the
 * services every resolver calls, and fresh batch loaders (their caches live
 * exactly as long as the operation).
 */
import type { Logger } from "pino";
import type { JobService } from "../jobs/job-service.ts";
import type { QueueService } from "../queues/queue-service.ts";
import { createLoaders } from "./loaders.ts";
import type { Loaders } from "./loaders.ts";

export interface Services {
  jobs: JobService;
  queues: QueueService;
}

export interface GraphQLContext extends Services {
  loaders: Loaders;
  logger: Logger;
}

export function createContext(services: Services, logger: Logger): GraphQLContext {
  return { ...services, loaders: createLoaders(services.jobs, services.queues), logger };
}
