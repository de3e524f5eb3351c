/**
 * A subscriber whose client stops reading (its TCP socket paused: the kernel
 * buffers take the server's small messages for a long while, so graphql-ws's
 * own backpressure never starts) is told why it was ended, before any
 * keep-alive cut and with what it needs to resume:
 * - while events keep coming, the subscription is ended with
 *   SUBSCRIPTION_OVERFLOW within its buffer's worth of events (the server
 *   counts events sent but not confirmed read by a pong); the connection
 *   stays open; a client that reads again gets the events it was sent, then
 *   the error with the last event id, and a subscription from that id gets
 *   the rest, no gap, no duplicate;
 * - a socket that stops answering pings is closed with 4408 and the reason
 *   "stalled: no pong within N ms; last event id X" after each subscription's
 *   SUBSCRIPTION_OVERFLOW (stalled, with its own cursor), not cut with 1006;
 * - the SDK's live subscription resumes across both with every event once.
 * Real server, real graphql-ws clients over `ws`, SQLite and PostgreSQL.
 */
import type { Socket } from "node:net";
import type { Client } from "graphql-ws";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { ClientOptions } from "ws";
import { JobwireClient } from "../../src/client/client.ts";
import type { JobEventFieldsFragment } from "../../src/client/__generated__/graphql.ts";
import {
  CancelJobDocument,
  EnqueueJobDocument,
  EnqueueJobsDocument,
  WatchJobChangesDocument,
  WatchJobEventsDocument,
} from "../../src/client/__generated__/graphql.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer, TestServerOptions } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";
import { connect, record, untilSubscribed } from "../helpers/ws.ts";

const BUFFER = 50;
const BATCH = 10;

/** A `ws` WebSocket class whose instances the test can reach, to pause their reading. */
function capturingWebSocket() {
  const sockets: WebSocket[] = [];
  class Captured extends WebSocket {
    constructor(address: string | URL, protocols?: string | string[], options?: ClientOptions) {
      super(address, protocols, options);
      sockets.push(this);
    }
  }
  /** The TCP socket under the newest WebSocket (ws keeps it as `_socket`). */
  const tcp = (): Socket => {
    const ws = sockets.at(-1) as unknown as { _socket: Socket | null } | undefined;
    if (!ws?._socket) throw new Error("no open socket");
    return ws._socket;
  };
  return { Captured, sockets, tcp };
}

/** A WebSocket client that reads everything at once but answers each ping `delayMs` late (a long round trip). */
function slowPongWebSocket(delayMs: number) {
  return class SlowPong extends WebSocket {
    constructor(address: string | URL, protocols?: string | string[], options?: ClientOptions) {
      super(address, protocols, { ...options, autoPong: false });
      this.on("ping", (data: Buffer) => {
        setTimeout(() => {
          if (this.readyState === WebSocket.OPEN) this.pong(data);
        }, delayMs);
      });
    }
  };
}

interface Close {
  code: number;
  reason: string;
}

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const byId = (a: string, b: string) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0);

describe.each(BACKENDS)("a subscriber whose client stops reading, on %s", (dialect) => {
  let t: TestServer | null = null;
  const clients: Client[] = [];
  const sdks: JobwireClient[] = [];
  const start = async (options: TestServerOptions) => (t = await startTestServer(dialect, options));
  afterEach(async () => {
    for (const sdk of sdks.splice(0)) await sdk.close();
    await Promise.all(clients.splice(0).map((c) => c.dispose()));
    await t?.close();
    t = null;
  });
  const enqueue = async (s: TestServer, n: number) => {
    await s.data(EnqueueJobsDocument, { jobs: Array.from({ length: n }, () => ({ queue: "stall" })) });
  };

  it("gets SUBSCRIPTION_OVERFLOW within its buffer, then resumes from the id it carries with no gap", async () => {
    // The keep-alive is far away: what ends the subscription here is the
    // overflow. No grace: sent events count as unread until confirmed.
    const s = await start({ subscriptionBuffer: BUFFER, wsKeepAliveMs: 60_000, subscriptionReadGraceMs: 0 });
    const { Captured, tcp } = capturingWebSocket();
    const closes: Close[] = [];
    const client = connect(s.url, {
      webSocketImpl: Captured,
      on: { closed: (e) => closes.push(e as Close) },
    });
    clients.push(client);
    const sub = record(client, WatchJobChangesDocument, { filter: { queues: ["stall"] } });
    // A reader on another connection: once it has an event, the server has
    // handed that event to the stalled subscription too (same feed delivery).
    const other = connect(s.url);
    clients.push(other);
    const watcher = record(other, WatchJobChangesDocument, { filter: { queues: ["stall"] } });
    await untilSubscribed(s.server, 2);
    await enqueue(s, 5);
    await sub.waitForItems(5);

    tcp().pause(); // the client reads nothing more, pongs included
    let afterPause = 0;
    while (s.server.liveCounts().subscriptions === 2) {
      if (afterPause > 4 * BUFFER) throw new Error(`still subscribed after ${afterPause} unread events`);
      await enqueue(s, BATCH);
      afterPause += BATCH;
      await watcher.waitForItems(5 + afterPause);
    }
    // Ended within its buffer's worth of events (plus the batch in which it
    // overflowed), while the connection stays open: no keep-alive cut.
    expect(afterPause).toBeLessThanOrEqual(BUFFER + BATCH);
    expect(s.server.liveCounts()).toMatchObject({ connections: 2, subscriptions: 1 });
    await enqueue(s, 3 * BATCH); // more, which only the resumed subscription can get
    const total = 5 + afterPause + 3 * BATCH;

    tcp().resume();
    const errors = await sub.waitForErrors();
    const got = sub.items.map((i) => i.jobChanged.id);
    expect(got.length).toBeGreaterThanOrEqual(5);
    expect(got.length).toBeLessThan(total);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.extensions).toEqual({
      code: "SUBSCRIPTION_OVERFLOW",
      maxBuffer: BUFFER,
      lastSentEventId: got.at(-1),
    });
    expect(closes).toEqual([]); // the connection was never closed

    const resumed = record(client, WatchJobChangesDocument, {
      filter: { queues: ["stall"] },
      afterEventId: errors[0]?.extensions?.lastSentEventId as string,
    });
    await resumed.waitForItems(total - got.length);
    const all = [...got, ...resumed.items.map((i) => i.jobChanged.id)];
    expect(new Set(all).size).toBe(total); // no duplicate
    expect(all).toEqual([...all].sort(byId)); // in order
    // No gap: exactly the events a full replay of the queue finds.
    const replay = record(client, WatchJobChangesDocument, { filter: { queues: ["stall"] }, afterEventId: "0" });
    await replay.waitForItems(total);
    expect(replay.items.map((i) => i.jobChanged.id)).toEqual(all);
  }, 60_000);

  it("a reading client gets bursts adding up to 10x its buffer with no overflow (the default read grace)", async () => {
    const s = await start({ subscriptionBuffer: BUFFER, wsKeepAliveMs: 60_000 });
    // Its pongs come 300 ms late: every event is read at once, but confirmed a round trip later.
    const client = connect(s.url, { webSocketImpl: slowPongWebSocket(300) });
    clients.push(client);
    const sub = record(client, WatchJobChangesDocument, { filter: { queues: ["stall"] } });
    await untilSubscribed(s.server, 1);
    // Back-to-back bulk enqueues, each under the buffer, together far over it,
    // sent faster than pongs come back (what a drain does to a dashboard).
    const burst = (BUFFER * 4) / 5;
    for (let i = 0; i < 12; i++) await enqueue(s, burst);
    await sub.waitForItems(12 * burst);
    expect(sub.errors).toBeNull();
    expect(new Set(sub.items.map((i) => i.jobChanged.id)).size).toBe(12 * burst);
  }, 60_000);

  it("closes a stalled socket with 4408 and the last event id, after telling each subscription, not with 1006", async () => {
    const KEEP_ALIVE = 200;
    const s = await start({ subscriptionBuffer: BUFFER, wsKeepAliveMs: KEEP_ALIVE });
    const { Captured, tcp } = capturingWebSocket();
    const closes: Close[] = [];
    const client = connect(s.url, {
      webSocketImpl: Captured,
      on: { closed: (e) => closes.push(e as Close) },
    });
    clients.push(client);
    const sub = record(client, WatchJobChangesDocument, { filter: { queues: ["stall"] } });
    // A second subscription on the same socket, to a job in another queue.
    const job = (await s.data(EnqueueJobDocument, { input: { queue: "other" } })).enqueueJob.job;
    const jobSub = record(client, WatchJobEventsDocument, { jobId: job.id });
    await untilSubscribed(s.server, 2);
    await jobSub.waitForItems(1);
    await enqueue(s, 3);
    await sub.waitForItems(3);

    tcp().pause();
    const pausedAt = Date.now();
    await enqueue(s, 5); // fewer than the buffer: no overflow, the keep-alive decides
    await s.data(CancelJobDocument, { jobId: job.id });
    // The server ends the subscription at the first keep-alive tick that finds
    // a ping unanswered since the previous tick: the same moment its old
    // keep-alive terminated the socket.
    await until("the subscriptions ended", () => s.server.liveCounts().subscriptions === 0);
    const endedAfter = Date.now() - pausedAt;
    expect(endedAfter).toBeGreaterThanOrEqual(KEEP_ALIVE);
    expect(endedAfter).toBeLessThan(3 * KEEP_ALIVE + 1_000);
    // The client cannot finish the close handshake while paused: one interval
    // later the server lets go of the socket.
    await until("the server let go of the socket", () => s.server.liveCounts().connections === 0);

    tcp().resume();
    await until("the client saw the close", () => closes.length > 0);
    const got = sub.items.map((i) => i.jobChanged.id);
    expect(got).toHaveLength(8); // everything sent before the cut
    expect(sub.errors).toHaveLength(1);
    expect(sub.errors?.[0]?.extensions).toEqual({
      code: "SUBSCRIPTION_OVERFLOW",
      maxBuffer: BUFFER,
      lastSentEventId: got.at(-1),
      stalled: true,
    });
    // Each subscription gets its own cursor: jobEvents resumes by seq.
    expect(jobSub.items.map((i) => i.jobEvents.seq)).toEqual([1, 2]);
    expect(jobSub.errors?.[0]?.extensions).toEqual({
      code: "SUBSCRIPTION_OVERFLOW",
      maxBuffer: BUFFER,
      lastSentSeq: 2,
      stalled: true,
    });
    // The reason names the last event sent on the connection, whichever
    // subscription sent it.
    const lastIds = [got.at(-1), jobSub.items.at(-1)?.jobEvents.id];
    expect(closes).toHaveLength(1);
    expect(closes[0]?.code).toBe(4408);
    const reason = /^stalled: no pong within (\d+) ms; last event id (\d+)$/.exec(closes[0]?.reason ?? "");
    expect(reason?.[1]).toBe(String(KEEP_ALIVE));
    expect(lastIds).toContain(reason?.[2]);
  }, 60_000);

  it.each(["overflow", "stall"] as const)(
    "the SDK's watchJobChanges gets every event once across a subscription ended by %s",
    async (kind) => {
      const KEEP_ALIVE = kind === "stall" ? 200 : 60_000;
      const s = await start({ subscriptionBuffer: BUFFER, wsKeepAliveMs: KEEP_ALIVE, subscriptionReadGraceMs: 0 });
      const { Captured, sockets, tcp } = capturingWebSocket();
      // A long retry pause: what ends the subscription here is no network fault,
      // so the SDK must resume at once, not after a back-off.
      const sdk = new JobwireClient({ url: s.url, webSocketImpl: Captured, retryDelayMs: () => 30_000 });
      sdks.push(sdk);
      const events: JobEventFieldsFragment[] = [];
      const watch = await sdk.watchJobChanges({ filter: { queues: ["stall"] } });
      const reading = (async () => {
        for await (const event of watch) events.push(event);
      })();
      await untilSubscribed(s.server, 1);
      await enqueue(s, 5);
      await until("the first events", () => events.length === 5);

      tcp().pause();
      let enqueued = 5;
      if (kind === "overflow") {
        while (s.server.liveCounts().subscriptions === 1) {
          if (enqueued > 5 * BUFFER) throw new Error("not ended");
          await enqueue(s, BATCH);
          enqueued += BATCH;
        }
      } else {
        await enqueue(s, 5);
        enqueued += 5;
        await until("the server let go of the socket", () => s.server.liveCounts().connections === 0);
      }
      tcp().resume();
      await enqueue(s, 20); // after the resume
      enqueued += 20;
      await until(`${enqueued} events (have ${events.length})`, () => events.length >= enqueued);
      const ids = events.map((e) => e.id);
      expect(new Set(ids).size).toBe(enqueued);
      expect(ids).toEqual([...ids].sort(byId));
      if (kind === "stall") expect(sockets.length).toBeGreaterThan(1); // it reconnected
      watch.close();
      await reading;
    },
    60_000,
  );
});
