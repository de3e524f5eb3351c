/**
 * The WebSocket caps (issue 15 item 7): handshakes beyond --max-connections
 * get HTTP 503 and beyond --max-connections-per-ip (same remote address) HTTP
 * 429, both before any WebSocket exists; a closed socket frees its place; a
 * subscription beyond --max-subscriptions-per-socket gets
 * TOO_MANY_SUBSCRIPTIONS while the socket and its other subscriptions carry
 * on. Remote addresses: Linux routes all of 127.0.0.0/8 to loopback, so
 * clients bind 127.0.0.2, 127.0.0.3, … as their source address to be
 * "different machines" against a server on 127.0.0.1.
 */
import type { Client } from "graphql-ws";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import {
  EnqueueJobDocument,
  QueueDocument,
  WatchJobChangesDocument,
  WatchQueueStatsDocument,
} from "../../src/client/__generated__/graphql.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer, TestServerOptions } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";
import { connect, record, untilSubscribed, wsUrl } from "../helpers/ws.ts";

type Handshake = { socket: WebSocket } | { status: number; retryAfter: string | undefined; body: string };

/** Opens a raw graphql-transport-ws socket from `localAddress`; resolves with it, or with the refusal. */
function handshake(url: string, localAddress = "127.0.0.1"): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(wsUrl(url), "graphql-transport-ws", { localAddress });
    socket.once("open", () => resolve({ socket }));
    socket.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => {
        const retryAfter = res.headers["retry-after"];
        resolve({
          status: res.statusCode ?? 0,
          retryAfter: typeof retryAfter === "string" ? retryAfter : undefined,
          body,
        });
        socket.terminate();
      });
    });
    socket.once("error", reject);
  });
}

function opened(h: Handshake): WebSocket {
  if (!("socket" in h)) throw new Error(`handshake refused: ${h.status} ${h.body}`);
  return h.socket;
}

function closeAll(sockets: WebSocket[]): Promise<void> {
  return Promise.all(
    sockets.splice(0).map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.readyState === WebSocket.CLOSED) return resolve();
          s.once("close", () => resolve());
          s.close();
        }),
    ),
  ).then(() => undefined);
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.each(BACKENDS)("WebSocket limits on %s", (dialect) => {
  let t: TestServer | null = null;
  const sockets: WebSocket[] = [];
  const clients: Client[] = [];
  const start = async (options: TestServerOptions = {}) => (t = await startTestServer(dialect, options));
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.dispose()));
    await closeAll(sockets);
    await t?.close();
    t = null;
  });

  it("refuses a handshake over --max-connections-per-ip with 429 and over --max-connections with 503", async () => {
    const s = await start({ maxConnections: 5, maxConnectionsPerIp: 3, wsInitTimeoutMs: 60_000 });
    for (let i = 0; i < 3; i++) sockets.push(opened(await handshake(s.url, "127.0.0.1")));

    const fourthFromSame = await handshake(s.url, "127.0.0.1");
    expect(fourthFromSame).toMatchObject({ status: 429, retryAfter: "5" });
    expect((fourthFromSame as { body: string }).body).toContain("3 WebSocket connections from this address");

    // Another address still gets in, up to the total.
    sockets.push(opened(await handshake(s.url, "127.0.0.2")));
    sockets.push(opened(await handshake(s.url, "127.0.0.2")));
    const sixth = await handshake(s.url, "127.0.0.3");
    expect(sixth).toMatchObject({ status: 503, retryAfter: "5" });
    expect((sixth as { body: string }).body).toContain("maximum of 5 WebSocket connections");
    expect(s.server.liveCounts().connections).toBe(5);

    // Closing one frees its place (total and per address).
    const first = sockets.shift();
    await closeAll(first ? [first] : []);
    await until("the closed socket released", () => s.server.liveCounts().connections === 4);
    const again = await handshake(s.url, "127.0.0.1");
    sockets.push(opened(again));
    expect(await handshake(s.url, "127.0.0.3")).toMatchObject({ status: 503 });
  });

  it("a refused handshake does not count: after 50 refusals the caps still admit exactly what is free", async () => {
    const s = await start({ maxConnections: 2, maxConnectionsPerIp: 2, wsInitTimeoutMs: 60_000 });
    sockets.push(opened(await handshake(s.url)), opened(await handshake(s.url)));
    const refused = await Promise.all(Array.from({ length: 50 }, () => handshake(s.url, "127.0.0.4")));
    expect(refused.map((r) => ("status" in r ? r.status : "open"))).toEqual(Array(50).fill(503));
    await closeAll(sockets);
    await until("released", () => s.server.liveCounts().connections === 0);
    sockets.push(opened(await handshake(s.url, "127.0.0.4")), opened(await handshake(s.url, "127.0.0.4")));
    expect(await handshake(s.url, "127.0.0.5")).toMatchObject({ status: 503 });
  });

  it("a subscription over --max-subscriptions-per-socket gets TOO_MANY_SUBSCRIPTIONS; the socket stays", async () => {
    const s = await start({ maxSubscriptionsPerSocket: 2 });
    await s.data(EnqueueJobDocument, { input: { queue: "limits" } }); // queueStats needs the queue
    const client = connect(s.url);
    clients.push(client);
    const a = record(client, WatchJobChangesDocument, { filter: { queues: ["limits"] } });
    const b = record(client, WatchQueueStatsDocument, { name: "limits" });
    await untilSubscribed(s.server, 2);
    const c = record(client, WatchJobChangesDocument, {});
    expect(await c.waitForErrors()).toEqual([
      expect.objectContaining({
        message: expect.stringContaining("already runs 2 subscriptions"),
        extensions: { code: "TOO_MANY_SUBSCRIPTIONS", maxSubscriptionsPerSocket: 2 },
      }),
    ]);
    expect(c.failure).toBeNull();

    // The socket and its two subscriptions carry on; queries are not counted.
    await s.data(EnqueueJobDocument, { input: { queue: "limits" } });
    await a.waitForItems(1);
    await b.waitForItems(1);
    const query = record(client, QueueDocument, { name: "limits" });
    await query.waitUntil(() => query.completed, "the query to complete");
    expect(query.errors).toBeNull();
    expect(s.server.liveCounts().connections).toBe(1);

    // Completing one makes room for another.
    a.stop();
    await until("a ended", () => s.server.liveCounts().subscriptions === 1);
    const d = record(client, WatchJobChangesDocument, { filter: { queues: ["limits"] } });
    await untilSubscribed(s.server, 2);
    await s.data(EnqueueJobDocument, { input: { queue: "limits" } });
    await d.waitForItems(1);
    expect(d.errors).toBeNull();
    expect(a.failure).toBeNull();
  });

  it("2,000 sockets from one address: capped at --max-connections-per-ip; a subscriber elsewhere keeps receiving", async () => {
    const s = await start({ maxConnectionsPerIp: 1_000, wsInitTimeoutMs: 120_000 });
    const watcher = connect(s.url);
    clients.push(watcher);
    const watched = record(watcher, WatchJobChangesDocument, { filter: { queues: ["flood"] } });
    await untilSubscribed(s.server, 1);

    const outcomes: Handshake[] = [];
    // In waves of 100, as a flood would arrive, without 2,000 simultaneous SYNs.
    for (let wave = 0; wave < 20; wave++) {
      const results = await Promise.all(Array.from({ length: 100 }, () => handshake(s.url, "127.0.0.9")));
      for (const r of results) {
        outcomes.push(r);
        if ("socket" in r) sockets.push(r.socket);
      }
    }
    const accepted = outcomes.filter((o) => "socket" in o).length;
    const statuses = outcomes.flatMap((o) => ("status" in o ? [o.status] : []));
    expect(accepted).toBe(1_000);
    expect(statuses).toEqual(Array(1_000).fill(429));
    expect(s.server.liveCounts().connections).toBe(1_001);

    await s.data(EnqueueJobDocument, { input: { queue: "flood" } });
    await watched.waitForItems(1);
    expect(watched.failure).toBeNull();
  }, 120_000);
});
