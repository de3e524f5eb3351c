/**
 * A page of jobs with nested fields costs a fixed number of database
 * statements whatever its size (graphql/loaders.ts): every Job.queue of the
 * page is one read, every Job.events(last: n) one read, every JobEvent.job one
 * read, each queue's stats once. Counted with t.countStatements against the
 * real server on every backend; a resolver that reads per job (an N+1) makes
 * the 100-job page cost more than the 10-job one and fails here.
 */
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { parse } from "graphql";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";
import { ManualClock } from "../helpers/clock.ts";

interface PageData {
  jobs: {
    totalCount: number;
    nodes: {
      id: string;
      state: string;
      queue: {
        name: string;
        settings: { paused: boolean; concurrency: number | null };
        stats: { counts: { queued: number } };
      };
      events: { seq: number; type: string; job: { id: string } }[];
    }[];
  };
}

const PageDocument = parse(`
  query Page($first: Int) {
    jobs(first: $first) {
      totalCount
      nodes {
        id
        state
        queue { name settings { paused concurrency } stats { counts { queued } } }
        events(last: 5) { seq type job { id } }
      }
    }
  }`) as TypedDocumentNode<PageData, { first: number }>;

/**
 * The most statements the page may cost. Observed: 21 on SQLite and on
 * PostgreSQL, for either page size: the page 1, totalCount 1, the page's
 * queues 1, their events 1, the events' jobs 1, and the stats of the 2 queues,
 * 8 each (QueueService.queueStats reads the queue row, then
 * readQueueStats's 7 reads). It is fixed by the query's shape, not by the page
 * size; a read per job would add 90 to the 100-job page.
 */
const MAX_STATEMENTS = 24;

describe.each(BACKENDS)("statements per jobs page on %s", (dialect) => {
  let t: TestServer;
  let clock: ManualClock;

  beforeEach(async () => {
    clock = new ManualClock();
    t = await startTestServer(dialect, { now: clock.now });
    const { jobs, queues } = t.server.services;
    await queues.configureQueue({ name: "images", concurrency: 10 });
    // 100 jobs alternating between two queues, so that any 10 newest hold both
    // queues. The 10 newest have priority -1, so the claims below take them
    // first: the first page holds running and succeeded jobs, not only queued.
    await jobs.enqueueMany(
      Array.from({ length: 100 }, (_, i) => ({
        queue: i % 2 === 0 ? "mail" : "images",
        payload: { i },
        ...(i >= 90 && { priority: -1 }),
      })),
    );
    for (const queue of ["mail", "images"]) {
      const leased = await jobs.claim({ queues: [queue], workerId: "w1", limit: 10 });
      expect(leased).toHaveLength(10);
      for (const job of leased.slice(0, 6)) {
        clock.advance(1_000);
        await jobs.complete({ jobId: job.id, leaseToken: job.leaseToken, result: { ok: true } });
      }
    }
  });
  afterEach(async () => {
    await t.close();
  });

  async function countPage(first: number): Promise<{ statements: number; page: PageData["jobs"] }> {
    let page: PageData["jobs"] | undefined;
    const statements = await t.countStatements(async () => {
      page = (await t.data(PageDocument, { first })).jobs;
    });
    if (!page) throw new Error("no page");
    return { statements, page };
  }

  it("costs the same statements for 100 jobs as for 10", async () => {
    const ten = await countPage(10);
    const hundred = await countPage(100);

    // The pages are what they claim to be, nested fields included.
    expect(ten.page.nodes).toHaveLength(10);
    expect(hundred.page.nodes).toHaveLength(100);
    expect(hundred.page.totalCount).toBe(100);
    expect(hundred.page.nodes.slice(0, 10)).toEqual(ten.page.nodes);
    expect(new Set(ten.page.nodes.map((n) => n.queue.name))).toEqual(new Set(["mail", "images"]));
    const states = hundred.page.nodes.map((n) => n.state);
    expect(states.filter((s) => s === "SUCCEEDED")).toHaveLength(12);
    expect(states.filter((s) => s === "RUNNING")).toHaveLength(8);
    expect(states.filter((s) => s === "QUEUED")).toHaveLength(80);
    for (const node of hundred.page.nodes) {
      const expectedTypes = { QUEUED: ["ENQUEUED"], RUNNING: ["ENQUEUED", "CLAIMED"] }[node.state] ?? [
        "ENQUEUED",
        "CLAIMED",
        "SUCCEEDED",
      ];
      expect(node.events).toEqual(expectedTypes.map((type, i) => ({ seq: i + 1, type, job: { id: node.id } })));
      expect(node.queue.settings).toEqual({ paused: false, concurrency: node.queue.name === "images" ? 10 : null });
    }
    // 50 per queue: 40 queued in each (10 claimed, 6 of them completed).
    expect(new Set(hundred.page.nodes.map((n) => n.queue.stats.counts.queued))).toEqual(new Set([40]));

    expect(hundred.statements).toBe(ten.statements);
    expect(hundred.statements).toBeLessThanOrEqual(MAX_STATEMENTS);
    expect(hundred.statements).toBeLessThan(100 + ten.statements);
  });
});
