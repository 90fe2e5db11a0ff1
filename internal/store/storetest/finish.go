package storetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

func testFinishJob(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name      string
		params    store.FinishParams
		wantTasks []pipeline.TaskStatus
	}{
		{
			name: "canceled: pending skipped, running canceled",
			params: store.FinishParams{Status: pipeline.JobCanceled, LastError: "canceled by request",
				PendingTasks: pipeline.TaskSkipped, RunningTasks: pipeline.TaskCanceled},
			wantTasks: []pipeline.TaskStatus{pipeline.TaskDone, pipeline.TaskCanceled, pipeline.TaskSkipped},
		},
		{
			name: "failed with other task statuses",
			params: store.FinishParams{Status: pipeline.JobFailed, LastError: "exit status 1",
				PendingTasks: pipeline.TaskCanceled, RunningTasks: pipeline.TaskError},
			wantTasks: []pipeline.TaskStatus{pipeline.TaskDone, pipeline.TaskError, pipeline.TaskCanceled},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, open)
			d := testDefinition("p", 1)
			f.admitStarted(d, at(0), "j1")
			f.updateTask("j1", pipeline.Task{Name: "build", Status: pipeline.TaskDone, Start: ptr(at(1)), End: ptr(at(2))})
			f.updateTask("j1", pipeline.Task{Name: "test", DependsOn: []string{"build"}, Status: pipeline.TaskRunning, Start: ptr(at(2))})
			p := tt.params
			p.JobID, p.End = "j1", at(5)
			if err := f.s.FinishJob(f.ctx, p); err != nil {
				t.Fatalf("FinishJob() error: %v", err)
			}
			j := f.job("j1")
			if j.Status != p.Status || j.LastError != p.LastError {
				t.Errorf("job status %q LastError %q, want %q %q", j.Status, j.LastError, p.Status, p.LastError)
			}
			wantTimePtr(t, "End", j.End, ptr(at(5)))
			wantTimePtr(t, "Start", j.Start, ptr(at(0)))
			if !j.Completed() {
				t.Errorf("Completed() = false, want true")
			}
			f.wantTaskStatuses("j1", tt.wantTasks...)
			// A task that had ended keeps its record.
			wantTimePtr(t, "build End", j.Tasks[0].End, ptr(at(2)))
			f.wantState("p", 0)
		})
	}
}

func testFinishJobErrors(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1, strategy(pipeline.QueueReplace), queueLimit(1))
	f.admitStarted(d, at(0), "done")
	f.finish("done", pipeline.JobSucceeded, at(1))
	f.admitStarted(d, at(2), "running")
	f.admitQueued(d, at(3), "replaced")
	f.admitQueued(d, at(4), "waiting")
	if _, err := f.s.CancelQueued(f.ctx, "waiting", at(5)); err != nil {
		t.Fatalf("CancelQueued() error: %v", err)
	}

	tests := []struct {
		id      string
		wantErr error
	}{
		{"done", pipeline.ErrJobFinished},
		{"replaced", pipeline.ErrJobFinished},
		{"waiting", pipeline.ErrJobFinished}, // canceled while queued
		{"nope", pipeline.ErrJobNotFound},
	}
	for _, tt := range tests {
		var before *pipeline.Job
		if tt.wantErr != pipeline.ErrJobNotFound {
			before = f.job(tt.id)
		}
		err := f.s.FinishJob(f.ctx, store.FinishParams{JobID: tt.id, Status: pipeline.JobFailed, End: at(9),
			LastError: "late", PendingTasks: pipeline.TaskSkipped, RunningTasks: pipeline.TaskCanceled})
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("FinishJob(%s) error = %v, want %v", tt.id, err, tt.wantErr)
		}
		if before != nil {
			checkJob(t, f.job(tt.id), before)
		}
	}
	f.wantStatus("running", pipeline.JobRunning)
}

// testFinishAndClaim: a job's end and the claim of the slot it frees happen together; a finish
// that fails claims nothing.
func testFinishAndClaim(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1)
	f.admitStarted(d, at(0), "a")
	f.admitQueued(d, at(1), "b", "c")
	claim := store.ClaimParams{Pipeline: "p", Concurrency: 1, Now: at(5)}
	res, err := f.s.FinishAndClaim(f.ctx, store.FinishParams{JobID: "a", Status: pipeline.JobSucceeded, End: at(4)}, claim)
	if err != nil {
		t.Fatalf("FinishAndClaim(a) error: %v", err)
	}
	if len(res.Started) != 1 || res.Started[0].ID != "b" || res.Started[0].Status != pipeline.JobRunning ||
		res.Started[0].Definition == nil || len(res.Started[0].Tasks) != len(taskNames) {
		t.Fatalf("FinishAndClaim(a) started %+v, want job b running with its definition and tasks", res.Started)
	}
	f.wantStatus("a", pipeline.JobSucceeded)
	f.wantState("p", 1, "c")
	if jobs := f.list(store.JobQuery{Statuses: []pipeline.JobStatus{pipeline.JobSucceeded}}); len(jobs) != 1 {
		t.Errorf("succeeded jobs = %v, want [a]", jobIDs(jobs))
	} else {
		checkJob(t, jobs[0], withoutDefinition(f.job("a")))
	}
	_, err = f.s.FinishAndClaim(f.ctx, store.FinishParams{JobID: "a", Status: pipeline.JobFailed, End: at(6)}, claim)
	if !errors.Is(err, pipeline.ErrJobFinished) {
		t.Errorf("FinishAndClaim(a again) error = %v, want ErrJobFinished", err)
	}
	_, err = f.s.FinishAndClaim(f.ctx, store.FinishParams{JobID: "nope", Status: pipeline.JobFailed, End: at(6)},
		store.ClaimParams{Pipeline: "p", Concurrency: 5, Now: at(6)})
	if !errors.Is(err, pipeline.ErrJobNotFound) {
		t.Errorf("FinishAndClaim(unknown) error = %v, want ErrJobNotFound", err)
	}
	f.wantState("p", 1, "c") // nothing claimed by the failed calls
}

func testCancelQueuedFreesSlot(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1, queueLimit(1))
	f.admitStarted(d, at(0), "j1")
	f.admitQueued(d, at(1), "j2")
	if _, err := f.tryAdmit(d, newJob(d, "j3", at(2)), at(2)); !errors.Is(err, pipeline.ErrQueueFull) {
		t.Fatalf("Admit(j3) error = %v, want %v", err, pipeline.ErrQueueFull)
	}

	before, err := f.s.CancelQueued(f.ctx, "j2", at(3))
	if err != nil || before != pipeline.JobQueued {
		t.Fatalf("CancelQueued(j2) = %q, %v; want %q, nil", before, err, pipeline.JobQueued)
	}
	j2 := f.job("j2")
	if j2.Status != pipeline.JobCanceled {
		t.Errorf("j2 status = %q, want %q", j2.Status, pipeline.JobCanceled)
	}
	wantTimePtr(t, "j2 End", j2.End, ptr(at(3)))
	wantTimePtr(t, "j2 Start", j2.Start, nil)
	f.wantTaskStatuses("j2", pipeline.TaskSkipped, pipeline.TaskSkipped, pipeline.TaskSkipped)
	f.wantState("p", 1)

	// The wait-list place is free again, and the canceled job never starts.
	f.admitQueued(d, at(4), "j3")
	f.finish("j1", pipeline.JobSucceeded, at(5))
	if got := jobIDs(f.claim(d, at(6)).Started); !slices.Equal(got, []string{"j3"}) {
		t.Errorf("Claim() started %v, want [j3]", got)
	}
	f.wantStatus("j2", pipeline.JobCanceled)
}

func testCancelQueuedNotQueued(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1)
	f.admitStarted(d, at(0), "done")
	f.finish("done", pipeline.JobSucceeded, at(1))
	f.admitStarted(d, at(2), "running")
	f.admitQueued(d, at(2), "queued")
	if _, err := f.s.CancelQueued(f.ctx, "queued", at(3)); err != nil {
		t.Fatalf("CancelQueued(queued) error: %v", err)
	}

	tests := []struct {
		id   string
		want pipeline.JobStatus
	}{
		{"running", pipeline.JobRunning},
		{"done", pipeline.JobSucceeded},
		{"queued", pipeline.JobCanceled}, // a second cancel
	}
	for _, tt := range tests {
		before := f.job(tt.id)
		got, err := f.s.CancelQueued(f.ctx, tt.id, at(10))
		if err != nil || got != tt.want {
			t.Errorf("CancelQueued(%s) = %q, %v; want %q, nil", tt.id, got, err, tt.want)
		}
		checkJob(t, f.job(tt.id), before)
	}
	if _, err := f.s.CancelQueued(f.ctx, "nope", at(10)); !errors.Is(err, pipeline.ErrJobNotFound) {
		t.Errorf("CancelQueued(nope) error = %v, want %v", err, pipeline.ErrJobNotFound)
	}
}

func testRecoverRunning(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 2)
	other := testDefinition("other", 1)
	f.admitStarted(d, at(0), "r1", "done")
	f.finish("done", pipeline.JobSucceeded, at(1))
	f.admitStarted(d, at(2), "r2")
	f.admitQueued(d, at(3), "queued")
	f.admitStarted(other, at(4), "r3")
	f.updateTask("r1", pipeline.Task{Name: "build", Status: pipeline.TaskDone, Start: ptr(at(1)), End: ptr(at(2))})
	f.updateTask("r1", pipeline.Task{Name: "test", DependsOn: []string{"build"}, Status: pipeline.TaskRunning, Start: ptr(at(2))})
	doneBefore, queuedBefore := f.job("done"), f.job("queued")

	const reason = "the server stopped while the job was running"
	ids, err := f.s.RecoverRunning(f.ctx, reason, at(10))
	if err != nil {
		t.Fatalf("RecoverRunning() error: %v", err)
	}
	slices.Sort(ids)
	if want := []string{"r1", "r2", "r3"}; !slices.Equal(ids, want) {
		t.Errorf("RecoverRunning() = %v, want %v", ids, want)
	}
	for _, id := range []string{"r1", "r2", "r3"} {
		j := f.job(id)
		if j.Status != pipeline.JobFailed || j.LastError != reason || !j.Errored {
			t.Errorf("job %s status %q LastError %q Errored %v; want %q %q true", id, j.Status, j.LastError, j.Errored, pipeline.JobFailed, reason)
		}
		wantTimePtr(t, "job "+id+" End", j.End, ptr(at(10)))
		if !j.Completed() {
			t.Errorf("job %s Completed() = false, want true", id)
		}
	}
	f.wantTaskStatuses("r1", pipeline.TaskDone, pipeline.TaskError, pipeline.TaskSkipped)
	if tk := f.job("r1").Tasks[1]; tk.Error != reason || !tk.Errored {
		t.Errorf("running task after recovery: Error %q Errored %v, want %q true", tk.Error, tk.Errored, reason)
	}
	f.wantTaskStatuses("r2", pipeline.TaskSkipped, pipeline.TaskSkipped, pipeline.TaskSkipped)
	checkJob(t, f.job("done"), doneBefore)
	checkJob(t, f.job("queued"), queuedBefore)
	f.wantState("p", 0, "queued")

	if ids, err := f.s.RecoverRunning(f.ctx, reason, at(11)); err != nil || len(ids) != 0 {
		t.Errorf("second RecoverRunning() = %v, %v; want nothing", ids, err)
	}
}
