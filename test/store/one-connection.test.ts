/**
 * SQLite: the store has one connection per process, so a statement sent
 * outside a transaction while another call's transaction is open runs *inside*
 * that transaction. A heartbeat sent then would be rolled back with it (the
 * worker told "extended" while the lease silently was not), and a read would
 * see rows that then vanish. The store waits for open transactions first
 * (DialectSql.readCommitted). Here the heartbeat and a read are fired at the
 * moment an enqueue's transaction has written its rows and is about to fail
 * with QUEUE_FULL; both must see and leave only committed state.
 * (PostgreSQL runs the same test: there each statement takes a pool connection.)
 */
import type { Sql } from "../../src/store/sql.ts";
import { afterEach, describe, expect, it } from "vitest";
import { QueueFullError } from "../../src/jobs/errors.ts";
import { JobService } from "../../src/jobs/job-service.ts";
import { QueueService } from "../../src/queues/queue-service.ts";
import { BACKENDS, createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";

describe.each(BACKENDS)("statements outside transactions on %s", (dialect) => {
  let db: TestDatabase;
  afterEach(async () => {
    await db.dispose();
  });

  it("a heartbeat and a read during another call's failing transaction see and keep only committed rows", async () => {
    db = await createTestDatabase(dialect);
    let onInsert: (() => void) | null = null;
    const store = await db.open({
      onStatement: (statement: Sql) => {
        if (onInsert && /INSERT INTO "jobs"/.test(statement.sql)) {
          const fire = onInsert;
          onInsert = null;
          // Its transaction is open; the calls' statements reach the
          // connection while it awaits this one and the maxQueued check.
          fire();
        }
      },
    });
    const jobs = new JobService(store);
    await new QueueService(store).configureQueue({ name: "full", maxQueued: 5 });
    await jobs.enqueue({ queue: "work" });
    const [leased] = await jobs.claim({ queues: ["work"], workerId: "w", leaseSeconds: 30 });
    if (!leased) throw new Error("nothing claimed");

    let heartbeat: Promise<unknown> = Promise.resolve();
    let read: Promise<number> = Promise.resolve(-1);
    onInsert = () => {
      heartbeat = jobs.heartbeat({ jobId: leased.id, leaseToken: leased.leaseToken, progress: { step: 7 } });
      read = jobs.countJobs({ queue: "full" });
    };
    const tooMany = Array.from({ length: 10 }, () => ({ queue: "full" }));
    await expect(jobs.enqueueMany(tooMany)).rejects.toBeInstanceOf(QueueFullError);
    await heartbeat;

    expect(await read).toBe(0); // never the 10 rows that rolled back
    expect((await jobs.getJob(leased.id)).progress).toEqual({ step: 7 }); // the heartbeat stuck
    expect(await jobs.countJobs({ queue: "full" })).toBe(0);
  });
});
