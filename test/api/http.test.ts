/**
 * The HTTP layer of the real server on every backend: health and readiness,
 * unknown routes, malformed bodies, Apollo's CSRF prevention, introspection
 * on and off, masked unexpected errors with their log line, and graceful
 * shutdown (in-flight requests finish, /readyz turns 503, new connections are
 * refused).
 *
 * Some tests speak raw HTTP/1.1 over a socket (RawHttpConnection): fetch
 * cannot hold a request open at a chosen point, nor pipeline a second request
 * behind it on the same connection, which is how a request can still reach
 * the server after close() was called.
 */
import { createRequire } from "node:module";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { Writable } from "node:stream";
import { Worker } from "node:worker_threads";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { loadMigrations } from "../../src/store/migrator.ts";
import { SQLITE_DRIVER_PACKAGE, sqliteDatabaseClass } from "../../src/store/sqlite/driver.ts";
import type { Dialect } from "../../src/store/job-store.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer, TestServerOptions } from "../helpers/api.ts";
import { BACKENDS, withPg } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";
import { queryDatabase } from "../helpers/inspect.ts";

/**
 * Runs a writing statement on the test database directly, bypassing the store.
 * (inspect.ts's queryDatabase opens SQLite read-only, so it cannot.)
 */
async function executeOnDatabase(db: TestDatabase, statement: string): Promise<void> {
  if (db.dialect === "sqlite") {
    const conn = new (sqliteDatabaseClass())(db.url.slice("file:".length), { timeout: 5_000 });
    try {
      conn.exec(statement);
    } finally {
      conn.close();
    }
    return;
  }
  await withPg((c) => c.query(statement), db.url);
}

interface JsonResponse {
  status: number;
  contentType: string | null;
  body: unknown;
}

async function getJson(url: string, headers: Record<string, string> = {}): Promise<JsonResponse> {
  const res = await fetch(url, { headers });
  return { status: res.status, contentType: res.headers.get("content-type"), body: await res.json() };
}

/** The error `fetch` rejects with when nothing listens on the port. */
async function connectionError(url: string): Promise<string | undefined> {
  const error: unknown = await fetch(url).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TypeError);
  const cause = (error as TypeError).cause;
  return typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : undefined;
}

interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/**
 * One HTTP/1.1 connection written by hand, to send part of a request, or
 * several requests back to back (pipelined), at chosen moments.
 */
class RawHttpConnection {
  private received = Buffer.alloc(0);
  private ended = false;
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.notify();
    });
    socket.on("close", () => {
      this.ended = true;
      this.notify();
    });
  }

  static open(port: number): Promise<RawHttpConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new RawHttpConnection(socket));
      });
    });
  }

  write(text: string): void {
    this.socket.write(text);
  }

  /** Resolves once `done()` holds, checked on every arrival; fails after `timeoutMs`. */
  until(done: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; received: ${this.received.toString("utf8")}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Responses received so far (interim 1xx included), complete ones only. */
  responses(): RawResponse[] {
    const out: RawResponse[] = [];
    let rest = this.received;
    for (;;) {
      const headEnd = rest.indexOf("\r\n\r\n");
      if (headEnd < 0) return out;
      const [statusLine = "", ...lines] = rest.subarray(0, headEnd).toString("latin1").split("\r\n");
      const headers = new Map(
        lines.map((l) => [l.slice(0, l.indexOf(":")).trim().toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
      );
      const status = Number(statusLine.split(" ")[1]);
      const length = status < 200 ? 0 : Number(headers.get("content-length"));
      if (!Number.isInteger(length)) throw new Error(`a response without content-length: ${statusLine}`);
      const bodyStart = headEnd + 4;
      if (rest.length < bodyStart + length) return out;
      out.push({ status, headers, body: rest.subarray(bodyStart, bodyStart + length).toString("utf8") });
      rest = rest.subarray(bodyStart + length);
    }
  }

  get closed(): boolean {
    return this.ended;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

/** The head of a JSON POST /graphql whose body comes later, after the server's 100 Continue. */
function postHeadExpectingContinue(body: string): string {
  return (
    `POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nexpect: 100-continue\r\n\r\n`
  );
}

describe.each(BACKENDS)("HTTP layer on %s", (dialect: Dialect) => {
  const servers: TestServer[] = [];

  async function start(options: TestServerOptions = {}): Promise<TestServer> {
    const t = await startTestServer(dialect, options);
    servers.push(t);
    return t;
  }
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((t) => t.close()));
  });

  it("GET /healthz answers 200 {status: ok}", async () => {
    const t = await start();
    expect(await getJson(`${t.origin}/healthz`)).toEqual({
      status: 200,
      contentType: "application/json; charset=utf-8",
      body: { status: "ok" },
    });
  });

  it("GET /readyz answers 200 {status: ready} on a migrated database", async () => {
    const t = await start();
    expect(await getJson(`${t.origin}/readyz`)).toEqual({
      status: 200,
      contentType: "application/json; charset=utf-8",
      body: { status: "ready" },
    });
  });

  it("GET /readyz answers 503 naming a migration the database lacks, and 200 once it is back", async () => {
    const t = await start();
    const [migration] = loadMigrations(dialect);
    if (!migration) throw new Error("no migrations");
    const rows = await queryDatabase<{ name: string; checksum: string; applied_at: string | Date }>(
      t.db,
      `SELECT "name", "checksum", "applied_at" FROM "_jobwire_migrations"`,
    );
    expect(rows.map((r) => r.name)).toEqual(loadMigrations(dialect).map((m) => m.name));

    await executeOnDatabase(t.db, `DELETE FROM "_jobwire_migrations" WHERE "name" = '${migration.name}'`);
    expect(await getJson(`${t.origin}/readyz`)).toEqual({
      status: 503,
      contentType: "application/json; charset=utf-8",
      body: { status: "unavailable", reason: `migrations not applied: ${migration.name} (run jobwire migrate)` },
    });
    // Liveness is not readiness: the process still answers.
    expect((await getJson(`${t.origin}/healthz`)).status).toBe(200);

    const appliedAt = rows.find((r) => r.name === migration.name)?.applied_at;
    const at = appliedAt instanceof Date ? appliedAt.toISOString() : String(appliedAt);
    await executeOnDatabase(
      t.db,
      `INSERT INTO "_jobwire_migrations" ("name", "checksum", "applied_at")
       VALUES ('${migration.name}', '${migration.checksum}', '${at}')`,
    );
    expect((await getJson(`${t.origin}/readyz`)).body).toEqual({ status: "ready" });
  });

  it("answers an unknown path with 404 and a JSON error naming the API's path", async () => {
    const t = await start();
    expect(await getJson(`${t.origin}/graphq`)).toEqual({
      status: 404,
      contentType: "application/json; charset=utf-8",
      body: { errors: [{ message: "no route /graphq; the API is at /graphql" }] },
    });
  });

  it("answers a body that is not JSON with 400 BAD_REQUEST, then keeps serving", async () => {
    const t = await start();
    const res = await t.post(`{"query": "{ queues { name } }"`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: { message: string; extensions: { code: string } }[] };
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0]?.extensions).toEqual({ code: "BAD_REQUEST" });
    expect(body.errors[0]?.message).toMatch(/^the request body is not valid JSON: /);
    const ok = await t.post({ query: "{ queues { name } }" });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ data: { queues: [] } });
  });

  it("answers a subscription sent over HTTP with 400 BAD_REQUEST pointing to WebSocket, and nothing runs", async () => {
    const t = await start();
    const res = await t.post({ query: 'subscription { jobsAvailable(queues: ["a"]) { queue } }' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      errors: [
        {
          message:
            "Subscriptions are served over WebSocket (graphql-ws, the graphql-transport-ws protocol) at this same URL with ws:// or wss://",
          extensions: { code: "BAD_REQUEST" },
        },
      ],
    });
    expect(t.server.liveCounts().subscriptions).toBe(0);
  });

  describe("CSRF prevention", () => {
    const query = encodeURIComponent("{ queues { name } }");
    const CSRF_MESSAGE = /^This operation has been blocked as a potential Cross-Site Request Forgery \(CSRF\)/;

    it("refuses a GET without a content-type or preflight header (400 BAD_REQUEST), and nothing runs", async () => {
      const t = await start();
      const res = await getJson(`${t.url}?query=${query}`);
      expect(res.status).toBe(400);
      const { errors } = res.body as { errors: { message: string; extensions: unknown }[] };
      expect(errors).toHaveLength(1);
      expect(errors[0]?.extensions).toEqual({ code: "BAD_REQUEST" });
      expect(errors[0]?.message).toMatch(CSRF_MESSAGE);
      // The same holds for a mutation sent by GET: it must not run.
      const mutation = encodeURIComponent(`mutation { pauseQueue(name: "mail") { name } }`);
      expect((await getJson(`${t.url}?query=${mutation}`)).status).toBe(400);
      expect(await t.server.services.queues.listQueues()).toEqual([]);
    });

    it("refuses a 'simple' POST (text/plain) the same way", async () => {
      const t = await start();
      const res = await t.post(JSON.stringify({ query: "{ queues { name } }" }), { "content-type": "text/plain" });
      expect(res.status).toBe(400);
      const { errors } = (await res.json()) as { errors: { message: string; extensions: unknown }[] };
      expect(errors[0]?.extensions).toEqual({ code: "BAD_REQUEST" });
      expect(errors[0]?.message).toMatch(CSRF_MESSAGE);
    });

    it("serves the GET with apollo-require-preflight: 1", async () => {
      const t = await start();
      await t.server.services.jobs.enqueue({ queue: "mail" });
      expect(await getJson(`${t.url}?query=${query}`, { "apollo-require-preflight": "1" })).toEqual({
        status: 200,
        contentType: "application/json; charset=utf-8",
        body: { data: { queues: [{ name: "mail" }] } },
      });
    });
  });

  describe("introspection", () => {
    const INTROSPECT = { query: "{ __schema { queryType { name } } }" };

    it("is served by default", async () => {
      const t = await start();
      const res = await t.post(INTROSPECT);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ data: { __schema: { queryType: { name: "Query" } } } });
    });

    it("is refused with introspection: false (GRAPHQL_VALIDATION_FAILED); __typename still works", async () => {
      const t = await start({ introspection: false });
      const res = await t.post(INTROSPECT);
      expect(res.status).toBe(400);
      const { errors } = (await res.json()) as { errors: { message: string; extensions: unknown }[] };
      expect(errors).toHaveLength(1);
      expect(errors[0]?.extensions).toEqual({
        code: "GRAPHQL_VALIDATION_FAILED",
        validationErrorCode: "INTROSPECTION_DISABLED",
      });
      expect(errors[0]?.message).toMatch(/introspection is not allowed/);
      const type = await t.post({ query: `{ __type(name: "Job") { name } }` });
      expect(type.status).toBe(400);

      await t.server.services.jobs.enqueue({ queue: "mail" });
      const typename = await t.post({ query: "{ queues { __typename name } }" });
      expect(typename.status).toBe(200);
      expect(await typename.json()).toEqual({ data: { queues: [{ __typename: "Queue", name: "mail" }] } });
    });
  });

  it("masks an unexpected error as INTERNAL_SERVER_ERROR and logs it with the same errorId", async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
        callback();
      },
    });
    const t = await start({ logger: pino({ level: "error" }, stream) });
    await t.server.services.jobs.enqueue({ queue: "mail" });
    // An outage the domain knows nothing about: the table is gone. (Closing the
    // store does not do: Prisma reconnects on the next query.)
    await executeOnDatabase(t.db, `ALTER TABLE "queues" RENAME TO "queues_moved"`);

    const res = await t.post({ query: "{ queues { name } }" });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      data: unknown;
      errors: { message: string; path: unknown; extensions: { code: string; errorId: string } }[];
    };
    expect(body.data).toBeNull();
    expect(body.errors).toHaveLength(1);
    const [error] = body.errors;
    const errorId = error?.extensions.errorId ?? "";
    expect(errorId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(error).toEqual({
      message: `Internal server error (errorId ${errorId})`,
      locations: [{ line: 1, column: 3 }],
      path: ["queues"],
      extensions: { code: "INTERNAL_SERVER_ERROR", errorId },
    });
    // Nothing of the cause reaches the client.
    expect(JSON.stringify(body)).not.toMatch(/table|relation|queues_moved|prisma|sql|stack/i);

    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.errorId === errorId);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: 50, msg: "unexpected error in a GraphQL request", path: ["queues"] });
    const err = logged[0]?.err as { message?: string; stack?: string } | undefined;
    expect(err?.message).toMatch(dialect === "sqlite" ? /no such table: queues/ : /relation "queues" does not exist/);
    expect(err?.stack).toBeTypeOf("string");

    // The outage ends, and so do the errors.
    await executeOnDatabase(t.db, `ALTER TABLE "queues_moved" RENAME TO "queues"`);
    const ok = await t.post({ query: "{ queues { name } }" });
    expect(await ok.json()).toEqual({ data: { queues: [{ name: "mail" }] } });
  });

  it("after close() is called: the request in flight finishes, /readyz behind it gets 503, new connections are refused", async () => {
    const t = await start();
    await t.server.services.jobs.enqueue({ queue: "mail" });
    const body = JSON.stringify({ query: "{ queues { name } }" });
    const conn = await RawHttpConnection.open(t.server.port);
    try {
      // The server has the request (it answered 100 Continue), so it is in flight.
      conn.write(postHeadExpectingContinue(body));
      await conn.until(() => conn.responses().length === 1, "100 Continue");
      expect(conn.responses()[0]?.status).toBe(100);

      const order: string[] = [];
      const closed = t.server.close().then(() => order.push("closed"));
      // The rest of the request, and a readiness probe pipelined on the same connection.
      conn.write(`${body}GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      await conn.until(() => conn.responses().length === 3, "both responses");
      order.push("responses");
      const [, graphql, readyz] = conn.responses();
      expect(graphql?.status).toBe(200);
      expect(JSON.parse(graphql?.body ?? "")).toEqual({ data: { queues: [{ name: "mail" }] } });
      expect(readyz?.status).toBe(503);
      expect(JSON.parse(readyz?.body ?? "")).toEqual({
        status: "unavailable",
        reason: "the server is shutting down",
      });

      // The server ends the drained connection itself, and only then finishes closing.
      await conn.until(() => conn.closed, "the server to end the connection");
      await closed;
      expect(order).toEqual(["responses", "closed"]);
      expect(await connectionError(`${t.origin}/healthz`)).toBe("ECONNREFUSED");
    } finally {
      conn.destroy();
    }
  });

  // SQLite only: the request is held in the database by another connection's
  // write lock (BEGIN IMMEDIATE), which SQLite's busy handler waits out. The
  // lock is held from a worker thread, not this thread: better-sqlite3 waits
  // in the busy handler synchronously, freezing this thread's event loop, so a
  // lock held here could never be released in time. The PostgreSQL store has
  // no such synchronous wait to exploit; the test above covers draining there.
  it.runIf(dialect === "sqlite")(
    "close() waits for a request blocked in the database, which then completes with 200",
    async () => {
      const t = await start();
      const lock = new Worker(
        `const { parentPort, workerData } = require("node:worker_threads");
         const Database = require(workerData.driver);
         const db = new Database(workerData.file);
         db.prepare("BEGIN IMMEDIATE").run();
         parentPort.postMessage("locked");
         parentPort.once("message", (ms) => setTimeout(() => {
           db.prepare("COMMIT").run();
           db.close();
         }, ms));`,
        {
          eval: true,
          workerData: {
            driver: createRequire(import.meta.url).resolve(SQLITE_DRIVER_PACKAGE),
            file: t.db.url.slice("file:".length),
          },
        },
      );
      const exited = new Promise<number>((resolve) => lock.once("exit", resolve));
      await new Promise<void>((resolve, reject) => {
        lock.once("message", () => resolve());
        lock.once("error", reject);
      });

      const body = JSON.stringify({
        query: `mutation { enqueueJob(input: { queue: "mail", payload: { n: 1 } }) { created job { id state } } }`,
      });
      const conn = await RawHttpConnection.open(t.server.port);
      try {
        conn.write(postHeadExpectingContinue(body));
        await conn.until(() => conn.responses().length === 1, "100 Continue");

        const order: string[] = [];
        const closed = t.server.close().then(() => order.push("closed"));
        // Released well within the store's 5 s busy timeout.
        const HOLD_MS = 500;
        const sentAt = performance.now();
        lock.postMessage(HOLD_MS);
        conn.write(body);
        await conn.until(() => conn.responses().length === 2, "the enqueueJob response");
        order.push("response");
        // It waited for the lock: it cannot have committed before the worker did.
        expect(performance.now() - sentAt).toBeGreaterThanOrEqual(HOLD_MS - 10);
        const response = conn.responses()[1];
        expect(response?.status).toBe(200);
        expect(JSON.parse(response?.body ?? "")).toEqual({
          data: { enqueueJob: { created: true, job: { id: "1", state: "QUEUED" } } },
        });

        await closed;
        expect(order).toEqual(["response", "closed"]);
        expect(await exited).toBe(0);
        expect(await connectionError(`${t.origin}/graphql`)).toBe("ECONNREFUSED");
        expect(await queryDatabase<{ id: number; state: string }>(t.db, `SELECT "id", "state" FROM "jobs"`)).toEqual([
          { id: 1, state: "QUEUED" },
        ]);
      } finally {
        conn.destroy();
        await lock.terminate();
      }
    },
  );
});
