/**
 * The bounded iterator under every subscription (subscriptions/live-stream.ts):
 * replay is pulled page by page; live items wait in a buffer of at most
 * maxBuffer; one more ends the stream with the caller's overflow error (and
 * frees the buffer); return() settles a consumer parked in next() at once and
 * runs the cleanup exactly once, however the stream ends.
 */
import { describe, expect, it } from "vitest";
import { LiveStream } from "../../src/subscriptions/live-stream.ts";

const overflow = () => new Error("overflow");

describe("LiveStream", () => {
  it("pulls replay pages until the source goes live, then yields pushed items in order", async () => {
    let ended = 0;
    const stream = new LiveStream<number>(10, () => ended++);
    const pages = [[1, 2], [3]];
    stream.refill = async () => {
      const page = pages.shift() ?? [];
      if (pages.length === 0) stream.refill = null;
      return page;
    };
    const got: number[] = [];
    for (let i = 0; i < 3; i++) got.push((await stream.next()).value as number);
    const pending = stream.next();
    stream.push(4, overflow);
    stream.push(5, overflow);
    got.push((await pending).value as number, (await stream.next()).value as number);
    expect(got).toEqual([1, 2, 3, 4, 5]);
    expect(ended).toBe(0);
  });

  it("ends with the overflow error once maxBuffer items wait, dropping them", async () => {
    let ended = 0;
    const stream = new LiveStream<number>(3, () => ended++);
    for (let i = 1; i <= 3; i++) stream.push(i, overflow);
    expect(stream.open).toBe(true);
    stream.push(4, overflow);
    expect(stream.open).toBe(false);
    expect(ended).toBe(1);
    await expect(stream.next()).rejects.toThrow("overflow");
    expect(await stream.next()).toEqual({ value: undefined, done: true });
    stream.push(5, overflow); // ignored once ended
    await stream.return();
    expect(ended).toBe(1);
  });

  it("settles a consumer parked in next() when returned, and cleans up once", async () => {
    let ended = 0;
    const stream = new LiveStream<number>(3, () => ended++);
    const parked = stream.next();
    await stream.return();
    expect(await parked).toEqual({ value: undefined, done: true });
    await stream.return();
    expect(ended).toBe(1);
  });

  it("fails the stream when a replay read fails", async () => {
    const stream = new LiveStream<number>(3, () => {});
    stream.refill = async () => {
      throw new Error("database down");
    };
    await expect(stream.next()).rejects.toThrow("database down");
  });

  it("keeps one pending signal per key, and only the latest value", async () => {
    const signals = new LiveStream<string>(5, () => {});
    for (const q of ["a", "b", "a", "a"]) signals.pushUnique(q, (x, y) => x === y);
    expect([(await signals.next()).value, (await signals.next()).value]).toEqual(["a", "b"]);
    const latest = new LiveStream<number>(1, () => {});
    latest.offerLatest(1);
    latest.offerLatest(2);
    expect((await latest.next()).value).toBe(2);
  });

  it("counts items taken but not confirmed read against maxBuffer once reads are confirmed", async () => {
    const stream = new LiveStream<number>(3, () => {});
    stream.confirmReads();
    for (let i = 1; i <= 3; i++) stream.push(i, overflow);
    for (let i = 1; i <= 3; i++) expect((await stream.next()).value).toBe(i);
    // Nothing waits, but none of the three is known read: still full.
    expect(stream.unread).toBe(3);
    stream.confirmRead(2);
    expect(stream.unread).toBe(1);
    stream.confirmRead(1); // counts never go back
    expect(stream.unread).toBe(1);
    stream.push(4, overflow);
    stream.push(5, overflow);
    expect(stream.open).toBe(true);
    stream.push(6, overflow);
    expect(stream.open).toBe(false);
    await expect(stream.next()).rejects.toThrow("overflow");
  });

  it("without read confirmation, only what waits counts", async () => {
    const stream = new LiveStream<number>(2, () => {});
    for (let i = 1; i <= 10; i++) {
      stream.push(i, overflow);
      expect((await stream.next()).value).toBe(i);
    }
    expect(stream.open).toBe(true);
    expect(stream.unread).toBe(0);
  });

  it("does not count replayed items as unread once taken", async () => {
    const stream = new LiveStream<number>(3, () => {});
    stream.confirmReads();
    const pages = [
      [1, 2, 3],
      [4, 5],
    ];
    stream.refill = async () => {
      const page = pages.shift() ?? [];
      if (pages.length === 0) stream.refill = null;
      return page;
    };
    for (let i = 1; i <= 5; i++) expect((await stream.next()).value).toBe(i);
    expect(stream.unread).toBe(0);
    for (let i = 6; i <= 8; i++) stream.push(i, overflow);
    expect(stream.open).toBe(true);
    for (let i = 6; i <= 8; i++) expect((await stream.next()).value).toBe(i);
    expect(stream.unread).toBe(3); // live items count until confirmed
    stream.push(9, overflow);
    expect(stream.open).toBe(false);
  });
});
