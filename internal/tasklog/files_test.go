package tasklog_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/tasklog"
	"github.com/prunner-dev/prunner/internal/tasklog/tasklogtest"
)

func TestFilesConformance(t *testing.T) {
	t.Parallel()
	tasklogtest.Run(t, func(t *testing.T) tasklog.Store { return tasklog.NewFiles(t.TempDir()) })
}

// TestFilesLayoutIsTheOneOnDisk checks where the output lands: DIR/<job>/<pipeline.LogFileName>,
// the layout that earlier versions wrote and the legacy import links; an attempt without output
// leaves no file.
func TestFilesLayoutIsTheOneOnDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := tasklog.NewFiles(dir)
	job := "0b9f6d1e-1c11-4c1a-9a55-2f1d3f3c8e01"
	for n, out := range map[int]string{1: "first\n", 2: "second\n"} {
		o, e, err := s.Create(t.Context(), tasklog.Attempt{JobID: job, Task: "deploy/prod", Number: n})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.Write([]byte(out)); err != nil {
			t.Fatal(err)
		}
		_ = o.Close()
		_ = e.Close()
	}
	for n, want := range map[int]string{1: "first\n", 2: "second\n"} {
		path := filepath.Join(dir, job, pipeline.LogFileName("deploy/prod", n, pipeline.Stdout))
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", path, got, err, want)
		}
		if _, err := os.Stat(filepath.Join(dir, job, pipeline.LogFileName("deploy/prod", n, pipeline.Stderr))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("attempt %d: a stderr file without output exists (err %v)", n, err)
		}
	}
	// A file written by an earlier server (or the legacy import) reads back.
	legacy := filepath.Join(dir, job, pipeline.LogFileName("old", 0, pipeline.Stderr))
	if err := os.WriteFile(legacy, []byte("from before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(t.Context(), tasklog.Attempt{JobID: job, Task: "old"}, pipeline.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok := r.(*os.File); !ok {
		t.Errorf("Open gave a %T, want the *os.File (the API sends it with sendfile)", r)
	}
}

// TestFilesWriteErrorIsKeptAndReportedByClose makes the job's directory impossible to create:
// the write fails, later writes fail the same way, and Close reports it.
func TestFilesWriteErrorIsKeptAndReportedByClose(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	job := "0b9f6d1e-1c11-4c1a-9a55-2f1d3f3c8e02"
	if err := os.WriteFile(filepath.Join(dir, job), []byte("a file where the directory goes"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := tasklog.NewFiles(dir)
	o, e, err := s.Create(t.Context(), tasklog.Attempt{JobID: job, Task: "t"})
	if err != nil {
		t.Fatal(err)
	}
	_, first := o.Write([]byte("x"))
	if !errors.Is(first, syscall.ENOTDIR) && !errors.Is(first, syscall.EEXIST) {
		t.Fatalf("Write = %v, want the error that the directory could not be created", first)
	}
	if _, err := o.Write([]byte("y")); err == nil || err.Error() != first.Error() {
		t.Errorf("second Write = %v, want the first error again", err)
	}
	if err := o.Close(); err == nil || err.Error() != first.Error() {
		t.Errorf("Close = %v, want the first error", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("Close of the writer without output = %v", err)
	}
}

// TestFilesSharedConformance runs the shared-output suite on two Files of one directory: two
// processes of one data directory, or a server and the one that follows it after a restart.
func TestFilesSharedConformance(t *testing.T) {
	t.Parallel()
	tasklogtest.RunShared(t, func(t *testing.T) (a, b tasklog.Store) {
		dir := t.TempDir()
		return tasklog.NewFiles(dir), tasklog.NewFiles(dir)
	})
}
