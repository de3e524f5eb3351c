/** The queue policy arithmetic of src/queues/policy.ts. */
import { describe, expect, it } from "vitest";
import { claimAllowance, estimateWaitMs, percentile, rateAllowance, recordStarts } from "../../src/queues/policy.ts";

const open = { paused: false, concurrency: null, rateLimit: null };

describe("claimAllowance", () => {
  it("gives what is wanted when nothing limits it", () => {
    expect(claimAllowance(open, 50, [], 0, 10)).toBe(10);
  });
  it("gives nothing from a paused queue", () => {
    expect(claimAllowance({ ...open, paused: true }, 0, [], 0, 10)).toBe(0);
  });
  it("gives the free concurrency slots, never a negative number", () => {
    expect(claimAllowance({ ...open, concurrency: 3 }, 1, [], 0, 10)).toBe(2);
    expect(claimAllowance({ ...open, concurrency: 3 }, 5, [], 0, 10)).toBe(0);
  });
  it("gives what the rate window leaves, and the smaller of the two limits", () => {
    const rateLimit = { count: 5, intervalMs: 1_000 };
    // Starts at 100, 200, 300 are inside (50, 1050]; 0 is not.
    expect(claimAllowance({ ...open, rateLimit }, 0, [0, 100, 200, 300], 1_050, 10)).toBe(2);
    expect(claimAllowance({ ...open, rateLimit, concurrency: 1 }, 0, [], 0, 10)).toBe(1);
  });
});

describe("rate window", () => {
  const limit = { count: 2, intervalMs: 1_000 };
  it("counts starts in (now - interval, now]: a start exactly one interval ago has left", () => {
    expect(rateAllowance(limit, [1_000, 1_500], 2_000)).toBe(1);
    expect(rateAllowance(limit, [1_000, 1_500], 1_999)).toBe(0);
  });
  it("keeps only the newest `count` starts", () => {
    expect(recordStarts(limit, [1, 2], 10, 1)).toEqual([2, 10]);
    expect(recordStarts(limit, [], 10, 5)).toEqual([10, 10]);
    expect(recordStarts({ count: 5, intervalMs: 1 }, [1], 10, 2)).toEqual([1, 10, 10]);
  });
});

describe("estimateWaitMs", () => {
  const base = {
    paused: false,
    concurrency: 2,
    rateLimit: null,
    recentStarts: [],
    ahead: 0,
    runningStartedAt: [],
    averageRunMs: 10_000,
    nowMs: 100_000,
  };
  it("is 0 with a free slot and nobody ahead", () => {
    expect(estimateWaitMs(base)).toBe(0);
  });
  it("waits for the earliest slot, then whole runs per round of slots", () => {
    // Two running, 4 s and 8 s into 10 s runs: slots free in 2 s and 6 s.
    const running = { ...base, runningStartedAt: [92_000, 96_000] };
    expect(estimateWaitMs({ ...running, ahead: 0 })).toBe(2_000);
    expect(estimateWaitMs({ ...running, ahead: 1 })).toBe(6_000);
    expect(estimateWaitMs({ ...running, ahead: 2 })).toBe(12_000);
    expect(estimateWaitMs({ ...running, ahead: 5 })).toBe(26_000);
  });
  it("follows the rate limit when it is the tighter bound", () => {
    const rated = { ...base, concurrency: null, rateLimit: { count: 2, intervalMs: 10_000 }, averageRunMs: 10 };
    expect(estimateWaitMs({ ...rated, ahead: 0 })).toBe(0);
    expect(estimateWaitMs({ ...rated, ahead: 2 })).toBe(10_000);
    // Window full since 95 s and 99 s: the next start at 105 s, the third at 115 s.
    expect(estimateWaitMs({ ...rated, recentStarts: [95_000, 99_000], ahead: 0 })).toBe(5_000);
    expect(estimateWaitMs({ ...rated, recentStarts: [95_000, 99_000], ahead: 2 })).toBe(15_000);
  });
  it("is unknown when paused, or busy with no run time seen", () => {
    expect(estimateWaitMs({ ...base, paused: true })).toBeNull();
    expect(estimateWaitMs({ ...base, averageRunMs: null, runningStartedAt: [1, 2] })).toBeNull();
    expect(estimateWaitMs({ ...base, averageRunMs: null })).toBe(0);
  });
});

describe("percentile", () => {
  it("takes the nearest rank", () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 95)).toBe(95);
    expect(percentile([5, 1, 3], 50)).toBe(3);
    expect(percentile([], 95)).toBeNull();
  });
});
