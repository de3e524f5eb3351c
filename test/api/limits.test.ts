/**
 * The server's request limits, over HTTP against the real server on every
 * backend: query depth (QUERY_TOO_DEEP), query cost with literal and variable
 * page sizes (QUERY_TOO_COSTLY), request body size (413 BODY_TOO_LARGE), and
 * custom limits. Each refusal is checked for its exact code, HTTP status and
 * message, for having run nothing, and for leaving the server serving.
 */
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { parse } from "graphql";
import type { GraphQLFormattedError } from "graphql";
import { afterEach, describe, expect, it } from "vitest";
import { QueuesDocument } from "../../src/client/__generated__/graphql.ts";
import { onlyError as theOnlyError, startTestServer } from "../helpers/api.ts";
import type { GraphQLResponse, TestServer, TestServerOptions } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";
import { connect } from "../helpers/ws.ts";
import type { Dialect } from "../../src/store/job-store.ts";

/** An ad-hoc operation, typed by hand. */
function typed<T, V = Record<string, never>>(source: string): TypedDocumentNode<T, V> {
  return parse(source) as TypedDocumentNode<T, V>;
}

/** The one error of a refused operation, after checking there is exactly one and no data. */
function onlyError(res: GraphQLResponse<unknown>): GraphQLFormattedError {
  expect(res.data ?? null).toBeNull();
  return theOnlyError(res);
}

/**
 * `{ job(id: "1") { events(last: 1) { job { events(last: 1) … { id } } } } }`,
 * `depth` field levels deep: job at level 1, then events and job alternating
 * (the schema's Job.events → JobEvent.job cycle), and `id` at the last level.
 * Pages of one keep its cost at 2 per level, far under the cost limit.
 */
function cyclicQuery(depth: number): string {
  let selection = "id";
  for (let level = depth - 1; level >= 2; level--) {
    selection = `${level % 2 === 0 ? "events(last: 1)" : "job"} { ${selection} }`;
  }
  return `{ job(id: "1") { ${selection} } }`;
}

interface EventsPage {
  jobs: { nodes: { events: { id: string; seq: number; type: string }[] }[] };
}
/** 1 + n × (nodes 1 + events (1 + 100 × 3)) = 1 + 302 n: over 50,000 from n = 166. */
const EventsPageDocument = typed<EventsPage, { n?: number }>(`
  query EventsPage($n: Int) { jobs(first: $n) { nodes { events(last: 100) { id seq type } } } }`);

describe.each(BACKENDS)("request limits on %s", (dialect: Dialect) => {
  let t: TestServer | undefined;

  async function start(options: TestServerOptions = {}): Promise<TestServer> {
    t = await startTestServer(dialect, options);
    return t;
  }
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  /** A normal query answers with data: what every refusal must leave working. */
  async function expectServing(server: TestServer): Promise<void> {
    const res = await server.request(QueuesDocument);
    expect(res.status).toBe(200);
    expect(res.errors).toBeUndefined();
    expect(res.data?.queues.map((q) => q.name)).toEqual(["mail"]);
  }

  it("refuses a query 20 levels deep with QUERY_TOO_DEEP and HTTP 400, then keeps serving", async () => {
    const server = await start();
    await server.server.services.jobs.enqueue({ queue: "mail" });
    const res = await server.request(typed<unknown>(cyclicQuery(20)));
    expect(res.status).toBe(400);
    const error = onlyError(res);
    expect(error.message).toBe("query is nested 20 levels deep; the limit is 12");
    expect(error.extensions).toEqual({ code: "QUERY_TOO_DEEP", depth: 20, maxDepth: 12 });

    // The default limit is exactly 12: a 12-level query on job 1 runs.
    const ok = await server.request(typed<unknown>(cyclicQuery(12)));
    expect(ok.status).toBe(200);
    expect(ok.errors).toBeUndefined();
    expect(JSON.stringify(ok.data)).toContain('"id":"1"');
    expect(onlyError(await server.request(typed<unknown>(cyclicQuery(13)))).extensions?.code).toBe("QUERY_TOO_DEEP");
    await expectServing(server);
  });

  it("refuses a 1,000-job page of 100 events each with QUERY_TOO_COSTLY, then keeps serving", async () => {
    const server = await start();
    await server.server.services.jobs.enqueue({ queue: "mail" });
    const res = await server.request(
      typed<unknown>(`{ jobs(first: 1000) { nodes { events(last: 100) { id seq type } } } }`),
    );
    expect(res.status).toBe(400);
    const error = onlyError(res);
    expect(error.message).toBe(
      "query cost 302001 exceeds the limit of 50000; ask for smaller pages (first, last, limit) or fewer fields",
    );
    expect(error.extensions).toEqual({ code: "QUERY_TOO_COSTLY", cost: 302_001, maxCost: 50_000 });
    await expectServing(server);
  });

  it("prices a page size given by a variable by its value", async () => {
    const server = await start();
    const { job } = await server.server.services.jobs.enqueue({ queue: "mail" });

    const refused = await server.request(EventsPageDocument, { n: 1000 });
    expect(refused.status).toBe(400);
    expect(onlyError(refused).extensions).toEqual({ code: "QUERY_TOO_COSTLY", cost: 302_001, maxCost: 50_000 });
    // Just over and just under the limit: 1 + 302 × 166 = 50,133; 1 + 302 × 165 = 49,831.
    expect(onlyError(await server.request(EventsPageDocument, { n: 166 })).extensions).toMatchObject({
      code: "QUERY_TOO_COSTLY",
      cost: 50_133,
    });

    for (const n of [1, 165]) {
      const res = await server.request(EventsPageDocument, { n });
      expect(res.status).toBe(200);
      expect(res.errors).toBeUndefined();
      expect(res.data?.jobs.nodes).toEqual([{ events: [{ id: expect.any(String), seq: 1, type: "ENQUEUED" }] }]);
    }
    expect((await server.server.services.jobs.getJob(job.id)).state).toBe("QUEUED");
    await expectServing(server);
  });

  it("refuses an over-cost mutation before it runs: nothing is claimed", async () => {
    const server = await start();
    const { job } = await server.server.services.jobs.enqueue({ queue: "mail" });
    // events 1 + 100 × seq 1 = 101; job 1 + 101 = 102; claimJobs 1 + 1000 × 102 = 102,001
    const res = await server.request(
      typed<unknown>(`mutation { claimJobs(queues: ["mail"], workerId: "w", limit: 1000) {
        job { events(last: 100) { seq } } } }`),
    );
    expect(res.status).toBe(400);
    expect(onlyError(res).extensions).toEqual({ code: "QUERY_TOO_COSTLY", cost: 102_001, maxCost: 50_000 });
    const after = await server.server.services.jobs.getJob(job.id);
    expect(after).toMatchObject({ state: "QUEUED", attempts: 0, workerId: null });
    await expectServing(server);
  });

  describe("a body over maxBodyBytes", () => {
    const LIMIT = 64 * 1024;

    /** A valid GraphQL request padded to about `bytes` by an unused variable. */
    function paddedBody(bytes: number): string {
      return JSON.stringify({ query: "{ queues { name } }", variables: { pad: "x".repeat(bytes) } });
    }

    it.each([
      ["~200 KiB", 200 * 1024],
      ["~1 MiB", 1024 * 1024],
      // Past limit × 4 + 1 MiB the server answers from Content-Length alone, before the body is read.
      ["~4 MiB", 4 * 1024 * 1024],
    ])("of %s is refused with 413 BODY_TOO_LARGE, then the server keeps serving", async (_, bytes) => {
      const server = await start({ maxBodyBytes: LIMIT });
      await server.server.services.jobs.enqueue({ queue: "mail" });
      const res = await server.post(paddedBody(bytes));
      expect(res.status).toBe(413);
      expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
      expect(res.headers.get("connection")).toBe("close");
      expect(await res.json()).toEqual({
        errors: [
          {
            message: "the request body is larger than the server's limit of 65536 bytes",
            extensions: { code: "BODY_TOO_LARGE" },
          },
        ],
      });
      await expectServing(server);
    });

    it("is the only size refused: a body of exactly the limit is served", async () => {
      const server = await start({ maxBodyBytes: LIMIT });
      await server.server.services.jobs.enqueue({ queue: "mail" });
      const base = paddedBody(0).length;
      const exact = paddedBody(LIMIT - base);
      expect(Buffer.byteLength(exact)).toBe(LIMIT);
      const ok = await server.post(exact);
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ data: { queues: [{ name: "mail" }] } });
      const over = await server.post(paddedBody(LIMIT - base + 1));
      expect(over.status).toBe(413);
      await expectServing(server);
    });
  });

  describe("hostile documents (issue 15 item 7)", () => {
    const aliased = (n: number) =>
      `mutation { ${Array.from({ length: n }, (_, i) => `a${i}: enqueueJob(input: { queue: "mail" }) { created }`).join(" ")} }`;
    const deepList = `mutation { enqueueJob(input: { queue: "mail", payload: ${"[".repeat(5_000)}${"]".repeat(5_000)} }) { created } }`;
    const GENERIC_PARSE = "the document could not be parsed: it is nested too deeply or is too large";

    it("1,000 aliased enqueueJob fields are refused before execution (TOO_MANY_MUTATIONS): no job", async () => {
      const server = await start();
      const res = await server.request(typed<unknown>(aliased(1_000)));
      expect(res.status).toBe(400);
      expect(onlyError(res).extensions).toEqual({
        code: "TOO_MANY_MUTATIONS",
        rootFields: 1_000,
        maxMutationFields: 50,
      });
      expect(await server.server.services.jobs.countJobs({ queue: "mail" })).toBe(0);
      // 50 is the limit, not a refusal.
      const ok = await server.request(typed<Record<string, unknown>>(aliased(50)));
      expect(ok.status).toBe(200);
      expect(Object.keys(ok.data ?? {})).toHaveLength(50);
      await expectServing(server);
    });

    it("maxMutationFields is configurable", async () => {
      const server = await start({ limits: { maxMutationFields: 2 } });
      expect(onlyError(await server.request(typed<unknown>(aliased(3)))).extensions?.code).toBe("TOO_MANY_MUTATIONS");
      expect((await server.request(typed<unknown>(aliased(2)))).status).toBe(200);
    });

    it("a 5,000-deep list literal gets a generic parse error, not the runtime's stack overflow", async () => {
      const server = await start();
      const res = await server.post({ query: deepList }, { "content-type": "application/json" });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { errors: GraphQLFormattedError[] };
      expect(body.errors).toEqual([{ message: GENERIC_PARSE, extensions: { code: "GRAPHQL_PARSE_FAILED" } }]);
      // A plain syntax error still says where.
      const syntax = await server.post({ query: `{ job(id: "1" { id } }` }, { "content-type": "application/json" });
      expect(((await syntax.json()) as { errors: GraphQLFormattedError[] }).errors[0]?.message).toMatch(
        /^Syntax Error/,
      );
      await server.server.services.jobs.enqueue({ queue: "mail" });
      await expectServing(server);
    });

    it("with introspection off, validation errors name no other schema field ('Did you mean')", async () => {
      const open = await start();
      expect((await open.error(typed<unknown>(`{ jobz { id } }`))).message).toMatch(/Did you mean "job"/);
      await open.close();
      t = undefined;
      const closed = await start({ introspection: false });
      const error = await closed.error(typed<unknown>(`{ jobz { id } }`));
      expect(error.message).toBe('Cannot query field "jobz" on type "Query".');
    });

    it("the same refusals over graphql-ws", async () => {
      const server = await start({ introspection: false });
      const client = connect(server.url);
      try {
        // Raw strings: the test's own graphql-js could not even parse the deep one.
        const first = (query: string) =>
          new Promise<GraphQLFormattedError | undefined>((resolve, reject) => {
            client.subscribe(
              { query },
              {
                next: (r) => resolve(r.errors?.[0]),
                error: (e: unknown) => (Array.isArray(e) ? resolve(e[0] as GraphQLFormattedError) : reject(e)),
                complete: () => resolve(undefined),
              },
            );
          });
        expect((await first(aliased(51)))?.extensions?.code).toBe("TOO_MANY_MUTATIONS");
        expect(await server.server.services.jobs.countJobs({ queue: "mail" })).toBe(0);
        expect(await first(deepList)).toMatchObject({
          message: GENERIC_PARSE,
          extensions: { code: "GRAPHQL_PARSE_FAILED" },
        });
        expect(await first(`subscription { jobChangd { id } }`)).toMatchObject({
          message: 'Cannot query field "jobChangd" on type "Subscription".',
        });
      } finally {
        await client.dispose();
      }
    });
  });

  describe("custom limits", () => {
    it("maxDepth: 3 refuses a 4-level query and runs a 3-level one", async () => {
      const server = await start({ limits: { maxDepth: 3 } });
      await server.server.services.jobs.enqueue({ queue: "mail" });
      // jobs(1) nodes(2) queue(3) name(4)
      const deep = await server.request(typed<unknown>(`{ jobs { nodes { queue { name } } } }`));
      expect(deep.status).toBe(400);
      const error = onlyError(deep);
      expect(error.message).toBe("query is nested 4 levels deep; the limit is 3");
      expect(error.extensions).toEqual({ code: "QUERY_TOO_DEEP", depth: 4, maxDepth: 3 });
      // jobs(1) nodes(2) queueName(3)
      const ok = await server.request(
        typed<{ jobs: { nodes: { queueName: string }[] } }>(`{ jobs { nodes { queueName } } }`),
      );
      expect(ok.status).toBe(200);
      expect(ok.data).toEqual({ jobs: { nodes: [{ queueName: "mail" }] } });
    });

    it("maxCost: 100 refuses a page of 50 ids (cost 101) and runs a page of 49 (cost 99)", async () => {
      const server = await start({ limits: { maxCost: 100 } });
      await server.server.services.jobs.enqueue({ queue: "mail" });
      const Ids = typed<{ jobs: { nodes: { id: string }[] } }, { n?: number }>(
        `query Ids($n: Int) { jobs(first: $n) { nodes { id } } }`,
      );
      // No first: the schema default 50 is priced, 1 + 50 × 2.
      const omitted = await server.request(Ids, {});
      expect(omitted.status).toBe(400);
      expect(onlyError(omitted).extensions).toEqual({ code: "QUERY_TOO_COSTLY", cost: 101, maxCost: 100 });
      const ok = await server.request(Ids, { n: 49 });
      expect(ok.status).toBe(200);
      expect(ok.data).toEqual({ jobs: { nodes: [{ id: "1" }] } });
      // The depth limit stays at its default when only maxCost is given.
      expect(onlyError(await server.request(typed<unknown>(cyclicQuery(13)))).extensions?.code).toBe("QUERY_TOO_DEEP");
    });
  });
});
