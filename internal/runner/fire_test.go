package runner

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// firingSpy records the AdmitParams of every Admit; when answer is set, it answers Admit with it
// instead of the store (a firing the store has recorded before, or one overlap: skip skipped).
type firingSpy struct {
	store.Store
	mu     sync.Mutex
	params []store.AdmitParams
	answer *store.AdmitResult
}

func (s *firingSpy) Admit(ctx context.Context, p store.AdmitParams) (store.AdmitResult, error) {
	s.mu.Lock()
	s.params = append(s.params, p)
	answer := s.answer
	s.mu.Unlock()
	if answer != nil {
		return *answer, nil
	}
	return s.Store.Admit(ctx, p)
}

func (s *firingSpy) last(t *testing.T) store.AdmitParams {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.params) == 0 {
		t.Fatal("Admit was not called")
	}
	return s.params[len(s.params)-1]
}

const firePipelines = `
pipelines:
  p:
    tasks:
      t: {script: ["true"]}
`

func TestFireAdmitsTheJobOfAFiring(t *testing.T) {
	t.Parallel()
	spy := &firingSpy{}
	r, _ := startRunnerOn(t, firePipelines, func(st store.Store) store.Store { spy.Store = st; return spy })
	at := time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)
	f := store.Firing{ScheduleID: "p/nightly", FireTime: at, Kind: pipeline.FiringCron, SkipIfActive: true}
	id, res, err := r.Fire(t.Context(), pipeline.ScheduleRequest{Pipeline: "p", User: "schedule:p/nightly", Variables: map[string]any{"mode": "full"}}, f)
	if err != nil {
		t.Fatal(err)
	}
	if id == "" || !res.Started {
		t.Fatalf("Fire = %q, %+v; want a started job", id, res)
	}
	p := spy.last(t)
	if p.Firing == nil || *p.Firing != f {
		t.Errorf("AdmitParams.Firing = %+v, want %+v", p.Firing, f)
	}
	if p.Job.Schedule != "p/nightly" || p.Job.ScheduledFor == nil || !p.Job.ScheduledFor.Equal(at) {
		t.Errorf("job schedule = %q, scheduledFor %v; want p/nightly at %v", p.Job.Schedule, p.Job.ScheduledFor, at)
	}
	if p.Job.User != "schedule:p/nightly" || p.Job.Variables["mode"] != "full" {
		t.Errorf("job user %q, variables %v", p.Job.User, p.Job.Variables)
	}
	if j := waitDone(t, r, id); j.Status != pipeline.JobSucceeded {
		t.Errorf("fired job ended %s, want succeeded", j.Status)
	}
}

func TestFireThatStoredNoJobStartsNothing(t *testing.T) {
	t.Parallel()
	for name, answer := range map[string]store.AdmitResult{
		"already fired": {AlreadyFired: true},
		"skipped":       {Skipped: "job j1 of the schedule is running"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			spy := &firingSpy{answer: &answer}
			r, _ := startRunnerOn(t, firePipelines, func(st store.Store) store.Store { spy.Store = st; return spy })
			f := store.Firing{ScheduleID: "p/s", FireTime: time.Now().UTC(), Kind: pipeline.FiringCron}
			id, res, err := r.Fire(t.Context(), pipeline.ScheduleRequest{Pipeline: "p"}, f)
			if err != nil || id != "" || res.AlreadyFired != answer.AlreadyFired || res.Skipped != answer.Skipped {
				t.Fatalf("Fire = %q, %+v, %v; want no job and the store's answer %+v", id, res, err, answer)
			}
			if n := r.Running(); n != 0 {
				t.Errorf("%d jobs running, want none", n)
			}
		})
	}
}

func TestScheduleIsNoFiring(t *testing.T) {
	t.Parallel()
	spy := &firingSpy{}
	r, _ := startRunnerOn(t, firePipelines, func(st store.Store) store.Store { spy.Store = st; return spy })
	id := schedule(t, r, "p")
	p := spy.last(t)
	if p.Firing != nil || p.Job.Schedule != "" || p.Job.ScheduledFor != nil {
		t.Errorf("Schedule passed firing %+v, job schedule %q/%v; want none", p.Firing, p.Job.Schedule, p.Job.ScheduledFor)
	}
	waitDone(t, r, id)
}

func TestFireOfUnknownPipelineOrWhileStopping(t *testing.T) {
	t.Parallel()
	r, _ := startRunner(t, firePipelines)
	f := store.Firing{ScheduleID: "gone/s", FireTime: time.Now().UTC(), Kind: pipeline.FiringCron}
	if _, _, err := r.Fire(t.Context(), pipeline.ScheduleRequest{Pipeline: "gone"}, f); !errors.Is(err, pipeline.ErrUnknownPipeline) {
		t.Errorf("Fire of an unknown pipeline: %v, want ErrUnknownPipeline", err)
	}
	if err := r.Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.ScheduleID = "p/s"
	if _, _, err := r.Fire(t.Context(), pipeline.ScheduleRequest{Pipeline: "p"}, f); !errors.Is(err, pipeline.ErrShuttingDown) {
		t.Errorf("Fire while draining: %v, want ErrShuttingDown", err)
	}
}

func TestFireTwiceOfOneFireTimeStartsOneJob(t *testing.T) {
	t.Parallel()
	r, _ := startRunner(t, firePipelines)
	at := time.Now().UTC().Truncate(time.Second)
	f := store.Firing{ScheduleID: "p/s", FireTime: at, Kind: pipeline.FiringCron}
	req := pipeline.ScheduleRequest{Pipeline: "p", User: "schedule:p/s"}
	id, _, err := r.Fire(t.Context(), req, f)
	if err != nil || id == "" {
		t.Fatalf("first Fire = %q, %v", id, err)
	}
	again, res, err := r.Fire(t.Context(), req, f)
	if err != nil || again != "" || !res.AlreadyFired {
		t.Fatalf("second Fire of the fire time = %q, %+v, %v; want AlreadyFired and no job", again, res, err)
	}
	j := waitDone(t, r, id)
	if j.Schedule != "p/s" || j.ScheduledFor == nil || !j.ScheduledFor.Equal(at) || j.User != "schedule:p/s" {
		t.Errorf("stored job: schedule %q, scheduledFor %v, user %q", j.Schedule, j.ScheduledFor, j.User)
	}
	jobs, err := r.Jobs(t.Context(), store.JobQuery{Pipeline: "p"})
	if err != nil || len(jobs) != 1 {
		t.Errorf("%d jobs stored (%v), want one", len(jobs), err)
	}
}
