/**
 * readyHint: which queues a committed write made ready, and where it freed a
 * running slot; nothing for writes that did neither.
 */
import { describe, expect, it } from "vitest";
import { readyHint } from "../../src/events/ready-hint.ts";
import type { JobState } from "../../src/jobs/states.ts";
import type { Job, JobEvent } from "../../src/jobs/types.ts";

let nextId = 1;
function event(jobId: string, fromState: JobState | null, toState: JobState): JobEvent {
  return {
    id: String(nextId++),
    jobId,
    seq: 1,
    type: "enqueued",
    fromState,
    toState,
    attempt: 0,
    data: null,
    createdAt: new Date(0),
  };
}
const job = (id: string, queue: string) => ({ id, queue }) as Job;

describe("readyHint", () => {
  it("names the queues that got a QUEUED job, and those where a running job ended", () => {
    expect(
      readyHint(
        [event("1", null, "QUEUED"), event("2", "RUNNING", "SUCCEEDED"), event("3", "RUNNING", "SCHEDULED")],
        [job("1", "mail"), job("2", "gpu"), job("3", "gpu")],
      ),
    ).toEqual({ queues: ["mail"], freed: ["gpu"] });
  });

  it("says any queue may have work when the write reports no jobs (a promotion)", () => {
    const promoted = event("7", "SCHEDULED", "QUEUED");
    expect(readyHint([promoted], [])).toEqual({ queues: null, freed: [] });
  });

  it("is null for writes that readied nothing and freed nothing", () => {
    expect(readyHint([event("1", "QUEUED", "RUNNING")], [job("1", "mail")])).toBeNull();
    expect(readyHint([event("1", null, "SCHEDULED")], [job("1", "mail")])).toBeNull();
    expect(readyHint([], [])).toBeNull();
  });
});
