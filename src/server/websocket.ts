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
 * Connections must send connection_init within `initTimeoutMs` (graphql-ws
 * closes them with 4408 otherwise); the server pings every `keepAliveMs` and
 * terminates a connection that has not answered by the next ping. Messages
 * over `maxPayloadBytes` close the connection with 1009.
 */
import type { Server } from "node:http";
import {
  execute,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  subscribe,
  validate,
} from "graphql";
import type { DocumentNode, ExecutionArgs, GraphQLSchema } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import type { Logger } from "pino";
import { WebSocketServer } from "ws";
import { createContext } from "../graphql/context.ts";
import type { Services } from "../graphql/context.ts";
import { createFormatError } from "../graphql/errors.ts";
import { checkQueryLimits, measureOperation } from "../graphql/limits.ts";
import type { QueryLimits } from "../graphql/limits.ts";

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

export function attachGraphQLWebSocket(options: GraphQLWebSocketOptions): GraphQLWebSocket {
  const { schema, services, logger, limits } = options;
  const wss = new WebSocketServer({
    server: options.httpServer,
    path: options.path,
    maxPayload: options.maxPayloadBytes,
  });
  const formatError = createFormatError(logger);
  const rules = options.introspection ? specifiedRules : [...specifiedRules, NoSchemaIntrospectionCustomRule];
  const coded = (errors: readonly GraphQLError[], code: string): GraphQLError[] =>
    errors.map((e) => new GraphQLError(e.message, { nodes: e.nodes, originalError: e, extensions: { code } }));

  const cleanup = useServer(
    {
      schema,
      // graphql-ws would use its own import of graphql; under a bundler or test
      // runner that can be a second copy, so hand it ours.
      execute,
      subscribe,
      validate,
      parse,
      connectionInitWaitTimeout: options.initTimeoutMs,
      onSubscribe: (_ctx, _id, payload): ExecutionArgs | readonly GraphQLError[] => {
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
        return {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: createContext(services, logger, { cache: operation.operation !== "subscription" }),
        };
      },
      onNext: (_ctx, _id, _payload, _args, result) => {
        if (!result.errors) return;
        return { ...result, errors: result.errors.map((e) => formatError(e.toJSON(), e)) };
      },
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => formatError(e.toJSON(), e)),
    },
    wss,
    options.keepAliveMs,
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
