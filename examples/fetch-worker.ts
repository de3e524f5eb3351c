/**
 * A worker with no SDK: plain fetch and hand-written GraphQL, to show the
 * worker protocol any language can speak.
 *
 *   claimJobs → (heartbeatJob every few seconds while working) → completeJob or failJob
 *
 * - claimJobs returns each job with a leaseToken; pass it to every later call.
 * - heartbeatJob extends the lease; `cancelRequested: true` means stop, and
 *   an error with extensions.code LEASE_LOST means the lease is gone (another
 *   worker may have the job now): stop and report nothing.
 * - Delivery is at least once: a job can run again after a crash.
 *
 *   npx tsx examples/fetch-worker.ts --url http://127.0.0.1:4000/graphql --queue email [--once]
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:4000/graphql" },
    queue: { type: "string", default: "email" },
    once: { type: "boolean", default: false },
  },
});
const workerId = `fetch-worker-${process.pid}`;

interface GraphQLError {
  message: string;
  extensions?: { code?: string };
}

async function gql<T>(query: string, variables: Record<string, unknown>): Promise<T> {
  const res = await fetch(values.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: GraphQLError[] };
  if (body.errors?.length) {
    const [first] = body.errors;
    throw Object.assign(new Error(first?.message ?? "GraphQL error"), { code: first?.extensions?.code });
  }
  return body.data as T;
}

const CLAIM = `mutation ($queues: [String!]!, $workerId: String!) {
  claimJobs(queues: $queues, workerId: $workerId, limit: 1, leaseSeconds: 30) {
    leaseToken
    job { id payload attempts }
  }
}`;
const HEARTBEAT = `mutation ($jobId: ID!, $leaseToken: String!) {
  heartbeatJob(jobId: $jobId, leaseToken: $leaseToken) { cancelRequested }
}`;
const COMPLETE = `mutation ($jobId: ID!, $leaseToken: String!, $result: JSON) {
  completeJob(jobId: $jobId, leaseToken: $leaseToken, result: $result) { id state }
}`;
const FAIL = `mutation ($jobId: ID!, $leaseToken: String!, $message: String!) {
  failJob(jobId: $jobId, leaseToken: $leaseToken, error: { message: $message }) { id state }
}`;

interface Claimed {
  leaseToken: string;
  job: { id: string; payload: unknown; attempts: number };
}

for (;;) {
  const { claimJobs } = await gql<{ claimJobs: Claimed[] }>(CLAIM, { queues: [values.queue], workerId });
  const claimed = claimJobs[0];
  if (!claimed) {
    await new Promise((resolve) => setTimeout(resolve, 500)); // nothing ready: poll again
    continue;
  }
  const { job, leaseToken } = claimed;
  try {
    // The "work": one heartbeat to show the protocol, then a result.
    const { heartbeatJob } = await gql<{ heartbeatJob: { cancelRequested: boolean } }>(HEARTBEAT, {
      jobId: job.id,
      leaseToken,
    });
    if (heartbeatJob.cancelRequested) {
      const { failJob } = await gql<{ failJob: { state: string } }>(FAIL, {
        jobId: job.id,
        leaseToken,
        message: "cancelled",
      });
      console.log(JSON.stringify({ jobId: job.id, state: failJob.state }));
    } else {
      const result = { echoed: job.payload, by: workerId };
      const { completeJob } = await gql<{ completeJob: { state: string } }>(COMPLETE, {
        jobId: job.id,
        leaseToken,
        result,
      });
      console.log(JSON.stringify({ jobId: job.id, state: completeJob.state }));
    }
  } catch (e) {
    if ((e as { code?: string }).code === "LEASE_LOST") {
      console.error(`job ${job.id}: lease lost; another worker has it now`);
    } else {
      await gql(FAIL, { jobId: job.id, leaseToken, message: (e as Error).message }).catch(() => {});
    }
  }
  if (values.once) break;
}
