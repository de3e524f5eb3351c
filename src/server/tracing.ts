/**
 * OpenTelemetry in the server: a SERVER span per GraphQL request over HTTP,
 * named after its operation (`mutation EnqueueJob`), whose children are the
 * job service's spans (src/jobs/spans.ts); and, only when an OTLP endpoint is
 * configured, the SDK that records and exports them.
 *
 * "No cost when off": this module imports only `@opentelemetry/api`. Without
 * a registered provider its spans are non-recording, the plugin below sees
 * that and adds no hooks, and the SDK packages (optionalDependencies) are
 * never loaded: startTracing imports them dynamically, only when asked.
 */
import type { IncomingMessage } from "node:http";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { ApolloServerPlugin } from "@apollo/server";
import type { GraphQLContext } from "../graphql/context.ts";
import { failSpan, TRACER_NAME } from "../jobs/spans.ts";

/**
 * Runs `fn` (one GraphQL request) inside a SERVER span that continues the
 * caller's trace when its headers carry a W3C `traceparent`.
 */
export function inGraphQLRequestSpan<T>(req: IncomingMessage, fn: () => Promise<T>): Promise<T> {
  const parent = propagation.extract(context.active(), req.headers);
  const span = trace
    .getTracer(TRACER_NAME)
    .startSpan(
      "graphql",
      { kind: SpanKind.SERVER, attributes: { "http.request.method": req.method ?? "GET" } },
      parent,
    );
  return context.with(trace.setSpan(parent, span), async () => {
    try {
      return await fn();
    } catch (e) {
      // Refused before Apollo (a body too large, bad JSON): answered by http-handler.ts.
      failSpan(span, e);
      throw e;
    } finally {
      span.end();
    }
  });
}

/** Names the request's span after its operation and marks it ERROR when the response has errors. */
export function tracingPlugin(): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      const span = trace.getActiveSpan();
      if (!span?.isRecording()) return;
      return {
        async didResolveOperation({ operation, operationName }) {
          if (!operation) return;
          const name = operationName ?? operation.name?.value;
          span.updateName(name ? `${operation.operation} ${name}` : operation.operation);
          span.setAttribute("graphql.operation.type", operation.operation);
          if (name) span.setAttribute("graphql.operation.name", name);
        },
        // The errors as the client gets them: public codes, internal ones masked (graphql/errors.ts).
        async willSendResponse({ response }) {
          const body = response.body;
          const errors = body.kind === "single" ? body.singleResult.errors : body.initialResult.errors;
          const first = errors?.[0];
          if (!first) return;
          span.setStatus({ code: SpanStatusCode.ERROR, message: first.message });
          const code = first.extensions?.code;
          if (typeof code === "string") span.setAttribute("graphql.error.code", code);
        },
      };
    },
  };
}

export interface TracingOptions {
  /** OTLP/HTTP base URL, e.g. http://127.0.0.1:4318 (traces go to /v1/traces). */
  endpoint: string;
  serviceName: string;
}

/**
 * Registers the OpenTelemetry SDK for this process: a tracer provider that
 * batches spans to the OTLP/HTTP endpoint, the AsyncLocalStorage context
 * manager (so a span is the parent of what runs inside it), and the W3C
 * trace-context propagator. Returns a shutdown that flushes what is pending.
 * Fails with a clear error when the optional SDK packages are not installed.
 */
export async function startTracing(options: TracingOptions): Promise<() => Promise<void>> {
  let sdk;
  try {
    const [base, exporter, hooks, core, resources] = await Promise.all([
      import("@opentelemetry/sdk-trace-base"),
      import("@opentelemetry/exporter-trace-otlp-http"),
      import("@opentelemetry/context-async-hooks"),
      import("@opentelemetry/core"),
      import("@opentelemetry/resources"),
    ]);
    sdk = { base, exporter, hooks, core, resources };
  } catch (e) {
    throw new Error(
      "tracing needs the OpenTelemetry SDK (optional dependencies of jobwire): npm install @opentelemetry/sdk-trace-base @opentelemetry/exporter-trace-otlp-http @opentelemetry/context-async-hooks @opentelemetry/core @opentelemetry/resources",
      { cause: e },
    );
  }
  // service.name is ours unless OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES say otherwise (env wins).
  const { defaultResource, detectResources, envDetector, resourceFromAttributes } = sdk.resources;
  const resource = defaultResource()
    .merge(resourceFromAttributes({ "service.name": options.serviceName }))
    .merge(detectResources({ detectors: [envDetector] }));
  const url = new URL("v1/traces", options.endpoint.endsWith("/") ? options.endpoint : `${options.endpoint}/`);
  const provider = new sdk.base.BasicTracerProvider({
    resource,
    spanProcessors: [new sdk.base.BatchSpanProcessor(new sdk.exporter.OTLPTraceExporter({ url: url.href }))],
  });
  context.setGlobalContextManager(new sdk.hooks.AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new sdk.core.W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return async () => {
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  };
}
