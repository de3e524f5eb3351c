/**
 * A real jobwire server on an ephemeral port over a fresh test database, and a
 * small HTTP GraphQL client typed by the generated documents
 * (src/client/__generated__/graphql.ts).
 */
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";
import type { GraphQLFormattedError } from "graphql";
import { pino } from "pino";
import { expect } from "vitest";
import type { Logger } from "pino";
import type { Dialect, JobStore } from "../../src/store/job-store.ts";
import { startServer } from "../../src/server/server.ts";
import type { RunningServer, ServerOptions } from "../../src/server/server.ts";
import { createTestDatabase } from "./backends.ts";
import type { TestDatabase } from "./backends.ts";

export interface GraphQLResponse<T> {
  status: number;
  data?: T | null;
  errors?: GraphQLFormattedError[];
}

export interface TestServer {
  db: TestDatabase;
  server: RunningServer;
  store: JobStore;
  /** e.g. http://127.0.0.1:41234/graphql */
  url: string;
  /** Base URL without the path, e.g. http://127.0.0.1:41234 */
  origin: string;
  /** Statements the server's store has sent so far for requests (see countStatements). */
  statements: number;
  /** Runs a typed operation; resolves with the whole response (errors included). */
  request<T, V>(document: TypedDocumentNode<T, V>, variables?: V): Promise<GraphQLResponse<T>>;
  /** Runs a typed operation and returns its data; throws when the response has errors. */
  data<T, V>(document: TypedDocumentNode<T, V>, variables?: V): Promise<T>;
  /** Runs an operation and returns its first error; throws when it has none. */
  error<T, V>(document: TypedDocumentNode<T, V>, variables?: V): Promise<GraphQLFormattedError>;
  /** POSTs a raw body (string or JSON) with the given headers. */
  post(body: unknown, headers?: Record<string, string>): Promise<Response>;
  /** Counts the statements `fn` makes the server send. */
  countStatements(fn: () => Promise<unknown>): Promise<number>;
  close(): Promise<void>;
}

/** The one error of a response, after checking there is exactly one. */
export function onlyError(res: GraphQLResponse<unknown>): GraphQLFormattedError {
  expect(res.errors).toHaveLength(1);
  const [error] = res.errors ?? [];
  if (!error) throw new Error("no error");
  return error;
}

export type TestServerOptions = Omit<ServerOptions, "store" | "logger"> & { logger?: Logger };

export async function startTestServer(dialect: Dialect, options: TestServerOptions = {}): Promise<TestServer> {
  const db = await createTestDatabase(dialect);
  let statements = 0;
  // The live event feed reads the event log on its own (woken by commits, a
  // second read to settle the PostgreSQL horizon, a 1 s safety poll); those
  // reads are not the request's and would land in a count at random (CI saw
  // 22 for a page that costs 21). They are the only statements that read
  // "max_id" (PrismaJobStore.readEventLog).
  const store = await db.open({
    onStatement: (statement) => {
      if (!statement.sql.includes('"max_id"')) statements++;
    },
  });
  const server = await startServer({
    logger: options.logger ?? pino({ level: "silent" }),
    port: 0,
    maintenance: false,
    databaseUrl: db.url,
    ...options,
    store,
  });
  const url = server.url;
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  const request = async <T, V>(document: TypedDocumentNode<T, V>, variables?: V): Promise<GraphQLResponse<T>> => {
    const res = await post({ query: print(document), variables: variables ?? {} });
    const body = (await res.json()) as Omit<GraphQLResponse<T>, "status">;
    return { status: res.status, ...body };
  };
  const t: TestServer = {
    db,
    server,
    store,
    url,
    origin: new URL(url).origin,
    get statements() {
      return statements;
    },
    request,
    async data(document, variables) {
      const res = await request(document, variables);
      if (res.errors?.length || res.data === undefined || res.data === null) {
        throw new Error(`GraphQL errors (HTTP ${res.status}): ${JSON.stringify(res.errors)}`);
      }
      return res.data;
    },
    async error(document, variables) {
      const res = await request(document, variables);
      const first = res.errors?.[0];
      if (!first) throw new Error(`expected a GraphQL error, got data ${JSON.stringify(res.data)}`);
      return first;
    },
    post,
    async countStatements(fn) {
      const before = statements;
      await fn();
      return statements - before;
    },
    async close() {
      await server.close();
      await db.dispose();
    },
  };
  return t;
}
