/**
 * Racing claimers and producers on every backend, each on its own connection.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { JobService } from "../../src/jobs/job-service.ts";
import { BACKENDS, createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { drainQueue } from "../helpers/drain.ts";
import { isGapless, summariseEvents } from "../helpers/inspect.ts";

const JOBS = 5_000;

async function enqueueMany(service: JobService, queue: string, count: number): Promise<void> {
  for (let i = 0; i < count; i += 1_000) {
    const batch = Array.from({ length: Math.min(1_000, count - i) }, (_, k) => ({ queue, payload: { n: i + k } }));
    await service.enqueueMany(batch);
  }
}

function expectExactlyOnce(claims: string[][], total: number): void {
  const all = claims.flat();
  expect(all).toHaveLength(total);
  expect(new Set(all).size).toBe(total);
}

async function expectAllSucceededGapless(db: TestDatabase, total: number): Promise<void> {
  const summary = await summariseEvents(db);
  expect(summary).toHaveLength(total);
  expect(summary.filter((s) => s.state !== "SUCCEEDED")).toEqual([]);
  expect(summary.filter((s) => !isGapless(s))).toEqual([]);
  // enqueued, claimed, succeeded
  expect(summary.every((s) => s.lastSeq === 3)).toBe(true);
}

describe.each(BACKENDS)("concurrency on %s", (dialect) => {
  let db: TestDatabase;

  beforeEach(async () => {
    db = await createTestDatabase(dialect);
  });
  afterEach(async () => {
    await db.dispose();
  });

  it(`8 claimers on separate connections drain ${JOBS} jobs, each exactly once`, async () => {
    const producer = await db.service();
    await enqueueMany(producer, "race", JOBS);
    const claimers = await Promise.all(
      Array.from({ length: 8 }, async () => db.service({ store: await db.open({ poolSize: 2 }) })),
    );
    const claims = await Promise.all(claimers.map((s, i) => drainQueue(s, "race", `w${i}`)));
    expectExactlyOnce(claims, JOBS);
    // Every claimer took part: the race was real.
    expect(claims.filter((c) => c.length > 0).length).toBeGreaterThan(1);
    await expectAllSucceededGapless(db, JOBS);
  });

  it("100 concurrent enqueues with one idempotency key create exactly one job", async () => {
    const services = await Promise.all(
      Array.from({ length: 10 }, async () => db.service({ store: await db.open({ poolSize: 2 }) })),
    );
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        services[i % services.length]!.enqueue({ queue: "idem", idempotencyKey: "same-key", payload: { i } }),
      ),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.job.id)).size).toBe(1);
    const summary = await summariseEvents(db);
    expect(summary).toHaveLength(1);
    expect(summary[0]!.seqs).toEqual([1]);
  });
});

describe("concurrency across processes on sqlite", () => {
  let db: TestDatabase;

  beforeEach(async () => {
    db = await createTestDatabase("sqlite");
  });
  afterEach(async () => {
    await db.dispose();
  });

  it(`2 processes drain ${JOBS} jobs from one SQLite file, each job exactly once`, async () => {
    await enqueueMany(await db.service(), "multi", JOBS);
    const children = ["p1", "p2"].map((id) =>
      spawn(process.execPath, ["--import", "tsx", "test/helpers/drain-process.ts", db.url, "multi", id], {
        stdio: ["pipe", "pipe", "inherit"],
      }),
    );
    const outputs = children.map((child) => {
      let out = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
      return { child, text: () => out };
    });
    // Start both only once both have opened the database.
    await Promise.all(
      outputs.map(async ({ child, text }) => {
        while (!text().includes("ready\n")) await once(child.stdout, "data");
      }),
    );
    for (const child of children) child.stdin.end("go\n");
    const codes = await Promise.all(children.map(async (c) => (await once(c, "exit"))[0] as number));
    expect(codes).toEqual([0, 0]);
    const claims = outputs.map(({ text }) => JSON.parse(text().split("\n").filter(Boolean).at(-1)!) as string[]);
    expectExactlyOnce(claims, JOBS);
    expect(claims.every((c) => c.length > 0)).toBe(true);
    await expectAllSucceededGapless(db, JOBS);
  });
});
