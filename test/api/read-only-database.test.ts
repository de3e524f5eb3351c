/**
 * A database that answers reads but refuses every write (issue 15 item 5):
 * /readyz answers 503 and says why, and the maintenance loop, failing every
 * tick, logs the failure once and then at most once per repeatReportMs, not a
 * stack trace per tick.
 *
 * Read-only for real: on SQLite the file is made immutable (`chattr +i`:
 * tests run as root, whom file modes do not stop), so SQLite can open it only
 * read-only; on PostgreSQL the server's connections run with
 * default_transaction_read_only=on (what a standby or a read-only role gives).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startServer } from "../../src/server/server.ts";
import type { RunningServer } from "../../src/server/server.ts";
import type { Dialect } from "../../src/store/job-store.ts";
import { openStore } from "../../src/store/open-store.ts";
import { BACKENDS, createTestDatabase } from "../helpers/backends.ts";
import type { TestDatabase } from "../helpers/backends.ts";

/** Whether this machine lets the test make a file immutable (needs CAP_LINUX_IMMUTABLE and ext2/3/4 or similar). */
function canChattr(): boolean {
  const dir = mkdtempSync(join(tmpdir(), "jobwire-chattr-"));
  const file = join(dir, "probe");
  try {
    execFileSync("touch", [file]);
    execFileSync("chattr", ["+i", file], { stdio: "ignore" });
    execFileSync("chattr", ["-i", file], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface LogLine {
  level: number;
  msg: string;
  failedTicks?: number;
  err?: { message: string; stack?: string };
}

function capture(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) lines.push(JSON.parse(line) as LogLine);
      callback();
    },
  });
  return { logger: pino({ level: "info" }, stream), lines };
}

/** A server over a database it can read but not write; `cleanup` undoes what made it read-only. */
async function readOnlyServer(
  dialect: Dialect,
  logger: pino.Logger,
): Promise<{ server: RunningServer; cleanup: () => Promise<void> }> {
  const db: TestDatabase = await createTestDatabase(dialect);
  let url = db.url;
  let undo = async () => {};
  const migrated = await db.open(); // creates and migrates the database while it is writable
  await migrated.close();
  if (dialect === "sqlite") {
    const file = url.slice("file:".length);
    execFileSync("chattr", ["+i", file]);
    undo = async () => {
      execFileSync("chattr", ["-i", file]);
    };
  } else {
    const u = new URL(url);
    u.searchParams.set("options", `${u.searchParams.get("options") ?? ""} -c default_transaction_read_only=on`);
    url = u.toString();
  }
  try {
    const store = await openStore(url, { migrate: false });
    const server = await startServer({
      store,
      logger,
      port: 0,
      databaseUrl: url,
      maintenance: { intervalMs: 20, repeatReportMs: 400 },
    });
    return {
      server,
      cleanup: async () => {
        await server.close();
        await undo();
        await db.dispose();
      },
    };
  } catch (e) {
    await undo();
    await db.dispose();
    throw e;
  }
}

const chattr = canChattr();

describe.each(BACKENDS)("a read-only database on %s", (dialect) => {
  let cleanup: (() => Promise<void>) | null = null;
  afterEach(async () => {
    await cleanup?.();
    cleanup = null;
  });

  it.skipIf(dialect === "sqlite" && !chattr)(
    "/readyz answers 503 saying the database cannot take a write; maintenance logs it once, then rarely",
    async () => {
      const { logger, lines } = capture();
      const started = await readOnlyServer(dialect, logger);
      cleanup = started.cleanup;
      const origin = new URL(started.server.url).origin;

      const res = await fetch(`${origin}/readyz`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { status: string; reason: string };
      expect(body.status).toBe("unavailable");
      expect(body.reason).toMatch(/^the database cannot take a write: /);
      expect(body.reason).toMatch(dialect === "sqlite" ? /readonly database/ : /read-only transaction/);
      expect((await fetch(`${origin}/healthz`)).status).toBe(200);

      // ~50 ticks at 20 ms, every one failing.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const failures = lines.filter((l) => l.msg.startsWith("maintenance tick"));
      expect(failures[0]).toMatchObject({ level: 50, msg: "maintenance tick failed", failedTicks: 1 });
      expect(failures[0]?.err?.stack).toBeDefined();
      // Then once per 400 ms at most, each saying how many ticks failed so far.
      expect(failures.length).toBeGreaterThanOrEqual(2);
      expect(failures.length).toBeLessThanOrEqual(4);
      for (const later of failures.slice(1)) {
        expect(later.msg).toMatch(/^maintenance ticks keep failing/);
        expect(later.failedTicks).toBeGreaterThan(5);
      }
    },
    20_000,
  );
});
