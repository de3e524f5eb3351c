-- Four indexes of "jobs" become partial (src/store/partial-indexes.ts says why
-- each): a job's row versions enter only the indexes whose predicate they meet.
-- Measured on PostgreSQL, store drain of 10,000 jobs (claim 100 + completeMany,
-- 4 loops): B-tree leaf inserts 14.8 -> 10.8 per job.
DROP INDEX "jobs_queue_idempotency_key_key";
CREATE UNIQUE INDEX "jobs_queue_idempotency_key_key" ON "jobs"("queue", "idempotency_key") WHERE "idempotency_key" IS NOT NULL;
DROP INDEX "jobs_queue_finished_at_idx";
CREATE INDEX "jobs_queue_finished_at_idx" ON "jobs"("queue", "finished_at") WHERE "finished_at" IS NOT NULL;
DROP INDEX "jobs_queue_started_at_idx";
CREATE INDEX "jobs_queue_started_at_idx" ON "jobs"("queue", "started_at") WHERE "started_at" IS NOT NULL;
DROP INDEX "jobs_lease_expires_at_idx";
CREATE INDEX "jobs_lease_expires_at_idx" ON "jobs"("lease_expires_at") WHERE "state" = 'RUNNING';
