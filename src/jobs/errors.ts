/**
 * Domain errors. Each carries a stable, enumerated `code` that the GraphQL
 * layer maps to `extensions.code` in one place; callers branch on `code`, never
 * on message text.
 */

export const ErrorCode = Object.freeze({
  BAD_USER_INPUT: "BAD_USER_INPUT",
  NOT_FOUND: "NOT_FOUND",
  INVALID_TRANSITION: "INVALID_TRANSITION",
  LEASE_LOST: "LEASE_LOST",
  QUEUE_FULL: "QUEUE_FULL",
  SUBSCRIPTION_OVERFLOW: "SUBSCRIPTION_OVERFLOW",
} as const);

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class JobwireError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** The caller sent something outside the documented bounds; nothing was written. */
export class ValidationError extends JobwireError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(ErrorCode.BAD_USER_INPUT, `${field}: ${message}`, { field });
  }
}

export class NotFoundError extends JobwireError {
  constructor(what: string, id: string) {
    super(ErrorCode.NOT_FOUND, `${what} ${id} was not found`, { id });
  }
}

export class InvalidTransitionError extends JobwireError {
  constructor(jobId: string, operation: string, state: string) {
    super(ErrorCode.INVALID_TRANSITION, `cannot ${operation} job ${jobId}: it is ${state}`, {
      jobId,
      operation,
      state,
    });
  }
}

/** The presented lease token is not the job's current lease: the worker must stop. */
export class LeaseLostError extends JobwireError {
  constructor(jobId: string) {
    super(
      ErrorCode.LEASE_LOST,
      `the lease on job ${jobId} is no longer held by this token (expired and re-queued, re-claimed or finished)`,
      { jobId },
    );
  }
}

export class QueueFullError extends JobwireError {
  constructor(queue: string, maxQueued: number) {
    super(ErrorCode.QUEUE_FULL, `queue ${queue} is full (maxQueued ${maxQueued})`, {
      queue,
      maxQueued,
    });
  }
}

/** Normalises anything thrown into an Error, keeping the original as `cause`. */
/**
 * A subscriber fell so far behind that its buffer filled: the server ended the
 * subscription rather than grow memory or drop events. Nothing was lost; the
 * client resubscribes from the last seq (jobEvents) or event id (jobChanged)
 * it received, which `lastSentSeq` / `lastSentEventId` name.
 *
 * `stalled`: the client stopped reading altogether (it answered no ping for a
 * keep-alive interval); the server sends this error on every live
 * subscription of the connection and then closes it with 4408 (see
 * server/websocket.ts).
 */
export class SubscriptionOverflowError extends JobwireError {
  constructor(
    maxBuffer: number,
    resume: { lastSentSeq?: number; lastSentEventId?: string },
    options: { stalled?: boolean } = {},
  ) {
    const how =
      resume.lastSentSeq !== undefined || resume.lastSentEventId === undefined
        ? "resubscribe with afterSeq = the seq of the last event you received"
        : "resubscribe with afterEventId = the id of the last event you received";
    const what = options.stalled
      ? "the subscriber stopped reading (no answer to a ping within the keep-alive interval), so the subscription and its connection were ended"
      : `the subscriber fell behind: it had not read ${maxBuffer} events sent or waiting to be sent, so the subscription was ended`;
    super(ErrorCode.SUBSCRIPTION_OVERFLOW, `${what}; ${how}`, {
      maxBuffer,
      ...resume,
      ...(options.stalled && { stalled: true }),
    });
  }
}

export function coerceError(e: unknown): Error {
  if (e instanceof Error) return e;
  return new Error(typeof e === "string" ? e : `non-error thrown: ${safeString(e)}`, { cause: e });
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
