/**
 * Command-line flags and environment variables, parsed once into a typed
 * Config. Flags win over environment variables; both win over defaults.
 */
import { parseArgs } from "node:util";
import { parseOrigins } from "./auth/origins.ts";
import { JobwireError } from "./jobs/errors.ts";
import { DEFAULT_QUERY_LIMITS } from "./graphql/limits.ts";
import { LIMITS } from "./jobs/limits.ts";
import { LOG_LEVELS } from "./server/logger.ts";
import type { LogLevel } from "./server/logger.ts";
import { SERVER_DEFAULTS } from "./server/defaults.ts";

export const DEFAULT_DATABASE_URL = "file:./jobwire.db";

export interface Config {
  /** `file:<path>` (embedded SQLite) or `postgres://…`. */
  databaseUrl: string;
  /** PostgreSQL connection pool size. */
  poolSize: number;
  /** Largest JSON payload/result/progress/metadata accepted, in bytes. */
  maxPayloadBytes: number;
  /** serve: TCP port (0 = any free port). */
  port: number;
  /** serve: interface to listen on. */
  host: string;
  /** serve: answer introspection queries. */
  introspection: boolean;
  /** serve: largest HTTP request body, in bytes. */
  maxBodyBytes: number;
  /** serve: deepest query nesting. */
  maxQueryDepth: number;
  /** serve: highest query cost (see src/graphql/limits.ts). */
  maxQueryCost: number;
  /** serve: most root fields (aliases included) of one mutation operation. */
  maxMutationFields: number;
  /** serve: how long shutdown waits for in-flight requests, in ms. */
  shutdownGraceMs: number;
  /** serve: live events a subscription may have unread (unsent, or not confirmed read) before SUBSCRIPTION_OVERFLOW. */
  subscriptionBuffer: number;
  /** serve: WebSocket connections open at once, in total; a handshake beyond gets HTTP 503. */
  maxConnections: number;
  /** serve: WebSocket connections open at once from one remote address; a handshake beyond gets HTTP 429. */
  maxConnectionsPerIp: number;
  /** serve: subscriptions running at once on one WebSocket; one more gets TOO_MANY_SUBSCRIPTIONS. */
  maxSubscriptionsPerSocket: number;
  /** serve: time a WebSocket client has to send connection_init, in ms. */
  wsInitTimeoutMs: number;
  /** serve: WebSocket keep-alive ping interval in ms (0: no keep-alive; read-confirming pings still go out). */
  wsKeepAliveMs: number;
  /** serve: GET /metrics in Prometheus text format. */
  metrics: boolean;
  /** serve: "required" or "off"; null: required unless the host is loopback. */
  auth: "required" | "off" | null;
  /** serve: browser origins allowed besides the server's own. */
  allowedOrigins: string[];
  logLevel: LogLevel;
  /**
   * serve: OTLP/HTTP base URL to export OpenTelemetry traces to (spans go to
   * <url>/v1/traces); null: tracing off, and the SDK is never loaded.
   */
  otlpEndpoint: string | null;
  /** null: readable logs when stdout is a terminal, JSON lines otherwise. */
  logPretty: boolean | null;
}

export class ConfigError extends Error {}

export const ENVIRONMENT = Object.freeze({
  JOBWIRE_DATABASE_URL: "database URL (default file:./jobwire.db)",
  JOBWIRE_POOL_SIZE: "PostgreSQL pool size (default 10)",
  JOBWIRE_MAX_PAYLOAD_BYTES: `largest JSON payload in bytes (default ${LIMITS.defaultMaxPayloadBytes})`,
  JOBWIRE_PORT: `serve: port (default ${SERVER_DEFAULTS.port}; 0 picks a free one)`,
  JOBWIRE_HOST: `serve: interface (default ${SERVER_DEFAULTS.host})`,
  JOBWIRE_INTROSPECTION: "serve: true or false (default true)",
  JOBWIRE_MAX_BODY_BYTES: `serve: largest request body (default ${SERVER_DEFAULTS.maxBodyBytes})`,
  JOBWIRE_MAX_QUERY_DEPTH: `serve: deepest query (default ${DEFAULT_QUERY_LIMITS.maxDepth})`,
  JOBWIRE_MAX_QUERY_COST: `serve: costliest query (default ${DEFAULT_QUERY_LIMITS.maxCost})`,
  JOBWIRE_MAX_MUTATION_FIELDS: `serve: most root fields of one mutation (default ${DEFAULT_QUERY_LIMITS.maxMutationFields})`,
  JOBWIRE_SHUTDOWN_GRACE_MS: `serve: wait for in-flight requests on shutdown (default ${SERVER_DEFAULTS.shutdownGraceMs})`,
  JOBWIRE_SUBSCRIPTION_BUFFER: `serve: live events a subscription may have unread (default ${SERVER_DEFAULTS.subscriptionBuffer})`,
  JOBWIRE_MAX_CONNECTIONS: `serve: WebSocket connections in total (default ${SERVER_DEFAULTS.maxConnections})`,
  JOBWIRE_MAX_CONNECTIONS_PER_IP: `serve: WebSocket connections per remote address (default ${SERVER_DEFAULTS.maxConnectionsPerIp})`,
  JOBWIRE_MAX_SUBSCRIPTIONS_PER_SOCKET: `serve: subscriptions per WebSocket (default ${SERVER_DEFAULTS.maxSubscriptionsPerSocket})`,
  JOBWIRE_WS_INIT_TIMEOUT_MS: `serve: WebSocket connection_init timeout (default ${SERVER_DEFAULTS.wsInitTimeoutMs})`,
  JOBWIRE_WS_KEEPALIVE_MS: `serve: WebSocket keep-alive interval, 0 = off (default ${SERVER_DEFAULTS.wsKeepAliveMs})`,
  JOBWIRE_METRICS: "serve: GET /metrics, true or false (default true)",
  JOBWIRE_AUTH: "serve: required or off (default: off on a loopback host, else required)",
  JOBWIRE_ALLOWED_ORIGINS: "serve: comma-separated browser origins allowed besides the server's own",
  JOBWIRE_LOG_LEVEL: `${LOG_LEVELS.join(", ")} (default info)`,
  JOBWIRE_LOG_FORMAT: "pretty or json (default: pretty on a terminal)",
  OTEL_EXPORTER_OTLP_ENDPOINT: "serve: export traces to this OTLP/HTTP endpoint (default: tracing off)",
});

export function parseConfig(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): { config: Config; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        database: { type: "string", short: "d" },
        "pool-size": { type: "string" },
        "max-payload-bytes": { type: "string" },
        port: { type: "string", short: "p" },
        host: { type: "string" },
        introspection: { type: "string" },
        "max-body-bytes": { type: "string" },
        "max-query-depth": { type: "string" },
        "max-query-cost": { type: "string" },
        "max-mutation-fields": { type: "string" },
        "shutdown-grace-ms": { type: "string" },
        "subscription-buffer": { type: "string" },
        "max-connections": { type: "string" },
        "max-connections-per-ip": { type: "string" },
        "max-subscriptions-per-socket": { type: "string" },
        "ws-init-timeout-ms": { type: "string" },
        "ws-keepalive-ms": { type: "string" },
        metrics: { type: "string" },
        auth: { type: "string" },
        "allowed-origins": { type: "string" },
        "log-level": { type: "string" },
        "log-format": { type: "string" },
        "otlp-endpoint": { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
      },
    });
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) positionals.unshift("help");
  else if (values.version) positionals.unshift("version");
  const config: Config = {
    databaseUrl: values.database ?? (env.JOBWIRE_DATABASE_URL || DEFAULT_DATABASE_URL),
    poolSize: positiveInt(values["pool-size"] ?? env.JOBWIRE_POOL_SIZE, "--pool-size", 10, 1_000),
    maxPayloadBytes: positiveInt(
      values["max-payload-bytes"] ?? env.JOBWIRE_MAX_PAYLOAD_BYTES,
      "--max-payload-bytes",
      LIMITS.defaultMaxPayloadBytes,
      64 * 1024 * 1024,
    ),
    port: integerIn(values.port ?? env.JOBWIRE_PORT, "--port", SERVER_DEFAULTS.port, 0, 65_535),
    // An empty variable counts as unset (as for every JOBWIRE_*); an empty flag is an error.
    host: nonEmpty(values.host ?? (env.JOBWIRE_HOST || undefined), "--host", SERVER_DEFAULTS.host),
    introspection: bool(values.introspection ?? env.JOBWIRE_INTROSPECTION, "--introspection", true),
    maxBodyBytes: positiveInt(
      values["max-body-bytes"] ?? env.JOBWIRE_MAX_BODY_BYTES,
      "--max-body-bytes",
      SERVER_DEFAULTS.maxBodyBytes,
      1024 * 1024 * 1024,
    ),
    maxQueryDepth: positiveInt(
      values["max-query-depth"] ?? env.JOBWIRE_MAX_QUERY_DEPTH,
      "--max-query-depth",
      DEFAULT_QUERY_LIMITS.maxDepth,
      1_000,
    ),
    maxQueryCost: positiveInt(
      values["max-query-cost"] ?? env.JOBWIRE_MAX_QUERY_COST,
      "--max-query-cost",
      DEFAULT_QUERY_LIMITS.maxCost,
      1_000_000_000,
    ),
    maxMutationFields: positiveInt(
      values["max-mutation-fields"] ?? env.JOBWIRE_MAX_MUTATION_FIELDS,
      "--max-mutation-fields",
      DEFAULT_QUERY_LIMITS.maxMutationFields,
      10_000,
    ),
    shutdownGraceMs: integerIn(
      values["shutdown-grace-ms"] ?? env.JOBWIRE_SHUTDOWN_GRACE_MS,
      "--shutdown-grace-ms",
      SERVER_DEFAULTS.shutdownGraceMs,
      0,
      3_600_000,
    ),
    subscriptionBuffer: positiveInt(
      values["subscription-buffer"] ?? env.JOBWIRE_SUBSCRIPTION_BUFFER,
      "--subscription-buffer",
      SERVER_DEFAULTS.subscriptionBuffer,
      1_000_000,
    ),
    maxConnections: positiveInt(
      values["max-connections"] ?? env.JOBWIRE_MAX_CONNECTIONS,
      "--max-connections",
      SERVER_DEFAULTS.maxConnections,
      1_000_000,
    ),
    maxConnectionsPerIp: positiveInt(
      values["max-connections-per-ip"] ?? env.JOBWIRE_MAX_CONNECTIONS_PER_IP,
      "--max-connections-per-ip",
      SERVER_DEFAULTS.maxConnectionsPerIp,
      1_000_000,
    ),
    maxSubscriptionsPerSocket: positiveInt(
      values["max-subscriptions-per-socket"] ?? env.JOBWIRE_MAX_SUBSCRIPTIONS_PER_SOCKET,
      "--max-subscriptions-per-socket",
      SERVER_DEFAULTS.maxSubscriptionsPerSocket,
      100_000,
    ),
    wsInitTimeoutMs: positiveInt(
      values["ws-init-timeout-ms"] ?? env.JOBWIRE_WS_INIT_TIMEOUT_MS,
      "--ws-init-timeout-ms",
      SERVER_DEFAULTS.wsInitTimeoutMs,
      3_600_000,
    ),
    wsKeepAliveMs: integerIn(
      values["ws-keepalive-ms"] ?? env.JOBWIRE_WS_KEEPALIVE_MS,
      "--ws-keepalive-ms",
      SERVER_DEFAULTS.wsKeepAliveMs,
      0,
      3_600_000,
    ),
    metrics: bool(values.metrics ?? env.JOBWIRE_METRICS, "--metrics", true),
    auth: authMode(values.auth ?? env.JOBWIRE_AUTH),
    allowedOrigins: origins(values["allowed-origins"] ?? env.JOBWIRE_ALLOWED_ORIGINS),
    logLevel: oneOf(values["log-level"] ?? env.JOBWIRE_LOG_LEVEL, "--log-level", "info", LOG_LEVELS),
    logPretty: logFormat(values["log-format"] ?? env.JOBWIRE_LOG_FORMAT),
    otlpEndpoint: otlpEndpoint(values["otlp-endpoint"] ?? (env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined)),
  };
  return { config, positionals };
}

function otlpEndpoint(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`--otlp-endpoint must be an http(s) URL, got ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`--otlp-endpoint must be an http(s) URL, got ${JSON.stringify(raw)}`);
  }
  return raw;
}

function authMode(raw: string | undefined): "required" | "off" | null {
  if (raw === undefined || raw === "") return null;
  if (raw === "required" || raw === "off") return raw;
  throw new ConfigError(`--auth must be required or off, got ${JSON.stringify(raw)}`);
}

function origins(raw: string | undefined): string[] {
  if (raw === undefined || raw === "") return [];
  try {
    return parseOrigins(raw);
  } catch (e) {
    if (e instanceof JobwireError) throw new ConfigError(e.message);
    throw e;
  }
}

function integerIn(raw: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function nonEmpty(raw: string | undefined, name: string, fallback: string): string {
  if (raw === undefined) return fallback;
  if (raw.trim() === "") throw new ConfigError(`${name} must not be empty`);
  return raw.trim();
}

function bool(raw: string | undefined, name: string, fallback: boolean): boolean {
  if (raw === undefined || raw === "") return fallback;
  if (/^(true|1|yes|on)$/i.test(raw)) return true;
  if (/^(false|0|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(raw)}`);
}

function oneOf<T extends string>(raw: string | undefined, name: string, fallback: T, allowed: readonly T[]): T {
  if (raw === undefined || raw === "") return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(", ")}, got ${JSON.stringify(raw)}`);
  }
  return raw as T;
}

function logFormat(raw: string | undefined): boolean | null {
  if (raw === undefined || raw === "") return null;
  if (raw === "pretty") return true;
  if (raw === "json") return false;
  throw new ConfigError(`--log-format must be pretty or json, got ${JSON.stringify(raw)}`);
}

function positiveInt(raw: string | undefined, name: string, fallback: number, max: number): number {
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n < 1 || n > max) {
    throw new ConfigError(`${name} must be an integer from 1 to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}
