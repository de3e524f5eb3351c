/**
 * Retry backoff policies. A policy is plain JSON (stored on the job) so the
 * delay of a retry is decided from what the job says, not from process state.
 *
 * - fixed:       every retry waits `delayMs`.
 * - exponential: retry n waits min(maxMs, baseMs * factor^(n-1)), then jitter
 *                spreads it by up to ±jitter (0..1) of itself.
 * - schedule:    retry n waits delaysMs[n-1]; past the end, the last entry.
 *                "retry on 30s, 2m, 8m, 30m, 2h" is { type: "schedule",
 *                delaysMs: [30000, 120000, 480000, 1800000, 7200000] } with maxAttempts 6.
 */
import { ValidationError } from "./errors.ts";

export type BackoffPolicy =
  | { type: "fixed"; delayMs: number }
  | { type: "exponential"; baseMs: number; factor: number; maxMs: number; jitter: number }
  | { type: "schedule"; delaysMs: number[] };

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({
  type: "exponential",
  baseMs: 1_000,
  factor: 2,
  maxMs: 3_600_000,
  jitter: 0.1,
}) as BackoffPolicy;

/** Longest delay any policy may ask for: 30 days. */
export const MAX_BACKOFF_MS = 30 * 24 * 3_600_000;
export const MAX_SCHEDULE_LENGTH = 100;

/**
 * Delay before retry number `attempt` (1 = the retry after the first failed run).
 * `random` returns [0, 1); inject it for deterministic tests.
 */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(attempt));
  switch (policy.type) {
    case "fixed":
      return policy.delayMs;
    case "schedule":
      return policy.delaysMs[Math.min(n, policy.delaysMs.length) - 1] ?? 0;
    case "exponential": {
      const raw = Math.min(policy.maxMs, policy.baseMs * Math.pow(policy.factor, n - 1));
      const spread = raw * policy.jitter * (2 * random() - 1);
      return Math.max(0, Math.min(MAX_BACKOFF_MS, Math.round(raw + spread)));
    }
  }
}

/** Checks a policy from outside (API input or stored settings); returns a clean copy. */
export function parseBackoff(input: unknown, field = "backoff"): BackoffPolicy {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new ValidationError(field, "must be an object with a type of fixed, exponential or schedule");
  }
  const p = input as Record<string, unknown>;
  switch (p.type) {
    case "fixed":
      return { type: "fixed", delayMs: delay(p.delayMs, `${field}.delayMs`) };
    case "exponential": {
      const baseMs = delay(p.baseMs, `${field}.baseMs`);
      const factor = p.factor === undefined ? 2 : p.factor;
      if (typeof factor !== "number" || !Number.isFinite(factor) || factor < 1 || factor > 100) {
        throw new ValidationError(`${field}.factor`, "must be a number from 1 to 100");
      }
      const maxMs = p.maxMs === undefined ? MAX_BACKOFF_MS : delay(p.maxMs, `${field}.maxMs`);
      if (maxMs < baseMs) throw new ValidationError(`${field}.maxMs`, "must be at least baseMs");
      const jitter = p.jitter === undefined ? 0 : p.jitter;
      if (typeof jitter !== "number" || !(jitter >= 0 && jitter <= 1)) {
        throw new ValidationError(`${field}.jitter`, "must be a number from 0 to 1");
      }
      return { type: "exponential", baseMs, factor, maxMs, jitter };
    }
    case "schedule": {
      const list = p.delaysMs;
      if (!Array.isArray(list) || list.length === 0 || list.length > MAX_SCHEDULE_LENGTH) {
        throw new ValidationError(
          `${field}.delaysMs`,
          `must be a list of 1 to ${MAX_SCHEDULE_LENGTH} delays in milliseconds`,
        );
      }
      return { type: "schedule", delaysMs: list.map((d, i) => delay(d, `${field}.delaysMs[${i}]`)) };
    }
    default:
      throw new ValidationError(`${field}.type`, "must be fixed, exponential or schedule");
  }
}

function delay(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_BACKOFF_MS) {
    throw new ValidationError(field, `must be an integer number of milliseconds from 0 to ${MAX_BACKOFF_MS}`);
  }
  return value;
}
