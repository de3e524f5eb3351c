/**
 * One jobwire server: the store, the services, the maintenance loop and the
 * HTTP server with Apollo at /graphql.
 *
 * Shutdown order (close()): stop accepting connections and let in-flight
 * requests finish (up to shutdownGraceMs, then their connections are closed),
 * stop the maintenance loop, then disconnect the database. /readyz answers 503
 * from the moment close() is called.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { createContext } from "../graphql/context.ts";
import type { Services } from "../graphql/context.ts";
import { DEFAULT_QUERY_LIMITS } from "../graphql/limits.ts";
import type { QueryLimits } from "../graphql/limits.ts";
import { createSchema } from "../graphql/schema.ts";
import { coerceError } from "../jobs/errors.ts";
import { JobService } from "../jobs/job-service.ts";
import { Maintenance } from "../maintenance/maintenance.ts";
import type { MaintenanceOptions } from "../maintenance/maintenance.ts";
import { QueueService } from "../queues/queue-service.ts";
import type { JobStore } from "../store/job-store.ts";
import { createApollo } from "./apollo.ts";
import { SERVER_DEFAULTS } from "./defaults.ts";
import { createHttpHandler, GRAPHQL_PATH } from "./http-handler.ts";

export interface ServerOptions {
  store: JobStore;
  logger: Logger;
  port?: number;
  host?: string;
  introspection?: boolean;
  limits?: Partial<QueryLimits>;
  maxBodyBytes?: number;
  maxPayloadBytes?: number;
  shutdownGraceMs?: number;
  /** Options of the maintenance loop; false runs none (tests that drive it themselves). */
  maintenance?: MaintenanceOptions | false;
  /** The clock of the services and maintenance (tests inject one). */
  now?: () => Date;
}

export interface RunningServer {
  /** e.g. http://127.0.0.1:4000/graphql */
  readonly url: string;
  readonly port: number;
  readonly services: Services;
  /** Graceful shutdown; the store is closed last. Safe to call more than once. */
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { store, logger } = options;
  const now = options.now ?? (() => new Date());
  const jobs = new JobService(store, {
    now,
    ...(options.maxPayloadBytes !== undefined && { maxPayloadBytes: options.maxPayloadBytes }),
    onError: (e) => logger.error({ err: e }, "event listener failed"),
  });
  const queues = new QueueService(store, { now });
  const services: Services = { jobs, queues };
  const maintenance =
    options.maintenance === false
      ? null
      : new Maintenance(jobs, queues, {
          now,
          onError: (e) => logger.error({ err: e }, "maintenance tick failed"),
          ...options.maintenance,
        });

  const httpServer = createServer();
  const apollo = createApollo({
    schema: createSchema(),
    httpServer,
    logger,
    limits: { ...DEFAULT_QUERY_LIMITS, ...options.limits },
    introspection: options.introspection ?? true,
    shutdownGraceMs: options.shutdownGraceMs ?? SERVER_DEFAULTS.shutdownGraceMs,
  });
  await apollo.start();

  let closing: Promise<void> | null = null;
  const handler = createHttpHandler({
    apollo,
    context: async () => createContext(services, logger),
    checkReady: async () => {
      if (closing) throw new Error("the server is shutting down");
      await store.checkReady();
    },
    maxBodyBytes: options.maxBodyBytes ?? SERVER_DEFAULTS.maxBodyBytes,
    logger,
  });
  httpServer.on("request", (req, res) => void handler(req, res));
  httpServer.on("clientError", (err, socket) => {
    logger.debug({ err }, "HTTP client error");
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
  });

  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once("error", reject);
      httpServer.listen(options.port ?? SERVER_DEFAULTS.port, options.host ?? SERVER_DEFAULTS.host, () => {
        httpServer.off("error", reject);
        resolve();
      });
    });
  } catch (e) {
    await apollo.stop().catch(() => {});
    throw coerceError(e);
  }
  maintenance?.start();

  const address = httpServer.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}${GRAPHQL_PATH}`;

  return {
    url,
    port: address.port,
    services,
    close() {
      closing ??= (async () => {
        logger.info("shutting down: finishing in-flight requests");
        // apollo.stop() drains: the listener closes at once, idle connections
        // close, and busy ones close after their response (or the grace period).
        const drained = apollo.stop();
        await maintenance?.stop();
        await drained;
        await store.close();
        logger.info("shut down");
      })();
      return closing;
    },
  };
}
