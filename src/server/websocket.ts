/**
 * graphql-ws (graphql-transport-ws protocol) on the HTTP server, at the same
 * path as Apollo (/graphql).
 *
 * Every operation gets what an HTTP request gets: parse and validation errors
 * with their codes, the depth and cost limits (graphql/limits.ts) checked on
 * coerced variables in onSubscribe, a fresh context, and errors formatted by
 * graphql/errors.ts (domain codes kept, internals masked with an errorId).
 * Subscription contexts do not cache loader reads: they live as long as the
 * subscription.
 *
 * Fan-out: when many clients hold the same subscription (same query text,
 * operation name and variables), each event is executed once for all of
 * them, not once per client: the live service hands every stream the same
 * event object, and the first stream to reach it stores its execution result
 * on that object for the rest (a WeakMap, gone with the event). Executing the
 * selection per subscriber was most of the server's time when 1,000 clients
 * watch one queue. Replayed events are read per subscriber and never shared.
 *
 * Connections must send connection_init within `initTimeoutMs` (graphql-ws
 * closes them with 4408 otherwise). Messages over `maxPayloadBytes` close the
 * connection with 1009. Pings, the keep-alive and what a stalled reader is
 * told are socket-reads.ts: every ping doubles as proof of what the client
 * has read, so a subscriber that stops reading is ended with
 * SUBSCRIPTION_OVERFLOW within its buffer's worth of events, and a socket
 * that stops answering pings is closed with 4408 "stalled: …" (graphql-ws's
 * own keep-alive, a silent terminate, is off).
 *
 * Access (src/auth/): a handshake whose Origin header is neither absent, nor
 * this server's own, nor one of --allowed-origins is refused with HTTP 403
 * (browsers send it; a page of another site must not reach the API through
 * the socket). With auth required, connection_init must carry
 * {"authorization": "Bearer <token>"}: none closes the socket with 4401, an
 * invalid, expired or revoked one with 4403; a token revoked later closes its
 * sockets with 4403 after the token service's next refresh (≤ 500 ms).
 *
 * Limits (README, "Security"): a handshake beyond `maxConnections` open
 * sockets is refused with HTTP 503, one beyond `maxConnectionsPerIp` from the
 * same remote address with HTTP 429 (both with Retry-After), before the
 * upgrade: a refused client costs no WebSocket, no timer and no graphql-ws
 * state. A socket is counted from its accepted handshake until its TCP
 * connection closes (the net socket's "close" always fires, also when the
 * upgrade fails half-way, so a count cannot leak). The address is the TCP
 * peer's: behind a proxy every client shares the proxy's, so raise the
 * per-address cap there. A subscription beyond `maxSubscriptionsPerSocket`
 * running on one socket gets the error TOO_MANY_SUBSCRIPTIONS and the socket
 * stays open; queries and mutations over the socket are not counted.
 */
import type { Server } from "node:http";
import {
  createSourceEventStream,
  execute,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  validate,
} from "graphql";
import type { DocumentNode, ExecutionArgs, ExecutionResult, GraphQLFormattedError, GraphQLSchema } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import type { Logger } from "pino";
import { WebSocketServer } from "ws";
import type { WebSocket } from "ws";
import { originAllowed } from "../auth/origins.ts";
import { OPEN_PRINCIPAL, parseBearer } from "../auth/token-service.ts";
import type { Principal } from "../auth/token-service.ts";
import { createContext } from "../graphql/context.ts";
import type { Services } from "../graphql/context.ts";
import { createFormatError, publicParseError, withoutSuggestions } from "../graphql/errors.ts";
import { checkQueryLimits, measureOperation } from "../graphql/limits.ts";
import type { QueryLimits } from "../graphql/limits.ts";
import { LiveStream } from "../subscriptions/live-stream.ts";
import { SocketReadTracker } from "./socket-reads.ts";

export interface GraphQLWebSocketOptions {
  httpServer: Server;
  path: string;
  schema: GraphQLSchema;
  services: Services;
  logger: Logger;
  limits: QueryLimits;
  introspection: boolean;
  maxPayloadBytes: number;
  initTimeoutMs: number;
  keepAliveMs: number;
  /** How long events sent to a subscription may go unconfirmed before they count against its buffer (socket-reads.ts). */
  readGraceMs: number;
  /** Require a valid API token in connection_init (--auth required). */
  authRequired: boolean;
  /** Origins allowed besides the server's own (normalised, see auth/origins.ts). */
  allowedOrigins: readonly string[];
  /** Open sockets at most, in total (beyond: HTTP 503). */
  maxConnections: number;
  /** Open sockets at most from one remote address (beyond: HTTP 429). */
  maxConnectionsPerIp: number;
  /** Running subscriptions at most on one socket (beyond: TOO_MANY_SUBSCRIPTIONS). */
  maxSubscriptionsPerSocket: number;
}

/** HTTP statuses of handshakes refused by the connection caps (README, "Security"). */
export const WS_REFUSED = Object.freeze({ TOO_MANY_CONNECTIONS: 503, TOO_MANY_FROM_ADDRESS: 429 });

/** Close codes of refused connections (graphql-ws uses 4401/4403 for the same meanings). */
export const WS_CLOSE = Object.freeze({ UNAUTHORIZED: 4401, FORBIDDEN: 4403 });

export interface GraphQLWebSocket {
  /** Open WebSocket connections. */
  connectionCount(): number;
  /**
   * Stops accepting connections and closes every open one with 1001; a client
   * that has not completed the close handshake after `graceMs` is cut off.
   */
  dispose(graceMs: number): Promise<void>;
}

type Result = ExecutionResult | Promise<ExecutionResult>;

/** The socket and graphql-ws id a subscription's execution args belong to. */
interface Origin {
  tracker: SocketReadTracker;
  id: string;
}

/**
 * graphql-js `subscribe`, except that subscriptions of the same `shape` (see
 * the header) share one execution per event object, and live streams are
 * registered with their socket's read tracker while they run.
 */
function sharedSubscribe(shapes: WeakMap<ExecutionArgs, string>, origins: WeakMap<ExecutionArgs, Origin>) {
  const executions = new WeakMap<object, Map<string, Result>>();
  return async (args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> => {
    const stream = await createSourceEventStream(args);
    if (!(Symbol.asyncIterator in stream)) return stream;
    // What subscribe resolvers return (LiveStream) is an async iterator.
    const source = stream as AsyncIterableIterator<unknown>;
    const origin = origins.get(args);
    const tracked = origin && source instanceof LiveStream ? source : null;
    if (origin && tracked) origin.tracker.add(origin.id, tracked);
    const untrack = () => {
      if (origin && tracked) origin.tracker.remove(origin.id, tracked);
    };
    const shape = shapes.get(args);
    const run = (payload: unknown): Result => {
      if (shape === undefined || typeof payload !== "object" || payload === null) {
        return execute({ ...args, rootValue: payload });
      }
      let byShape = executions.get(payload);
      if (!byShape) executions.set(payload, (byShape = new Map()));
      let result = byShape.get(shape);
      if (!result) byShape.set(shape, (result = execute({ ...args, rootValue: payload })));
      return result;
    };
    const iterator: AsyncIterableIterator<ExecutionResult> = {
      async next() {
        let item: IteratorResult<unknown>;
        try {
          item = await source.next();
        } catch (e) {
          untrack();
          throw e;
        }
        if (item.done) {
          untrack();
          return { value: undefined, done: true };
        }
        return { value: await run(item.value), done: false };
      },
      async return() {
        untrack();
        await source.return?.();
        return { value: undefined, done: true };
      },
      async throw(error?: unknown) {
        untrack();
        await source.return?.();
        throw error;
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  };
}

export function attachGraphQLWebSocket(options: GraphQLWebSocketOptions): GraphQLWebSocket {
  const { schema, services, logger, limits } = options;
  const { tokens } = services;
  /** Accepted handshakes whose TCP connection is still open: in total, and by remote address. */
  let open = 0;
  const openByAddress = new Map<string, number>();
  const retryAfter = { "retry-after": "5" };
  const wss = new WebSocketServer({
    server: options.httpServer,
    path: options.path,
    maxPayload: options.maxPayloadBytes,
    verifyClient: ({ req }, done) => {
      if (!originAllowed(req.headers.origin, req.headers.host, options.allowedOrigins)) {
        done(false, 403, "Forbidden: origin not allowed");
        return;
      }
      if (open >= options.maxConnections) {
        done(
          false,
          WS_REFUSED.TOO_MANY_CONNECTIONS,
          `Service Unavailable: the server holds its maximum of ${options.maxConnections} WebSocket connections`,
          retryAfter,
        );
        return;
      }
      const address = req.socket.remoteAddress ?? "unknown";
      const fromAddress = openByAddress.get(address) ?? 0;
      if (fromAddress >= options.maxConnectionsPerIp) {
        done(
          false,
          WS_REFUSED.TOO_MANY_FROM_ADDRESS,
          `Too Many Requests: ${options.maxConnectionsPerIp} WebSocket connections from this address are open`,
          retryAfter,
        );
        return;
      }
      open += 1;
      openByAddress.set(address, fromAddress + 1);
      req.socket.once("close", () => {
        open -= 1;
        const left = (openByAddress.get(address) ?? 1) - 1;
        if (left > 0) openByAddress.set(address, left);
        else openByAddress.delete(address);
      });
      done(true);
    },
  });
  /** Ids of the subscriptions started on each socket; those no longer in graphql-ws's ctx.subscriptions have ended. */
  const subscriptionIds = new WeakMap<WebSocket, Set<string>>();
  /** The principal of each acknowledged connection (auth required only). */
  const principals = new Map<WebSocket, Principal>();
  const stopRevocations = options.authRequired
    ? tokens.onRefresh(() => {
        for (const [socket, principal] of principals) {
          if (principal.tokenHash !== null && !tokens.isLive(principal.tokenHash)) {
            principals.delete(socket);
            socket.close(WS_CLOSE.FORBIDDEN, "Forbidden: the API token was revoked or expired");
          }
        }
      })
    : () => {};
  const formatError = createFormatError(logger);
  const rules = options.introspection ? specifiedRules : [...specifiedRules, NoSchemaIntrospectionCustomRule];
  const shapes = new WeakMap<ExecutionArgs, string>();
  const origins = new WeakMap<ExecutionArgs, Origin>();
  const trackers = new WeakMap<WebSocket, SocketReadTracker>();
  const formatDomainError = (error: Error): GraphQLFormattedError => {
    const wrapped = new GraphQLError(error.message, { originalError: error });
    return formatError(wrapped.toJSON(), wrapped);
  };
  // Registered before graphql-ws's own listener, so a socket's tracker exists
  // before its first message is handled.
  wss.on("connection", (socket) => {
    trackers.set(socket, new SocketReadTracker(socket, options.keepAliveMs, options.readGraceMs, formatDomainError));
  });
  const coded = (errors: readonly GraphQLError[], code: string): GraphQLError[] =>
    errors.map((e) => new GraphQLError(e.message, { nodes: e.nodes, originalError: e, extensions: { code } }));

  const cleanup = useServer(
    {
      schema,
      // graphql-ws would use its own import of graphql; under a bundler or test
      // runner that can be a second copy, so hand it ours.
      execute,
      subscribe: sharedSubscribe(shapes, origins),
      validate,
      parse,
      connectionInitWaitTimeout: options.initTimeoutMs,
      onConnect: async (ctx) => {
        if (!options.authRequired) return true;
        const { socket } = ctx.extra;
        const header = ctx.connectionParams?.authorization;
        const token = parseBearer(typeof header === "string" ? header : undefined);
        if (token === undefined) {
          socket.close(
            WS_CLOSE.UNAUTHORIZED,
            'Unauthorized: send {"authorization": "Bearer <token>"} in connection_init',
          );
          return false;
        }
        const principal = token === null ? null : await tokens.verify(token);
        if (!principal) {
          socket.close(WS_CLOSE.FORBIDDEN, "Forbidden: the API token is invalid, expired or revoked");
          return false;
        }
        principals.set(socket, principal);
        socket.once("close", () => principals.delete(socket));
        return true;
      },
      onSubscribe: (ctx, id, payload): ExecutionArgs | readonly GraphQLError[] => {
        const principal = options.authRequired ? principals.get(ctx.extra.socket) : OPEN_PRINCIPAL;
        if (!principal) {
          // Only between a revocation and the close it causes.
          return [new GraphQLError("the API token was revoked", { extensions: { code: "UNAUTHENTICATED" } })];
        }
        let document: DocumentNode;
        try {
          document = parse(payload.query);
        } catch (e) {
          const { message } = publicParseError({ message: e instanceof Error ? e.message : String(e) });
          return coded(
            [new GraphQLError(message, { nodes: e instanceof GraphQLError ? e.nodes : null })],
            "GRAPHQL_PARSE_FAILED",
          );
        }
        const invalid = validate(schema, document, rules).map((e) =>
          options.introspection ? e : new GraphQLError(withoutSuggestions(e.message), { nodes: e.nodes }),
        );
        if (invalid.length > 0) return coded(invalid, "GRAPHQL_VALIDATION_FAILED");
        const operation = getOperationAST(document, payload.operationName);
        if (!operation) {
          return [new GraphQLError("Unable to identify the operation to run", { extensions: { code: "BAD_REQUEST" } })];
        }
        const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], payload.variables ?? {});
        if (coerced.errors) return coded(coerced.errors, "BAD_USER_INPUT");
        const tooBig = checkQueryLimits(measureOperation(schema, document, operation, coerced.coerced), limits);
        if (tooBig) return [tooBig];
        const args: ExecutionArgs = {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: createContext(services, logger, principal, { cache: operation.operation !== "subscription" }),
        };
        if (operation.operation === "subscription") {
          // graphql-ws holds every running operation of the socket in
          // ctx.subscriptions (this one included) and always removes it when
          // it ends, so ids gone from there are pruned here.
          const { socket } = ctx.extra;
          let ids = subscriptionIds.get(socket);
          if (!ids) subscriptionIds.set(socket, (ids = new Set()));
          for (const other of ids) if (!(other in ctx.subscriptions)) ids.delete(other);
          if (ids.size >= options.maxSubscriptionsPerSocket) {
            return [
              new GraphQLError(
                `this connection already runs ${options.maxSubscriptionsPerSocket} subscriptions: ` +
                  "complete one first, or open another connection",
                {
                  extensions: {
                    code: "TOO_MANY_SUBSCRIPTIONS",
                    maxSubscriptionsPerSocket: options.maxSubscriptionsPerSocket,
                  },
                },
              ),
            ];
          }
          ids.add(id);
          shapes.set(args, JSON.stringify([payload.query, payload.operationName ?? null, payload.variables ?? null]));
          const tracker = trackers.get(ctx.extra.socket);
          if (tracker) origins.set(args, { tracker, id });
        }
        return args;
      },
      onNext: (ctx, id, _payload, _args, result) => {
        trackers.get(ctx.extra.socket)?.wrote(id);
        if (!result.errors) return;
        return { ...result, errors: result.errors.map((e) => formatError(e.toJSON(), e)) };
      },
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => formatError(e.toJSON(), e)),
    },
    wss,
    0, // the keep-alive is SocketReadTracker's
  );

  return {
    connectionCount: () => wss.clients.size,
    async dispose(graceMs) {
      stopRevocations();
      const cutOff = setTimeout(() => {
        for (const client of wss.clients) client.terminate();
      }, graceMs);
      try {
        await cleanup.dispose();
      } finally {
        clearTimeout(cutOff);
      }
    },
  };
}
