package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// queuedWhere selects the wait list of one pipeline; the (status, pipeline, seq) index serves it.
const queuedWhere = `FROM jobs WHERE status = '` + string(pipeline.JobQueued) + `' AND pipeline = ?`

// waitList answers admission's questions about one pipeline's wait list with queries inside the
// write transaction, so that admitting a job does not load the whole list: a long wait list (a
// burst of thousands of jobs) would otherwise make every admission slower than the last. The
// first error is kept and checked after the decision. Its length comes with the running count
// (pipelineCounts), kept in a row rather than counted.
type waitList struct {
	ctx      context.Context
	s        *Store
	pipeline string
	queued   int
	err      error
}

var _ pipeline.WaitList = (*waitList)(nil)

func (w *waitList) count(st *sql.Stmt, args ...any) int {
	if w.err != nil {
		return 0
	}
	var n int
	w.err = st.QueryRowContext(w.ctx, args...).Scan(&n)
	return n
}

func (w *waitList) ids(st *sql.Stmt, args ...any) []string {
	if w.err != nil {
		return nil
	}
	rows, err := st.QueryContext(w.ctx, args...)
	if err != nil {
		w.err = err
		return nil
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			w.err = err
			return nil
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		w.err = err
	}
	// The query walks backwards from the end; the decision lists them in wait-list order.
	slices.Reverse(ids)
	return ids
}

func (w *waitList) Len() int { return w.queued }

func (w *waitList) PartitionLen(partition string) int {
	return w.count(w.s.ws.queuedPartitionCount, w.pipeline, partition)
}

func (w *waitList) Last(n int) []string {
	return w.ids(w.s.ws.queuedLast, w.pipeline, n)
}

func (w *waitList) LastInPartition(partition string, n int) []string {
	return w.ids(w.s.ws.queuedPartitionLast, w.pipeline, partition, n)
}

// claimable returns the waiting jobs of a pipeline that may start now (delay elapsed, in
// wait-list order, at most slots of them) and the earliest future start delay. It is what
// pipeline.Claimable decides, asked of the index instead of a loaded list.
func (s *Store) claimable(ctx context.Context, name string, slots int, now time.Time) (waiting []pipeline.WaitingJob, seqs []int64, next time.Time, err error) {
	if slots > 0 {
		rows, err := s.ws.claimReady.QueryContext(ctx, name, now.UnixNano(), slots)
		if err != nil {
			return nil, nil, time.Time{}, err
		}
		for rows.Next() {
			var (
				seq        int64
				w          pipeline.WaitingJob
				startAfter intCol
			)
			if err := rows.Scan(&seq, &w.ID, &w.Partition, &startAfter); err != nil {
				rows.Close()
				return nil, nil, time.Time{}, err
			}
			w.StartAfter = timeOf(startAfter)
			waiting = append(waiting, w)
			seqs = append(seqs, seq)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, time.Time{}, err
		}
	}
	var nextNanos sql.NullInt64
	if err := s.ws.nextStartAfter.QueryRowContext(ctx, name, now.UnixNano()).Scan(&nextNanos); err != nil {
		return nil, nil, time.Time{}, err
	}
	if nextNanos.Valid {
		next = time.Unix(0, nextNanos.Int64).UTC()
	}
	return waiting, seqs, next, nil
}

// pipelineCounts returns the number of running and of queued jobs of a pipeline, inside the
// write transaction: one primary-key lookup of the row that the triggers of migration 0006 keep.
func (s *Store) pipelineCounts(ctx context.Context, name string) (running, queued int, err error) {
	err = s.ws.pipelineCounts.QueryRowContext(ctx, name).Scan(&running, &queued)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil // no job of the pipeline was ever running or queued
	}
	return running, queued, err
}
