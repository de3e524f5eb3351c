/**
 * The "jobs:ready" hint over PostgreSQL LISTEN/NOTIFY: what one process
 * publishes after a commit reaches every other process on the database, big
 * hints degrade to "any queue", a server's jobsAvailable wakes on the hint
 * alone (a NOTIFY with no committed event behind it proves the signal did not
 * come from the event feed), and after its LISTEN connection was cut it
 * signals every watched queue, since hints sent meanwhile were lost.
 */
import { createHash } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WatchJobsAvailableDocument } from "../../src/client/__generated__/graphql.ts";
import { PostgresBus } from "../../src/events/postgres-bus.ts";
import type { EventMap } from "../../src/events/event-map.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { POSTGRES_URL, withPg } from "../helpers/backends.ts";
import { connect, record, untilSubscribed } from "../helpers/ws.ts";

describe.skipIf(!POSTGRES_URL)("jobs:ready over NOTIFY on postgres", () => {
  let t: TestServer;
  const buses: PostgresBus[] = [];

  beforeEach(async () => {
    // A feed that only polls once an hour: any signal within the test came from the hint.
    t = await startTestServer("postgres", { eventPollIntervalMs: 3_600_000 });
  });
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.close()));
    await t.close();
  });

  async function bus(): Promise<PostgresBus> {
    const b = await PostgresBus.connect({ url: t.db.url });
    buses.push(b);
    return b;
  }

  function next(b: PostgresBus): Promise<EventMap["jobs:ready"]> {
    return new Promise((resolve) => {
      const off = b.on("jobs:ready", (data) => {
        off();
        resolve(data);
      });
    });
  }

  it("reaches the other processes, and degrades to any-queue when too big for one NOTIFY", async () => {
    const [a, b] = [await bus(), await bus()];
    let received = next(b);
    a.publish("jobs:ready", { queues: ["mail", "sms"], freed: ["gpu"] });
    expect(await received).toEqual({ queues: ["mail", "sms"], freed: ["gpu"] });

    received = next(b);
    const many = Array.from({ length: 400 }, (_, i) => `queue-with-a-long-name-${i}`);
    a.publish("jobs:ready", { queues: many, freed: [] });
    expect(await received).toEqual({ queues: null, freed: [] });
  });

  it("wakes a server's jobsAvailable subscriber without the event feed", async () => {
    const client = connect(t.url);
    try {
      const signals = record(client, WatchJobsAvailableDocument, { queues: ["hinted", "other"] });
      await untilSubscribed(t.server, 1);
      const other = await bus();
      other.publish("jobs:ready", { queues: ["hinted"], freed: [] });
      const [first] = await signals.waitForItems(1, 5_000);
      expect(first).toEqual({ jobsAvailable: { queue: "hinted" } });
      signals.stop();
    } finally {
      await client.dispose();
    }
  });

  it("signals every watched queue once its LISTEN connection is back (hints sent meanwhile were lost)", async () => {
    const client = connect(t.url);
    try {
      const signals = record(client, WatchJobsAvailableDocument, { queues: ["a", "b"] });
      await untilSubscribed(t.server, 1);
      // Only this server's LISTEN connection: its name carries its schema's channel.
      const schema = new URL(t.db.url).searchParams.get("options")?.replace("-c search_path=", "") ?? "";
      const name = `jobwire-events jobwire_${createHash("sha256").update(schema).digest("hex").slice(0, 16)}`;
      await withPg((c) =>
        c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [name]),
      );
      const got = await signals.waitForItems(2, 10_000);
      expect(got.map((g) => g.jobsAvailable.queue).sort()).toEqual(["a", "b"]);
      signals.stop();
    } finally {
      await client.dispose();
    }
  });
});

if (!POSTGRES_URL) {
  process.stdout.write("ready-hint.test.ts: NOTIFY tests SKIPPED (set JOBWIRE_TEST_POSTGRES_URL)\n");
}
