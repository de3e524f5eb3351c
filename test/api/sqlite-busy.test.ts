/**
 * SQLite locked by another process past the busy window (issue 15 item 5): a
 * write that cannot get the lock gets `extensions.code: UNAVAILABLE` with
 * `retryable: true` (HTTP 503; over graphql-ws the operation's error, the
 * socket stays), not INTERNAL_SERVER_ERROR; once the lock is
 * released the same call succeeds. The lock is held by a real second
 * connection on a worker thread (better-sqlite3 waits for a lock
 * synchronously, so one held on this thread could not be released while the
 * server waits).
 */
import { print } from "graphql";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startServer } from "../../src/server/server.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { EnqueueJobDocument } from "../../src/client/__generated__/graphql.ts";
import { createTestDatabase } from "../helpers/backends.ts";
import { connect } from "../helpers/ws.ts";
import { holdWriteLock, SQLITE3 } from "../helpers/sqlite-lock.ts";
import type { TestDatabase } from "../helpers/backends.ts";

describe.skipIf(!SQLITE3)("SQLite busy past its wait", () => {
  let db: TestDatabase | null = null;
  let server: RunningServer | null = null;
  afterEach(async () => {
    await server?.close();
    await db?.dispose();
    server = null;
    db = null;
  });

  it("a write gets UNAVAILABLE (retryable, HTTP 503) while another process holds the lock, and succeeds after", async () => {
    db = await createTestDatabase("sqlite");
    const store = await db.open({ busyTimeoutMs: 100 });
    server = await startServer({ store, logger: pino({ level: "silent" }), port: 0, maintenance: false });
    const enqueue = async () => {
      const res = await fetch(server?.url ?? "", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: 'mutation { enqueueJob(input: {queue: "busy"}) { job { id } } }' }),
      });
      return { status: res.status, retryAfter: res.headers.get("retry-after"), body: (await res.json()) as unknown };
    };

    const lock = await holdWriteLock(db.url.slice("file:".length));
    let released = false;
    try {
      const refused = await enqueue();
      expect(refused).toMatchObject({
        status: 503,
        retryAfter: "1",
        body: {
          data: null,
          errors: [
            {
              message: expect.stringMatching(/^the database is unavailable or busy; retry later \(errorId .+\)$/),
              path: ["enqueueJob"],
              extensions: { code: "UNAVAILABLE", retryable: true, errorId: expect.any(String) },
            },
          ],
        },
      });
      expect(await lock.release()).toBe(0);
      released = true;
    } finally {
      if (!released) await lock.release();
    }
    expect(await enqueue()).toEqual({
      status: 200,
      retryAfter: null,
      body: { data: { enqueueJob: { job: { id: "1" } } } },
    });
  });

  it("over the WebSocket too: the operation gets UNAVAILABLE and the socket stays", async () => {
    db = await createTestDatabase("sqlite");
    const store = await db.open({ busyTimeoutMs: 100 });
    server = await startServer({ store, logger: pino({ level: "silent" }), port: 0, maintenance: false });
    const client = connect(server.url);
    const run = () =>
      new Promise<{ data?: unknown; errors?: readonly { extensions?: Record<string, unknown> }[] }>(
        (resolve, reject) => {
          let result: { data?: unknown; errors?: readonly { extensions?: Record<string, unknown> }[] } = {};
          client.subscribe(
            { query: print(EnqueueJobDocument), variables: { input: { queue: "busy" } } },
            {
              next: (r) => (result = r),
              error: (e) => (Array.isArray(e) ? resolve({ errors: e }) : reject(e as Error)),
              complete: () => resolve(result),
            },
          );
        },
      );
    try {
      const lock = await holdWriteLock(db.url.slice("file:".length));
      let refused;
      try {
        refused = await run();
      } finally {
        await lock.release();
      }
      expect(refused.errors).toEqual([
        expect.objectContaining({ extensions: { code: "UNAVAILABLE", retryable: true, errorId: expect.any(String) } }),
      ]);
      const ok = await run();
      expect(ok.errors).toBeUndefined();
      expect(ok.data).toMatchObject({ enqueueJob: { job: { id: "1" } } });
    } finally {
      await client.dispose();
    }
  });
});
