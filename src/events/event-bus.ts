/**
 * The event bus: hints that something changed, delivered to listeners in this
 * process and (PostgreSQL, postgres-bus.ts) in every process on the database.
 *
 * The bus is a hint; the database is the truth (see event-map.ts). Publishing
 * never throws into the caller, and a listener that throws is reported through
 * `onError` without stopping the others.
 */
import type { BusEventName, EventMap, Listener } from "./event-map.ts";

export interface EventBus {
  /** Sends a hint to every listener, here and (PostgreSQL) in other processes. */
  publish<K extends BusEventName>(name: K, data: EventMap[K]): void;
  /** Adds a listener; returns the function that removes it. */
  on<K extends BusEventName>(name: K, listener: Listener<K>): () => void;
  /** Listeners currently registered (leak checks). */
  listenerCount(): number;
  close(): Promise<void>;
}

/** Listener registry with safe emission, shared by both buses. */
export class LocalListeners {
  private readonly listeners = new Map<BusEventName, Set<(data: never) => void>>();

  constructor(private readonly onError: (error: Error) => void) {}

  on<K extends BusEventName>(name: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener as (data: never) => void);
    return () => {
      set.delete(listener as (data: never) => void);
    };
  }

  emit<K extends BusEventName>(name: K, data: EventMap[K]): void {
    for (const listener of this.listeners.get(name) ?? []) {
      try {
        (listener as Listener<K>)(data);
      } catch (e) {
        this.onError(e instanceof Error ? e : new Error(String(e)));
      }
    }
  }

  count(): number {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }
}

/** SQLite: one process owns the database, so the bus never leaves the process. */
export class InProcessBus implements EventBus {
  private readonly local: LocalListeners;

  constructor(onError: (error: Error) => void = () => {}) {
    this.local = new LocalListeners(onError);
  }

  publish<K extends BusEventName>(name: K, data: EventMap[K]): void {
    this.local.emit(name, data);
  }

  on<K extends BusEventName>(name: K, listener: Listener<K>): () => void {
    return this.local.on(name, listener);
  }

  listenerCount(): number {
    return this.local.count();
  }

  async close(): Promise<void> {}
}
