/**
 * Queue policy arithmetic: pure functions, no I/O. The store calls them inside
 * the claim transaction (under the queue row lock) with what it read there, so
 * the decisions below are atomic with the claim; the stats call them to
 * estimate waits.
 */
import type { QueueSettings, RateLimit } from "./types.ts";

/**
 * How many jobs a claim may start in `queue` now: 0 when paused, no more than
 * the free concurrency slots, no more than the rate limit leaves in the current
 * window, and never more than `wanted`.
 */
export function claimAllowance(
  queue: Pick<QueueSettings, "paused" | "concurrency" | "rateLimit">,
  running: number,
  recentStarts: readonly number[],
  nowMs: number,
  wanted: number,
): number {
  if (queue.paused) return 0;
  let allowed = wanted;
  if (queue.concurrency !== null) allowed = Math.min(allowed, queue.concurrency - running);
  if (queue.rateLimit !== null) allowed = Math.min(allowed, rateAllowance(queue.rateLimit, recentStarts, nowMs));
  return Math.max(0, allowed);
}

/** Starts left in the window (now - intervalMs, now]. */
export function rateAllowance(limit: RateLimit, recentStarts: readonly number[], nowMs: number): number {
  const windowStart = nowMs - limit.intervalMs;
  const inWindow = recentStarts.filter((t) => t > windowStart).length;
  return Math.max(0, limit.count - inWindow);
}

/**
 * The start log after `started` claims at `nowMs`: only the newest
 * `limit.count` entries can ever matter for the window, so the log never
 * grows past that.
 */
export function recordStarts(
  limit: RateLimit,
  recentStarts: readonly number[],
  nowMs: number,
  started: number,
): number[] {
  const log = [...recentStarts, ...Array.from({ length: started }, () => nowMs)];
  return log.slice(Math.max(0, log.length - limit.count));
}

export interface WaitEstimateInput {
  paused: boolean;
  concurrency: number | null;
  rateLimit: RateLimit | null;
  /** Start log of the rate limit, oldest first (epoch ms). */
  recentStarts: readonly number[];
  /** QUEUED jobs that would start before the new one (priority number <= its own). */
  ahead: number;
  /** Start times (epoch ms) of the jobs RUNNING now. */
  runningStartedAt: readonly number[];
  /** Average run time of recent jobs; null when none has run yet. */
  averageRunMs: number | null;
  nowMs: number;
}

/**
 * Estimated wait of a job enqueued now, assuming jobs keep taking
 * `averageRunMs` and workers claim as soon as the policy allows.
 *
 * Concurrency: with C slots, the slot of a running job frees when it reaches
 * the average run time (at once if it is past it); the k-th job in line
 * (k = ahead, 0-based) gets slot k mod C after floor(k / C) full runs. Without
 * a concurrency limit, C is the number of jobs running now (at least 1): the
 * parallelism the workers show.
 *
 * Rate limit: the k-th future start can happen no earlier than one interval
 * after the start N places before it (N = count), i.e. log[k mod N] +
 * interval * (floor(k / N) + 1), where entries older than one interval (or
 * missing) count as "one interval ago": their place in the window is free now.
 *
 * The estimate is the later of the two.
 */
export function estimateWaitMs(input: WaitEstimateInput): number | null {
  if (input.paused) return null;
  const k = input.ahead;
  const running = input.runningStartedAt.length;
  const slots = input.concurrency ?? Math.max(1, running);

  let concurrencyWait: number | null;
  if (input.averageRunMs === null) {
    // No run time seen: only a job that finds a free slot at once can be estimated.
    concurrencyWait = running + k < slots ? 0 : null;
  } else {
    const avg = input.averageRunMs;
    const frees = input.runningStartedAt
      .map((started) => Math.max(0, avg - (input.nowMs - started)))
      .sort((a, b) => a - b);
    // Running jobs beyond the slots (after a limit was lowered) must finish first.
    const busy = frees.slice(Math.max(0, running - slots));
    const slotFree = [...Array.from({ length: Math.max(0, slots - busy.length) }, () => 0), ...busy];
    concurrencyWait = (slotFree[k % slots] ?? 0) + Math.floor(k / slots) * avg;
  }
  if (concurrencyWait === null) return null;

  let rateWait = 0;
  if (input.rateLimit !== null) {
    const { count, intervalMs } = input.rateLimit;
    // A start older than one interval (or none at all) frees its place now.
    const floor = input.nowMs - intervalMs;
    const log = input.recentStarts.slice(-count).map((t) => Math.max(t, floor));
    const padded = [...Array.from({ length: count - log.length }, () => floor), ...log];
    const earliest = (padded[k % count] ?? floor) + intervalMs * (Math.floor(k / count) + 1);
    rateWait = Math.max(0, earliest - input.nowMs);
  }
  return Math.round(Math.max(concurrencyWait, rateWait));
}

/** The p-th percentile (0..100) of `values` by nearest rank; null for none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? null;
}
