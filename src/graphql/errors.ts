/**
 * Domain errors → GraphQL errors, in one place.
 *
 * - JobwireError: its enumerated code becomes `extensions.code`, and its
 *   details (field, state, jobId, …) join the extensions.
 * - Errors GraphQL itself raised (parse, validation, variable coercion, the
 *   query limits of limits.ts): passed through with their own codes.
 * - An outage (store/unavailable.ts: the database is down, unreachable, out
 *   of connections, or SQLite stayed locked past its busy wait): UNAVAILABLE
 *   with `retryable: true` and an errorId, so a client can tell it from a bug
 *   and retry (HTTP 503 when the response has no data: server/apollo.ts).
 *   Logged as a warning with the same errorId.
 * - Anything else is a bug: the client gets a masked INTERNAL_SERVER_ERROR
 *   with an errorId, and the log gets the error with the same errorId.
 */
import { randomUUID } from "node:crypto";
import { unwrapResolverError } from "@apollo/server/errors";
import { GraphQLError } from "graphql";
import type { GraphQLFormattedError } from "graphql";
import type { Logger } from "pino";
import { JobwireError } from "../jobs/errors.ts";
import { isDatabaseUnavailable } from "../store/unavailable.ts";

/** extensions.code of an outage the caller should retry. */
export const UNAVAILABLE = "UNAVAILABLE";

export function createFormatError(logger: Logger) {
  return function formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
    const original = unwrapResolverError(error);
    const where = {
      ...(formatted.locations && { locations: formatted.locations }),
      ...(formatted.path && { path: formatted.path }),
    };
    if (original instanceof JobwireError) {
      return { message: original.message, ...where, extensions: { ...original.details, code: original.code } };
    }
    if (formatted.extensions?.code === "GRAPHQL_PARSE_FAILED") return publicParseError(formatted);
    if (original instanceof GraphQLError) {
      const cause = original.originalError;
      // A domain error raised while coercing input (e.g. in a scalar).
      if (cause instanceof JobwireError) {
        return { message: cause.message, ...where, extensions: { ...cause.details, code: cause.code } };
      }
      // Raised by GraphQL or by us on purpose: it carries its own code.
      if (cause === undefined || cause === null || cause instanceof GraphQLError || "code" in original.extensions) {
        return formatted;
      }
    }
    const errorId = randomUUID();
    if (
      isDatabaseUnavailable(original) ||
      (original instanceof GraphQLError && isDatabaseUnavailable(original.originalError))
    ) {
      logger.warn({ err: original, errorId, path: formatted.path }, "the database is unavailable");
      return {
        message: `the database is unavailable or busy; retry later (errorId ${errorId})`,
        ...where,
        extensions: { code: UNAVAILABLE, retryable: true, errorId },
      };
    }
    logger.error({ err: original, errorId, path: formatted.path }, "unexpected error in a GraphQL request");
    return {
      message: `Internal server error (errorId ${errorId})`,
      ...where,
      extensions: { code: "INTERNAL_SERVER_ERROR", errorId },
    };
  };
}

/**
 * A parse failure as the client sees it: graphql-js's own syntax errors pass
 * (they name the token and where); anything else the parser threw (a
 * 5,000-deep list literal overflows its recursion: "Maximum call stack size
 * exceeded") gets one generic message instead of the runtime's.
 */
export function publicParseError(formatted: GraphQLFormattedError): GraphQLFormattedError {
  if (formatted.message.startsWith("Syntax Error")) return formatted;
  return {
    message: "the document could not be parsed: it is nested too deeply or is too large",
    extensions: { code: "GRAPHQL_PARSE_FAILED" },
  };
}

const SUGGESTION = / Did you mean .*\?$/;

/** A validation message without graphql-js's "Did you mean …?" (which names schema fields). */
export function withoutSuggestions(message: string): string {
  return message.replace(SUGGESTION, "");
}
