package postgres

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// The wait-list questions of admission, answered by the partial indexes of the queued jobs
// (jobs_queued, jobs_queued_partition), so that admitting a job does not load the whole list.
const (
	queuedWhere             = `FROM jobs WHERE status = '` + queued + `' AND pipeline = $1`
	queuedCountSQL          = `SELECT count(*) ` + queuedWhere
	queuedPartitionCountSQL = `SELECT count(*) ` + queuedWhere + ` AND queue_partition = $2`
	queuedLastSQL           = `SELECT id ` + queuedWhere + ` ORDER BY seq DESC LIMIT $2`
	queuedPartitionLastSQL  = `SELECT id ` + queuedWhere + ` AND queue_partition = $2 ORDER BY seq DESC LIMIT $3`
)

// waitList answers admission's questions about one pipeline's wait list with queries inside the
// admission transaction, which holds the pipeline's lock. The first error is kept and checked
// after the decision.
type waitList struct {
	ctx      context.Context
	tx       pgx.Tx
	pipeline string
	// n is the length of the wait list when it was read with the pipeline's lock, else -1.
	n   int
	err error
}

var _ pipeline.WaitList = (*waitList)(nil)

func (w *waitList) count(sql string, args ...any) int {
	if w.err != nil {
		return 0
	}
	var n int
	w.err = w.tx.QueryRow(w.ctx, sql, args...).Scan(&n)
	return n
}

func (w *waitList) ids(sql string, args ...any) []string {
	if w.err != nil {
		return nil
	}
	rows, err := w.tx.Query(w.ctx, sql, args...)
	if err != nil {
		w.err = err
		return nil
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		w.err = err
		return nil
	}
	// The query walks backwards from the end; the decision lists them in wait-list order.
	slices.Reverse(ids)
	return ids
}

func (w *waitList) Len() int {
	if w.n >= 0 {
		return w.n
	}
	return w.count(queuedCountSQL, w.pipeline)
}

func (w *waitList) PartitionLen(partition string) int {
	return w.count(queuedPartitionCountSQL, w.pipeline, partition)
}

func (w *waitList) Last(n int) []string { return w.ids(queuedLastSQL, w.pipeline, n) }

func (w *waitList) LastInPartition(partition string, n int) []string {
	return w.ids(queuedPartitionLastSQL, w.pipeline, partition, n)
}
