/**
 * The final-id rule of events/horizon.ts, on hand-made reads: ids seen while
 * transactions were running are held back until a later snapshot has seen
 * every one of them end, including running transactions at or above the
 * snapshot's xmax, which its xip does not list (the case a two-server drain
 * caught: id 5638 drawn by xid 74652 committed after ids 5639… of xid 74650,
 * whose snapshot had xmax 74651). A waiting barrier is not replaced (or a
 * steady stream of writers would starve it); a quiet database still needs a
 * second read, since a transaction that ended between the snapshot and the
 * activity list is visible only to later reads.
 */
import { describe, expect, it } from "vitest";
import { EventHorizon, parseLogRead, parseSnapshot, widen } from "../../src/events/horizon.ts";

const read = (text: string) => parseLogRead(text);

describe("parsing", () => {
  it("reads xmin, xmax, the in-progress list and the running list", () => {
    expect(parseSnapshot("10:20:10,14,15")).toEqual({ xmin: 10n, xmax: 20n, xip: new Set([10n, 14n, 15n]) });
    expect(read("7:7:|")).toEqual({ snapshot: { xmin: 7n, xmax: 7n, xip: new Set() }, running: [] });
    expect(read("10:20:10|10,21").running).toEqual([10n, 21n]);
  });

  it("widens 32-bit backend xids to the snapshot's epoch", () => {
    const epoch = 1n << 32n;
    expect(widen(5n, 3n * epoch + 2n)).toBe(3n * epoch + 5n);
    expect(widen(epoch - 3n, 3n * epoch + 2n)).toBe(3n * epoch - 3n); // just before the wrap
    expect(widen(4n, 4n * epoch - 10n)).toBe(4n * epoch + 4n); // just after it
  });

  it("refuses anything else", () => {
    for (const bad of ["", "1:2", "a:2:", "1:2:3,x", "1:2:3:4"]) expect(() => parseSnapshot(bad), bad).toThrow();
    for (const bad of ["1:2:", "1:2:|x", "1:2:|1,,2"]) expect(() => read(bad), bad).toThrow();
  });
});

describe("EventHorizon", () => {
  it("on SQLite every visible id is final at once", () => {
    const h = new EventHorizon();
    expect(h.advance(null, "43", "42")).toBe("43");
    expect(h.pending).toBe(false);
  });

  it("on a quiet database settles what a read saw at the next read", () => {
    const h = new EventHorizon();
    expect(h.advance(read("5:5:|"), "42", "0")).toBeNull();
    expect(h.pending).toBe(true);
    expect(h.advance(read("5:5:|"), "42", "0")).toBe("42");
    expect(h.pending).toBe(false);
  });

  it("waits for a running transaction at or above xmax, which the snapshot does not list", () => {
    const h = new EventHorizon();
    // 74650 committed (so xmax 74651); 74652 still runs and holds id 5638.
    expect(h.advance(read("74651:74651:|74652"), "5641", "5637")).toBeNull();
    // Later: 74652 still running (and now listed, since 74653 completed).
    expect(h.advance(read("74652:74654:74652|74652"), "5641", "5637")).toBeNull();
    // 74652 ended before this snapshot: everything up to 5641 is final and visible.
    expect(h.advance(read("74655:74655:|"), "5642", "5637")).toBe("5641");
  });

  it("holds ids back until every transaction listed at the read has ended", () => {
    const h = new EventHorizon();
    expect(h.advance(read("500:502:500,501|500,501"), "101", "99")).toBeNull();
    expect(h.advance(read("501:503:501,502|501,502"), "103", "99")).toBeNull();
    expect(h.advance(read("502:504:502|502"), "104", "99")).toBe("101");
    expect(h.pending).toBe(true); // a new barrier, waiting for 502, covers up to 104
    expect(h.advance(read("504:505:504|504"), "104", "101")).toBe("104");
  });

  it("does not let a steady stream of writers starve a barrier", () => {
    const h = new EventHorizon();
    let settled = "0";
    let resolved = 0;
    // Every read sees a transaction running, but each ends by the next read.
    for (let i = 0; i < 10; i++) {
      const x = 1000 + i;
      const final = h.advance(read(`${x}:${x + 1}:${x}|${x}`), String(10 * (i + 1)), settled);
      if (final !== null) {
        settled = final;
        resolved++;
      }
    }
    expect(resolved).toBe(9);
    expect(settled).toBe("90");
  });

  it("sets no barrier when nothing new is visible", () => {
    const h = new EventHorizon();
    expect(h.advance(read("9:10:9|9"), "50", "50")).toBeNull();
    expect(h.pending).toBe(false);
  });
});
