/**
 * Access control (issue 15) against a real server with --auth required, on
 * every backend: each role × each root operation (allowed ones work, the
 * others get FORBIDDEN and change nothing), queue scopes, unauthenticated and
 * bad tokens over HTTP and WebSocket, revocation closing live sockets, the
 * per-subscriber event filter (canary events), actors on events, and browser
 * origins (CORS and WebSocket handshakes).
 */
import type { GraphQLFormattedError } from "graphql";
import { createClient } from "graphql-ws";
import type { Client } from "graphql-ws";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { Role } from "../../src/auth/roles.ts";
import { ROLES } from "../../src/auth/roles.ts";
import { WatchJobChangesDocument } from "../../src/client/__generated__/graphql.ts";
import { createSchema } from "../../src/graphql/schema.ts";
import { startServer } from "../../src/server/server.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";
import { record, untilSubscribed, wsUrl } from "../helpers/ws.ts";

interface Reply {
  status: number;
  data?: Record<string, unknown> | null;
  errors?: GraphQLFormattedError[];
}

async function gql(
  t: TestServer,
  token: string | null,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<Reply> {
  const res = await fetch(t.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token !== null && { authorization: `Bearer ${token}` }),
      ...headers,
    },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, ...((await res.json()) as Omit<Reply, "status">) };
}

function wsClient(t: TestServer, params: Record<string, unknown> | undefined, closes: number[] = []): Client {
  return createClient({
    url: wsUrl(t.url),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    ...(params !== undefined && { connectionParams: params }),
    on: { closed: (e) => closes.push((e as { code: number }).code) },
  });
}

async function until(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<number> {
  const started = Date.now();
  while (!(await predicate())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - started;
}

/** Everything a forbidden call could have changed: events, jobs, queues and tokens. */
async function snapshot(t: TestServer): Promise<string> {
  const { jobs, queues, tokens } = t.server.services;
  return JSON.stringify({
    lastEvent: await jobs.newestEventId(),
    jobs: (await jobs.listJobs({}, { first: 1000 })).jobs.map((j) => [j.id, j.state, j.runAt, j.cancelRequestedAt]),
    queues: await queues.listQueues(),
    tokens: await tokens.list(),
  });
}

/**
 * One root operation: the least role allowed to call it, and a fixture that
 * returns its variables (made through the services, as an admin would).
 */
interface Operation {
  name: string;
  least: Role;
  query: string;
  fixture(t: TestServer): Promise<Record<string, unknown>>;
}

let fixtureSeq = 0;
const uniq = () => `f${++fixtureSeq}`;

async function queuedJob(t: TestServer): Promise<string> {
  return (await t.server.services.jobs.enqueue({ queue: "a", payload: { n: uniq() } })).job.id;
}
async function runningJob(t: TestServer): Promise<{ jobId: string; leaseToken: string }> {
  await queuedJob(t);
  const [leased] = await t.server.services.jobs.claim({ queues: ["a"], workerId: "w", limit: 1 });
  if (!leased) throw new Error("nothing claimed");
  return { jobId: leased.id, leaseToken: leased.leaseToken };
}

const OPERATIONS: Operation[] = [
  {
    name: "job",
    least: "viewer",
    query: "query($id: ID!) { job(id: $id) { id } }",
    fixture: async (t) => ({ id: await queuedJob(t) }),
  },
  {
    name: "jobByKey",
    least: "viewer",
    query: 'query { jobByKey(queue: "a", key: "k") { id } }',
    fixture: async () => ({}),
  },
  {
    name: "jobs",
    least: "viewer",
    query: 'query { jobs(filter: { queue: "a" }) { totalCount } }',
    fixture: async () => ({}),
  },
  {
    name: "jobEvents",
    least: "viewer",
    query: "query($id: ID!) { jobEvents(jobId: $id) { seq } }",
    fixture: async (t) => ({ id: await queuedJob(t) }),
  },
  { name: "lastEventId", least: "viewer", query: "query { lastEventId }", fixture: async () => ({}) },
  { name: "queues", least: "viewer", query: "query { queues { name } }", fixture: async () => ({}) },
  { name: "queue", least: "viewer", query: 'query { queue(name: "a") { name } }', fixture: async () => ({}) },
  {
    name: "enqueueJob",
    least: "producer",
    query: 'mutation { enqueueJob(input: { queue: "a" }) { created } }',
    fixture: async () => ({}),
  },
  {
    name: "enqueueJobs",
    least: "producer",
    query: 'mutation { enqueueJobs(jobs: [{ queue: "a" }, { queue: "a" }]) { created } }',
    fixture: async () => ({}),
  },
  {
    name: "cancelJob",
    least: "producer",
    query: "mutation($id: ID!) { cancelJob(jobId: $id) { state } }",
    fixture: async (t) => ({ id: await queuedJob(t) }),
  },
  {
    name: "retryJob",
    least: "producer",
    query: "mutation($id: ID!) { retryJob(jobId: $id) { state } }",
    fixture: async (t) => {
      const id = await queuedJob(t);
      await t.server.services.jobs.cancel(id);
      return { id };
    },
  },
  {
    name: "rescheduleJob",
    least: "producer",
    query: "mutation($id: ID!) { rescheduleJob(jobId: $id, delayMs: 60000) { state } }",
    fixture: async (t) => ({ id: await queuedJob(t) }),
  },
  {
    name: "claimJobs",
    least: "worker",
    query: 'mutation { claimJobs(queues: ["a"], workerId: "w2", limit: 1) { leaseToken } }',
    fixture: async (t) => ({ id: await queuedJob(t) }),
  },
  {
    name: "heartbeatJob",
    least: "worker",
    query:
      "mutation($jobId: ID!, $leaseToken: String!) { heartbeatJob(jobId: $jobId, leaseToken: $leaseToken, progress: 1) { cancelRequested } }",
    fixture: runningJob,
  },
  {
    name: "completeJob",
    least: "worker",
    query:
      "mutation($jobId: ID!, $leaseToken: String!) { completeJob(jobId: $jobId, leaseToken: $leaseToken) { state } }",
    fixture: runningJob,
  },
  {
    name: "completeJobs",
    least: "worker",
    query:
      "mutation($jobId: ID!, $leaseToken: String!) { completeJobs(jobs: [{ jobId: $jobId, leaseToken: $leaseToken }]) { error { code } } }",
    fixture: runningJob,
  },
  {
    name: "releaseJobs",
    least: "worker",
    query:
      "mutation($jobId: ID!, $leaseToken: String!) { releaseJobs(jobs: [{ jobId: $jobId, leaseToken: $leaseToken }]) { error { code } } }",
    fixture: runningJob,
  },
  {
    name: "failJob",
    least: "worker",
    query:
      'mutation($jobId: ID!, $leaseToken: String!) { failJob(jobId: $jobId, leaseToken: $leaseToken, error: { message: "x" }) { state } }',
    fixture: runningJob,
  },
  {
    name: "pauseQueue",
    least: "admin",
    query: 'mutation { pauseQueue(name: "a") { name } }',
    fixture: async () => ({}),
  },
  {
    name: "resumeQueue",
    least: "admin",
    query: 'mutation { resumeQueue(name: "a") { name } }',
    fixture: async (t) => {
      await t.server.services.queues.pauseQueue("a");
      return {};
    },
  },
  {
    name: "configureQueue",
    least: "admin",
    query: 'mutation { configureQueue(input: { name: "a", maxQueued: 1000 }) { name } }',
    fixture: async () => ({}),
  },
  {
    name: "purgeJobs",
    least: "admin",
    query: 'mutation { purgeJobs(queue: "a") { deletedCount } }',
    fixture: async (t) => {
      await t.server.services.jobs.cancel(await queuedJob(t));
      return {};
    },
  },
  { name: "apiTokens", least: "admin", query: "query { apiTokens { name } }", fixture: async () => ({}) },
  {
    name: "createApiToken",
    least: "admin",
    query: "mutation($name: String!) { createApiToken(input: { name: $name, role: VIEWER }) { token } }",
    fixture: async () => ({ name: uniq() }),
  },
  {
    name: "revokeApiToken",
    least: "admin",
    query: "mutation($name: String!) { revokeApiToken(name: $name) }",
    fixture: async (t) => {
      const name = uniq();
      await t.server.services.tokens.create({ name, role: "viewer" });
      return { name };
    },
  },
];

describe.each(BACKENDS)("access control on %s", (dialect) => {
  let t: TestServer;
  const token: Partial<Record<string, string>> = {};
  const tokenOf = (name: string): string => {
    const value = token[name];
    if (!value) throw new Error(`no token ${name}`);
    return value;
  };
  const clients: Client[] = [];

  beforeAll(async () => {
    t = await startTestServer(dialect, { auth: "required", allowedOrigins: ["https://app.example.com"] });
    const { tokens } = t.server.services;
    for (const role of ROLES) token[role] = (await tokens.create({ name: role, role })).token;
    token.producerA = (await tokens.create({ name: "producerA", role: "producer", queues: ["a", "rep.*"] })).token;
    token.adminA = (await tokens.create({ name: "adminA", role: "admin", queues: ["a"] })).token;
    token.viewerA = (await tokens.create({ name: "viewerA", role: "viewer", queues: ["a"] })).token;
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.dispose()));
    // The next test counts subscriptions from zero.
    await until("subscriptions released", () => t.server.liveCounts().subscriptions === 0);
  });
  afterAll(() => t.close());

  it("the matrix covers every root query and mutation of the schema", () => {
    const schema = createSchema();
    const fields = [schema.getQueryType(), schema.getMutationType()].flatMap((type) =>
      Object.keys(type?.getFields() ?? {}),
    );
    expect(OPERATIONS.map((o) => o.name).sort()).toEqual(fields.sort());
  });

  for (const op of OPERATIONS) {
    it(`${op.name}: ${op.least} and above may call it; the roles below get FORBIDDEN and change nothing`, async () => {
      for (const role of ROLES) {
        const variables = await op.fixture(t);
        const before = await snapshot(t);
        const reply = await gql(t, tokenOf(role), op.query, variables);
        const allowed = ROLES.indexOf(role) >= ROLES.indexOf(op.least);
        if (allowed) {
          expect(reply.errors, `${role} ${op.name}`).toBeUndefined();
          expect(reply.data).toBeTruthy();
        } else {
          expect(
            reply.errors?.map((e) => e.extensions?.code),
            `${role} ${op.name}`,
          ).toEqual(["FORBIDDEN"]);
          expect(reply.data ?? null).toBeNull();
          expect(await snapshot(t), `${role} ${op.name} changed something`).toBe(before);
        }
      }
    });
  }

  it("a token limited to queues is FORBIDDEN outside them and changes nothing there", async () => {
    const { jobs } = t.server.services;
    const onB = (await jobs.enqueue({ queue: "b" })).job.id;
    const producerA = tokenOf("producerA");
    const before = await snapshot(t);
    const refused = [
      await gql(t, producerA, 'mutation { enqueueJob(input: { queue: "b" }) { created } }'),
      await gql(t, producerA, 'mutation { enqueueJobs(jobs: [{ queue: "a" }, { queue: "b" }]) { created } }'),
      await gql(t, producerA, "mutation($id: ID!) { cancelJob(jobId: $id) { state } }", { id: onB }),
      await gql(t, producerA, "mutation($id: ID!) { rescheduleJob(jobId: $id, delayMs: 5000) { state } }", { id: onB }),
      await gql(t, producerA, "query($id: ID!) { job(id: $id) { payload } }", { id: onB }),
      await gql(t, producerA, "query($id: ID!) { jobEvents(jobId: $id) { seq } }", { id: onB }),
      await gql(t, producerA, 'query { jobByKey(queue: "b", key: "k") { id } }'),
      await gql(t, producerA, 'query { queue(name: "b") { name } }'),
      // Without a queue filter the list would show every queue.
      await gql(t, producerA, "query { jobs { totalCount } }"),
      // An admin limited to queues may not mint or list tokens, nor touch other queues.
      await gql(t, tokenOf("adminA"), 'mutation { createApiToken(input: { name: "x", role: ADMIN }) { token } }'),
      await gql(t, tokenOf("adminA"), "query { apiTokens { name } }"),
      await gql(t, tokenOf("adminA"), 'mutation { pauseQueue(name: "b") { name } }'),
      await gql(t, tokenOf("adminA"), 'mutation { purgeJobs(queue: "b") { deletedCount } }'),
    ];
    for (const reply of refused) expect(reply.errors?.map((e) => e.extensions?.code)).toEqual(["FORBIDDEN"]);
    expect(await snapshot(t)).toBe(before);

    // Inside the scope, and through a wildcard pattern, the same calls work.
    expect(
      (await gql(t, producerA, 'mutation { enqueueJob(input: { queue: "rep.daily" }) { created } }')).errors,
    ).toBeUndefined();
    expect((await gql(t, producerA, 'query { jobs(filter: { queue: "a" }) { totalCount } }')).errors).toBeUndefined();
    expect(
      (await gql(t, tokenOf("adminA"), 'mutation { pauseQueue(name: "a") { settings { paused } } }')).data,
    ).toEqual({
      pauseQueue: { settings: { paused: true } },
    });
    await t.server.services.queues.resumeQueue("a");
    // The queue list is narrowed to the scope rather than refused.
    const listed = await gql(t, producerA, "query { queues { name } }");
    const names = (listed.data?.queues as { name: string }[]).map((q) => q.name);
    expect(names).toContain("a");
    expect(names).toContain("rep.daily");
    expect(names).not.toContain("b");
    // A worker scoped to a cannot claim from b.
    const workerA = (await t.server.services.tokens.create({ name: uniq(), role: "worker", queues: ["a"] })).token;
    const claim = await gql(t, workerA, 'mutation { claimJobs(queues: ["a", "b"], workerId: "w") { leaseToken } }');
    expect(claim.errors?.[0]?.extensions).toMatchObject({ code: "FORBIDDEN", queue: "b" });
    // Nor give back a job of b, found by its id (as completeJobs).
    await t.server.services.jobs.enqueue({ queue: "b" });
    const [onBLeased] = await t.server.services.jobs.claim({ queues: ["b"], workerId: "w", limit: 1 });
    if (!onBLeased) throw new Error("nothing claimed on b");
    const release = await gql(
      t,
      workerA,
      "mutation($jobId: ID!, $leaseToken: String!) { releaseJobs(jobs: [{ jobId: $jobId, leaseToken: $leaseToken }]) { error { code } } }",
      { jobId: onBLeased.id, leaseToken: onBLeased.leaseToken },
    );
    expect(release.errors?.[0]?.extensions).toMatchObject({ code: "FORBIDDEN", queue: "b" });
    expect(await t.server.services.jobs.getJob(onBLeased.id)).toMatchObject({ state: "RUNNING", attempts: 1 });
  });

  it("HTTP without a token, or with a bad one, gets UNAUTHENTICATED (401)", async () => {
    for (const tokenValue of [null, "jw_not-a-real-token", "garbage"]) {
      const reply = await gql(t, tokenValue, "query { lastEventId }");
      expect(reply.status).toBe(401);
      expect(reply.errors?.map((e) => e.extensions?.code)).toEqual(["UNAUTHENTICATED"]);
      expect(reply.data ?? null).toBeNull();
    }
    const basic = await gql(t, null, "query { lastEventId }", {}, { authorization: "Basic dXNlcjpwYXNz" });
    expect(basic.status).toBe(401);
    const raw = await fetch(t.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ lastEventId }" }),
    });
    expect(raw.headers.get("www-authenticate")).toBe("Bearer");
  });

  it("/metrics needs a token without queue patterns; /healthz does not", async () => {
    const metrics = (token: string | null) =>
      fetch(t.url.replace("/graphql", "/metrics"), {
        headers: token === null ? {} : { authorization: `Bearer ${token}` },
      });
    const none = await metrics(null);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe("Bearer");
    expect((await metrics("jw_wrong")).status).toBe(401);
    expect((await metrics(tokenOf("viewerA"))).status).toBe(403);
    const ok = await metrics(tokenOf("viewer"));
    expect(ok.status).toBe(200);
    expect(await ok.text()).toMatch(/^# HELP/m);
    expect((await fetch(t.url.replace("/graphql", "/healthz"))).status).toBe(200);
  });

  it("WebSocket without a token closes with 4401, with a bad one 4403; a good one subscribes", async () => {
    const codes: number[] = [];
    const none = wsClient(t, undefined, codes);
    clients.push(none);
    const first = record(none, WatchJobChangesDocument, {});
    await until("4401", () => first.failure !== null);
    expect(codes).toEqual([4401]);

    const badCodes: number[] = [];
    const bad = wsClient(t, { authorization: "Bearer jw_wrong" }, badCodes);
    clients.push(bad);
    const second = record(bad, WatchJobChangesDocument, {});
    await until("4403", () => second.failure !== null);
    expect(badCodes).toEqual([4403]);

    const good = wsClient(t, { authorization: `Bearer ${tokenOf("viewer")}` });
    clients.push(good);
    const ok = record(good, WatchJobChangesDocument, {});
    await untilSubscribed(t.server, 1);
    await t.server.services.jobs.enqueue({ queue: "a" });
    await ok.waitForItems(1);
    expect(ok.failure).toBeNull();
  });

  it("a revoked token stops working within 1 s, and its live sockets are closed", async () => {
    for (const how of ["mutation", "store"] as const) {
      const name = uniq();
      const victim = (await t.server.services.tokens.create({ name, role: "viewer" })).token;
      const codes: number[] = [];
      const client = wsClient(t, { authorization: `Bearer ${victim}` }, codes);
      clients.push(client);
      const sub = record(client, WatchJobChangesDocument, {});
      await untilSubscribed(t.server, 1);
      await t.server.services.jobs.enqueue({ queue: "a" });
      await sub.waitForItems(1);
      expect((await gql(t, victim, "query { lastEventId }")).status).toBe(200);

      const started = Date.now();
      if (how === "mutation") {
        const reply = await gql(t, tokenOf("admin"), "mutation($n: String!) { revokeApiToken(name: $n) }", { n: name });
        expect(reply.data).toEqual({ revokeApiToken: true });
      } else {
        // As `jobwire token revoke` or another server process would: straight in the database.
        expect(await t.store.deleteApiToken(name)).toBe(true);
      }
      await until("the socket closed", () => codes.length > 0, 1_000);
      expect(codes).toEqual([4403]);
      await until("HTTP refused", async () => (await gql(t, victim, "query { lastEventId }")).status === 401, 1_000);
      expect(Date.now() - started).toBeLessThan(1_000);
      await until("its subscription ended", () => t.server.liveCounts().subscriptions === 0);
    }
  });

  it("an expired token is refused", async () => {
    const name = uniq();
    const { token: expiring } = await t.server.services.tokens.create({ name, role: "viewer", expiresInSeconds: 1 });
    expect((await gql(t, expiring, "query { lastEventId }")).status).toBe(200);
    await until("expired", async () => (await gql(t, expiring, "query { lastEventId }")).status === 401, 3_000);
  });

  it("a viewer scoped to queue a sees every event of a and none of 100 canary events on b", async () => {
    const client = wsClient(t, { authorization: `Bearer ${tokenOf("viewerA")}` });
    clients.push(client);
    const sub = record(client, WatchJobChangesDocument, {});
    await untilSubscribed(t.server, 1);
    const { jobs } = t.server.services;
    const onA = new Set<string>();
    const onB = new Set<string>();
    for (let i = 0; i < 100; i++) {
      onB.add((await jobs.enqueue({ queue: "b", payload: { canary: i } })).job.id);
      if (i % 4 === 0) onA.add((await jobs.enqueue({ queue: "a", payload: { i } })).job.id);
    }
    // Cancelling the canaries writes 100 more events on b.
    for (const id of onB) await jobs.cancel(id);
    const last = (await jobs.enqueue({ queue: "a", payload: "last" })).job.id;
    onA.add(last);
    const items = await sub.waitUntil((xs) => xs.some((x) => x.jobChanged.jobId === last), "the last event on a");
    const seen = items.map((x) => x.jobChanged.jobId);
    expect(seen.filter((id) => onB.has(id))).toEqual([]);
    expect(new Set(seen)).toEqual(onA);
    expect(seen).toHaveLength(onA.size);

    // A replay from the start is filtered the same way.
    const replay = record(client, WatchJobChangesDocument, { afterEventId: "0" });
    const replayed = (
      await replay.waitUntil((xs) => xs.some((x) => x.jobChanged.jobId === last), "the replayed last event on a")
    ).map((x) => x.jobChanged.jobId);
    expect(replayed.filter((id) => onB.has(id))).toEqual([]);
    for (const id of onA) expect(replayed).toContain(id);
    replay.stop();

    // Asking for queue b explicitly is refused outright.
    const explicit = record(client, WatchJobChangesDocument, { filter: { queues: ["b"] } });
    const errors = await explicit.waitForErrors();
    expect(errors.map((e) => e.extensions?.code)).toEqual(["FORBIDDEN"]);
  });

  it("events of operator actions record the token name as their actor", async () => {
    const id = (await t.server.services.jobs.enqueue({ queue: "a" })).job.id;
    await gql(t, tokenOf("producer"), "mutation($id: ID!) { rescheduleJob(jobId: $id, delayMs: 60000) { state } }", {
      id,
    });
    await gql(t, tokenOf("admin"), "mutation($id: ID!) { cancelJob(jobId: $id) { state } }", { id });
    await gql(t, tokenOf("producerA"), "mutation($id: ID!) { retryJob(jobId: $id) { state } }", { id });
    const reply = await gql(t, tokenOf("viewer"), "query($id: ID!) { jobEvents(jobId: $id) { type actor } }", { id });
    expect(reply.data?.jobEvents).toEqual([
      { type: "ENQUEUED", actor: null },
      { type: "RESCHEDULED", actor: "producer" },
      { type: "CANCELLED", actor: "admin" },
      { type: "RETRIED", actor: "producerA" },
    ]);
  });

  it("tokens are stored hashed and shown once; names are unique; bad input is BAD_USER_INPUT", async () => {
    const created = await gql(
      t,
      tokenOf("admin"),
      'mutation { createApiToken(input: { name: "ci", role: WORKER, queues: ["email", "reports.*"], expiresInSeconds: 3600 }) { token apiToken { name role queues expiresAt } } }',
    );
    const payload = created.data?.createApiToken as { token: string; apiToken: { role: string; queues: string[] } };
    expect(payload.token).toMatch(/^jw_[A-Za-z0-9_-]{43}$/);
    expect(payload.apiToken).toMatchObject({ role: "WORKER", queues: ["email", "reports.*"] });
    const stored = (await t.store.listApiTokens()).find((r) => r.name === "ci");
    expect(stored?.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(await t.store.listApiTokens())).not.toContain(payload.token);
    const listed = await gql(t, tokenOf("admin"), "query { apiTokens { name } }");
    expect(JSON.stringify(listed)).not.toContain(payload.token);

    const again = await gql(
      t,
      tokenOf("admin"),
      'mutation { createApiToken(input: { name: "ci", role: VIEWER }) { token } }',
    );
    expect(again.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "name" });
    const badPattern = await gql(
      t,
      tokenOf("admin"),
      'mutation { createApiToken(input: { name: "p", role: VIEWER, queues: ["a b"] }) { token } }',
    );
    expect(badPattern.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "queues" });
    expect((await gql(t, tokenOf("admin"), 'mutation { revokeApiToken(name: "nope") }')).data).toEqual({
      revokeApiToken: false,
    });
  });

  it("browser origins: CORS preflight and WebSocket handshakes answer allowed origins only", async () => {
    const preflight = (origin: string) =>
      fetch(t.url, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization" },
      });
    const allowed = await preflight("https://app.example.com");
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(allowed.headers.get("access-control-allow-headers")).toMatch(/authorization/);
    const foreign = await preflight("https://evil.example");
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get("access-control-allow-origin")).toBeNull();
    // A request from a foreign page is refused before anything runs.
    const before = await snapshot(t);
    const post = await gql(
      t,
      tokenOf("admin"),
      'mutation { enqueueJob(input: { queue: "a" }) { created } }',
      {},
      {
        origin: "https://evil.example",
      },
    );
    expect(post.status).toBe(403);
    expect(await snapshot(t)).toBe(before);
    // Same-origin (the server's own page) works.
    const own = await gql(t, tokenOf("viewer"), "query { lastEventId }", {}, { origin: t.origin });
    expect(own.status).toBe(200);

    const handshake = (origin: string | undefined) =>
      new Promise<number>((resolve, reject) => {
        const socket = new WebSocket(wsUrl(t.url), "graphql-transport-ws", origin ? { origin } : {});
        socket.once("unexpected-response", (_req, res) => {
          resolve(res.statusCode ?? 0);
          socket.terminate();
        });
        socket.once("open", () => {
          resolve(101);
          socket.close();
        });
        socket.once("error", (e) => {
          if (!String(e).includes("Unexpected server response")) reject(e);
        });
      });
    expect(await handshake("https://evil.example")).toBe(403);
    expect(await handshake("null")).toBe(403);
    expect(await handshake("https://app.example.com")).toBe(101);
    expect(await handshake(t.origin)).toBe(101);
    expect(await handshake(undefined)).toBe(101);
  });
});

describe("auth defaults by listen address", () => {
  it("is off on loopback, required on 0.0.0.0, and --auth off there logs a warning", async () => {
    const { createTestDatabase } = await import("../helpers/backends.ts");
    const db = await createTestDatabase("sqlite");
    try {
      const lines: { level: number; msg: string }[] = [];
      const logger = pino({ level: "warn" }, { write: (line: string) => lines.push(JSON.parse(line)) });
      const loopback = await startServer({
        store: await db.open(),
        logger,
        port: 0,
        host: "127.0.0.1",
        maintenance: false,
      });
      expect(loopback.auth).toBe("off");
      const open = await fetch(loopback.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: "{ lastEventId }" }),
      });
      expect(open.status).toBe(200);
      await loopback.close();

      const anyAddress = await startServer({
        store: await db.open(),
        logger,
        port: 0,
        host: "0.0.0.0",
        maintenance: false,
      });
      expect(anyAddress.auth).toBe("required");
      const refused = await fetch(anyAddress.url.replace("0.0.0.0", "127.0.0.1"), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: "{ lastEventId }" }),
      });
      expect(refused.status).toBe(401);
      await anyAddress.close();
      expect(lines.filter((l) => l.level >= 40)).toEqual([]);

      const forcedOpen = await startServer({
        store: await db.open(),
        logger,
        port: 0,
        host: "0.0.0.0",
        auth: "off",
        maintenance: false,
      });
      expect(forcedOpen.auth).toBe("off");
      await forcedOpen.close();
      expect(lines.some((l) => l.level === 40 && /--auth off on 0\.0\.0\.0/.test(l.msg))).toBe(true);
    } finally {
      await db.dispose();
    }
  });
});
