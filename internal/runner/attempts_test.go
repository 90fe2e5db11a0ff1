package runner

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/sqlite"
)

// startRunner starts a runner on a fresh SQLite store and data directory with the pipelines of
// file; tasks run in that directory.
func startRunner(t *testing.T, file string) (*Runner, string) {
	t.Helper()
	return startRunnerOn(t, file, func(st store.Store) store.Store { return st })
}

// startRunnerOn is startRunner with the store that wrap makes of the SQLite store.
func startRunnerOn(t *testing.T, file string, wrap func(store.Store) store.Store) (*Runner, string) {
	t.Helper()
	return startRunnerWith(t, file, wrap, func(*Config) {})
}

// startRunnerWith is startRunnerOn with the configuration changed by mod.
func startRunnerWith(t *testing.T, file string, wrap func(store.Store) store.Store, mod func(*Config)) (*Runner, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "prunner.db"))
	if err != nil {
		t.Fatal(err)
	}
	st := wrap(db)
	defs, _, errs := pipeline.Parse("pipelines.yml", []byte(file))
	if len(errs) > 0 {
		t.Fatalf("pipelines.yml: %v", errs)
	}
	cfg := Config{
		Store:     st,
		DataDir:   dir,
		WorkDir:   dir,
		Env:       []string{"PATH=" + os.Getenv("PATH")},
		KillGrace: 200 * time.Millisecond,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	mod(&cfg)
	r := New(cfg)
	r.SetDefinitions(&pipeline.Set{Pipelines: defs})
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Error(err)
		}
		_ = st.Close()
	})
	return r, dir
}

func schedule(t *testing.T, r *Runner, name string) string {
	t.Helper()
	id, err := r.Schedule(t.Context(), pipeline.ScheduleRequest{Pipeline: name})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// waitJob polls the job until cond holds, at most 20 seconds.
func waitJob(t *testing.T, r *Runner, id string, what string, cond func(*pipeline.Job) bool) *pipeline.Job {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		j, err := r.Job(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not %s in time: %+v", id, what, j)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitDone(t *testing.T, r *Runner, id string) *pipeline.Job {
	t.Helper()
	return waitJob(t, r, id, "finished", func(j *pipeline.Job) bool { return j.End != nil })
}

func readLog(t *testing.T, open func() (io.ReadCloser, error)) string {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTaskTimeoutFailsTheTask(t *testing.T) {
	t.Parallel()
	r, _ := startRunner(t, `
pipelines:
  p:
    tasks:
      slow: {script: ["echo started", "sleep 30"], timeout: 200ms}
      after: {script: ["echo never"], depends_on: [slow]}
`)
	start := time.Now()
	j := waitDone(t, r, schedule(t, r, "p"))
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("job took %v, want the task killed after 200ms", elapsed)
	}
	slow := j.Task("slow")
	if slow.Status != pipeline.TaskError || !slow.Errored || slow.Error != "timeout: task exceeded 200ms" || slow.ExitCode != -1 {
		t.Errorf("slow = %+v, want error %q", slow, "timeout: task exceeded 200ms")
	}
	if after := j.Task("after"); after.Status != pipeline.TaskSkipped {
		t.Errorf("after = %+v, want skipped", after)
	}
	if j.Status != pipeline.JobFailed || !j.Errored || j.LastError != "timeout: task exceeded 200ms" {
		t.Errorf("job status %s errored %v lastError %q, want failed with the timeout", j.Status, j.Errored, j.LastError)
	}
}

func TestJobTimeoutFailsTheJobAndRunsOnError(t *testing.T) {
	t.Parallel()
	r, dir := startRunner(t, `
pipelines:
  p:
    timeout: 300ms
    tasks:
      quick: {script: ["true"]}
      slow: {script: ["sleep 30"], depends_on: [quick]}
      later: {script: ["true"], depends_on: [slow]}
    on_error:
      script: ["echo '{{ .failedTaskName }}: {{ .failedTaskError }}' > on_error.txt"]
`)
	j := waitDone(t, r, schedule(t, r, "p"))
	if j.Status != pipeline.JobFailed || !j.Errored || j.LastError != "timeout: job exceeded 300ms" {
		t.Errorf("job status %s errored %v lastError %q, want failed with the job timeout", j.Status, j.Errored, j.LastError)
	}
	want := map[string]pipeline.TaskStatus{"quick": pipeline.TaskDone, "slow": pipeline.TaskError, "later": pipeline.TaskSkipped, pipeline.OnErrorTaskName: pipeline.TaskDone}
	for name, status := range want {
		if got := j.Task(name); got == nil || got.Status != status {
			t.Errorf("task %s = %+v, want %s", name, got, status)
		}
	}
	out, err := os.ReadFile(filepath.Join(dir, "on_error.txt"))
	if err != nil || string(out) != "slow: timeout: job exceeded 300ms\n" {
		t.Errorf("on_error wrote %q (%v), want the timed-out task", out, err)
	}
}

func TestRetryRunsFailedAttemptsAgain(t *testing.T) {
	t.Parallel()
	r, dir := startRunner(t, `
pipelines:
  p:
    tasks:
      flaky:
        script:
          - n=$(cat c 2>/dev/null || echo 0); n=$((n+1)); echo $n > c
          - echo "attempt $n"; echo "err $n" >&2
          - '[ $n -ge 3 ]'
        retry: {attempts: 5, delay: 50ms, backoff: 2}
`)
	start := time.Now()
	id := schedule(t, r, "p")
	j := waitDone(t, r, id)
	if elapsed := time.Since(start); elapsed < 150*time.Millisecond {
		t.Errorf("job took %v, want at least the delays 50ms + 100ms", elapsed)
	}
	if j.Status != pipeline.JobSucceeded {
		t.Fatalf("job = %s (%s), want succeeded", j.Status, j.LastError)
	}
	flaky := j.Task("flaky")
	if flaky.Attempt != 3 || len(flaky.Attempts) != 2 || flaky.Status != pipeline.TaskDone || flaky.Error != "" {
		t.Fatalf("flaky = %+v, want done in attempt 3 after two failed ones", flaky)
	}
	for i, a := range flaky.Attempts {
		if a.Number != i+1 || a.ExitCode != 1 || a.Error != "exit status 1" || a.Start.IsZero() || a.End.Before(a.Start) {
			t.Errorf("attempt %d = %+v, want number %d failed with exit status 1", i+1, a, i+1)
		}
	}
	if gap := flaky.Attempts[1].Start.Sub(flaky.Attempts[0].End); gap < 50*time.Millisecond {
		t.Errorf("attempt 2 started %v after attempt 1 ended, want the delay of 50ms", gap)
	}
	if gap := flaky.Start.Sub(flaky.Attempts[0].Start); gap != 0 {
		t.Errorf("task start is %v after attempt 1's start, want the same", gap)
	}

	for n := 1; n <= 3; n++ {
		stdout := readLog(t, func() (io.ReadCloser, error) { return r.OpenAttemptLog(t.Context(), id, "flaky", n, pipeline.Stdout) })
		stderr := readLog(t, func() (io.ReadCloser, error) { return r.OpenAttemptLog(t.Context(), id, "flaky", n, pipeline.Stderr) })
		if want := "attempt " + string(rune('0'+n)) + "\n"; stdout != want {
			t.Errorf("attempt %d stdout = %q, want %q", n, stdout, want)
		}
		if want := "err " + string(rune('0'+n)) + "\n"; stderr != want {
			t.Errorf("attempt %d stderr = %q, want %q", n, stderr, want)
		}
	}
	if got := readLog(t, func() (io.ReadCloser, error) { return r.OpenLog(t.Context(), id, "flaky", pipeline.Stdout) }); got != "attempt 3\n" {
		t.Errorf("OpenLog = %q, want the last attempt's output", got)
	}
	for _, n := range []int{0, 4} {
		if _, err := r.OpenAttemptLog(t.Context(), id, "flaky", n, pipeline.Stdout); !errors.Is(err, pipeline.ErrAttemptNotFound) {
			t.Errorf("OpenAttemptLog(%d) error = %v, want ErrAttemptNotFound", n, err)
		}
	}
	if _, err := r.OpenAttemptLog(t.Context(), id, "nope", 1, pipeline.Stdout); !errors.Is(err, pipeline.ErrTaskNotFound) {
		t.Errorf("OpenAttemptLog of an unknown task: error = %v, want ErrTaskNotFound", err)
	}
	if c, _ := os.ReadFile(filepath.Join(dir, "c")); strings.TrimSpace(string(c)) != "3" {
		t.Errorf("the task ran %q times, want 3", c)
	}
}

func TestRetriesExhaustedRunOnErrorOnce(t *testing.T) {
	t.Parallel()
	r, dir := startRunner(t, `
pipelines:
  p:
    tasks:
      broken:
        script: ["echo run >> runs.txt; echo out $(wc -l < runs.txt); exit 3"]
        timeout: 5s
        retry: {attempts: 3}
    on_error:
      script: ["echo '{{ .failedTaskExitCode }} {{ .failedTaskStdout }}' >> on_error.txt"]
`)
	j := waitDone(t, r, schedule(t, r, "p"))
	broken := j.Task("broken")
	if j.Status != pipeline.JobFailed || broken.Attempt != 3 || len(broken.Attempts) != 2 || broken.ExitCode != 3 {
		t.Fatalf("job %s, broken = %+v, want failed after 3 attempts", j.Status, broken)
	}
	out, _ := os.ReadFile(filepath.Join(dir, "on_error.txt"))
	if got := strings.Join(strings.Fields(string(out)), " "); got != "3 out 3" {
		t.Errorf("on_error ran with %q, want once with the last attempt's output", out)
	}
}

func TestTimedOutAttemptsAreRetried(t *testing.T) {
	t.Parallel()
	r, _ := startRunner(t, `
pipelines:
  p:
    tasks:
      hang: {script: ["sleep 30"], timeout: 100ms, retry: {attempts: 2}}
`)
	j := waitDone(t, r, schedule(t, r, "p"))
	hang := j.Task("hang")
	if hang.Attempt != 2 || len(hang.Attempts) != 1 || hang.Attempts[0].Error != "timeout: task exceeded 100ms" ||
		hang.Error != "timeout: task exceeded 100ms" || hang.Status != pipeline.TaskError {
		t.Errorf("hang = %+v, want two attempts that timed out", hang)
	}
}

func TestCancelStopsRetries(t *testing.T) {
	t.Parallel()
	r, dir := startRunner(t, `
pipelines:
  p:
    tasks:
      failing: {script: ["echo run >> runs.txt; exit 1"], retry: {attempts: 5, delay: 1m}}
    on_error:
      script: ["touch on_error.txt"]
`)
	id := schedule(t, r, "p")
	// The record shows the failed attempt as soon as the task waits for the next one.
	j := waitJob(t, r, id, "waiting for attempt 2", func(j *pipeline.Job) bool { return j.Task("failing").Attempt == 2 })
	if a := j.Task("failing").Attempts; len(a) != 1 || a[0].ExitCode != 1 || j.Task("failing").Status != pipeline.TaskRunning {
		t.Errorf("while waiting: %+v, want running with attempt 1 failed", j.Task("failing"))
	}
	start := time.Now()
	if err := r.Cancel(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	j = waitDone(t, r, id)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("cancel took %v, want the retry delay cut short", elapsed)
	}
	failing := j.Task("failing")
	if j.Status != pipeline.JobCanceled || failing.Status != pipeline.TaskCanceled || failing.Attempt != 1 || len(failing.Attempts) != 0 {
		t.Errorf("job %s, failing = %+v, want canceled after attempt 1", j.Status, failing)
	}
	if runs, _ := os.ReadFile(filepath.Join(dir, "runs.txt")); string(runs) != "run\n" {
		t.Errorf("runs = %q, want one", runs)
	}
	if _, err := os.Stat(filepath.Join(dir, "on_error.txt")); err == nil {
		t.Error("on_error ran after a cancel request")
	}
}

func TestTimeoutHelpers(t *testing.T) {
	t.Parallel()
	ctx, cancel := withTimeout(context.Background(), "task", time.Millisecond)
	defer cancel()
	<-ctx.Done()
	if te := timedOut(ctx); te == nil || te.Error() != "timeout: task exceeded 1ms" {
		t.Errorf("timedOut = %v, want the task timeout", te)
	}
	child, stop := context.WithCancel(ctx)
	defer stop()
	if te := timedOut(child); te == nil {
		t.Error("timedOut of a child of a timed-out context = nil, want the parent's timeout")
	}
	canceled, cancel2 := withTimeout(context.Background(), "job", time.Hour)
	cancel2()
	if te := timedOut(canceled); te != nil {
		t.Errorf("timedOut of a canceled context = %v, want nil", te)
	}
	unbounded, cancel3 := withTimeout(context.Background(), "job", 0)
	defer cancel3()
	if _, ok := unbounded.Deadline(); ok {
		t.Error("a timeout of 0 set a deadline")
	}

	if !waitRetry(context.Background(), time.Millisecond) {
		t.Error("waitRetry returned false without a cancel")
	}
	start := time.Now()
	if waitRetry(canceled, time.Hour) || time.Since(start) > time.Second {
		t.Error("waitRetry did not return false at once for an ended context")
	}
}
