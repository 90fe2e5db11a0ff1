-- 0002_task_attempts adds the attempts of retried tasks.
--
-- attempt is the number of the task's current or last attempt (1-based); tasks written before
-- this migration ran once. attempts holds the finished attempts before it as a JSON array of
-- pipeline.TaskAttempt (number, start, end, exitCode, error), NULL when the task was not retried.

ALTER TABLE tasks ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tasks ADD COLUMN attempts TEXT;
