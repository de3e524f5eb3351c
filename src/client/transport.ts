/**
 * What a Worker needs from jobwire, and its two implementations: over
 * GraphQL (RemoteTransport: HTTP for the calls, graphql-ws for wake-ups) and
 * in-process on the job service (LocalTransport: no network hop, for
 * single-process deployments). The Worker is written once against
 * WorkerTransport.
 *
 * Errors keep the server's codes: both transports throw errors with a `code`
 * (JobwireRequestError over GraphQL, JobwireError in-process), and the Worker
 * branches on LEASE_LOST / INVALID_TRANSITION / NOT_FOUND by that code.
 */
import type { JsonValue } from "../jobs/types.ts";
import type { JobService } from "../jobs/job-service.ts";
import type { LiveService } from "../subscriptions/live-service.ts";
import {
  WorkerClaimJobsDocument,
  WorkerCompleteJobsDocument,
  WorkerFailJobDocument,
  WorkerHeartbeatDocument,
  WorkerReleaseJobsDocument,
} from "./__generated__/graphql.ts";
import type { JobwireClient } from "./client.ts";

/** A job leased to the worker. */
export interface ClaimedJob {
  id: string;
  queue: string;
  payload: JsonValue | null;
  priority: number;
  /** This run's number: 1 on the first run. */
  attempts: number;
  maxAttempts: number;
  tags: string[];
  metadata: JsonValue | null;
  runAt: Date;
  createdAt: Date;
  leaseToken: string;
  leaseExpiresAt: Date;
}

export interface ClaimRequest {
  queues: string[];
  workerId: string;
  limit: number;
  leaseSeconds: number;
}

export interface HeartbeatRequest {
  jobId: string;
  leaseToken: string;
  /** undefined leaves the recorded progress as it is. */
  progress: JsonValue | null | undefined;
  leaseSeconds: number;
}

export interface Completion {
  jobId: string;
  leaseToken: string;
  result: JsonValue | null;
}

export interface CompletionOutcome {
  jobId: string;
  /** null: completed. Otherwise LEASE_LOST, INVALID_TRANSITION or NOT_FOUND: nothing was written. */
  error: { code: string; message: string } | null;
}

/** A claimed job the worker gives back unstarted. */
export interface Release {
  jobId: string;
  leaseToken: string;
}

/** null error: back in QUEUED (or CANCELLED after a cancel request). Otherwise LEASE_LOST, INVALID_TRANSITION or NOT_FOUND. */
export type ReleaseOutcome = CompletionOutcome;

export interface Failure {
  jobId: string;
  leaseToken: string;
  error: { message: string; code?: string | null; details?: JsonValue | null };
  retryable: boolean;
  retryInMs?: number;
}

/** A live source of "jobs may be available in this queue" hints. */
export interface AvailabilityWatch {
  /** True while hints flow; while false the Worker polls. */
  readonly live: boolean;
  close(): void;
}

export interface WorkerTransport {
  claim(request: ClaimRequest): Promise<ClaimedJob[]>;
  /** Extends the lease; throws with code LEASE_LOST when the lease is gone. */
  heartbeat(request: HeartbeatRequest): Promise<{ cancelRequested: boolean; leaseExpiresAt: Date }>;
  /** One call (one transaction) for the batch; one outcome per item, in order. */
  complete(items: Completion[]): Promise<CompletionOutcome[]>;
  fail(failure: Failure): Promise<void>;
  /**
   * Gives back claimed jobs not started (one call, one transaction): QUEUED at
   * once, no attempt used; one outcome per item, in order. Optional for
   * transports written before it: without it the Worker does not prefetch.
   */
  release?(items: Release[]): Promise<ReleaseOutcome[]>;
  /** Calls `onSignal(queue)` on each hint until closed. */
  watchAvailable(queues: string[], onSignal: (queue: string) => void, onError: (e: unknown) => void): AvailabilityWatch;
}

/** The Worker over GraphQL, through a JobwireClient. */
export class RemoteTransport implements WorkerTransport {
  constructor(readonly client: JobwireClient) {}

  async claim(request: ClaimRequest): Promise<ClaimedJob[]> {
    const { claimJobs } = await this.client.request(WorkerClaimJobsDocument, request);
    return claimJobs.map(({ job, leaseToken, leaseExpiresAt }) => ({
      id: job.id,
      queue: job.queueName,
      payload: job.payload,
      priority: job.priority,
      attempts: job.attempts,
      maxAttempts: job.maxAttempts,
      tags: job.tags,
      metadata: job.metadata,
      runAt: new Date(job.runAt),
      createdAt: new Date(job.createdAt),
      leaseToken,
      leaseExpiresAt: new Date(leaseExpiresAt),
    }));
  }

  async heartbeat(request: HeartbeatRequest): Promise<{ cancelRequested: boolean; leaseExpiresAt: Date }> {
    const { progress, ...rest } = request;
    const { heartbeatJob } = await this.client.request(WorkerHeartbeatDocument, {
      ...rest,
      ...(progress !== undefined && { progress }),
    });
    return {
      cancelRequested: heartbeatJob.cancelRequested,
      leaseExpiresAt: new Date(heartbeatJob.leaseExpiresAt ?? Date.now()),
    };
  }

  async complete(items: Completion[]): Promise<CompletionOutcome[]> {
    return (await this.client.request(WorkerCompleteJobsDocument, { jobs: items })).completeJobs;
  }

  async release(items: Release[]): Promise<ReleaseOutcome[]> {
    return (await this.client.request(WorkerReleaseJobsDocument, { jobs: items })).releaseJobs;
  }

  async fail(failure: Failure): Promise<void> {
    await this.client.request(WorkerFailJobDocument, {
      jobId: failure.jobId,
      leaseToken: failure.leaseToken,
      error: failure.error,
      retryable: failure.retryable,
      ...(failure.retryInMs !== undefined && { retryInMs: failure.retryInMs }),
    });
  }

  watchAvailable(
    queues: string[],
    onSignal: (queue: string) => void,
    onError: (e: unknown) => void,
  ): AvailabilityWatch {
    const sub = this.client.watchJobsAvailable(queues);
    void (async () => {
      try {
        for await (const signal of sub) onSignal(signal.queue);
      } catch (e) {
        onError(e);
      }
    })();
    const client = this.client;
    return {
      get live() {
        return sub.active && client.connected;
      },
      close: () => sub.close(),
    };
  }
}

/** The services a LocalTransport runs on (what `startServer(...).services` holds). */
export interface LocalServices {
  jobs: JobService;
  live: LiveService;
}

/** The Worker in-process, on the job service itself: no HTTP, no WebSocket. */
export class LocalTransport implements WorkerTransport {
  constructor(readonly services: LocalServices) {}

  async claim(request: ClaimRequest): Promise<ClaimedJob[]> {
    const leased = await this.services.jobs.claim(request);
    return leased.map((job) => ({
      id: job.id,
      queue: job.queue,
      payload: job.payload,
      priority: job.priority,
      attempts: job.attempts,
      maxAttempts: job.maxAttempts,
      tags: job.tags,
      metadata: job.metadata,
      runAt: job.runAt,
      createdAt: job.createdAt,
      leaseToken: job.leaseToken,
      leaseExpiresAt: job.leaseExpiresAt,
    }));
  }

  async heartbeat(request: HeartbeatRequest): Promise<{ cancelRequested: boolean; leaseExpiresAt: Date }> {
    const { progress, ...rest } = request;
    const { job, cancelRequested } = await this.services.jobs.heartbeat({
      ...rest,
      ...(progress !== undefined && { progress }),
    });
    return { cancelRequested, leaseExpiresAt: job.leaseExpiresAt ?? new Date() };
  }

  async complete(items: Completion[]): Promise<CompletionOutcome[]> {
    const outcomes = await this.services.jobs.completeMany(items);
    return outcomes.map((o) => ({
      jobId: o.jobId,
      error: o.error === null ? null : { code: o.error.code, message: o.error.message },
    }));
  }

  async release(items: Release[]): Promise<ReleaseOutcome[]> {
    const outcomes = await this.services.jobs.releaseMany(items);
    return outcomes.map((o) => ({
      jobId: o.jobId,
      error: o.error === null ? null : { code: o.error.code, message: o.error.message },
    }));
  }

  async fail(failure: Failure): Promise<void> {
    await this.services.jobs.fail(failure);
  }

  watchAvailable(
    queues: string[],
    onSignal: (queue: string) => void,
    onError: (e: unknown) => void,
  ): AvailabilityWatch {
    let closed = false;
    let live = false;
    let stream: Awaited<ReturnType<LiveService["jobsAvailable"]>> | null = null;
    void (async () => {
      try {
        stream = await this.services.live.jobsAvailable(queues);
        if (closed) return void (await stream.return());
        live = true;
        for await (const signal of stream) onSignal(signal.queue);
      } catch (e) {
        if (!closed) onError(e);
      } finally {
        live = false;
      }
    })();
    return {
      get live() {
        return live && !closed;
      },
      close: () => {
        closed = true;
        void stream?.return();
      },
    };
  }
}
