/**
 * The HTTP routes: POST/GET /graphql (Apollo), GET /healthz (the process
 * answers), GET /readyz (the database answers and is migrated), GET /metrics
 * (Prometheus text, unless metrics are off). Request bodies are read here, so
 * their size limit holds before any parsing.
 *
 * Browser origins (src/auth/origins.ts): a /graphql request whose Origin is
 * neither this server's nor one of --allowed-origins is refused with 403
 * before anything runs, preflights included; an allowed one gets CORS headers
 * naming exactly that origin.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { HeaderMap } from "@apollo/server";
import type { ApolloServer } from "@apollo/server";
import type { Logger } from "pino";
import { originAllowed } from "../auth/origins.ts";
import type { GraphQLContext } from "../graphql/context.ts";
import { inGraphQLRequestSpan } from "./tracing.ts";

export interface HttpHandlerOptions {
  apollo: ApolloServer<GraphQLContext>;
  /** The context of one request (authenticates it: may throw UNAUTHENTICATED). */
  context: (req: IncomingMessage) => Promise<GraphQLContext>;
  /** Origins allowed besides the server's own. */
  allowedOrigins: readonly string[];
  /** Resolves when ready; rejects with the reason otherwise. */
  checkReady: () => Promise<void>;
  /** The Prometheus page; absent: /metrics is not served. */
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /**
   * Throws an HttpAuthError unless the request may read /metrics (with auth
   * required: a token without queue patterns, since the page covers every queue).
   */
  authorizeMetrics?: (req: IncomingMessage) => Promise<void>;
  maxBodyBytes: number;
  logger: Logger;
}

export const GRAPHQL_PATH = "/graphql";

/** Thrown by authorizeMetrics: answered with its status and code. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function createHttpHandler(options: HttpHandlerOptions) {
  const { logger } = options;
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    try {
      switch (url.pathname) {
        case GRAPHQL_PATH:
          if (!cors(req, res, options.allowedOrigins)) return;
          return await inGraphQLRequestSpan(req, () => graphql(req, res, url, options));
        case "/healthz":
          return sendJson(res, 200, { status: "ok" });
        case "/readyz":
          try {
            await withTimeout(options.checkReady(), 5_000, "the database did not answer within 5 s");
            return sendJson(res, 200, { status: "ready" });
          } catch (e) {
            return sendJson(res, 503, { status: "unavailable", reason: (e as Error).message });
          }
        case "/metrics":
          if (!options.metrics) return notFound(res, url);
          await options.authorizeMetrics?.(req);
          return sendText(res, 200, await options.metrics());
        default:
          return notFound(res, url);
      }
    } catch (e) {
      if (e instanceof HttpError) {
        if (e.status === 413) res.setHeader("connection", "close");
        if (e.status === 401) res.setHeader("www-authenticate", "Bearer");
        return sendJson(res, e.status, { errors: [{ message: e.message, extensions: { code: e.code } }] });
      }
      logger.error({ err: e, path: url.pathname }, "HTTP request failed");
      if (!res.headersSent) {
        sendJson(res, 500, {
          errors: [{ message: "Internal server error", extensions: { code: "INTERNAL_SERVER_ERROR" } }],
        });
      } else {
        res.destroy();
      }
    }
  };
}

async function graphql(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  options: HttpHandlerOptions,
): Promise<void> {
  const method = (req.method ?? "GET").toUpperCase();
  const raw = await readBody(req, options.maxBodyBytes);
  let body: unknown = undefined;
  if (raw.length > 0 && /^application\/(graphql-response\+)?json\b/i.test(req.headers["content-type"] ?? "")) {
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch (e) {
      throw new HttpError(400, "BAD_REQUEST", `the request body is not valid JSON: ${(e as Error).message}`);
    }
  } else if (raw.length > 0) {
    body = raw.toString("utf8");
  }
  const headers = new HeaderMap();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  const response = await options.apollo.executeHTTPGraphQLRequest({
    httpGraphQLRequest: { method, headers, search: url.search, body },
    context: () => options.context(req),
  });
  for (const [name, value] of response.headers) res.setHeader(name, value);
  res.statusCode = response.status ?? 200;
  if (response.body.kind === "complete") {
    res.end(response.body.string);
    return;
  }
  for await (const chunk of response.body.asyncIterator) res.write(chunk);
  res.end();
}

/** Headers a browser may send cross-origin (Apollo's CSRF check wants one of the last two). */
const CORS_ALLOW_HEADERS = "authorization, content-type, apollo-require-preflight, x-apollo-operation-name";

/**
 * Origin check and CORS. Returns false when it answered the request itself
 * (a refused origin, or a preflight).
 */
function cors(req: IncomingMessage, res: ServerResponse, allowed: readonly string[]): boolean {
  const origin = req.headers.origin;
  if (!originAllowed(origin, req.headers.host, allowed)) {
    sendJson(res, 403, {
      errors: [
        {
          message: `origin ${origin ?? ""} is not allowed to call this API (see --allowed-origins)`,
          extensions: { code: "FORBIDDEN" },
        },
      ],
    });
    return false;
  }
  if (origin !== undefined) {
    res.setHeader("access-control-allow-origin", origin);
    res.setHeader("vary", "Origin");
  }
  if (req.method?.toUpperCase() === "OPTIONS") {
    res.writeHead(204, {
      "access-control-allow-methods": "GET, POST, OPTIONS",
      "access-control-allow-headers": CORS_ALLOW_HEADERS,
      "access-control-max-age": "600",
    });
    res.end();
    return false;
  }
  return true;
}

/**
 * Reads the whole body, refusing more than `limit` bytes with 413. A body a
 * little over the limit is read to its end and discarded, so the client gets
 * the 413 instead of a reset connection; a body far over it is cut off.
 */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  const tooLarge = () =>
    new HttpError(413, "BODY_TOO_LARGE", `the request body is larger than the server's limit of ${limit} bytes`);
  const discardUpTo = limit * 4 + 1024 * 1024;
  if (declared > discardUpTo) {
    req.resume();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > discardUpTo) {
      req.destroy();
      throw tooLarge();
    }
    if (size <= limit) chunks.push(chunk);
  }
  if (size > limit) throw tooLarge();
  return Buffer.concat(chunks);
}

function notFound(res: ServerResponse, url: URL): void {
  sendJson(res, 404, { errors: [{ message: `no route ${url.pathname}; the API is at ${GRAPHQL_PATH}` }] });
}

function sendText(res: ServerResponse, status: number, page: { contentType: string; body: string }): void {
  res.writeHead(status, { "content-type": page.contentType, "content-length": Buffer.byteLength(page.body) });
  res.end(page.body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
