/**
 * Which node-postgres errors mean "the database is unreachable or cannot take
 * this connection now", so the caller should retry (graphql/errors.ts maps
 * them to UNAVAILABLE), as opposed to a bug or bad input.
 *
 * - Socket errors of connecting or of a connection that broke: ECONNREFUSED
 *   (server down), ECONNRESET / EPIPE / ETIMEDOUT / EHOSTUNREACH /
 *   ENETUNREACH / ENOTFOUND / EAI_AGAIN.
 * - SQLSTATE class 08 (connection exception), 57P01 admin_shutdown, 57P02
 *   crash_shutdown, 57P03 cannot_connect_now (starting up / shutting down),
 *   53300 too_many_connections, 53000 insufficient_resources.
 * - node-postgres's own errors without a code: "Connection terminated
 *   unexpectedly" (the server went away mid-query), "Connection terminated"
 *   and "timeout exceeded when trying to connect" (pg-pool: no connection
 *   within connectionTimeoutMillis, i.e. the pool is exhausted or the host
 *   does not answer).
 */
const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
const SQLSTATES = new Set(["57P01", "57P02", "57P03", "53300", "53000"]);
const MESSAGES = [
  /^Connection terminated/,
  /^timeout exceeded when trying to connect/,
  /^Client has encountered a connection error and is not queryable/,
];

export function isPostgresUnavailable(error: Error & { code?: unknown }): boolean {
  const code = typeof error.code === "string" ? error.code : "";
  if (SOCKET_CODES.has(code) || SQLSTATES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return true;
  return code === "" && MESSAGES.some((m) => m.test(error.message));
}
