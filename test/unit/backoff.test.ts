import { describe, expect, it } from "vitest";
import { backoffDelayMs, parseBackoff } from "../../src/jobs/backoff.ts";

describe("backoff", () => {
  it("schedule: retry n waits the n-th delay, then the last one", () => {
    const policy = parseBackoff({ type: "schedule", delaysMs: [30_000, 120_000, 480_000, 1_800_000, 7_200_000] });
    expect([1, 2, 3, 4, 5, 6, 9].map((n) => backoffDelayMs(policy, n))).toEqual([
      30_000, 120_000, 480_000, 1_800_000, 7_200_000, 7_200_000, 7_200_000,
    ]);
  });

  it("exponential: grows by factor, stops at the cap, spreads by jitter", () => {
    const policy = parseBackoff({ type: "exponential", baseMs: 1_000, factor: 2, maxMs: 10_000, jitter: 0.5 });
    const mid = () => 0.5;
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelayMs(policy, n, mid))).toEqual([
      1_000, 2_000, 4_000, 8_000, 10_000, 10_000,
    ]);
    expect(backoffDelayMs(policy, 1, () => 0)).toBe(500);
    expect(backoffDelayMs(policy, 1, () => 0.999999)).toBe(1_500);
    expect(backoffDelayMs(policy, 10, () => 0.999999)).toBe(15_000);
  });

  it("fixed: always the same delay", () => {
    expect(backoffDelayMs(parseBackoff({ type: "fixed", delayMs: 250 }), 7)).toBe(250);
  });

  it("rejects malformed policies with the field at fault", () => {
    const bad: [unknown, string][] = [
      [null, "backoff"],
      [{ type: "linear" }, "backoff.type"],
      [{ type: "fixed", delayMs: -1 }, "backoff.delayMs"],
      [{ type: "fixed", delayMs: 1.5 }, "backoff.delayMs"],
      [{ type: "exponential", baseMs: 1000, jitter: 2 }, "backoff.jitter"],
      [{ type: "exponential", baseMs: 1000, maxMs: 10 }, "backoff.maxMs"],
      [{ type: "exponential", baseMs: 1000, factor: 0.5 }, "backoff.factor"],
      [{ type: "schedule", delaysMs: [] }, "backoff.delaysMs"],
      [{ type: "schedule", delaysMs: [1, "2"] }, "backoff.delaysMs[1]"],
    ];
    for (const [input, field] of bad) {
      expect(() => parseBackoff(input), JSON.stringify(input)).toThrow(
        expect.objectContaining({ code: "BAD_USER_INPUT", field }),
      );
    }
  });
});
