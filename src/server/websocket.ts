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
import { createContext } from "../graphql/context.ts";
import type { Services } from "../graphql/context.ts";
import { createFormatError } from "../graphql/errors.ts";
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
}

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
  const wss = new WebSocketServer({
    server: options.httpServer,
    path: options.path,
    maxPayload: options.maxPayloadBytes,
  });
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
    trackers.set(socket, new SocketReadTracker(socket, options.keepAliveMs, formatDomainError));
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
      onSubscribe: (ctx, id, payload): ExecutionArgs | readonly GraphQLError[] => {
        let document: DocumentNode;
        try {
          document = parse(payload.query);
        } catch (e) {
          return coded([e instanceof GraphQLError ? e : new GraphQLError(String(e))], "GRAPHQL_PARSE_FAILED");
        }
        const invalid = validate(schema, document, rules);
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
          contextValue: createContext(services, logger, { cache: operation.operation !== "subscription" }),
        };
        if (operation.operation === "subscription") {
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
