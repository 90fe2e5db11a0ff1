package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestGroupCommitFailsAlone: writes that wait for the writer together share a transaction;
// one that fails leaves nothing behind, and the others are committed.
func TestGroupCommitFailsAlone(t *testing.T) {
	t.Parallel()
	s := openTest(t, filepath.Join(t.TempDir(), "prunner.db"))
	insert := func(ctx context.Context, id string) error {
		_, err := s.wconn.ExecContext(ctx, `INSERT INTO jobs (id, pipeline, status) VALUES (?, 'p', 'succeeded')`, id)
		return err
	}
	boom := errors.New("boom")
	s.wlock <- struct{}{} // hold the writer so that the writes queue up
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range 10 {
		wg.Go(func() {
			errs[i] = s.groupTx(t.Context(), func(ctx context.Context) error {
				if err := insert(ctx, fmt.Sprintf("j%d", i)); err != nil {
					return err
				}
				if i == 3 {
					return boom // after its insert: the insert must be rolled back
				}
				if i == 5 {
					return insert(ctx, "j5") // a constraint violation: its first insert goes too
				}
				return nil
			})
		})
	}
	waitFor(t, func() bool {
		s.txq.mu.Lock()
		defer s.txq.mu.Unlock()
		return len(s.txq.ops) == 10
	})
	<-s.wlock
	wg.Wait()
	for i, err := range errs {
		switch i {
		case 3:
			if !errors.Is(err, boom) {
				t.Errorf("write %d error = %v, want %v", i, err, boom)
			}
		case 5:
			if err == nil {
				t.Errorf("write %d (duplicate ID) succeeded", i)
			}
		default:
			if err != nil {
				t.Errorf("write %d error = %v", i, err)
			}
		}
	}
	var n int
	if err := s.read.QueryRow(`SELECT count(*) FROM jobs`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"j3", "j5"} {
		var c int
		if err := s.read.QueryRow(`SELECT count(*) FROM jobs WHERE id = ?`, id).Scan(&c); err != nil || c != 0 {
			t.Errorf("job %s of a failed write: count %d, %v; want 0", id, c, err)
		}
	}
	if n != 8 {
		t.Errorf("%d jobs stored, want 8", n)
	}
}

// TestGroupCommitWithdrawsQueuedWrite: a write whose caller gives up before the writer is free
// never happens, while the writes queued with it do.
func TestGroupCommitWithdrawsQueuedWrite(t *testing.T) {
	t.Parallel()
	s := openTest(t, filepath.Join(t.TempDir(), "prunner.db"))
	s.wlock <- struct{}{}
	ran := make(chan string, 2)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	other := make(chan error, 1)
	go func() {
		other <- s.groupTx(t.Context(), func(context.Context) error { ran <- "other"; return nil })
	}()
	waitFor(t, func() bool {
		s.txq.mu.Lock()
		defer s.txq.mu.Unlock()
		return len(s.txq.ops) == 1
	})
	err := s.groupTx(ctx, func(context.Context) error { ran <- "withdrawn"; return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("groupTx() with the writer busy = %v, want %v", err, context.DeadlineExceeded)
	}
	<-s.wlock
	if err := <-other; err != nil {
		t.Errorf("other write error = %v", err)
	}
	close(ran)
	var got []string
	for r := range ran {
		got = append(got, r)
	}
	if len(got) != 1 || got[0] != "other" {
		t.Errorf("writes run = %v, want [other]", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommitAdmissionsFirst: admissions that wait for the writer run before the other
// writes that waited longer; the others keep their order.
func TestGroupCommitAdmissionsFirst(t *testing.T) {
	t.Parallel()
	s := openTest(t, filepath.Join(t.TempDir(), "prunner.db"))
	s.wlock <- struct{}{} // hold the writer so that the writes queue up
	var (
		mu     sync.Mutex
		ran    []string
		wg     sync.WaitGroup
		queued int
	)
	queue := func(name string, first bool) {
		write := s.groupTx
		if first {
			write = s.groupTxFirst
		}
		wg.Go(func() {
			err := write(t.Context(), func(context.Context) error {
				mu.Lock()
				defer mu.Unlock()
				ran = append(ran, name)
				return nil
			})
			if err != nil {
				t.Errorf("write %s: %v", name, err)
			}
		})
		queued++
		waitFor(t, func() bool { // one at a time: the arrival order is the order of the calls
			s.txq.mu.Lock()
			defer s.txq.mu.Unlock()
			return s.txq.len() == queued
		})
	}
	queue("end 1", false)
	queue("end 2", false)
	queue("admission 1", true)
	queue("end 3", false)
	queue("admission 2", true)
	<-s.wlock
	wg.Wait()
	want := []string{"admission 1", "admission 2", "end 1", "end 2", "end 3"}
	if fmt.Sprint(ran) != fmt.Sprint(want) {
		t.Errorf("writes ran in the order %v, want %v", ran, want)
	}
}

// TestGroupCommitBatchKeepsPlacesForOthers: however many admissions wait, a batch takes
// minOthers of the other writes, so that job ends and task updates are never starved, and no
// more, so that the admissions' batch stays short; when no admission waits, the others fill
// the batch.
func TestGroupCommitBatchKeepsPlacesForOthers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		first, others         int
		wantFirst, wantOthers int
	}{
		{first: 500, others: 500, wantFirst: maxBatch - minOthers, wantOthers: minOthers},
		{first: 500, others: 3, wantFirst: maxBatch - 3, wantOthers: 3},
		{first: 10, others: 500, wantFirst: 10, wantOthers: minOthers},
		{first: 500, others: 0, wantFirst: maxBatch},
		{others: 500, wantOthers: maxBatch},
	} {
		var q txQueue
		for i := range tc.first {
			q.push(&txOp{first: true, ctx: context.WithValue(t.Context(), txOpKey{}, i)})
		}
		for i := range tc.others {
			q.push(&txOp{ctx: context.WithValue(t.Context(), txOpKey{}, i)})
		}
		batch := q.take()
		var first, others int
		for i, op := range batch {
			if op.first != (i < tc.wantFirst) {
				t.Fatalf("%+v: op %d of the batch is an admission: %v", tc, i, op.first)
			}
			n := &others
			if op.first {
				n = &first
			}
			if got := op.ctx.Value(txOpKey{}); got != *n {
				t.Fatalf("%+v: op %d of the batch arrived as %v of its kind, want %d", tc, i, got, *n)
			}
			*n++
		}
		if first != tc.wantFirst || others != tc.wantOthers {
			t.Errorf("%+v: batch of %d admissions and %d others, want %d and %d", tc, first, others, tc.wantFirst, tc.wantOthers)
		}
		if q.len() != tc.first+tc.others-len(batch) {
			t.Errorf("%+v: %d left in the queue, want %d", tc, q.len(), tc.first+tc.others-len(batch))
		}
	}
}

type txOpKey struct{}
