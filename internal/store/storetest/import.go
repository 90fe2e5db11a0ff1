package storetest

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// importedJobs returns finished jobs as an import of another installation's history brings
// them: every final status, every kind of task record, variables with big numbers, jobs with
// and without a definition snapshot. They are sorted by creation.
func importedJobs() []*pipeline.Job {
	d := testDefinition("legacy", 1)
	return []*pipeline.Job{
		{
			ID: "imp-ok", Pipeline: "legacy", Status: pipeline.JobSucceeded,
			Variables: map[string]any{"big": json.Number("12345678901234567890"), "name": "x"},
			User:      "alice", Created: at(-500), Start: ptr(at(-499)), End: ptr(at(-490)),
			Tasks: []pipeline.Task{
				{Name: "build", Attempt: 1, Status: pipeline.TaskDone, Start: ptr(at(-499)), End: ptr(at(-495))},
				{Name: "test", Attempt: 1, DependsOn: []string{"build"}, Status: pipeline.TaskDone, Start: ptr(at(-495)), End: ptr(at(-490))},
			},
		},
		{
			ID: "imp-failed", Pipeline: "legacy", Status: pipeline.JobFailed, Errored: true,
			LastError: "exit status 42", Created: at(-400), Start: ptr(at(-399)), End: ptr(at(-398)),
			Definition: d,
			Tasks: []pipeline.Task{
				{Name: "build", Attempt: 1, Status: pipeline.TaskError, Start: ptr(at(-399)), End: ptr(at(-398)),
					ExitCode: 42, Errored: true, Error: "exit status 42"},
				{Name: "test", Attempt: 1, DependsOn: []string{"build"}, Status: pipeline.TaskSkipped},
			},
		},
		{
			// Started by a schedule (an export of a store that has schedules).
			ID: "imp-canceled", Pipeline: "other", Status: pipeline.JobCanceled,
			Created: at(-300), Start: ptr(at(-299)), End: ptr(at(-298)),
			Schedule: "other/hourly", ScheduledFor: ptr(at(-300)),
			Tasks: []pipeline.Task{
				{Name: "sleep", Attempt: 1, Status: pipeline.TaskCanceled, Start: ptr(at(-299)), End: ptr(at(-298)), ExitCode: -1},
			},
		},
		{
			// Canceled on the wait list: never started, no end, no tasks.
			ID: "imp-never-ran", Pipeline: "legacy", Status: pipeline.JobCanceled, Created: at(-200),
		},
	}
}

// testImportJobs imports finished jobs next to jobs the store already has: every field comes
// back as given, the imported jobs list as older than the existing ones in the given order, an
// import is one transaction that skips known IDs, and admission does not count imported jobs.
func testImportJobs(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("legacy", 1)
	f.admitStarted(d, at(0), "live")

	want := importedJobs()
	n, err := f.s.ImportJobs(f.ctx, want)
	if err != nil || n != len(want) {
		t.Fatalf("ImportJobs() = %d, %v; want %d, nil", n, err, len(want))
	}
	for _, w := range want {
		checkJob(t, f.job(w.ID), w)
	}
	listed := f.list(store.JobQuery{})
	if got, wantIDs := jobIDs(listed), []string{"live", "imp-never-ran", "imp-canceled", "imp-failed", "imp-ok"}; !slices.Equal(got, wantIDs) {
		t.Errorf("Jobs() = %v, want %v", got, wantIDs)
	}
	for _, j := range listed[1:] {
		for _, w := range want {
			if w.ID == j.ID {
				checkJob(t, j, withoutDefinition(w))
			}
		}
	}
	// Paging runs through imported jobs like through any other.
	if got := jobIDs(f.list(store.JobQuery{Before: "imp-canceled", Limit: 1})); !slices.Equal(got, []string{"imp-failed"}) {
		t.Errorf("Jobs(Before imp-canceled, Limit 1) = %v, want [imp-failed]", got)
	}
	// The running job keeps its place; the imported ones do not take any.
	f.wantState("legacy", 1)

	// Again, with one new job: only that one is stored, still older than "live" but newer
	// than the first import.
	again := append(importedJobs(), &pipeline.Job{
		ID: "imp-late", Pipeline: "legacy", Status: pipeline.JobSucceeded, Created: at(-600),
		Start: ptr(at(-600)), End: ptr(at(-600)),
	})
	again[0].User = "mallory" // a known ID is skipped, not overwritten
	if n, err := f.s.ImportJobs(f.ctx, again); err != nil || n != 1 {
		t.Fatalf("second ImportJobs() = %d, %v; want 1, nil", n, err)
	}
	if got := f.job("imp-ok").User; got != "alice" {
		t.Errorf("job imp-ok User = %q after a repeated import, want %q", got, "alice")
	}
	if got, wantIDs := jobIDs(f.list(store.JobQuery{})), []string{"live", "imp-never-ran", "imp-canceled", "imp-failed", "imp-ok", "imp-late"}; !slices.Equal(got, wantIDs) {
		t.Errorf("Jobs() after second import = %v, want %v", got, wantIDs)
	}

	// A job admitted later is the newest.
	f.finish("live", pipeline.JobSucceeded, at(1))
	f.admitStarted(d, at(2), "after")
	if got := jobIDs(f.list(store.JobQuery{Limit: 2})); !slices.Equal(got, []string{"after", "live"}) {
		t.Errorf("Jobs(Limit 2) = %v, want [after live]", got)
	}

	// Retention treats imported jobs like any finished job.
	deleted, err := f.s.DeleteFinished(f.ctx, store.RetentionParams{Pipeline: "legacy", EndedBefore: at(-450)})
	if err != nil {
		t.Fatalf("DeleteFinished() error: %v", err)
	}
	if !slices.Equal(deleted, []string{"imp-late", "imp-ok"}) {
		t.Errorf("DeleteFinished(ended before -450s) = %v, want [imp-late imp-ok]", deleted)
	}
}

// testImportJobsInvalid: a job without a final status or without an ID fails the whole import.
func testImportJobsInvalid(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		bad  *pipeline.Job
	}{
		{"running", &pipeline.Job{ID: "bad", Pipeline: "p", Status: pipeline.JobRunning, Created: at(0), Start: ptr(at(0))}},
		{"queued", &pipeline.Job{ID: "bad", Pipeline: "p", Status: pipeline.JobQueued, Created: at(0)}},
		{"no status", &pipeline.Job{ID: "bad", Pipeline: "p", Created: at(0)}},
		{"no ID", &pipeline.Job{Pipeline: "p", Status: pipeline.JobSucceeded, Created: at(0)}},
		{"nil", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, open)
			jobs := append(importedJobs(), tt.bad)
			if n, err := f.s.ImportJobs(f.ctx, jobs); err == nil || n != 0 {
				t.Fatalf("ImportJobs() = %d, %v; want 0 and an error", n, err)
			}
			if got := f.list(store.JobQuery{}); len(got) != 0 {
				t.Errorf("Jobs() after a failed import = %v, want none", jobIDs(got))
			}
			if n, err := f.s.ImportJobs(f.ctx, nil); err != nil || n != 0 {
				t.Errorf("ImportJobs(nil) = %d, %v; want 0, nil", n, err)
			}
		})
	}
}
