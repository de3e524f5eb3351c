/**
 * The trace context in a job's metadata, with tracing off and on, in one
 * process: with no OpenTelemetry SDK registered nothing is added to a job and
 * nothing throws (producer, service and Worker work as before); with one,
 * the in-process service injects its enqueue span's context, a context set
 * upstream wins, and metadata that is not an object is left alone.
 */
import { context, SpanKind, trace } from "@opentelemetry/api";
import { afterEach, describe, expect, it } from "vitest";
import { JobwireClient, Worker } from "../../src/client/index.ts";
import { TRACE_METADATA_KEY, traceContextOf, withTraceContext } from "../../src/jobs/trace-context.ts";
import type { JsonValue } from "../../src/jobs/types.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { registerMemoryTracing, spanRecord } from "./fixtures/otel-memory.ts";
import type { MemoryTracing } from "./fixtures/otel-memory.ts";

let app: TestServer | null = null;
let client: JobwireClient | null = null;
let tracing: MemoryTracing | null = null;

afterEach(async () => {
  await client?.close();
  client = null;
  await app?.close();
  app = null;
  await tracing?.stop();
  tracing = null;
});

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("tracing off (no SDK registered)", () => {
  it("adds nothing to jobs, and producer, service and Worker run as before", async () => {
    expect(trace.getActiveSpan()).toBeUndefined();
    app = await startTestServer("sqlite");
    client = new JobwireClient({ url: app.url });
    const c = client;
    const plain = await c.enqueueJob({ queue: "off", payload: 1 });
    const withMeta = await c.enqueueJob({ queue: "off", payload: 2, metadata: { tenant: "t1" } });
    const bulk = await c.enqueueJobs([
      { queue: "off", payload: 3 },
      { queue: "off", payload: 4, metadata: [1, 2] },
    ]);
    const local = await app.server.services.jobs.enqueue({ queue: "off", payload: 5 });
    const ids = [plain, withMeta, ...bulk, local].map((r) => r.job.id);
    expect(await Promise.all(ids.map(async (id) => (await c.job(id)).metadata))).toEqual([
      null,
      { tenant: "t1" },
      null,
      [1, 2],
      null,
    ]);

    const seen: (string | undefined)[] = [];
    const worker = new Worker({
      services: app.server.services,
      queues: ["off"],
      concurrency: 5,
      handler: () => {
        seen.push(trace.getActiveSpan()?.spanContext().traceId);
        return null;
      },
    }).start();
    try {
      await until("every job SUCCEEDED", async () =>
        (await Promise.all(ids.map((id) => c.job(id)))).every((j) => j.state === "SUCCEEDED"),
      );
    } finally {
      await worker.stop();
    }
    // The no-op API: no context manager, so no active span inside the handler either.
    expect(seen).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it("withTraceContext returns the metadata itself; traceContextOf ignores what it cannot read", () => {
    const metadata = { a: 1 };
    expect(withTraceContext(metadata)).toBe(metadata);
    expect(withTraceContext(null)).toBeNull();
    expect(withTraceContext(undefined)).toBeUndefined();
    const unreadable: JsonValue[] = [
      null,
      3,
      "x",
      [1],
      {},
      { [TRACE_METADATA_KEY]: "00-x" },
      { [TRACE_METADATA_KEY]: {} },
    ];
    for (const bad of unreadable) {
      expect(trace.getSpanContext(traceContextOf(bad))).toBeUndefined();
    }
  });
});

describe("tracing on (SDK registered in this process)", () => {
  it("outside a span nothing is added; inside one, the service's enqueue span context is", async () => {
    tracing = registerMemoryTracing();
    const t = tracing;
    app = await startTestServer("sqlite");
    const jobs = app.server.services.jobs;

    const outside = await jobs.enqueue({ queue: "on", payload: 1 });
    // The service's own enqueue span is a root here: its context is still carried.
    const rootEnqueue = t.exporter
      .getFinishedSpans()
      .map(spanRecord)
      .find((s) => s.attributes["messaging.message.id"] === outside.job.id);
    expect(rootEnqueue).toMatchObject({ kind: SpanKind.PRODUCER, parentSpanId: null });
    expect(outside.job.metadata).toEqual({
      [TRACE_METADATA_KEY]: { traceparent: `00-${rootEnqueue?.traceId}-${rootEnqueue?.spanId}-01` },
    });

    // Not inside the service: withTraceContext with no active span adds nothing.
    expect(withTraceContext({ a: 1 })).toEqual({ a: 1 });

    const { parent, job } = await trace.getTracer("app").startActiveSpan("request", async (span) => {
      const result = await jobs.enqueue({ queue: "on", payload: 2, metadata: { tenant: "t1" } });
      span.end();
      return { parent: span.spanContext(), job: result.job };
    });
    const enqueue = t.exporter
      .getFinishedSpans()
      .map(spanRecord)
      .find((s) => s.attributes["messaging.message.id"] === job.id);
    expect(enqueue).toMatchObject({ name: "enqueue on", traceId: parent.traceId, parentSpanId: parent.spanId });
    expect(job.metadata).toEqual({
      tenant: "t1",
      [TRACE_METADATA_KEY]: { traceparent: `00-${parent.traceId}-${enqueue?.spanId}-01` },
    });
    // Read back, it is the producer's span context.
    expect(trace.getSpanContext(traceContextOf(job.metadata))).toMatchObject({
      traceId: parent.traceId,
      spanId: enqueue?.spanId,
      isRemote: true,
    });
  });

  it("a context set upstream wins, and metadata that is not an object is left as it is", async () => {
    tracing = registerMemoryTracing();
    const upstream = { [TRACE_METADATA_KEY]: { traceparent: `00-${"1".repeat(32)}-${"2".repeat(16)}-01` } };
    await trace.getTracer("app").startActiveSpan("request", async (span) => {
      expect(withTraceContext(upstream)).toBe(upstream);
      const list = [1, 2];
      expect(withTraceContext(list)).toBe(list);
      expect(withTraceContext("text")).toBe("text");
      expect(withTraceContext(null)).toMatchObject({ [TRACE_METADATA_KEY]: { traceparent: expect.any(String) } });
      // An explicit context argument is what gets injected.
      expect(withTraceContext(null, context.active())).toEqual(withTraceContext(null));
      span.end();
    });
  });
});
