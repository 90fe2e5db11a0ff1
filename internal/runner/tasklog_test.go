package runner

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store/sqlite"
	"github.com/prunner-dev/prunner/internal/tasklog"
)

// recordingLogs is a tasklog.Store that records which jobs' output was created and deleted.
type recordingLogs struct {
	tasklog.Store
	mu      sync.Mutex
	created []tasklog.Attempt
	deleted []string
}

func (l *recordingLogs) Create(ctx context.Context, a tasklog.Attempt) (io.WriteCloser, io.WriteCloser, error) {
	l.mu.Lock()
	l.created = append(l.created, a)
	l.mu.Unlock()
	return l.Store.Create(ctx, a)
}

func (l *recordingLogs) DeleteJob(ctx context.Context, jobID string) error {
	l.mu.Lock()
	l.deleted = append(l.deleted, jobID)
	l.mu.Unlock()
	return l.Store.DeleteJob(ctx, jobID)
}

func (l *recordingLogs) wasDeleted(jobID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.deleted, jobID)
}

// TestRunnerKeepsTaskOutputOnlyInItsTaskLogStore runs jobs with a task log store of its own:
// output is written, read, followed, handed to on_error and deleted by retention through it,
// and nothing lands in the data directory's logs.
func TestRunnerKeepsTaskOutputOnlyInItsTaskLogStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	defs, _, errs := pipeline.Parse("pipelines.yml", []byte(`
pipelines:
  p:
    retention_count: 1
    tasks:
      bad: {script: ["echo some-output", "echo some-error >&2", "exit 3"]}
    on_error:
      script: ["echo 'on_error got {{ .failedTaskStdout }}'"]
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "prunner.db"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &recordingLogs{Store: tasklog.NewFiles(t.TempDir())}
	r := New(Config{
		Store:    st,
		DataDir:  dir,
		WorkDir:  dir,
		Env:      []string{"PATH=" + os.Getenv("PATH")},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		TaskLogs: logs,
	})
	r.SetDefinitions(&pipeline.Set{Pipelines: defs})
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Stop(ctx)
		_ = st.Close()
	})

	first := waitDone(t, r, schedule(t, r, "p"))
	if got := readLog(t, func() (io.ReadCloser, error) { return r.OpenLog(t.Context(), first.ID, "bad", pipeline.Stderr) }); got != "some-error\n" {
		t.Errorf("OpenLog(bad, stderr) = %q, want %q", got, "some-error\n")
	}
	if got := readLog(t, func() (io.ReadCloser, error) {
		return r.OpenLog(t.Context(), first.ID, pipeline.OnErrorTaskName, pipeline.Stdout)
	}); got != "on_error got some-output\n\n" {
		t.Errorf("on_error's stdout = %q, want the failed task's output in it", got)
	}
	ch, err := r.FollowLog(t.Context(), first.ID, "bad", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(t, ch, nil, 10*time.Second); got[pipeline.Stdout] != "some-output\n" {
		t.Errorf("FollowLog = %q, want %q", got[pipeline.Stdout], "some-output\n")
	}
	logs.mu.Lock()
	created := slices.Clone(logs.created)
	logs.mu.Unlock()
	if len(created) != 2 || created[0].Task != "bad" || created[1].Task != pipeline.OnErrorTaskName {
		t.Errorf("attempts created = %v, want bad and on_error", created)
	}

	// retention_count: 1 deletes the first job, and its output, when the second ends.
	waitDone(t, r, schedule(t, r, "p"))
	deadline := time.Now().Add(10 * time.Second)
	for !logs.wasDeleted(first.ID) {
		if time.Now().After(deadline) {
			t.Fatal("retention did not delete the first job's output through the task log store")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "logs")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data directory has logs (%v): output went around the task log store", err)
	}
	if out := readLog(t, func() (io.ReadCloser, error) {
		return logs.Open(t.Context(), tasklog.Attempt{JobID: first.ID, Task: "bad"}, pipeline.Stdout)
	}); out != "" {
		t.Errorf("the deleted job's output is still there: %q", out)
	}
}
