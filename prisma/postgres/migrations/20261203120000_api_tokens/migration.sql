-- API tokens (issue 15). Only the SHA-256 of a token is stored: the token itself
-- is shown once when it is created. Revoking a token deletes its row.
CREATE TABLE "api_tokens" (
    "name" TEXT NOT NULL,
    "token_hash" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "queues" JSONB NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL,
    "expires_at" TIMESTAMP(3),

    CONSTRAINT "api_tokens_pkey" PRIMARY KEY ("name")
);

CREATE UNIQUE INDEX "api_tokens_token_hash_key" ON "api_tokens"("token_hash");

-- The token name of the operator whose call wrote the event (cancel, retry,
-- reschedule, …); null for workers' and the server's own transitions, and
-- whenever auth is off. Nullable without default: no table rewrite.
ALTER TABLE "job_events" ADD COLUMN "actor" TEXT;
