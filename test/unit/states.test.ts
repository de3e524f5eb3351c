import { describe, expect, it } from "vitest";
import { ALL_STATES, canTransition, isTerminal, TERMINAL_STATES, TRANSITIONS } from "../../src/jobs/states.ts";

describe("transition table", () => {
  it("never leaves a terminal state except by retry (FAILED/CANCELLED → QUEUED)", () => {
    for (const [operation, t] of Object.entries(TRANSITIONS)) {
      for (const from of t.from) {
        if (isTerminal(from)) {
          expect(operation).toBe("retry");
          expect(from).not.toBe("SUCCEEDED");
        }
      }
    }
  });

  it("matches the lifecycle of the design brief", () => {
    expect(canTransition("claim", "QUEUED", "RUNNING")).toBe(true);
    expect(canTransition("claim", "SCHEDULED", "RUNNING")).toBe(false);
    expect(canTransition("complete", "RUNNING", "SUCCEEDED")).toBe(true);
    expect(canTransition("complete", "QUEUED", "SUCCEEDED")).toBe(false);
    expect(canTransition("fail", "RUNNING", "SCHEDULED")).toBe(true);
    expect(canTransition("fail", "RUNNING", "FAILED")).toBe(true);
    expect(canTransition("cancel", "SUCCEEDED", "CANCELLED")).toBe(false);
    expect(canTransition("retry", "SUCCEEDED", "QUEUED")).toBe(false);
    expect(canTransition("retry", "FAILED", "QUEUED")).toBe(true);
    // A worker gives back an unstarted (prefetched) job: back to QUEUED, or CANCELLED after a cancel request.
    expect(canTransition("release", "RUNNING", "QUEUED")).toBe(true);
    expect(canTransition("release", "RUNNING", "CANCELLED")).toBe(true);
    expect(canTransition("release", "QUEUED", "QUEUED")).toBe(false);
    expect(canTransition("release", "RUNNING", "SCHEDULED")).toBe(false);
    expect(TERMINAL_STATES).toEqual(["SUCCEEDED", "FAILED", "CANCELLED"]);
    expect(ALL_STATES).toHaveLength(6);
  });
});
