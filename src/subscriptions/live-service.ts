/**
 * The four subscriptions, as async iterators over the live event feed
 * (events/event-feed.ts). GraphQL resolvers only call these.
 *
 * jobEvents and jobChanged replay from the database, then switch to live
 * events without gap or duplicate: replay reads events up to the feed's
 * cursor (every id up to it is final), and the live listener is registered in
 * the same tick as the check that the cursor has not moved since. Live events
 * are then exactly those after it. If the cursor moved, replay reads on.
 *
 * queueStats and jobsAvailable carry state, not history: a slow reader gets
 * the latest stats or one pending signal per queue, never a backlog.
 */
import type { EventBus } from "../events/event-bus.ts";
import type { EventFeed } from "../events/event-feed.ts";
import { NotFoundError, SubscriptionOverflowError, ValidationError } from "../jobs/errors.ts";
import { compareIds } from "../jobs/ids.ts";
import type { JobService } from "../jobs/job-service.ts";
import { JobState } from "../jobs/states.ts";
import type { JobEvent, JobEventInQueue } from "../jobs/types.ts";
import * as v from "../jobs/validate.ts";
import type { QueueService } from "../queues/queue-service.ts";
import type { QueueStats } from "../queues/types.ts";
import { LiveStream } from "./live-stream.ts";

export interface LiveServiceOptions {
  /** Live events a subscription may hold unsent before it is ended with SUBSCRIPTION_OVERFLOW. */
  maxBuffer?: number;
  /** Least time between two stats pushes of one queue (ms). */
  statsIntervalMs?: number;
  /** Stats are re-read this often even without a change hint (time-based figures, other writers). */
  statsRefreshMs?: number;
  onError?: (error: Error) => void;
}

export const LIVE_DEFAULTS = {
  maxBuffer: 1_000,
  replayPageSize: 500,
  statsIntervalMs: 250,
  statsRefreshMs: 5_000,
  /** Most queues (jobChanged filter, jobsAvailable) and job ids (jobChanged filter) per subscription. */
  maxQueues: 100,
  maxJobIds: 1_000,
} as const;

export interface JobChangeFilter {
  queues?: readonly string[] | null;
  states?: readonly string[] | null;
  jobIds?: readonly string[] | null;
}

export interface JobsAvailableSignal {
  queue: string;
}

/** One reader of a queue's stats, shared by all its subscribers. */
interface StatsHub {
  subscribers: Set<LiveStream<QueueStats>>;
  lastJson: string;
  lastReadAt: number;
  timer: NodeJS.Timeout | null;
  reading: boolean;
  again: boolean;
  offFeed: () => void;
  offBus: () => void;
  refresh: NodeJS.Timeout;
}

export class LiveService {
  private readonly maxBuffer: number;
  private readonly pageSize: number;
  private readonly statsIntervalMs: number;
  private readonly statsRefreshMs: number;
  private readonly onError: (error: Error) => void;
  private readonly streams = new Set<LiveStream<unknown>>();
  private readonly statsHubs = new Map<string, StatsHub>();

  constructor(
    private readonly jobs: JobService,
    private readonly queues: QueueService,
    private readonly feed: EventFeed,
    private readonly bus: EventBus,
    options: LiveServiceOptions = {},
  ) {
    this.maxBuffer = v.integer(options.maxBuffer ?? LIVE_DEFAULTS.maxBuffer, "maxBuffer", 1, 1_000_000);
    this.pageSize = Math.min(LIVE_DEFAULTS.replayPageSize, this.maxBuffer);
    this.statsIntervalMs = options.statsIntervalMs ?? LIVE_DEFAULTS.statsIntervalMs;
    this.statsRefreshMs = options.statsRefreshMs ?? LIVE_DEFAULTS.statsRefreshMs;
    this.onError = options.onError ?? (() => {});
  }

  /** Open subscriptions (leak checks, metrics). */
  activeCount(): number {
    return this.streams.size;
  }

  /** Ends every open subscription (server shutdown). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.streams].map((s) => s.return()));
  }

  /** A job's events with seq > afterSeq, stored then live. */
  async jobEvents(jobIdInput: unknown, afterSeqInput: unknown): Promise<LiveStream<JobEvent>> {
    const jobId = v.jobId(jobIdInput, "jobId");
    const afterSeq =
      afterSeqInput === undefined || afterSeqInput === null ? 0 : v.integer(afterSeqInput, "afterSeq", 0, 2 ** 31 - 1);
    const job = await this.jobs.getJob(jobId);
    if (afterSeq > job.lastSeq) {
      throw new ValidationError(
        "afterSeq",
        `job ${jobId} has no event with seq ${afterSeq} (its last is ${job.lastSeq})`,
      );
    }

    let lastSeq = afterSeq; // the newest seq queued into the stream
    let unlisten: (() => void) | null = null;
    const stream = this.openStream<JobEvent>(this.maxBuffer, () => {
      unlisten?.();
      unlisten = null;
    });
    const ended = (lastSent: JobEvent | undefined, stalled: boolean) =>
      new SubscriptionOverflowError(this.maxBuffer, { lastSentSeq: lastSent?.seq ?? afterSeq }, { stalled });
    stream.overflowError = ended;
    const overflow = () => ended(stream.lastTaken, false);
    const live = (event: JobEventInQueue): void => {
      if (event.seq <= lastSeq) return;
      if (event.seq !== lastSeq + 1) {
        // Cannot happen while the feed hands out events in id order (a job's
        // seqs commit in id order); if it ever does, read the gap from the table.
        this.onError(new Error(`job ${jobId}: live seq ${event.seq} after ${lastSeq}; replaying the gap`));
        unlisten?.();
        unlisten = null;
        stream.refill = catchUp;
        stream.wake();
        return;
      }
      lastSeq = event.seq;
      stream.push(event, overflow);
    };
    const catchUp = async (): Promise<JobEvent[]> => {
      const upTo = this.feed.cursor;
      const page = await this.jobs.replayJobEvents(jobId, lastSeq, upTo, this.pageSize);
      const last = page.at(-1);
      if (last) lastSeq = last.seq;
      if (page.length < this.pageSize && this.feed.cursor === upTo && stream.open) {
        stream.refill = null;
        unlisten = this.feed.listen(live, jobId);
      }
      return page;
    };
    stream.refill = catchUp;
    return stream;
  }

  /** Every transition matching `filter`, replayed after `afterEventId` when given, then live. */
  async jobChanged(filterInput: unknown, afterEventIdInput: unknown): Promise<LiveStream<JobEventInQueue>> {
    const filter = this.changeFilter(filterInput);
    let lastId: string; // the newest id queued into the stream (or known to be past)
    const replay = afterEventIdInput !== undefined && afterEventIdInput !== null;
    if (replay) {
      // "0" (what lastEventId answers on an empty log) replays from the start.
      lastId = afterEventIdInput === "0" ? "0" : v.jobId(afterEventIdInput, "afterEventId");
      if (compareIds(lastId, this.feed.cursor) > 0) {
        // Fine when another server handed out this id a moment before this
        // one's feed reached it; refused when no such event exists at all.
        const newest = await this.jobs.newestEventId();
        if (compareIds(lastId, newest) > 0) {
          throw new ValidationError("afterEventId", `no event has id ${lastId} yet (the newest is ${newest})`);
        }
      }
    } else lastId = this.feed.cursor;

    let unlisten: (() => void) | null = null;
    const stream = this.openStream<JobEventInQueue>(this.maxBuffer, () => {
      unlisten?.();
      unlisten = null;
    });
    // Before anything was sent, the resume point is where this subscription
    // started (not `lastId`, which has moved past events still buffered).
    const startId = lastId;
    const ended = (lastSent: JobEventInQueue | undefined, stalled: boolean) =>
      new SubscriptionOverflowError(this.maxBuffer, { lastSentEventId: lastSent?.id ?? startId }, { stalled });
    stream.overflowError = ended;
    const overflow = () => ended(stream.lastTaken, false);
    const matches = (e: JobEventInQueue): boolean =>
      (!filter.queues || filter.queues.has(e.queue)) &&
      (!filter.states || filter.states.has(e.toState)) &&
      (!filter.jobIds || filter.jobIds.has(e.jobId));
    const live = (event: JobEventInQueue): void => {
      if (compareIds(event.id, lastId) <= 0 || !matches(event)) return;
      lastId = event.id;
      stream.push(event, overflow);
    };
    const catchUp = async (): Promise<JobEventInQueue[]> => {
      const upTo = this.feed.cursor;
      let page: JobEventInQueue[] = [];
      if (compareIds(lastId, upTo) < 0) {
        page = await this.jobs.replayEventRange({
          afterId: lastId,
          upToId: upTo,
          ...(filter.queues && { queues: [...filter.queues] }),
          ...(filter.states && { states: [...filter.states] as JobState[] }),
          ...(filter.jobIds && { jobIds: [...filter.jobIds] }),
          limit: this.pageSize,
        });
        const last = page.at(-1);
        if (page.length === this.pageSize && last) {
          lastId = last.id;
          return page;
        }
        lastId = upTo;
      }
      if (this.feed.cursor === upTo && stream.open) {
        stream.refill = null;
        unlisten = this.feed.listen(live);
      }
      return page;
    };
    if (replay) stream.refill = catchUp;
    else unlisten = this.feed.listen(live);
    return stream;
  }

  /** The queue's stats now, then whenever they change (at most one push per statsIntervalMs). */
  async queueStats(nameInput: unknown): Promise<LiveStream<QueueStats>> {
    const name = v.queueName(nameInput, "name");
    const first = await this.queues.queueStats(name); // NOT_FOUND for an unknown queue
    const stream: LiveStream<QueueStats> = this.openStream<QueueStats>(1, () => this.leaveStatsHub(name, stream));
    stream.offerLatest(first);
    let hub = this.statsHubs.get(name);
    if (!hub) {
      const created: StatsHub = {
        subscribers: new Set(),
        lastJson: JSON.stringify(first),
        lastReadAt: Date.now(),
        timer: null,
        reading: false,
        again: false,
        offFeed: this.feed.listen((e) => {
          if (e.queue === name) this.scheduleStats(name, created);
        }),
        offBus: this.bus.on("queue:changed", ({ queue }) => {
          if (queue === name) this.scheduleStats(name, created);
        }),
        refresh: setInterval(() => this.scheduleStats(name, created), this.statsRefreshMs),
      };
      this.statsHubs.set(name, (hub = created));
    }
    hub.subscribers.add(stream);
    return stream;
  }

  /** A signal per queue when a job may have become claimable there. */
  async jobsAvailable(queuesInput: unknown): Promise<LiveStream<JobsAvailableSignal>> {
    if (!Array.isArray(queuesInput) || queuesInput.length === 0 || queuesInput.length > LIVE_DEFAULTS.maxQueues) {
      throw new ValidationError("queues", `must list 1 to ${LIVE_DEFAULTS.maxQueues} queue names`);
    }
    const names = new Set(queuesInput.map((q, i) => v.queueName(q, `queues[${i}]`)));
    // Queues where a finishing job frees a slot (concurrency limit), and paused ones.
    let limited = new Set<string>();
    let paused = new Set<string>();
    const readSettings = async (): Promise<void> => {
      const settings = await this.queues.findQueues([...names]);
      limited = new Set(settings.filter((q) => q.concurrency !== null).map((q) => q.name));
      paused = new Set(settings.filter((q) => q.paused).map((q) => q.name));
    };
    await readSettings();

    let offBus: (() => void) | null = null;
    let offHint: (() => void) | null = null;
    const stream = this.openStream<JobsAvailableSignal>(names.size, () => {
      offBus?.();
      offHint?.();
    });
    const signal = (queue: string): void => {
      if (!paused.has(queue)) stream.pushUnique({ queue }, (a, b) => a.queue === b.queue);
    };
    // The writer's "jobs:ready" hint, sent right after its commit (here, and
    // over NOTIFY from other servers): no read of the event log on the way,
    // and no read at all when nobody watches events. A hint that could not
    // arrive (a dropped LISTEN connection) is made up for by a catch-all hint
    // once the bus is back, and by the worker's own safety poll.
    offHint = this.bus.on("jobs:ready", ({ queues, freed }) => {
      for (const queue of names) {
        if (queues === null || queues.includes(queue) || (limited.has(queue) && freed.includes(queue))) signal(queue);
      }
    });
    offBus = this.bus.on("queue:changed", ({ queue }) => {
      if (!names.has(queue)) return;
      readSettings().then(
        () => signal(queue),
        (e: unknown) => this.onError(e instanceof Error ? e : new Error(String(e))),
      );
    });
    // Listening already, so a job enqueued meanwhile is signalled either way.
    for (const queue of names) {
      const page = await this.jobs.listJobs({ queue, states: [JobState.QUEUED] }, { first: 1 });
      if (page.jobs.length > 0) signal(queue);
    }
    return stream;
  }

  private changeFilter(input: unknown): {
    queues: Set<string> | null;
    states: Set<string> | null;
    jobIds: Set<string> | null;
  } {
    if (input === undefined || input === null) return { queues: null, states: null, jobIds: null };
    if (typeof input !== "object") throw new ValidationError("filter", "must be an object");
    const f = input as JobChangeFilter;
    const list = <T>(
      value: readonly T[] | null | undefined,
      field: string,
      max: number,
      check: (x: T, i: number) => string,
    ) => {
      if (value === undefined || value === null) return null;
      if (!Array.isArray(value) || value.length > max)
        throw new ValidationError(field, `must list at most ${max} entries`);
      return new Set(value.map(check));
    };
    return {
      queues: list(f.queues, "filter.queues", LIVE_DEFAULTS.maxQueues, (q, i) => v.queueName(q, `filter.queues[${i}]`)),
      states: f.states === undefined || f.states === null ? null : new Set<string>(v.states(f.states, "filter.states")),
      jobIds: list(f.jobIds, "filter.jobIds", LIVE_DEFAULTS.maxJobIds, (id, i) => v.jobId(id, `filter.jobIds[${i}]`)),
    };
  }

  /** A stream that leaves the open set, and runs `cleanup`, however it ends. */
  private openStream<T>(maxBuffer: number, cleanup: () => void): LiveStream<T> {
    const stream: LiveStream<T> = new LiveStream<T>(maxBuffer, () => {
      this.streams.delete(stream as LiveStream<unknown>);
      cleanup();
    });
    this.streams.add(stream as LiveStream<unknown>);
    return stream;
  }

  private scheduleStats(name: string, hub: StatsHub): void {
    if (hub.timer || this.statsHubs.get(name) !== hub) return;
    if (hub.reading) {
      hub.again = true;
      return;
    }
    const delay = Math.max(0, hub.lastReadAt + this.statsIntervalMs - Date.now());
    hub.timer = setTimeout(() => {
      hub.timer = null;
      void this.readStats(name, hub);
    }, delay);
  }

  private async readStats(name: string, hub: StatsHub): Promise<void> {
    hub.reading = true;
    try {
      const stats = await this.queues.queueStats(name);
      hub.lastReadAt = Date.now();
      const json = JSON.stringify(stats);
      if (json !== hub.lastJson) {
        hub.lastJson = json;
        for (const stream of hub.subscribers) stream.offerLatest(stats);
      }
    } catch (e) {
      hub.lastReadAt = Date.now();
      if (!(e instanceof NotFoundError)) this.onError(e instanceof Error ? e : new Error(String(e)));
    } finally {
      hub.reading = false;
      if (hub.again) {
        hub.again = false;
        this.scheduleStats(name, hub);
      }
    }
  }

  private leaveStatsHub(name: string, stream: LiveStream<QueueStats>): void {
    const hub = this.statsHubs.get(name);
    if (!hub) return;
    hub.subscribers.delete(stream);
    if (hub.subscribers.size > 0) return;
    this.statsHubs.delete(name);
    hub.offFeed();
    hub.offBus();
    clearInterval(hub.refresh);
    if (hub.timer) clearTimeout(hub.timer);
  }
}
