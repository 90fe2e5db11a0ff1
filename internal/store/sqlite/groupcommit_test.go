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
