package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// querier is what the loaders need of a read transaction (*sql.Tx) or of the writer
// connection (*sql.Conn, inside a write transaction).
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// readTx runs fn in a read transaction on the read pool, so that the several queries of one
// method see one snapshot (WAL: a reader never waits for the writer).
func (s *Store) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	// A read transaction has nothing to commit; Rollback ends it and releases the snapshot.
	defer tx.Rollback()
	return fn(tx)
}

// Job implements store.Store. One statement reads the job with its tasks (a join: one row per
// task), which is one consistent snapshot without a transaction around it — the job detail is
// what clients poll.
func (s *Store) Job(ctx context.Context, jobID string) (*pipeline.Job, error) {
	job, err := s.jobWithTasks(ctx, s.rs.jobWithTasks, jobID)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", jobID, err)
	}
	return job, nil
}

// jobWithTasks reads one job with its tasks through st, a job-with-tasks join (see stmts.go)
// keyed by key; pipeline.ErrJobNotFound when there is no such job.
func (s *Store) jobWithTasks(ctx context.Context, st *sql.Stmt, key any) (*pipeline.Job, error) {
	rows, err := st.QueryContext(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		a    arena
		b    taskBlocks
		t    joinedTask
		job  *pipeline.Job
		dest []any
	)
	for rows.Next() {
		if dest == nil {
			dest = append(append([]any(nil), a.jobRow.dests()...), t.dest()...)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if job == nil {
			if _, job, err = s.jobFromRow(&a); err != nil {
				return nil, err
			}
		}
		if !t.name.Valid {
			continue // a job without tasks
		}
		task, err := t.task(&a)
		if err != nil {
			return nil, err
		}
		b.add(task)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if job == nil {
		return nil, pipeline.ErrJobNotFound
	}
	if len(b.block) > 0 {
		job.Tasks = b.take()
	}
	return job, nil
}

// joinedTask holds the task columns of a job-with-tasks join row (NULL when the job has none).
type joinedTask struct {
	start, end, exitCode, errored, attempt intCol
	name, status, err, deps, attempts      sql.NullString
}

func (t *joinedTask) dest() []any {
	return []any{&t.name, &t.deps, &t.status, &t.start, &t.end, &t.exitCode, &t.errored, &t.err, &t.attempt, &t.attempts}
}

func (t *joinedTask) task(a *arena) (pipeline.Task, error) {
	return newTask(a, taskRow{start: t.start, end: t.end, exitCode: t.exitCode, errored: t.errored, attempt: t.attempt,
		name: t.name.String, status: t.status.String, err: t.err.String, deps: t.deps, attempts: t.attempts})
}

// newTask builds the task of a scanned task row, its times from a.
func newTask(a *arena, r taskRow) (pipeline.Task, error) {
	deps, err := decodeDependsOn(r.deps)
	if err != nil {
		return pipeline.Task{}, fmt.Errorf("task %q: %w", r.name, err)
	}
	attempts, err := decodeAttempts(r.attempts)
	if err != nil {
		return pipeline.Task{}, fmt.Errorf("task %q: %w", r.name, err)
	}
	return pipeline.Task{
		Name:      r.name,
		DependsOn: deps,
		Status:    pipeline.TaskStatus(r.status),
		Start:     a.time(r.start),
		End:       a.time(r.end),
		ExitCode:  int(r.exitCode.V),
		Errored:   r.errored.V != 0,
		Error:     r.err,
		Attempt:   int(r.attempt.V),
		Attempts:  attempts,
	}, nil
}

// Jobs implements store.Store (see EachJob).
func (s *Store) Jobs(ctx context.Context, q store.JobQuery) ([]*pipeline.Job, error) {
	// An empty list, not nil: it encodes as [] for API clients.
	jobs := []*pipeline.Job{}
	err := s.eachJob(ctx, q, false, func(j *pipeline.Job) error {
		jobs = append(jobs, j)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return jobs, nil
}

// EachJob implements store.Store. A Before cursor naming a job that does not exist (any more)
// returns pipeline.ErrJobNotFound rather than a silently wrong page.
//
// A finished job is decoded from its record (see record.go), one value per job; the others —
// running and queued jobs, and finished ones whose record was dropped — are read from their
// columns, a batch at a time, while the list streams through fn in order.
func (s *Store) EachJob(ctx context.Context, q store.JobQuery, fn func(*pipeline.Job) error) error {
	return s.eachJob(ctx, q, true, fn)
}

// eachJob is EachJob; with reuse, the memory of the jobs is reused from batch to batch.
func (s *Store) eachJob(ctx context.Context, q store.JobQuery, reuse bool, fn func(*pipeline.Job) error) error {
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		where, args, err := s.jobFilter(ctx, tx, q)
		if err != nil {
			return err
		}
		l := jobLister{ctx: ctx, tx: tx, s: s, fn: fn, withoutTasks: q.WithoutTasks, varsAsJSON: q.VariablesAsJSON, reuse: reuse}
		if _, _, err := l.list(where, args, q.Limit); err != nil {
			return err
		}
		return l.flush()
	})
	if err != nil {
		return fmt.Errorf("list jobs: %w", err)
	}
	return nil
}

// list reads the jobs that match where (with args) newest first, at most limit of them (0: all),
// into l, and returns the seq of the last one and how many it read. The caller flushes l.
func (l *jobLister) list(where string, args []any, limit int) (last int64, n int, err error) {
	query := "SELECT seq, final_record FROM jobs" + where + " ORDER BY seq DESC"
	if limit > 0 {
		query += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := l.tx.QueryContext(l.ctx, query, args...)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	var (
		seq intCol
		rec sql.RawBytes
	)
	for rows.Next() {
		if err := rows.Scan(&seq, &rec); err != nil {
			return 0, 0, err
		}
		if err := l.add(seq.V, rec); err != nil {
			return 0, 0, err
		}
		last = seq.V
		n++
	}
	return last, n, rows.Err()
}

// jobFilter returns the WHERE clause (with a leading space, or empty) and its arguments for q.
func (s *Store) jobFilter(ctx context.Context, tx *sql.Tx, q store.JobQuery) (string, []any, error) {
	var (
		where []string
		args  []any
	)
	if q.Pipeline != "" {
		where = append(where, "pipeline = ?")
		args = append(args, q.Pipeline)
	}
	if len(q.Statuses) > 0 {
		where = append(where, "status IN (?"+strings.Repeat(", ?", len(q.Statuses)-1)+")")
		for _, st := range q.Statuses {
			args = append(args, string(st))
		}
	}
	if q.Before != "" {
		var before int64
		err := tx.StmtContext(ctx, s.rs.jobSeq).QueryRowContext(ctx, q.Before).Scan(&before)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil, fmt.Errorf("cursor %s: %w", q.Before, pipeline.ErrJobNotFound)
		}
		if err != nil {
			return "", nil, fmt.Errorf("cursor %s: %w", q.Before, err)
		}
		where = append(where, "seq < ?")
		args = append(args, before)
	}
	if len(where) == 0 {
		return "", nil, nil
	}
	return " WHERE " + strings.Join(where, " AND "), args, nil
}

// listBatch is how many jobs a list holds before it hands them on: jobs without a record are
// loaded together, and memory stays bounded however long the list is.
const listBatch = 256

// jobLister collects the rows of a list in batches and hands the jobs to fn in list order.
type jobLister struct {
	ctx          context.Context
	tx           *sql.Tx
	s            *Store
	fn           func(*pipeline.Job) error
	withoutTasks bool
	varsAsJSON   bool
	// reuse: the jobs of a batch are dead once fn has seen them, so the next batch reuses
	// their memory.
	reuse bool

	a       arena
	tasks   taskBlocks
	jobs    []*pipeline.Job // the batch; nil where the job has no record
	seqs    []int64
	missing []int64
}

func (l *jobLister) add(seq int64, rec []byte) error {
	var j *pipeline.Job
	if len(rec) > 0 {
		var err error
		if j, err = decodeRecord(rec, &l.a, &l.tasks, l.varsAsJSON); errors.Is(err, errBadRecord) {
			j = nil // read the columns instead
		} else if err != nil {
			return err
		}
	}
	if j == nil {
		l.missing = append(l.missing, seq)
	}
	l.jobs = append(l.jobs, j)
	l.seqs = append(l.seqs, seq)
	if len(l.jobs) == listBatch {
		return l.flush()
	}
	return nil
}

func (l *jobLister) flush() error {
	if len(l.missing) > 0 {
		// The list runs newest first; loadJobsBySeq wants ascending seqs.
		slices.Reverse(l.missing)
		loaded, err := l.s.loadJobsBySeq(l.ctx, l.tx, l.missing)
		if err != nil {
			return err
		}
		if len(loaded) != len(l.missing) {
			return fmt.Errorf("read %d of %d jobs", len(loaded), len(l.missing))
		}
		bySeq := make(map[int64]*pipeline.Job, len(loaded))
		for i, j := range loaded {
			j.Definition = nil // lists leave it out (see store.Store.EachJob)
			if l.varsAsJSON && j.Variables != nil {
				vars, err := encodeVariables(j.Variables)
				if err != nil {
					return fmt.Errorf("job %s: %w", j.ID, err)
				}
				j.VariablesJSON, j.Variables = vars.(string), nil
			}
			bySeq[l.missing[i]] = j
		}
		for i, j := range l.jobs {
			if j == nil {
				if l.jobs[i] = bySeq[l.seqs[i]]; l.jobs[i] == nil {
					return fmt.Errorf("job of seq %d vanished", l.seqs[i])
				}
			}
		}
	}
	for _, j := range l.jobs {
		if l.withoutTasks {
			j.Tasks = nil
		}
		if err := l.fn(j); err != nil {
			return err
		}
	}
	clear(l.jobs)
	l.jobs, l.seqs, l.missing = l.jobs[:0], l.seqs[:0], l.missing[:0]
	if l.reuse {
		l.a.reset()
		l.tasks.reset()
	}
	return nil
}

// loadJobsBySeq loads the jobs with the given seqs (ascending) and their tasks, in seq order.
func (s *Store) loadJobsBySeq(ctx context.Context, q querier, seqs []int64) ([]*pipeline.Job, error) {
	var a arena
	jobs, got, err := s.queryJobs(ctx, q, &a, `SELECT `+jobColumns+` FROM jobs
		WHERE seq IN (SELECT value FROM json_each(?)) ORDER BY seq`, seqList(seqs))
	if err != nil {
		return nil, err
	}
	if err := loadTasks(ctx, q, jobs, got, &a); err != nil {
		return nil, err
	}
	return jobs, nil
}

// seqList renders seqs as a JSON array: one bound parameter for any number of jobs, expanded by
// json_each, instead of a statement with thousands of placeholders.
func seqList(seqs []int64) string {
	b := make([]byte, 0, 8*len(seqs)+2)
	b = append(b, '[')
	for i, seq := range seqs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, seq, 10)
	}
	return string(append(b, ']'))
}

// queryJobs runs a query selecting jobColumns and returns the jobs (without tasks) and their
// seqs, in the query's order.
func (s *Store) queryJobs(ctx context.Context, q querier, a *arena, query string, args ...any) ([]*pipeline.Job, []int64, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var (
		jobs []*pipeline.Job
		seqs []int64
	)
	for rows.Next() {
		seq, j, err := s.scanJob(rows, a)
		if err != nil {
			return nil, nil, err
		}
		jobs = append(jobs, j)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return jobs, seqs, nil
}

type scanner interface {
	Scan(dest ...any) error
}

// jobRow holds the scan destinations of jobColumns. One jobRow serves every row of a query:
// destinations passed to Scan escape to the heap, and fresh ones per row would be a dozen
// allocations per job.
type jobRow struct {
	seq, errored, created, startAfter, start, ended, schedFor intCol
	id, pipeline, status, user, partition, lastErr, replBy    string
	schedule                                                  string
	vars, def                                                 sql.NullString
	dest                                                      []any
}

func (r *jobRow) scan(row scanner) error {
	return row.Scan(r.dests()...)
}

// dests returns the scan destinations of jobColumns, in order.
func (r *jobRow) dests() []any {
	if r.dest == nil {
		r.dest = []any{&r.seq, &r.id, &r.pipeline, &r.status, &r.vars, &r.user, &r.partition,
			&r.created, &r.startAfter, &r.start, &r.ended, &r.lastErr, &r.errored, &r.replBy, &r.schedule, &r.schedFor, &r.def}
	}
	return r.dest
}

// scanJob reads one row of jobColumns.
func (s *Store) scanJob(row scanner, a *arena) (int64, *pipeline.Job, error) {
	if err := a.jobRow.scan(row); err != nil {
		return 0, nil, err
	}
	return s.jobFromRow(a)
}

// jobFromRow builds the job of the row scanned into a.jobRow.
func (s *Store) jobFromRow(a *arena) (int64, *pipeline.Job, error) {
	r := &a.jobRow
	j := a.job()
	j.ID = r.id
	j.Pipeline = r.pipeline
	j.Status = pipeline.JobStatus(r.status)
	j.User = r.user
	j.QueuePartition = r.partition
	j.Created = timeOf(r.created)
	j.StartAfter = timeOf(r.startAfter)
	j.Start = a.time(r.start)
	j.End = a.time(r.ended)
	j.LastError = r.lastErr
	j.Errored = r.errored.V != 0
	j.ReplacedBy = r.replBy
	j.Schedule = r.schedule
	j.ScheduledFor = a.time(r.schedFor)
	var err error
	if j.Variables, err = decodeVariables(r.vars); err != nil {
		return 0, nil, fmt.Errorf("job %s: %w", j.ID, err)
	}
	if r.def.Valid {
		if j.Definition, err = s.defs.get(r.def.String); err != nil {
			return 0, nil, fmt.Errorf("job %s: %w", j.ID, err)
		}
	}
	return r.seq.V, j, nil
}

// taskRow holds the scan destinations of taskColumns, reused like jobRow.
type taskRow struct {
	seq, start, end, exitCode, errored, attempt intCol
	name, status, err                           string
	deps, attempts                              sql.NullString
	dest                                        []any
}

func (r *taskRow) scan(row scanner) error {
	if r.dest == nil {
		r.dest = []any{&r.seq, &r.name, &r.deps, &r.status, &r.start, &r.end, &r.exitCode, &r.errored, &r.err,
			&r.attempt, &r.attempts}
	}
	return row.Scan(r.dest...)
}

// loadTasks loads the tasks of jobs (whose seqs are given in ascending or descending order) in
// one query and attaches them in position order.
func loadTasks(ctx context.Context, q querier, jobs []*pipeline.Job, seqs []int64, a *arena) error {
	if len(jobs) == 0 {
		return nil
	}
	lo, hi := seqs[0], seqs[len(seqs)-1]
	if lo > hi {
		lo, hi = hi, lo
	}
	var (
		rows *sql.Rows
		err  error
	)
	if hi-lo < 2*int64(len(seqs)) {
		// The jobs are (nearly) contiguous, as an unfiltered list is: a plain range scan of
		// the tasks table is fastest; attachTasks drops the few tasks of other jobs.
		rows, err = q.QueryContext(ctx, `SELECT `+taskColumns+` FROM tasks
			WHERE job_seq BETWEEN ? AND ? ORDER BY job_seq, position`, lo, hi)
	} else {
		rows, err = q.QueryContext(ctx, `SELECT `+taskColumns+` FROM tasks
			WHERE job_seq IN (SELECT value FROM json_each(?)) ORDER BY job_seq, position`, seqList(seqs))
	}
	if err != nil {
		return fmt.Errorf("load tasks: %w", err)
	}
	if err := attachTasks(rows, jobs, seqs, a); err != nil {
		return fmt.Errorf("load tasks: %w", err)
	}
	return nil
}

// attachTasks reads task rows ordered by (job_seq, position) and gives each job its tasks. The
// jobs' seqs are monotonic (either direction), so rows and jobs are merged in one pass without
// a map.
func attachTasks(rows *sql.Rows, jobs []*pipeline.Job, seqs []int64, a *arena) error {
	defer rows.Close()
	n := len(jobs)
	// at(k) is the index in jobs of the k-th smallest seq.
	at := func(k int) int { return k }
	if n > 1 && seqs[0] > seqs[n-1] {
		at = func(k int) int { return n - 1 - k }
	}
	var (
		b   taskBlocks
		k   int
		cur = -1 // index in jobs of the job whose tasks are being read
	)
	for rows.Next() {
		r := &a.taskRow
		if err := r.scan(rows); err != nil {
			return err
		}
		seq := r.seq.V
		for k < n && seqs[at(k)] < seq {
			k++
		}
		if k == n || seqs[at(k)] != seq {
			continue // a task of a job outside the list (range scan)
		}
		t, err := newTask(a, *r)
		if err != nil {
			return err
		}
		if j := at(k); j != cur {
			if cur >= 0 {
				jobs[cur].Tasks = b.take()
			}
			cur = j
		}
		b.add(t)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if cur >= 0 {
		jobs[cur].Tasks = b.take()
	}
	return nil
}
