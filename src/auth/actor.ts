/**
 * The API token name of the call being served, carried in async context so the
 * job service can record it on the events of operator actions without every
 * service signature growing an actor parameter. The guard (guard.ts) sets it
 * around each root resolver; the job service reads it through the `actor`
 * option the server wires to currentActor.
 */
import { AsyncLocalStorage } from "node:async_hooks";

const storage = new AsyncLocalStorage<string | null>();

export function runAsActor<T>(actor: string | null, fn: () => T): T {
  return storage.run(actor, fn);
}

export function currentActor(): string | null {
  return storage.getStore() ?? null;
}
