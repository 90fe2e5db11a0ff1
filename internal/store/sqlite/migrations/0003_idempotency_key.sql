-- 0003_idempotency_key stores the optional idempotency key of a schedule request, so that a
-- repeated request with the same key finds the job it already made. Keys are unique among the
-- stored jobs; retention frees the key of a deleted job.

ALTER TABLE jobs ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
