-- job_events loses its foreign key to jobs (PostgreSQL only; SQLite keeps it).
-- Each event insert checked it with SELECT … FOR KEY SHARE on the job row: a
-- row-lock WAL record per event on a row its own transaction had just updated,
-- plus the RI trigger's work. Measured on a store drain of 10,000 jobs (claim
-- 100 + completeMany, 4 loops): Heap LOCK records 3.9 -> 2.9 per job, drain
-- 9.1-9.6k -> 10.5-14.7k jobs/s. The store writes an event only with its job,
-- in one statement or transaction, and deletes a job's events with it
-- (deleteFinishedJobs), so nothing relied on the constraint.
ALTER TABLE "job_events" DROP CONSTRAINT "job_events_job_id_fkey";
