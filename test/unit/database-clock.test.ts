/** clock.ts: the store clock that follows a reference (the database's clock) by offset. */
import { describe, expect, it } from "vitest";
import { DatabaseClock, SharedClocks } from "../../src/store/clock.ts";

describe("DatabaseClock", () => {
  it("runs on the reference's time, advanced by the monotonic clock between reads", async () => {
    const offset = -10 * 60_000; // the reference is 10 minutes behind this process
    const clock = await DatabaseClock.start(async () => Date.now() + offset);
    try {
      expect(Math.abs(clock.now().getTime() - (Date.now() + offset))).toBeLessThan(20);
      expect(Math.abs(clock.skewMs() + offset)).toBeLessThan(20);
      const a = clock.now().getTime();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const elapsed = clock.now().getTime() - a;
      expect(elapsed).toBeGreaterThanOrEqual(49);
      expect(elapsed).toBeLessThan(200);
    } finally {
      clock.close();
    }
  });

  it("keeps the read with the shortest round trip", async () => {
    // Three reads: slow ones answer a time far off; the fast one the true time.
    const delays = [40, 0, 40];
    let n = 0;
    const clock = await DatabaseClock.start(async () => {
      const delay = delays[n++ % delays.length]!;
      await new Promise((resolve) => setTimeout(resolve, delay));
      return delay === 0 ? Date.now() : Date.now() + 60_000;
    });
    try {
      expect(Math.abs(clock.skewMs())).toBeLessThan(20);
    } finally {
      clock.close();
    }
  });

  it("a re-read follows the reference; a failed one keeps the last offset and is reported", async () => {
    let offset = 0;
    let fail = false;
    const errors: unknown[] = [];
    const clock = await DatabaseClock.start(
      async () => {
        if (fail) throw new Error("database away");
        return Date.now() + offset;
      },
      { onError: (e) => errors.push(e), resyncMs: 60_000 },
    );
    try {
      offset = 5_000;
      await clock.sync();
      expect(Math.abs(clock.skewMs() + 5_000)).toBeLessThan(20);
      fail = true;
      await clock.sync();
      expect(errors).toHaveLength(1);
      expect(Math.abs(clock.skewMs() + 5_000)).toBeLessThan(20);
    } finally {
      clock.close();
    }
  });

  it("refuses to start on a reference it cannot read", async () => {
    await expect(DatabaseClock.start(async () => Number.NaN)).rejects.toThrow(/database clock/);
    await expect(
      DatabaseClock.start(async () => {
        throw new Error("connection refused");
      }),
    ).rejects.toThrow("connection refused");
  });
});

describe("SharedClocks", () => {
  it("one clock per key, read through any open user, closed with the last; never backwards", async () => {
    const clocks = new SharedClocks();
    const reads: string[] = [];
    const reader = (name: string) => async () => {
      reads.push(name);
      return Date.now() + 1_000;
    };
    const a = await clocks.acquire("db", reader("a"), { resyncMs: 60_000 });
    const b = await clocks.acquire("db", reader("b"), { resyncMs: 60_000 });
    expect(reads).toEqual(["a", "a", "a"]); // one start (3 samples), through the first user
    let previous = 0;
    for (let i = 0; i < 1_000; i++) {
      const t = (i % 2 === 0 ? a : b).now().getTime();
      expect(t).toBeGreaterThanOrEqual(previous);
      previous = t;
    }
    a.close();
    expect(Math.abs(b.now().getTime() - (Date.now() + 1_000))).toBeLessThan(20);
    b.close();
    const c = await clocks.acquire("db", reader("c"), { resyncMs: 60_000 });
    expect(reads.slice(3)).toEqual(["c", "c", "c"]); // a new clock after the last close
    c.close();
  });

  it("a failed first read fails every waiting user and leaves no clock behind", async () => {
    const clocks = new SharedClocks();
    const failing = async (): Promise<number> => {
      throw new Error("connection refused");
    };
    await expect(clocks.acquire("db", failing)).rejects.toThrow("connection refused");
    const ok = await clocks.acquire("db", async () => Date.now());
    expect(Math.abs(ok.now().getTime() - Date.now())).toBeLessThan(20);
    ok.close();
  });
});
