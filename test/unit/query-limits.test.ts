/**
 * The query depth and cost model of src/graphql/limits.ts, measured on the real
 * schema (createSchema()). Every expected number below is worked out by hand
 * from the model in the module header:
 *   field = its weight (1, or FIELD_WEIGHTS) + pageSize × cost of its selection;
 *   depth = the deepest field level, a top-level field being level 1;
 *   introspection fields cost 0 and add no depth.
 * The arithmetic is written next to each case, so a change to the model shows
 * up as one wrong figure rather than "some number moved".
 */
import { Kind, OperationTypeNode, parse } from "graphql";
import type { OperationDefinitionNode } from "graphql";
import { describe, expect, it } from "vitest";
import { checkQueryLimits, DEFAULT_QUERY_LIMITS, measureOperation } from "../../src/graphql/limits.ts";
import type { QueryMeasure } from "../../src/graphql/limits.ts";
import { createSchema } from "../../src/graphql/schema.ts";

const schema = createSchema();

/** Measures the operation `operationName` (else the only one) of `source`. */
function full(source: string, variables: Record<string, unknown> = {}, operationName?: string): QueryMeasure {
  const document = parse(source);
  const operations = document.definitions.filter(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
  );
  const operation = operationName ? operations.find((o) => o.name?.value === operationName) : operations[0];
  if (!operation) throw new Error(`no operation ${operationName ?? ""} in ${source}`);
  return measureOperation(schema, document, operation, variables);
}

/** full(), depth and cost only (what the depth and cost cases below compare). */
function measure(source: string, variables: Record<string, unknown> = {}, operationName?: string) {
  const { depth, cost } = full(source, variables, operationName);
  return { depth, cost };
}

/** A query's measure with this depth and cost. */
const q = (depth: number, cost: number): QueryMeasure => ({
  depth,
  cost,
  rootFields: 1,
  operation: OperationTypeNode.QUERY,
});

describe("measureOperation: depth", () => {
  it("counts field levels, a top-level field being level 1", () => {
    // queues(1) { name(2) }; cost: name 1 → queues 1 + 1×1
    expect(measure(`{ queues { name } }`)).toEqual({ depth: 2, cost: 2 });
    // queue(1) { settings(2) { rateLimit(3) { count(4) } } }
    // cost: count 1 → rateLimit 1+1 = 2 → settings 1+2 = 3 → queue 1+3 = 4
    expect(measure(`{ queue(name: "a") { settings { rateLimit { count } } } }`)).toEqual({ depth: 4, cost: 4 });
  });

  it("takes the deepest branch, not the sum of branches", () => {
    // job(1) { id(2) queue(2) { name(3) } events(2) { seq(3) } }
    // cost: id 1 + queue (1+1) + events (1 + 10×1, default last: 10) = 14 → job 1+14 = 15
    expect(measure(`{ job(id: "1") { id queue { name } events { seq } } }`)).toEqual({ depth: 3, cost: 15 });
  });

  it("follows the Job.events → JobEvent.job cycle level by level", () => {
    // job(1) events(2) job(3) events(4) id(5)
    // cost: id 1 → events 1 + 10×1 = 11 → job 1+11 = 12 → events 1 + 10×12 = 121 → job 1+121 = 122
    expect(measure(`{ job(id: "1") { events { job { events { id } } } } }`)).toEqual({ depth: 5, cost: 122 });
  });

  it("measures mutations from the Mutation type", () => {
    // pauseQueue(1) { name(2) settings(2) { paused(3) } }; cost: 1 + (1 + (1+1)) = 4
    expect(measure(`mutation { pauseQueue(name: "a") { name settings { paused } } }`)).toEqual({
      depth: 3,
      cost: 4,
    });
  });

  it("measures the operation it is given, not the others of the document", () => {
    const source = `
      query Small { queues { name } }
      query Big { job(id: "1") { events { job { events { id } } } } }`;
    expect(measure(source, {}, "Small")).toEqual({ depth: 2, cost: 2 });
    expect(measure(source, {}, "Big")).toEqual({ depth: 5, cost: 122 });
  });
});

describe("measureOperation: fragments are expanded", () => {
  // The selection every variant below expands to:
  // job(1) { id(2) state(2) queue(2) { name(3) } }; cost: 1 + 1 + (1+1) = 4 → job 1+4 = 5
  const EXPANDED = { depth: 3, cost: 5 };

  it("a named fragment counts as its fields", () => {
    expect(measure(`{ job(id: "1") { id state queue { name } } }`)).toEqual(EXPANDED);
    expect(
      measure(`
        query { job(id: "1") { ...JobBits } }
        fragment JobBits on Job { id state queue { name } }`),
    ).toEqual(EXPANDED);
  });

  it("an inline fragment counts as its fields, with or without a type condition", () => {
    expect(measure(`{ job(id: "1") { ... on Job { id state queue { name } } } }`)).toEqual(EXPANDED);
    expect(measure(`{ job(id: "1") { ... { id state queue { name } } } }`)).toEqual(EXPANDED);
  });

  it("a fragment inside a fragment adds its depth at the level it is spread", () => {
    // job(1) { events(2, last: 2) { seq(3) job(3) { id(4) } } }
    // EventBits: seq 1 + job (1+1) = 3; RecentEvents: events 1 + 2×3 = 7; job 1+7 = 8
    expect(
      measure(`
        query { job(id: "1") { ...RecentEvents } }
        fragment RecentEvents on Job { events(last: 2) { ...EventBits } }
        fragment EventBits on JobEvent { seq job { id } }`),
    ).toEqual({ depth: 4, cost: 8 });
  });

  it("hiding a deep selection in fragments does not hide its depth", () => {
    const inline = `{ job(id: "1") { events { job { events { job { events { id } } } } } } }`;
    const fragmented = `
      query { job(id: "1") { ...A } }
      fragment A on Job { events { ...B } }
      fragment B on JobEvent { job { ...C } }
      fragment C on Job { events { ...D } }
      fragment D on JobEvent { job { events { id } } }`;
    // depth 7; cost: id 1 → events 11 → job 12 → events 121 → job 122 → events 1221 → job 1222
    expect(measure(inline)).toEqual({ depth: 7, cost: 1222 });
    expect(measure(fragmented)).toEqual({ depth: 7, cost: 1222 });
  });
});

describe("measureOperation: introspection is free", () => {
  it("costs nothing and adds no depth, however deep", () => {
    expect(measure(`{ __schema { types { fields { type { ofType { ofType { name } } } } } } }`)).toEqual({
      depth: 0,
      cost: 0,
    });
    expect(measure(`{ __type(name: "Job") { fields { name } } }`)).toEqual({ depth: 0, cost: 0 });
  });

  it("leaves the measure of the rest of the operation unchanged", () => {
    expect(measure(`{ __type(name: "Job") { name } queues { name __typename } }`)).toEqual(
      measure(`{ queues { name } }`),
    );
  });
});

describe("measureOperation: page sizes multiply their selection", () => {
  // jobs(1) { nodes(2) { id(3) } }: nodes costs 1 + 1×1 = 2, so jobs costs 1 + size × 2.
  const JOB_IDS = `query Ids($n: Int) { jobs(first: $n) { nodes { id } } }`;

  it("by a literal first", () => {
    expect(measure(`{ jobs(first: 10) { nodes { id } } }`)).toEqual({ depth: 3, cost: 1 + 10 * 2 });
    expect(measure(`{ jobs(first: 1000) { nodes { id } } }`)).toEqual({ depth: 3, cost: 1 + 1000 * 2 });
  });

  it("by a variable's value", () => {
    expect(measure(JOB_IDS, { n: 7 })).toEqual({ depth: 3, cost: 1 + 7 * 2 });
    expect(measure(JOB_IDS, { n: 1000 })).toEqual({ depth: 3, cost: 1 + 1000 * 2 });
  });

  it("by the schema default when the argument (or its variable) is omitted", () => {
    // Query.jobs(first: Int = 50)
    expect(measure(`{ jobs { nodes { id } } }`)).toEqual({ depth: 3, cost: 1 + 50 * 2 });
    expect(measure(JOB_IDS, {})).toEqual({ depth: 3, cost: 1 + 50 * 2 });
    // Job.events(last: Int = 10): events 1 + 10×1 = 11, job 1+11 = 12
    expect(measure(`{ job(id: "1") { events { seq } } }`)).toEqual({ depth: 3, cost: 12 });
    // Query.jobEvents(first: Int = 1000): 1 + 1000×1
    expect(measure(`{ jobEvents(jobId: "1") { seq } }`)).toEqual({ depth: 2, cost: 1001 });
    // Mutation.claimJobs(limit: Int = 1): leaseToken 1 + job (1+1) = 3 → 1 + 1×3
    expect(measure(`mutation { claimJobs(queues: ["a"], workerId: "w") { leaseToken job { id } } }`)).toEqual({
      depth: 3,
      cost: 4,
    });
  });

  it("for last and limit as for first", () => {
    // events 1 + 3×1 = 4, job 1+4 = 5
    expect(measure(`{ job(id: "1") { events(last: 3) { seq } } }`)).toEqual({ depth: 3, cost: 5 });
    // claimJobs 1 + 20 × (leaseToken 1 + job 2)
    expect(
      measure(`mutation { claimJobs(queues: ["a"], workerId: "w", limit: 20) { leaseToken job { id } } }`),
    ).toEqual({ depth: 3, cost: 61 });
  });

  it("multiplies nested page sizes together", () => {
    // events 1 + 100 × (id + seq + type = 3) = 301; nodes 1 + 301 = 302; jobs 1 + 1000 × 302
    const source = `query Big($n: Int) { jobs(first: $n) { nodes { events(last: 100) { id seq type } } } }`;
    expect(measure(source, { n: 1000 })).toEqual({ depth: 4, cost: 302_001 });
    expect(measure(source, { n: 1 })).toEqual({ depth: 4, cost: 303 });
  });

  // The resolvers give an explicit null page size the schema default
  // (Query.jobs 50, Job.events 10, Query.jobEvents 1,000), so it is priced at
  // that default; priced as 1, nested `events(last: null)` would side-step
  // the cost limit.
  it("prices an explicit null page size at the schema default, which is what the resolvers use", () => {
    expect(measure(`{ jobs(first: null) { nodes { id } } }`)).toEqual({ depth: 3, cost: 1 + 50 * 2 });
    expect(measure(JOB_IDS, { n: null })).toEqual({ depth: 3, cost: 1 + 50 * 2 });
    expect(measure(`{ job(id: "1") { events(last: null) { seq } } }`)).toEqual({ depth: 3, cost: 12 });
  });
});

describe("measureOperation: field weights", () => {
  it("Queue.stats weighs 10", () => {
    // counts 1 + queued 1 = 2; stats 10 + 2 = 12; queues 1 + 12 = 13
    expect(measure(`{ queues { stats { counts { queued } } } }`)).toEqual({ depth: 4, cost: 13 });
    // stats 10 + 1 = 11; queue 1 + 11 = 12 — against 1 + (1 + 1) = 3 for settings
    expect(measure(`{ queue(name: "a") { stats { startedLastMinute } } }`)).toEqual({ depth: 3, cost: 12 });
    expect(measure(`{ queue(name: "a") { settings { paused } } }`)).toEqual({ depth: 3, cost: 3 });
  });

  it("JobConnection.totalCount weighs 10 and, like pageInfo, comes once per page", () => {
    // totalCount 10, not repeated per item: jobs 1 + 10
    expect(measure(`{ jobs(first: 5) { totalCount } }`)).toEqual({ depth: 2, cost: 11 });
    // pageInfo { hasNextPage }: 1 + 1 = 2; jobs 1 + 2
    expect(measure(`{ jobs(first: 5) { pageInfo { hasNextPage } } }`)).toEqual({ depth: 3, cost: 3 });
    // the list fields of the connection repeat per item: nodes { id } = 5 × (1 + 1)
    expect(measure(`{ jobs(first: 5) { totalCount nodes { id } } }`)).toEqual({ depth: 3, cost: 1 + 10 + 10 });
  });

  it("prices the query-count test's page exactly", () => {
    // nodes { id 1, state 1,
    //   queue: 1 + (name 1 + settings (1 + 2) + stats (10 + counts (1 + 1))) = 1 + 1 + 3 + 12 = 17,
    //   events: 1 + 5 × (seq 1 + type 1 + job (1 + 1)) = 21 } → nodes 1 + 40 = 41
    // jobs: 1 + totalCount 10 (once per page) + first × nodes 41
    const source = `query Page($first: Int) { jobs(first: $first) {
      totalCount
      nodes { id state queue { name settings { paused concurrency } stats { counts { queued } } }
              events(last: 5) { seq type job { id } } } } }`;
    expect(measure(source, { first: 10 })).toEqual({ depth: 6, cost: 1 + 10 + 10 * 41 });
    expect(measure(source, { first: 100 })).toEqual({ depth: 6, cost: 1 + 10 + 100 * 41 });
  });
});

describe("checkQueryLimits", () => {
  const limits = { maxDepth: 5, maxCost: 100, maxMutationFields: 3 };

  it("passes an operation at both limits", () => {
    expect(checkQueryLimits(q(5, 100), limits)).toBeNull();
    expect(checkQueryLimits(q(0, 0), limits)).toBeNull();
  });

  it("refuses one level too deep with QUERY_TOO_DEEP, naming the depth and the limit", () => {
    const error = checkQueryLimits(q(6, 1), limits);
    expect(error?.message).toBe("query is nested 6 levels deep; the limit is 5");
    expect(error?.extensions).toEqual({ code: "QUERY_TOO_DEEP", depth: 6, maxDepth: 5, http: { status: 400 } });
  });

  it("refuses one unit too costly with QUERY_TOO_COSTLY, naming the cost and the limit", () => {
    const error = checkQueryLimits(q(1, 101), limits);
    expect(error?.message).toBe(
      "query cost 101 exceeds the limit of 100; ask for smaller pages (first, last, limit) or fewer fields",
    );
    expect(error?.extensions).toEqual({ code: "QUERY_TOO_COSTLY", cost: 101, maxCost: 100, http: { status: 400 } });
  });

  it("reports depth first when both limits are passed", () => {
    expect(checkQueryLimits(q(6, 101), limits)?.extensions.code).toBe("QUERY_TOO_DEEP");
  });

  it("counts a mutation's root fields, aliases and fragments included, and refuses past the limit", () => {
    const m = full(`mutation { a: cancelJob(jobId: "1") { id } b: cancelJob(jobId: "2") { id } ...F __typename }
      fragment F on Mutation { c: retryJob(jobId: "3") { id } d: retryJob(jobId: "4") { id } }`);
    expect([m.operation, m.rootFields]).toEqual(["mutation", 4]);
    const error = checkQueryLimits(m, limits);
    expect(error?.message).toBe(
      "the mutation has 4 root fields; the limit is 3 (send batches with enqueueJobs / completeJobs, or several requests)",
    );
    expect(error?.extensions).toEqual({
      code: "TOO_MANY_MUTATIONS",
      rootFields: 4,
      maxMutationFields: 3,
      http: { status: 400 },
    });
    const three = full(
      `mutation { a: cancelJob(jobId: "1") { id } b: cancelJob(jobId: "2") { id } c: cancelJob(jobId: "3") { id } }`,
    );
    expect(checkQueryLimits(three, limits)).toBeNull();
    // Queries are bounded by their cost, not by this count.
    expect(
      checkQueryLimits(full(`{ a: queues { name } b: queues { name } c: queues { name } d: queues { name } }`), limits),
    ).toBeNull();
  });

  it("by default allows 12 levels, a cost of 50,000 and 50 mutation fields", () => {
    expect(DEFAULT_QUERY_LIMITS).toEqual({ maxDepth: 12, maxCost: 50_000, maxMutationFields: 50 });
    expect(Object.isFrozen(DEFAULT_QUERY_LIMITS)).toBe(true);
    const deep = full(`{ job(id: "1") { events { job { events { job { events { id } } } } } } }`);
    expect(deep.depth).toBe(7);
    expect(checkQueryLimits(deep, DEFAULT_QUERY_LIMITS)).toBeNull();
    // 302,001 > 50,000; 1 + 165 × 302 = 49,831 passes, 1 + 166 × 302 = 50,133 does not
    const source = `query Big($n: Int) { jobs(first: $n) { nodes { events(last: 100) { id seq type } } } }`;
    expect(checkQueryLimits(full(source, { n: 165 }), DEFAULT_QUERY_LIMITS)).toBeNull();
    expect(checkQueryLimits(full(source, { n: 166 }), DEFAULT_QUERY_LIMITS)?.extensions.code).toBe("QUERY_TOO_COSTLY");
  });
});
