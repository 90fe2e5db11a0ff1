package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

func testPipelineStates(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	a := testDefinition("a", 1, startDelay(time.Minute), partitionLimit(5))
	b := testDefinition("b", 2)
	idle := testDefinition("idle", 1)
	ja := newJob(a, "a1", at(0))
	ja.QueuePartition = "x"
	f.admit(a, ja, at(0))
	f.admitQueued(a, at(10), "a2")
	f.admitStarted(b, at(0), "b1", "b2")
	f.admitQueued(b, at(1), "b3")
	f.admitStarted(idle, at(0), "i1")
	f.finish("i1", pipeline.JobSucceeded, at(1))

	states, err := f.s.PipelineStates(f.ctx)
	if err != nil {
		t.Fatalf("PipelineStates() error: %v", err)
	}
	want := map[string]pipeline.AdmissionState{
		"a": {Running: 0, Waiting: []pipeline.WaitingJob{
			{ID: "a1", Partition: "x", StartAfter: at(60)},
			{ID: "a2", StartAfter: at(70)},
		}},
		"b": {Running: 2, Waiting: []pipeline.WaitingJob{{ID: "b3"}}},
	}
	if len(states) != len(want) {
		t.Errorf("PipelineStates() has pipelines %v, want a and b", states)
	}
	for name, w := range want {
		got := states[name]
		if got.Running != w.Running || len(got.Waiting) != len(w.Waiting) {
			t.Errorf("state of %s = %+v, want %+v", name, got, w)
			continue
		}
		for i := range w.Waiting {
			g := got.Waiting[i]
			if g.ID != w.Waiting[i].ID || g.Partition != w.Waiting[i].Partition {
				t.Errorf("state of %s waiting[%d] = %+v, want %+v", name, i, g, w.Waiting[i])
			}
			wantTime(t, name+" waiting "+g.ID+" StartAfter", g.StartAfter, w.Waiting[i].StartAfter)
		}
	}
}

func testQueuedPipelines(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	names, err := f.s.QueuedPipelines(f.ctx)
	if err != nil || len(names) != 0 {
		t.Fatalf("QueuedPipelines() of an empty store = %v, %v; want none", names, err)
	}
	for _, name := range []string{"zeta", "alpha", "mid"} {
		d := testDefinition(name, 1)
		f.admitStarted(d, at(0), name+"-1")
		f.admitQueued(d, at(1), name+"-2")
	}
	runningOnly := testDefinition("running-only", 1)
	f.admitStarted(runningOnly, at(0), "r1")
	canceled := testDefinition("canceled", 1)
	f.admitStarted(canceled, at(0), "c1")
	f.admitQueued(canceled, at(1), "c2")
	if _, err := f.s.CancelQueued(f.ctx, "c2", at(2)); err != nil {
		t.Fatalf("CancelQueued() error: %v", err)
	}

	names, err = f.s.QueuedPipelines(f.ctx)
	if err != nil {
		t.Fatalf("QueuedPipelines() error: %v", err)
	}
	slices.Sort(names)
	if want := []string{"alpha", "mid", "zeta"}; !slices.Equal(names, want) {
		t.Errorf("QueuedPipelines() = %v, want %v", names, want)
	}
}
