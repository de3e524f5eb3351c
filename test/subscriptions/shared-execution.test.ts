/**
 * Fan-out executes each event once per subscription shape (server/websocket.ts):
 * 20 clients holding the same jobChanged subscription with a nested `job`
 * field cost one read of that job per event, not 20; clients with other
 * variables or another selection get their own execution, and every client
 * still receives its own copy of the event.
 */
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { parse } from "graphql";
import type { Client } from "graphql-ws";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EnqueueJobDocument } from "../../src/client/__generated__/graphql.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";
import { connect, record, untilSubscribed } from "../helpers/ws.ts";

type Data = { jobChanged: { jobId: string; type: string; job: { state: string } | null } };
const WithJob = parse(`subscription ($q: [String!]) {
  jobChanged(filter: { queues: $q }) { jobId type job { state } }
}`) as TypedDocumentNode<Data, { q: string[] }>;
const WithJobAndSeq = parse(`subscription ($q: [String!]) {
  jobChanged(filter: { queues: $q }) { jobId type seq job { state } }
}`) as TypedDocumentNode<Data, { q: string[] }>;

describe.each(BACKENDS)("shared subscription execution on %s", (dialect) => {
  let t: TestServer;
  const clients: Client[] = [];

  beforeEach(async () => {
    t = await startTestServer(dialect);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.dispose()));
    await t.close();
  });

  it("reads a nested field once per event for all clients of one shape", async () => {
    const same = Array.from({ length: 20 }, () => {
      const client = connect(t.url);
      clients.push(client);
      return record(client, WithJob, { q: ["shared"] });
    });
    const otherClient = connect(t.url);
    clients.push(otherClient);
    const otherShape = record(otherClient, WithJobAndSeq, { q: ["shared"] });
    await untilSubscribed(t.server, 21);

    // Statements the server sends while the event reaches everyone, minus the
    // enqueue itself (counted alone first).
    const enqueueCost = await t.countStatements(() => t.data(EnqueueJobDocument, { input: { queue: "warm-up" } }));
    const fanOutCost = await t.countStatements(async () => {
      await t.data(EnqueueJobDocument, { input: { queue: "shared" } });
      await Promise.all([...same, otherShape].map((r) => r.waitForItems(1)));
    });
    for (const r of same) {
      expect(r.items).toEqual([
        { jobChanged: { jobId: expect.any(String), type: "ENQUEUED", job: { state: "QUEUED" } } },
      ]);
    }
    expect(otherShape.items[0]?.jobChanged).toMatchObject({ type: "ENQUEUED", seq: 1, job: { state: "QUEUED" } });
    // One job read for the 20 alike, one for the other shape (21 without sharing).
    expect(fanOutCost - enqueueCost).toBe(2);
  });
});
