-- jobwire initial schema (SQLite). Written by hand to match prisma/schema.prisma;
-- test/store/schema-drift.test.ts fails when the two disagree.
-- JSON columns are TEXT: a column declared JSONB would get NUMERIC affinity and
-- silently turn a JSON payload such as 12345678901234567890 into a float.
-- AUTOINCREMENT keeps ids increasing even after retention deletes the newest rows,
-- which "everything after event id X" relies on.

CREATE TABLE "jobs" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "queue" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "payload" TEXT,
    "result" TEXT,
    "error_message" TEXT,
    "error_code" TEXT,
    "error_details" TEXT,
    "priority" INTEGER NOT NULL DEFAULT 0,
    "run_at" DATETIME NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "max_attempts" INTEGER NOT NULL,
    "backoff" TEXT NOT NULL,
    "idempotency_key" TEXT,
    "worker_id" TEXT,
    "lease_token" TEXT,
    "lease_expires_at" DATETIME,
    "cancel_requested_at" DATETIME,
    "progress" TEXT,
    "tags" TEXT NOT NULL,
    "metadata" TEXT,
    "last_seq" INTEGER NOT NULL DEFAULT 0,
    "created_at" DATETIME NOT NULL,
    "started_at" DATETIME,
    "finished_at" DATETIME,
    "updated_at" DATETIME NOT NULL
);

CREATE TABLE "job_events" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "job_id" INTEGER NOT NULL,
    "seq" INTEGER NOT NULL,
    "type" TEXT NOT NULL,
    "from_state" TEXT,
    "to_state" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "data" TEXT,
    "created_at" DATETIME NOT NULL,
    CONSTRAINT "job_events_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE "queues" (
    "name" TEXT NOT NULL PRIMARY KEY,
    "paused" BOOLEAN NOT NULL DEFAULT false,
    "concurrency" INTEGER,
    "rate_limit_count" INTEGER,
    "rate_limit_interval_ms" INTEGER,
    "max_queued" INTEGER,
    "default_priority" INTEGER,
    "default_max_attempts" INTEGER,
    "default_backoff" TEXT,
    "default_lease_seconds" INTEGER,
    "retain_succeeded_seconds" INTEGER,
    "retain_failed_seconds" INTEGER,
    "recent_starts" TEXT,
    "created_at" DATETIME NOT NULL,
    "updated_at" DATETIME NOT NULL
);

CREATE UNIQUE INDEX "jobs_queue_idempotency_key_key" ON "jobs"("queue", "idempotency_key");
CREATE INDEX "jobs_queue_state_run_at_idx" ON "jobs"("queue", "state", "run_at");
CREATE INDEX "jobs_queue_finished_at_idx" ON "jobs"("queue", "finished_at");
CREATE INDEX "jobs_queue_started_at_idx" ON "jobs"("queue", "started_at");
CREATE INDEX "jobs_lease_expires_at_idx" ON "jobs"("lease_expires_at");
CREATE UNIQUE INDEX "job_events_job_id_seq_key" ON "job_events"("job_id", "seq");

-- Hot-path partial indexes (not expressible in schema.prisma; listed in
-- src/store/partial-indexes.ts). They hold only QUEUED / SCHEDULED rows, so claim
-- and promotion cost does not grow with the number of finished jobs.
CREATE INDEX "jobs_claim_idx" ON "jobs"("queue", "priority", "run_at", "id") WHERE "state" = 'QUEUED';
CREATE INDEX "jobs_scheduled_idx" ON "jobs"("queue", "run_at") WHERE "state" = 'SCHEDULED';

-- Per-queue counts by state (queue stats without scanning jobs). Every change of
-- a job's state appends deltas in the same transaction; maintenance folds them
-- into queue_state_counts (src/store/prisma-job-store.ts compactQueueCounts).
CREATE TABLE "queue_state_counts" (
    "queue" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "count" INTEGER NOT NULL,

    PRIMARY KEY ("queue", "state")
);

CREATE TABLE "queue_state_deltas" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "queue" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "delta" INTEGER NOT NULL
);

CREATE INDEX "queue_state_deltas_queue_idx" ON "queue_state_deltas"("queue");

CREATE TRIGGER "jobs_count_insert" AFTER INSERT ON "jobs" BEGIN
    INSERT INTO "queue_state_deltas" ("queue", "state", "delta") VALUES (NEW."queue", NEW."state", 1);
END;

CREATE TRIGGER "jobs_count_update" AFTER UPDATE OF "state" ON "jobs" WHEN OLD."state" <> NEW."state" BEGIN
    INSERT INTO "queue_state_deltas" ("queue", "state", "delta")
    VALUES (OLD."queue", OLD."state", -1), (NEW."queue", NEW."state", 1);
END;

CREATE TRIGGER "jobs_count_delete" AFTER DELETE ON "jobs" BEGIN
    INSERT INTO "queue_state_deltas" ("queue", "state", "delta") VALUES (OLD."queue", OLD."state", -1);
END;
