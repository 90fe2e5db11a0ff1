-- 0004_task_output keeps the output of tasks in the database (issue 12), so that every node reads
-- it and it survives the node that ran the task: each stream of an attempt is a sequence of
-- chunks, one row per batch its writer committed, at the byte offset where the chunk starts.
-- A stream's chunks are contiguous from offset 0 (a writer commits its batches one after the
-- other), so its size is the end of its last chunk. The task name is bytea because a task may
-- be named with any bytes (NUL included), which text cannot hold.
CREATE TABLE task_output (
    job_id  text    NOT NULL,
    task    bytea   NOT NULL,
    attempt integer NOT NULL,
    stream  text    NOT NULL,
    off     bigint  NOT NULL,
    data    bytea   NOT NULL,
    PRIMARY KEY (job_id, task, attempt, stream, off)
);
