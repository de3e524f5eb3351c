/**
 * The server runs the maintenance loop: an expired lease is swept and a due
 * retry promoted without any client asking, and close() stops the loop.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ClaimJobsDocument, EnqueueJobDocument, JobDocument } from "../../src/client/__generated__/graphql.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";
import { ManualClock } from "../helpers/clock.ts";

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms; last value ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(BACKENDS)("server maintenance on %s", (dialect) => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it("sweeps an expired lease and promotes the retry on its own", async () => {
    const clock = new ManualClock();
    t = await startTestServer(dialect, { now: clock.now, maintenance: { intervalMs: 25 } });
    const { enqueueJob } = await t.data(EnqueueJobDocument, {
      input: { queue: "sweep", backoff: { type: "FIXED", delayMs: 1_000 } },
    });
    const { claimJobs } = await t.data(ClaimJobsDocument, { queues: ["sweep"], workerId: "dies", leaseSeconds: 5 });
    expect(claimJobs).toHaveLength(1);

    clock.advance(5_001); // the lease has expired: the loop ends the run as a retryable failure
    const swept = await waitFor(
      () => t!.data(JobDocument, { id: enqueueJob.job.id }),
      (r) => r.job.state !== "RUNNING",
    );
    expect(swept.job).toMatchObject({ state: "SCHEDULED", attempts: 1, error: { code: "LEASE_EXPIRED" } });

    clock.advance(1_000); // the backoff has passed: the loop promotes it
    const promoted = await waitFor(
      () => t!.data(JobDocument, { id: enqueueJob.job.id }),
      (r) => r.job.state === "QUEUED",
    );
    expect(promoted.job.lastSeq).toBe(4); // enqueued, claimed, lease_expired, promoted
  });
});
