package dashboard

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// fakeSchedules is an in-memory Schedules for the dashboard tests: views by ID, the refusals
// of the real scheduler that the tests need, and a record of the calls. err, when set, is
// returned by Create, Update and Trigger (the actions); listErr by List.
type fakeSchedules struct {
	mu      sync.Mutex
	views   map[string]pipeline.ScheduleView
	firings map[string][]pipeline.ScheduleFiring
	err     error
	listErr error
	jobID   string

	created  []pipeline.ScheduleSpec
	patches  []pipeline.SchedulePatch
	deleted  []string
	triggers []string // "id user"
}

func newFakeSchedules() *fakeSchedules {
	return &fakeSchedules{views: map[string]pipeline.ScheduleView{}, firings: map[string][]pipeline.ScheduleFiring{}, jobID: "job-triggered"}
}

// newScheduleHarness is a harness whose dashboard has a scheduler.
func newScheduleHarness(t *testing.T) (*harness, *fakeSchedules) {
	fs := newFakeSchedules()
	return newHarness(t, func(c *Config) { c.Schedules = fs }), fs
}

func (f *fakeSchedules) add(v pipeline.ScheduleView, firings ...pipeline.ScheduleFiring) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.views[v.Spec.ID()] = v
	f.firings[v.Spec.ID()] = firings
}

func (f *fakeSchedules) List(_ context.Context, pipelineName string) ([]pipeline.ScheduleView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []pipeline.ScheduleView
	for _, v := range f.views {
		if pipelineName == "" || v.Spec.Pipeline == pipelineName {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec.ID() < out[j].Spec.ID() })
	return out, nil
}

func (f *fakeSchedules) Get(_ context.Context, id string) (pipeline.ScheduleView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.get(id)
}

func (f *fakeSchedules) get(id string) (pipeline.ScheduleView, error) {
	v, ok := f.views[id]
	if !ok {
		return v, fmt.Errorf("schedule %q: %w", id, pipeline.ErrScheduleNotFound)
	}
	return v, nil
}

func (f *fakeSchedules) Create(_ context.Context, spec pipeline.ScheduleSpec) (pipeline.ScheduleView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, spec)
	if f.err != nil {
		return pipeline.ScheduleView{}, f.err
	}
	if _, ok := f.views[spec.ID()]; ok {
		return pipeline.ScheduleView{}, fmt.Errorf("schedule %q: %w", spec.ID(), pipeline.ErrScheduleExists)
	}
	v := pipeline.ScheduleView{Spec: spec}
	f.views[spec.ID()] = v
	return v, nil
}

func (f *fakeSchedules) Update(_ context.Context, id string, patch pipeline.SchedulePatch) (pipeline.ScheduleView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.patches = append(f.patches, patch)
	v, err := f.get(id)
	if err != nil {
		return v, err
	}
	if f.err != nil {
		return v, f.err
	}
	if v.Spec.Source == pipeline.SourceFile && patch.Cron != nil {
		return v, fmt.Errorf("schedule %q is declared in %s:%d: %w", id, v.Spec.SourceFile, v.Spec.SourceLine, pipeline.ErrScheduleFromFile)
	}
	if patch.Cron != nil {
		v.Spec.Cron = *patch.Cron
	}
	if patch.Paused != nil {
		v.Paused, v.PauseNote = *patch.Paused, ""
		if v.Paused && patch.Note != nil {
			v.PauseNote = *patch.Note
		}
	}
	f.views[id] = v
	return v, nil
}

func (f *fakeSchedules) Delete(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, id)
	v, err := f.get(id)
	if err != nil {
		return err
	}
	if v.Spec.Source == pipeline.SourceFile {
		return fmt.Errorf("schedule %q is declared in %s:%d: %w", id, v.Spec.SourceFile, v.Spec.SourceLine, pipeline.ErrScheduleFromFile)
	}
	delete(f.views, id)
	return nil
}

func (f *fakeSchedules) Trigger(_ context.Context, id, user string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.triggers = append(f.triggers, id+" "+user)
	if _, err := f.get(id); err != nil {
		return "", err
	}
	if f.err != nil {
		return "", f.err
	}
	return f.jobID, nil
}

func (f *fakeSchedules) Firings(_ context.Context, id string, limit int) ([]pipeline.ScheduleFiring, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(id); err != nil {
		return nil, err
	}
	all := f.firings[id]
	return all[:min(limit, len(all))], nil
}

var _ Schedules = (*fakeSchedules)(nil)
