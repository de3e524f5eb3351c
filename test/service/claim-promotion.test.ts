/**
 * Due SCHEDULED jobs are promoted inside the claim (ClaimSpec.promoteDue), on
 * every backend: a due job competes in claim order with the ready ones and
 * its `promoted` event comes before its `claimed` event; on PostgreSQL a claim
 * with nothing due, on a queue without limits, is one statement.
 */
import type { Sql } from "../../src/store/sql.ts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { JobService } from "../../src/jobs/job-service.ts";
import type { JobEvent } from "../../src/jobs/types.ts";
import { BACKENDS, createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { ManualClock } from "../helpers/clock.ts";

describe.each(BACKENDS)("promotion inside the claim on %s", (dialect) => {
  let db: TestDatabase;
  let clock: ManualClock;
  let service: JobService;
  let published: JobEvent[];
  let statements: string[];

  beforeEach(async () => {
    db = await createTestDatabase(dialect);
    clock = new ManualClock();
    published = [];
    statements = [];
    const store = await db.open({ onStatement: (s: Sql) => statements.push(s.sql) });
    service = await db.service({ store, now: clock.now, onEvents: (e) => published.push(...e) });
  });
  afterEach(async () => {
    await db.dispose();
  });

  it("claims a due scheduled job before a ready job that runs later, with promoted then claimed events", async () => {
    const { job: later } = await service.enqueue({ queue: "q", delayMs: 1_000 });
    expect(later.state).toBe("SCHEDULED");
    clock.advance(5_000);
    const { job: ready } = await service.enqueue({ queue: "q" });
    published.length = 0;

    const [first] = await service.claim({ queues: ["q"], workerId: "w" });
    expect(first?.id).toBe(later.id); // its runAt (t+1 s) is before the ready job's (t+5 s)
    expect(published.map((e) => [e.jobId, e.type])).toEqual([
      [later.id, "promoted"],
      [later.id, "claimed"],
    ]);
    expect((await service.listEvents(later.id)).map((e) => [e.seq, e.type])).toEqual([
      [1, "enqueued"],
      [2, "promoted"],
      [3, "claimed"],
    ]);
    const [second] = await service.claim({ queues: ["q"], workerId: "w" });
    expect(second?.id).toBe(ready.id);
  });

  it("promotes every due job of the claimed queues, not only those it claims", async () => {
    await service.enqueueMany(Array.from({ length: 5 }, () => ({ queue: "q", delayMs: 10 })));
    clock.advance(100);
    expect(await service.claim({ queues: ["q"], workerId: "w", limit: 2 })).toHaveLength(2);
    expect(await service.countJobs({ queue: "q", states: ["QUEUED"] })).toBe(3);
    expect(await service.countJobs({ queue: "q", states: ["SCHEDULED"] })).toBe(0);
  });

  it.runIf(dialect === "postgres")("is one statement when nothing is due", async () => {
    await service.enqueueMany(Array.from({ length: 3 }, () => ({ queue: "q" })));
    statements.length = 0;
    expect(await service.claim({ queues: ["q"], workerId: "w", limit: 2 })).toHaveLength(2);
    expect(statements).toHaveLength(1);
  });
});
