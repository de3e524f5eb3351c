/**
 * One trace from the producer to the worker's handler, across processes: this
 * test process is the producer (and hosts the server), with an in-memory
 * OpenTelemetry exporter; the worker runs in a child process with its own
 * (fixtures/traced-worker.ts) and prints its spans. The W3C trace context
 * travels only inside the job (metadata "jobwire.trace"), through the
 * database.
 */
import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { JobwireClient } from "../../src/client/index.ts";
import { TRACE_METADATA_KEY } from "../../src/jobs/trace-context.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";
import { runScript } from "../helpers/script-process.ts";
import type { ScriptProcess } from "../helpers/script-process.ts";
import { registerMemoryTracing, spanRecord } from "./fixtures/otel-memory.ts";
import type { MemoryTracing, SpanRecord } from "./fixtures/otel-memory.ts";

const WORKER = "test/tracing/fixtures/traced-worker.ts";

let tracing: MemoryTracing;
let app: TestServer | null = null;
let client: JobwireClient | null = null;
let worker: ScriptProcess | null = null;

beforeAll(() => {
  tracing = registerMemoryTracing();
});
afterAll(async () => {
  await tracing.stop();
});
afterEach(async () => {
  if (worker && worker.child.exitCode === null) {
    worker.kill("SIGKILL");
    await worker.exited;
  }
  worker = null;
  await client?.close();
  client = null;
  await app?.close();
  app = null;
  tracing.exporter.reset();
});

function workerSpans(proc: ScriptProcess): SpanRecord[] {
  return proc.json.filter((l) => "span" in l).map((l) => l.span as SpanRecord);
}

describe.each(BACKENDS)("tracing across processes on %s", (dialect) => {
  it("links the producer's enqueue span to the worker's handler span, and marks a failed run", async () => {
    app = await startTestServer(dialect);
    client = new JobwireClient({ url: app.url });
    const queue = "traced";

    const ok = await client.enqueueJob({ queue, payload: { to: "a@example.com" }, metadata: { tenant: "t1" } });
    const bad = await client.enqueueJob({ queue, payload: { fail: true } });

    // Producer side: one PRODUCER span per enqueue, each the root of its trace.
    const local = tracing.exporter.getFinishedSpans().map(spanRecord);
    const enqueues = local.filter((s) => s.name === `enqueue ${queue}` && s.kind === SpanKind.PRODUCER);
    const sdkEnqueue = (jobId: string) => {
      const span = enqueues.find((s) => s.attributes["messaging.message.id"] === jobId && s.parentSpanId === null);
      expect(span, `the SDK's enqueue span of ${jobId}`).toBeDefined();
      return span as SpanRecord;
    };
    const okEnqueue = sdkEnqueue(ok.job.id);
    const badEnqueue = sdkEnqueue(bad.job.id);
    expect(okEnqueue.traceId).not.toBe(badEnqueue.traceId);

    // The context is in the job, next to the producer's own metadata.
    const stored = (await client.job(ok.job.id)).metadata as Record<string, unknown>;
    expect(stored.tenant).toBe("t1");
    expect(stored[TRACE_METADATA_KEY]).toEqual({
      traceparent: `00-${okEnqueue.traceId}-${okEnqueue.spanId}-01`,
    });

    // The server's request span continues the SDK's trace (traceparent header),
    // named after the operation, and the service's enqueue span is its child.
    const request = local.find((s) => s.name === "mutation EnqueueJob" && s.traceId === okEnqueue.traceId);
    expect(request).toMatchObject({ kind: SpanKind.SERVER, parentSpanId: okEnqueue.spanId });
    const serviceEnqueue = local.find(
      (s) => s.name === `enqueue ${queue}` && s.traceId === okEnqueue.traceId && s.parentSpanId === request?.spanId,
    );
    expect(serviceEnqueue, "the job service's enqueue span").toBeDefined();

    // Worker side, in another process: its handler span is a child of the producer's span.
    worker = runScript(WORKER, [app.url, queue, "2"]);
    await worker.waitForJson((l) => l.done === true, "the worker's spans", 30_000);
    expect(await worker.exited).toBe(0);
    const remote = workerSpans(worker);

    const okRun = remote.find(
      (s) => s.name === `process ${queue}` && s.attributes["messaging.message.id"] === ok.job.id,
    );
    expect(okRun).toMatchObject({
      kind: SpanKind.CONSUMER,
      traceId: okEnqueue.traceId,
      parentSpanId: okEnqueue.spanId,
      status: { code: SpanStatusCode.UNSET },
      attributes: {
        "messaging.system": "jobwire",
        "messaging.destination.name": queue,
        "jobwire.job.attempt": 1,
      },
    });
    // What the handler does is traced under its span.
    expect(remote.find((s) => s.name === "send email")).toMatchObject({
      traceId: okEnqueue.traceId,
      parentSpanId: okRun?.spanId,
    });

    const badRun = remote.find(
      (s) => s.name === `process ${queue}` && s.attributes["messaging.message.id"] === bad.job.id,
    );
    expect(badRun).toMatchObject({
      kind: SpanKind.CONSUMER,
      traceId: badEnqueue.traceId,
      parentSpanId: badEnqueue.spanId,
      status: { code: SpanStatusCode.ERROR, message: "told to fail" },
      events: ["exception"],
    });
    expect((await client.job(bad.job.id)).state).toBe("FAILED");
    expect((await client.job(ok.job.id)).state).toBe("SUCCEEDED");
  });

  it("a producer's surrounding span is the parent; a bulk enqueue carries one context to every job", async () => {
    app = await startTestServer(dialect);
    client = new JobwireClient({ url: app.url });
    const c = client;
    const { parent, jobs } = await trace.getTracer("app").startActiveSpan("checkout", async (span) => {
      const result = await c.enqueueJobs([
        { queue: "bulk", payload: 1 },
        { queue: "bulk", payload: 2, metadata: { keep: true } },
      ]);
      span.end();
      return { parent: span.spanContext(), jobs: result };
    });
    const enqueue = tracing.exporter
      .getFinishedSpans()
      .map(spanRecord)
      .find((s) => s.name === "enqueue" && s.parentSpanId === parent.spanId);
    expect(enqueue).toMatchObject({ kind: SpanKind.PRODUCER, traceId: parent.traceId });
    expect(enqueue?.attributes["messaging.batch.message_count"]).toBe(2);
    const metadata = await Promise.all(jobs.map(async (j) => (await c.job(j.job.id)).metadata));
    const carrier = { traceparent: `00-${parent.traceId}-${enqueue?.spanId}-01` };
    expect(metadata).toEqual([{ [TRACE_METADATA_KEY]: carrier }, { keep: true, [TRACE_METADATA_KEY]: carrier }]);
  });
  it("a refused enqueue ends the SDK's span and the request span with status ERROR and the error code", async () => {
    app = await startTestServer(dialect);
    client = new JobwireClient({ url: app.url });
    await expect(client.enqueueJob({ queue: "bad queue!", payload: 1 })).rejects.toMatchObject({
      code: "BAD_USER_INPUT",
    });
    const spans = tracing.exporter.getFinishedSpans().map(spanRecord);
    const sdk = spans.find((s) => s.name === "enqueue bad queue!" && s.parentSpanId === null);
    expect(sdk?.status.code).toBe(SpanStatusCode.ERROR);
    expect(spans.find((s) => s.name === "mutation EnqueueJob")).toMatchObject({
      traceId: sdk?.traceId,
      parentSpanId: sdk?.spanId,
      status: { code: SpanStatusCode.ERROR },
      attributes: { "graphql.error.code": "BAD_USER_INPUT", "graphql.operation.type": "mutation" },
    });
  });
});
