-- 0004_final_record stores the whole record of a finished job in one column (see record.go): a
-- list of thousands of finished jobs reads one value per job instead of every column of the job
-- and its tasks. The record is a cache of the columns; the columns stay complete.
--
-- The transaction that makes a job final writes its record. The triggers drop the record when
-- anything it holds changes afterwards (a late task update of a finished job), so a record is
-- never stale: a job without one is read from its columns. Jobs finished before this migration
-- get their records right after it (Store.backfillRecords).

ALTER TABLE jobs ADD COLUMN final_record BLOB;

CREATE TRIGGER jobs_final_record_stale
AFTER UPDATE OF id, pipeline, status, variables, user_name, queue_partition, created_at, start_after,
    started_at, ended_at, last_error, errored, replaced_by ON jobs
WHEN NEW.final_record IS NOT NULL
BEGIN
    UPDATE jobs SET final_record = NULL WHERE seq = NEW.seq;
END;

CREATE TRIGGER tasks_insert_final_record_stale
AFTER INSERT ON tasks
BEGIN
    UPDATE jobs SET final_record = NULL WHERE seq = NEW.job_seq AND final_record IS NOT NULL;
END;

CREATE TRIGGER tasks_update_final_record_stale
AFTER UPDATE ON tasks
BEGIN
    UPDATE jobs SET final_record = NULL WHERE seq = NEW.job_seq AND final_record IS NOT NULL;
END;


-- The waiting jobs with a start delay, by pipeline and start: a claim asks for the earliest
-- future start of a pipeline's wait list, which without this index reads every waiting job.
-- Only delayed jobs are in it, so admissions without a delay do not write it.
CREATE INDEX jobs_delayed ON jobs (pipeline, start_after)
    WHERE status = 'queued' AND start_after IS NOT NULL;
