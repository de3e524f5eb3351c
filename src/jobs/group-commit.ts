/**
 * Group commit: calls that arrive in the same turn of the event loop, or
 * while a write of the same kind is in flight, go together as one store write
 * (one transaction, one commit, one multi-row statement). A lone call waits
 * one idle turn of the event loop (microseconds).
 *
 * Why: a commit costs a disk flush (0.2–0.5 ms on the CI machine for SQLite
 * with synchronous=FULL and for PostgreSQL with synchronous_commit=on, and
 * more under load), so one-job writes from concurrent producers or worker
 * slots are bound by flushes, not by work. Merged, N calls cost one flush.
 *
 * Outcomes stay per call: `write` returns one result per call, in order (an
 * expected per-call outcome such as LEASE_LOST is part of that result). When a
 * merged write throws, the cause may belong to one call only (QUEUE_FULL for
 * one queue, a constraint), and a batch is all or nothing, so each call is
 * then written again on its own and gets its own result or error. Calls that
 * may not share a write (the same job twice) wait for the next one.
 */

export interface GroupCommitOptions<T> {
  /** Most units (see `sizeOf`) merged into one write; a larger call goes alone. */
  maxBatchSize: number;
  /** The units of a call (jobs in an enqueue call); default 1. */
  sizeOf?: (call: T) => number;
  /** Keys of a call (job ids): calls that share a key never share a write. */
  keysOf?: (call: T) => readonly string[];
}

/** Most event-loop turns a write waits for more calls to join it. */
const GATHER_TURNS = 4;

interface Pending<T, R> {
  call: T;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit<T, R> {
  private queue: Pending<T, R>[] = [];
  private inFlight = false;
  private readonly sizeOf: (call: T) => number;
  private readonly keysOf: (call: T) => readonly string[];
  /** Writes made and calls they carried (tests and benchmarks read these). */
  readonly stats = { writes: 0, calls: 0, retries: 0 };

  constructor(
    private readonly write: (calls: readonly T[]) => Promise<R[]>,
    private readonly options: GroupCommitOptions<T>,
  ) {
    this.sizeOf = options.sizeOf ?? (() => 1);
    this.keysOf = options.keysOf ?? (() => []);
  }

  submit(call: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ call, resolve, reject });
      if (!this.inFlight) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.inFlight = true;
    try {
      while (this.queue.length > 0) {
        await this.gather();
        await this.run(this.takeBatch());
      }
    } finally {
      this.inFlight = false;
    }
  }

  /**
   * Waits for the end of this turn of the event loop, and one more turn
   * each time calls keep arriving (at most GATHER_TURNS): requests whose data
   * arrived in the same poll, or just after, then share the write. A turn with
   * nothing else to do takes microseconds, so a lone call barely waits.
   */
  private async gather(): Promise<void> {
    let seen = -1;
    for (let turn = 0; turn < GATHER_TURNS && this.queue.length !== seen; turn++) {
      seen = this.queue.length;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** The oldest calls that fit together; calls skipped stay queued in order. */
  private takeBatch(): Pending<T, R>[] {
    const batch: Pending<T, R>[] = [];
    const rest: Pending<T, R>[] = [];
    const keys = new Set<string>();
    let size = 0;
    for (const p of this.queue) {
      const n = this.sizeOf(p.call);
      const callKeys = this.keysOf(p.call);
      const fits = batch.length === 0 || (size + n <= this.options.maxBatchSize && !callKeys.some((k) => keys.has(k)));
      if (fits) {
        batch.push(p);
        size += n;
        for (const k of callKeys) keys.add(k);
      } else rest.push(p);
    }
    this.queue = rest;
    return batch;
  }

  private async run(batch: readonly Pending<T, R>[]): Promise<void> {
    this.stats.writes++;
    this.stats.calls += batch.length;
    let results: R[];
    try {
      results = await this.write(batch.map((p) => p.call));
    } catch (error) {
      if (batch.length === 1) {
        batch[0]?.reject(error);
        return;
      }
      // All or nothing: nothing of the batch was written. Each call alone.
      for (const p of batch) {
        this.stats.retries++;
        this.stats.writes++;
        try {
          const [result] = await this.write([p.call]);
          p.resolve(result as R);
        } catch (e) {
          p.reject(e);
        }
      }
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i] as R));
  }
}
