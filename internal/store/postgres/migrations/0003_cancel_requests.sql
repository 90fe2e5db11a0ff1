-- 0003_cancel_requests adds cancel requests (issue 12): a cancel asked through one node for a
-- job running on another is stored with the job (unix nanoseconds of the request; NULL: none),
-- and the owner polls its running jobs for it besides the notification it gets.
ALTER TABLE jobs ADD COLUMN cancel_requested_at bigint;
