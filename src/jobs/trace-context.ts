/**
 * The W3C trace context carried inside a job, from the producer that enqueued
 * it to the worker that runs it: `traceparent` (and `tracestate`) under one
 * reserved key of the job's `metadata`.
 *
 * Why metadata rather than a new column: metadata is already stored, returned
 * by claimJobs and shown in the API, so a context set by any producer (the
 * SDK, the in-process service, or a client in another language that writes
 * `{"jobwire.trace": {"traceparent": "00-…"}}` itself) reaches any worker
 * without a migration or a schema change.
 *
 * Only `@opentelemetry/api` is used. Without a registered propagator (no
 * OpenTelemetry SDK set up) `propagation.inject` writes nothing, and the job's
 * metadata is left exactly as given: tracing off costs one no-op call.
 */
import { context, propagation, ROOT_CONTEXT } from "@opentelemetry/api";
import type { Context } from "@opentelemetry/api";
import type { JsonValue } from "./types.ts";

/** The metadata key holding the carrier: `{ traceparent, tracestate? }`. */
export const TRACE_METADATA_KEY = "jobwire.trace";

type JsonObject = { [key: string]: JsonValue };

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * `metadata` with the trace context of `ctx` (default: the active one) added
 * under TRACE_METADATA_KEY. Returned unchanged when the propagator writes
 * nothing (tracing off, or no span active), when the key is already there (a
 * producer upstream set it: its context wins), or when metadata is not an
 * object (an array or a scalar has no room for a key).
 */
export function withTraceContext<M extends JsonValue | null | undefined>(
  metadata: M,
  ctx: Context = context.active(),
): M | JsonObject {
  if (metadata !== null && metadata !== undefined && !isObject(metadata)) return metadata;
  if (isObject(metadata) && TRACE_METADATA_KEY in metadata) return metadata;
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  if (carrier.traceparent === undefined) return metadata;
  const base: JsonObject = isObject(metadata) ? metadata : {};
  return { ...base, [TRACE_METADATA_KEY]: carrier };
}

/**
 * The producer's context read back from a job's metadata, or ROOT_CONTEXT when
 * there is none (or no propagator is registered to read it).
 */
export function traceContextOf(metadata: JsonValue | null | undefined): Context {
  if (!isObject(metadata)) return ROOT_CONTEXT;
  const carrier = metadata[TRACE_METADATA_KEY];
  if (!isObject(carrier) || typeof carrier.traceparent !== "string") return ROOT_CONTEXT;
  const strings: Record<string, string> = {};
  for (const [k, v] of Object.entries(carrier)) if (typeof v === "string") strings[k] = v;
  return propagation.extract(ROOT_CONTEXT, strings);
}
