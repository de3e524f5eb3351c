/**
 * GET /metrics on a real server over HTTP, on every backend: a workload run
 * through GraphQL on a manual clock, then the Prometheus text parsed and every
 * figure checked exactly — counters and gauges by label, histogram counts and
 * sums (durations are exact on the manual clock), the content type. Also: a
 * write that rolled back counts nothing, lease expiry counts as a retry and
 * then a failure, live gauges follow connections and subscriptions, each
 * server in a process keeps its own figures, and (PostgreSQL) a server counts
 * only its own commits though its feed sees every server's.
 */
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { Client } from "graphql-ws";
import {
  CancelJobDocument,
  ClaimJobsDocument,
  CompleteJobDocument,
  CompleteJobsDocument,
  ConfigureQueueDocument,
  EnqueueJobDocument,
  EnqueueJobsDocument,
  FailJobDocument,
  WatchJobChangesDocument,
} from "../../src/client/__generated__/graphql.ts";
import { startServer } from "../../src/server/server.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer, TestServerOptions } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";
import { ManualClock } from "../helpers/clock.ts";
import { connect, record } from "../helpers/ws.ts";

const STATES = ["SCHEDULED", "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"] as const;
type Counts = Partial<Record<(typeof STATES)[number], number>>;

/** One parsed exposition page: samples by name and labels, and each metric's TYPE. */
interface Scrape {
  status: number;
  contentType: string | null;
  types: Map<string, string>;
  samples: { name: string; labels: Record<string, string>; value: number }[];
  /** The sample's value; undefined when the page has no such series. */
  get(name: string, labels?: Record<string, string>): number | undefined;
  /** Like get, but a missing series of a metric the page declares counts as 0 (labelled counters start absent). */
  count(name: string, labels?: Record<string, string>): number;
  /** jobwire_jobs as { queue: { state: n } }. */
  jobs(): Record<string, Counts>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/g;

async function scrape(origin: string): Promise<Scrape> {
  const res = await fetch(`${origin}/metrics`);
  const text = await res.text();
  const types = new Map<string, string>();
  const samples: Scrape["samples"] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("# HELP ")) continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type?.[1] && type[2]) {
      types.set(type[1], type[2]);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m?.[1] || m[3] === undefined) throw new Error(`not a Prometheus sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (m[2] ?? "").matchAll(LABEL)) if (key) labels[key] = value ?? "";
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  const matches = (a: Record<string, string>, b: Record<string, string>) =>
    Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v);
  const get = (name: string, labels: Record<string, string> = {}) =>
    samples.find((s) => s.name === name && matches(s.labels, labels))?.value;
  const declared = (name: string) =>
    types.has(name) || types.has(name.replace(/_(bucket|sum|count)$/, "")) ? true : false;
  return {
    status: res.status,
    contentType: res.headers.get("content-type"),
    types,
    samples,
    get,
    count(name, labels = {}) {
      if (!declared(name)) throw new Error(`the page declares no metric ${name}`);
      return get(name, labels) ?? 0;
    },
    jobs() {
      const out: Record<string, Counts> = {};
      for (const s of samples.filter((x) => x.name === "jobwire_jobs")) {
        const queue = s.labels.queue ?? "?";
        (out[queue] ??= {})[s.labels.state as (typeof STATES)[number]] = s.value;
      }
      return out;
    },
  };
}

/** Every state listed, as jobwire_jobs lists them. */
function allStates(counts: Counts): Counts {
  return Object.fromEntries(STATES.map((s) => [s, counts[s] ?? 0]));
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.each(BACKENDS)("GET /metrics on %s", (dialect) => {
  const servers: TestServer[] = [];
  const extra: RunningServer[] = [];
  const clients: Client[] = [];
  const start = async (options: TestServerOptions = {}) => {
    const t = await startTestServer(dialect, options);
    servers.push(t);
    return t;
  };
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.dispose()));
    await Promise.all(extra.splice(0).map((s) => s.close()));
    await Promise.all(servers.splice(0).map((t) => t.close()));
  });

  it("counts a workload's transitions exactly, by queue, and reads job counts by queue and state", async () => {
    const clock = new ManualClock();
    const t = await start({ now: clock.now });
    const before = await scrape(t.origin);
    expect(before.status).toBe(200);
    expect(before.contentType).toMatch(/^text\/plain; version=0\.0\.4(;|$)/);
    expect(before.jobs()).toEqual({});
    expect(before.get("jobwire_claim_seconds_count")).toBe(0);

    // t0: 5 jobs to email (one bulk call), 1 to sms.
    const enqueued = (
      await t.data(EnqueueJobsDocument, { jobs: Array.from({ length: 5 }, (_, i) => ({ queue: "email", payload: i })) })
    ).enqueueJobs;
    await t.data(EnqueueJobDocument, { input: { queue: "sms" } });
    // t0+2s: claim 3; t0+3s: claim 1, and an empty claim elsewhere.
    clock.advance(2_000);
    const first = (await t.data(ClaimJobsDocument, { queues: ["email"], workerId: "w1", limit: 3 })).claimJobs;
    clock.advance(1_000);
    const second = (await t.data(ClaimJobsDocument, { queues: ["email"], workerId: "w2", limit: 1 })).claimJobs;
    expect((await t.data(ClaimJobsDocument, { queues: ["idle"], workerId: "w3", limit: 5 })).claimJobs).toEqual([]);
    const [a, b, c] = first;
    const [d] = second;
    if (!a || !b || !c || !d) throw new Error("claimed fewer than 4 jobs");
    // t0+7s: complete 2 (one alone, one in a batch), fail 1 for good, fail 1 with a retry; cancel the waiting one.
    clock.advance(4_000);
    await t.data(CompleteJobDocument, { jobId: a.job.id, leaseToken: a.leaseToken });
    const batch = await t.data(CompleteJobsDocument, { jobs: [{ jobId: b.job.id, leaseToken: b.leaseToken }] });
    expect(batch.completeJobs[0]?.error).toBeNull();
    const dead = { message: "bad input" };
    expect(
      (await t.data(FailJobDocument, { jobId: c.job.id, leaseToken: c.leaseToken, error: dead, retryable: false }))
        .failJob.state,
    ).toBe("FAILED");
    const flaky = { message: "timeout" };
    expect(
      (await t.data(FailJobDocument, { jobId: d.job.id, leaseToken: d.leaseToken, error: flaky, retryInMs: 60_000 }))
        .failJob.state,
    ).toBe("SCHEDULED");
    const waiting = enqueued.find((e) => ![a, b, c, d].some((l) => l.job.id === e.job.id));
    if (!waiting) throw new Error("no waiting job");
    await t.data(CancelJobDocument, { jobId: waiting.job.id });

    const m = await scrape(t.origin);
    const email = { queue: "email" };
    const sms = { queue: "sms" };
    expect(m.count("jobwire_jobs_enqueued_total", email)).toBe(5);
    expect(m.count("jobwire_jobs_enqueued_total", sms)).toBe(1);
    expect(m.count("jobwire_jobs_started_total", email)).toBe(4);
    expect(m.count("jobwire_jobs_started_total", sms)).toBe(0);
    expect(m.count("jobwire_jobs_succeeded_total", email)).toBe(2);
    expect(m.count("jobwire_jobs_failed_total", email)).toBe(1);
    expect(m.count("jobwire_jobs_retried_total", email)).toBe(1);
    expect(m.count("jobwire_jobs_cancelled_total", email)).toBe(1);
    for (const name of ["succeeded", "failed", "retried", "cancelled"]) {
      expect(m.count(`jobwire_jobs_${name}_total`, sms)).toBe(0);
    }
    for (const name of ["enqueued", "started", "succeeded", "failed", "retried", "cancelled"]) {
      expect(m.types.get(`jobwire_jobs_${name}_total`)).toBe("counter");
    }

    // Runs ended at t0+7s: three claimed at t0+2s (5 s), one at t0+3s (4 s).
    expect(m.types.get("jobwire_job_run_seconds")).toBe("histogram");
    expect(m.get("jobwire_job_run_seconds_count", email)).toBe(4);
    expect(m.get("jobwire_job_run_seconds_sum", email)).toBe(19);
    expect(m.get("jobwire_job_run_seconds_bucket", { ...email, le: "2.5" })).toBe(0);
    expect(m.get("jobwire_job_run_seconds_bucket", { ...email, le: "5" })).toBe(4);
    expect(m.get("jobwire_job_run_seconds_bucket", { ...email, le: "+Inf" })).toBe(4);
    // Ready at t0, claimed at t0+2s (three) and t0+3s (one).
    expect(m.get("jobwire_job_pickup_seconds_count", email)).toBe(4);
    expect(m.get("jobwire_job_pickup_seconds_sum", email)).toBe(9);
    expect(m.get("jobwire_job_pickup_seconds_bucket", { ...email, le: "2.5" })).toBe(3);
    expect(m.get("jobwire_job_pickup_seconds_count", sms)).toBeUndefined();
    // Three claim calls, the empty one included.
    expect(m.types.get("jobwire_claim_seconds")).toBe("histogram");
    expect(m.get("jobwire_claim_seconds_count")).toBe(3);
    expect(m.get("jobwire_claim_seconds_bucket", { le: "+Inf" })).toBe(3);

    expect(m.types.get("jobwire_jobs")).toBe("gauge");
    expect(m.jobs()).toEqual({
      email: allStates({ SCHEDULED: 1, SUCCEEDED: 2, FAILED: 1, CANCELLED: 1 }),
      sms: allStates({ QUEUED: 1 }),
    });
    expect(m.get("jobwire_websocket_connections")).toBe(0);
    expect(m.get("jobwire_subscriptions")).toBe(0);
    if (dialect === "sqlite") {
      expect(m.get("jobwire_db_pool_connections")).toBe(1);
      expect(m.get("jobwire_db_pool_max_connections")).toBe(1);
    }
    // Node's process metrics, under prom-client's default names.
    expect(m.types.get("process_cpu_user_seconds_total")).toBe("counter");
    expect(m.get("nodejs_heap_size_total_bytes")).toBeGreaterThan(0);

    // The next scrape reads the counts again: they follow the database.
    const [retry] = (await t.data(ClaimJobsDocument, { queues: ["sms"], workerId: "w4" })).claimJobs;
    expect(retry).toBeDefined();
    const again = await scrape(t.origin);
    expect(again.jobs().sms).toEqual(allStates({ RUNNING: 1 }));
    expect(again.count("jobwire_jobs_started_total", sms)).toBe(1);
    expect(again.get("jobwire_job_pickup_seconds_sum", sms)).toBe(7);
    expect(again.get("jobwire_claim_seconds_count")).toBe(4);

    // A second server in this process keeps its own figures.
    const u = await start();
    await u.data(EnqueueJobDocument, { input: { queue: "email" } });
    const other = await scrape(u.origin);
    expect(other.count("jobwire_jobs_enqueued_total", email)).toBe(1);
    expect(other.count("jobwire_jobs_started_total", email)).toBe(0);
    expect(other.get("jobwire_claim_seconds_count")).toBe(0);
    expect(other.jobs()).toEqual({ email: allStates({ QUEUED: 1 }) });
    expect((await scrape(t.origin)).count("jobwire_jobs_enqueued_total", email)).toBe(5);
  });

  it("counts nothing for writes that rolled back or created nothing", async () => {
    const t = await start();
    await t.data(ConfigureQueueDocument, { input: { name: "tight", maxQueued: 1 } });
    await t.data(EnqueueJobDocument, { input: { queue: "tight", idempotencyKey: "k" } });
    // A repeat of the key creates nothing; over maxQueued, one job or a batch rolls back.
    expect(
      (await t.data(EnqueueJobDocument, { input: { queue: "tight", idempotencyKey: "k" } })).enqueueJob.created,
    ).toBe(false);
    expect((await t.error(EnqueueJobDocument, { input: { queue: "tight" } })).extensions?.code).toBe("QUEUE_FULL");
    const bulk = await t.error(EnqueueJobsDocument, { jobs: [{ queue: "other" }, { queue: "tight" }] });
    expect(bulk.extensions?.code).toBe("QUEUE_FULL");
    // Refused transitions write nothing and count nothing.
    const [leased] = (await t.data(ClaimJobsDocument, { queues: ["tight"], workerId: "w" })).claimJobs;
    if (!leased) throw new Error("nothing claimed");
    expect((await t.error(CompleteJobDocument, { jobId: leased.job.id, leaseToken: "stale" })).extensions?.code).toBe(
      "LEASE_LOST",
    );
    await t.data(CompleteJobDocument, { jobId: leased.job.id, leaseToken: leased.leaseToken });
    expect(
      (await t.error(CompleteJobDocument, { jobId: leased.job.id, leaseToken: leased.leaseToken })).extensions?.code,
    ).toBe("INVALID_TRANSITION");
    expect((await t.error(CancelJobDocument, { jobId: leased.job.id })).extensions?.code).toBe("INVALID_TRANSITION");

    const m = await scrape(t.origin);
    expect(m.count("jobwire_jobs_enqueued_total", { queue: "tight" })).toBe(1);
    expect(m.count("jobwire_jobs_enqueued_total", { queue: "other" })).toBe(0);
    expect(m.count("jobwire_jobs_started_total", { queue: "tight" })).toBe(1);
    expect(m.count("jobwire_jobs_succeeded_total", { queue: "tight" })).toBe(1);
    expect(m.count("jobwire_jobs_cancelled_total", { queue: "tight" })).toBe(0);
    expect(m.get("jobwire_job_run_seconds_count", { queue: "tight" })).toBe(1);
    expect(m.jobs()).toEqual({ tight: allStates({ SUCCEEDED: 1 }) });
  });

  it("counts an expired lease as a retry, then as a failure once attempts run out", async () => {
    const clock = new ManualClock();
    const t = await start({ now: clock.now });
    const sweep = () => t.server.services.jobs.sweepExpiredLeases();
    await t.data(EnqueueJobDocument, { input: { queue: "lease", maxAttempts: 2 } });
    clock.advance(1_000);
    expect(
      (await t.data(ClaimJobsDocument, { queues: ["lease"], workerId: "w", leaseSeconds: 5 })).claimJobs,
    ).toHaveLength(1);
    clock.advance(6_000);
    expect(await sweep()).toBe(1); // attempt 1 of 2: retry after the backoff
    clock.advance(3_600_000);
    const [again] = (await t.data(ClaimJobsDocument, { queues: ["lease"], workerId: "w", leaseSeconds: 5 })).claimJobs;
    expect(again?.job.attempts).toBe(2);
    clock.advance(10_000);
    expect(await sweep()).toBe(1); // attempt 2 of 2: dead

    const m = await scrape(t.origin);
    const lease = { queue: "lease" };
    expect(m.count("jobwire_jobs_started_total", lease)).toBe(2);
    expect(m.count("jobwire_jobs_retried_total", lease)).toBe(1);
    expect(m.count("jobwire_jobs_failed_total", lease)).toBe(1);
    expect(m.count("jobwire_jobs_succeeded_total", lease)).toBe(0);
    // Runs end when the sweep ends them: 6 s, then 10 s.
    expect(m.get("jobwire_job_run_seconds_count", lease)).toBe(2);
    expect(m.get("jobwire_job_run_seconds_sum", lease)).toBe(16);
    expect(m.jobs()).toEqual({ lease: allStates({ FAILED: 1 }) });
  });

  it("reports WebSocket connections, subscriptions and the live feed's delivery lag", async () => {
    const t = await start();
    const client = connect(t.url);
    clients.push(client);
    const changes = record(client, WatchJobChangesDocument, {});
    await until("the feed listens", () => t.server.liveCounts().feedListeners >= 1);
    const open = await scrape(t.origin);
    expect(open.get("jobwire_websocket_connections")).toBe(1);
    expect(open.get("jobwire_subscriptions")).toBe(1);
    expect(open.get("jobwire_event_delivery_lag_seconds_count")).toBe(0);

    await t.data(EnqueueJobDocument, { input: { queue: "live" } });
    await changes.waitForItems(1);
    const delivered = await scrape(t.origin);
    expect(delivered.types.get("jobwire_event_delivery_lag_seconds")).toBe("histogram");
    expect(delivered.get("jobwire_event_delivery_lag_seconds_count")).toBe(1);
    expect(delivered.get("jobwire_event_delivery_lag_seconds_sum")).toBeGreaterThanOrEqual(0);
    expect(delivered.get("jobwire_event_delivery_lag_seconds_bucket", { le: "+Inf" })).toBe(1);

    changes.stop();
    await client.dispose();
    await until("the connection closes", () => t.server.liveCounts().connections === 0);
    const closed = await scrape(t.origin);
    expect(closed.get("jobwire_websocket_connections")).toBe(0);
    expect(closed.get("jobwire_subscriptions")).toBe(0);
  });

  it("serves no /metrics when metrics are off", async () => {
    const t = await start({ metrics: false });
    const res = await fetch(`${t.origin}/metrics`);
    expect(res.status).toBe(404);
    await res.body?.cancel();
  });

  it.skipIf(dialect !== "postgres")(
    "a second server on the same database counts only its own commits, though its feed delivers the first's",
    async () => {
      const t = await start();
      const b = await startServer({
        store: await t.db.open(),
        logger: pino({ level: "silent" }),
        port: 0,
        maintenance: false,
        databaseUrl: t.db.url,
      });
      extra.push(b);
      const origin = new URL(b.url).origin;
      const client = connect(b.url);
      clients.push(client);
      const changes = record(client, WatchJobChangesDocument, {});
      await until("b's feed listens", () => b.liveCounts().feedListeners >= 1);

      await t.data(EnqueueJobsDocument, { jobs: [{ queue: "shared" }, { queue: "shared" }, { queue: "shared" }] });
      await changes.waitForItems(3);
      const onA = await scrape(t.origin);
      const onB = await scrape(origin);
      expect(onA.count("jobwire_jobs_enqueued_total", { queue: "shared" })).toBe(3);
      expect(onB.count("jobwire_jobs_enqueued_total", { queue: "shared" })).toBe(0);
      expect(onB.get("jobwire_event_delivery_lag_seconds_count")).toBe(3);
      // The job counts are the database's, the same on both.
      expect(onA.jobs()).toEqual({ shared: allStates({ QUEUED: 3 }) });
      expect(onB.jobs()).toEqual(onA.jobs());
    },
  );
});
