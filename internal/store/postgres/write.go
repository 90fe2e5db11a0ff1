package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// sqlList renders persisted status tokens as an SQL list literal. The tokens are constants of
// the pipeline package, never user input.
func sqlList[T ~string](values ...T) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = "'" + string(v) + "'"
	}
	return "(" + strings.Join(quoted, ", ") + ")"
}

var (
	// finalJobStatuses are the statuses of finished jobs (the ones retention may delete).
	finalJobStatuses = sqlList(pipeline.JobSucceeded, pipeline.JobFailed, pipeline.JobCanceled, pipeline.JobReplaced)
	// openTaskStatuses are the statuses of tasks that have not ended.
	openTaskStatuses = sqlList(pipeline.TaskWaiting, pipeline.TaskRunning)
)

const (
	queued  = string(pipeline.JobQueued)
	running = string(pipeline.JobRunning)
)

// The statements of the write paths: fixed texts, so that pgx prepares each once per
// connection (its statement cache) and later runs reuse the plan.
var (
	// lockPipelineSQL locks the row of a pipeline: the admission lock (see the package doc).
	lockPipelineSQL   = `SELECT running FROM pipelines WHERE name = $1 FOR UPDATE`
	createPipelineSQL = `INSERT INTO pipelines (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`
	addRunningSQL     = `UPDATE pipelines SET running = running + $2 WHERE name = $1`
	// lockJobPipelineSQL finds a job and locks its pipeline's row (every job's pipeline has one).
	lockJobPipelineSQL = `SELECT j.seq, j.pipeline FROM jobs j JOIN pipelines p ON p.name = j.pipeline
		WHERE j.id = $1 FOR UPDATE OF p`
	jobStatusSQL = `SELECT status FROM jobs WHERE seq = $1`

	insertJobSQL = `INSERT INTO jobs (id, pipeline, status, variables, user_name, queue_partition,
		created_at, start_after, started_at, definition, schedule_id, scheduled_for, idempotency_key,
		node, lease_epoch)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULLIF($13, ''), $14, $15)`
	// insertTaskSQL inserts a task of the job whose ID is $1 (inserted before, in the same
	// batch: the task needs no round trip for the job's seq).
	insertTaskSQL = `INSERT INTO tasks (job_seq, position, name, depends_on, status, started_at,
		ended_at, exit_code, errored, error, attempt, attempts)
		VALUES ((SELECT seq FROM jobs WHERE id = $1), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`
	replaceJobsSQL = `UPDATE jobs SET status = '` + string(pipeline.JobReplaced) + `', ended_at = $1, replaced_by = $2
		WHERE id = ANY($3::text[]) AND pipeline = $4 AND status = '` + queued + `' RETURNING id, seq, variables`
	skipTasksSQL = `UPDATE tasks SET status = '` + string(pipeline.TaskSkipped) + `'
		WHERE job_seq = ANY($1::bigint[]) AND status IN ` + openTaskStatuses
	idempotencyLookupSQL = `SELECT id, pipeline FROM jobs WHERE idempotency_key = $1`
	cancelJobSQL         = `UPDATE jobs SET status = '` + string(pipeline.JobCanceled) + `', ended_at = $1 WHERE seq = $2`

	// updateTaskSQL rewrites a task the job has.
	updateTaskSQL = `UPDATE tasks SET depends_on = $3, status = $4, started_at = $5, ended_at = $6,
			exit_code = $7, errored = $8, error = $9, attempt = $10, attempts = $11
		WHERE job_seq = (SELECT seq FROM jobs WHERE id = $1) AND name = $2`
	// upsertTaskSQL inserts at the next position when the job has no task of that name (the
	// on_error task), else overwrites the record. No row is written when the job does not exist.
	upsertTaskSQL = `INSERT INTO tasks AS t (job_seq, position, name, depends_on, status, started_at,
			ended_at, exit_code, errored, error, attempt, attempts)
		SELECT j.seq, COALESCE((SELECT max(o.position) + 1 FROM tasks o WHERE o.job_seq = j.seq), 0),
			$2::text, $3::text, $4::text, $5::bigint, $6::bigint, $7::integer, $8::boolean, $9::text, $10::integer, $11::text
		FROM jobs j WHERE j.id = $1
		ON CONFLICT (job_seq, name) DO UPDATE SET depends_on = EXCLUDED.depends_on,
			status = EXCLUDED.status, started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at,
			exit_code = EXCLUDED.exit_code, errored = EXCLUDED.errored, error = EXCLUDED.error,
			attempt = EXCLUDED.attempt, attempts = EXCLUDED.attempts`
	markErroredSQL = `UPDATE jobs SET errored = true WHERE id = $1`
)

// lockPipeline locks the row of a pipeline, creating it when missing, and returns its running
// count.
func lockPipeline(ctx context.Context, tx pgx.Tx, name string) (int, error) {
	var n int
	err := tx.QueryRow(ctx, lockPipelineSQL, name).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := tx.Exec(ctx, createPipelineSQL, name); err != nil {
			return 0, fmt.Errorf("create pipeline row: %w", err)
		}
		err = tx.QueryRow(ctx, lockPipelineSQL, name).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("lock pipeline: %w", err)
	}
	return n, nil
}

// lockJobPipeline finds a job by ID and locks its pipeline's row; pipeline.ErrJobNotFound when
// there is no such job.
func lockJobPipeline(ctx context.Context, tx pgx.Tx, jobID string) (seq int64, name string, err error) {
	err = tx.QueryRow(ctx, lockJobPipelineSQL, jobID).Scan(&seq, &name)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", pipeline.ErrJobNotFound
	}
	return seq, name, err
}

// Admit implements store.Store.
func (s *Store) Admit(ctx context.Context, p store.AdmitParams) (store.AdmitResult, error) {
	if p.Job == nil || p.Definition == nil {
		return store.AdmitResult{}, errors.New("admit job: job and definition are required")
	}
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
	err = s.writeTx(ctx, func(tx pgx.Tx) error {
		res, rejected = store.AdmitResult{}, nil
		if p.Firing != nil {
			return s.admitFiring(ctx, tx, p, enc, &res, &rejected)
		}
		return s.admit(ctx, tx, p, enc, &res)
	})
	switch {
	case errors.Is(err, errAlreadyFired):
		return store.AdmitResult{AlreadyFired: true}, nil
	case err == nil && rejected != nil:
		return store.AdmitResult{}, rejected
	case err != nil:
		var rej errRejected
		if errors.As(err, &rej) {
			return store.AdmitResult{}, rej.err
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

// admit is Admit inside the transaction. A request whose idempotency key is stored already names
// that job and changes nothing; otherwise, under the pipeline's lock, the admission rule
// decides, the waiting jobs it replaces end, and the job is inserted, running or queued. A
// rejection comes back as errRejected.
func (s *Store) admit(ctx context.Context, tx pgx.Tx, p store.AdmitParams, enc encodedJob, res *store.AdmitResult) error {
	r, err := s.readForAdmission(ctx, tx, p, res)
	if err != nil || r.found {
		return err
	}
	waiting := &waitList{ctx: ctx, tx: tx, pipeline: p.Job.Pipeline, n: r.waiting}
	decision, err := p.Definition.AdmitWith(r.running, waiting, p.Job.QueuePartition)
	if waiting.err != nil {
		return fmt.Errorf("read wait list: %w", waiting.err)
	}
	if err != nil {
		// A domain error (ErrQueueFull, ErrNoQueue) that already names the pipeline.
		return errRejected{err}
	}
	if len(decision.Replace) > 0 {
		replacedVars, err := replaceWaiting(ctx, tx, p, decision.Replace)
		if err != nil {
			return err
		}
		res.Replaced = slices.Clone(decision.Replace)
		if enc, err = carryOverVariables(p, replacedVars, enc); err != nil {
			return err
		}
	}
	start := decision.Start && !p.NoStart // a node without room leaves the job to a claim
	if err := s.insertAdmitted(ctx, tx, p, enc, start); err != nil {
		return err
	}
	res.Started, res.Held = start, decision.Start && !start
	return nil
}

// admissionReads is what admission reads before it decides.
type admissionReads struct {
	found   bool // a stored job has the request's idempotency key (named in the result)
	running int  // the pipeline's running count, read under its lock
	waiting int  // the length of its wait list, -1 when not read
}

// readForAdmission reads, in one round trip, the job of the request's idempotency key, the
// pipeline's running count under its lock and the length of its wait list (which every
// admission asks). The first admission of a pipeline creates its row and locks it then; the
// length is read again under the lock.
func (s *Store) readForAdmission(ctx context.Context, tx pgx.Tx, p store.AdmitParams, res *store.AdmitResult) (admissionReads, error) {
	r := admissionReads{waiting: -1}
	missing := false
	b := &pgx.Batch{}
	if p.IdempotencyKey != "" {
		b.Queue(idempotencyLookupSQL, p.IdempotencyKey).QueryRow(func(row pgx.Row) error {
			err := row.Scan(&res.ExistingID, &res.ExistingPipeline)
			r.found = err == nil
			return ignoreNoRows(err)
		})
	}
	s.queueCheckLease(b) // a registered node admits only while its lease is valid
	b.Queue(lockPipelineSQL, p.Job.Pipeline).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&r.running)
		missing = errors.Is(err, pgx.ErrNoRows)
		return ignoreNoRows(err)
	})
	b.Queue(queuedCountSQL, p.Job.Pipeline).QueryRow(func(row pgx.Row) error { return row.Scan(&r.waiting) })
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return r, fmt.Errorf("read pipeline state: %w", err)
	}
	if missing && !r.found {
		var err error
		if r.running, err = lockPipeline(ctx, tx, p.Job.Pipeline); err != nil {
			return r, err
		}
		r.waiting = -1 // read before the lock
	}
	return r, nil
}

// ignoreNoRows returns err, or nil for pgx.ErrNoRows.
func ignoreNoRows(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	return err
}

// lookupIdempotencyKey reports whether a stored job has key, and then names it in res. An
// empty key is never stored.
func lookupIdempotencyKey(ctx context.Context, tx pgx.Tx, key string, res *store.AdmitResult) (bool, error) {
	if key == "" {
		return false, nil
	}
	err := tx.QueryRow(ctx, idempotencyLookupSQL, key).Scan(&res.ExistingID, &res.ExistingPipeline)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("look up idempotency key: %w", err)
	}
	return false, nil
}

// replaceWaiting ends the waiting jobs ids as replaced by the new job, their tasks skipped. It
// returns the replaced jobs' variables in the order of ids (the wait list's), still encoded.
func replaceWaiting(ctx context.Context, tx pgx.Tx, p store.AdmitParams, ids []string) ([]*string, error) {
	rows, err := tx.Query(ctx, replaceJobsSQL, nanos(p.Now), p.Job.ID, ids, p.Job.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("replace jobs: %w", err)
	}
	var (
		id   string
		seq  int64
		vars *string
		seqs []int64
	)
	byID := make(map[string]*string, len(ids))
	if _, err := pgx.ForEachRow(rows, []any{&id, &seq, &vars}, func() error {
		byID[id] = vars
		seqs = append(seqs, seq)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("replace jobs: %w", err)
	}
	out := make([]*string, len(ids))
	for i, id := range ids {
		v, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("replace job %s: %w", id, pipeline.ErrJobNotFound)
		}
		out[i] = v
	}
	if _, err := tx.Exec(ctx, skipTasksSQL, seqs); err != nil {
		return nil, fmt.Errorf("replace jobs: skip tasks: %w", err)
	}
	return out, nil
}

// carryOverVariables applies the pipeline's replace_variables (pipeline.MergeReplacedVariables).
// Without replace_variables, enc is returned as it is.
func carryOverVariables(p store.AdmitParams, replaced []*string, enc encodedJob) (encodedJob, error) {
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
// idempotency key and its tasks, and counts it as running, in one round trip.
func (s *Store) insertAdmitted(ctx context.Context, tx pgx.Tx, p store.AdmitParams, enc encodedJob, start bool) error {
	j := p.Job
	status, started := queued, any(nil)
	var (
		node  *string
		epoch *int64
	)
	if start {
		status, started = running, nanos(p.Now)
		node, epoch = s.owner()
	}
	schedule, scheduledFor := j.Schedule, nanosPtr(j.ScheduledFor)
	if f := p.Firing; f != nil {
		// The firing is what the job stands for, whatever the caller set.
		schedule, scheduledFor = f.ScheduleID, nanos(f.FireTime)
	}
	b := &pgx.Batch{}
	b.Queue(insertJobSQL, j.ID, j.Pipeline, status, enc.vars, j.User, j.QueuePartition,
		nanos(j.Created), nanos(j.StartAfter), started, enc.def, schedule, scheduledFor,
		p.IdempotencyKey, node, epoch)
	queueTasks(b, j.ID, j.Tasks, enc.tasks)
	if start {
		b.Queue(addRunningSQL, j.Pipeline, 1)
	} else {
		s.queueWakePipeline(b, j.Pipeline) // another node may have a free slot (notify.go)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	return nil
}

// queueTasks queues the inserts of a job's tasks, numbered from 0, in b.
func queueTasks(b *pgx.Batch, jobID string, tasks []pipeline.Task, enc []encodedTask) {
	for i, t := range tasks {
		b.Queue(insertTaskSQL, jobID, i, t.Name, enc[i].deps, string(t.Status),
			nanosPtr(t.Start), nanosPtr(t.End), t.ExitCode, t.Errored, t.Error, t.Attempt, enc[i].attempts)
	}
}

// errRejected carries an admission rejection out of the transaction unwrapped.
type errRejected struct{ err error }

func (e errRejected) Error() string { return e.err.Error() }
func (e errRejected) Unwrap() error { return e.err }

// UpdateTask implements store.Store. It does not check the job's status: the runner owns the
// order of its writes, and a late task record of a job that just ended is still true. The
// common case (a task the job has, not errored) is one statement without a transaction. A
// registered store fences the write instead (see cluster.go): the fence and the write in one
// transaction, one round trip besides the transaction's.
func (s *Store) UpdateTask(ctx context.Context, jobID string, t pipeline.Task) error {
	e, err := encodeTask(t)
	if err != nil {
		return fmt.Errorf("job %s: update task %q: %w", jobID, t.Name, err)
	}
	args := []any{jobID, t.Name, e.deps, string(t.Status), nanosPtr(t.Start), nanosPtr(t.End), t.ExitCode,
		t.Errored, t.Error, t.Attempt, e.attempts}
	if s.me() != nil {
		return s.updateTaskFenced(ctx, jobID, t, args)
	}
	if !t.Errored {
		tag, err := s.exec(ctx, updateTaskSQL, args...)
		if err != nil {
			return fmt.Errorf("job %s: update task %q: %w", jobID, t.Name, err)
		}
		if tag.RowsAffected() > 0 {
			return nil
		}
	}
	err = s.writeTx(ctx, func(tx pgx.Tx) error {
		// The job's row before its tasks' rows, the order of every transaction that writes
		// both (see the package doc), so that they cannot deadlock.
		if t.Errored {
			if _, err := tx.Exec(ctx, markErroredSQL, jobID); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, upsertTaskSQL, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pipeline.ErrJobNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("job %s: update task %q: %w", jobID, t.Name, err)
	}
	return nil
}

// updateTaskFenced is UpdateTask of a registered store: the fence, the errored mark and the
// upsert of the task in one batch of one transaction. The fence raises before anything is
// written when the job is not this node's (store.ErrLeaseLost).
func (s *Store) updateTaskFenced(ctx context.Context, jobID string, t pipeline.Task, args []any) error {
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		var written int64
		b := &pgx.Batch{}
		s.queueFence(b, jobID)
		if t.Errored {
			b.Queue(markErroredSQL, jobID)
		}
		b.Queue(upsertTaskSQL, args...).Exec(func(tag pgconn.CommandTag) error {
			written = tag.RowsAffected()
			return nil
		})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if written == 0 {
			return pipeline.ErrJobNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("job %s: update task %q: %w", jobID, t.Name, err)
	}
	return nil
}

// CancelQueued implements store.Store.
func (s *Store) CancelQueued(ctx context.Context, jobID string, now time.Time) (pipeline.JobStatus, error) {
	var before string
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		seq, _, err := lockJobPipeline(ctx, tx, jobID)
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, jobStatusSQL, seq).Scan(&before); err != nil {
			return err
		}
		if before != queued {
			return nil
		}
		b := &pgx.Batch{}
		b.Queue(cancelJobSQL, nanos(now), seq)
		b.Queue(skipTasksSQL, []int64{seq})
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return "", fmt.Errorf("cancel queued job %s: %w", jobID, err)
	}
	return pipeline.JobStatus(before), nil
}

// RecoverRunning implements store.Store with the single-node semantics of the contract: every
// running job of the database ends (see the package doc). The jobs end failed and errored;
// their running tasks end as errors with the reason, their waiting tasks skipped.
func (s *Store) RecoverRunning(ctx context.Context, reason string, now time.Time) ([]string, error) {
	var ids []string
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		ids = nil
		// Every pipeline's lock, in name order (so two of these cannot deadlock).
		if _, err := tx.Exec(ctx, `SELECT name FROM pipelines ORDER BY name FOR UPDATE`); err != nil {
			return fmt.Errorf("lock pipelines: %w", err)
		}
		var (
			seqs []int64
			err  error
		)
		ids, seqs, err = collectIDs(tx.Query(ctx, `UPDATE jobs
			SET status = $1, ended_at = $2, last_error = $3, errored = true
			WHERE status = $4 RETURNING seq, id`,
			string(pipeline.JobFailed), nanos(now), reason, running))
		if err != nil {
			return fmt.Errorf("end jobs: %w", err)
		}
		if err := endTasksOfLostJobs(ctx, tx, seqs, reason, now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE pipelines SET running = 0 WHERE running <> 0`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("recover running jobs: %w", err)
	}
	return ids, nil
}

// endTasksOfLostJobsSQL ends the open tasks of jobs that ended because their node stopped: the
// running ones as errors with the reason, the waiting ones skipped.
var endTasksOfLostJobsSQL = `UPDATE tasks SET
		status = CASE status WHEN $1 THEN $2 ELSE $3 END,
		errored = CASE status WHEN $1 THEN true ELSE errored END,
		error = CASE status WHEN $1 THEN $4 ELSE error END,
		ended_at = CASE status WHEN $1 THEN COALESCE(ended_at, $5) ELSE ended_at END
	WHERE job_seq = ANY($6::bigint[]) AND status IN ` + openTaskStatuses

// endTasksOfLostJobs runs endTasksOfLostJobsSQL for the jobs seqs.
func endTasksOfLostJobs(ctx context.Context, tx pgx.Tx, seqs []int64, reason string, now time.Time) error {
	if _, err := tx.Exec(ctx, endTasksOfLostJobsSQL,
		string(pipeline.TaskRunning), string(pipeline.TaskError), string(pipeline.TaskSkipped),
		reason, nanos(now), seqs); err != nil {
		return fmt.Errorf("end tasks: %w", err)
	}
	return nil
}

// DeleteFinished implements store.Store. "Newest" is creation order, as in Jobs. Finished jobs
// change no running count, so no pipeline lock is taken; two nodes deleting at once delete each
// job once (the second finds it gone).
func (s *Store) DeleteFinished(ctx context.Context, p store.RetentionParams) ([]string, error) {
	if p.EndedBefore.IsZero() && p.KeepNewest <= 0 {
		return nil, nil
	}
	var ids []string
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		// The cut-off for KeepNewest is the seq of the first finished job beyond the newest N;
		// it and every older finished job go. The tasks follow through ON DELETE CASCADE.
		var err error
		ids, _, err = collectIDs(tx.Query(ctx, `DELETE FROM jobs
			WHERE pipeline = $1 AND status IN `+finalJobStatuses+` AND (
				($2::bigint IS NOT NULL AND ended_at < $2::bigint)
				OR ($3::integer > 0 AND seq <= (SELECT seq FROM jobs
					WHERE pipeline = $1 AND status IN `+finalJobStatuses+`
					ORDER BY seq DESC LIMIT 1 OFFSET $3::integer)))
			RETURNING seq, id`,
			p.Pipeline, nanos(p.EndedBefore), max(p.KeepNewest, 0)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete finished jobs of pipeline %s: %w", p.Pipeline, err)
	}
	return ids, nil
}

// collectIDs reads the (seq, id) rows of a RETURNING clause, whose order is not defined, and
// returns the IDs and seqs in creation order.
func collectIDs(rows pgx.Rows, err error) ([]string, []int64, error) {
	if err != nil {
		return nil, nil, err
	}
	type row struct {
		seq int64
		id  string
	}
	var (
		r  row
		rs []row
	)
	if _, err := pgx.ForEachRow(rows, []any{&r.seq, &r.id}, func() error {
		rs = append(rs, r)
		return nil
	}); err != nil {
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
