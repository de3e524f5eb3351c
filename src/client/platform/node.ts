/**
 * What the SDK takes from Node (the browser build swaps this file for
 * browser.ts: scripts/build-client.mjs, the package's "browser" condition).
 * The two files export the same names with the same types; everything else of
 * the SDK is platform-neutral.
 */
import http from "node:http";
import https from "node:https";
import { hostname } from "node:os";
import WebSocket from "ws";

/** The WebSocket class graphql-ws uses when the caller gives none: the `ws` package. */
export const defaultWebSocket: unknown = WebSocket;

/** Sends one POST and resolves with the status and the body text. */
export interface HttpPoster {
  post(payload: string, headers: Record<string, string>): Promise<{ status: number; text: string }>;
  close(): void;
}

/**
 * Node's http/https with a keep-alive agent: measured faster than the global
 * fetch (undici) for a worker that shares its cores with the server.
 */
export function createHttpPoster(url: string, timeoutMs: number): HttpPoster {
  const transport = url.startsWith("https:") ? https : http;
  const agent = new transport.Agent({ keepAlive: true, maxSockets: 256 });
  return {
    post: (payload, headers) =>
      new Promise((resolve, reject) => {
        const req = transport.request(
          url,
          {
            method: "POST",
            agent,
            headers: { ...headers, "content-length": Buffer.byteLength(payload) },
            timeout: timeoutMs,
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (chunk: Buffer) => chunks.push(chunk));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
            res.on("error", reject);
          },
        );
        req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        req.on("error", reject);
        req.end(payload);
      }),
    close: () => agent.destroy(),
  };
}

/** The host part of a default worker id: the machine's name and this process. */
export function workerHost(): string {
  return `${hostname()}:${process.pid}`;
}

/** Runs `fn` once the current turn's I/O callbacks are done (setImmediate). */
export function afterThisTurn(fn: () => void): void {
  setImmediate(fn);
}
