/**
 * The slice of a generated Prisma client the store uses. Both generated clients
 * (sqlite and postgres, see scripts/prisma-generate.mjs) satisfy it, so the
 * store is written once against it and the dialect modules supply the SQL that
 * differs.
 */
import type { Sql } from "@prisma/client/runtime/client";

export interface SqlRunner {
  $queryRaw<T = unknown>(query: Sql): Promise<T>;
  $executeRaw(query: Sql): Promise<number>;
}

export interface SqlClient extends SqlRunner {
  $transaction<R>(fn: (tx: SqlRunner) => Promise<R>, options?: { maxWait?: number; timeout?: number }): Promise<R>;
  $disconnect(): Promise<void>;
}

export type Row = Record<string, unknown>;

/**
 * Wraps a client so `onStatement` sees every statement before it runs, inside
 * transactions too. Used to count and time database round trips (the
 * query-count test of the GraphQL layer; metrics).
 */
export function observeStatements(client: SqlClient, onStatement: (statement: Sql) => void): SqlClient {
  const observe = (runner: SqlRunner): SqlRunner => ({
    $queryRaw: <T>(query: Sql) => {
      onStatement(query);
      return runner.$queryRaw<T>(query);
    },
    $executeRaw: (query: Sql) => {
      onStatement(query);
      return runner.$executeRaw(query);
    },
  });
  return {
    ...observe(client),
    $transaction: (fn, options) => client.$transaction((tx) => fn(observe(tx)), options),
    $disconnect: () => client.$disconnect(),
  };
}
