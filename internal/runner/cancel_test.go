package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// claimHold is a store that holds the first job end that claims a waiting job: the claimed job
// is running in the store, but the runner has not registered it yet, until release is closed.
type claimHold struct {
	store.Store
	once    sync.Once
	claimed chan string
	release chan struct{}
}

func (s *claimHold) FinishAndClaim(ctx context.Context, f store.FinishParams, c store.ClaimParams) (store.ClaimResult, error) {
	res, err := s.Store.FinishAndClaim(ctx, f, c)
	if err == nil && len(res.Started) > 0 {
		s.once.Do(func() {
			s.claimed <- res.Started[0].ID
			<-s.release
		})
	}
	return res, err
}

func TestCancelBetweenClaimAndLaunch(t *testing.T) {
	t.Parallel()
	hold := &claimHold{claimed: make(chan string, 1), release: make(chan struct{})}
	r, dir := startRunnerOn(t, `
pipelines:
  p:
    tasks:
      t: {script: ["touch ran-{{ .__jobID }}", "sleep 30"]}
`, func(st store.Store) store.Store { hold.Store = st; return hold })
	release := sync.OnceFunc(func() { close(hold.release) })
	// Registered after startRunner's cleanup, so it runs first: a failing test does not leave
	// the runner's stop waiting for the held job end.
	t.Cleanup(release)

	first := schedule(t, r, "p")
	second := schedule(t, r, "p")
	if err := r.Cancel(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	var claimed string
	select {
	case claimed = <-hold.claimed:
	case <-time.After(20 * time.Second):
		t.Fatal("the first job's end claimed nothing in time")
	}
	if claimed != second {
		t.Fatalf("claimed %s, want the waiting job %s", claimed, second)
	}
	if j, err := r.Job(t.Context(), second); err != nil || j.Status != pipeline.JobRunning || registered(r, second) {
		t.Fatalf("while held: job %+v (%v), registered %v; want running in the store and not registered", j, err, registered(r, second))
	}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := r.Cancel(ctx, second); err != nil {
		t.Fatalf("cancel of a claimed job not registered yet: %v", err)
	}
	release()

	j := waitDone(t, r, second)
	if j.Status != pipeline.JobCanceled || j.LastError != errCanceledByRequest.Error() {
		t.Errorf("job = %s %q, want canceled by request", j.Status, j.LastError)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran-"+second)); err == nil {
		t.Error("the canceled job's task ran")
	}
	assertNoCancelNotes(t, r)
}

// TestCancelAnswersAsTheJobEnds races cancel requests against jobs that start and end quickly:
// whatever state a job is in when its cancel comes, the answer must match how the job ends, and
// no note is left behind.
func TestCancelAnswersAsTheJobEnds(t *testing.T) {
	t.Parallel()
	r, _ := startRunner(t, `
pipelines:
  p:
    concurrency: 2
    tasks:
      t: {script: ["true"]}
`)
	const jobs = 40
	ids := make([]string, jobs)
	for i := range ids {
		ids[i] = schedule(t, r, "p")
	}
	// The jobs start from the front of the wait list; the cancels come from the back, so they
	// meet jobs queued, just claimed, running and finished.
	errs := make([]error, jobs)
	var wg sync.WaitGroup
	for i := jobs - 1; i >= 0; i-- {
		wg.Go(func() { errs[i] = r.Cancel(t.Context(), ids[i]) })
	}
	wg.Wait()
	for i, id := range ids {
		j := waitDone(t, r, id)
		switch {
		case errs[i] == nil && j.Status != pipeline.JobCanceled:
			t.Errorf("job %d: cancel answered nil, but the job ended %s", i, j.Status)
		case errors.Is(errs[i], pipeline.ErrJobFinished) && j.Status != pipeline.JobSucceeded:
			t.Errorf("job %d: cancel answered %v, but the job ended %s", i, errs[i], j.Status)
		case errs[i] != nil && !errors.Is(errs[i], pipeline.ErrJobFinished):
			t.Errorf("job %d: cancel: %v", i, errs[i])
		}
	}
	assertNoCancelNotes(t, r)
}

// registered reports whether the runner has registered the job as one it runs.
func registered(r *Runner, id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running[id] != nil
}

// assertNoCancelNotes fails when a cancel note outlived its request.
func assertNoCancelNotes(t *testing.T, r *Runner) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.cancelPending); n != 0 {
		notes := ""
		for id := range r.cancelPending {
			notes += " " + id
		}
		t.Errorf("%s cancel notes left:%s", strconv.Itoa(n), notes)
	}
}

func TestStopCancelsAJobClaimedBeforeIt(t *testing.T) {
	t.Parallel()
	hold := &claimHold{claimed: make(chan string, 1), release: make(chan struct{})}
	r, dir := startRunnerOn(t, `
pipelines:
  p:
    tasks:
      t: {script: ["touch ran-{{ .__jobID }}", "sleep 30"]}
`, func(st store.Store) store.Store { hold.Store = st; return hold })
	release := sync.OnceFunc(func() { close(hold.release) })
	t.Cleanup(release)

	first := schedule(t, r, "p")
	second := schedule(t, r, "p")
	if err := r.Cancel(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	select {
	case <-hold.claimed:
	case <-time.After(20 * time.Second):
		t.Fatal("the first job's end claimed nothing in time")
	}
	// Stop cancels what runs, then waits for the held first job, whose end launches the second.
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stopped <- r.Stop(ctx)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !stopping(r) {
		if time.Now().After(deadline) {
			t.Fatal("Stop did not cancel the running jobs in time")
		}
		time.Sleep(time.Millisecond)
	}
	release()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop waits for the job claimed before it: it was not canceled")
	}
	j := waitDone(t, r, second)
	if j.Status != pipeline.JobCanceled || j.LastError != errServerStopping.Error() {
		t.Errorf("job = %s %q, want canceled by the stopping server", j.Status, j.LastError)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran-"+second)); err == nil {
		t.Error("the job's task ran after the server stopped")
	}
}

// stopping reports whether the runner cancels every job it runs and launches.
func stopping(r *Runner) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopping
}
