package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// EachJobFrom implements store.Store. The batches are keyset-paginated on seq, the list order
// (newest first; seq is unique, so the order has no ties): a batch reads the jobs with a seq
// below the last one the previous batch read, in a read transaction of its own. Every batch is
// thus one index range scan from where the last one stopped, however deep into the list it is,
// and no read stays open between batches.
//
// The position holds a seq, which nothing else outside the database does (see the jobs table).
// A seq is reused only when the newest jobs were deleted; then a job created during the list
// can come in it, which is harmless: it still neither repeats nor skips a job.
func (s *Store) EachJobFrom(ctx context.Context, q store.JobQuery, from store.ListPos, fn func(*pipeline.Job) error) (store.ListPos, error) {
	if from.End {
		return from, nil
	}
	next := from
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		bq := q
		if from.Key != 0 {
			// The cursor placed the first batch; from here on the position does.
			bq.Before = ""
		}
		where, args, err := s.jobFilter(ctx, tx, bq)
		if err != nil {
			return err
		}
		if from.Key != 0 {
			if where == "" {
				where = " WHERE seq < ?"
			} else {
				where += " AND seq < ?"
			}
			args = append(args, from.Key)
		}
		l := listers.Get().(*jobLister)
		defer l.release()
		l.ctx, l.tx, l.s, l.fn = ctx, tx, s, fn
		l.withoutTasks, l.varsAsJSON, l.reuse = q.WithoutTasks, q.VariablesAsJSON, true
		last, n, err := l.list(where, args, q.Limit)
		if err != nil {
			return err
		}
		if n > 0 {
			next.Key = last
		}
		// A batch shorter than asked for read the list to its end.
		next.End = q.Limit <= 0 || n < q.Limit
		return l.flush()
	})
	if err != nil {
		return from, fmt.Errorf("list jobs: %w", err)
	}
	return next, nil
}

// listers keeps the listers of batched lists with their memory: a list of 100,000 jobs is
// hundreds of batches, and a fresh lister for each would allocate its jobs, times and tasks
// again every time — garbage the collector would then have to chase at the pace of the list.
var listers = sync.Pool{New: func() any { return new(jobLister) }}

// release resets l, whose jobs are all dead (fn has seen them), and gives it back to listers.
func (l *jobLister) release() {
	l.a.reset()
	l.tasks.reset()
	clear(l.jobs)
	l.jobs, l.seqs, l.missing = l.jobs[:0], l.seqs[:0], l.missing[:0]
	l.ctx, l.tx, l.s, l.fn = nil, nil, nil, nil
	listers.Put(l)
}
