/**
 * The one typed map of jobwire's events, shared by the bus, the event feed,
 * the subscriptions and the tests.
 *
 * - "events:committed", "queue:changed" and "jobs:ready" are hints sent over the bus (to
 *   this process, and to every other process on the same PostgreSQL database).
 *   They carry no job data: the database is the truth, and whoever hears a
 *   hint reads what changed from it. A missed hint only delays a reader until
 *   its next poll.
 * - "job:transitioned" is what the event feed hands its listeners: one stored
 *   event, read back from the events table after its transaction committed,
 *   in global id order.
 */
import type { JobEventInQueue } from "../jobs/types.ts";

export interface EventMap {
  /** Events up to `maxEventId` were committed (null: unknown, e.g. after a bus reconnect). */
  "events:committed": { maxEventId: string | null };
  /** A queue's settings changed (pause, resume, configure) or its finished jobs were purged. */
  "queue:changed": { queue: string };
  /**
   * Committed writes made jobs ready (entered QUEUED) in `queues` (null: in
   * queues not named, e.g. a promotion, so any queue may have work), and ended
   * running jobs in `freed` (a slot freed under a concurrency limit). Sent by
   * the writing process right after commit, so idle workers wake without
   * waiting for the event feed to read the log; jobsAvailable is built on it.
   * A bus that lost its connection sends `queues: null` once it is back.
   */
  "jobs:ready": { queues: string[] | null; freed: string[] };
  /** One committed transition, with its job's queue. */
  "job:transitioned": JobEventInQueue;
}

/** The events the bus carries (hints); the feed produces "job:transitioned". */
export type BusEventName = "events:committed" | "queue:changed" | "jobs:ready";

export type Listener<K extends keyof EventMap> = (data: EventMap[K]) => void;
