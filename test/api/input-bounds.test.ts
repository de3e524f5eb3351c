/**
 * Every documented input bound, enforced over HTTP by the real server on every
 * backend. The bounds come from src/jobs/limits.ts (LIMITS),
 * src/queues/queue-service.ts (QUEUE_LIMITS), src/jobs/backoff.ts
 * (parseBackoff) and the descriptions of src/graphql/schema/*.graphql; the
 * expected messages quote the documented numbers literally, so a limit that
 * drifts from its documentation fails here.
 *
 * Two kinds of refusal:
 * - the job and queue services' checks: HTTP 200, data null, one error with
 *   code BAD_USER_INPUT, `extensions.field` naming the argument and a message
 *   "<field>: <the bound>";
 * - GraphQL's own coercion of variables and literals (scalars, Int, enums,
 *   input object shapes): HTTP 400 and no data at all.
 * Either way nothing is written: each refusal compares every row of every
 * table before and after the request.
 *
 * One server per backend serves the whole file (not one per test): every
 * request here is refused before any write and each test checks that itself,
 * so a test can neither see nor leave state that another one depends on. The
 * fixtures the refusals aim at (a running job, a waiting job, a configured
 * queue) are made once in beforeAll. Time is a ManualClock that never moves.
 */
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { parse, print } from "graphql";
import type { GraphQLFormattedError } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ClaimJobsDocument,
  CompleteJobDocument,
  ConfigureQueueDocument,
  EnqueueJobDocument,
  EnqueueJobsDocument,
  FailJobDocument,
  HeartbeatJobDocument,
  JobByKeyDocument,
  JobDocument,
  PurgeJobsDocument,
  QueueDocument,
  RescheduleJobDocument,
} from "../../src/client/__generated__/graphql.ts";
import type {
  BackoffInput,
  ConfigureQueueInput,
  EnqueueJobInput,
  JobFilter,
  JobState,
} from "../../src/client/__generated__/graphql.ts";
import { MAX_BACKOFF_MS, MAX_SCHEDULE_LENGTH } from "../../src/jobs/backoff.ts";
import { LIMITS } from "../../src/jobs/limits.ts";
import type { JsonValue } from "../../src/jobs/types.ts";
import { QUEUE_LIMITS } from "../../src/queues/queue-service.ts";
import { onlyError, startTestServer } from "../helpers/api.ts";
import type { GraphQLResponse, TestServer } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";
import { ManualClock } from "../helpers/clock.ts";
import { queryDatabase } from "../helpers/inspect.ts";

/** The payload cap of the shared server: small, so an oversized value is a small request. */
const MAX_PAYLOAD_BYTES = 1_024;
const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const iso = (msFromT0: number): string => new Date(T0 + msFromT0).toISOString();
const repeat = (n: number, s = "x"): string => s.repeat(n);
const list = <T>(n: number, item: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => item(i));
/** A JSON string that encodes to exactly `bytes` bytes (two of them are its quotes). */
const jsonOfBytes = (bytes: number): string => repeat(bytes - 2);

/** An ad-hoc operation, typed by hand (for selections the shared documents do not make). */
function typed<T, V>(source: string): TypedDocumentNode<T, V> {
  return parse(source) as TypedDocumentNode<T, V>;
}

/** A page query that selects almost nothing, so `first: 1000` stays far below the cost limit. */
const JobIdsDocument = typed<
  { jobs: { totalCount: number; nodes: { id: string }[] } },
  { filter?: JobFilter; first?: number; after?: string }
>(`query JobIds($filter: JobFilter, $first: Int, $after: String) {
  jobs(filter: $filter, first: $first, after: $after) { totalCount nodes { id } }
}`);

/** jobEvents with one field, so `first: 10001` is refused by the bound, not by QUERY_TOO_COSTLY. */
const EventIdsDocument = typed<{ jobEvents: { id: string }[] }, { jobId: string; afterSeq?: number; first?: number }>(
  `query EventIds($jobId: ID!, $afterSeq: Int, $first: Int) {
    jobEvents(jobId: $jobId, afterSeq: $afterSeq, first: $first) { id }
  }`,
);

const RecentEventsDocument = typed<{ jobs: { nodes: { events: { id: string }[] }[] } }, { last: number }>(
  `query RecentEvents($last: Int) { jobs(first: 1) { nodes { events(last: $last) { id } } } }`,
);

/** Every table the server writes, each with a key that orders its rows. */
const TABLES: readonly (readonly [table: string, orderBy: string])[] = [
  ["jobs", "id"],
  ["job_events", "id"],
  ["queues", "name"],
  ["queue_state_deltas", "id"],
];

describe.each(BACKENDS)("input bounds over HTTP on %s", (dialect) => {
  let t: TestServer;
  const clock = new ManualClock(T0);
  /** A RUNNING job (leased for an hour: the clock never moves) and its lease token. */
  let held: { id: string; token: string };
  /** A QUEUED job, for rescheduleJob. */
  let waitingId: string;

  beforeAll(async () => {
    t = await startTestServer(dialect, { now: clock.now, maxPayloadBytes: MAX_PAYLOAD_BYTES });
    await t.data(EnqueueJobDocument, { input: { queue: "held", payload: { n: 1 } } });
    const [leased] = (await t.data(ClaimJobsDocument, { queues: ["held"], workerId: "w1", leaseSeconds: 3_600 }))
      .claimJobs;
    if (!leased) throw new Error("fixture: nothing claimed");
    held = { id: leased.job.id, token: leased.leaseToken };
    waitingId = (await t.data(EnqueueJobDocument, { input: { queue: "waiting" } })).enqueueJob.job.id;
    await t.data(ConfigureQueueDocument, { input: { name: "configured", concurrency: 5, maxQueued: 50 } });
  });
  afterAll(async () => {
    await t.close();
  });

  /** Every row of every table, read from the database itself. */
  async function snapshot(): Promise<Record<string, unknown[]>> {
    const tables = await Promise.all(
      TABLES.map(async ([table, orderBy]) => {
        const rows = await queryDatabase<unknown>(t.db, `SELECT * FROM ${table} ORDER BY ${orderBy}`);
        return [table, rows] as const;
      }),
    );
    return Object.fromEntries(tables);
  }

  /** A raw POST: for variables of the wrong GraphQL type, which the typed documents do not allow. */
  async function send(query: string, variables: Record<string, unknown> = {}): Promise<GraphQLResponse<unknown>> {
    const res = await t.post({ query, variables });
    const body = (await res.json()) as Omit<GraphQLResponse<unknown>, "status">;
    return { status: res.status, ...body };
  }

  /**
   * A service refusal: HTTP 200, `data` as given (null for a non-null root
   * field), one BAD_USER_INPUT error at `path` naming `field`, with the message
   * "<field>: <problem>", and not one row written or changed.
   */
  async function expectRefused(
    call: () => Promise<GraphQLResponse<unknown>>,
    expected: { path: (string | number)[]; field: string; problem: string; data?: unknown },
  ): Promise<void> {
    const before = await snapshot();
    const res = await call();
    expect(res.status).toBe(200);
    expect(res.data).toEqual(expected.data ?? null);
    expect(onlyError(res)).toEqual({
      message: `${expected.field}: ${expected.problem}`,
      locations: [expect.objectContaining({ line: expect.any(Number), column: expect.any(Number) })],
      path: expected.path,
      extensions: { code: "BAD_USER_INPUT", field: expected.field },
    });
    expect(await snapshot()).toEqual(before);
  }

  /**
   * A refusal by GraphQL itself, before any resolver runs: HTTP 400, no data,
   * one error with `code` and `message`, and not one row written.
   */
  async function expectCoercionRefused(
    call: () => Promise<GraphQLResponse<unknown>>,
    expected: { code: "BAD_USER_INPUT" | "GRAPHQL_VALIDATION_FAILED"; message: string },
  ): Promise<GraphQLFormattedError> {
    const before = await snapshot();
    const res = await call();
    expect(res.status).toBe(400);
    expect(res).not.toHaveProperty("data");
    const error = onlyError(res);
    expect(error.message).toBe(expected.message);
    expect(error.extensions).toEqual({ code: expected.code });
    expect(await snapshot()).toEqual(before);
    return error;
  }

  describe("enqueueJob", () => {
    const fixed = (delayMs: number): BackoffInput => ({ type: "FIXED", delayMs });
    const exponential = (more: Partial<BackoffInput>): BackoffInput => ({
      type: "EXPONENTIAL",
      baseMs: 1_000,
      ...more,
    });
    const schedule = (delaysMs: number[]): BackoffInput => ({ type: "SCHEDULE", delaysMs });
    const QUEUE_CHARS = "may contain only letters, digits and _ . : -";
    const PRIORITY = "must be an integer from -1000000 to 1000000";
    const ATTEMPTS = "must be an integer from 1 to 1000";
    const DELAY = "must be an integer from 0 to 315360000000";
    const BACKOFF_DELAY = "must be an integer number of milliseconds from 0 to 2592000000";

    const cases: [name: string, input: Partial<EnqueueJobInput>, field: string, problem: string][] = [
      ["an empty queue name", { queue: "" }, "queue", "must be a non-empty string"],
      [
        "a 129-character queue name",
        { queue: repeat(LIMITS.queueNameMaxLength + 1, "q") },
        "queue",
        "must be at most 128 characters",
      ],
      ["a queue name with a space", { queue: "my queue" }, "queue", QUEUE_CHARS],
      ["a queue name with a slash", { queue: "a/b" }, "queue", QUEUE_CHARS],
      ["a queue name with a non-ASCII letter", { queue: "café" }, "queue", QUEUE_CHARS],
      ["priority below -1,000,000", { priority: LIMITS.priorityMin - 1 }, "priority", PRIORITY],
      ["priority above 1,000,000", { priority: LIMITS.priorityMax + 1 }, "priority", PRIORITY],
      ["maxAttempts 0", { maxAttempts: LIMITS.maxAttemptsMin - 1 }, "maxAttempts", ATTEMPTS],
      ["maxAttempts 1001", { maxAttempts: LIMITS.maxAttemptsMax + 1 }, "maxAttempts", ATTEMPTS],
      ["a negative delayMs", { delayMs: -1 }, "delayMs", DELAY],
      ["delayMs over 10 years", { delayMs: LIMITS.maxDelayMs + 1 }, "delayMs", DELAY],
      ["runAt more than 10 years ahead", { runAt: iso(LIMITS.maxDelayMs + 1) }, "runAt", "is more than 10 years ahead"],
      ["runAt with delayMs", { runAt: iso(60_000), delayMs: 5 }, "runAt", "give runAt or delayMs, not both"],
      ["an empty idempotencyKey", { idempotencyKey: "" }, "idempotencyKey", "must be a string of 1 to 255 characters"],
      [
        "a 256-character idempotencyKey",
        { idempotencyKey: repeat(LIMITS.idempotencyKeyMaxLength + 1, "k") },
        "idempotencyKey",
        "must be a string of 1 to 255 characters",
      ],
      ["33 tags", { tags: list(LIMITS.tagsMax + 1, (i) => `t${i}`) }, "tags", "must be a list of at most 32 strings"],
      [
        "a 65-character tag",
        { tags: ["ok", repeat(LIMITS.tagMaxLength + 1, "t")] },
        "tags[1]",
        "must be a string of 1 to 64 characters",
      ],
      ["an empty tag", { tags: [""] }, "tags[0]", "must be a string of 1 to 64 characters"],
      [
        "a payload 1 byte over the limit",
        { payload: jsonOfBytes(MAX_PAYLOAD_BYTES + 1) },
        "payload",
        "is 1025 bytes of JSON; the limit is 1024",
      ],
      [
        "a big object payload",
        { payload: { blob: repeat(2_000) } },
        "payload",
        "is 2011 bytes of JSON; the limit is 1024",
      ],
      [
        "metadata over the limit",
        { metadata: jsonOfBytes(MAX_PAYLOAD_BYTES + 1) },
        "metadata",
        "is 1025 bytes of JSON; the limit is 1024",
      ],
      [
        "a payload nested 70 deep",
        { payload: list(69, () => 0).reduce<JsonValue[]>((inner) => [inner], []) },
        "payload",
        "is nested deeper than 64",
      ],
      ["a FIXED backoff with a negative delay", { backoff: fixed(-1) }, "backoff.delayMs", BACKOFF_DELAY],
      ["a FIXED backoff over 30 days", { backoff: fixed(MAX_BACKOFF_MS + 1) }, "backoff.delayMs", BACKOFF_DELAY],
      ["a FIXED backoff without delayMs", { backoff: { type: "FIXED" } }, "backoff.delayMs", BACKOFF_DELAY],
      ["an EXPONENTIAL backoff without baseMs", { backoff: { type: "EXPONENTIAL" } }, "backoff.baseMs", BACKOFF_DELAY],
      [
        "an EXPONENTIAL baseMs over 30 days",
        { backoff: exponential({ baseMs: MAX_BACKOFF_MS + 1 }) },
        "backoff.baseMs",
        BACKOFF_DELAY,
      ],
      [
        "an EXPONENTIAL factor below 1",
        { backoff: exponential({ factor: 0.5 }) },
        "backoff.factor",
        "must be a number from 1 to 100",
      ],
      [
        "an EXPONENTIAL factor above 100",
        { backoff: exponential({ factor: 100.5 }) },
        "backoff.factor",
        "must be a number from 1 to 100",
      ],
      [
        "a negative EXPONENTIAL jitter",
        { backoff: exponential({ jitter: -0.1 }) },
        "backoff.jitter",
        "must be a number from 0 to 1",
      ],
      [
        "an EXPONENTIAL jitter above 1",
        { backoff: exponential({ jitter: 1.5 }) },
        "backoff.jitter",
        "must be a number from 0 to 1",
      ],
      [
        "an EXPONENTIAL maxMs below baseMs",
        { backoff: exponential({ maxMs: 999 }) },
        "backoff.maxMs",
        "must be at least baseMs",
      ],
      [
        "an EXPONENTIAL maxMs over 30 days",
        { backoff: exponential({ maxMs: MAX_BACKOFF_MS + 1 }) },
        "backoff.maxMs",
        BACKOFF_DELAY,
      ],
      [
        "an empty SCHEDULE",
        { backoff: schedule([]) },
        "backoff.delaysMs",
        "must be a list of 1 to 100 delays in milliseconds",
      ],
      [
        "a SCHEDULE of 101 delays",
        { backoff: schedule(list(MAX_SCHEDULE_LENGTH + 1, () => 1_000)) },
        "backoff.delaysMs",
        "must be a list of 1 to 100 delays in milliseconds",
      ],
      [
        "a SCHEDULE without delaysMs",
        { backoff: { type: "SCHEDULE" } },
        "backoff.delaysMs",
        "must be a list of 1 to 100 delays in milliseconds",
      ],
      ["a SCHEDULE with a negative delay", { backoff: schedule([1_000, -1]) }, "backoff.delaysMs[1]", BACKOFF_DELAY],
      [
        "a SCHEDULE delay over 30 days",
        { backoff: schedule([MAX_BACKOFF_MS + 1]) },
        "backoff.delaysMs[0]",
        BACKOFF_DELAY,
      ],
    ];

    it.each(cases)("refuses %s", async (_name, patch, field, problem) => {
      await expectRefused(() => t.request(EnqueueJobDocument, { input: { queue: "bounds", ...patch } }), {
        path: ["enqueueJob"],
        field,
        problem,
      });
    });

    // The other side of each bound: the documented extreme itself is accepted,
    // so the refusals above are off by exactly one.
    const extremes: [name: string, input: Partial<EnqueueJobInput>, check: Record<string, unknown>][] = [
      ["a 128-character queue name", { queue: repeat(128, "q") }, { queueName: repeat(128, "q") }],
      ["every allowed queue-name character", { queue: "Az09_.:-" }, { queueName: "Az09_.:-" }],
      ["priority -1,000,000", { priority: -1_000_000 }, { priority: -1_000_000 }],
      ["priority 1,000,000", { priority: 1_000_000 }, { priority: 1_000_000 }],
      ["maxAttempts 1", { maxAttempts: 1 }, { maxAttempts: 1 }],
      ["maxAttempts 1000", { maxAttempts: 1_000 }, { maxAttempts: 1_000 }],
      [
        "delayMs of exactly 10 years",
        { delayMs: 315_360_000_000 },
        { runAt: iso(315_360_000_000), state: "SCHEDULED" },
      ],
      ["runAt exactly 10 years ahead", { runAt: iso(315_360_000_000) }, { runAt: iso(315_360_000_000) }],
      ["a 255-character idempotencyKey", { idempotencyKey: repeat(255, "k") }, { idempotencyKey: repeat(255, "k") }],
      ["32 tags of 64 characters", { tags: list(32, (i) => repeat(62, "t") + String(i).padStart(2, "0")) }, {}],
      ["a payload of exactly 1024 bytes", { payload: jsonOfBytes(1_024) }, { payload: jsonOfBytes(1_024) }],
      ["metadata of exactly 1024 bytes", { metadata: jsonOfBytes(1_024) }, { metadata: jsonOfBytes(1_024) }],
      ["a FIXED backoff of 30 days", { backoff: fixed(2_592_000_000) }, {}],
      ["EXPONENTIAL factor 1 and jitter 0", { backoff: exponential({ factor: 1, jitter: 0 }) }, {}],
      ["EXPONENTIAL factor 100 and jitter 1", { backoff: exponential({ factor: 100, jitter: 1 }) }, {}],
      ["a SCHEDULE of 100 delays", { backoff: schedule(list(100, (i) => i)) }, {}],
    ];

    it.each(extremes)("accepts %s", async (_name, patch, check) => {
      const { enqueueJob } = await t.data(EnqueueJobDocument, { input: { queue: "extremes", ...patch } });
      expect(enqueueJob.created).toBe(true);
      expect(enqueueJob.job).toMatchObject(check);
      if (patch.tags) expect(enqueueJob.job.tags).toEqual(patch.tags);
      if (patch.backoff) expect(enqueueJob.job.backoff).toMatchObject(patch.backoff);
    });
  });

  describe("enqueueJobs", () => {
    it("refuses an empty list", async () => {
      await expectRefused(() => t.request(EnqueueJobsDocument, { jobs: [] }), {
        path: ["enqueueJobs"],
        field: "jobs",
        problem: "must be a list of 1 to 10000 jobs",
      });
    });

    it("refuses 10,001 jobs (a 140 KB body: the service bound, not the body limit)", async () => {
      const jobs = list(LIMITS.bulkEnqueueMax + 1, () => ({ queue: "bulk" }));
      expect(JSON.stringify(jobs).length).toBeLessThan(8 * 1024 * 1024);
      await expectRefused(() => t.request(EnqueueJobsDocument, { jobs }), {
        path: ["enqueueJobs"],
        field: "jobs",
        problem: "must be a list of 1 to 10000 jobs",
      });
    });

    it("accepts exactly 10,000 jobs in one call", async () => {
      // Its own server: 10,000 rows would slow every snapshot of the shared one.
      const own = await startTestServer(dialect, { now: clock.now });
      try {
        const jobs = list(LIMITS.bulkEnqueueMax, () => ({ queue: "bulk" }));
        const { enqueueJobs } = await own.data(EnqueueJobsDocument, { jobs });
        expect(enqueueJobs).toHaveLength(10_000);
        expect(enqueueJobs.every((r) => r.created && r.job.state === "QUEUED")).toBe(true);
        expect((await own.data(JobIdsDocument, { first: 1 })).jobs.totalCount).toBe(10_000);
      } finally {
        await own.close();
      }
    });

    const batchCases: [name: string, jobs: EnqueueJobInput[], field: string, problem: string][] = [
      [
        "a priority out of range in the middle",
        [{ queue: "bulk" }, { queue: "bulk", priority: 1_000_001 }, { queue: "bulk" }],
        "jobs[1].priority",
        "must be an integer from -1000000 to 1000000",
      ],
      [
        "a bad queue name last",
        [{ queue: "bulk" }, { queue: "bulk" }, { queue: "no spaces" }],
        "jobs[2].queue",
        "may contain only letters, digits and _ . : -",
      ],
      [
        "an oversized payload first",
        [{ queue: "bulk", payload: jsonOfBytes(MAX_PAYLOAD_BYTES + 1) }, { queue: "bulk" }],
        "jobs[0].payload",
        "is 1025 bytes of JSON; the limit is 1024",
      ],
      [
        "a bad backoff",
        [{ queue: "bulk" }, { queue: "bulk", backoff: { type: "SCHEDULE", delaysMs: [] } }],
        "jobs[1].backoff.delaysMs",
        "must be a list of 1 to 100 delays in milliseconds",
      ],
      [
        "a bad tag",
        [{ queue: "bulk" }, { queue: "bulk", tags: ["a", "b", ""] }],
        "jobs[1].tags[2]",
        "must be a string of 1 to 64 characters",
      ],
    ];

    it.each(batchCases)("names the index of %s and writes none of the batch", async (_name, jobs, field, problem) => {
      await expectRefused(() => t.request(EnqueueJobsDocument, { jobs }), { path: ["enqueueJobs"], field, problem });
    });

    // enqueueJobs names the list position even for a list of one (it once
    // named "priority", a field enqueueJobs does not have).
    it("names the index of a bad job in a one-job list too (jobs[0].priority)", async () => {
      await expectRefused(() => t.request(EnqueueJobsDocument, { jobs: [{ queue: "bulk", priority: 1_000_001 }] }), {
        path: ["enqueueJobs"],
        field: "jobs[0].priority",
        problem: "must be an integer from -1000000 to 1000000",
      });
    });
  });

  describe("claimJobs", () => {
    const claimCases: [
      name: string,
      vars: { queues?: string[]; workerId?: string; limit?: number; leaseSeconds?: number },
      field: string,
      problem: string,
    ][] = [
      ["an empty queue list", { queues: [] }, "queues", "must be a list of 1 to 100 queue names"],
      ["101 queues", { queues: list(101, (i) => `q${i}`) }, "queues", "must be a list of 1 to 100 queue names"],
      [
        "an invalid queue name in the list",
        { queues: ["held", "bad name"] },
        "queues[1]",
        "may contain only letters, digits and _ . : -",
      ],
      ["an empty workerId", { workerId: "" }, "workerId", "must be a string of 1 to 255 characters"],
      [
        "a 256-character workerId",
        { workerId: repeat(LIMITS.workerIdMaxLength + 1, "w") },
        "workerId",
        "must be a string of 1 to 255 characters",
      ],
      ["limit 0", { limit: 0 }, "limit", "must be an integer from 1 to 1000"],
      ["limit 1001", { limit: LIMITS.claimLimitMax + 1 }, "limit", "must be an integer from 1 to 1000"],
      [
        "leaseSeconds 0",
        { leaseSeconds: LIMITS.leaseSecondsMin - 1 },
        "leaseSeconds",
        "must be an integer from 1 to 86400",
      ],
      [
        "leaseSeconds 86401",
        { leaseSeconds: LIMITS.leaseSecondsMax + 1 },
        "leaseSeconds",
        "must be an integer from 1 to 86400",
      ],
    ];

    it.each(claimCases)("refuses %s and leases nothing", async (_name, vars, field, problem) => {
      // "waiting" holds a QUEUED job: a claim that got past validation would lease it.
      await expectRefused(
        () => t.request(ClaimJobsDocument, { queues: ["waiting", "held"], workerId: "w2", ...vars }),
        { path: ["claimJobs"], field, problem },
      );
    });
  });

  describe("heartbeatJob, completeJob and failJob", () => {
    const ops = {
      heartbeatJob: print(HeartbeatJobDocument),
      completeJob: print(CompleteJobDocument),
      failJob: print(FailJobDocument),
    };
    type Op = keyof typeof ops;
    const ERROR = { message: "boom" };
    /** The variables each operation needs on top of the tested one. */
    const base = (op: Op, h: { id: string; token: string }): Record<string, unknown> => ({
      jobId: h.id,
      leaseToken: h.token,
      ...(op === "failJob" && { error: ERROR }),
    });
    const JOB_ID = "must be a job id (a positive decimal integer string)";
    const TOKEN = "must be a string of 1 to 128 characters";

    const badIds = ["abc", "0", "-1", "1.5", " 1", "9223372036854775808"];
    const idCases = (Object.keys(ops) as Op[]).flatMap((op) => badIds.map((id) => [op, id] as const));

    it.each(idCases)("%s refuses jobId %j", async (op, jobId) => {
      await expectRefused(() => send(ops[op], { ...base(op, held), jobId }), {
        path: [op],
        field: "jobId",
        problem: JOB_ID,
      });
    });

    const cases: [op: Op, name: string, vars: Record<string, unknown>, field: string, problem: string][] = [
      ["heartbeatJob", "an empty leaseToken", { leaseToken: "" }, "leaseToken", TOKEN],
      ["heartbeatJob", "a 129-character leaseToken", { leaseToken: repeat(129) }, "leaseToken", TOKEN],
      [
        "heartbeatJob",
        "progress over the payload limit",
        { progress: jsonOfBytes(1_025) },
        "progress",
        "is 1025 bytes of JSON; the limit is 1024",
      ],
      ["heartbeatJob", "leaseSeconds 0", { leaseSeconds: 0 }, "leaseSeconds", "must be an integer from 1 to 86400"],
      [
        "heartbeatJob",
        "leaseSeconds 86401",
        { leaseSeconds: 86_401 },
        "leaseSeconds",
        "must be an integer from 1 to 86400",
      ],
      ["completeJob", "an empty leaseToken", { leaseToken: "" }, "leaseToken", TOKEN],
      ["completeJob", "a 129-character leaseToken", { leaseToken: repeat(129) }, "leaseToken", TOKEN],
      [
        "completeJob",
        "a result over the payload limit",
        { result: { r: repeat(1_100) } },
        "result",
        "is 1108 bytes of JSON; the limit is 1024",
      ],
      ["failJob", "a 129-character leaseToken", { leaseToken: repeat(129) }, "leaseToken", TOKEN],
      [
        "failJob",
        "an empty error message",
        { error: { message: "" } },
        "error.message",
        "must be a string of 1 to 10000 characters",
      ],
      [
        "failJob",
        "a 10,001-character error message",
        { error: { message: repeat(LIMITS.errorMessageMaxLength + 1) } },
        "error.message",
        "must be a string of 1 to 10000 characters",
      ],
      [
        "failJob",
        "a 129-character error code",
        { error: { message: "m", code: repeat(LIMITS.errorCodeMaxLength + 1, "C") } },
        "error.code",
        "must be a string of 1 to 128 characters",
      ],
      [
        "failJob",
        "an empty error code",
        { error: { message: "m", code: "" } },
        "error.code",
        "must be a string of 1 to 128 characters",
      ],
      [
        "failJob",
        "error details over the payload limit",
        { error: { message: "m", details: jsonOfBytes(1_025) } },
        "error.details",
        "is 1025 bytes of JSON; the limit is 1024",
      ],
      ["failJob", "a negative retryInMs", { retryInMs: -1 }, "retryInMs", "must be an integer from 0 to 315360000000"],
      [
        "failJob",
        "retryInMs over 10 years",
        { retryInMs: LIMITS.maxDelayMs + 1 },
        "retryInMs",
        "must be an integer from 0 to 315360000000",
      ],
    ];

    it.each(cases)("%s refuses %s and leaves the running job as it was", async (op, _name, vars, field, problem) => {
      await expectRefused(() => send(ops[op], { ...base(op, held), ...vars }), { path: [op], field, problem });
    });

    it("the fixture is a live lease: the same calls with valid input reach the job", async () => {
      // Proves the refusals above were about the input, not a lost lease: a
      // valid heartbeat on the same id and token succeeds (and changes nothing
      // but progress, which this one leaves alone).
      const { heartbeatJob } = await t.data(HeartbeatJobDocument, {
        jobId: held.id,
        leaseToken: held.token,
        leaseSeconds: 3_600,
      });
      expect(heartbeatJob).toMatchObject({ cancelRequested: false, job: { state: "RUNNING", payload: { n: 1 } } });
    });
  });

  describe("rescheduleJob", () => {
    const cases: [
      name: string,
      vars: { jobId?: string; runAt?: string; delayMs?: number; priority?: number },
      field: string,
      problem: string,
    ][] = [
      ["neither runAt, delayMs nor priority", {}, "runAt", "give runAt, delayMs or priority to change"],
      [
        "priority below -1,000,000",
        { priority: -1_000_001 },
        "priority",
        "must be an integer from -1000000 to 1000000",
      ],
      ["priority above 1,000,000", { priority: 1_000_001 }, "priority", "must be an integer from -1000000 to 1000000"],
      ["runAt with delayMs", { runAt: iso(1_000), delayMs: 1_000 }, "runAt", "give runAt or delayMs, not both"],
      ["a negative delayMs", { delayMs: -1 }, "delayMs", "must be an integer from 0 to 315360000000"],
      [
        "delayMs over 10 years",
        { delayMs: LIMITS.maxDelayMs + 1 },
        "delayMs",
        "must be an integer from 0 to 315360000000",
      ],
      ["runAt more than 10 years ahead", { runAt: iso(LIMITS.maxDelayMs + 1) }, "runAt", "is more than 10 years ahead"],
      [
        "a malformed jobId",
        { jobId: "abc", priority: 1 },
        "jobId",
        "must be a job id (a positive decimal integer string)",
      ],
    ];

    it.each(cases)("refuses %s", async (_name, vars, field, problem) => {
      await expectRefused(() => t.request(RescheduleJobDocument, { jobId: waitingId, ...vars }), {
        path: ["rescheduleJob"],
        field,
        problem,
      });
    });

    it("refuses an explicit null priority as no change at all", async () => {
      await expectRefused(() => t.request(RescheduleJobDocument, { jobId: waitingId, priority: null }), {
        path: ["rescheduleJob"],
        field: "runAt",
        problem: "give runAt, delayMs or priority to change",
      });
    });
  });

  describe("reads: jobs, jobEvents, Job.events, job, jobByKey, queue", () => {
    const pageCases: [
      name: string,
      vars: { filter?: JobFilter; first?: number; after?: string },
      field: string,
      problem: string,
    ][] = [
      ["first 0", { first: 0 }, "first", "must be an integer from 1 to 1000"],
      ["first 1001", { first: LIMITS.listPageMax + 1 }, "first", "must be an integer from 1 to 1000"],
      [
        "an `after` that is not a cursor",
        { after: "not-a-cursor" },
        "after",
        "is not a cursor returned by a previous page",
      ],
      [
        "a base64 `after` of something else",
        { after: Buffer.from("job:0").toString("base64url") },
        "after",
        "is not a cursor returned by a previous page",
      ],
      ["an empty filter.queue", { filter: { queue: "" } }, "filter.queue", "must be a non-empty string"],
      [
        "an invalid filter.queue",
        { filter: { queue: "a b" } },
        "filter.queue",
        "may contain only letters, digits and _ . : -",
      ],
      [
        "a 129-character filter.queue",
        { filter: { queue: repeat(129, "q") } },
        "filter.queue",
        "must be at most 128 characters",
      ],
      [
        "a 65-character filter tag",
        { filter: { tags: [repeat(65, "t")] } },
        "filter.tags[0]",
        "must be a string of 1 to 64 characters",
      ],
      [
        "an empty filter tag",
        { filter: { tags: ["ok", ""] } },
        "filter.tags[1]",
        "must be a string of 1 to 64 characters",
      ],
      [
        "33 filter tags",
        { filter: { tags: list(33, (i) => `t${i}`) } },
        "filter.tags",
        "must be a list of at most 32 strings",
      ],
    ];

    it.each(pageCases)("jobs refuses %s", async (_name, vars, field, problem) => {
      await expectRefused(() => t.request(JobIdsDocument, vars), { path: ["jobs"], field, problem });
    });

    it("jobs accepts first 1000", async () => {
      const { jobs } = await t.data(JobIdsDocument, { first: LIMITS.listPageMax });
      expect(jobs.nodes.length).toBe(jobs.totalCount);
    });

    const eventCases: [
      name: string,
      vars: { jobId?: string; afterSeq?: number; first?: number },
      field: string,
      problem: string,
    ][] = [
      ["first 0", { first: 0 }, "first", "must be an integer from 1 to 10000"],
      ["first 10001", { first: LIMITS.eventsPageMax + 1 }, "first", "must be an integer from 1 to 10000"],
      ["a negative afterSeq", { afterSeq: -1 }, "afterSeq", "must be an integer from 0 to 2147483647"],
      ["a malformed jobId", { jobId: "abc" }, "jobId", "must be a job id (a positive decimal integer string)"],
    ];

    it.each(eventCases)("jobEvents refuses %s", async (_name, vars, field, problem) => {
      await expectRefused(() => t.request(EventIdsDocument, { jobId: held.id, ...vars }), {
        path: ["jobEvents"],
        field,
        problem,
      });
    });

    it.each([0, LIMITS.recentEventsMax + 1])("Job.events refuses last %i", async (last) => {
      await expectRefused(() => t.request(RecentEventsDocument, { last }), {
        path: ["jobs", "nodes", 0, "events"],
        field: "last",
        problem: "must be an integer from 1 to 100",
      });
    });

    it.each(["abc", "0", "-1"])("job refuses id %j", async (id) => {
      await expectRefused(() => t.request(JobDocument, { id }), {
        path: ["job"],
        field: "jobId",
        problem: "must be a job id (a positive decimal integer string)",
      });
    });

    it("jobByKey refuses a 256-character key and an invalid queue (its data is null: the field is nullable)", async () => {
      await expectRefused(() => t.request(JobByKeyDocument, { queue: "held", key: repeat(256, "k") }), {
        path: ["jobByKey"],
        field: "idempotencyKey",
        problem: "must be a string of 1 to 255 characters",
        data: { jobByKey: null },
      });
      await expectRefused(() => t.request(JobByKeyDocument, { queue: "a b", key: "k" }), {
        path: ["jobByKey"],
        field: "queue",
        problem: "may contain only letters, digits and _ . : -",
        data: { jobByKey: null },
      });
    });

    it("queue refuses an empty name", async () => {
      await expectRefused(() => t.request(QueueDocument, { name: "" }), {
        path: ["queue"],
        field: "name",
        problem: "must be a non-empty string",
      });
    });
  });

  describe("configureQueue", () => {
    const count = (c: number) => ({ count: c, intervalMs: 1_000 });
    const interval = (ms: number) => ({ count: 1, intervalMs: ms });
    const cases: [name: string, settings: Omit<ConfigureQueueInput, "name">, field: string, problem: string][] = [
      ["concurrency 0", { concurrency: 0 }, "concurrency", "must be an integer from 1 to 10000"],
      [
        "concurrency 10001",
        { concurrency: QUEUE_LIMITS.concurrencyMax + 1 },
        "concurrency",
        "must be an integer from 1 to 10000",
      ],
      ["rateLimit count 0", { rateLimit: count(0) }, "rateLimit.count", "must be an integer from 1 to 10000"],
      [
        "rateLimit count 10001",
        { rateLimit: count(QUEUE_LIMITS.rateLimitCountMax + 1) },
        "rateLimit.count",
        "must be an integer from 1 to 10000",
      ],
      [
        "rateLimit intervalMs 0",
        { rateLimit: interval(0) },
        "rateLimit.intervalMs",
        "must be an integer from 1 to 86400000",
      ],
      [
        "rateLimit intervalMs 86,400,001",
        { rateLimit: interval(QUEUE_LIMITS.rateLimitIntervalMsMax + 1) },
        "rateLimit.intervalMs",
        "must be an integer from 1 to 86400000",
      ],
      ["maxQueued 0", { maxQueued: 0 }, "maxQueued", "must be an integer from 1 to 100000000"],
      [
        "maxQueued 100,000,001",
        { maxQueued: QUEUE_LIMITS.maxQueuedMax + 1 },
        "maxQueued",
        "must be an integer from 1 to 100000000",
      ],
      [
        "defaultPriority -1,000,001",
        { defaultPriority: -1_000_001 },
        "defaultPriority",
        "must be an integer from -1000000 to 1000000",
      ],
      [
        "defaultPriority 1,000,001",
        { defaultPriority: 1_000_001 },
        "defaultPriority",
        "must be an integer from -1000000 to 1000000",
      ],
      ["defaultMaxAttempts 0", { defaultMaxAttempts: 0 }, "defaultMaxAttempts", "must be an integer from 1 to 1000"],
      [
        "defaultMaxAttempts 1001",
        { defaultMaxAttempts: 1_001 },
        "defaultMaxAttempts",
        "must be an integer from 1 to 1000",
      ],
      [
        "defaultLeaseSeconds 0",
        { defaultLeaseSeconds: 0 },
        "defaultLeaseSeconds",
        "must be an integer from 1 to 86400",
      ],
      [
        "defaultLeaseSeconds 86401",
        { defaultLeaseSeconds: 86_401 },
        "defaultLeaseSeconds",
        "must be an integer from 1 to 86400",
      ],
      [
        "retainSucceededSeconds -1",
        { retainSucceededSeconds: -1 },
        "retainSucceededSeconds",
        "must be an integer from 0 to 315360000",
      ],
      [
        "retainSucceededSeconds over 10 years",
        { retainSucceededSeconds: QUEUE_LIMITS.retainSecondsMax + 1 },
        "retainSucceededSeconds",
        "must be an integer from 0 to 315360000",
      ],
      [
        "retainFailedSeconds -1",
        { retainFailedSeconds: -1 },
        "retainFailedSeconds",
        "must be an integer from 0 to 315360000",
      ],
      [
        "retainFailedSeconds over 10 years",
        { retainFailedSeconds: QUEUE_LIMITS.retainSecondsMax + 1 },
        "retainFailedSeconds",
        "must be an integer from 0 to 315360000",
      ],
      [
        "a defaultBackoff over 30 days",
        { defaultBackoff: { type: "FIXED", delayMs: MAX_BACKOFF_MS + 1 } },
        "defaultBackoff.delayMs",
        "must be an integer number of milliseconds from 0 to 2592000000",
      ],
      [
        "a defaultBackoff jitter above 1",
        { defaultBackoff: { type: "EXPONENTIAL", baseMs: 1, jitter: 2 } },
        "defaultBackoff.jitter",
        "must be a number from 0 to 1",
      ],
      ["paused: null", { paused: null }, "paused", "must be a boolean"],
      ["no setting at all", {}, "name", "give at least one setting to change"],
      [
        "a valid setting next to an invalid one",
        { concurrency: 7, maxQueued: 0 },
        "maxQueued",
        "must be an integer from 1 to 100000000",
      ],
    ];

    it.each(cases)("refuses %s and changes nothing of an existing queue", async (_name, settings, field, problem) => {
      await expectRefused(() => t.request(ConfigureQueueDocument, { input: { name: "configured", ...settings } }), {
        path: ["configureQueue"],
        field,
        problem,
      });
    });

    it.each([
      ["concurrency 0", { concurrency: 0 }, "concurrency", "must be an integer from 1 to 10000"],
      ["no setting at all", {}, "name", "give at least one setting to change"],
      ["paused: null", { paused: null }, "paused", "must be a boolean"],
    ] as const)("refuses %s without creating a new queue", async (_name, settings, field, problem) => {
      await expectRefused(() => t.request(ConfigureQueueDocument, { input: { name: "never-created", ...settings } }), {
        path: ["configureQueue"],
        field,
        problem,
      });
    });

    it.each([
      ["", "must be a non-empty string"],
      [repeat(129, "q"), "must be at most 128 characters"],
      ["no spaces", "may contain only letters, digits and _ . : -"],
    ])("refuses the queue name %j", async (name, problem) => {
      await expectRefused(() => t.request(ConfigureQueueDocument, { input: { name, concurrency: 1 } }), {
        path: ["configureQueue"],
        field: "name",
        problem,
      });
    });
  });

  describe("purgeJobs", () => {
    const notFinished: { states: JobState[]; unfinished: JobState }[] = [
      { states: ["QUEUED"], unfinished: "QUEUED" },
      { states: ["RUNNING"], unfinished: "RUNNING" },
      { states: ["SCHEDULED"], unfinished: "SCHEDULED" },
      { states: ["SUCCEEDED", "FAILED", "RUNNING"], unfinished: "RUNNING" },
    ];

    it.each(notFinished)("refuses states $states: only finished jobs can be purged", async ({ states, unfinished }) => {
      // "held" has a RUNNING job and "waiting" a QUEUED one: a purge that got through would delete them.
      for (const queue of ["held", "waiting"]) {
        await expectRefused(() => t.request(PurgeJobsDocument, { queue, states }), {
          path: ["purgeJobs"],
          field: "states",
          problem: `${unfinished} jobs are not finished; only SUCCEEDED, FAILED, CANCELLED can be purged`,
        });
      }
    });

    it("refuses an empty state list and an invalid queue name", async () => {
      await expectRefused(() => t.request(PurgeJobsDocument, { queue: "held", states: [] }), {
        path: ["purgeJobs"],
        field: "states",
        problem: "must name at least one finished state",
      });
      await expectRefused(() => t.request(PurgeJobsDocument, { queue: "a b" }), {
        path: ["purgeJobs"],
        field: "queue",
        problem: "may contain only letters, digits and _ . : -",
      });
    });
  });

  describe("scalars and GraphQL's own coercion", () => {
    const ENQUEUE = print(EnqueueJobDocument);
    const ISO_HINT = "DateTime must be an ISO-8601 date-time with a time zone, e.g. 2026-11-22T10:15:30Z";
    const SAFE_INT = "SafeInt must be a whole number from -(2^53-1) to 2^53-1";

    // Variables GraphQL cannot coerce: Apollo answers 400 BAD_USER_INPUT, and
    // the message names the variable, the path inside it and the reason.
    const variableCases: [name: string, input: Record<string, unknown>, message: string][] = [
      [
        "a DateTime in words",
        { runAt: "yesterday" },
        `Variable "$input" got invalid value "yesterday" at "input.runAt"; ${ISO_HINT}`,
      ],
      [
        "a DateTime with month 13 and day 45",
        { runAt: "2026-13-45T00:00:00Z" },
        `Variable "$input" got invalid value "2026-13-45T00:00:00Z" at "input.runAt"; DateTime "2026-13-45T00:00:00Z" is not a valid instant`,
      ],
      [
        "a DateTime without a time zone",
        { runAt: "2026-01-01T10:00:00" },
        `Variable "$input" got invalid value "2026-01-01T10:00:00" at "input.runAt"; ${ISO_HINT}`,
      ],
      [
        "a date without a time",
        { runAt: "2026-01-01" },
        `Variable "$input" got invalid value "2026-01-01" at "input.runAt"; ${ISO_HINT}`,
      ],
      [
        "a DateTime as a number",
        { runAt: T0 },
        `Variable "$input" got invalid value ${T0} at "input.runAt"; ${ISO_HINT}`,
      ],
      [
        "a SafeInt of 1.5",
        { delayMs: 1.5 },
        `Variable "$input" got invalid value 1.5 at "input.delayMs"; ${SAFE_INT}, got 1.5`,
      ],
      [
        "a SafeInt of 2^53",
        { delayMs: 2 ** 53 },
        `Variable "$input" got invalid value 9007199254740992 at "input.delayMs"; ${SAFE_INT}, got 9007199254740992`,
      ],
      [
        "a SafeInt as a string",
        { delayMs: "5" },
        `Variable "$input" got invalid value "5" at "input.delayMs"; ${SAFE_INT}, got "5"`,
      ],
      [
        "an Int of 2^31",
        { priority: 2 ** 31 },
        `Variable "$input" got invalid value 2147483648 at "input.priority"; Int cannot represent non 32-bit signed integer value: 2147483648`,
      ],
      [
        "an Int of 1.5",
        { priority: 1.5 },
        `Variable "$input" got invalid value 1.5 at "input.priority"; Int cannot represent non-integer value: 1.5`,
      ],
      [
        "a string for an Int",
        { priority: "high" },
        `Variable "$input" got invalid value "high" at "input.priority"; Int cannot represent non-integer value: "high"`,
      ],
      [
        "a number for a String",
        { queue: 5 },
        `Variable "$input" got invalid value 5 at "input.queue"; String cannot represent a non string value: 5`,
      ],
      [
        "a string for a list of strings' item",
        { tags: [1] },
        `Variable "$input" got invalid value 1 at "input.tags[0]"; String cannot represent a non string value: 1`,
      ],
      [
        "an unknown backoff type",
        { backoff: { type: "RANDOM" } },
        `Variable "$input" got invalid value "RANDOM" at "input.backoff.type"; Value "RANDOM" does not exist in "BackoffType" enum.`,
      ],
      [
        "a field EnqueueJobInput does not have",
        { paused: true },
        `Variable "$input" got invalid value { queue: "q", paused: true }; Field "paused" is not defined by type "EnqueueJobInput".`,
      ],
    ];

    it.each(variableCases)("refuses %s in a variable with 400 BAD_USER_INPUT", async (_name, patch, message) => {
      const error = await expectCoercionRefused(() => send(ENQUEUE, { input: { queue: "q", ...patch } }), {
        code: "BAD_USER_INPUT",
        message,
      });
      expect(error.locations).toEqual([{ line: 1, column: 21 }]); // "$input" in "mutation EnqueueJob($input: …"
    });

    it("refuses a missing or null required variable, and a bad enum in a list", async () => {
      const claim = print(ClaimJobsDocument);
      await expectCoercionRefused(() => send(claim, { queues: ["held"] }), {
        code: "BAD_USER_INPUT",
        message: `Variable "$workerId" of required type "String!" was not provided.`,
      });
      await expectCoercionRefused(() => send(claim, { queues: ["held"], workerId: null }), {
        code: "BAD_USER_INPUT",
        message: `Variable "$workerId" of non-null type "String!" must not be null.`,
      });
      await expectCoercionRefused(() => send(claim, { queues: ["held"], workerId: "w", limit: "10" }), {
        code: "BAD_USER_INPUT",
        message: `Variable "$limit" got invalid value "10"; Int cannot represent non-integer value: "10"`,
      });
      await expectCoercionRefused(() => send(print(PurgeJobsDocument), { queue: "held", states: ["DONE"] }), {
        code: "BAD_USER_INPUT",
        message: `Variable "$states" got invalid value "DONE" at "states[0]"; Value "DONE" does not exist in "JobState" enum.`,
      });
    });

    it("jobs refuses a DateTime in words in filter.createdAfter with 400 BAD_USER_INPUT", async () => {
      await expectCoercionRefused(() => send(print(JobIdsDocument), { filter: { createdAfter: "last week" } }), {
        code: "BAD_USER_INPUT",
        message: `Variable "$filter" got invalid value "last week" at "filter.createdAfter"; ${ISO_HINT}`,
      });
    });

    // The cost limit prices coerced variables only (src/server/apollo.ts): a
    // page size that is not a valid Int is reported as such, not priced as
    // "query cost 25769803777 exceeds the limit".
    it("jobs refuses first above 2^31 in a variable as an invalid Int, not as too costly", async () => {
      await expectCoercionRefused(() => send(print(JobIdsDocument), { first: 2 ** 31 }), {
        code: "BAD_USER_INPUT",
        message: `Variable "$first" got invalid value 2147483648; Int cannot represent non 32-bit signed integer value: 2147483648`,
      });
    });

    // Literals in the query text fail GraphQL validation instead: still 400,
    // but Apollo gives them its GRAPHQL_VALIDATION_FAILED code.
    const literalCases: [name: string, query: string, message: string][] = [
      [
        "an Int literal above 2^31",
        `query { jobs(first: 2147483648) { totalCount } }`,
        "Int cannot represent non 32-bit signed integer value: 2147483648",
      ],
      [
        "a SafeInt literal of 1.5",
        `mutation { enqueueJob(input: { queue: "q", delayMs: 1.5 }) { created } }`,
        "SafeInt must be an integer literal",
      ],
      [
        "a SafeInt literal of 2^53",
        `mutation { enqueueJob(input: { queue: "q", delayMs: 9007199254740992 }) { created } }`,
        `${SAFE_INT}, got 9007199254740992`,
      ],
      [
        "a DateTime literal in words",
        `mutation { enqueueJob(input: { queue: "q", runAt: "yesterday" }) { created } }`,
        ISO_HINT,
      ],
      [
        "a DateTime literal that is a number",
        `mutation { enqueueJob(input: { queue: "q", runAt: 5 }) { created } }`,
        "DateTime must be a string",
      ],
      [
        "a String literal for an Int",
        `mutation { claimJobs(queues: ["held"], workerId: "w", limit: "ten") { leaseToken } }`,
        `Int cannot represent non-integer value: "ten"`,
      ],
    ];

    it.each(literalCases)(
      "refuses %s in the query text with 400 GRAPHQL_VALIDATION_FAILED",
      async (_name, query, message) => {
        await expectCoercionRefused(() => send(query), { code: "GRAPHQL_VALIDATION_FAILED", message });
      },
    );

    it("GraphQL's own literal errors point at the refused value", async () => {
      const query = `mutation { claimJobs(queues: ["held"], workerId: "w", limit: 2147483648) { leaseToken } }`;
      const error = await expectCoercionRefused(() => send(query), {
        code: "GRAPHQL_VALIDATION_FAILED",
        message: "Int cannot represent non 32-bit signed integer value: 2147483648",
      });
      expect(error.locations).toEqual([{ line: 1, column: query.indexOf("2147483648") + 1 }]);
    });

    // `new Date()` rolls 2026-02-31 over to 2026-03-03 and 24:00 over to the
    // next day; the DateTime scalar uses the service's calendar check instead.
    it.each([
      ["February 31st", "2026-02-31T00:00:00Z"],
      ["hour 24", "2026-01-01T24:00:00Z"],
    ])("refuses an impossible DateTime (%s) instead of rolling it over", async (_name, runAt) => {
      await expectCoercionRefused(
        () => t.request(EnqueueJobDocument, { input: { queue: "impossible-dates", runAt } }),
        {
          code: "BAD_USER_INPUT",
          message: `Variable "$input" got invalid value "${runAt}" at "input.runAt"; DateTime "${runAt}" is not a valid instant`,
        },
      );
    });

    // A literal refused by a custom scalar carries its location, as GraphQL's
    // own Int error does, so with several SafeInt arguments the client can
    // tell which one was wrong.
    it("points at the refused SafeInt literal, as GraphQL does for an Int literal", async () => {
      const query = `mutation { failJob(jobId: "1", leaseToken: "t", error: { message: "m" }, retryInMs: 1.5) { id } }`;
      const error = await expectCoercionRefused(() => send(query), {
        code: "GRAPHQL_VALIDATION_FAILED",
        message: "SafeInt must be an integer literal",
      });
      expect(error.locations).toEqual([{ line: 1, column: query.indexOf("1.5") + 1 }]);
    });
  });
});
