/**
 * The async iterator behind every subscription: a bounded buffer between the
 * event feed (which pushes) and graphql-ws (which pulls, one message at a
 * time, and stops pulling while the client's socket is not draining).
 *
 * - While catching up, `refill` is set and next() calls it to read the next
 *   page from the database: replay is pulled, so it needs no buffer.
 * - Live items are pushed. When `maxBuffer` items are waiting, the stream
 *   fails with the caller's overflow error (SUBSCRIPTION_OVERFLOW) and drops
 *   what it held: memory stays bounded, and the client learns exactly that it
 *   must resume, instead of silently missing events.
 * - Read confirmation (WebSocket, src/server/websocket.ts): graphql-ws stops
 *   pulling only once the socket stops draining, and the kernel's buffers take
 *   megabytes first, i.e. tens of thousands of small events a stalled client
 *   never read. So a transport that can tell what the client has read calls
 *   `confirmReads()` and then `confirmRead(n)` as the client proves it read
 *   the first n items taken (its answers to pings sent behind them); items
 *   taken but not yet confirmed count against `maxBuffer` like buffered ones,
 *   and a reader that stops overflows within `maxBuffer` live events. Replayed
 *   items do not count: replay is pulled, so what a stalled reader can hold
 *   of it is bounded by the socket, and a reader replaying a long history
 *   over a slow link would otherwise be ended by the first live event after
 *   catching up (what was in flight then is not a backlog it cannot read).
 *   Without confirmation (SSE, in-process) only the buffer counts.
 * - Written by hand rather than as an async generator: a generator suspended
 *   in `await` cannot be returned from until that await settles, so a client
 *   that unsubscribes from an idle stream would leak it. Here return()
 *   settles at once and runs `onEnd` (remove listeners, stop timers) exactly
 *   once, whatever ends the stream.
 */
export class LiveStream<T> implements AsyncIterableIterator<T> {
  /** Set while catching up; returns the next items (the source sets it to null once live). */
  refill: (() => Promise<T[]>) | null = null;
  private readonly buffer: T[] = [];
  private state: "open" | "failed" | "ended" = "open";
  private failure: Error | null = null;
  private wakeConsumer: (() => void) | null = null;
  private last: T | undefined;
  /** Items handed to the consumer, and how many of them the client is known to have read. */
  private taken = 0;
  private confirmed = 0;
  private confirming = false;
  /**
   * How long items may stay taken but unconfirmed before they count as unread
   * (ms), and since when the oldest of them has been (performance.now(); null
   * when none is). A healthy client confirms within a round trip, so a burst
   * larger than the buffer (a bulk enqueue of 10,000 jobs) does not end its
   * subscription; one that stopped reading stops confirming, and from then on
   * overflows within its buffer.
   */
  private confirmGraceMs = 0;
  private pendingSince: number | null = null;
  /** Replayed items at the head of the buffer (they never count as unread once taken). */
  private replayQueued = 0;
  /**
   * The error that ends this stream for a client that fell behind (`stalled`
   * false) or stopped reading altogether (true), given the last item sent to
   * it; set by the source, used by transports that cut a stalled client.
   */
  overflowError: ((lastSent: T | undefined, stalled: boolean) => Error) | null = null;

  constructor(
    readonly maxBuffer: number,
    private readonly onEnd: () => void,
  ) {}

  get open(): boolean {
    return this.state === "open";
  }

  /** The last item handed to the consumer. */
  get lastTaken(): T | undefined {
    return this.last;
  }

  /** Items waiting to be taken plus, when reads are confirmed, those taken but not known read. */
  get unread(): number {
    const late =
      this.confirming && this.pendingSince !== null && performance.now() - this.pendingSince >= this.confirmGraceMs;
    return this.buffer.length + (late ? this.taken - this.confirmed : 0);
  }

  /**
   * From now on, items taken count as unread until `confirmRead` covers them,
   * once they have waited `graceMs` for it.
   */
  confirmReads(graceMs = 0): void {
    this.confirming = true;
    this.confirmGraceMs = graceMs;
    this.confirmed = this.taken;
    this.pendingSince = null;
  }

  /** The client has read the first `count` items taken (a count, not a delta; never goes back). */
  confirmRead(count: number): void {
    const confirmed = Math.max(this.confirmed, Math.min(count, this.taken));
    if (confirmed > this.confirmed) this.pendingSince = confirmed < this.taken ? performance.now() : null;
    this.confirmed = confirmed;
  }

  /** Queues a live item; fails the stream with `overflow()` when `maxBuffer` are unread. */
  push(item: T, overflow: () => Error): void {
    if (this.state !== "open") return;
    if (this.unread >= this.maxBuffer) {
      this.fail(overflow());
      return;
    }
    this.buffer.push(item);
    this.wake();
  }

  /** Queues `item` unless an equal one (by `same`) is already waiting: for signals. */
  pushUnique(item: T, same: (a: T, b: T) => boolean): void {
    if (this.state !== "open" || this.buffer.some((x) => same(x, item))) return;
    this.buffer.push(item);
    this.wake();
  }

  /** Replaces whatever is waiting with `item`: for latest-value streams (stats). */
  offerLatest(item: T): void {
    if (this.state !== "open") return;
    this.buffer.length = 0;
    this.buffer.push(item);
    this.wake();
  }

  /** Makes a consumer waiting in next() look again (after `refill` was set). */
  wake(): void {
    const wake = this.wakeConsumer;
    this.wakeConsumer = null;
    wake?.();
  }

  /** Ends the stream with `error`, thrown by the consumer's next call. */
  fail(error: Error): void {
    if (this.state !== "open") return;
    this.state = "failed";
    this.failure = error;
    this.buffer.length = 0;
    this.replayQueued = 0;
    this.finish();
  }

  async next(): Promise<IteratorResult<T, undefined>> {
    for (;;) {
      const item = this.buffer.shift();
      if (item !== undefined) {
        this.last = item;
        this.taken++;
        if (this.replayQueued > 0) {
          this.replayQueued--;
          this.confirmed = this.taken;
        } else if (this.confirming && this.pendingSince === null) {
          this.pendingSince = performance.now();
        }
        return { value: item, done: false };
      }
      if (this.state === "failed") {
        this.state = "ended";
        throw this.failure as Error;
      }
      if (this.state === "ended") return { value: undefined, done: true };
      const refill = this.refill;
      if (refill) {
        let items: T[];
        try {
          items = await refill();
        } catch (e) {
          this.fail(e instanceof Error ? e : new Error(String(e)));
          continue;
        }
        if (this.state === "open") {
          this.buffer.push(...items);
          this.replayQueued += items.length;
        }
        continue;
      }
      await new Promise<void>((resolve) => (this.wakeConsumer = resolve));
    }
  }

  async return(): Promise<IteratorResult<T, undefined>> {
    if (this.state === "open") {
      this.state = "ended";
      this.buffer.length = 0;
      this.replayQueued = 0;
      this.finish();
    } else this.state = "ended";
    return { value: undefined, done: true };
  }

  async throw(error?: unknown): Promise<IteratorResult<T, undefined>> {
    await this.return();
    throw error instanceof Error ? error : new Error(String(error));
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private finish(): void {
    this.refill = null;
    try {
      this.onEnd();
    } finally {
      this.wake();
    }
  }
}
