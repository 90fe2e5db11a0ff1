package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

func testUpdateTask(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1)
	f.admitStarted(d, at(0), "j1")

	build := pipeline.Task{Name: "build", Status: pipeline.TaskDone, Start: ptr(at(1)), End: ptr(at(2))}
	f.updateTask("j1", pipeline.Task{Name: "build", Status: pipeline.TaskRunning, Start: ptr(at(1))})
	f.updateTask("j1", build)
	if j := f.job("j1"); j.Errored {
		t.Errorf("Errored = true after a successful task, want false")
	}

	test := pipeline.Task{Name: "test", DependsOn: []string{"build"}, Status: pipeline.TaskError,
		Start: ptr(at(2)), End: ptr(at(3)), ExitCode: 42, Errored: true, Error: "exit status 42"}
	f.updateTask("j1", test)
	j := f.job("j1")
	if !j.Errored {
		t.Errorf("Errored = false after an errored task, want true")
	}
	want := []pipeline.Task{build, test, {Name: "deploy", DependsOn: []string{"test"}, Status: pipeline.TaskWaiting, Attempt: 1}}
	if len(j.Tasks) != len(want) {
		t.Fatalf("tasks = %+v, want %+v", j.Tasks, want)
	}
	for i := range want {
		checkTask(t, "j1", j.Tasks[i], want[i])
	}

	// Errored stays set: a later task that succeeds does not clear it. The whole record is
	// written, DependsOn included.
	deploy := pipeline.Task{Name: "deploy", DependsOn: []string{"build", "test"}, Status: pipeline.TaskSkipped}
	f.updateTask("j1", deploy)
	j = f.job("j1")
	if !j.Errored || j.Status != pipeline.JobRunning {
		t.Errorf("job Errored %v status %q, want true %q", j.Errored, j.Status, pipeline.JobRunning)
	}
	checkTask(t, "j1", j.Tasks[2], deploy)
}

func testUpdateTaskOnError(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1)
	f.admitStarted(d, at(0), "j1")
	f.updateTask("j1", pipeline.Task{Name: "build", Status: pipeline.TaskError, Errored: true, ExitCode: 1, Error: "exit status 1"})
	onError := pipeline.Task{Name: pipeline.OnErrorTaskName, Status: pipeline.TaskRunning, Start: ptr(at(4))}
	f.updateTask("j1", onError)
	names := func() []string {
		var ns []string
		for _, t := range f.job("j1").Tasks {
			ns = append(ns, t.Name)
		}
		return ns
	}
	wantNames := append(slices.Clone(taskNames), pipeline.OnErrorTaskName)
	if got := names(); !slices.Equal(got, wantNames) {
		t.Fatalf("task names = %v, want %v", got, wantNames)
	}
	// Updating it again keeps its place.
	onError.Status, onError.End = pipeline.TaskDone, ptr(at(5))
	f.updateTask("j1", onError)
	if got := names(); !slices.Equal(got, wantNames) {
		t.Errorf("task names after update = %v, want %v", got, wantNames)
	}
	checkTask(t, "j1", f.job("j1").Tasks[3], onError)
	// The list shows it last too.
	jobs := f.list(store.JobQuery{})
	if len(jobs) != 1 || len(jobs[0].Tasks) != 4 || jobs[0].Tasks[3].Name != pipeline.OnErrorTaskName {
		t.Errorf("Jobs() tasks = %+v, want on_error last", jobs[0].Tasks)
	}
}

func testUpdateTaskUnknownJob(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	for _, errored := range []bool{false, true} {
		err := f.s.UpdateTask(f.ctx, "nope", pipeline.Task{Name: "build", Status: pipeline.TaskDone, Errored: errored})
		if !errors.Is(err, pipeline.ErrJobNotFound) {
			t.Errorf("UpdateTask(nope, errored %v) error = %v, want %v", errored, err, pipeline.ErrJobNotFound)
		}
	}
	f.wantNoJob("nope")
}

// testUpdateTaskAttempts: the attempts of a retried task are part of its record; their times
// come back as the same instants, in UTC.
func testUpdateTaskAttempts(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1)
	f.admitStarted(d, at(0), "j1")
	if got := f.job("j1").Tasks[0].Attempt; got != 1 {
		t.Errorf("new task Attempt = %d, want 1", got)
	}

	zone := time.FixedZone("UTC-3", -3*3600)
	retried := pipeline.Task{
		Name: "build", Status: pipeline.TaskRunning, Start: ptr(at(1)), Attempt: 3,
		Attempts: []pipeline.TaskAttempt{
			{Number: 1, Start: at(1).In(zone), End: at(2).Add(time.Nanosecond), ExitCode: 1, Error: "exit status 1"},
			{Number: 2, Start: at(3), End: at(4), ExitCode: 137, Error: "timeout"},
		},
	}
	f.updateTask("j1", retried)
	checkTask(t, "j1", f.job("j1").Tasks[0], retried)
	checkTask(t, "j1", f.list(store.JobQuery{})[0].Tasks[0], retried)

	// The last attempt ends; the record keeps the earlier ones.
	retried.Status, retried.End = pipeline.TaskDone, ptr(at(6))
	f.updateTask("j1", retried)
	checkTask(t, "j1", f.job("j1").Tasks[0], retried)

	// Tasks that were not retried keep no attempts; an empty list stays empty.
	f.updateTask("j1", pipeline.Task{Name: "test", DependsOn: []string{"build"}, Status: pipeline.TaskRunning, Attempt: 1, Attempts: []pipeline.TaskAttempt{}})
	j := f.job("j1")
	if got := j.Tasks[1].Attempts; got == nil || len(got) != 0 {
		t.Errorf("task test Attempts = %#v, want empty", got)
	}
	if got := j.Tasks[2].Attempts; got != nil {
		t.Errorf("task deploy Attempts = %#v, want nil", got)
	}
}
