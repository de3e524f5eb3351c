/**
 * Real graphql-ws clients for the subscription tests: a client per server, and
 * a recorder per subscription that queues what arrives so a test can wait for
 * "the next n items" or "an error" without sleeping.
 */
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";
import type { FormattedExecutionResult, GraphQLFormattedError } from "graphql";
import { createClient } from "graphql-ws";
import type { Client, ClientOptions } from "graphql-ws";
import WebSocket from "ws";

export function wsUrl(httpUrl: string): string {
  return httpUrl.replace(/^http/, "ws");
}

/** A graphql-ws client that does not retry (tests see every close). */
export function connect(httpUrl: string, options: Partial<ClientOptions> = {}): Client {
  return createClient({
    url: wsUrl(httpUrl),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    ...options,
  });
}

export interface Recording<T> {
  /** Data of every `next` message without errors, in arrival order. */
  readonly items: T[];
  /** Errors of a `next` message or of an `error` message, once one arrived. */
  readonly errors: readonly GraphQLFormattedError[] | null;
  /** The close event or other failure, if the socket failed. */
  readonly failure: unknown;
  readonly completed: boolean;
  /** Resolves once `items.length >= n`; rejects on error, completion or timeout. */
  waitForItems(n: number, timeoutMs?: number): Promise<T[]>;
  /** Resolves with the errors once the subscription errors; rejects on timeout. */
  waitForErrors(timeoutMs?: number): Promise<readonly GraphQLFormattedError[]>;
  /** Resolves once `predicate(items)` holds. */
  waitUntil(predicate: (items: T[]) => boolean, what: string, timeoutMs?: number): Promise<T[]>;
  /** Unsubscribes (sends complete). */
  stop(): void;
}

export function record<T, V extends Record<string, unknown>>(
  client: Client,
  document: TypedDocumentNode<T, V>,
  variables: V,
): Recording<T> {
  const items: T[] = [];
  let errors: readonly GraphQLFormattedError[] | null = null;
  let failure: unknown = null;
  let completed = false;
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  const stop = client.subscribe<T>(
    { query: print(document), variables },
    {
      next: (result: FormattedExecutionResult<T>) => {
        if (result.errors) errors = result.errors;
        else if (result.data) items.push(result.data);
        notify();
      },
      error: (e: unknown) => {
        if (Array.isArray(e)) errors = e as GraphQLFormattedError[];
        else failure = e;
        notify();
      },
      complete: () => {
        completed = true;
        notify();
      },
    },
  );
  const waitUntil = (predicate: () => boolean, what: string, timeoutMs = 10_000, stopOnEnd = true) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (predicate()) return finish(resolve);
        if (stopOnEnd && (errors || failure || completed)) {
          return finish(() => reject(new Error(`${what}: ended early with ${describe()} after ${items.length} items`)));
        }
      };
      const timer = setTimeout(
        () => finish(() => reject(new Error(`${what}: timed out after ${timeoutMs} ms with ${items.length} items`))),
        timeoutMs,
      );
      const finish = (done: () => void) => {
        clearTimeout(timer);
        waiters.delete(check);
        done();
      };
      waiters.add(check);
      check();
    });
  const describe = () =>
    errors ? `errors ${JSON.stringify(errors)}` : failure ? `failure ${String(failure)}` : "complete";
  return {
    items,
    get errors() {
      return errors;
    },
    get failure() {
      return failure;
    },
    get completed() {
      return completed;
    },
    async waitForItems(n, timeoutMs) {
      await waitUntil(() => items.length >= n, `waiting for ${n} items`, timeoutMs);
      return items;
    },
    async waitForErrors(timeoutMs) {
      await waitUntil(() => errors !== null, "waiting for errors", timeoutMs, false);
      return errors ?? [];
    },
    async waitUntil(predicate, what, timeoutMs) {
      await waitUntil(() => predicate(items), what, timeoutMs);
      return items;
    },
    stop,
  };
}

/**
 * Resolves once the server holds at least `n` open subscriptions: a live-only
 * subscription (jobChanged without afterEventId) sends nothing until the next
 * transition, so a test waits for this before making one.
 */
export async function untilSubscribed(
  server: { liveCounts(): { subscriptions: number } },
  n: number,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (server.liveCounts().subscriptions < n) {
    if (Date.now() > deadline) {
      throw new Error(`${server.liveCounts().subscriptions} subscriptions open after ${timeoutMs} ms, wanted ${n}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
