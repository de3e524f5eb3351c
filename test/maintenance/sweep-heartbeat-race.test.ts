/**
 * Issue 19: a heartbeat landing between the sweep's read of an expired lease
 * and its write must make the sweep skip that job (the lease was extended),
 * never retry it until it gives up and aborts the rest of the tick.
 */
import { afterEach, describe, expect, it } from "vitest";
import { LeaseLostError } from "../../src/jobs/errors.ts";
import { BACKENDS, createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { ManualClock } from "../helpers/clock.ts";

describe.each(BACKENDS)("sweep vs heartbeat on %s", (dialect) => {
  let db: TestDatabase;
  afterEach(async () => {
    await db.dispose();
  });

  it("300 one-second leases ending in the same ms, half heartbeated while the sweep runs", async () => {
    db = await createTestDatabase(dialect);
    const clock = new ManualClock();
    const errors: Error[] = [];
    const service = await db.service({ now: clock.now, onError: (e) => errors.push(e) });
    await service.enqueueMany(Array.from({ length: 300 }, (_, i) => ({ queue: "race", payload: { i } })));
    const leased = await service.claim({ queues: ["race"], workerId: "w", limit: 300, leaseSeconds: 1 });
    expect(leased).toHaveLength(300);
    // Every lease ends in the same millisecond; the clock moves to that instant.
    expect(new Set(leased.map((j) => j.leaseExpiresAt.getTime())).size).toBe(1);
    clock.advance(1_001); // a lease ending at T is live at T

    const beaten = leased.filter((_, i) => i % 2 === 0);
    const extended = new Set<string>();
    const lost = new Set<string>();
    const [swept] = await Promise.all([
      service.sweepExpiredLeases(500),
      ...beaten.map((j) =>
        service.heartbeat({ jobId: j.id, leaseToken: j.leaseToken, leaseSeconds: 30 }).then(
          () => extended.add(j.id),
          (e: unknown) => {
            if (!(e instanceof LeaseLostError)) throw e;
            lost.add(j.id);
          },
        ),
      ),
    ]);
    expect(errors).toEqual([]);
    const after = await service.findJobs(leased.map((j) => j.id));
    const running = after.filter((j) => j.state === "RUNNING").map((j) => j.id);
    // No extended lease swept; every other one (unextended, or lost its race) swept in this tick.
    expect(new Set(running)).toEqual(extended);
    expect(swept).toBe(300 - extended.size);
    expect(extended.size + lost.size).toBe(150);
  }, 30_000);
});
