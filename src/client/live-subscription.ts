/**
 * A graphql-ws subscription that survives its connection: the SDK's
 * subscriptions are async iterators built on this.
 *
 * - Resume. Every item moves a cursor (the last seq or event id received);
 *   whenever the subscription has to start again (the socket dropped, the
 *   server restarted, the server ended it with SUBSCRIPTION_OVERFLOW or
 *   closed the socket with 4408 "stalled: …" because it stopped reading) it
 *   resubscribes with variables computed from that cursor, so the server
 *   replays exactly what was missed. graphql-ws's own retries are off: they
 *   would resubscribe with the first variables and replay from the start.
 * - Backpressure. Items wait in a local buffer until the consumer takes them.
 *   A "queue" subscription whose buffer holds `maxBuffer` items unsubscribes
 *   from the server and resubscribes from its cursor once the consumer has
 *   taken half of them: memory stays bounded and nothing is lost. "latest"
 *   keeps only the newest item (stats); "unique" keeps one per key (signals).
 * - Errors the caller must fix (NOT_FOUND, BAD_USER_INPUT, …) end the
 *   iterator: the pending or next `next()` rejects with a JobwireRequestError.
 */
import type { GraphQLFormattedError } from "graphql";
import type { Client } from "graphql-ws";
import { JobwireRequestError } from "./errors.ts";

export type BufferMode<T> =
  { kind: "queue"; maxBuffer: number } | { kind: "latest" } | { kind: "unique"; key: (item: T) => string };

export interface LiveSubscriptionSpec<TData, TVars, TItem> {
  /** The graphql-ws client (connection) to subscribe on. */
  client: () => Client;
  /** The printed document. */
  query: string;
  /** Variables for the next (re)subscription, from the cursor so far. */
  variables: () => TVars;
  /** The item of one result, and the cursor update it implies. */
  pick: (data: TData) => TItem;
  /** Called with each item as it arrives (before the consumer takes it): move the cursor here. */
  onItem?: (item: TItem) => void;
  buffer: BufferMode<TItem>;
  /** Delay before resubscribing after a dropped connection: `retries` counts failures in a row. */
  retryDelayMs: (retries: number) => number;
  /** Told each time the subscription drops and a resubscription is scheduled. */
  onDrop?: (reason: unknown) => void;
}

export interface LiveSubscription<T> extends AsyncIterableIterator<T> {
  /** Ends the subscription (also: `break` out of a for-await loop). */
  close(): void;
  /** True while subscribed on an open connection as far as the client knows. */
  readonly active: boolean;
}

/** graphql-ws hands GraphQL errors to `error` as an array; anything else is the connection. */
function isGraphQLErrors(e: unknown): e is readonly GraphQLFormattedError[] {
  return Array.isArray(e);
}

/** The close the server sends a client that stopped reading (README, "Connections"). */
function isStallClose(e: unknown): boolean {
  if (typeof e !== "object" || e === null || !("code" in e) || !("reason" in e)) return false;
  return e.code === 4408 && typeof e.reason === "string" && e.reason.startsWith("stalled:");
}

export function openLiveSubscription<TData, TVars extends Record<string, unknown>, TItem>(
  spec: LiveSubscriptionSpec<TData, TVars, TItem>,
): LiveSubscription<TItem> {
  const buffered: TItem[] = [];
  let waiter: { resolve: (r: IteratorResult<TItem, undefined>) => void; reject: (e: unknown) => void } | null = null;
  let failure: JobwireRequestError | null = null;
  let closed = false;
  let paused = false;
  let unsubscribe: (() => void) | null = null;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  let retries = 0;
  let generation = 0;
  let active = false;

  const deliver = (item: TItem): void => {
    if (waiter) {
      const w = waiter;
      waiter = null;
      w.resolve({ value: item, done: false });
      return;
    }
    const mode = spec.buffer;
    if (mode.kind === "latest") buffered.splice(0, buffered.length, item);
    else if (mode.kind === "unique") {
      const key = mode.key(item);
      if (!buffered.some((b) => mode.key(b) === key)) buffered.push(item);
    } else {
      buffered.push(item);
      if (buffered.length >= mode.maxBuffer && !paused) {
        // Stop the flow; resume from the cursor once the consumer catches up.
        paused = true;
        stopServerSide();
      }
    }
  };

  const stopServerSide = (): void => {
    generation++;
    active = false;
    const u = unsubscribe;
    unsubscribe = null;
    u?.();
  };

  const end = (error: JobwireRequestError | null): void => {
    if (closed) return;
    closed = true;
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = null;
    stopServerSide();
    if (waiter) {
      // A consumer is parked in next(): it gets the error (or the end) now.
      const w = waiter;
      waiter = null;
      if (error) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    } else if (error) failure = error; // the next next() gets it, after what is buffered
  };

  const scheduleRestart = (reason: unknown, delayMs: number): void => {
    if (closed) return;
    stopServerSide();
    spec.onDrop?.(reason);
    retryTimer = setTimeout(() => {
      retryTimer = null;
      start();
    }, delayMs);
  };

  const start = (): void => {
    if (closed || paused) return;
    const mine = ++generation;
    const current = () => mine === generation && !closed;
    active = true;
    unsubscribe = spec.client().subscribe<TData>(
      { query: spec.query, variables: spec.variables() },
      {
        next: (result) => {
          if (!current()) return;
          if (result.errors?.length) return onError(result.errors);
          if (result.data === undefined || result.data === null) return;
          retries = 0;
          const item = spec.pick(result.data);
          spec.onItem?.(item);
          deliver(item);
        },
        error: (e) => {
          if (current()) onError(e);
        },
        complete: () => {
          // The server ended it (e.g. shutting down): start again from the cursor.
          if (current())
            scheduleRestart(new Error("the server completed the subscription"), spec.retryDelayMs(retries++));
        },
      },
    );
  };

  const onError = (e: unknown): void => {
    if (isGraphQLErrors(e)) {
      const error = JobwireRequestError.fromGraphQL(e);
      // Nothing was lost: the server ended this subscription because it was
      // read too slowly; resubscribe from the cursor at once.
      if (error.code === "SUBSCRIPTION_OVERFLOW") return scheduleRestart(error, 0);
      return end(error);
    }
    // The server refused the token (4401: none, 4403: invalid, expired or
    // revoked): retrying with the same token cannot help.
    const closeCode = (e as { code?: unknown } | null)?.code;
    if (closeCode === 4401 || closeCode === 4403) {
      const reason = String((e as { reason?: unknown }).reason ?? "");
      return end(
        new JobwireRequestError(
          closeCode === 4401 ? "UNAUTHENTICATED" : "FORBIDDEN",
          `the server closed the WebSocket with ${closeCode}${reason ? `: ${reason}` : ""}`,
          { details: { closeCode } },
        ),
      );
    }
    // The server closed a socket that had stopped reading (4408 "stalled: …",
    // after a SUBSCRIPTION_OVERFLOW per subscription): not a network fault,
    // so resume from the cursor at once.
    if (isStallClose(e)) return scheduleRestart(e, 0);
    // The socket closed or could not open: try again after a pause.
    scheduleRestart(e, spec.retryDelayMs(retries++));
  };

  const iterator: LiveSubscription<TItem> = {
    get active() {
      return active && !closed;
    },
    next(): Promise<IteratorResult<TItem, undefined>> {
      if (buffered.length > 0) {
        const value = buffered.shift() as TItem;
        const mode = spec.buffer;
        if (paused && mode.kind === "queue" && buffered.length <= mode.maxBuffer / 2) {
          paused = false;
          start();
        }
        return Promise.resolve({ value, done: false });
      }
      if (failure) {
        const error = failure;
        failure = null;
        return Promise.reject(error);
      }
      if (closed) return Promise.resolve({ value: undefined, done: true });
      if (waiter) return Promise.reject(new Error("next() called again before the previous call settled"));
      return new Promise((resolve, reject) => (waiter = { resolve, reject }));
    },
    return(): Promise<IteratorResult<TItem, undefined>> {
      end(null);
      buffered.length = 0;
      return Promise.resolve({ value: undefined, done: true });
    },
    close(): void {
      void iterator.return?.();
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  start();
  return iterator;
}
