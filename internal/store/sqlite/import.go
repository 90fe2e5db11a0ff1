package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// importedJob is one job of ImportJobs with its column values encoded before the transaction.
type importedJob struct {
	job   *pipeline.Job
	vars  any
	def   any
	tasks []encodedTask
}

// ImportJobs implements store.Store. The imported jobs get the seqs just below the smallest one
// in use (zero and negative ones on an empty store), so that they list as older than every job
// already stored, in the order given, and jobs admitted later still get the largest seq plus one.
func (s *Store) ImportJobs(ctx context.Context, jobs []*pipeline.Job) (int, error) {
	if len(jobs) == 0 {
		return 0, nil
	}
	encoded := make([]importedJob, 0, len(jobs))
	for i, j := range jobs {
		if j == nil || j.ID == "" {
			return 0, fmt.Errorf("import jobs: job %d has no ID", i)
		}
		if !j.Status.Final() {
			return 0, fmt.Errorf("import jobs: job %s: status %q is not final", j.ID, j.Status)
		}
		e := importedJob{job: j, tasks: make([]encodedTask, len(j.Tasks))}
		var err error
		if e.vars, err = encodeVariables(j.Variables); err != nil {
			return 0, fmt.Errorf("import jobs: job %s: %w", j.ID, err)
		}
		if e.def, err = encodeDefinition(j.Definition); err != nil {
			return 0, fmt.Errorf("import jobs: job %s: %w", j.ID, err)
		}
		for k, t := range j.Tasks {
			if e.tasks[k], err = encodeTask(t); err != nil {
				return 0, fmt.Errorf("import jobs: job %s: task %q: %w", j.ID, t.Name, err)
			}
		}
		encoded = append(encoded, e)
	}

	imported := 0
	err := s.writeTx(ctx, func(ctx context.Context) error {
		imported = 0
		// Skip the jobs that exist already (and repeated IDs in the input).
		seen := make(map[string]bool, len(encoded))
		fresh := encoded[:0:0]
		for _, e := range encoded {
			if seen[e.job.ID] {
				continue
			}
			seen[e.job.ID] = true
			var seq int64
			err := s.ws.jobStatus.QueryRowContext(ctx, e.job.ID).Scan(&seq, new(string))
			if err == nil {
				continue
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("job %s: %w", e.job.ID, err)
			}
			fresh = append(fresh, e)
		}
		if len(fresh) == 0 {
			return nil
		}
		var lowest int64
		if err := s.wconn.QueryRowContext(ctx, `SELECT COALESCE(min(seq), 1) FROM jobs`).Scan(&lowest); err != nil {
			return fmt.Errorf("read lowest seq: %w", err)
		}
		insertJob, err := s.wconn.PrepareContext(ctx, `INSERT INTO jobs (seq, id, pipeline, status,
			variables, user_name, queue_partition, created_at, start_after, started_at, ended_at,
			last_error, errored, replaced_by, definition, schedule_id, scheduled_for)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("prepare insert: %w", err)
		}
		defer insertJob.Close()
		seq := lowest - int64(len(fresh))
		first := seq
		for _, e := range fresh {
			j := e.job
			if _, err := insertJob.ExecContext(ctx, seq, j.ID, j.Pipeline, string(j.Status),
				e.vars, j.User, j.QueuePartition, nanos(j.Created), nanos(j.StartAfter),
				nanosPtr(j.Start), nanosPtr(j.End), j.LastError, j.Errored, j.ReplacedBy,
				e.def, j.Schedule, nanosPtr(j.ScheduledFor)); err != nil {
				return fmt.Errorf("insert job %s: %w", j.ID, err)
			}
			for k, t := range j.Tasks {
				if err := s.insertTask(ctx, seq, k, t, e.tasks[k]); err != nil {
					return fmt.Errorf("insert job %s: task %q: %w", j.ID, t.Name, err)
				}
			}
			seq++
		}
		imported = len(fresh)
		for from := first; from < seq; from += 500 {
			seqs := make([]int64, 0, 500)
			for k := from; k < min(from+500, seq); k++ {
				seqs = append(seqs, k)
			}
			if err := s.writeRecords(ctx, seqs); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("import jobs: %w", err)
	}
	return imported, nil
}
