/**
 * The live event feed of one server process: reads committed events from the
 * events table in id order and hands each to the listeners registered at that
 * moment. Every subscription is fed from here.
 *
 * - Woken by the bus ("events:committed": a commit here, or a NOTIFY from
 *   another process) and by a slow poll, so a lost hint only delays delivery.
 * - `cursor` is the highest id handed out; every event with a lower id is
 *   final (committed or never to be; see horizon.ts), and each event after it
 *   goes to every listener registered before it is handed out. That is what
 *   lets a subscription switch from replay to live without gap or duplicate:
 *   replay up to `cursor`, then register while `cursor` is unchanged.
 * - Listeners are called synchronously and must not throw or block; a throw
 *   is reported and does not stop the feed.
 * - With no listener the feed still follows the log, reading only its head.
 */
import { compareIds } from "../jobs/ids.ts";
import type { JobEventInQueue } from "../jobs/types.ts";
import type { EventLogPage } from "../store/job-store.ts";
import type { EventBus } from "./event-bus.ts";
import type { Listener } from "./event-map.ts";
import { EventHorizon, parseLogRead } from "./horizon.ts";

export interface EventLogReader {
  readEventLog(afterId: string, limit: number): Promise<EventLogPage>;
}

export interface EventFeedOptions {
  reader: EventLogReader;
  bus: EventBus;
  /** Safety poll when no hint arrives (ms). */
  pollIntervalMs?: number;
  /** Events read per statement. */
  batchSize?: number;
  onError?: (error: Error) => void;
  /**
   * Sees each event as it is handed out, after its listeners (metrics: delivery
   * lag). Only events read with rows, i.e. while some listener is registered.
   * Must not throw.
   */
  onDelivered?: (event: JobEventInQueue) => void;
}

export const EVENT_FEED_DEFAULTS = {
  pollIntervalMs: 1_000,
  batchSize: 1_000,
  /** First re-read while transactions hold back the horizon; doubles up to the max. */
  settleDelayMs: 2,
  settleDelayMaxMs: 100,
  /** Wait after a failed read (database down) before trying again. */
  retryDelayMs: 1_000,
  /**
   * With no listener, the feed follows the log's head at most this often
   * instead of after every commit: a worker drain on PostgreSQL spent more
   * database time on those head reads (each lists pg_stat_activity) than on
   * its writes. A listener that registers meanwhile triggers a read at once.
   */
  idleFollowMs: 50,
} as const;

type TransitionListener = Listener<"job:transitioned">;

export class EventFeed {
  private cursorId = "0";
  private started = false;
  private closed = false;
  private running: Promise<void> | null = null;
  private dirty = false;
  private timer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private settleDelayMs: number = EVENT_FEED_DEFAULTS.settleDelayMs;
  private readonly interval: NodeJS.Timeout;
  private readonly horizon = new EventHorizon();
  private readonly all = new Set<TransitionListener>();
  private readonly byJob = new Map<string, Set<TransitionListener>>();
  private jobListeners = 0;
  private readonly offBus: () => void;
  private readonly reader: EventLogReader;
  private readonly batchSize: number;
  private readonly onError: (error: Error) => void;
  private readonly onDelivered: ((event: JobEventInQueue) => void) | undefined;

  constructor(options: EventFeedOptions) {
    this.reader = options.reader;
    this.batchSize = options.batchSize ?? EVENT_FEED_DEFAULTS.batchSize;
    this.onError = options.onError ?? (() => {});
    this.onDelivered = options.onDelivered;
    this.offBus = options.bus.on("events:committed", ({ maxEventId }) => {
      if (maxEventId === null || compareIds(maxEventId, this.cursorId) > 0) this.wake();
    });
    this.interval = setInterval(() => this.wake(), options.pollIntervalMs ?? EVENT_FEED_DEFAULTS.pollIntervalMs);
  }

  /** The highest id handed out: every id up to it is final and was delivered. */
  get cursor(): string {
    return this.cursorId;
  }

  /** Finds the log's current final head; listeners may register once it resolves. */
  async start(): Promise<void> {
    while (!this.started) {
      if (this.closed) throw new Error("the event feed is closed");
      const page = await this.reader.readEventLog(this.cursorId, 0);
      // An empty log: "0" is trivially final (every later id is read once final).
      const final = page.maxId === "0" ? "0" : this.horizon.advance(snapshotOf(page), page.maxId, "0");
      if (final !== null) {
        this.cursorId = final;
        this.started = true;
      } else {
        await new Promise((resolve) => setTimeout(resolve, EVENT_FEED_DEFAULTS.settleDelayMs));
      }
    }
  }

  /**
   * Registers a listener for every event after `cursor` (only those of `jobId`
   * when given). Returns the function that removes it.
   */
  listen(listener: TransitionListener, jobId?: string): () => void {
    if (!this.started) throw new Error("the event feed is not started");
    // Commits may be waiting for an idle-deferred read: read now.
    if (this.idleTimer) queueMicrotask(() => this.read());
    if (jobId === undefined) {
      this.all.add(listener);
      return () => {
        this.all.delete(listener);
      };
    }
    let set = this.byJob.get(jobId);
    if (!set) this.byJob.set(jobId, (set = new Set()));
    set.add(listener);
    this.jobListeners++;
    return () => {
      if (set.delete(listener)) this.jobListeners--;
      if (set.size === 0 && this.byJob.get(jobId) === set) this.byJob.delete(jobId);
    };
  }

  listenerCount(): number {
    return this.all.size + this.jobListeners;
  }

  /** Reads the log soon (coalesced with a read already under way; deferred a little while nobody listens). */
  wake(): void {
    if (this.closed || !this.started) return;
    this.dirty = true;
    if (this.listenerCount() === 0 && !this.running) {
      this.idleTimer ??= setTimeout(() => {
        this.idleTimer = null;
        this.read();
      }, EVENT_FEED_DEFAULTS.idleFollowMs);
      return;
    }
    this.read();
  }

  private read(): void {
    if (this.closed) return;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.running ??= this.run().finally(() => {
      this.running = null;
      if (this.dirty && !this.closed) this.wake();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.interval);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.offBus();
    await this.running;
    this.all.clear();
    this.byJob.clear();
    this.jobListeners = 0;
  }

  private async run(): Promise<void> {
    while (this.dirty && !this.closed) {
      this.dirty = false;
      let outcome: "done" | "more" | "settling";
      try {
        outcome = await this.readOnce();
      } catch (e) {
        this.onError(e instanceof Error ? e : new Error(String(e)));
        this.schedule(EVENT_FEED_DEFAULTS.retryDelayMs);
        return;
      }
      if (outcome === "more") this.dirty = true;
      else if (outcome === "settling") {
        this.schedule(this.settleDelayMs);
        this.settleDelayMs = Math.min(this.settleDelayMs * 2, EVENT_FEED_DEFAULTS.settleDelayMaxMs);
      } else this.settleDelayMs = EVENT_FEED_DEFAULTS.settleDelayMs;
    }
  }

  private schedule(delayMs: number): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.wake();
    }, delayMs);
  }

  private async readOnce(): Promise<"done" | "more" | "settling"> {
    const withRows = this.listenerCount() > 0;
    const limit = withRows ? this.batchSize : 0;
    const page = await this.reader.readEventLog(this.cursorId, limit);
    // A listener registered while a head-only read was out needs the rows
    // after the cursor it joined at: read again, with rows.
    if (!withRows && this.listenerCount() > 0) return "more";
    const full = withRows && page.events.length === limit;
    const lastRow = page.events.at(-1)?.id;
    const visibleUpTo = full && lastRow !== undefined ? lastRow : page.maxId;
    const final = this.horizon.advance(snapshotOf(page), visibleUpTo, this.cursorId);
    if (final !== null && compareIds(final, this.cursorId) > 0) {
      const upTo = full && lastRow !== undefined && compareIds(lastRow, final) < 0 ? lastRow : final;
      for (const event of page.events) {
        if (compareIds(event.id, upTo) > 0) break;
        this.cursorId = event.id;
        this.dispatch(event);
      }
      this.cursorId = upTo;
      if (full) return "more";
    }
    return this.horizon.pending ? "settling" : "done";
  }

  private dispatch(event: JobEventInQueue): void {
    for (const listener of this.byJob.get(event.jobId) ?? []) this.call(listener, event);
    for (const listener of this.all) this.call(listener, event);
    if (this.onDelivered) this.call(this.onDelivered, event);
  }

  private call(listener: TransitionListener, event: JobEventInQueue): void {
    try {
      listener(event);
    } catch (e) {
      this.onError(e instanceof Error ? e : new Error(String(e)));
    }
  }
}

function snapshotOf(page: EventLogPage) {
  return page.snapshot === null ? null : parseLogRead(page.snapshot);
}
