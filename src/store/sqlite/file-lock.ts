/**
 * The per-file lock every use of a SQLite connection of this process goes
 * through (transactions in sqlite-client.ts, reads in dialect.ts
 * `readCommitted`). Why it exists is said in dialect.ts: better-sqlite3 waits
 * for SQLite's write lock on the event-loop thread, so two connections of one
 * process writing the same file can deadlock each other, and a statement sent
 * between two statements of an open transaction on the same connection would
 * join that transaction.
 */
const fileLocks = new Map<string, Promise<void>>();

/** Runs fn after every earlier holder of `key` (a database file's path) finished. */
export async function withFileLock<R>(key: string, fn: () => Promise<R>): Promise<R> {
  const previous = fileLocks.get(key) ?? Promise.resolve();
  let release!: () => void;
  const current = new Promise<void>((resolve) => (release = resolve));
  const tail = previous.then(() => current);
  fileLocks.set(key, tail);
  await previous;
  try {
    return await fn();
  } finally {
    release();
    if (fileLocks.get(key) === tail) fileLocks.delete(key);
  }
}
