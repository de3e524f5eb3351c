/**
 * Which event ids are final, on PostgreSQL.
 *
 * Event ids come from a sequence, and concurrent transactions commit in any
 * order: a transaction may draw id 100, another draw 101 and commit first.
 * A reader that saw 101 and moved its cursor past it would never see 100.
 * Subscribers resume from an event id, so the feed may only hand out ids
 * below which nothing can still appear: the *final* ids.
 *
 * The rule. Every write transaction takes its transaction id before it draws
 * an event id (postgres/dialect.ts). Say a read at snapshot S sees ids up to
 * M. A transaction T that can still commit an id <= M drew that id before
 * some visible id was drawn, so before S, and its transaction id is older
 * still: T was running at S. So once every transaction running at S has
 * ended, every id <= M is final, and a read taken after that sees them all.
 *
 * Who was running at S: the snapshot lists running transactions below its
 * xmax (xip), but a running transaction at or above xmax is not listed
 * (xmax is one past the newest *completed* one). The read statement
 * therefore also lists pg_stat_activity.backend_xid, taken after S within the
 * same statement: a transaction running at S is either still running then
 * (listed) or already ended (and visible to any later snapshot).
 *
 * When has x ended, as seen by a later snapshot S2: x < S2.xmax and x is not
 * in S2.xip. The feed keeps one such barrier (M, transactions running at S)
 * and hands out rows up to M of the first later read whose snapshot has
 * seen them all end. It never replaces a waiting barrier, so under a steady
 * stream of writers each barrier still resolves as soon as its own
 * transactions end; delivery takes at least two reads. A long write
 * transaction anywhere on the cluster (transaction ids are cluster-wide)
 * delays delivery until it ends; it never loses an event.
 */
import { compareIds } from "../jobs/ids.ts";

export interface Snapshot {
  xmin: bigint;
  xmax: bigint;
  /** Transactions in progress below xmax when the snapshot was taken. */
  xip: ReadonlySet<bigint>;
}

/** What one PostgreSQL read of the event log tells about transactions. */
export interface LogRead {
  snapshot: Snapshot;
  /** Every transaction running just after the snapshot (pg_stat_activity), 64-bit. */
  running: readonly bigint[];
}

const DIGITS = /^\d+$/;

/** Parses pg_snapshot's text form, `xmin:xmax:xip1,xip2,…`. */
export function parseSnapshot(text: string): Snapshot {
  const parts = text.split(":");
  if (parts.length !== 3 || !DIGITS.test(parts[0] ?? "") || !DIGITS.test(parts[1] ?? "")) {
    throw new Error(`not a pg_snapshot: ${JSON.stringify(text)}`);
  }
  const list = parts[2] ?? "";
  const xip = new Set<bigint>();
  for (const x of list === "" ? [] : list.split(",")) {
    if (!DIGITS.test(x)) throw new Error(`not a pg_snapshot: ${JSON.stringify(text)}`);
    xip.add(BigInt(x));
  }
  return { xmin: BigInt(parts[0] as string), xmax: BigInt(parts[1] as string), xip };
}

/**
 * Parses `<snapshot>|<xid>,<xid>,…` (postgres/dialect.ts). backend_xid is a
 * 32-bit xid; it is widened to the snapshot's 64-bit epoch (a running
 * transaction is never 2^31 ids away from xmax).
 */
export function parseLogRead(text: string): LogRead {
  const bar = text.indexOf("|");
  if (bar < 0) throw new Error(`not a log read: ${JSON.stringify(text)}`);
  const snapshot = parseSnapshot(text.slice(0, bar));
  const list = text.slice(bar + 1);
  const running: bigint[] = [];
  for (const x of list === "" ? [] : list.split(",")) {
    if (!DIGITS.test(x)) throw new Error(`not a log read: ${JSON.stringify(text)}`);
    running.push(widen(BigInt(x), snapshot.xmax));
  }
  return { snapshot, running };
}

const EPOCH = 1n << 32n;
const HALF = 1n << 31n;

export function widen(xid32: bigint, reference: bigint): bigint {
  let x = (reference / EPOCH) * EPOCH + xid32;
  if (x > reference + HALF) x -= EPOCH;
  else if (x < reference - HALF) x += EPOCH;
  return x;
}

export class EventHorizon {
  private barrier: { upTo: string; waitFor: bigint[] } | null = null;

  /** True while a barrier waits (the feed reads again soon). */
  get pending(): boolean {
    return this.barrier !== null;
  }

  /**
   * Takes one read: what it says about transactions (null on SQLite, where
   * writers commit one at a time in id order, so every visible id is final),
   * the newest id it saw, and the id up to which the caller already knows
   * everything is final. Returns the highest id that is final *and visible
   * to this read*, or null when this read settles nothing new.
   */
  advance(read: LogRead | null, visibleUpTo: string, settledUpTo: string): string | null {
    if (read === null) {
      this.barrier = null;
      return visibleUpTo;
    }
    const { xmax, xip } = read.snapshot;
    let final: string | null = null;
    if (this.barrier && this.barrier.waitFor.every((x) => x < xmax && !xip.has(x))) {
      final = this.barrier.upTo;
      this.barrier = null;
    }
    const settled = final !== null && compareIds(final, settledUpTo) > 0 ? final : settledUpTo;
    if (!this.barrier && compareIds(visibleUpTo, settled) > 0) {
      this.barrier = { upTo: visibleUpTo, waitFor: [...new Set([...xip, ...read.running])] };
    }
    return final;
  }
}
