/**
 * The SDK retries a call the server answers UNAVAILABLE when it is safe to
 * repeat (issue 15 item 5): an enqueue with an idempotency key and a
 * heartbeat go through once another process lets go of SQLite's write lock;
 * an enqueue without a key gets UNAVAILABLE at once (it may or may not have
 * been written, as far as the client can tell from such an error).
 */
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { JobwireClient } from "../../src/client/index.ts";
import { startServer } from "../../src/server/server.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { holdWriteLock, SQLITE3 } from "../helpers/sqlite-lock.ts";

describe.skipIf(!SQLITE3)("SDK retries of UNAVAILABLE", () => {
  let db: TestDatabase;
  let server: RunningServer;
  let client: JobwireClient;
  afterEach(async () => {
    await client.close();
    await server.close();
    await db.dispose();
  });

  it("a keyed enqueue and a heartbeat are retried until the lock is gone; an unkeyed enqueue is not", async () => {
    db = await createTestDatabase("sqlite");
    // A short busy window: the server answers UNAVAILABLE after 100 ms of lock.
    server = await startServer({
      store: await db.open({ busyTimeoutMs: 100 }),
      logger: pino({ level: "silent" }),
      port: 0,
      maintenance: false,
    });
    const attempts: number[] = [];
    client = new JobwireClient({
      url: server.url,
      unavailableRetries: 8,
      retryDelayMs: (n) => {
        attempts.push(n);
        return 200;
      },
    });
    const { job: running } = await client.enqueueJob({ queue: "r" });
    const [leased] = await client.claimJobs({ queues: ["r"], workerId: "w", leaseSeconds: 30 });
    expect(leased?.job.id).toBe(running.id);

    const lock = await holdWriteLock(db.url.slice("file:".length));
    const unkeyed = client.enqueueJob({ queue: "r" }).then(
      () => "written",
      (e: unknown) => (e as { code?: string }).code,
    );
    const keyed = client.enqueueJob({ queue: "r", idempotencyKey: "once" });
    const beat = client.heartbeatJob({ jobId: running.id, leaseToken: leased!.leaseToken, leaseSeconds: 60 });
    expect(await unkeyed).toBe("UNAVAILABLE");
    await new Promise((resolve) => setTimeout(resolve, 700));
    await lock.release();

    expect((await keyed).created).toBe(true);
    expect((await beat).job.id).toBe(running.id);
    expect(attempts.length).toBeGreaterThanOrEqual(4); // both retried while the lock was held
    const page = await client.jobs({ queue: "r" });
    expect(page.totalCount).toBe(2); // the running one and the keyed one: the unkeyed enqueue wrote nothing
  }, 30_000);

  it("gives up after unavailableRetries with the UNAVAILABLE error", async () => {
    db = await createTestDatabase("sqlite");
    server = await startServer({
      store: await db.open({ busyTimeoutMs: 50 }),
      logger: pino({ level: "silent" }),
      port: 0,
      maintenance: false,
    });
    client = new JobwireClient({ url: server.url, unavailableRetries: 2, retryDelayMs: () => 20 });
    const lock = await holdWriteLock(db.url.slice("file:".length));
    try {
      await expect(client.enqueueJob({ queue: "g", idempotencyKey: "k" })).rejects.toMatchObject({
        code: "UNAVAILABLE",
      });
    } finally {
      await lock.release();
    }
  }, 30_000);
});
