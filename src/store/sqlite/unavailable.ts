/**
 * Which better-sqlite3 errors mean "the file is locked by another connection
 * past the busy window", so the caller should retry (graphql/errors.ts maps
 * them to UNAVAILABLE): SQLITE_BUSY and SQLITE_LOCKED with their extended
 * codes (SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED_SHAREDCACHE, …).
 */
export function isSqliteUnavailable(error: Error & { code?: unknown }): boolean {
  return typeof error.code === "string" && /^SQLITE_(BUSY|LOCKED)(_|$)/.test(error.code);
}
