/**
 * Apollo Server over the schema: masked errors (graphql/errors.ts), query
 * depth and cost limits (graphql/limits.ts), CSRF prevention, configurable
 * introspection, and draining of the HTTP server on stop.
 */
import type { Server } from "node:http";
import { ApolloServer } from "@apollo/server";
import type { ApolloServerPlugin } from "@apollo/server";
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
} from "@apollo/server/plugin/disabled";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { getVariableValues, GraphQLError } from "graphql";
import type { GraphQLSchema } from "graphql";
import type { Logger } from "pino";
import type { GraphQLContext } from "../graphql/context.ts";
import { createFormatError, UNAVAILABLE } from "../graphql/errors.ts";
import { checkQueryLimits, measureOperation } from "../graphql/limits.ts";
import { tracingPlugin } from "./tracing.ts";
import type { QueryLimits } from "../graphql/limits.ts";

export interface ApolloOptions {
  schema: GraphQLSchema;
  httpServer: Server;
  logger: Logger;
  limits: QueryLimits;
  introspection: boolean;
  /** How long stop() lets in-flight requests finish before closing their connections. */
  shutdownGraceMs: number;
}

export function createApollo(options: ApolloOptions): ApolloServer<GraphQLContext> {
  const logger = options.logger.child({ component: "apollo" });
  return new ApolloServer<GraphQLContext>({
    schema: options.schema,
    introspection: options.introspection,
    csrfPrevention: true,
    // Shutdown is ours (server.ts close(), called by the CLI on SIGTERM/SIGINT), in our order.
    stopOnTerminationSignals: false,
    includeStacktraceInErrorResponses: false,
    // No "Did you mean …?" in validation errors when the schema is not public.
    hideSchemaDetailsFromClientErrors: !options.introspection,
    formatError: createFormatError(options.logger),
    logger: {
      debug: (m) => logger.debug(m),
      info: (m) => logger.info(m),
      warn: (m) => logger.warn(m),
      error: (m) => logger.error(m),
    },
    plugins: [
      ApolloServerPluginDrainHttpServer({
        httpServer: options.httpServer,
        stopGracePeriodMillis: options.shutdownGraceMs,
      }),
      // The default landing page loads Apollo Sandbox from a CDN; jobwire serves offline.
      ApolloServerPluginLandingPageDisabled(),
      // jobwire sets no cache hints and is no federated subgraph; installed by
      // default, these plugins hook every field resolution (the cache-control
      // one showed up in server profiles of the worker drain).
      ApolloServerPluginCacheControlDisabled(),
      ApolloServerPluginInlineTraceDisabled(),
      queryLimitsPlugin(options.limits),
      tracingPlugin(),
      unavailablePlugin(),
    ],
  });
}

/**
 * HTTP 503 with Retry-After for a response that carries no data because the
 * database is unavailable (every root field null, an UNAVAILABLE error): a
 * load balancer or HTTP client then sees an outage, not a 200. A response with
 * some data keeps 200 (GraphQL over HTTP: partial results are results).
 */
function unavailablePlugin(): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== "single") return;
          const { data, errors } = response.body.singleResult;
          if (!errors?.some((e) => e.extensions?.code === UNAVAILABLE)) return;
          if (data && Object.values(data).some((value) => value !== null)) return;
          response.http.status = 503;
          response.http.headers.set("retry-after", "1");
        },
      };
    },
  };
}

function queryLimitsPlugin(limits: QueryLimits): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request, document, operation, schema }) {
          if (!operation) return; // Apollo has already refused a document without the operation
          if (operation.operation === "subscription") {
            throw new GraphQLError(
              "Subscriptions are served over WebSocket (graphql-ws, the graphql-transport-ws protocol) at this same URL with ws:// or wss://",
              { extensions: { code: "BAD_REQUEST", http: { status: 400 } } },
            );
          }
          // Price the operation with its coerced variables; when they do not
          // coerce, execution reports that (BAD_USER_INPUT) instead.
          const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], request.variables ?? {});
          if (coerced.errors) return;
          const error = checkQueryLimits(measureOperation(schema, document, operation, coerced.coerced), limits);
          if (error) throw error;
        },
      };
    },
  };
}
