/**
 * examples/watch-job.ts, run as a real child process, across a server restart:
 * the server stops (sockets closed with 1001), transitions commit while it is
 * down, a new server comes up on the same database and port, and the example
 * reconnects and resumes from its last seq. What it printed must be exactly
 * the job's stored history: every event once, in order. SQLite only (the
 * restart on PostgreSQL is the same code path; the bus reconnect there is in
 * cross-process.test.ts).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { EnqueueJobDocument } from "../../src/client/__generated__/graphql.ts";
import { startServer } from "../../src/server/server.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { wsUrl } from "../helpers/ws.ts";

const EXAMPLE = fileURLToPath(new URL("../../examples/watch-job.ts", import.meta.url));

describe("examples/watch-job.ts", () => {
  let t: TestServer | null = null;
  let restarted: RunningServer | null = null;
  afterEach(async () => {
    await restarted?.close();
    await t?.close();
  });

  it("resumes across a server restart and prints the job's history exactly once", async () => {
    t = await startTestServer("sqlite");
    const job = (await t.data(EnqueueJobDocument, { input: { queue: "watched" } })).enqueueJob.job;
    const jobs = t.server.services.jobs;
    // Reschedules keep the job waiting (the example stops at the first finish).
    await jobs.reschedule({ jobId: job.id, priority: 1 });
    await jobs.reschedule({ jobId: job.id, priority: 2 }); // seq 3

    const child = spawn(process.execPath, ["--import", "tsx", EXAMPLE, job.id, "--url", wsUrl(t.url)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const printed = () =>
      stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { seq: number; id: string });
    const until = async (n: number) => {
      const deadline = Date.now() + 20_000;
      while (printed().length < n) {
        if (Date.now() > deadline) throw new Error(`example printed ${printed().length} of ${n}: ${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await until(3);
      const port = t.server.port;
      await t.server.close(); // the example's socket is closed with 1001

      // Transitions while no server runs, straight through the service on the same file.
      const offline = await t.db.service();
      await offline.reschedule({ jobId: job.id, priority: 3 });
      await offline.reschedule({ jobId: job.id, priority: 4 }); // seq 5

      restarted = await startServer({
        store: await t.db.open(),
        logger: pino({ level: "silent" }),
        port,
        maintenance: false,
      });
      await until(5);
      await restarted.services.jobs.cancel(job.id); // live, and finished: the example exits
      expect(await exited).toBe(0);
    } finally {
      child.kill();
    }
    const lines = printed();
    expect(lines.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    const stored = await restarted.services.jobs.listEvents(job.id);
    expect(lines.map((l) => l.id)).toEqual(stored.map((e) => e.id));
    expect(stderr).toBe("");
    // The restarted server's API reads the same six events.
    const res = await fetch(restarted.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        query: "query ($id: ID!) { jobEvents(jobId: $id) { seq } }",
        variables: { id: job.id },
      }),
    });
    expect(((await res.json()) as { data: { jobEvents: unknown[] } }).data.jobEvents).toHaveLength(6);
  }, 60_000);
});
