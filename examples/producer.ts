/**
 * A producer that enqueues a job and waits for its result through a
 * subscription (no polling): it subscribes to the job's events, prints each
 * transition, and when the job finishes prints the result (or error) and
 * exits 0 for SUCCEEDED, 1 for FAILED or CANCELLED.
 *
 *   npx tsx examples/producer.ts --url http://127.0.0.1:4000/graphql --queue email --payload '{"ms": 500}'
 *
 * The subscription resumes by itself if the connection drops meanwhile (the
 * SDK resubscribes from the last seq it received), so no transition is missed.
 */
import { parseArgs } from "node:util";
import { FINISHED_STATES, JobwireClient } from "jobwire/client";
import type { JsonValue } from "jobwire/client";

const { values } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:4000/graphql" },
    queue: { type: "string", default: "email" },
    payload: { type: "string", default: "{}" },
    key: { type: "string" },
  },
});

const client = new JobwireClient({ url: values.url });
const { job, created } = await client.enqueueJob({
  queue: values.queue,
  payload: JSON.parse(values.payload) as JsonValue,
  ...(values.key !== undefined && { idempotencyKey: values.key }),
});
console.log(JSON.stringify({ enqueued: job.id, created, state: job.state }));

// From seq 0: the whole history, so a job that finished before we subscribed is seen too.
for await (const event of client.watchJobEvents({ jobId: job.id })) {
  console.log(JSON.stringify({ seq: event.seq, type: event.type, toState: event.toState, attempt: event.attempt }));
  if (!FINISHED_STATES.includes(event.toState)) continue;
  const done = await client.job(job.id);
  console.log(JSON.stringify({ state: done.state, result: done.result, error: done.error }));
  await client.close();
  process.exit(done.state === "SUCCEEDED" ? 0 : 1);
}
