/**
 * Every documented bound: bad input gets a typed BAD_USER_INPUT error naming
 * the field, and nothing is written.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { JobService } from "../../src/jobs/job-service.ts";
import { LIMITS } from "../../src/jobs/limits.ts";
import type { EnqueueInput } from "../../src/jobs/types.ts";
import { BACKENDS, createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { summariseEvents } from "../helpers/inspect.ts";

describe.each(BACKENDS)("input bounds on %s", (dialect) => {
  let db: TestDatabase;
  let service: JobService;

  beforeEach(async () => {
    db = await createTestDatabase(dialect);
    service = await db.service({ maxPayloadBytes: 1_024 });
  });
  afterEach(async () => {
    await db.dispose();
  });

  const cases: [string, Partial<EnqueueInput> | Record<string, unknown>, string][] = [
    ["empty queue name", { queue: "" }, "queue"],
    ["over-long queue name", { queue: "q".repeat(LIMITS.queueNameMaxLength + 1) }, "queue"],
    ["queue name with spaces", { queue: "my queue" }, "queue"],
    ["priority below range", { priority: LIMITS.priorityMin - 1 }, "priority"],
    ["priority above range", { priority: LIMITS.priorityMax + 1 }, "priority"],
    ["fractional priority", { priority: 1.5 }, "priority"],
    ["maxAttempts 0", { maxAttempts: 0 }, "maxAttempts"],
    ["maxAttempts above range", { maxAttempts: LIMITS.maxAttemptsMax + 1 }, "maxAttempts"],
    ["payload over the size limit", { payload: { blob: "x".repeat(2_000) } }, "payload"],
    ["metadata over the size limit", { metadata: "y".repeat(2_000) }, "metadata"],
    ["payload with NaN", { payload: { n: Number.NaN } }, "payload"],
    ["payload with a Date object", { payload: { at: new Date() } }, "payload"],
    ["malformed runAt", { runAt: "tomorrow" }, "runAt"],
    ["runAt without time zone", { runAt: "2026-01-01T10:00:00" }, "runAt"],
    ["impossible date", { runAt: "2026-02-31T10:00:00Z" }, "runAt"],
    ["runAt and delayMs together", { runAt: "2026-01-01T10:00:00Z", delayMs: 5 }, "runAt"],
    ["negative delay", { delayMs: -1 }, "delayMs"],
    ["too many tags", { tags: Array.from({ length: LIMITS.tagsMax + 1 }, (_, i) => `t${i}`) }, "tags"],
    ["empty tag", { tags: ["ok", ""] }, "tags[1]"],
    ["over-long idempotency key", { idempotencyKey: "k".repeat(LIMITS.idempotencyKeyMaxLength + 1) }, "idempotencyKey"],
    ["unknown backoff type", { backoff: { type: "random" } }, "backoff.type"],
  ];

  it.each(cases)("rejects %s and writes nothing", async (_name, patch, field) => {
    const input = { queue: "q", payload: 1, ...patch } as EnqueueInput;
    await expect(service.enqueue(input)).rejects.toMatchObject({ code: "BAD_USER_INPUT", field });
    expect(await summariseEvents(db)).toEqual([]);
  });

  it("accepts a payload exactly at the size limit", async () => {
    const payload = "z".repeat(1_024 - 2); // two bytes of JSON quotes
    expect((await service.enqueue({ queue: "q", payload })).created).toBe(true);
  });

  it("checks claim, heartbeat, complete and fail inputs before touching a job", async () => {
    const { job } = await service.enqueue({ queue: "q" });
    const before = await service.getJob(job.id);
    await expect(service.claim({ queues: [], workerId: "w" })).rejects.toMatchObject({ field: "queues" });
    await expect(service.claim({ queues: ["q"], workerId: "" })).rejects.toMatchObject({ field: "workerId" });
    await expect(service.claim({ queues: ["q"], workerId: "w", limit: 0 })).rejects.toMatchObject({ field: "limit" });
    await expect(
      service.claim({ queues: ["q"], workerId: "w", limit: LIMITS.claimLimitMax + 1 }),
    ).rejects.toMatchObject({
      field: "limit",
    });
    await expect(service.claim({ queues: ["q"], workerId: "w", leaseSeconds: 0 })).rejects.toMatchObject({
      field: "leaseSeconds",
    });
    expect(await service.getJob(job.id)).toEqual(before);

    const [leased] = await service.claim({ queues: ["q"], workerId: "w" });
    const token = leased!.leaseToken;
    const running = await service.getJob(job.id);
    await expect(
      service.heartbeat({ jobId: job.id, leaseToken: token, progress: "p".repeat(2_000) }),
    ).rejects.toMatchObject({
      field: "progress",
    });
    await expect(
      service.complete({ jobId: job.id, leaseToken: token, result: "r".repeat(2_000) }),
    ).rejects.toMatchObject({
      field: "result",
    });
    await expect(service.fail({ jobId: job.id, leaseToken: token, error: { message: "" } })).rejects.toMatchObject({
      field: "error.message",
    });
    await expect(
      service.fail({ jobId: job.id, leaseToken: token, error: { message: "x" }, retryInMs: -5 }),
    ).rejects.toMatchObject({ field: "retryInMs" });
    await expect(service.complete({ jobId: "0", leaseToken: token })).rejects.toMatchObject({ field: "jobId" });
    expect(await service.getJob(job.id)).toEqual(running);
  });

  it("rejects an empty or oversized bulk enqueue as a whole", async () => {
    await expect(service.enqueueMany([])).rejects.toMatchObject({ code: "BAD_USER_INPUT", field: "jobs" });
    await expect(service.enqueueMany([{ queue: "q" }, { queue: "q", priority: 10_000_000 }])).rejects.toMatchObject({
      field: "jobs[1].priority",
    });
    expect(await summariseEvents(db)).toEqual([]);
  });
});
