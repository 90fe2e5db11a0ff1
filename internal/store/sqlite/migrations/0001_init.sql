-- 0001_init creates the job and task tables.
--
-- Times are INTEGER unix nanoseconds (UTC), NULL when absent. Status columns hold the persisted
-- tokens of pipeline.JobStatus and pipeline.TaskStatus. JSON columns (variables, definition,
-- depends_on) hold the encoding/json form of the Go values; NULL stands for a nil value.

CREATE TABLE jobs (
    -- seq is the creation order: list order and wait-list order. A new row gets the largest
    -- seq plus one, so the order of existing jobs always is their creation order. Without
    -- AUTOINCREMENT a seq may be reused once the newest jobs were deleted; that is harmless
    -- because nothing outside the database holds a seq (a paging cursor is a job ID), and it
    -- saves a write of sqlite_sequence in every admission.
    seq             INTEGER PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    pipeline        TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    variables       TEXT,
    user_name       TEXT    NOT NULL DEFAULT '',
    queue_partition TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER,
    start_after     INTEGER,
    started_at      INTEGER,
    ended_at        INTEGER,
    last_error      TEXT    NOT NULL DEFAULT '',
    errored         INTEGER NOT NULL DEFAULT 0,
    replaced_by     TEXT    NOT NULL DEFAULT '',
    definition      TEXT
);

-- Every index is written by every admission, so there are only two besides the ID.
-- By status: admission and claiming (the running count and the wait list of one pipeline in
-- seq order), the pipeline states, recovery and start-up (all running or queued jobs).
CREATE INDEX jobs_status_pipeline_seq ON jobs (status, pipeline, seq);
-- Listing one pipeline newest first; retention of one pipeline.
CREATE INDEX jobs_pipeline_seq ON jobs (pipeline, seq);

CREATE TABLE tasks (
    job_seq    INTEGER NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
    -- position is the API order of the job's tasks; the on_error task is appended last.
    position   INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    depends_on TEXT,
    status     TEXT    NOT NULL,
    started_at INTEGER,
    ended_at   INTEGER,
    exit_code  INTEGER NOT NULL DEFAULT 0,
    errored    INTEGER NOT NULL DEFAULT 0,
    error      TEXT    NOT NULL DEFAULT '',
    -- The table is clustered by (job_seq, position) so that loading the tasks of many jobs is
    -- one ordered range scan without a sort; a task name is unique per job through the index
    -- below, which is also the conflict target of the upsert in UpdateTask.
    PRIMARY KEY (job_seq, position)
) WITHOUT ROWID;

CREATE UNIQUE INDEX tasks_job_name ON tasks (job_seq, name);
