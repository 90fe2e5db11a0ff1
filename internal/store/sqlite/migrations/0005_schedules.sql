-- 0005_schedules adds schedules (pipelines that start on their own, see pipeline.ScheduleSpec):
-- the job's schedule, the API schedules, the state of every schedule and its firing records.
--
-- A job started by a schedule names it (schedule_id, '' for every other job) and the fire time
-- it stands for (scheduled_for, NULL for none). Both are written once, at admission, and the
-- final record (record.go) carries them too, so the record triggers of 0004 need no change.
ALTER TABLE jobs ADD COLUMN schedule_id TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN scheduled_for INTEGER;

-- "Is a job of schedule X queued or running?" (overlap: skip) is asked by every such firing.
-- Only active jobs of schedules are in this index, so it stays as small as the running and
-- waiting jobs however long the history is, and admissions of other jobs never write it.
CREATE INDEX jobs_schedule_active ON jobs (schedule_id)
    WHERE schedule_id <> '' AND status IN ('queued', 'running');

-- The schedules created through the API (file schedules live in the pipelines files): the
-- encoding/json form of the pipeline.ScheduleSpec, by ID ("<pipeline>/<name>").
CREATE TABLE schedules (
    id         TEXT    PRIMARY KEY,
    spec       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- What is kept of every schedule (file or API) besides its spec: the pause and the cursor,
-- the latest fire time of the expression that was handled (pipeline.ScheduleState). firings
-- counts the schedule's firing records roughly (since the last prune), so that bounding them
-- costs nothing on most firings.
CREATE TABLE schedule_states (
    id         TEXT    PRIMARY KEY,
    paused     INTEGER NOT NULL DEFAULT 0,
    pause_note TEXT    NOT NULL DEFAULT '',
    paused_at  INTEGER,
    cursor     INTEGER,
    firings    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- One record per firing; the primary key is what makes a fire time start at most once. job_id
-- is the job it started ('' when none); the job may be deleted by retention later, the record
-- stays.
CREATE TABLE schedule_firings (
    schedule_id TEXT    NOT NULL,
    fire_time   INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    detail      TEXT    NOT NULL DEFAULT '',
    job_id      TEXT    NOT NULL DEFAULT '',
    recorded    INTEGER NOT NULL,
    PRIMARY KEY (schedule_id, fire_time)
) WITHOUT ROWID;
