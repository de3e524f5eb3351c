/**
 * A subscriber that never misses a transition: it watches one job over
 * graphql-ws, prints each event as a JSON line, and when the connection drops
 * (server restart, network) it reconnects and resubscribes from the last seq
 * it printed, so nothing is lost or printed twice. It exits 0 once the job has
 * finished (SUCCEEDED, FAILED or CANCELLED), or 1 after --give-up-ms without a
 * connection.
 *
 *   npx tsx examples/watch-job.ts <jobId> [--url ws://127.0.0.1:4000/graphql] [--give-up-ms 30000]
 *
 * The automatic retries of graphql-ws are off on purpose: they resubscribe
 * with the original variables, which would replay the job from its first
 * event again. Resuming from the last seq is the client's job.
 */
import { parseArgs } from "node:util";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { url: { type: "string" }, "give-up-ms": { type: "string" } },
});
const jobId = positionals[0];
if (!jobId) {
  console.error("usage: watch-job.ts <jobId> [--url ws://127.0.0.1:4000/graphql] [--give-up-ms 30000]");
  process.exit(2);
}
const url = values.url ?? "ws://127.0.0.1:4000/graphql";
const giveUpMs = Number(values["give-up-ms"] ?? 30_000);

const QUERY = `subscription Watch($jobId: ID!, $afterSeq: Int) {
  jobEvents(jobId: $jobId, afterSeq: $afterSeq) { id seq type fromState toState attempt createdAt }
}`;
const FINISHED = new Set(["SUCCEEDED", "FAILED", "CANCELLED"]);

interface JobEvent {
  id: string;
  seq: number;
  type: string;
  fromState: string | null;
  toState: string;
  attempt: number;
  createdAt: string;
}

let afterSeq = 0;
let lastConnectedAt = Date.now();

/** One connection and subscription; resolves "finished", or "dropped" when the connection went away. */
function watchOnce(): Promise<"finished" | "dropped"> {
  return new Promise((resolve, reject) => {
    const client = createClient({
      url,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      on: { connected: () => (lastConnectedAt = Date.now()) },
    });
    const done = (outcome: "finished" | "dropped") => {
      void client.dispose();
      resolve(outcome);
    };
    client.subscribe<{ jobEvents: JobEvent }>(
      { query: QUERY, variables: { jobId, afterSeq } },
      {
        next: ({ data, errors }) => {
          if (errors) return reject(new Error(errors.map((e) => e.message).join("; ")));
          if (!data) return;
          const event = data.jobEvents;
          afterSeq = event.seq;
          console.log(JSON.stringify(event));
          // A finished job can still be retried; this example stops at the first finish.
          if (FINISHED.has(event.toState)) done("finished");
        },
        // GraphQL errors arrive as an array (e.g. SUBSCRIPTION_OVERFLOW: resume);
        // anything else is the socket closing.
        error: (e: unknown) => {
          if (Array.isArray(e)) {
            const overflow = e.some(
              (x: { extensions?: { code?: string } }) => x.extensions?.code === "SUBSCRIPTION_OVERFLOW",
            );
            if (overflow) return done("dropped");
            return reject(new Error(e.map((x: { message: string }) => x.message).join("; ")));
          }
          done("dropped");
        },
        complete: () => done("dropped"),
      },
    );
  });
}

for (;;) {
  const outcome = await watchOnce();
  if (outcome === "finished") process.exit(0);
  if (Date.now() - lastConnectedAt > giveUpMs) {
    console.error(`no connection to ${url} for ${giveUpMs} ms; giving up after seq ${afterSeq}`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 200)); // then reconnect and resume after afterSeq
}
