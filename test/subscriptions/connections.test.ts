/**
 * The WebSocket side of the server: 10,000 connect/subscribe/disconnect cycles
 * leave no listener, timer, subscription or connection behind (and on
 * PostgreSQL, still one LISTEN connection); a client that never sends
 * connection_init is closed with 4408; one that stops answering pings is
 * closed with 4408 "stalled: …" while a healthy one stays; the HTTP limits, validation codes and
 * queries/mutations work the same over the socket; shutdown closes sockets
 * with 1001.
 */
import { createHash } from "node:crypto";
import type { Client } from "graphql-ws";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import {
  CancelJobDocument,
  EnqueueJobDocument,
  JobEventsDocument,
  WatchJobChangesDocument,
  WatchJobEventsDocument,
  WatchJobsAvailableDocument,
  WatchQueueStatsDocument,
} from "../../src/client/__generated__/graphql.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer, TestServerOptions } from "../helpers/api.ts";
import { BACKENDS, withPg } from "../helpers/backends.ts";
import { connect, record, untilSubscribed, wsUrl } from "../helpers/ws.ts";

const CYCLES = { sqlite: 10_000, postgres: 10_000 } as const;
const PARALLEL = 25;

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Timers, sockets and handles this process holds, by kind. */
function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

describe.each(BACKENDS)("WebSocket connections on %s", (dialect) => {
  let t: TestServer | null = null;
  const clients: Client[] = [];
  const start = async (options: TestServerOptions = {}) => (t = await startTestServer(dialect, options));
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.dispose()));
    await t?.close();
    t = null;
  });

  it(`${CYCLES[dialect].toLocaleString("en")} connect/subscribe/disconnect cycles leave nothing behind`, async () => {
    const s = await start();
    const job = (await s.data(EnqueueJobDocument, { input: { queue: "cycles" } })).enqueueJob.job;
    const firstEvent = (await s.data(JobEventsDocument, { jobId: job.id })).jobEvents[0];
    await s.data(CancelJobDocument, { jobId: job.id });
    await s.data(EnqueueJobDocument, { input: { queue: "cycles" } }); // a QUEUED job: jobsAvailable signals at once
    if (!firstEvent) throw new Error("no event");
    // Every kind of subscription, each with an item to send at once, so a
    // cycle can wait for it: then the subscription was fully set up.
    const subscribeOne = (client: Client, i: number) => {
      switch (i % 4) {
        case 0:
          return record(client, WatchJobEventsDocument, { jobId: job.id });
        case 1:
          return record(client, WatchJobChangesDocument, { afterEventId: firstEvent.id });
        case 2:
          return record(client, WatchQueueStatsDocument, { name: "cycles" });
        default:
          return record(client, WatchJobsAvailableDocument, { queues: ["cycles"] });
      }
    };
    const busListenersBefore = s.server.liveCounts().busListeners;
    const listenConnections = async () => {
      if (dialect !== "postgres") return 0;
      const schema = new URL(s.db.url).searchParams.get("options")?.replace("-c search_path=", "") ?? "";
      const channel = `jobwire_${createHash("sha256").update(schema).digest("hex").slice(0, 16)}`;
      const rows = await withPg((c) =>
        c.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`, [
          `jobwire-events ${channel}`,
        ]),
      );
      return (rows.rows[0] as { n: number }).n;
    };
    expect(await listenConnections()).toBe(dialect === "postgres" ? 1 : 0);
    const before = resources();
    // The store's pool (PostgreSQL) may open connections while the cycles
    // load it and keeps them idle for a while: those sockets are the pool's,
    // not leaks, and are allowed for on top of the baseline.
    const poolBefore = s.store.poolStats?.().total ?? 0;

    let done = 0;
    const cycle = async (i: number) => {
      const client = connect(s.url);
      const sub = subscribeOne(client, i);
      await sub.waitForItems(1);
      sub.stop();
      await client.dispose();
      done++;
    };
    for (let i = 0; i < CYCLES[dialect]; i += PARALLEL) {
      await Promise.all(Array.from({ length: PARALLEL }, (_, k) => cycle(i + k)));
    }
    expect(done).toBe(CYCLES[dialect]);

    await until("connections and subscriptions released", () => {
      const c = s.server.liveCounts();
      return c.connections === 0 && c.subscriptions === 0;
    });
    expect(s.server.liveCounts()).toEqual({
      connections: 0,
      subscriptions: 0,
      feedListeners: 0,
      busListeners: busListenersBefore,
    });
    // Sockets close asynchronously; wait until the handle counts are back.
    const leftOver = () => {
      const now = resources();
      const poolGrowth = Math.max(0, (s.store.poolStats?.().total ?? 0) - poolBefore);
      const allowed = (k: string) => (before[k] ?? 0) + (k === "TCPSocketWrap" ? poolGrowth : 0);
      return Object.keys({ ...before, ...now })
        .filter((k) => (now[k] ?? 0) > allowed(k))
        .map((k) => `${k} ${now[k]} > ${allowed(k)}`);
    };
    // 30 s: the pool closes connections idle for 10 s, and a socket it has
    // just ended is no longer counted by the pool but still open for a moment.
    await until("resources back to the baseline", () => leftOver().length === 0, 30_000).catch(() => {
      throw new Error(`resources not back to ${JSON.stringify(before)}: ${leftOver().join(", ")}`);
    });
    expect(await listenConnections()).toBe(dialect === "postgres" ? 1 : 0);
  }, 180_000);

  it("closes a connection that sends no connection_init in time with 4408", async () => {
    const s = await start({ wsInitTimeoutMs: 200 });
    const socket = new WebSocket(wsUrl(s.url), "graphql-transport-ws");
    const started = Date.now();
    const code = await new Promise<number>((resolve) => socket.on("close", (c) => resolve(c)));
    expect(code).toBe(4408);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    await until("released", () => s.server.liveCounts().connections === 0);
  });

  it("closes a client that stops answering pings with 4408 stalled; a healthy one stays", async () => {
    const s = await start({ wsKeepAliveMs: 100 });
    const healthy = connect(s.url);
    clients.push(healthy);
    const sub = record(healthy, WatchJobChangesDocument, {});
    await untilSubscribed(s.server, 1);

    const mute = new WebSocket(wsUrl(s.url), "graphql-transport-ws", { autoPong: false });
    await new Promise((resolve) => mute.once("open", resolve));
    mute.send(JSON.stringify({ type: "connection_init" }));
    const closed = await new Promise<{ code: number; reason: string }>((resolve) =>
      mute.on("close", (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    // Closed with a reason the client can tell from a network fault (1006).
    expect(closed).toEqual({ code: 4408, reason: "stalled: no pong within 100 ms; no event sent" });
    await until("released", () => s.server.liveCounts().connections === 1);

    // Several ping intervals later the healthy client still gets events.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await s.data(EnqueueJobDocument, { input: { queue: "alive" } });
    await sub.waitForItems(1);
    expect(sub.failure).toBeNull();
  });

  it("applies the same validation, limits and codes as HTTP, and runs queries and mutations", async () => {
    const s = await start({ limits: { maxDepth: 3 } });
    const client = connect(s.url);
    clients.push(client);
    const errorsOf = async (query: string, variables: Record<string, unknown> = {}) =>
      new Promise<unknown>((resolve) => {
        client.subscribe(
          { query, variables },
          {
            next: (r) => resolve(r.errors ?? r.data),
            error: (e) => resolve(e),
            complete: () => {},
          },
        );
      });
    const codes = (errors: unknown) => (errors as { extensions?: { code?: string } }[]).map((e) => e.extensions?.code);
    expect(codes(await errorsOf("subscription { jobChanged { job { queue { settings { paused } } } } }"))).toEqual([
      "QUERY_TOO_DEEP",
    ]);
    expect(codes(await errorsOf("subscription { jobChanged { id "))).toEqual(["GRAPHQL_PARSE_FAILED"]);
    expect(codes(await errorsOf("subscription { jobChanged { nope } }"))).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
    expect(
      codes(await errorsOf("subscription ($id: ID!) { jobEvents(jobId: $id) { seq } }", { id: { not: "an id" } })),
    ).toEqual(["BAD_USER_INPUT"]);
    expect(
      await errorsOf('mutation { enqueueJob(input: { queue: "over-ws" }) { created job { queueName } } }'),
    ).toEqual({ enqueueJob: { created: true, job: { queueName: "over-ws" } } });
    const queues = await errorsOf("query { queues { name } }");
    expect(queues).toEqual({ queues: [{ name: "over-ws" }] });
  });

  it("closes every socket with 1001 on shutdown and releases everything", async () => {
    const s = await start();
    const closes: number[] = [];
    const client = connect(s.url, { on: { closed: (e) => closes.push((e as { code: number }).code) } });
    clients.push(client);
    record(client, WatchJobChangesDocument, {});
    await untilSubscribed(s.server, 1);
    await s.server.close();
    await until("the client saw the close", () => closes.length > 0);
    expect(closes).toEqual([1001]);
    expect(s.server.liveCounts()).toMatchObject({ connections: 0, subscriptions: 0 });
  });
});
