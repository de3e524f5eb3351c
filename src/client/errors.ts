/**
 * Errors the SDK raises. A GraphQL error keeps the server's `extensions.code`
 * (BAD_USER_INPUT, NOT_FOUND, INVALID_TRANSITION, LEASE_LOST, QUEUE_FULL, …;
 * see the ErrorCode enum of the schema) so callers branch on `code`, never on
 * the message. Failures below GraphQL get codes of their own.
 */
import type { GraphQLFormattedError } from "graphql";
import type { ErrorCode } from "./__generated__/graphql.ts";

/** What can go wrong before a GraphQL answer arrives. */
export type TransportErrorCode =
  /** The server could not be reached, or the connection broke mid-request. */
  | "NETWORK_ERROR"
  /** The server answered with something that is not a GraphQL response (e.g. HTTP 502 from a proxy). */
  | "BAD_RESPONSE";

export type ClientErrorCode = ErrorCode | TransportErrorCode;

export class JobwireRequestError extends Error {
  /** extensions.code of the first GraphQL error, or a TransportErrorCode. */
  readonly code: ClientErrorCode;
  /** extensions of the first GraphQL error (field, jobId, state, …), without `code`. */
  readonly details: Readonly<Record<string, unknown>>;
  /** Every GraphQL error of the response ([] for transport errors). */
  readonly errors: readonly GraphQLFormattedError[];
  /** HTTP status, when there was an HTTP answer. */
  readonly status: number | undefined;

  constructor(
    code: ClientErrorCode,
    message: string,
    options: {
      details?: Record<string, unknown>;
      errors?: readonly GraphQLFormattedError[];
      status?: number;
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "JobwireRequestError";
    this.code = code;
    this.details = options.details ?? {};
    this.errors = options.errors ?? [];
    this.status = options.status;
  }

  /** From the `errors` of a GraphQL response (at least one). */
  static fromGraphQL(errors: readonly GraphQLFormattedError[], status?: number): JobwireRequestError {
    const first = errors[0];
    const { code, ...details } = (first?.extensions ?? {}) as Record<string, unknown>;
    return new JobwireRequestError(
      (typeof code === "string" ? code : "INTERNAL_SERVER_ERROR") as ClientErrorCode,
      errors.map((e) => e.message).join("; ") || "GraphQL error",
      { details, errors, ...(status !== undefined && { status }) },
    );
  }
}

/** Whether `error` is a JobwireRequestError with the given code. */
export function hasErrorCode(error: unknown, code: ClientErrorCode): error is JobwireRequestError {
  return error instanceof JobwireRequestError && error.code === code;
}
