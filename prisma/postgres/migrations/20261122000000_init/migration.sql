-- jobwire initial schema (PostgreSQL). Written by hand to match prisma/schema.prisma;
-- test/store/schema-drift.test.ts fails when the two disagree.

CREATE TABLE "jobs" (
    "id" BIGSERIAL NOT NULL,
    "queue" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "payload" JSONB,
    "result" JSONB,
    "error_message" TEXT,
    "error_code" TEXT,
    "error_details" JSONB,
    "priority" INTEGER NOT NULL DEFAULT 0,
    "run_at" TIMESTAMP(3) NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "max_attempts" INTEGER NOT NULL,
    "backoff" JSONB NOT NULL,
    "idempotency_key" TEXT,
    "worker_id" TEXT,
    "lease_token" TEXT,
    "lease_expires_at" TIMESTAMP(3),
    "cancel_requested_at" TIMESTAMP(3),
    "progress" JSONB,
    "tags" JSONB NOT NULL,
    "metadata" JSONB,
    "last_seq" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMP(3) NOT NULL,
    "started_at" TIMESTAMP(3),
    "finished_at" TIMESTAMP(3),
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "jobs_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "job_events" (
    "id" BIGSERIAL NOT NULL,
    "job_id" BIGINT NOT NULL,
    "seq" INTEGER NOT NULL,
    "type" TEXT NOT NULL,
    "from_state" TEXT,
    "to_state" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "data" JSONB,
    "created_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "job_events_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "queues" (
    "name" TEXT NOT NULL,
    "paused" BOOLEAN NOT NULL DEFAULT false,
    "concurrency" INTEGER,
    "rate_limit_count" INTEGER,
    "rate_limit_interval_ms" INTEGER,
    "max_queued" INTEGER,
    "default_priority" INTEGER,
    "default_max_attempts" INTEGER,
    "default_backoff" JSONB,
    "default_lease_seconds" INTEGER,
    "retain_succeeded_seconds" INTEGER,
    "retain_failed_seconds" INTEGER,
    "recent_starts" JSONB,
    "created_at" TIMESTAMP(3) NOT NULL,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "queues_pkey" PRIMARY KEY ("name")
);

CREATE UNIQUE INDEX "jobs_queue_idempotency_key_key" ON "jobs"("queue", "idempotency_key");
CREATE INDEX "jobs_queue_state_run_at_idx" ON "jobs"("queue", "state", "run_at");
CREATE INDEX "jobs_queue_finished_at_idx" ON "jobs"("queue", "finished_at");
CREATE INDEX "jobs_queue_started_at_idx" ON "jobs"("queue", "started_at");
CREATE INDEX "jobs_lease_expires_at_idx" ON "jobs"("lease_expires_at");
CREATE UNIQUE INDEX "job_events_job_id_seq_key" ON "job_events"("job_id", "seq");

ALTER TABLE "job_events" ADD CONSTRAINT "job_events_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Hot-path partial indexes (not expressible in schema.prisma; listed in
-- src/store/partial-indexes.ts). They hold only QUEUED / SCHEDULED rows, so claim
-- and promotion cost does not grow with the number of finished jobs.
CREATE INDEX "jobs_claim_idx" ON "jobs"("queue", "priority", "run_at", "id") WHERE "state" = 'QUEUED';
CREATE INDEX "jobs_scheduled_idx" ON "jobs"("queue", "run_at") WHERE "state" = 'SCHEDULED';

-- Per-queue counts by state (queue stats without scanning jobs). Every statement
-- that changes job states appends one delta per (queue, state) in the same
-- transaction (statement triggers with transition tables); maintenance folds them
-- into queue_state_counts (src/store/prisma-job-store.ts compactQueueCounts).
CREATE TABLE "queue_state_counts" (
    "queue" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "count" BIGINT NOT NULL,

    CONSTRAINT "queue_state_counts_pkey" PRIMARY KEY ("queue", "state")
);

CREATE TABLE "queue_state_deltas" (
    "id" BIGSERIAL NOT NULL,
    "queue" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "delta" INTEGER NOT NULL,

    CONSTRAINT "queue_state_deltas_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "queue_state_deltas_queue_idx" ON "queue_state_deltas"("queue");

CREATE FUNCTION "jobwire_count_inserted"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO "queue_state_deltas" ("queue", "state", "delta")
    SELECT "queue", "state", COUNT(*) FROM "new_rows" GROUP BY "queue", "state";
    RETURN NULL;
END $$;

CREATE FUNCTION "jobwire_count_updated"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO "queue_state_deltas" ("queue", "state", "delta")
    SELECT "queue", "state", SUM("d") FROM (
        SELECT n."queue", n."state", 1 AS "d" FROM "new_rows" n JOIN "old_rows" o ON o."id" = n."id"
         WHERE n."state" <> o."state"
        UNION ALL
        SELECT o."queue", o."state", -1 FROM "new_rows" n JOIN "old_rows" o ON o."id" = n."id"
         WHERE n."state" <> o."state"
    ) AS "changes"
    GROUP BY "queue", "state";
    RETURN NULL;
END $$;

CREATE FUNCTION "jobwire_count_deleted"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO "queue_state_deltas" ("queue", "state", "delta")
    SELECT "queue", "state", -COUNT(*) FROM "old_rows" GROUP BY "queue", "state";
    RETURN NULL;
END $$;

CREATE TRIGGER "jobs_count_insert" AFTER INSERT ON "jobs"
    REFERENCING NEW TABLE AS "new_rows" FOR EACH STATEMENT EXECUTE FUNCTION "jobwire_count_inserted"();
CREATE TRIGGER "jobs_count_update" AFTER UPDATE ON "jobs"
    REFERENCING OLD TABLE AS "old_rows" NEW TABLE AS "new_rows" FOR EACH STATEMENT EXECUTE FUNCTION "jobwire_count_updated"();
CREATE TRIGGER "jobs_count_delete" AFTER DELETE ON "jobs"
    REFERENCING OLD TABLE AS "old_rows" FOR EACH STATEMENT EXECUTE FUNCTION "jobwire_count_deleted"();
