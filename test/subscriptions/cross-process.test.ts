/**
 * Two `jobwire serve` processes on one PostgreSQL database (one schema):
 *
 * - a subscriber connected to B receives transitions made through A within 1 s;
 * - 4 workers, two on each server, drain 2,000 jobs over HTTP with no double
 *   claim (every job SUCCEEDED on its first attempt, ENQUEUED/CLAIMED/SUCCEEDED
 *   only), while a jobChanged subscriber on B receives each of the 6,000
 *   events exactly once, in increasing id order: PostgreSQL commits event ids
 *   out of order under this load, and the feed must neither skip nor repeat
 *   (events/horizon.ts);
 * - when the LISTEN connections are killed, B still delivers (its safety poll
 *   and the bus's reconnect), and delivers within 1 s again once reconnected.
 */
import { createHash } from "node:crypto";
import type { Client } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { print } from "graphql";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import {
  ClaimJobsDocument,
  CompleteJobDocument,
  EnqueueJobDocument,
  EnqueueJobsDocument,
  WatchJobChangesDocument,
  WatchJobEventsDocument,
} from "../../src/client/__generated__/graphql.ts";
import { createTestDatabase, POSTGRES_URL, withPg } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { queryDatabase } from "../helpers/inspect.ts";
import { startServeProcess } from "../helpers/serve-process.ts";
import type { ServeProcess } from "../helpers/serve-process.ts";
import { connect, record } from "../helpers/ws.ts";

const JOBS = 2_000;

async function gql<T, V>(url: string, document: TypedDocumentNode<T, V>, variables: V): Promise<T> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: print(document), variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: unknown };
  if (!body.data || body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return performance.now() - started;
}

describe.skipIf(!POSTGRES_URL)("two server processes on one PostgreSQL database", () => {
  let db: TestDatabase;
  let a: ServeProcess;
  let b: ServeProcess;
  const clients: Client[] = [];

  beforeAll(async () => {
    db = await createTestDatabase("postgres");
    a = await startServeProcess(["--database", db.url]);
    b = await startServeProcess(["--database", db.url]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    const codes = await Promise.all([a?.stop(), b?.stop()]);
    await db?.dispose();
    expect(codes).toEqual([0, 0]);
  });

  it("a subscriber on B receives transitions made through A within 1 s", async () => {
    const client = connect(b.url);
    clients.push(client);
    const changes = record(client, WatchJobChangesDocument, { filter: { queues: ["ab"] } });
    // Registered once a first transition arrives; it is not timed.
    await gql(a.url, EnqueueJobDocument, { input: { queue: "ab" } });
    await changes.waitForItems(1);

    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { enqueueJob } = await gql(a.url, EnqueueJobDocument, { input: { queue: "ab", payload: { i } } });
      latencies.push(
        await until(`job ${enqueueJob.job.id} on B`, () =>
          changes.items.some((x) => x.jobChanged.jobId === enqueueJob.job.id),
        ),
      );
      const events = record(client, WatchJobEventsDocument, { jobId: enqueueJob.job.id });
      await events.waitForItems(1);
      const [leased] = (await gql(a.url, ClaimJobsDocument, { queues: ["ab"], workerId: "a1" })).claimJobs;
      if (!leased) throw new Error("nothing claimed");
      await gql(a.url, CompleteJobDocument, { jobId: leased.job.id, leaseToken: leased.leaseToken });
      latencies.push(
        await until("completion on B", () => events.items.length >= 3 || leased.job.id !== enqueueJob.job.id),
      );
      events.stop();
    }
    expect(Math.max(...latencies)).toBeLessThan(1_000);
  });

  it("4 workers over both servers drain 2,000 jobs with no double claim; B's subscriber sees all 6,000 events once, in id order", async () => {
    const client = connect(b.url);
    clients.push(client);
    const watched = record(client, WatchJobChangesDocument, { filter: { queues: ["drain"] } });
    // The first enqueue batch doubles as the registration check.
    const batches = Array.from({ length: JOBS / 500 }, (_, i) =>
      Array.from({ length: 500 }, (_, k) => ({ queue: "drain", payload: { n: i * 500 + k } })),
    );
    await gql(a.url, EnqueueJobsDocument, { jobs: batches[0] ?? [] });
    await watched.waitForItems(1, 30_000);
    for (const batch of batches.slice(1)) await gql(a.url, EnqueueJobsDocument, { jobs: batch });

    let completed = 0;
    const worker = async (url: string, workerId: string): Promise<string[]> => {
      const mine: string[] = [];
      while (completed < JOBS) {
        const { claimJobs } = await gql(url, ClaimJobsDocument, { queues: ["drain"], workerId, limit: 10 });
        if (claimJobs.length === 0) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          continue;
        }
        for (const leased of claimJobs) {
          mine.push(leased.job.id);
          await gql(url, CompleteJobDocument, { jobId: leased.job.id, leaseToken: leased.leaseToken });
          completed++;
        }
      }
      return mine;
    };
    const claimed = (
      await Promise.all([worker(a.url, "a1"), worker(a.url, "a2"), worker(b.url, "b1"), worker(b.url, "b2")])
    ).flat();
    expect(claimed).toHaveLength(JOBS);
    expect(new Set(claimed).size).toBe(JOBS);

    const jobs = await queryDatabase<{ state: string; attempts: number; n: string }>(
      db,
      `SELECT state, attempts, count(*)::text AS n FROM jobs WHERE queue = 'drain' GROUP BY state, attempts`,
    );
    expect(jobs).toEqual([{ state: "SUCCEEDED", attempts: 1, n: String(JOBS) }]);
    const perJob = await queryDatabase<{ types: string; n: string }>(
      db,
      `SELECT types, count(*)::text AS n FROM (
         SELECT string_agg(e.type, ',' ORDER BY e.seq) AS types FROM job_events e JOIN jobs j ON j.id = e.job_id
         WHERE j.queue = 'drain' GROUP BY e.job_id) t GROUP BY types`,
    );
    expect(perJob).toEqual([{ types: "enqueued,claimed,succeeded", n: String(JOBS) }]);

    // On a miss, name the missing events (with their writers' xids) rather than time out.
    await watched.waitForItems(3 * JOBS, 60_000).catch(() => {});
    const stored = await queryDatabase<{ id: string; type: string; xid: string }>(
      db,
      `SELECT e.id::text AS id, e.type, e.xmin::text AS xid FROM job_events e JOIN jobs j ON j.id = e.job_id
       WHERE j.queue = 'drain' ORDER BY e.id`,
    );
    const got = watched.items.map((x) => x.jobChanged.id);
    const seen = new Set(got);
    expect(stored.filter((e) => !seen.has(e.id))).toEqual([]);
    expect(got.filter((id, i) => got.indexOf(id) !== i)).toEqual([]);
    expect(got).toEqual(stored.map((e) => e.id));
  }, 180_000);

  it("keeps delivering when the LISTEN connections are killed, and within 1 s again once they are back", async () => {
    const client = connect(b.url);
    clients.push(client);
    const changes = record(client, WatchJobChangesDocument, { filter: { queues: ["bus"] } });
    await gql(a.url, EnqueueJobDocument, { input: { queue: "bus" } });
    await changes.waitForItems(1);

    const schema = new URL(db.url).searchParams.get("options")?.replace("-c search_path=", "") ?? "";
    const name = `jobwire-events jobwire_${createHash("sha256").update(schema).digest("hex").slice(0, 16)}`;
    const busConnections = async () =>
      (
        await withPg((c) =>
          c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1", [name]),
        )
      ).rows[0]?.n ?? 0;
    expect(await busConnections()).toBe(2); // one per server
    await withPg((c) =>
      c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [name]),
    );

    await gql(a.url, EnqueueJobDocument, { input: { queue: "bus" } });
    await changes.waitForItems(2, 3_000); // the poll, or the bus once it is back
    await until("both buses reconnected", async () => (await busConnections()) === 2, 10_000);
    const { enqueueJob } = await gql(a.url, EnqueueJobDocument, { input: { queue: "bus" } });
    const latency = await until("delivery after the reconnect", () =>
      changes.items.some((x) => x.jobChanged.jobId === enqueueJob.job.id),
    );
    expect(latency).toBeLessThan(1_000);
    expect(b.logs.some((l) => typeof l.msg === "string" && l.msg === "event bus")).toBe(true);
  }, 60_000);
});

if (!POSTGRES_URL) {
  process.stdout.write("cross-process.test.ts: two servers on PostgreSQL SKIPPED (set JOBWIRE_TEST_POSTGRES_URL)\n");
}
