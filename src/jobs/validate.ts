/**
 * Input checks of the job service. Each throws a ValidationError naming the
 * field and the documented bound; they run before anything is written.
 */
import { ValidationError } from "./errors.ts";
import { LIMITS } from "./limits.ts";
import { isJobState } from "./states.ts";
import type { JobState } from "./states.ts";
import type { JsonValue } from "./types.ts";

export function queueName(value: unknown, field = "queue"): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new ValidationError(field, "must be a non-empty string");
  }
  if (value.length > LIMITS.queueNameMaxLength) {
    throw new ValidationError(field, `must be at most ${LIMITS.queueNameMaxLength} characters`);
  }
  if (!LIMITS.queueNamePattern.test(value)) {
    throw new ValidationError(field, "may contain only letters, digits and _ . : -");
  }
  return value;
}

export function integer(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(field, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

export function text(value: unknown, field: string, maxLength: number): string {
  if (typeof value !== "string" || value.length === 0 || value.length > maxLength) {
    throw new ValidationError(field, `must be a string of 1 to ${maxLength} characters`);
  }
  return value;
}

export const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** A Date or an ISO-8601 string with a time zone (a date without one is ambiguous). */
export function date(value: unknown, field: string): Date {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new ValidationError(field, "is an invalid Date");
    return value;
  }
  if (typeof value === "string" && ISO_8601.test(value) && isCalendarValid(value)) {
    const parsed = new Date(value);
    if (!Number.isNaN(parsed.getTime())) return parsed;
  }
  throw new ValidationError(field, "must be an ISO-8601 date-time with a time zone, e.g. 2026-01-31T12:00:00Z");
}

/** JavaScript's Date rolls 2026-02-31 over to March 3rd; we refuse it instead. */
function isCalendarValid(iso: string): boolean {
  const [y, m, d, hh, mm, ss] = [0, 5, 8, 11, 14, 17].map((at, i) => Number(iso.slice(at, at + (i === 0 ? 4 : 2))));
  const day = new Date(Date.UTC(y!, m! - 1, d!));
  const seconds = iso.length > 16 && iso[16] === ":" ? ss! : 0;
  return (
    day.getUTCFullYear() === y &&
    day.getUTCMonth() === m! - 1 &&
    day.getUTCDate() === d &&
    hh! < 24 &&
    mm! < 60 &&
    seconds < 60
  );
}

const MAX_JSON_DEPTH = 64;

/**
 * A JSON value of at most `maxBytes` once encoded. Rejects what JSON.stringify
 * would silently change (NaN, Infinity, undefined, Dates, class instances).
 */
export function json(value: unknown, field: string, maxBytes: number): JsonValue | null {
  if (value === undefined || value === null) return null;
  checkJson(value, field, 0);
  const bytes = Buffer.byteLength(JSON.stringify(value), "utf8");
  if (bytes > maxBytes) {
    throw new ValidationError(field, `is ${bytes} bytes of JSON; the limit is ${maxBytes}`);
  }
  return value as JsonValue;
}

function checkJson(value: unknown, field: string, depth: number): void {
  if (depth > MAX_JSON_DEPTH) throw new ValidationError(field, `is nested deeper than ${MAX_JSON_DEPTH}`);
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) throw new ValidationError(field, "contains a non-finite number");
      return;
    case "object": {
      if (value === null) return;
      if (Array.isArray(value)) {
        for (const item of value) checkJson(item, field, depth + 1);
        return;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) {
        throw new ValidationError(field, "must contain only plain JSON objects, arrays and scalars");
      }
      for (const v of Object.values(value)) checkJson(v, field, depth + 1);
      return;
    }
    default:
      throw new ValidationError(field, `contains a ${typeof value}, which is not JSON`);
  }
}

export function tags(value: unknown, field = "tags"): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.length > LIMITS.tagsMax) {
    throw new ValidationError(field, `must be a list of at most ${LIMITS.tagsMax} strings`);
  }
  const out = value.map((t, i) => text(t, `${field}[${i}]`, LIMITS.tagMaxLength));
  return [...new Set(out)];
}

export function states(value: unknown, field = "states"): JobState[] {
  if (!Array.isArray(value)) throw new ValidationError(field, "must be a list of job states");
  return value.map((s, i) => {
    if (typeof s !== "string" || !isJobState(s)) {
      throw new ValidationError(`${field}[${i}]`, `is not a job state`);
    }
    return s;
  });
}

const JOB_ID = /^[1-9][0-9]{0,18}$/;
const MAX_ID = 2n ** 63n - 1n;

export function jobId(value: unknown, field = "jobId"): string {
  if (typeof value !== "string" || !JOB_ID.test(value) || BigInt(value) > MAX_ID) {
    throw new ValidationError(field, "must be a job id (a positive decimal integer string)");
  }
  return value;
}
