/**
 * 1,000 subscribers at once, each on its own WebSocket connection, all
 * watching one job: one transition reaches every one of them, exactly once;
 * the server counts 1,000 connections and subscriptions while they are open
 * and none after they close. (Delivery latency and server RSS for this case
 * are measured by bench/fanout.ts, not here.)
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CancelJobDocument,
  EnqueueJobDocument,
  WatchJobEventsDocument,
} from "../../src/client/__generated__/graphql.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";
import { connect, record } from "../helpers/ws.ts";
import type { Recording } from "../helpers/ws.ts";
import type { Client } from "graphql-ws";

const SUBSCRIBERS = 1_000;
const PARALLEL = 50;

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.each(BACKENDS)("1,000 subscribers on %s", (dialect) => {
  let t: TestServer;
  const clients: Client[] = [];
  beforeEach(async () => {
    t = await startTestServer(dialect);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.dispose()));
    await t.close();
  });

  it("all receive the transition, once each; connections and subscriptions are counted and released", async () => {
    const job = (await t.data(EnqueueJobDocument, { input: { queue: "fan" } })).enqueueJob.job;
    const subs: Recording<{ jobEvents: { seq: number; type: string } }>[] = [];
    for (let i = 0; i < SUBSCRIBERS; i += PARALLEL) {
      const batch = Array.from({ length: PARALLEL }, () => {
        const client = connect(t.url);
        clients.push(client);
        // afterSeq 1: nothing to replay, so the first item is the live transition.
        return record(client, WatchJobEventsDocument, { jobId: job.id, afterSeq: 1 });
      });
      subs.push(...batch);
      await until(`${i + PARALLEL} subscriptions`, () => t.server.liveCounts().subscriptions >= i + PARALLEL);
    }
    expect(t.server.liveCounts()).toMatchObject({ connections: SUBSCRIBERS, subscriptions: SUBSCRIBERS });

    await t.data(CancelJobDocument, { jobId: job.id });
    await until("every subscriber got the transition", () => subs.every((s) => s.items.length >= 1));
    for (const s of subs) {
      expect(s.items).toEqual([{ jobEvents: expect.objectContaining({ seq: 2, type: "CANCELLED" }) }]);
      expect(s.errors).toBeNull();
    }

    await Promise.all(clients.splice(0).map((c) => c.dispose()));
    await until("all released", () => {
      const counts = t.server.liveCounts();
      return counts.connections === 0 && counts.subscriptions === 0;
    });
    // Only the feed's own bus listener is left.
    expect(t.server.liveCounts()).toMatchObject({ feedListeners: 0, busListeners: 1 });
  }, 90_000);
});
