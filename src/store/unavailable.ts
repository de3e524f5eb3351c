/**
 * Whether an error (or anything in its cause chain, or in an AggregateError's
 * errors: Node reports a refused connection to every address of `localhost`
 * as one) says the database is down, unreachable, out of connections or busy
 * past its wait: an outage the caller should retry, not a bug. Each driver
 * folder names its own codes; this file names no database.
 */
import { isPostgresUnavailable } from "./postgres/unavailable.ts";
import { isSqliteUnavailable } from "./sqlite/unavailable.ts";

export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  if (!(error instanceof Error) || depth > 8) return false;
  if (isPostgresUnavailable(error) || isSqliteUnavailable(error)) return true;
  if (error instanceof AggregateError && error.errors.some((e) => isDatabaseUnavailable(e, depth + 1))) return true;
  return isDatabaseUnavailable(error.cause, depth + 1);
}
