package postgres

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
	"github.com/prunner-dev/prunner/internal/tasklog"
)

// TestTaskLogWritesAreFencedByTheLease: a node writes the output of its job while it holds its
// lease; once the node lost it and another node reaped the job, its writes are refused with
// store.ErrLeaseLost (with and without notifications) and the stored output stays as it was.
func TestTaskLogWritesAreFencedByTheLease(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	nodes := openNodes(t, 2)
	a, b := nodes[0], nodes[1]
	for i, s := range nodes {
		if _, err := s.RegisterNode(t.Context(), store.NodeInfo{ID: []string{"a", "b"}[i]}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	d := clusterDefinition("p", 5, nil)
	for _, id := range []string{"quiet", "notifying"} {
		if res, err := a.Admit(t.Context(), store.AdmitParams{Job: clusterJob(d, id), Definition: d, Now: clusterBase}); err != nil || !res.Started {
			t.Fatalf("Admit(%s) = %+v, %v; want started", id, res, err)
		}
	}
	// One writer per job, kept open across the reaping, so that the late output comes after
	// the stored one (at offset 7), where nothing else would keep it out.
	opts := map[string]TaskLogOptions{
		"quiet":     {FlushInterval: 5 * time.Millisecond},
		"notifying": {FlushInterval: 5 * time.Millisecond, Notify: true},
	}
	writers := map[string]tasklog.Appender{}
	for job, o := range opts {
		w, err := a.TaskLogs(o).Append(t.Context(), tasklog.Attempt{JobID: job, Task: "only", Number: 1}, pipeline.Stdout)
		if err != nil {
			t.Fatal(err)
		}
		writers[job] = w
	}
	read := func(job string) string {
		t.Helper()
		r, err := b.TaskLogs(TaskLogOptions{}).Open(t.Context(), tasklog.Attempt{JobID: job, Task: "only", Number: 1}, pipeline.Stdout)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	for job, w := range writers {
		if _, err := io.WriteString(w, "before\n"); err != nil {
			t.Fatalf("%s: output of a job the node holds: %v", job, err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for read(job) != "before\n" {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the output was not stored within the flush interval", job)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// a loses its lease, and b ends its jobs.
	if _, err := a.RenewLease(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if reaped, err := b.ReapLostNodes(t.Context(), clusterBase.Add(time.Minute)); err != nil || len(reaped) != 1 {
		t.Fatalf("ReapLostNodes() = %v, %v; want node a's jobs", reaped, err)
	}
	for job, w := range writers {
		if _, err := io.WriteString(w, "late\n"); err != nil {
			t.Errorf("%s: Write = %v; want nil (the batch is committed later)", job, err)
		}
		if err := w.Close(); !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("%s: Close after the node was reaped = %v, want store.ErrLeaseLost", job, err)
		}
		if _, err := io.WriteString(w, "more\n"); err == nil {
			t.Errorf("%s: Write after the refusal succeeded", job)
		}
		if got := read(job); got != "before\n" {
			t.Errorf("%s: stored output %q, want %q (the late write refused)", job, got, "before\n")
		}
	}
}
