package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Group commit. Every write of the store — an admission, a claim, a task update, a job's end —
// is a transaction on the single writer connection, and a commit costs more than most of the
// statements in it (it writes each changed page to the WAL). Under load many writes wait for the
// writer at once: they are run together, each inside a savepoint of one transaction, and
// committed once. Each write still sees the writes before it, fails alone (its savepoint is
// rolled back), and returns only when its own work is committed; alone, a write runs as its own
// transaction, as before.
//
// Admissions go first. A burst of thousands of firings also ends thousands of jobs, and in
// arrival order every admission would wait behind the job ends and task updates queued before
// it: the firing's lateness would grow with the work of the jobs already started. A batch takes
// the waiting admissions before the other writes and then minOthers of the others, so that it
// stays short while admissions wait (each admission's wait is a batch or two); without waiting
// admissions it takes maxBatch of the others. Either way the others progress by at least
// minOthers writes per batch however many admissions arrive: nothing starves. Reordering writes
// that wait together is safe: their callers all still wait, so none of them can have seen the
// effect of another, and the other writes keep their order among themselves.

// txOp is one write waiting for the writer.
type txOp struct {
	ctx  context.Context
	fn   func(ctx context.Context) error
	done chan error // receives the outcome once the op's batch committed (or failed)
	// oneStatement: fn changes the database with at most one statement, which SQLite undoes by
	// itself when it fails, so fn needs no savepoint (see groupTxOne).
	oneStatement bool
	// first: an admission, which a batch takes before the other writes (see above).
	first bool
}

// txQueue holds the writes waiting for the writer: the admissions (first) and the others (ops),
// each in arrival order.
type txQueue struct {
	mu      sync.Mutex
	first   []*txOp
	ops     []*txOp
	running bool // a goroutine is running batches
}

// maxBatch bounds the writes of one transaction, so that a burst does not hold every caller of
// a huge batch until its end.
const maxBatch = 128

// minOthers is how many places of a batch the writes other than admissions keep when they wait.
const minOthers = maxBatch / 8

// len is the number of waiting writes. The caller holds q.mu.
func (q *txQueue) len() int { return len(q.first) + len(q.ops) }

// push queues op. The caller holds q.mu.
func (q *txQueue) push(op *txOp) {
	if op.first {
		q.first = append(q.first, op)
	} else {
		q.ops = append(q.ops, op)
	}
}

// remove takes op out of the queue and reports whether it was there. The caller holds q.mu.
func (q *txQueue) remove(op *txOp) bool {
	list := &q.ops
	if op.first {
		list = &q.first
	}
	for i, o := range *list {
		if o == op {
			*list = append((*list)[:i], (*list)[i+1:]...)
			return true
		}
	}
	return false
}

// take takes the next batch out of the queue: the admissions first, as many as fit beside
// minOthers of the other writes (fewer when fewer wait), then minOthers of the other writes, or
// maxBatch of them when no admission waits. The caller holds q.mu.
func (q *txQueue) take() []*txOp {
	nFirst := min(len(q.first), maxBatch-min(len(q.ops), minOthers))
	nOthers := min(len(q.ops), maxBatch)
	if nFirst > 0 {
		nOthers = min(len(q.ops), minOthers)
	}
	batch := make([]*txOp, 0, nFirst+nOthers)
	batch = append(batch, q.first[:nFirst]...)
	batch = append(batch, q.ops[:nOthers]...)
	q.first = append(q.first[:0], q.first[nFirst:]...)
	q.ops = append(q.ops[:0], q.ops[nOthers:]...)
	return batch
}

// groupTx runs fn in a write transaction, possibly shared with other writes (see above), and
// returns once that transaction committed. fn's error rolls back fn's work only and is returned.
// The caller's context bounds the wait for the writer: a write that has not started when ctx
// ends is withdrawn and returns ctx's error; once started it completes.
func (s *Store) groupTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.queueTx(&txOp{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

// groupTxOne is groupTx for an fn that changes the database with at most one statement. It
// runs without a savepoint of its own (two statements fewer: a wide job writes hundreds of task
// updates at once). Should fn fail for any other reason than errNoChange, the whole batch
// fails, as SQLite may have rolled back the transaction.
func (s *Store) groupTxOne(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.queueTx(&txOp{ctx: ctx, fn: fn, done: make(chan error, 1), oneStatement: true})
}

// groupTxFirst is groupTx for an admission: its batch takes it before the other writes waiting
// (see above).
func (s *Store) groupTxFirst(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.queueTx(&txOp{ctx: ctx, fn: fn, done: make(chan error, 1), first: true})
}

// errNoChange wraps the error of a groupTxOne fn that changed nothing (its statement found no
// row), which leaves the transaction intact.
type errNoChange struct{ err error }

func (e errNoChange) Error() string { return e.err.Error() }
func (e errNoChange) Unwrap() error { return e.err }

func (s *Store) queueTx(op *txOp) error {
	ctx := op.ctx
	if err := ctx.Err(); err != nil {
		return err
	}
	q := &s.txq
	q.mu.Lock()
	q.push(op)
	lead := !q.running
	q.running = true
	q.mu.Unlock()
	if lead {
		// The first writer runs the batches itself (no goroutine hop on the common path of a
		// single write); once its own write is done, a new goroutine takes over.
		s.runBatches(op)
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
	}
	q.mu.Lock()
	if q.remove(op) {
		q.mu.Unlock()
		return ctx.Err()
	}
	q.mu.Unlock()
	// Already taken into a transaction: its outcome is the truth.
	return <-op.done
}

// runBatches runs queued writes in batches until the queue is empty or, for a caller that leads
// with its own write (own != nil), until that write is done. A batch is taken from the queue
// only once the writer is held, so that a write whose caller gives up while waiting for the
// writer can still be withdrawn.
func (s *Store) runBatches(own *txOp) {
	q := &s.txq
	for {
		var ctxDone <-chan struct{}
		if own != nil {
			ctxDone = own.ctx.Done()
		}
		select {
		case s.wlock <- struct{}{}:
		case <-ctxDone:
			// The leader's caller gives up waiting: it withdraws its write (groupTx), and a
			// goroutine waits for the writer on behalf of the others.
			go s.runBatches(nil)
			return
		}
		q.mu.Lock()
		if q.len() == 0 || (own != nil && len(own.done) > 0) {
			if q.len() == 0 {
				q.running = false
			} else {
				go s.runBatches(nil)
			}
			q.mu.Unlock()
			<-s.wlock
			return
		}
		batch := q.take()
		q.mu.Unlock()
		s.runBatch(batch)
		<-s.wlock
	}
}

// runBatch runs the writes of batch in one transaction and tells each its outcome. The caller
// holds the writer.
func (s *Store) runBatch(batch []*txOp) {
	results := make([]error, len(batch))
	err := s.batchTx(func(ctx context.Context) error {
		if len(batch) == 1 {
			results[0] = batch[0].fn(context.WithoutCancel(batch[0].ctx))
			// Alone, the write's error rolls back the transaction.
			return results[0]
		}
		for i, op := range batch {
			if op.oneStatement {
				results[i] = op.fn(context.WithoutCancel(op.ctx))
				var noChange errNoChange
				if results[i] != nil && !errors.As(results[i], &noChange) {
					return results[i]
				}
				continue
			}
			if _, err := s.ws.savepoint.ExecContext(ctx); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			results[i] = op.fn(context.WithoutCancel(op.ctx))
			if results[i] != nil {
				if _, err := s.ws.rollbackTo.ExecContext(ctx); err != nil {
					// The transaction itself is gone (SQLite rolls back the whole transaction
					// on some errors, a full disk among them): nothing of the batch stays.
					return errors.Join(results[i], fmt.Errorf("roll back to savepoint: %w", err))
				}
			}
			if _, err := s.ws.release.ExecContext(ctx); err != nil {
				return errors.Join(results[i], fmt.Errorf("release savepoint: %w", err))
			}
		}
		return nil
	})
	for i, op := range batch {
		var noChange errNoChange
		if errors.As(results[i], &noChange) {
			results[i] = noChange.err
		}
		switch {
		case results[i] != nil:
			// The op failed on its own; its savepoint (or the transaction) was rolled back.
			op.done <- results[i]
		case err != nil:
			op.done <- err
		default:
			op.done <- nil
		}
	}
}

// batchTx runs fn in a write transaction; the caller holds the writer.
func (s *Store) batchTx(fn func(ctx context.Context) error) error {
	if s.closed {
		return errClosed
	}
	if s.prepareErr != nil {
		return s.prepareErr
	}
	if err := s.inTx(context.Background(), fn); err != nil {
		return err
	}
	s.ckpt.kick()
	return nil
}
