/**
 * The runnable examples do what their headers say, against a real
 * `jobwire serve` on SQLite: the producer enqueues a job and exits with its
 * outcome once its subscription sees the job finish (worked by
 * examples/worker.ts); the plain-fetch worker claims, heartbeats and
 * completes a job with hand-written GraphQL.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobwireClient } from "../../src/client/index.ts";
import { createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { runScript } from "../helpers/script-process.ts";
import type { ScriptProcess } from "../helpers/script-process.ts";
import { startServeProcess } from "../helpers/serve-process.ts";
import type { ServeProcess } from "../helpers/serve-process.ts";

describe("examples", () => {
  let db: TestDatabase;
  let server: ServeProcess;
  let worker: ScriptProcess;

  beforeAll(async () => {
    db = await createTestDatabase("sqlite");
    server = await startServeProcess(["--database", db.url]);
    worker = runScript("examples/worker.ts", ["--url", server.url, "--queue", "demo"]);
    await worker.waitForJson((l) => l.event === "ready", "the example worker");
  }, 60_000);
  afterAll(async () => {
    worker?.kill("SIGTERM");
    expect(await worker?.exited).toBe(0);
    expect(await server?.stop()).toBe(0);
    await db?.dispose();
  });

  /** examples/producer.ts enqueueing `payload` to the example worker's queue. */
  const runProducer = (payload: string) =>
    runScript("examples/producer.ts", ["--url", server.url, "--queue", "demo", "--payload", payload]);

  it("producer.ts awaits its job's result through a subscription (exit 0 when it succeeded)", async () => {
    const producer = runProducer('{"ms": 200}');
    expect(await producer.exited).toBe(0);
    const types = producer.json.filter((l) => "type" in l).map((l) => l.type);
    expect(types).toEqual(["ENQUEUED", "CLAIMED", "SUCCEEDED"]);
    expect(producer.json.at(-1)).toMatchObject({ state: "SUCCEEDED", result: { attempt: 1 } });
  }, 60_000);

  it("producer.ts exits 1 when the job fails for good", async () => {
    const producer = runProducer('{"fail": "permanent"}');
    expect(await producer.exited).toBe(1);
    expect(producer.json.at(-1)).toMatchObject({ state: "FAILED", error: { code: "NonRetryableError" } });
  }, 60_000);

  it("fetch-worker.ts works a job with plain fetch", async () => {
    const client = new JobwireClient({ url: server.url });
    try {
      const { job } = await client.enqueueJob({ queue: "plain", payload: { hello: "world" } });
      const plain = runScript("examples/fetch-worker.ts", ["--url", server.url, "--queue", "plain", "--once"]);
      expect(await plain.exited).toBe(0);
      expect(plain.json).toEqual([{ jobId: job.id, state: "SUCCEEDED" }]);
      expect(await client.job(job.id)).toMatchObject({
        state: "SUCCEEDED",
        result: { echoed: { hello: "world" } },
        attempts: 1,
      });
    } finally {
      await client.close();
    }
  }, 60_000);
});
