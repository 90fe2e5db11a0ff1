package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/prunner-dev/prunner/internal/pipeline"
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

// jobColumns is the column list that scanJob reads, in its order.
const jobColumns = `seq, id, pipeline, status, variables, user_name, queue_partition, created_at,
	start_after, started_at, ended_at, last_error, errored, replaced_by, schedule_id, scheduled_for, definition`

// taskColumns is the column list that taskRow reads, in its order.
const taskColumns = `job_seq, name, depends_on, status, started_at, ended_at, exit_code, errored, error,
	attempt, attempts`

// writeStmts are prepared once on the writer connection (Store.wconn).
type writeStmts struct {
	begin    *sql.Stmt
	commit   *sql.Stmt
	rollback *sql.Stmt
	// The savepoint of each write of a group-committed transaction (see groupcommit.go).
	savepoint  *sql.Stmt
	rollbackTo *sql.Stmt
	release    *sql.Stmt

	// pipelineCounts reads the running and queued counts of a pipeline (migration 0006).
	pipelineCounts *sql.Stmt
	insertJob      *sql.Stmt
	insertTask     *sql.Stmt
	replaceJob     *sql.Stmt
	skipTasks      *sql.Stmt
	startJob       *sql.Stmt
	jobStatus      *sql.Stmt
	upsertTask     *sql.Stmt
	updateTask     *sql.Stmt
	markErrored    *sql.Stmt
	finishJob      *sql.Stmt
	finishTasks    *sql.Stmt
	cancelJob      *sql.Stmt
	setRecord      *sql.Stmt
	recordJob      *sql.Stmt
	jobBySeq       *sql.Stmt

	// The wait-list questions of admissions and claims (see waitlist.go).
	queuedPartitionCount *sql.Stmt
	queuedLast           *sql.Stmt
	queuedPartitionLast  *sql.Stmt
	claimReady           *sql.Stmt
	nextStartAfter       *sql.Stmt
	idempotencyLookup    *sql.Stmt
	setIdempotencyKey    *sql.Stmt
}

// readStmts are prepared on the read pool (database/sql prepares them once per connection).
type readStmts struct {
	jobWithTasks *sql.Stmt
	jobSeq       *sql.Stmt
}

// prepareTxControl prepares the statements of writeTx, which the migrations already need.
func (s *Store) prepareTxControl(ctx context.Context) error {
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.ws.begin, "BEGIN IMMEDIATE"},
		{&s.ws.commit, "COMMIT"},
		{&s.ws.rollback, "ROLLBACK"},
		{&s.ws.savepoint, "SAVEPOINT op"},
		{&s.ws.rollbackTo, "ROLLBACK TO op"},
		{&s.ws.release, "RELEASE op"},
	} {
		st, err := s.wconn.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.query, err)
		}
		*p.dst = st
		s.stmts = append(s.stmts, st)
	}
	return nil
}

// prepareInBackground prepares the statements of the hot paths (once the schema exists) in a
// goroutine that holds the writer until they are ready, so that Open does not wait for them:
// preparing some forty statements is a third of an idle start-up, and the first request a
// starting server answers is a read that needs none of them. Every write waits for the writer
// anyway; the reads that use a prepared statement wait with awaitPrepared. A statement that
// fails to prepare fails every write and those reads.
func (s *Store) prepareInBackground(ctx context.Context) {
	s.prepared = make(chan struct{})
	s.wlock <- struct{}{}
	go func() {
		defer func() { <-s.wlock }()
		s.prepareErr = s.prepare(context.WithoutCancel(ctx))
		close(s.prepared)
	}()
}

// awaitPrepared waits until the statements are prepared and returns the error of preparing
// them.
func (s *Store) awaitPrepared(ctx context.Context) error {
	select {
	case <-s.prepared:
		return s.prepareErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// prepare prepares the statements of the hot paths, once the schema exists.
func (s *Store) prepare(ctx context.Context) error {
	w := []struct {
		dst   **sql.Stmt
		query string
	}{
		// The triggers of migration 0006 keep the row; a pipeline without one has no job
		// running or queued.
		{&s.ws.pipelineCounts, `SELECT running, queued FROM pipeline_counts WHERE pipeline = ?`},
		{&s.ws.insertJob, `INSERT INTO jobs (id, pipeline, status, variables, user_name, queue_partition,
			created_at, start_after, started_at, definition, schedule_id, scheduled_for)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&s.ws.insertTask, `INSERT INTO tasks (job_seq, position, name, depends_on, status, started_at,
			ended_at, exit_code, errored, error, attempt, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&s.ws.replaceJob, `UPDATE jobs SET status = '` + string(pipeline.JobReplaced) + `', ended_at = ?, replaced_by = ?
			WHERE id = ? AND pipeline = ? AND status = '` + string(pipeline.JobQueued) + `' RETURNING seq, variables`},
		{&s.ws.skipTasks, `UPDATE tasks SET status = '` + string(pipeline.TaskSkipped) + `'
			WHERE job_seq = ? AND status IN ` + openTaskStatuses},
		{&s.ws.startJob, `UPDATE jobs SET status = '` + string(pipeline.JobRunning) + `', started_at = ? WHERE seq = ?`},
		{&s.ws.jobStatus, `SELECT seq, status FROM jobs WHERE id = ?`},
		// Insert at the next position when the job has no task of that name (the on_error
		// task), else overwrite the record in place. No row is written when the job does not
		// exist, which the caller reads from RowsAffected.
		{&s.ws.upsertTask, `INSERT INTO tasks (job_seq, position, name, depends_on, status, started_at,
				ended_at, exit_code, errored, error, attempt, attempts)
			SELECT j.seq, COALESCE((SELECT max(t.position) + 1 FROM tasks t WHERE t.job_seq = j.seq), 0),
				?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11
			FROM jobs j WHERE j.id = ?1
			ON CONFLICT (job_seq, name) DO UPDATE SET depends_on = excluded.depends_on,
				status = excluded.status, started_at = excluded.started_at, ended_at = excluded.ended_at,
				exit_code = excluded.exit_code, errored = excluded.errored, error = excluded.error,
				attempt = excluded.attempt, attempts = excluded.attempts`},
		// Most updates rewrite a task the job has: found through the (job_seq, name) index,
		// cheaper than the upsert's insert attempt and conflict.
		{&s.ws.updateTask, `UPDATE tasks SET depends_on = ?3, status = ?4, started_at = ?5, ended_at = ?6,
				exit_code = ?7, errored = ?8, error = ?9, attempt = ?10, attempts = ?11
			WHERE job_seq = (SELECT seq FROM jobs WHERE id = ?1) AND name = ?2`},
		{&s.ws.markErrored, `UPDATE jobs SET errored = 1 WHERE id = ?`},
		{&s.ws.finishJob, `UPDATE jobs SET status = ?1, ended_at = ?2, last_error = ?3, errored = errored OR ?4,
			replaced_by = COALESCE(NULLIF(?6, ''), replaced_by)
			WHERE seq = ?5`},
		// Tasks that were running get the end time of the job; waiting ones never started.
		{&s.ws.finishTasks, `UPDATE tasks SET
				status = CASE status WHEN '` + string(pipeline.TaskRunning) + `' THEN ?1 ELSE ?2 END,
				ended_at = CASE status WHEN '` + string(pipeline.TaskRunning) + `' THEN COALESCE(ended_at, ?3) ELSE ended_at END
			WHERE job_seq = ?4 AND status IN ` + openTaskStatuses},
		{&s.ws.cancelJob, `UPDATE jobs SET status = '` + string(pipeline.JobCanceled) + `', ended_at = ? WHERE seq = ?`},
		{&s.ws.setRecord, `UPDATE jobs SET final_record = ? WHERE seq = ?`},
		{&s.ws.jobBySeq, jobWithTasksQuery(jobColumns, "j.seq")},
		// A record leaves the definition out (see record.go), so it is not read.
		{&s.ws.recordJob, jobWithTasksQuery(strings.Replace(jobColumns, "definition", "NULL", 1), "j.seq")},
		{&s.ws.queuedPartitionCount, `SELECT count(*) ` + queuedWhere + ` AND queue_partition = ?`},
		{&s.ws.queuedLast, `SELECT id ` + queuedWhere + ` ORDER BY seq DESC LIMIT ?`},
		{&s.ws.queuedPartitionLast, `SELECT id ` + queuedWhere + ` AND queue_partition = ? ORDER BY seq DESC LIMIT ?`},
		{&s.ws.claimReady, `SELECT seq, id, queue_partition, start_after ` + queuedWhere +
			` AND (start_after IS NULL OR start_after <= ?) ORDER BY seq LIMIT ?`},
		// The terms match the partial index jobs_delayed.
		{&s.ws.nextStartAfter, `SELECT min(start_after) FROM jobs WHERE status = '` + string(pipeline.JobQueued) +
			`' AND start_after IS NOT NULL AND pipeline = ? AND start_after > ?`},
		{&s.ws.idempotencyLookup, `SELECT id, pipeline FROM jobs WHERE idempotency_key = ?`},
		{&s.ws.setIdempotencyKey, `UPDATE jobs SET idempotency_key = ? WHERE seq = ?`},
	}
	w = append(w, s.firingStatements()...)
	for _, p := range w {
		st, err := s.wconn.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", firstLine(p.query), err)
		}
		*p.dst = st
		s.stmts = append(s.stmts, st)
	}
	r := []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.rs.jobSeq, `SELECT seq FROM jobs WHERE id = ?`},
		{&s.rs.jobWithTasks, jobWithTasksQuery(jobColumns, "j.id")},
	}
	for _, p := range r {
		st, err := s.read.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", firstLine(p.query), err)
		}
		*p.dst = st
		s.stmts = append(s.stmts, st)
	}
	return nil
}

// jobWithTasksQuery selects one job (the columns cols of jobColumns' layout, by the key column
// of j) with its tasks: one row per task in position order, or one row with NULL task columns
// for a job without tasks. One statement is one consistent snapshot.
//
// The definition (a pipeline of hundreds of tasks makes it tens of kilobytes) and the variables
// come only with the first row, instead of once per task. The first task has position 0: tasks
// are numbered from 0 when a job is stored (Admit, ImportJobs) and UpdateTask appends after the
// last one.
func jobWithTasksQuery(cols, key string) string {
	first := `WHEN t.position IS NULL OR t.position = 0 THEN `
	jcols := prefixed("j.", cols)
	jcols = strings.Replace(jcols, "j.definition", "CASE "+first+"j.definition END", 1)
	jcols = strings.Replace(jcols, "j.variables", "CASE "+first+"j.variables END", 1)
	return `SELECT ` + jcols + `, ` + prefixed("t.", strings.TrimPrefix(taskColumns, "job_seq, ")) + `
		FROM jobs j LEFT JOIN tasks t ON t.job_seq = j.seq WHERE ` + key + ` = ? ORDER BY t.position`
}

// prefixed qualifies each column of a column list with a table alias ("j." + "seq, id" →
// "j.seq, j.id").
func prefixed(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		if c = strings.TrimSpace(c); c != "NULL" {
			c = alias + c
		}
		cols[i] = c
	}
	return strings.Join(cols, ", ")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
