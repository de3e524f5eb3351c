/**
 * The event bus across processes on one PostgreSQL database: LISTEN/NOTIFY on
 * one dedicated connection per process.
 *
 * - Hints only (event-map.ts): a notification is a few dozen bytes and never
 *   carries event data, so NOTIFY's 8,000-byte payload limit never applies;
 *   every event is read back from the events table by the feed.
 * - publish() delivers to this process's listeners at once, then sends a
 *   NOTIFY (after the commit it reports, by construction: it is called after
 *   commit). "events:committed" hints are merged while one NOTIFY is in flight.
 * - The channel is derived from the database's current schema, so servers
 *   that share a database but not a schema do not wake each other. The
 *   connection's application_name is "jobwire-events <channel>".
 * - If the connection drops, it reconnects with backoff and then tells local
 *   listeners to catch up (maxEventId null), since notifications sent in
 *   between were lost. Until then the feed's slow poll still runs.
 */
import { createHash } from "node:crypto";
import pg from "pg";
import { compareIds } from "../jobs/ids.ts";
import { LocalListeners } from "./event-bus.ts";
import type { EventBus } from "./event-bus.ts";
import type { BusEventName, EventMap, Listener } from "./event-map.ts";

export interface PostgresBusOptions {
  url: string;
  onError?: (error: Error) => void;
  /** Reconnect backoff bounds (ms). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

type Wire =
  | { e: "events:committed"; max: string | null }
  | { e: "queue:changed"; q: string }
  | { e: "jobs:ready"; q: string[] | null; f: string[] };

/** Largest NOTIFY payload we send (PostgreSQL's limit is 8,000 bytes). */
const MAX_PAYLOAD = 7_000;

export class PostgresBus implements EventBus {
  private readonly local: LocalListeners;
  private readonly onError: (error: Error) => void;
  private client: pg.Client | null = null;
  private channel = "";
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private reconnectDelay: number;
  private sending: Promise<void> | null = null;
  private pendingMax: string | null | undefined = undefined;
  private readonly pendingQueues = new Set<string>();
  /** Merged "jobs:ready" hints not sent yet: null = every queue. */
  private pendingReady: Set<string> | null | undefined = undefined;
  private readonly pendingFreed = new Set<string>();

  private constructor(private readonly options: PostgresBusOptions) {
    this.onError = options.onError ?? (() => {});
    this.local = new LocalListeners(this.onError);
    this.reconnectDelay = options.reconnectMinMs ?? 100;
  }

  /** Connects and starts listening; fails if the database cannot be reached. */
  static async connect(options: PostgresBusOptions): Promise<PostgresBus> {
    const bus = new PostgresBus(options);
    await bus.open();
    return bus;
  }

  publish<K extends BusEventName>(name: K, data: EventMap[K]): void {
    this.local.emit(name, data);
    if (name === "events:committed") {
      const max = (data as EventMap["events:committed"]).maxEventId;
      this.pendingMax = mergeMax(this.pendingMax, max);
    } else if (name === "jobs:ready") {
      const { queues, freed } = data as EventMap["jobs:ready"];
      if (queues === null || this.pendingReady === null) this.pendingReady = null;
      else for (const q of queues) (this.pendingReady ??= new Set()).add(q);
      for (const q of freed) this.pendingFreed.add(q);
    } else {
      this.pendingQueues.add((data as EventMap["queue:changed"]).queue);
    }
    this.flush();
  }

  on<K extends BusEventName>(name: K, listener: Listener<K>): () => void {
    return this.local.on(name, listener);
  }

  listenerCount(): number {
    return this.local.count();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    await this.sending;
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }

  private async open(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.url, application_name: "jobwire-events" });
    client.on("error", (e) => this.lost(client, e));
    client.on("end", () => this.lost(client, new Error("the LISTEN connection ended")));
    client.on("notification", (n) => {
      // Our own NOTIFY comes back on this same connection; publish() already
      // told this process's listeners, and a second "jobs:ready" would wake
      // its idle workers twice.
      if (n.processId === (client as unknown as { processID?: number }).processID) return;
      if (n.channel === this.channel && n.payload !== undefined) this.receive(n.payload);
    });
    await client.connect();
    try {
      const rows = await client.query<{ schema: string | null }>("SELECT current_schema() AS schema");
      const schema = rows.rows[0]?.schema ?? "public";
      this.channel = `jobwire_${createHash("sha256").update(schema).digest("hex").slice(0, 16)}`;
      // Named with its channel, so operators (and tests) can tell whose bus it is in pg_stat_activity.
      await client.query(`SET application_name TO 'jobwire-events ${this.channel}'`);
      await client.query(`LISTEN "${this.channel}"`);
    } catch (e) {
      await client.end().catch(() => {});
      throw e;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
  }

  private lost(client: pg.Client, error: Error): void {
    if (this.client !== client || this.closed) return;
    this.client = null;
    this.onError(new Error(`event bus connection lost: ${error.message}`, { cause: error }));
    client.end().catch(() => {});
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.open().then(
        () => {
          this.reconnectDelay = this.options.reconnectMinMs ?? 100;
          // Notifications sent while we were away are lost: catch up from the
          // table, and (hints of other servers' commits) any queue may have work.
          this.local.emit("events:committed", { maxEventId: null });
          this.local.emit("jobs:ready", { queues: null, freed: [] });
          this.flush();
        },
        (e: unknown) => {
          this.onError(new Error(`event bus reconnect failed: ${String(e)}`));
          this.reconnectDelay = Math.min(this.reconnectDelay * 2, this.options.reconnectMaxMs ?? 5_000);
          this.scheduleReconnect();
        },
      );
    }, this.reconnectDelay);
  }

  private receive(payload: string): void {
    let wire: Wire;
    try {
      wire = JSON.parse(payload) as Wire;
    } catch {
      this.onError(new Error(`ignored a malformed notification: ${payload.slice(0, 100)}`));
      return;
    }
    if (wire.e === "events:committed") this.local.emit("events:committed", { maxEventId: wire.max ?? null });
    else if (wire.e === "queue:changed" && typeof wire.q === "string")
      this.local.emit("queue:changed", { queue: wire.q });
    else if (wire.e === "jobs:ready" && (wire.q === null || Array.isArray(wire.q)) && Array.isArray(wire.f))
      this.local.emit("jobs:ready", { queues: wire.q, freed: wire.f });
  }

  /** Sends what is pending, one NOTIFY statement at a time. */
  private flush(): void {
    if (this.sending || this.closed) return;
    const client = this.client;
    if (!client) return; // sent after the reconnect
    const messages: Wire[] = [];
    if (this.pendingMax !== undefined) messages.push({ e: "events:committed", max: this.pendingMax });
    for (const q of this.pendingQueues) messages.push({ e: "queue:changed", q });
    if (this.pendingReady !== undefined || this.pendingFreed.size > 0) {
      const ready: Wire = {
        e: "jobs:ready",
        q: this.pendingReady === undefined ? [] : this.pendingReady === null ? null : [...this.pendingReady],
        f: [...this.pendingFreed],
      };
      // Too many queues for one payload: "any queue may have work" says enough.
      messages.push(JSON.stringify(ready).length <= MAX_PAYLOAD ? ready : { e: "jobs:ready", q: null, f: [] });
    }
    if (messages.length === 0) return;
    this.pendingMax = undefined;
    this.pendingQueues.clear();
    this.pendingReady = undefined;
    this.pendingFreed.clear();
    const sql = messages.map((_, i) => `pg_notify($1, $${i + 2})`).join(", ");
    this.sending = client
      .query(`SELECT ${sql}`, [this.channel, ...messages.map((m) => JSON.stringify(m))])
      .then(
        () => undefined,
        (e: unknown) => this.onError(new Error(`NOTIFY failed: ${String(e)}`)),
      )
      .finally(() => {
        this.sending = null;
        this.flush();
      });
  }
}

function mergeMax(a: string | null | undefined, b: string | null): string | null {
  if (a === undefined) return b;
  if (a === null || b === null) return null;
  return compareIds(a, b) >= 0 ? a : b;
}
