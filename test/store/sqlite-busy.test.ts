/**
 * Issue 15 item 6: another process holding SQLite's write lock for 10 s (the
 * sqlite3 command-line shell in BEGIN IMMEDIATE) never blocks the server's event
 * loop. /healthz and reads keep answering; a write waits asynchronously
 * within the busy window and then either goes through (the lock was let go in
 * time) or fails with SQLITE_BUSY; everything proceeds after the release.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startServer } from "../../src/server/server.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { openStore } from "../../src/store/open-store.ts";
import { holdWriteLock, SQLITE3 } from "../helpers/sqlite-lock.ts";

/** Largest gap between timer ticks of this thread while `fn` runs (the event loop's stalls). */
async function worstStall<T>(fn: () => Promise<T>): Promise<{ value: T; stallMs: number }> {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 5);
  try {
    const value = await fn();
    return { value, stallMs: worst };
  } finally {
    clearInterval(timer);
  }
}

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0;
}

describe.skipIf(!SQLITE3)("another process holding SQLite's write lock", () => {
  let dir: string;
  let server: RunningServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it("healthz and reads answer; writes wait asynchronously, fail with SQLITE_BUSY past the window, then proceed", async () => {
    dir = mkdtempSync(join(tmpdir(), "jobwire-busy-"));
    const file = join(dir, "jobwire.db");
    // The default busy window (5 s), and the lock held for 10 s, as the issue tried it.
    const store = await openStore(`file:${file}`);
    server = await startServer({ store, logger: pino({ level: "silent" }), port: 0, maintenance: false });
    const { jobs } = server.services;
    const { job: first } = await jobs.enqueue({ queue: "q" });
    const health = server.url.replace(/\/graphql$/, "/healthz");

    const lock = await holdWriteLock(file);
    const { value, stallMs } = await worstStall(async () => {
      // A write that outlives the window, one that gets the lock in time, and
      // health checks and reads all along.
      const tooLong = jobs.enqueue({ queue: "q" }).then(
        () => "written",
        (e: unknown) => (e as { code?: string }).code,
      );
      const healthMs: number[] = [];
      const readMs: number[] = [];
      const until = performance.now() + 10_000;
      let inTime: Promise<string> | undefined;
      while (performance.now() < until) {
        const t0 = performance.now();
        const res = await fetch(health);
        expect(res.status).toBe(200);
        healthMs.push(performance.now() - t0);
        const t1 = performance.now();
        expect((await jobs.getJob(first.id)).state).toBe("QUEUED");
        readMs.push(performance.now() - t1);
        if (!inTime && performance.now() > until - 1_000) {
          inTime = jobs.enqueue({ queue: "q", payload: { late: true } }).then(() => "written");
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const outcome = await tooLong;
      await lock.release();
      return { outcome, inTime: await inTime, healthMs, readMs };
    });

    expect(value.outcome).toBe("SQLITE_BUSY");
    expect(value.inTime).toBe("written");
    expect(value.healthMs.length).toBeGreaterThan(100);
    expect(p99(value.healthMs)).toBeLessThan(50);
    expect(p99(value.readMs)).toBeLessThan(50);
    // The thread never stalled on the lock (better-sqlite3's busy handler would hold it for the whole window).
    expect(stallMs).toBeLessThan(200);
    // After the release everything proceeds: writes, and the one that waited is there.
    await jobs.enqueue({ queue: "q" });
    expect(await jobs.countJobs({ queue: "q" })).toBe(3);
    // A heartbeat-like single-statement write waits the same way.
    const [leased] = await jobs.claim({ queues: ["q"], workerId: "w" });
    const again = await holdWriteLock(file);
    const beat = jobs.heartbeat({ jobId: leased!.id, leaseToken: leased!.leaseToken, leaseSeconds: 60 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await again.release();
    await expect(beat).resolves.toMatchObject({ job: { id: leased!.id, state: "RUNNING" } });
  }, 60_000);
});
