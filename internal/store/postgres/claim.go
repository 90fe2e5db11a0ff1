package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// A claim is two round trips: the reads (the pipeline's lock and running count, the first ready
// jobs, the earliest future start), queued in a batch, possibly behind the end of a job
// (FinishAndClaim); then, when jobs start, their update and their loading, in a second batch.
var (
	// claimReadySQL reads the first ready jobs of a wait list, as many as there are free slots
	// (the running count is read after the lock, which the batch took before). Under the lock
	// nothing else holds queued jobs; SKIP LOCKED keeps it so when claims get finer locks.
	claimReadySQL = `SELECT seq, id, queue_partition, start_after FROM jobs
		WHERE pipeline = $1 AND status = '` + queued + `' AND (start_after IS NULL OR start_after <= $2)
		ORDER BY seq
		LIMIT GREATEST($3::bigint - COALESCE((SELECT running FROM pipelines WHERE name = $1), 0), 0)
		FOR UPDATE SKIP LOCKED`
	// nextStartAfterSQL's terms match the partial index jobs_delayed.
	nextStartAfterSQL = `SELECT min(start_after) FROM jobs WHERE status = '` + queued + `'
		AND start_after IS NOT NULL AND pipeline = $1 AND start_after > $2`
	startJobsSQL = `UPDATE jobs SET status = '` + running + `', started_at = $1, node = $3, lease_epoch = $4
		WHERE seq = ANY($2::bigint[])`
)

// claimReads is what a claim reads before it decides.
type claimReads struct {
	running int
	ready   []pipeline.WaitingJob
	seqs    []int64 // of ready
	next    *int64
}

// queueClaimReads queues the reads of a claim in b; r holds them once b is sent. The jobs it
// starts are owned by the store's node (when registered).
func (s *Store) queueClaimReads(b *pgx.Batch, p store.ClaimParams, r *claimReads) {
	// A registered node claims only while its lease is valid (the node's row before the
	// pipeline's: the lock order).
	s.queueCheckLease(b)
	// A pipeline without a row has no jobs: there is nothing to lock or claim.
	b.Queue(lockPipelineSQL, p.Pipeline).QueryRow(func(row pgx.Row) error {
		return ignoreNoRows(row.Scan(&r.running))
	})
	b.Queue(claimReadySQL, p.Pipeline, p.Now.UnixNano(), p.Concurrency).Query(func(rows pgx.Rows) error {
		var (
			seq        int64
			w          pipeline.WaitingJob
			startAfter *int64
		)
		_, err := pgx.ForEachRow(rows, []any{&seq, &w.ID, &w.Partition, &startAfter}, func() error {
			w.StartAfter = timeOf(startAfter)
			r.ready = append(r.ready, w)
			r.seqs = append(r.seqs, seq)
			return nil
		})
		return err
	})
	b.Queue(nextStartAfterSQL, p.Pipeline, p.Now.UnixNano()).QueryRow(func(row pgx.Row) error {
		return row.Scan(&r.next)
	})
}

// Claim implements store.Store.
func (s *Store) Claim(ctx context.Context, p store.ClaimParams) (store.ClaimResult, error) {
	var res store.ClaimResult
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		var r claimReads
		b := &pgx.Batch{}
		s.queueClaimReads(b, p, &r)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		var err error
		res, err = s.startClaimed(ctx, tx, p, &r)
		return err
	})
	if err != nil {
		return store.ClaimResult{}, fmt.Errorf("claim jobs of pipeline %s: %w", p.Pipeline, err)
	}
	return res, nil
}

// startClaimed starts the jobs that pipeline.Claimable allows of the ready ones read in r, and
// returns them with their definitions and tasks, in wait-list order.
func (s *Store) startClaimed(ctx context.Context, tx pgx.Tx, p store.ClaimParams, r *claimReads) (store.ClaimResult, error) {
	res := store.ClaimResult{NextStart: timeOf(r.next)}
	ids, _ := pipeline.Claimable(r.running, p.Concurrency, r.ready, p.Now)
	ids = store.LimitClaim(ids, p.Limit)
	if len(ids) == 0 {
		return res, nil
	}
	// Claimable keeps wait-list order: the first len(ids) ready jobs start.
	seqs := r.seqs[:len(ids)]
	var got []int64
	b := &pgx.Batch{}
	node, epoch := s.owner()
	b.Queue(startJobsSQL, nanos(p.Now), seqs, node, epoch)
	b.Queue(addRunningSQL, p.Pipeline, len(seqs))
	b.Queue(jobsBySeqSQL, seqs).Query(func(rows pgx.Rows) error {
		var err error
		res.Started, got, err = s.scanJobs(rows, false)
		return err
	})
	b.Queue(tasksOfSQL, seqs).Query(func(rows pgx.Rows) error {
		return attachTasks(rows, res.Started, got)
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return store.ClaimResult{}, fmt.Errorf("start jobs: %w", err)
	}
	return res, nil
}
