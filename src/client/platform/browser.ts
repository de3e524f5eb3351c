/**
 * What the SDK takes from a browser: the same names as node.ts, from the
 * platform's own WebSocket and fetch. scripts/build-client.mjs bundles this
 * file in place of node.ts for the package's "browser" condition, so a browser
 * bundle pulls in neither `ws` nor a node: module.
 */
import type { HttpPoster } from "./node.ts";

export type { HttpPoster } from "./node.ts";

/** The platform's WebSocket. */
export const defaultWebSocket: unknown = globalThis.WebSocket;

/** The platform's fetch; the browser keeps connections alive by itself. */
export function createHttpPoster(url: string, timeoutMs: number): HttpPoster {
  return {
    post: async (payload, headers) => {
      const res = await fetch(url, {
        method: "POST",
        headers,
        body: payload,
        signal: AbortSignal.timeout(timeoutMs),
      });
      return { status: res.status, text: await res.text() };
    },
    close: () => {},
  };
}

/** A browser has no host name or pid to show: the id says where it runs instead. */
export function workerHost(): string {
  return "browser";
}

/** Runs `fn` after the current task (a browser has no setImmediate; the Worker batches what finished meanwhile). */
export function afterThisTurn(fn: () => void): void {
  setTimeout(fn, 0);
}
