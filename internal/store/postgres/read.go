package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// querier is what the loaders need: a transaction, a connection or the pool.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// jobColumns is the column list (alias j) that jobRow reads, in its order.
const jobColumns = `j.seq, j.id, j.pipeline, j.status, j.variables, j.user_name, j.queue_partition, j.created_at,
	j.start_after, j.started_at, j.ended_at, j.last_error, j.errored, j.replaced_by, j.schedule_id, j.scheduled_for, j.definition,
	COALESCE(j.node, '')`

// listColumns is jobColumns without the definition, which lists leave out (see store.Store.Jobs).
var listColumns = strings.Replace(jobColumns, "j.definition", "NULL::text", 1)

// taskColumns is the column list (alias t) that taskRow reads after the job's seq, in its order.
const taskColumns = `t.name, t.depends_on, t.status, t.started_at, t.ended_at, t.exit_code, t.errored, t.error,
	t.attempt, t.attempts`

// jobWithTasksQuery selects one job by ID with its tasks: one row per task in position order,
// or one row with NULL task columns for a job without tasks. One statement is one consistent
// snapshot. The definition and the variables come only with the first row (position 0: tasks are
// numbered from 0 when a job is stored, and UpdateTask appends after the last one).
var jobWithTasksQuery = `SELECT ` + strings.NewReplacer(
	"j.definition", "CASE WHEN t.position IS NULL OR t.position = 0 THEN j.definition END",
	"j.variables", "CASE WHEN t.position IS NULL OR t.position = 0 THEN j.variables END",
).Replace(jobColumns) + `, ` + taskColumns + `
	FROM jobs j LEFT JOIN tasks t ON t.job_seq = j.seq WHERE j.id = $1 ORDER BY t.position`

// jobRow holds the scan destinations of jobColumns.
type jobRow struct {
	seq                                   int64
	id, pipeline, status, user, partition string
	lastErr, replBy, schedule, node       string
	vars, def                             *string
	created, startAfter, start, ended     *int64
	schedFor                              *int64
	errored                               bool
}

func (r *jobRow) dests() []any {
	return []any{&r.seq, &r.id, &r.pipeline, &r.status, &r.vars, &r.user, &r.partition,
		&r.created, &r.startAfter, &r.start, &r.ended, &r.lastErr, &r.errored, &r.replBy, &r.schedule, &r.schedFor, &r.def, &r.node}
}

// job builds the job of the scanned row. With varsAsJSON the variables are kept as their JSON
// text (VariablesJSON) instead of being decoded.
func (s *Store) job(r *jobRow, varsAsJSON bool) (*pipeline.Job, error) {
	j := &pipeline.Job{
		ID:             r.id,
		Pipeline:       r.pipeline,
		Status:         pipeline.JobStatus(r.status),
		User:           r.user,
		QueuePartition: r.partition,
		Created:        timeOf(r.created),
		StartAfter:     timeOf(r.startAfter),
		Start:          timePtr(r.start),
		End:            timePtr(r.ended),
		LastError:      r.lastErr,
		Errored:        r.errored,
		ReplacedBy:     r.replBy,
		Schedule:       r.schedule,
		ScheduledFor:   timePtr(r.schedFor),
		Node:           r.node,
	}
	var err error
	if varsAsJSON {
		if r.vars != nil && *r.vars != "null" {
			j.VariablesJSON = *r.vars
		}
	} else if j.Variables, err = decodeVariables(r.vars); err != nil {
		return nil, fmt.Errorf("job %s: %w", j.ID, err)
	}
	if r.def != nil {
		if j.Definition, err = s.defs.get(*r.def); err != nil {
			return nil, fmt.Errorf("job %s: %w", j.ID, err)
		}
	}
	return j, nil
}

// taskRow holds the scan destinations of taskColumns; every column may be NULL in a left join.
// Value types (not pointers) keep a list of thousands of tasks from allocating per column.
type taskRow struct {
	name, deps, status, err, attempts pgtype.Text
	start, end                        pgtype.Int8
	exitCode, attempt                 pgtype.Int4
	errored                           pgtype.Bool
}

func (r *taskRow) dests() []any {
	return []any{&r.name, &r.deps, &r.status, &r.start, &r.end, &r.exitCode, &r.errored, &r.err, &r.attempt, &r.attempts}
}

// task builds the task of the scanned row.
func (r *taskRow) task(a *timeArena) (pipeline.Task, error) {
	deps, err := decodeDependsOn(textPtr(r.deps))
	if err != nil {
		return pipeline.Task{}, fmt.Errorf("task %q: %w", r.name.String, err)
	}
	attempts, err := decodeAttempts(textPtr(r.attempts))
	if err != nil {
		return pipeline.Task{}, fmt.Errorf("task %q: %w", r.name.String, err)
	}
	return pipeline.Task{
		Name:      r.name.String,
		DependsOn: deps,
		Status:    pipeline.TaskStatus(r.status.String),
		Start:     a.time(r.start),
		End:       a.time(r.end),
		ExitCode:  int(r.exitCode.Int32),
		Errored:   r.errored.Bool,
		Error:     r.err.String,
		Attempt:   int(r.attempt.Int32),
		Attempts:  attempts,
	}, nil
}

// textPtr returns the string of a text column, nil for NULL.
func textPtr(t pgtype.Text) *string {
	if !t.Valid {
		return nil
	}
	return &t.String
}

// timeArena hands out the *time.Time of tasks from blocks: a list of thousands of tasks then
// allocates a few blocks instead of one value per time. A block stays alive while a job that
// points into it does.
type timeArena struct {
	block []time.Time
}

// time returns the UTC time of a nanoseconds column, nil for NULL.
func (a *timeArena) time(n pgtype.Int8) *time.Time {
	if !n.Valid {
		return nil
	}
	if len(a.block) == cap(a.block) {
		a.block = make([]time.Time, 0, 256)
	}
	a.block = append(a.block, time.Unix(0, n.Int64).UTC())
	return &a.block[len(a.block)-1]
}

// Job implements store.Store with one statement (see jobWithTasksQuery).
func (s *Store) Job(ctx context.Context, jobID string) (*pipeline.Job, error) {
	job, err := s.jobWithTasks(ctx, s.pool, jobID)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", jobID, classify(err))
	}
	return job, nil
}

// jobWithTasks reads one job by ID with its tasks through q; pipeline.ErrJobNotFound when there
// is none.
func (s *Store) jobWithTasks(ctx context.Context, q querier, jobID string) (*pipeline.Job, error) {
	rows, err := q.Query(ctx, jobWithTasksQuery, jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		jr  jobRow
		tr  taskRow
		a   timeArena
		job *pipeline.Job
	)
	dest := append(jr.dests(), tr.dests()...)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if job == nil {
			if job, err = s.job(&jr, false); err != nil {
				return nil, err
			}
		}
		if !tr.name.Valid {
			continue // a job without tasks
		}
		t, err := tr.task(&a)
		if err != nil {
			return nil, err
		}
		job.Tasks = append(job.Tasks, t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if job == nil {
		return nil, pipeline.ErrJobNotFound
	}
	return job, nil
}

// Jobs implements store.Store (see EachJob).
func (s *Store) Jobs(ctx context.Context, q store.JobQuery) ([]*pipeline.Job, error) {
	// An empty list, not nil: it encodes as [] for API clients.
	jobs := []*pipeline.Job{}
	err := s.EachJob(ctx, q, func(j *pipeline.Job) error {
		jobs = append(jobs, j)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return jobs, nil
}

// EachJob implements store.Store: one repeatable-read transaction (one snapshot) reads the list
// in batches of listBatch jobs, keyset-paginated on seq. A Before cursor naming a job that does
// not exist (any more) returns pipeline.ErrJobNotFound rather than a silently wrong page.
func (s *Store) EachJob(ctx context.Context, q store.JobQuery, fn func(*pipeline.Job) error) error {
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		f, err := filterOf(ctx, tx, q)
		if err != nil {
			return err
		}
		_, _, err = s.list(ctx, tx, q, f, 0, fn)
		return err
	})
	if err != nil {
		return fmt.Errorf("list jobs: %w", err)
	}
	return nil
}

// EachJobFrom implements store.Store. Each call reads one batch (q.Limit jobs, or all the rest)
// in a read transaction of its own, keyset-paginated on seq: every batch is one index range
// scan from where the last one stopped, and no read stays open between batches.
func (s *Store) EachJobFrom(ctx context.Context, q store.JobQuery, from store.ListPos, fn func(*pipeline.Job) error) (store.ListPos, error) {
	if from.End {
		return from, nil
	}
	next := from
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		bq := q
		if from.Key != 0 {
			bq.Before = "" // the cursor placed the first batch; from here on the position does
		}
		f, err := filterOf(ctx, tx, bq)
		if err != nil {
			return err
		}
		last, n, err := s.list(ctx, tx, q, f, from.Key, fn)
		if err != nil {
			return err
		}
		if n > 0 {
			next.Key = last
		}
		// A batch shorter than asked for read the list to its end.
		next.End = q.Limit <= 0 || n < q.Limit
		return nil
	})
	if err != nil {
		return from, fmt.Errorf("list jobs: %w", err)
	}
	return next, nil
}

// listBatch is how many jobs a list reads with one query: memory stays bounded however long the
// list is.
const listBatch = 256

// list hands fn the jobs matching f, newest first, at most q.Limit (0: all), below the seq after
// (0: from the top). It returns the seq of the last job and how many it handed on.
func (s *Store) list(ctx context.Context, tx pgx.Tx, q store.JobQuery, f filter, after int64, fn func(*pipeline.Job) error) (last int64, n int, err error) {
	last = after
	for {
		size := listBatch
		if q.Limit > 0 {
			size = min(size, q.Limit-n)
		}
		if size <= 0 {
			return last, n, nil
		}
		jobs, seqs, err := s.loadJobs(ctx, tx, f.page(last, size), f.pageArgs(last, size), q.VariablesAsJSON)
		if err != nil {
			return last, n, err
		}
		if !q.WithoutTasks {
			if err := s.loadTasks(ctx, tx, jobs, seqs); err != nil {
				return last, n, err
			}
		}
		for i, j := range jobs {
			if err := fn(j); err != nil {
				return last, n, err
			}
			last = seqs[i]
			n++
		}
		if len(jobs) < size {
			return last, n, nil
		}
	}
}

// filter is the WHERE clause of a job list and its arguments ($1 …).
type filter struct {
	where []string
	args  []any
}

// arg adds an argument and returns its placeholder.
func (f *filter) arg(v any) string {
	f.args = append(f.args, v)
	return "$" + strconv.Itoa(len(f.args))
}

// page is the query of one batch of the list: below seq after (when not 0), size jobs, newest
// first. Its arguments are pageArgs.
func (f filter) page(after int64, size int) string {
	where := f.where
	n := len(f.args)
	if after != 0 {
		n++
		where = append(where[:len(where):len(where)], "j.seq < $"+strconv.Itoa(n))
	}
	q := `SELECT ` + listColumns + ` FROM jobs j`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	return q + ` ORDER BY j.seq DESC LIMIT $` + strconv.Itoa(n+1)
}

func (f filter) pageArgs(after int64, size int) []any {
	args := append([]any(nil), f.args...)
	if after != 0 {
		args = append(args, after)
	}
	return append(args, size)
}

// filterOf returns the filter of q. A Before cursor is resolved to its seq.
func filterOf(ctx context.Context, q querier, jq store.JobQuery) (filter, error) {
	var f filter
	if jq.Pipeline != "" {
		f.where = append(f.where, "j.pipeline = "+f.arg(jq.Pipeline))
	}
	if len(jq.Statuses) > 0 {
		statuses := make([]string, len(jq.Statuses))
		for i, st := range jq.Statuses {
			statuses[i] = string(st)
		}
		f.where = append(f.where, "j.status = ANY("+f.arg(statuses)+"::text[])")
	}
	if jq.Before != "" {
		var before int64
		err := queryRow(ctx, q, `SELECT seq FROM jobs WHERE id = $1`, jq.Before).Scan(&before)
		if errors.Is(err, pgx.ErrNoRows) {
			return f, fmt.Errorf("cursor %s: %w", jq.Before, pipeline.ErrJobNotFound)
		}
		if err != nil {
			return f, fmt.Errorf("cursor %s: %w", jq.Before, err)
		}
		f.where = append(f.where, "j.seq < "+f.arg(before))
	}
	return f, nil
}

// queryRow is QueryRow for a querier.
func queryRow(ctx context.Context, q querier, sql string, args ...any) pgx.Row {
	rows, err := q.Query(ctx, sql, args...)
	return rowOf{rows, err}
}

// rowOf is the pgx.Row of a query's rows: its first row, pgx.ErrNoRows when none.
type rowOf struct {
	rows pgx.Rows
	err  error
}

func (r rowOf) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// loadJobs runs a query selecting jobColumns (or listColumns) and returns the jobs, without
// tasks, and their seqs in the query's order.
func (s *Store) loadJobs(ctx context.Context, q querier, sql string, args []any, varsAsJSON bool) ([]*pipeline.Job, []int64, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, nil, err
	}
	return s.scanJobs(rows, varsAsJSON)
}

// scanJobs reads the rows of a query selecting jobColumns (or listColumns) and closes them.
func (s *Store) scanJobs(rows pgx.Rows, varsAsJSON bool) ([]*pipeline.Job, []int64, error) {
	defer rows.Close()
	var (
		jobs []*pipeline.Job
		seqs []int64
		r    jobRow
	)
	dest := r.dests()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, err
		}
		j, err := s.job(&r, varsAsJSON)
		if err != nil {
			return nil, nil, err
		}
		jobs = append(jobs, j)
		seqs = append(seqs, r.seq)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return jobs, seqs, nil
}

// tasksOfSQL selects the tasks (seq first, then taskColumns) of the jobs whose seqs are $1.
const tasksOfSQL = `SELECT t.job_seq, ` + taskColumns + ` FROM tasks t
	WHERE t.job_seq = ANY($1::bigint[]) ORDER BY t.job_seq, t.position`

// loadTasks loads the tasks of jobs (whose seqs are seqs) with one query and attaches them in
// position order.
func (s *Store) loadTasks(ctx context.Context, q querier, jobs []*pipeline.Job, seqs []int64) error {
	if len(jobs) == 0 {
		return nil
	}
	rows, err := q.Query(ctx, tasksOfSQL, seqs)
	if err != nil {
		return fmt.Errorf("load tasks: %w", err)
	}
	return attachTasks(rows, jobs, seqs)
}

// attachTasks reads the rows of tasksOfSQL, gives each job (of seqs) its tasks and closes the
// rows.
func attachTasks(rows pgx.Rows, jobs []*pipeline.Job, seqs []int64) error {
	defer rows.Close()
	bySeq := make(map[int64]*pipeline.Job, len(jobs))
	for i, j := range jobs {
		bySeq[seqs[i]] = j
	}
	var (
		seq int64
		r   taskRow
		a   timeArena
	)
	dest := append([]any{&seq}, r.dests()...)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("load tasks: %w", err)
		}
		t, err := r.task(&a)
		if err != nil {
			return fmt.Errorf("load tasks: %w", err)
		}
		if j := bySeq[seq]; j != nil {
			j.Tasks = append(j.Tasks, t)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load tasks: %w", err)
	}
	return nil
}

// jobsBySeqSQL selects the jobs (jobColumns, definitions included) whose seqs are $1, in seq
// order.
const jobsBySeqSQL = `SELECT ` + jobColumns + ` FROM jobs j WHERE j.seq = ANY($1::bigint[]) ORDER BY j.seq`

// PipelineStates implements store.Store: the running counts of the pipelines table and the
// queued jobs in seq order, from one snapshot.
func (s *Store) PipelineStates(ctx context.Context) (map[string]pipeline.AdmissionState, error) {
	states := make(map[string]pipeline.AdmissionState)
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT name, running FROM pipelines WHERE running > 0`)
		if err != nil {
			return err
		}
		var (
			name    string
			running int
		)
		_, err = pgx.ForEachRow(rows, []any{&name, &running}, func() error {
			states[name] = pipeline.AdmissionState{Running: running}
			return nil
		})
		if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT pipeline, id, queue_partition, start_after FROM jobs
			WHERE status = '`+string(pipeline.JobQueued)+`' ORDER BY seq`)
		if err != nil {
			return err
		}
		var (
			w          pipeline.WaitingJob
			startAfter *int64
		)
		_, err = pgx.ForEachRow(rows, []any{&name, &w.ID, &w.Partition, &startAfter}, func() error {
			w.StartAfter = timeOf(startAfter)
			st := states[name]
			st.Waiting = append(st.Waiting, w)
			states[name] = st
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read pipeline states: %w", err)
	}
	return states, nil
}

// QueuedPipelines implements store.Store. The names are sorted.
func (s *Store) QueuedPipelines(ctx context.Context) ([]string, error) {
	rows, err := s.query(ctx, `SELECT DISTINCT pipeline FROM jobs WHERE status = $1 ORDER BY pipeline`,
		string(pipeline.JobQueued))
	if err != nil {
		return nil, fmt.Errorf("list queued pipelines: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list queued pipelines: %w", err)
	}
	return names, nil
}
