/**
 * A subscriber that stops reading. graphql-ws sends one message at a time and
 * waits for the socket to take it, so once the paused client's TCP window and
 * the kernel buffers are full, the server stops pulling from the
 * subscription and new events wait in its buffer (here 50). One more ends that
 * subscription with SUBSCRIPTION_OVERFLOW: what the server holds for a stalled
 * client is bounded (one message in flight, at most 50 events), and nothing is
 * skipped silently. Meanwhile a normal subscriber on the same queue gets every
 * event. When the slow client reads again it finds a gapless prefix of the
 * events, then the error naming the last event sent, from which it can resume.
 *
 * The slow client is a raw `ws` socket speaking graphql-transport-ws, so the
 * test controls exactly when it reads. Events select a 128 KiB job payload,
 * so a few dozen fill the socket buffers.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { EnqueueJobsDocument, WatchJobChangesDocument } from "../../src/client/__generated__/graphql.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";
import { connect, record, untilSubscribed, wsUrl } from "../helpers/ws.ts";
import type { Client } from "graphql-ws";

const BUFFER = 50;
const PAYLOAD = { blob: "x".repeat(128 * 1024) };
const BATCH = 10;
/** Far more than the socket buffers and the subscription buffer hold together. */
const MAX_JOBS = 2_000;

interface Message {
  id?: string;
  type: string;
  payload?: unknown;
}

/** A graphql-transport-ws client whose reading the test pauses and resumes. */
async function openRawSubscriber(url: string, query: string, variables: Record<string, unknown>) {
  const socket = new WebSocket(wsUrl(url), "graphql-transport-ws");
  const messages: Message[] = [];
  socket.on("message", (data: Buffer) => messages.push(JSON.parse(data.toString()) as Message));
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  socket.send(JSON.stringify({ type: "connection_init" }));
  const deadline = Date.now() + 5_000;
  while (!messages.some((m) => m.type === "connection_ack")) {
    if (Date.now() > deadline) throw new Error("no connection_ack");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query, variables } }));
  return { socket, messages };
}

describe.each(BACKENDS)("a subscriber that stops reading, on %s", (dialect) => {
  let t: TestServer;
  let client: Client;
  let raw: WebSocket | null = null;
  beforeEach(async () => {
    t = await startTestServer(dialect, { subscriptionBuffer: BUFFER });
    client = connect(t.url);
  });
  afterEach(async () => {
    raw?.terminate();
    await client.dispose();
    await t.close();
  });

  it("is ended with SUBSCRIPTION_OVERFLOW once its buffer fills; others get every event", async () => {
    const normal = record(client, WatchJobChangesDocument, { filter: { queues: ["slow"] } });
    await untilSubscribed(t.server, 1);
    const slow = await openRawSubscriber(
      t.url,
      "subscription ($q: [String!]) { jobChanged(filter: { queues: $q }) { id job { payload } } }",
      { q: ["slow"] },
    );
    raw = slow.socket;
    await untilSubscribed(t.server, 2);
    slow.socket.pause(); // stops reading: the server's sends back up

    let enqueued = 0;
    while (t.server.liveCounts().subscriptions === 2) {
      if (enqueued >= MAX_JOBS) throw new Error(`the slow subscription was not ended after ${enqueued} events`);
      const jobs = Array.from({ length: BATCH }, () => ({ queue: "slow", payload: PAYLOAD }));
      await t.data(EnqueueJobsDocument, { jobs });
      enqueued += BATCH;
    }
    // What a stalled subscription can hold is bounded by construction: graphql-ws
    // has at most one message in flight per subscription (it awaits each send),
    // and the stream at most BUFFER events, then it ends; it ended here.
    expect(enqueued).toBeGreaterThan(BUFFER);
    expect(t.server.liveCounts().subscriptions).toBe(1);

    // The normal subscriber is unaffected: every event, in id order.
    await normal.waitForItems(enqueued, 30_000);
    const allIds = normal.items.map((i) => i.jobChanged.id);
    expect(new Set(allIds).size).toBe(enqueued);
    expect(allIds).toEqual([...allIds].sort((a, b) => Number(BigInt(a) - BigInt(b))));

    // Reading again: a gapless prefix of the events, then the error.
    slow.socket.resume();
    const deadline = Date.now() + 30_000;
    while (!slow.messages.some((m) => m.type === "error" || m.type === "complete")) {
      if (Date.now() > deadline) throw new Error(`no error after ${slow.messages.length} messages`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const nexts = slow.messages.filter((m) => m.type === "next");
    const got = nexts.map((m) => (m.payload as { data: { jobChanged: { id: string } } }).data.jobChanged.id);
    expect(got.length).toBeGreaterThan(0);
    expect(got).toEqual(allIds.slice(0, got.length));
    const last = slow.messages.at(-1);
    expect(last?.type).toBe("error");
    expect(last?.payload).toEqual([
      {
        message: `the subscriber fell behind: it had not read ${BUFFER} events sent or waiting to be sent, so the subscription was ended; resubscribe with afterEventId = the id of the last event you received`,
        extensions: { code: "SUBSCRIPTION_OVERFLOW", maxBuffer: BUFFER, lastSentEventId: got.at(-1) },
      },
    ]);
    // The connection itself stays open and usable.
    expect(slow.socket.readyState).toBe(WebSocket.OPEN);
    expect(t.server.liveCounts()).toMatchObject({ connections: 2, subscriptions: 1 });
  }, 120_000);
});
