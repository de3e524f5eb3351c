/**
 * The store's clock: the one "now" for runAt, lease expiry, backoff, promotion,
 * sweeps and the timestamps written with them (README, "Clocks").
 *
 * - SQLite has one owning server per file, so its clock is that process's
 *   wall clock (`systemClock`). A restart under a clock that jumped is handled
 *   where the file is opened (sqlite/leases.ts).
 * - PostgreSQL is shared by many servers, whose wall clocks may disagree by
 *   minutes. Every server therefore runs on the database's clock
 *   (`DatabaseClock`): it reads `clock_timestamp()` once in a while, and
 *   between two reads advances it by the process's monotonic clock, so a
 *   server whose own clock is wrong, or jumps, still stamps and compares the
 *   database's time. Reading the database on every call would cost a round
 *   trip per decision; the offset costs nothing and is off by at most half a
 *   round trip (sub-millisecond on one host) plus the monotonic drift between
 *   two reads (parts per million).
 */

export interface StoreClock {
  now(): Date;
  /** Stops any background reads. */
  close(): void;
}

export const systemClock: StoreClock = Object.freeze({
  now: () => new Date(),
  close: () => {},
});

/** Reads the reference clock once, in epoch milliseconds. */
export type ReadClock = () => Promise<number>;

export interface DatabaseClockOptions {
  /** How often the reference is read again (default 10 s). */
  resyncMs?: number;
  /** Reads per sync; the one with the shortest round trip is kept (default 3). */
  samples?: number;
  /** A failed re-read (database away): the clock keeps its last offset. */
  onError?: (error: unknown) => void;
}

interface Anchor {
  /** Reference time (epoch ms) at `mono`. */
  reference: number;
  /** performance.now() at the middle of the read that gave `reference`. */
  mono: number;
  /** Round trip of that read (ms): the anchor is off by at most half of it. */
  roundTrip: number;
}

export class DatabaseClock implements StoreClock {
  private anchor: Anchor;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private last = 0;

  private constructor(
    private readonly read: ReadClock,
    first: Anchor,
    private readonly options: DatabaseClockOptions,
  ) {
    this.anchor = first;
  }

  /** Reads the reference (fails when it cannot), then keeps it fresh in the background. */
  static async start(read: ReadClock, options: DatabaseClockOptions = {}): Promise<DatabaseClock> {
    const clock = new DatabaseClock(read, await sample(read, options.samples ?? 3), options);
    clock.timer = setInterval(() => void clock.sync(), options.resyncMs ?? 10_000);
    clock.timer.unref();
    return clock;
  }

  now(): Date {
    // Never backwards: a re-read may move the anchor back by its error (up to
    // half a round trip), and a start must never be stamped before a finish
    // this process stamped earlier (queue concurrency and rate limits compare them).
    const ms = Math.max(this.last, Math.round(this.anchor.reference + (performance.now() - this.anchor.mono)));
    this.last = ms;
    return new Date(ms);
  }

  /** How far this process's wall clock is ahead of the reference (ms; negative = behind). */
  skewMs(): number {
    return Date.now() - this.now().getTime();
  }

  /** Reads the reference again now (also what the timer does). */
  sync(): Promise<void> {
    this.syncing ??= sample(this.read, this.options.samples ?? 3)
      .then(
        (anchor) => {
          this.anchor = anchor;
        },
        (e: unknown) => this.options.onError?.(e),
      )
      .finally(() => {
        this.syncing = undefined;
      });
    return this.syncing;
  }

  close(): void {
    clearInterval(this.timer);
  }
}

/**
 * One DatabaseClock per database per process, shared by every store opened on
 * it (and closed with the last), so that stores of one process stamp one
 * non-decreasing time: two clocks each off by their own fraction of a
 * millisecond could stamp a claim's start before the finish it counted.
 */
export class SharedClocks {
  private readonly clocks = new Map<string, { clock: Promise<DatabaseClock>; readers: Set<ReadClock> }>();

  /** `read` reads through the caller's connections; the clock reads through any open caller's. */
  async acquire(key: string, read: ReadClock, options: DatabaseClockOptions = {}): Promise<StoreClock> {
    // A distinct function per caller, so one caller's close removes only its own.
    const mine: ReadClock = () => read();
    let shared = this.clocks.get(key);
    if (shared) shared.readers.add(mine);
    else {
      const readers = new Set<ReadClock>([mine]);
      const readAny: ReadClock = () => {
        const first = readers.values().next();
        return first.done ? Promise.reject(new Error("no open store to read the clock through")) : first.value();
      };
      shared = { clock: DatabaseClock.start(readAny, options), readers };
      this.clocks.set(key, shared);
    }
    const entry = shared;
    let clock: DatabaseClock;
    try {
      clock = await entry.clock;
    } catch (e) {
      entry.readers.delete(mine);
      if (this.clocks.get(key) === entry) this.clocks.delete(key);
      throw e;
    }
    let closed = false;
    return {
      now: () => clock.now(),
      close: () => {
        if (closed) return;
        closed = true;
        entry.readers.delete(mine);
        if (entry.readers.size === 0 && this.clocks.get(key) === entry) {
          this.clocks.delete(key);
          clock.close();
        }
      },
    };
  }
}

async function sample(read: ReadClock, samples: number): Promise<Anchor> {
  let best: Anchor | undefined;
  for (let i = 0; i < samples; i++) {
    const before = performance.now();
    const reference = await read();
    const after = performance.now();
    const roundTrip = after - before;
    if (!Number.isFinite(reference)) throw new Error(`the database clock read gave ${String(reference)}`);
    if (!best || roundTrip < best.roundTrip) best = { reference, mono: (before + after) / 2, roundTrip };
  }
  return best!;
}
