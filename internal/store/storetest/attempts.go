package storetest

import (
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

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
