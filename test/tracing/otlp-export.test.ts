/**
 * `jobwire serve` exports its spans over OTLP/HTTP when an endpoint is
 * configured: a real serve process, a real HTTP receiver on
 * port 0 standing in for the collector, spans flushed on SIGTERM.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { JobwireClient } from "../../src/client/index.ts";
import { startServeProcess } from "../helpers/serve-process.ts";
import type { ServeProcess } from "../helpers/serve-process.ts";

interface OtlpSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
}
interface OtlpRequest {
  resourceSpans: {
    resource: { attributes: { key: string; value: { stringValue?: string } }[] };
    scopeSpans: { scope: { name: string }; spans: OtlpSpan[] }[];
  }[];
}

let dir: string;
let collector: Server | null = null;
let serve: ServeProcess | null = null;
let client: JobwireClient | null = null;

afterEach(async () => {
  await client?.close();
  client = null;
  await serve?.stop();
  serve = null;
  await new Promise((resolve) => (collector ? collector.close(resolve) : resolve(undefined)));
  collector = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** An OTLP/HTTP receiver: collects the JSON bodies POSTed to /v1/traces. */
async function startCollector(): Promise<{ url: string; requests: { path: string; body: OtlpRequest }[] }> {
  const requests: { path: string; body: OtlpRequest }[] = [];
  collector = createServer((req, res) => {
    let text = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (text += chunk));
    req.on("end", () => {
      requests.push({ path: req.url ?? "", body: JSON.parse(text) as OtlpRequest });
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => collector?.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`, requests };
}

describe("jobwire serve --otlp-endpoint", () => {
  it("exports the GraphQL request span and the job service's spans to the collector", async () => {
    dir = mkdtempSync(join(tmpdir(), "jobwire-otlp-"));
    const otlp = await startCollector();
    serve = await startServeProcess(["-d", `file:${join(dir, "jobs.db")}`, "--otlp-endpoint", otlp.url]);
    expect(serve.logs.some((l) => l.msg === `exporting traces to ${otlp.url}`)).toBe(true);
    client = new JobwireClient({ url: serve.url });
    const { job } = await client.enqueueJob({ queue: "exported", payload: 1 });
    const [leased] = await client.claimJobs({ queues: ["exported"], workerId: "w1", limit: 1 });
    expect(leased?.job.id).toBe(job.id);
    await client.completeJob({ jobId: job.id, leaseToken: leased?.leaseToken ?? "", result: null });
    await client.close();
    client = null;
    // SIGTERM: the server closes, then flushes its batched spans.
    expect(await serve.stop()).toBe(0);
    serve = null;

    expect(otlp.requests.length).toBeGreaterThan(0);
    expect(otlp.requests.every((r) => r.path === "/v1/traces")).toBe(true);
    const resources = otlp.requests.flatMap((r) => r.body.resourceSpans);
    expect(resources[0]?.resource.attributes).toContainEqual({
      key: "service.name",
      value: { stringValue: "jobwire" },
    });
    const spans = resources.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
    const named = (name: string) => spans.filter((s) => s.name === name);
    const request = named("mutation EnqueueJob")[0];
    expect(request, `span names: ${spans.map((s) => s.name).join(", ")}`).toBeDefined();
    const enqueue = named("enqueue exported")[0];
    expect(enqueue).toMatchObject({ traceId: request?.traceId, parentSpanId: request?.spanId });
    expect(enqueue?.attributes).toContainEqual({ key: "messaging.message.id", value: { stringValue: job.id } });
    expect(named("mutation ClaimJobs")).toHaveLength(1);
    expect(named("claim")).toHaveLength(1);
    expect(named("mutation CompleteJob")).toHaveLength(1);
    expect(named("complete")).toHaveLength(1);
  });
});
