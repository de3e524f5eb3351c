/**
 * Which event ids are final, on PostgreSQL.
 *
 * Event ids come from a sequence, and concurrent transactions commit in any
 * order: a transaction may draw id 100, another draw 101 and commit first.
 * A reader that saw 101 and moved its cursor past it would never see 100.
 * Subscribers resume from an event id, so the feed may only hand out ids
 * below which nothing can still appear: the *final* ids.
 *
 * Rule: every write transaction takes its transaction id before it draws an
 * event id (postgres/dialect.ts). So if a read at snapshot S sees event ids up
 * to M, any transaction still able to commit an id <= M had its transaction
 * id before S and is listed as in progress in S (its xip). Once a later
 * snapshot lists none of S's in-progress transactions, every id <= M is
 * final: committed and visible, or never to be.
 *
 * The feed keeps at most one such barrier (M, xip of S) at a time and only
 * replaces it once it resolves, so under a steady stream of writers each
 * barrier still resolves as soon as its own transactions end. A snapshot with
 * no transaction in progress makes everything it saw final at once.
 * A long write transaction anywhere on the cluster (transaction ids are
 * cluster-wide) delays delivery until it ends; it never loses an event.
 */
import { compareIds } from "../jobs/ids.ts";

export interface Snapshot {
  xmin: bigint;
  xmax: bigint;
  /** Transactions in progress when the snapshot was taken. */
  xip: ReadonlySet<bigint>;
}

/** Parses pg_snapshot's text form, `xmin:xmax:xip1,xip2,…`. */
export function parseSnapshot(text: string): Snapshot {
  const parts = text.split(":");
  if (parts.length !== 3 || !/^\d+$/.test(parts[0] ?? "") || !/^\d+$/.test(parts[1] ?? "")) {
    throw new Error(`not a pg_snapshot: ${JSON.stringify(text)}`);
  }
  const list = parts[2] ?? "";
  const xip = new Set<bigint>();
  for (const x of list === "" ? [] : list.split(",")) {
    if (!/^\d+$/.test(x)) throw new Error(`not a pg_snapshot: ${JSON.stringify(text)}`);
    xip.add(BigInt(x));
  }
  return { xmin: BigInt(parts[0] as string), xmax: BigInt(parts[1] as string), xip };
}

export class EventHorizon {
  private barrier: { upTo: string; waitFor: bigint[] } | null = null;

  /** True while a barrier waits for transactions to end (the feed polls again soon). */
  get pending(): boolean {
    return this.barrier !== null;
  }

  /**
   * Takes one read: its snapshot (null on SQLite, where every visible id is
   * final), the newest id it saw, and the id up to which the caller already
   * knows everything is final. Returns the highest id now known to be final,
   * or null when this read settled nothing new.
   */
  advance(snapshot: Snapshot | null, visibleUpTo: string, settledUpTo: string): string | null {
    if (snapshot === null || snapshot.xip.size === 0) {
      this.barrier = null;
      return visibleUpTo;
    }
    let final: string | null = null;
    if (this.barrier && this.barrier.waitFor.every((x) => !snapshot.xip.has(x))) {
      final = this.barrier.upTo;
      this.barrier = null;
    }
    const settled = final !== null && compareIds(final, settledUpTo) > 0 ? final : settledUpTo;
    if (!this.barrier && compareIds(visibleUpTo, settled) > 0) {
      this.barrier = { upTo: visibleUpTo, waitFor: [...snapshot.xip] };
    }
    return final;
  }

  reset(): void {
    this.barrier = null;
  }
}
