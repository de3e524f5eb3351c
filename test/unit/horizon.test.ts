/**
 * The final-id rule of events/horizon.ts, on hand-made snapshots: ids seen
 * while other transactions were in progress are held back until a later
 * snapshot shows those transactions ended; a barrier is not replaced while it
 * waits (or a steady stream of writers would starve it); a quiet snapshot
 * settles everything at once.
 */
import { describe, expect, it } from "vitest";
import { EventHorizon, parseSnapshot } from "../../src/events/horizon.ts";

const snap = (text: string) => parseSnapshot(text);

describe("parseSnapshot", () => {
  it("reads xmin, xmax and the in-progress list", () => {
    expect(snap("10:20:10,14,15")).toEqual({ xmin: 10n, xmax: 20n, xip: new Set([10n, 14n, 15n]) });
    expect(snap("7:7:")).toEqual({ xmin: 7n, xmax: 7n, xip: new Set() });
  });

  it("refuses anything else", () => {
    for (const bad of ["", "1:2", "a:2:", "1:2:3,x", "1:2:3:4"]) {
      expect(() => snap(bad), bad).toThrow(/not a pg_snapshot/);
    }
  });
});

describe("EventHorizon", () => {
  it("settles everything visible when the database is quiet, and on SQLite", () => {
    const h = new EventHorizon();
    expect(h.advance(snap("5:5:"), "42", "0")).toBe("42");
    expect(h.advance(null, "43", "42")).toBe("43");
    expect(h.pending).toBe(false);
  });

  it("holds ids back until the transactions in progress at the read have ended", () => {
    const h = new EventHorizon();
    // Read 1: ids up to 101 visible, transactions 500 and 501 in progress
    // (one of them may hold id 100, not yet visible).
    expect(h.advance(snap("500:502:500,501"), "101", "99")).toBeNull();
    expect(h.pending).toBe(true);
    // Read 2: 501 still running.
    expect(h.advance(snap("501:503:501,502"), "103", "99")).toBeNull();
    // Read 3: both ended (502 is new and does not matter for the old barrier).
    expect(h.advance(snap("502:504:502"), "104", "99")).toBe("101");
    // A new barrier now waits for 502, covering up to 104.
    expect(h.pending).toBe(true);
    expect(h.advance(snap("504:505:504"), "104", "101")).toBe("104");
  });

  it("does not let a steady stream of writers starve a barrier", () => {
    const h = new EventHorizon();
    let settled = "0";
    let resolved = 0;
    // Every read sees some transaction in progress, but each one ends by the next read.
    for (let i = 0; i < 10; i++) {
      const x = 1000 + i;
      const final = h.advance(snap(`${x}:${x + 1}:${x}`), String(10 * (i + 1)), settled);
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
    expect(h.advance(snap("9:10:9"), "50", "50")).toBeNull();
    expect(h.pending).toBe(false);
  });
});
