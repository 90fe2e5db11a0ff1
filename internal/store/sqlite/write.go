package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// Admit implements store.Store.
func (s *Store) Admit(ctx context.Context, p store.AdmitParams) (store.AdmitResult, error) {
	if p.Job == nil || p.Definition == nil {
		return store.AdmitResult{}, errors.New("admit job: job and definition are required")
	}
	// Encode before the transaction: the single writer should hold its lock for as short a
	// time as possible.
	enc, err := encodeJob(p.Job)
	if err != nil {
		return store.AdmitResult{}, fmt.Errorf("admit job %s: %w", p.Job.ID, err)
	}
	var (
		res store.AdmitResult
		// rejected is the admission error of a firing: the transaction commits the firing's
		// record, and Admit still returns the error.
		rejected error
	)
	// An admission goes ahead of the job ends and task updates waiting for the writer: a
	// firing's lateness and a request's latency are its wait (see groupcommit.go).
	err = s.groupTxFirst(ctx, func(ctx context.Context) error {
		if p.Firing != nil {
			return s.admitFiring(ctx, p, enc, &res, &rejected)
		}
		return s.admit(ctx, p, enc, &res)
	})
	if err == nil && rejected != nil {
		return store.AdmitResult{}, rejected
	}
	if err != nil {
		var rejected errRejected
		if errors.As(err, &rejected) {
			return store.AdmitResult{}, rejected.err
		}
		return store.AdmitResult{}, fmt.Errorf("admit job %s: %w", p.Job.ID, err)
	}
	return res, nil
}

// encodedJob holds the columns of a new job that need encoding, encoded.
type encodedJob struct {
	vars, def any
	tasks     []encodedTask
}

// encodeJob encodes the variables, the definition snapshot and the tasks of j.
func encodeJob(j *pipeline.Job) (encodedJob, error) {
	vars, err := encodeVariables(j.Variables)
	if err != nil {
		return encodedJob{}, err
	}
	def, err := encodeDefinition(j.Definition)
	if err != nil {
		return encodedJob{}, err
	}
	tasks := make([]encodedTask, len(j.Tasks))
	for i, t := range j.Tasks {
		if tasks[i], err = encodeTask(t); err != nil {
			return encodedJob{}, fmt.Errorf("task %q: %w", t.Name, err)
		}
	}
	return encodedJob{vars: vars, def: def, tasks: tasks}, nil
}

// admit is Admit inside the write transaction. A request whose idempotency key is stored
// already names that job and changes nothing; otherwise the pipeline's admission rule decides,
// the waiting jobs it replaces end, and the job is inserted, running or queued. A rejection
// comes back as errRejected.
func (s *Store) admit(ctx context.Context, p store.AdmitParams, enc encodedJob, res *store.AdmitResult) error {
	if found, err := s.lookupIdempotencyKey(ctx, p.IdempotencyKey, res); found || err != nil {
		return err
	}
	decision, err := s.decideAdmission(ctx, p)
	if err != nil {
		return err
	}
	if len(decision.Replace) > 0 {
		replacedVars, err := s.replaceWaiting(ctx, p, decision.Replace)
		if err != nil {
			return err
		}
		res.Replaced = slices.Clone(decision.Replace)
		if enc, err = carryOverVariables(p, replacedVars, enc); err != nil {
			return err
		}
	}
	start := decision.Start && !p.NoStart // a node without room leaves the job to a claim
	if err := s.insertAdmitted(ctx, p, enc, start); err != nil {
		return err
	}
	res.Started, res.Held = start, decision.Start && !start
	return nil
}

// lookupIdempotencyKey reports whether a stored job has key, and then names it in res. An
// empty key is never stored.
func (s *Store) lookupIdempotencyKey(ctx context.Context, key string, res *store.AdmitResult) (bool, error) {
	if key == "" {
		return false, nil
	}
	err := s.ws.idempotencyLookup.QueryRowContext(ctx, key).Scan(&res.ExistingID, &res.ExistingPipeline)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("look up idempotency key: %w", err)
	}
	return false, nil
}

// decideAdmission reads the pipeline's running jobs and wait list and applies the pipeline's
// admission rule (pipeline.Definition.AdmitWith) to them.
func (s *Store) decideAdmission(ctx context.Context, p store.AdmitParams) (pipeline.Admission, error) {
	j := p.Job
	running, queued, err := s.pipelineCounts(ctx, j.Pipeline)
	if err != nil {
		return pipeline.Admission{}, fmt.Errorf("read pipeline state: %w", err)
	}
	waiting := &waitList{ctx: ctx, s: s, pipeline: j.Pipeline, queued: queued}
	decision, err := p.Definition.AdmitWith(running, waiting, j.QueuePartition)
	if waiting.err != nil {
		return pipeline.Admission{}, fmt.Errorf("read wait list: %w", waiting.err)
	}
	if err != nil {
		// The rejection is a domain error (ErrQueueFull, ErrNoQueue) that already names
		// the pipeline; it is returned as is so the API can show its message.
		return pipeline.Admission{}, errRejected{err}
	}
	return decision, nil
}

// replaceWaiting ends the waiting jobs ids as replaced by the new job, their tasks skipped,
// and writes their records. It returns the replaced jobs' variables in the order of ids (the
// wait list's, oldest first), still encoded.
func (s *Store) replaceWaiting(ctx context.Context, p store.AdmitParams, ids []string) ([]sql.NullString, error) {
	j := p.Job
	seqs := make([]int64, len(ids))
	vars := make([]sql.NullString, len(ids))
	for i, id := range ids {
		if err := s.ws.replaceJob.QueryRowContext(ctx, nanos(p.Now), j.ID, id, j.Pipeline).Scan(&seqs[i], &vars[i]); err != nil {
			return nil, fmt.Errorf("replace job %s: %w", id, err)
		}
		if _, err := s.ws.skipTasks.ExecContext(ctx, seqs[i]); err != nil {
			return nil, fmt.Errorf("replace job %s: skip tasks: %w", id, err)
		}
	}
	slices.Sort(seqs)
	return vars, s.writeRecords(ctx, seqs)
}

// carryOverVariables applies the pipeline's replace_variables: the new job takes over values of
// the jobs it replaces (pipeline.MergeReplacedVariables), and what it stores, runs with and shows
// are the merged variables. Without replace_variables, enc is returned as it is.
func carryOverVariables(p store.AdmitParams, replaced []sql.NullString, enc encodedJob) (encodedJob, error) {
	if len(p.Definition.ReplaceVariables) == 0 {
		return enc, nil
	}
	olds := make([]map[string]any, len(replaced))
	for i, col := range replaced {
		m, err := decodeVariables(col)
		if err != nil {
			return enc, fmt.Errorf("replaced job's variables: %w", err)
		}
		olds[i] = m
	}
	merged := pipeline.MergeReplacedVariables(p.Definition, olds, p.Job.Variables)
	vars, err := encodeVariables(merged)
	if err != nil {
		return enc, err
	}
	enc.vars = vars
	return enc, nil
}

// insertAdmitted inserts the new job, running when start is true and else queued, with its
// idempotency key and its tasks.
func (s *Store) insertAdmitted(ctx context.Context, p store.AdmitParams, enc encodedJob, start bool) error {
	j := p.Job
	status, started := pipeline.JobQueued, any(nil)
	if start {
		status, started = pipeline.JobRunning, nanos(p.Now)
	}
	schedule, scheduledFor := j.Schedule, nanosPtr(j.ScheduledFor)
	if f := p.Firing; f != nil {
		// The firing is what the job stands for, whatever the caller set.
		schedule, scheduledFor = f.ScheduleID, nanos(f.FireTime)
	}
	r, err := s.ws.insertJob.ExecContext(ctx,
		j.ID, j.Pipeline, string(status), enc.vars, j.User, j.QueuePartition,
		nanos(j.Created), nanos(j.StartAfter), started, enc.def, schedule, scheduledFor)
	if err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	seq, err := r.LastInsertId()
	if err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	if p.IdempotencyKey != "" {
		if _, err := s.ws.setIdempotencyKey.ExecContext(ctx, p.IdempotencyKey, seq); err != nil {
			return fmt.Errorf("store idempotency key: %w", err)
		}
	}
	for i, t := range j.Tasks {
		if err := s.insertTask(ctx, seq, i, t, enc.tasks[i]); err != nil {
			return fmt.Errorf("insert task %q: %w", t.Name, err)
		}
	}
	return nil
}

// loadStartedJobs reads the jobs that a claim started, with their definitions, inside the write
// transaction. A claim starts one job or a few (the slots that freed): each is read with the
// prepared statements; only a large batch (a start-up, a raised concurrency) uses one query for
// all.
func (s *Store) loadStartedJobs(ctx context.Context, seqs []int64) ([]*pipeline.Job, error) {
	if len(seqs) > 16 {
		return s.loadJobsBySeq(ctx, s.wconn, seqs)
	}
	jobs := make([]*pipeline.Job, len(seqs))
	for i, seq := range seqs {
		j, err := s.jobWithTasks(ctx, s.ws.jobBySeq, seq)
		if err != nil {
			return nil, err
		}
		jobs[i] = j
	}
	return jobs, nil
}

// insertTask inserts the record of a job's task at position pos, inside a write transaction.
func (s *Store) insertTask(ctx context.Context, seq int64, pos int, t pipeline.Task, e encodedTask) error {
	_, err := s.ws.insertTask.ExecContext(ctx, seq, pos, t.Name, e.deps, string(t.Status),
		nanosPtr(t.Start), nanosPtr(t.End), t.ExitCode, t.Errored, t.Error, t.Attempt, e.attempts)
	return err
}

// errRejected carries an admission rejection out of the transaction unwrapped.
type errRejected struct{ err error }

func (e errRejected) Error() string { return e.err.Error() }
func (e errRejected) Unwrap() error { return e.err }

// Claim implements store.Store.
func (s *Store) Claim(ctx context.Context, p store.ClaimParams) (store.ClaimResult, error) {
	var res store.ClaimResult
	err := s.groupTx(ctx, func(ctx context.Context) error {
		var err error
		res, err = s.claim(ctx, p)
		return err
	})
	if err != nil {
		return store.ClaimResult{}, fmt.Errorf("claim jobs of pipeline %s: %w", p.Pipeline, err)
	}
	return res, nil
}

// claim is Claim inside a write transaction. A pipeline without waiting jobs has nothing to
// claim and no start delay to report: that common case (every job end of a pipeline that is
// not full) costs one lookup of the counts.
func (s *Store) claim(ctx context.Context, p store.ClaimParams) (store.ClaimResult, error) {
	var res store.ClaimResult
	running, queued, err := s.pipelineCounts(ctx, p.Pipeline)
	if err != nil {
		return res, fmt.Errorf("read pipeline state: %w", err)
	}
	if queued == 0 {
		return res, nil
	}
	ready, readySeqs, next, err := s.claimable(ctx, p.Pipeline, p.Concurrency-running, p.Now)
	if err != nil {
		return res, fmt.Errorf("read wait list: %w", err)
	}
	ids, _ := pipeline.Claimable(running, p.Concurrency, ready, p.Now)
	ids = store.LimitClaim(ids, p.Limit)
	res.NextStart = next
	if len(ids) == 0 {
		return res, nil
	}
	seqs := readySeqs[:len(ids)]
	for i, id := range ids {
		if _, err := s.ws.startJob.ExecContext(ctx, nanos(p.Now), seqs[i]); err != nil {
			return res, fmt.Errorf("start job %s: %w", id, err)
		}
	}
	// Claimable keeps wait-list order, so seqs ascend; the jobs come back in that order.
	res.Started, err = s.loadStartedJobs(ctx, seqs)
	return res, err
}

// UpdateTask implements store.Store. It does not check the job's status: the runner owns the
// order of its writes, and a late task record of a job that just ended is still true. A wide job
// starts and ends hundreds of tasks at once: their updates share transactions (groupTx).
func (s *Store) UpdateTask(ctx context.Context, jobID string, t pipeline.Task) error {
	e, err := encodeTask(t)
	if err != nil {
		return fmt.Errorf("job %s: update task %q: %w", jobID, t.Name, err)
	}
	args := []any{jobID, t.Name, e.deps, string(t.Status), nanosPtr(t.Start), nanosPtr(t.End), t.ExitCode,
		t.Errored, t.Error, t.Attempt, e.attempts}
	write := func(ctx context.Context) error {
		// A task the job has is updated in place; only a new one (the on_error task) takes the
		// upsert. The update that found nothing changed nothing.
		r, err := s.ws.updateTask.ExecContext(ctx, args...)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			if r, err = s.ws.upsertTask.ExecContext(ctx, args...); err != nil {
				return err
			}
			if n, err := r.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				return errNoChange{pipeline.ErrJobNotFound}
			}
		}
		if t.Errored {
			if _, err := s.ws.markErrored.ExecContext(ctx, jobID); err != nil {
				return err
			}
		}
		return nil
	}
	if t.Errored {
		err = s.groupTx(ctx, write) // two statements: a savepoint keeps them together
	} else {
		err = s.groupTxOne(ctx, write)
	}
	if err != nil {
		return fmt.Errorf("job %s: update task %q: %w", jobID, t.Name, err)
	}
	return nil
}

// lookupStatus reads the seq and status of a job inside a write transaction.
func (s *Store) lookupStatus(ctx context.Context, jobID string) (int64, pipeline.JobStatus, error) {
	var (
		seq    int64
		status string
	)
	err := s.ws.jobStatus.QueryRowContext(ctx, jobID).Scan(&seq, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", pipeline.ErrJobNotFound
	}
	return seq, pipeline.JobStatus(status), err
}

// FinishJob implements store.Store. A job that failed is also marked errored.
func (s *Store) FinishJob(ctx context.Context, p store.FinishParams) error {
	if !p.Status.Final() {
		return fmt.Errorf("finish job %s: status %q is not final", p.JobID, p.Status)
	}
	err := s.groupTx(ctx, func(ctx context.Context) error { return s.finishJob(ctx, p) })
	if err != nil {
		return fmt.Errorf("finish job %s: %w", p.JobID, err)
	}
	return nil
}

// FinishAndClaim implements store.Store: FinishJob and Claim in one transaction.
func (s *Store) FinishAndClaim(ctx context.Context, f store.FinishParams, c store.ClaimParams) (store.ClaimResult, error) {
	if !f.Status.Final() {
		return store.ClaimResult{}, fmt.Errorf("finish job %s: status %q is not final", f.JobID, f.Status)
	}
	var res store.ClaimResult
	err := s.groupTx(ctx, func(ctx context.Context) error {
		if err := s.finishJob(ctx, f); err != nil {
			return fmt.Errorf("finish job %s: %w", f.JobID, err)
		}
		var err error
		if res, err = s.claim(ctx, c); err != nil {
			return fmt.Errorf("claim jobs of pipeline %s: %w", c.Pipeline, err)
		}
		return nil
	})
	if err != nil {
		return store.ClaimResult{}, err
	}
	return res, nil
}

// finishJob is FinishJob inside a write transaction.
func (s *Store) finishJob(ctx context.Context, p store.FinishParams) error {
	pending, running := p.PendingTasks, p.RunningTasks
	if pending == "" {
		pending = pipeline.TaskSkipped
	}
	if running == "" {
		running = pipeline.TaskCanceled
	}
	seq, status, err := s.lookupStatus(ctx, p.JobID)
	if err != nil {
		return err
	}
	if status.Final() {
		return fmt.Errorf("%w (status %s)", pipeline.ErrJobFinished, status)
	}
	end := nanos(p.End)
	if _, err := s.ws.finishJob.ExecContext(ctx,
		string(p.Status), end, p.LastError, p.Status == pipeline.JobFailed, seq, p.ReplacedBy); err != nil {
		return err
	}
	if _, err := s.ws.finishTasks.ExecContext(ctx, string(running), string(pending), end, seq); err != nil {
		return err
	}
	return s.writeRecords(ctx, []int64{seq})
}

// CancelQueued implements store.Store.
func (s *Store) CancelQueued(ctx context.Context, jobID string, now time.Time) (pipeline.JobStatus, error) {
	var before pipeline.JobStatus
	err := s.groupTx(ctx, func(ctx context.Context) error {
		seq, status, err := s.lookupStatus(ctx, jobID)
		if err != nil {
			return err
		}
		before = status
		if status != pipeline.JobQueued {
			return nil
		}
		if _, err := s.ws.cancelJob.ExecContext(ctx, nanos(now), seq); err != nil {
			return err
		}
		if _, err := s.ws.skipTasks.ExecContext(ctx, seq); err != nil {
			return err
		}
		return s.writeRecords(ctx, []int64{seq})
	})
	if err != nil {
		return "", fmt.Errorf("cancel queued job %s: %w", jobID, err)
	}
	return before, nil
}

// RecoverRunning implements store.Store. The jobs end failed and errored; their running tasks
// end as errors with the reason, their waiting tasks skipped.
func (s *Store) RecoverRunning(ctx context.Context, reason string, now time.Time) ([]string, error) {
	var ids []string
	err := s.groupTx(ctx, func(ctx context.Context) error {
		// Tasks first: the job status still tells which jobs are concerned.
		if _, err := s.wconn.ExecContext(ctx, `UPDATE tasks SET
				status = CASE status WHEN ?1 THEN ?3 ELSE ?4 END,
				errored = CASE status WHEN ?1 THEN 1 ELSE errored END,
				error = CASE status WHEN ?1 THEN ?5 ELSE error END,
				ended_at = CASE status WHEN ?1 THEN COALESCE(ended_at, ?6) ELSE ended_at END
			WHERE status IN `+openTaskStatuses+`
				AND job_seq IN (SELECT seq FROM jobs WHERE status = ?2)`,
			string(pipeline.TaskRunning), string(pipeline.JobRunning), string(pipeline.TaskError),
			string(pipeline.TaskSkipped), reason, nanos(now)); err != nil {
			return fmt.Errorf("end tasks: %w", err)
		}
		var (
			seqs []int64
			err  error
		)
		ids, seqs, err = collectIDs(s.wconn.QueryContext(ctx, `UPDATE jobs
			SET status = ?1, ended_at = ?2, last_error = ?3, errored = 1
			WHERE status = ?4 RETURNING seq, id`,
			string(pipeline.JobFailed), nanos(now), reason, string(pipeline.JobRunning)))
		if err != nil {
			return fmt.Errorf("end jobs: %w", err)
		}
		return s.writeRecords(ctx, seqs)
	})
	if err != nil {
		return nil, fmt.Errorf("recover running jobs: %w", err)
	}
	return ids, nil
}

// DeleteFinished implements store.Store. "Newest" is creation order, as in Jobs.
func (s *Store) DeleteFinished(ctx context.Context, p store.RetentionParams) ([]string, error) {
	if p.EndedBefore.IsZero() && p.KeepNewest <= 0 {
		return nil, nil
	}
	var ids []string
	err := s.groupTx(ctx, func(ctx context.Context) error {
		// The cut-off for KeepNewest is the seq of the first finished job beyond the newest N;
		// it and every older finished job go. The tasks follow through ON DELETE CASCADE.
		var err error
		ids, _, err = collectIDs(s.wconn.QueryContext(ctx, `DELETE FROM jobs
			WHERE pipeline = ?1 AND status IN `+finalJobStatuses+` AND (
				(?2 IS NOT NULL AND ended_at < ?2)
				OR (?3 > 0 AND seq <= (SELECT seq FROM jobs
					WHERE pipeline = ?1 AND status IN `+finalJobStatuses+`
					ORDER BY seq DESC LIMIT 1 OFFSET ?3)))
			RETURNING seq, id`,
			p.Pipeline, nanos(p.EndedBefore), max(p.KeepNewest, 0)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete finished jobs of pipeline %s: %w", p.Pipeline, err)
	}
	return ids, nil
}

// collectIDs reads the (seq, id) rows of a RETURNING clause, whose order SQLite does not
// define, and returns the IDs and seqs in creation order.
func collectIDs(rows *sql.Rows, err error) ([]string, []int64, error) {
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	type row struct {
		seq int64
		id  string
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.id); err != nil {
			return nil, nil, err
		}
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	slices.SortFunc(rs, func(a, b row) int { return cmp.Compare(a.seq, b.seq) })
	ids := make([]string, len(rs))
	seqs := make([]int64, len(rs))
	for i, r := range rs {
		ids[i], seqs[i] = r.id, r.seq
	}
	return ids, seqs, nil
}
