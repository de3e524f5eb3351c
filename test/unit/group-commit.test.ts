/**
 * GroupCommit on its own: calls of one event-loop turn go together, a lone
 * call after one idle turn; calls arriving while a write is in flight go
 * together in the next one (bounded, calls that share a key kept apart); a
 * failed merged write is retried call by call so each gets its own result or
 * error.
 */
import { describe, expect, it } from "vitest";
import { GroupCommit } from "../../src/jobs/group-commit.ts";

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A write that records its batches and finishes when told to. */
function recordingWrite<T>() {
  const batches: T[][] = [];
  const gates: (() => void)[] = [];
  const write = async (calls: readonly T[]): Promise<string[]> => {
    batches.push([...calls]);
    const gate = deferred<void>();
    gates.push(() => gate.resolve());
    await gate.promise;
    return calls.map((c) => `done:${String(c)}`);
  };
  const releaseNext = () => gates.shift()?.();
  return { batches, write, releaseNext };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("GroupCommit", () => {
  it("merges the calls of one turn, then those that arrive while a write is in flight", async () => {
    const w = recordingWrite<number>();
    const group = new GroupCommit<number, string>(w.write, { maxBatchSize: 100 });
    const first = [group.submit(1), group.submit(2)];
    expect(w.batches).toEqual([]); // the write waits for the end of this turn
    await tick();
    await tick();
    expect(w.batches).toEqual([[1, 2]]);
    const rest = [3, 4, 5].map((n) => group.submit(n));
    await tick();
    expect(w.batches).toHaveLength(1); // the others wait for the write in flight
    w.releaseNext();
    expect(await Promise.all(first)).toEqual(["done:1", "done:2"]);
    for (let i = 0; i < 5 && w.batches.length < 2; i++) await tick();
    expect(w.batches).toEqual([
      [1, 2],
      [3, 4, 5],
    ]);
    w.releaseNext();
    expect(await Promise.all(rest)).toEqual(["done:3", "done:4", "done:5"]);
    expect(group.stats).toEqual({ writes: 2, calls: 5, retries: 0 });
  });

  it("writes a lone call after one idle turn", async () => {
    const w = recordingWrite<number>();
    const group = new GroupCommit<number, string>(w.write, { maxBatchSize: 100 });
    const lone = group.submit(7);
    await tick();
    await tick();
    expect(w.batches).toEqual([[7]]);
    w.releaseNext();
    expect(await lone).toBe("done:7");
  });

  /** A write that takes one event-loop turn, so calls submitted together queue behind the first. */
  function slowWrite<T>(batches: T[][]) {
    return async (calls: readonly T[]): Promise<string[]> => {
      batches.push([...calls]);
      await tick();
      return calls.map((c) => `done:${JSON.stringify(c)}`);
    };
  }

  it("bounds a batch by size, and lets a call bigger than the bound go alone", async () => {
    const batches: string[][] = [];
    const group = new GroupCommit<string, string>(slowWrite(batches), { maxBatchSize: 5, sizeOf: (c) => c.length });
    const results = await Promise.all(["x", "aaa", "bb", "cccccccc", "d"].map((c) => group.submit(c)));
    expect(results).toEqual(["x", "aaa", "bb", "cccccccc", "d"].map((c) => `done:"${c}"`));
    // A call that does not fit waits for the next write; later ones may still fit this one.
    expect(batches).toEqual([["x", "aaa", "d"], ["bb"], ["cccccccc"]]);
  });

  it("never puts two calls with a common key in one write; the later one keeps its place for the next", async () => {
    const batches: string[][][] = [];
    const group = new GroupCommit<string[], string>(slowWrite(batches), { maxBatchSize: 100, keysOf: (c) => c });
    await Promise.all([["a"], ["b", "c"], ["c"], ["d"], ["a"]].map((c) => group.submit(c)));
    expect(batches).toEqual([
      [["a"], ["b", "c"], ["d"]],
      [["c"], ["a"]],
    ]);
  });

  it("retries a failed merged write call by call: each call gets its own outcome", async () => {
    const batches: number[][] = [];
    const write = async (calls: readonly number[]): Promise<number[]> => {
      batches.push([...calls]);
      await tick();
      if (calls.includes(13)) throw new Error(`13 is unlucky`);
      return calls.map((c) => c * 10);
    };
    const group = new GroupCommit<number, number>(write, { maxBatchSize: 100 });
    const outcomes = [12, 13, 14].map((n) =>
      group.submit(n).then(
        (v) => ({ v }),
        (e: Error) => ({ e: e.message }),
      ),
    );
    expect(await Promise.all(outcomes)).toEqual([{ v: 120 }, { e: "13 is unlucky" }, { v: 140 }]);
    expect(batches).toEqual([[12, 13, 14], [12], [13], [14]]);
    expect(group.stats).toEqual({ writes: 4, calls: 3, retries: 3 });
  });

  it("rejects a lone call with its own error and keeps going", async () => {
    const group = new GroupCommit<number, number>(
      async (calls) => {
        if (calls[0] === 0) throw new Error("zero");
        return calls.map((c) => c + 1);
      },
      { maxBatchSize: 10 },
    );
    await expect(group.submit(0)).rejects.toThrow("zero");
    expect(await group.submit(1)).toBe(2);
  });
});
