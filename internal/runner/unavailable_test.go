package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// outage is a store whose writes about running jobs fail with store.ErrUnavailable while down
// is set, as a database that was cut off; failed counts those failures.
type outage struct {
	store.Store
	down   atomic.Bool
	failed atomic.Int64
}

func (s *outage) unavailable() error {
	if !s.down.Load() {
		return nil
	}
	s.failed.Add(1)
	return fmt.Errorf("test outage: %w", store.ErrUnavailable)
}

func (s *outage) UpdateTask(ctx context.Context, jobID string, t pipeline.Task) error {
	if err := s.unavailable(); err != nil {
		return err
	}
	return s.Store.UpdateTask(ctx, jobID, t)
}

func (s *outage) FinishJob(ctx context.Context, p store.FinishParams) error {
	if err := s.unavailable(); err != nil {
		return err
	}
	return s.Store.FinishJob(ctx, p)
}

func (s *outage) FinishAndClaim(ctx context.Context, f store.FinishParams, c store.ClaimParams) (store.ClaimResult, error) {
	if err := s.unavailable(); err != nil {
		return store.ClaimResult{}, err
	}
	return s.Store.FinishAndClaim(ctx, f, c)
}

// TestWritesWaitForTheDatabase: the task and job ends of a job that finishes while the database
// is unavailable are retried, not dropped, and stored once it is back: the job ends succeeded
// with its task done.
func TestWritesWaitForTheDatabase(t *testing.T) {
	t.Parallel()
	cut := &outage{}
	r, dir := startRunnerOn(t, `
pipelines:
  wait:
    tasks:
      gate:
        script:
          - touch started
          - sh -c 'while [ ! -f go ]; do sleep 0.02; done'
`, func(st store.Store) store.Store { cut.Store = st; return cut })
	id := schedule(t, r, "wait")
	waitFor(t, "the task to start", func() bool {
		_, err := os.Stat(filepath.Join(dir, "started"))
		return err == nil
	})
	cut.down.Store(true)
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ends to be tried while the database is down", func() bool { return cut.failed.Load() >= 3 })
	time.Sleep(100 * time.Millisecond) // a few more retries; none of them may give up
	cut.down.Store(false)

	j := waitDone(t, r, id)
	if j.Status != pipeline.JobSucceeded {
		t.Errorf("job status %s (%s), want succeeded", j.Status, j.LastError)
	}
	if task := j.Task("gate"); task == nil || task.Status != pipeline.TaskDone {
		t.Errorf("task gate = %+v, want done: its end was dropped", task)
	}
}

// TestOutageLoggedOnce: background work that finds the database unavailable logs it once as a
// warning, then once that it is back; its other errors are logged each time.
func TestOutageLoggedOnce(t *testing.T) {
	var logs bytes.Buffer
	r := &Runner{log: slog.New(slog.NewTextHandler(&logs, nil))}
	down := fmt.Errorf("poll: %w", store.ErrUnavailable)
	for range 3 {
		r.logStoreError("poll the wait lists", down)
	}
	r.storeReachable()
	r.storeReachable()
	r.logStoreError("claim waiting jobs", errors.New("boom"))
	out := logs.String()
	for what, want := range map[string]int{"level=WARN": 1, "database reachable again": 1, "level=ERROR": 1} {
		if got := strings.Count(out, what); got != want {
			t.Errorf("%q logged %d times, want %d:\n%s", what, got, want, out)
		}
	}
}
