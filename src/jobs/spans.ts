/**
 * Spans of the job lifecycle in the service (enqueue, claim, complete, fail),
 * on `@opentelemetry/api` only. With no tracer provider registered (no SDK set
 * up) the API hands out non-recording spans: a few property reads per call,
 * nothing recorded, nothing exported. The server registers a provider only when
 * an OTLP endpoint is configured (src/server/tracing.ts); an embedding
 * application may register its own.
 */
import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Attributes, Span } from "@opentelemetry/api";
import { coerceError } from "./errors.ts";

/** The instrumentation scope of every jobwire span (server and SDK). */
export const TRACER_NAME = "jobwire";

/** Attribute names: OpenTelemetry's messaging conventions, plus jobwire's own. */
export const SPAN_ATTRIBUTES = Object.freeze({
  system: "messaging.system",
  operation: "messaging.operation.type",
  queue: "messaging.destination.name",
  jobId: "messaging.message.id",
  batchSize: "messaging.batch.message_count",
  attempt: "jobwire.job.attempt",
});

/**
 * Runs `fn` inside an active span `name` (so spans and trace contexts created
 * within are its children), ends it when `fn` settles, and marks it ERROR with
 * the exception when `fn` throws.
 */
export function inSpan<T>(
  name: string,
  kind: SpanKind,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  return trace
    .getTracer(TRACER_NAME)
    .startActiveSpan(
      name,
      { kind, attributes: { [SPAN_ATTRIBUTES.system]: "jobwire", ...attributes } },
      async (span) => {
        try {
          return await fn(span);
        } catch (e) {
          failSpan(span, e);
          throw e;
        } finally {
          span.end();
        }
      },
    );
}

/** Marks `span` failed with `error` (status ERROR, an exception event). */
export function failSpan(span: Span, error: unknown): void {
  const e = coerceError(error);
  span.recordException(e);
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
}

export { SpanKind };
