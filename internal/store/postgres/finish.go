package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// finishJobSQL ends the job $1 unless it is final already, in one statement: the job, its open
// tasks (running ones get the status $7 and the end, waiting ones $8), and its pipeline's
// running count when it was running. It returns the job's status before (no row: no such job).
// The batch has locked the pipeline's row before (lockJobPipelineSQL), so this statement's
// snapshot is taken under the lock and the status it reads cannot change before the commit.
var finishJobSQL = `WITH old AS (SELECT seq, pipeline, status FROM jobs WHERE id = $1),
	fin AS (UPDATE jobs j SET status = $2, ended_at = $3, last_error = $4, errored = j.errored OR $5,
			replaced_by = COALESCE(NULLIF($6, ''), j.replaced_by)
		FROM old WHERE j.seq = old.seq AND old.status NOT IN ` + finalJobStatuses + `
		RETURNING old.seq, old.pipeline, old.status),
	open_tasks AS (UPDATE tasks t SET
			status = CASE t.status WHEN '` + string(pipeline.TaskRunning) + `' THEN $7 ELSE $8 END,
			ended_at = CASE t.status WHEN '` + string(pipeline.TaskRunning) + `' THEN COALESCE(t.ended_at, $3) ELSE t.ended_at END
		FROM fin WHERE t.job_seq = fin.seq AND t.status IN ` + openTaskStatuses + `),
	slot AS (UPDATE pipelines p SET running = p.running - 1
		FROM fin WHERE p.name = fin.pipeline AND fin.status = '` + running + `')
	SELECT status FROM old`

// finishReads is what the end of a job found: its status before, "" when there is no such job.
type finishReads struct {
	before string
}

// queueFinish queues the end of a job (see finishJobSQL) in b, behind the lock of its
// pipeline; r holds the outcome once b is sent.
func (s *Store) queueFinish(b *pgx.Batch, p store.FinishParams, r *finishReads) {
	pending, runningTasks := p.PendingTasks, p.RunningTasks
	if pending == "" {
		pending = pipeline.TaskSkipped
	}
	if runningTasks == "" {
		runningTasks = pipeline.TaskCanceled
	}
	s.queueFence(b, p.JobID) // raises when the job is not this node's to end
	b.Queue(lockJobPipelineSQL, p.JobID)
	b.Queue(finishJobSQL, p.JobID, string(p.Status), nanos(p.End), p.LastError, p.Status == pipeline.JobFailed,
		p.ReplacedBy, string(runningTasks), string(pending)).QueryRow(func(row pgx.Row) error {
		return ignoreNoRows(row.Scan(&r.before))
	})
	s.queueWakeFreedSlot(b, p.JobID) // the freed slot may be another node's to fill (notify.go)
}

// err is the error of the end: pipeline.ErrJobNotFound, pipeline.ErrJobFinished, or nil.
func (r finishReads) err() error {
	switch st := pipeline.JobStatus(r.before); {
	case r.before == "":
		return pipeline.ErrJobNotFound
	case st.Final():
		return fmt.Errorf("%w (status %s)", pipeline.ErrJobFinished, st)
	}
	return nil
}

// FinishJob implements store.Store: one round trip besides the transaction's. A job that
// failed is also marked errored.
func (s *Store) FinishJob(ctx context.Context, p store.FinishParams) error {
	if !p.Status.Final() {
		return fmt.Errorf("finish job %s: status %q is not final", p.JobID, p.Status)
	}
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		var r finishReads
		b := &pgx.Batch{}
		s.queueFinish(b, p, &r)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		return r.err()
	})
	if err != nil {
		return fmt.Errorf("finish job %s: %w", p.JobID, err)
	}
	return nil
}

// FinishAndClaim implements store.Store: FinishJob and Claim in one transaction, the end and
// the claim's reads in one round trip. When the end fails, the transaction rolls back.
func (s *Store) FinishAndClaim(ctx context.Context, f store.FinishParams, c store.ClaimParams) (store.ClaimResult, error) {
	if !f.Status.Final() {
		return store.ClaimResult{}, fmt.Errorf("finish job %s: status %q is not final", f.JobID, f.Status)
	}
	var res store.ClaimResult
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		var (
			fr finishReads
			cr claimReads
		)
		b := &pgx.Batch{}
		s.queueFinish(b, f, &fr)
		s.queueClaimReads(b, c, &cr)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if err := fr.err(); err != nil {
			return fmt.Errorf("finish job %s: %w", f.JobID, err)
		}
		var err error
		if res, err = s.startClaimed(ctx, tx, c, &cr); err != nil {
			return fmt.Errorf("claim jobs of pipeline %s: %w", c.Pipeline, err)
		}
		return nil
	})
	if err != nil {
		return store.ClaimResult{}, err
	}
	return res, nil
}
