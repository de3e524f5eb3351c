-- API tokens (issue 15). Only the SHA-256 of a token is stored: the token itself
-- is shown once when it is created. Revoking a token deletes its row.
CREATE TABLE "api_tokens" (
    "name" TEXT NOT NULL PRIMARY KEY,
    "token_hash" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "queues" TEXT NOT NULL,
    "created_at" DATETIME NOT NULL,
    "expires_at" DATETIME
);

CREATE UNIQUE INDEX "api_tokens_token_hash_key" ON "api_tokens"("token_hash");

-- The token name of the operator whose call wrote the event (cancel, retry,
-- reschedule, …); null for workers' and the server's own transitions, and
-- whenever auth is off.
ALTER TABLE "job_events" ADD COLUMN "actor" TEXT;
