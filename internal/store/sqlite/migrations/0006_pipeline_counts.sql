-- 0006_pipeline_counts keeps the number of running and of queued jobs of every pipeline in a
-- row, so that an admission or a claim reads them with one primary-key lookup: counting them in
-- the status index costs O(running jobs) per call, O(n²) over a burst of thousands of jobs.
--
-- The triggers keep the counts in the transaction that changes a job's status, whatever the
-- write (admission, claim, end, cancel, recovery, import, retention): a crash leaves both or
-- neither. A row, once made, stays (with zeros when its pipeline is idle).
CREATE TABLE pipeline_counts (
    pipeline TEXT    PRIMARY KEY,
    running  INTEGER NOT NULL DEFAULT 0,
    queued   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- The counts of the jobs that exist already (a file migrated from an earlier version).
INSERT INTO pipeline_counts (pipeline, running, queued)
    SELECT pipeline, sum(status = 'running'), sum(status = 'queued')
    FROM jobs WHERE status IN ('running', 'queued') GROUP BY pipeline;

-- A job enters the counts of its status when it is inserted running or queued or changes to
-- one of these statuses, and leaves them when it changes from one or is deleted. "WHERE true"
-- tells the parser that ON CONFLICT belongs to the INSERT.
CREATE TRIGGER jobs_count_insert
AFTER INSERT ON jobs
WHEN NEW.status IN ('running', 'queued')
BEGIN
    INSERT INTO pipeline_counts (pipeline, running, queued)
        SELECT NEW.pipeline, NEW.status = 'running', NEW.status = 'queued' WHERE true
        ON CONFLICT (pipeline) DO UPDATE SET running = running + excluded.running,
            queued = queued + excluded.queued;
END;

CREATE TRIGGER jobs_count_delete
AFTER DELETE ON jobs
WHEN OLD.status IN ('running', 'queued')
BEGIN
    UPDATE pipeline_counts SET running = running - (OLD.status = 'running'),
        queued = queued - (OLD.status = 'queued')
        WHERE pipeline = OLD.pipeline;
END;

CREATE TRIGGER jobs_count_leave
AFTER UPDATE OF status, pipeline ON jobs
WHEN OLD.status IN ('running', 'queued') AND (OLD.status <> NEW.status OR OLD.pipeline <> NEW.pipeline)
BEGIN
    UPDATE pipeline_counts SET running = running - (OLD.status = 'running'),
        queued = queued - (OLD.status = 'queued')
        WHERE pipeline = OLD.pipeline;
END;

CREATE TRIGGER jobs_count_enter
AFTER UPDATE OF status, pipeline ON jobs
WHEN NEW.status IN ('running', 'queued') AND (OLD.status <> NEW.status OR OLD.pipeline <> NEW.pipeline)
BEGIN
    INSERT INTO pipeline_counts (pipeline, running, queued)
        SELECT NEW.pipeline, NEW.status = 'running', NEW.status = 'queued' WHERE true
        ON CONFLICT (pipeline) DO UPDATE SET running = running + excluded.running,
            queued = queued + excluded.queued;
END;
