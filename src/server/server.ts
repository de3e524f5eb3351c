/**
 * One jobwire server: the store, the services, the event bus and live feed,
 * the maintenance loop, and the HTTP server with Apollo and graphql-ws at
 * /graphql (and /healthz, /readyz, /metrics: see http-handler.ts, metrics.ts).
 *
 * Data flow of a transition: service → store (one transaction) → after commit,
 * a hint on the bus (in-process; PostgreSQL: also NOTIFY to other servers) →
 * the event feed reads the committed events → subscriptions → clients.
 *
 * Shutdown order (close()): stop accepting HTTP → close every WebSocket with
 * 1001 (graphql-ws) → stop the maintenance loop → let in-flight requests
 * finish (up to shutdownGraceMs, then their connections are closed) → close
 * the event feed and bus → disconnect the database. /readyz answers 503 from
 * the moment close() is called.
 */
import { createServer } from "node:http";
import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { GraphQLError } from "graphql";
import type { Logger } from "pino";
import { currentActor } from "../auth/actor.ts";
import { isLoopbackHost } from "../auth/loopback.ts";
import { OPEN_PRINCIPAL, parseBearer, TokenService } from "../auth/token-service.ts";
import type { Principal } from "../auth/token-service.ts";
import { createContext } from "../graphql/context.ts";
import type { Services } from "../graphql/context.ts";
import { DEFAULT_QUERY_LIMITS } from "../graphql/limits.ts";
import type { QueryLimits } from "../graphql/limits.ts";
import { createSchema } from "../graphql/schema.ts";
import { InProcessBus } from "../events/event-bus.ts";
import type { EventBus } from "../events/event-bus.ts";
import { EventFeed } from "../events/event-feed.ts";
import { readyHint } from "../events/ready-hint.ts";
import { LiveService } from "../subscriptions/live-service.ts";
import { coerceError } from "../jobs/errors.ts";
import { JobService } from "../jobs/job-service.ts";
import { Maintenance } from "../maintenance/maintenance.ts";
import type { MaintenanceOptions } from "../maintenance/maintenance.ts";
import { QueueService } from "../queues/queue-service.ts";
import type { JobStore } from "../store/job-store.ts";
import { createApollo } from "./apollo.ts";
import { SERVER_DEFAULTS } from "./defaults.ts";
import { createHttpHandler, GRAPHQL_PATH, HttpError } from "./http-handler.ts";
import { ServerMetrics } from "./metrics.ts";
import { attachGraphQLWebSocket } from "./websocket.ts";

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
  /**
   * The database URL, for the PostgreSQL event bus's own LISTEN connection
   * (required with a PostgreSQL store unless `bus` is given).
   */
  databaseUrl?: string;
  /** The event bus (default: in-process on SQLite, LISTEN/NOTIFY on PostgreSQL). */
  bus?: EventBus;
  /** Live events a subscription may have unread (unsent, or sent and not confirmed read) before SUBSCRIPTION_OVERFLOW ends it. */
  subscriptionBuffer?: number;
  /** WebSocket connections open at once, in total; a handshake beyond gets HTTP 503. */
  maxConnections?: number;
  /** WebSocket connections open at once from one remote address; a handshake beyond gets HTTP 429. */
  maxConnectionsPerIp?: number;
  /** Subscriptions running at once on one WebSocket; one more gets TOO_MANY_SUBSCRIPTIONS. */
  maxSubscriptionsPerSocket?: number;
  /** Time a WebSocket client has to send connection_init (ms). */
  wsInitTimeoutMs?: number;
  /** WebSocket keep-alive ping interval; a client silent for one interval after a ping is closed with 4408 stalled (ms). */
  wsKeepAliveMs?: number;
  /**
   * How long events sent to a subscription may go without the client's read
   * confirmation before they count against its buffer (default 1000 ms):
   * a healthy client confirms within a round trip, so bursts beyond the
   * buffer reach it; one that stopped reading overflows after this.
   */
  subscriptionReadGraceMs?: number;
  /** The event feed's safety poll, for hints that never came (ms). */
  eventPollIntervalMs?: number;
  /** Least time between two queueStats pushes of one queue (ms). */
  statsIntervalMs?: number;
  /** Serve GET /metrics (Prometheus) and count for it (default true). */
  metrics?: boolean;
  /**
   * "required": every call needs a valid API token (src/auth/). "off":
   * everyone may do everything. Default: "off" on a loopback host, else
   * "required"; "off" on a non-loopback host logs a warning.
   */
  auth?: "required" | "off";
  /** Browser origins allowed besides the server's own (http(s)://host[:port]). */
  allowedOrigins?: readonly string[];
  /** How often the API token snapshot is re-read (ms; revocation latency). */
  tokenRefreshMs?: number;
}

export interface RunningServer {
  /** e.g. http://127.0.0.1:4000/graphql */
  readonly url: string;
  readonly port: number;
  readonly services: Services;
  /** Whether calls need an API token. */
  readonly auth: "required" | "off";
  /** Open WebSocket connections, subscriptions and feed/bus listeners (leak checks, metrics). */
  liveCounts(): { connections: number; subscriptions: number; feedListeners: number; busListeners: number };
  /** Graceful shutdown; the store is closed last. Safe to call more than once. */
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { store, logger } = options;
  const now = options.now ?? (() => store.now());
  const onBusError = (e: Error) => logger.warn({ err: e }, "event bus");
  let bus: EventBus;
  if (options.bus) bus = options.bus;
  else if (store.dialect === "sqlite") bus = new InProcessBus(onBusError);
  else {
    if (!options.databaseUrl) throw new Error("startServer: a PostgreSQL store needs databaseUrl (or a bus)");
    const { PostgresBus } = await import("../events/postgres-bus.ts"); // node-postgres: PostgreSQL only
    bus = await PostgresBus.connect({ url: options.databaseUrl, onError: onBusError });
  }
  // Made first: the feed and the job service report to it through hooks.
  const metrics =
    options.metrics === false
      ? null
      : new ServerMetrics({ now, onError: (e) => logger.warn({ err: e }, "metrics: a scrape-time read failed") });
  const feed = new EventFeed({
    reader: store,
    bus,
    ...(metrics && { onDelivered: (event) => metrics.observeDelivery(event) }),
    ...(options.eventPollIntervalMs !== undefined && { pollIntervalMs: options.eventPollIntervalMs }),
    onError: (e) => logger.error({ err: e }, "event feed read failed; retrying"),
  });
  const closeEvents = async () => {
    await feed.close();
    if (!options.bus) await bus.close();
  };
  try {
    await feed.start();
  } catch (e) {
    await closeEvents();
    throw coerceError(e);
  }

  const jobs = new JobService(store, {
    now,
    actor: currentActor,
    ...(options.maxPayloadBytes !== undefined && { maxPayloadBytes: options.maxPayloadBytes }),
    onEvents: (events, written) => {
      metrics?.recordCommitted(events, written);
      const last = events.at(-1);
      if (last) bus.publish("events:committed", { maxEventId: last.id });
      const ready = readyHint(events, written);
      if (ready) bus.publish("jobs:ready", ready);
    },
    ...(metrics && { onClaim: (durationMs) => metrics.observeClaim(durationMs) }),
    onQueueChanged: (queue) => bus.publish("queue:changed", { queue }),
    onError: (e) => logger.error({ err: e }, "event listener failed"),
  });
  const queues = new QueueService(store, { now, onQueueChanged: (queue) => bus.publish("queue:changed", { queue }) });
  const live = new LiveService(jobs, queues, feed, bus, {
    ...(options.subscriptionBuffer !== undefined && { maxBuffer: options.subscriptionBuffer }),
    ...(options.statsIntervalMs !== undefined && { statsIntervalMs: options.statsIntervalMs }),
    onError: (e) => logger.error({ err: e }, "subscription"),
  });
  const host = options.host ?? SERVER_DEFAULTS.host;
  const auth = options.auth ?? (isLoopbackHost(host) ? "off" : "required");
  if (auth === "off" && !isLoopbackHost(host)) {
    logger.warn(
      { host },
      `--auth off on ${host}: anyone who can reach this address can read, change and delete every job`,
    );
  }
  const tokens = new TokenService(store, {
    now,
    ...(options.tokenRefreshMs !== undefined && { refreshMs: options.tokenRefreshMs }),
    onError: (e) => logger.error({ err: e }, "reading API tokens failed; keeping the last ones read"),
  });
  if (auth === "required") {
    try {
      await tokens.start();
    } catch (e) {
      await closeEvents();
      throw coerceError(e);
    }
  }
  const services: Services = { jobs, queues, live, tokens };
  const unauthenticated = (message: string) =>
    new GraphQLError(message, {
      extensions: {
        code: "UNAUTHENTICATED",
        http: { status: 401, headers: new Map([["www-authenticate", "Bearer"]]) },
      },
    });
  const principalOf = async (req: IncomingMessage): Promise<Principal> => {
    if (auth === "off") return OPEN_PRINCIPAL;
    const token = parseBearer(req.headers.authorization);
    if (token === undefined) {
      throw unauthenticated("this server requires an API token: send Authorization: Bearer <token>");
    }
    const principal = token === null ? null : await tokens.verify(token);
    if (!principal) throw unauthenticated("the API token is invalid, expired or revoked");
    return principal;
  };
  const maintenance =
    options.maintenance === false
      ? null
      : new Maintenance(jobs, queues, {
          now,
          // A failure that repeats every tick (a read-only or unreachable
          // database) is logged once, then at most once a minute (Maintenance).
          onError: (e, { failedTicks }) =>
            logger.error(
              { err: e, failedTicks },
              failedTicks > 1
                ? "maintenance ticks keep failing (the same failure is logged at most once a minute)"
                : "maintenance tick failed",
            ),
          onRecovered: ({ failedTicks }) => logger.info({ failedTicks }, "maintenance ticks succeed again"),
          ...options.maintenance,
        });

  if (maintenance) {
    // Before the first sweep and the first request (see JobStore.resumeLeases).
    try {
      const resumed = await store.resumeLeases(now());
      if (resumed > 0) logger.info({ resumed }, "resumed the running leases of the previous run from now");
    } catch (e) {
      await closeEvents();
      throw coerceError(e);
    }
  }

  const httpServer = createServer();
  const schema = createSchema();
  const limits = { ...DEFAULT_QUERY_LIMITS, ...options.limits };
  const introspection = options.introspection ?? true;
  const shutdownGraceMs = options.shutdownGraceMs ?? SERVER_DEFAULTS.shutdownGraceMs;
  const apollo = createApollo({ schema, httpServer, logger, limits, introspection, shutdownGraceMs });
  await apollo.start();

  let closing: Promise<void> | null = null;
  const handler = createHttpHandler({
    apollo,
    context: async (req) => createContext(services, logger, await principalOf(req)),
    allowedOrigins: options.allowedOrigins ?? [],
    checkReady: async () => {
      if (closing) throw new Error("the server is shutting down");
      await store.checkReady();
    },
    maxBodyBytes: options.maxBodyBytes ?? SERVER_DEFAULTS.maxBodyBytes,
    ...(metrics && { metrics: () => metrics.render() }),
    // The metrics page names every queue and its counts: with auth, an unscoped token.
    ...(auth === "required" && {
      authorizeMetrics: async (req: IncomingMessage) => {
        let principal: Principal;
        try {
          principal = await principalOf(req);
        } catch (e) {
          throw new HttpError(401, "UNAUTHENTICATED", (e as Error).message);
        }
        if (principal.inScope !== null) {
          throw new HttpError(403, "FORBIDDEN", "/metrics covers every queue: use a token without queue patterns");
        }
      },
    }),
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
      httpServer.listen(options.port ?? SERVER_DEFAULTS.port, host, () => {
        httpServer.off("error", reject);
        resolve();
      });
    });
  } catch (e) {
    await apollo.stop().catch(() => {});
    await tokens.stop();
    await closeEvents().catch(() => {});
    throw coerceError(e);
  }
  // Attached once listening: the WebSocket server re-emits the HTTP server's
  // errors, and a failed listen is reported above as a one-line error.
  const ws = attachGraphQLWebSocket({
    httpServer,
    path: GRAPHQL_PATH,
    schema,
    services,
    logger,
    limits,
    introspection,
    maxPayloadBytes: options.maxBodyBytes ?? SERVER_DEFAULTS.maxBodyBytes,
    initTimeoutMs: options.wsInitTimeoutMs ?? SERVER_DEFAULTS.wsInitTimeoutMs,
    maxConnections: options.maxConnections ?? SERVER_DEFAULTS.maxConnections,
    maxConnectionsPerIp: options.maxConnectionsPerIp ?? SERVER_DEFAULTS.maxConnectionsPerIp,
    maxSubscriptionsPerSocket: options.maxSubscriptionsPerSocket ?? SERVER_DEFAULTS.maxSubscriptionsPerSocket,
    keepAliveMs: options.wsKeepAliveMs ?? SERVER_DEFAULTS.wsKeepAliveMs,
    readGraceMs: options.subscriptionReadGraceMs ?? SERVER_DEFAULTS.subscriptionReadGraceMs,
    authRequired: auth === "required",
    allowedOrigins: options.allowedOrigins ?? [],
  });
  // Set before any request can arrive (this runs in the tick the listen completed in).
  metrics?.setSources({
    jobCounts: () => queues.countJobsByQueue(),
    liveCounts: () => ({ connections: ws.connectionCount(), subscriptions: live.activeCount() }),
    // SQLite: the store's one connection; PostgreSQL: what the store can see of its pool.
    pool: () => store.poolStats?.() ?? (store.dialect === "sqlite" ? { total: 1, max: 1 } : null),
  });
  maintenance?.start();

  const address = httpServer.address() as AddressInfo;
  const listening = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${listening}:${address.port}${GRAPHQL_PATH}`;

  return {
    url,
    port: address.port,
    services,
    auth,
    liveCounts: () => ({
      connections: ws.connectionCount(),
      subscriptions: live.activeCount(),
      feedListeners: feed.listenerCount(),
      busListeners: bus.listenerCount(),
    }),
    close() {
      closing ??= (async () => {
        logger.info("shutting down: finishing in-flight requests");
        // apollo.stop() drains: the listener closes at once, idle connections
        // close, and busy ones close after their response (or the grace period).
        const drained = apollo.stop();
        await ws.dispose(shutdownGraceMs);
        await live.closeAll();
        await tokens.stop();
        await maintenance?.stop();
        await drained;
        await closeEvents();
        await store.close();
        logger.info("shut down");
      })();
      return closing;
    },
  };
}
