package api

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// fakeSchedules is an in-memory Schedules for the API tests. It keeps views by ID, refuses
// what the real scheduler refuses in the cases the tests need (unknown IDs, existing IDs,
// changing a file schedule), and records the calls it got. err, when set, is returned by every
// method instead.
type fakeSchedules struct {
	mu    sync.Mutex
	views map[string]pipeline.ScheduleView
	// firings are returned by Backfill and Firings.
	firings []pipeline.ScheduleFiring
	err     error

	created  []pipeline.ScheduleSpec
	patches  map[string]pipeline.SchedulePatch
	deleted  []string
	triggers []string // "id user"
	backfill []string // "id from to user"
	lists    []string
}

func newFakeSchedules() *fakeSchedules {
	return &fakeSchedules{views: map[string]pipeline.ScheduleView{}, patches: map[string]pipeline.SchedulePatch{}}
}

func (f *fakeSchedules) add(v pipeline.ScheduleView) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.views[v.Spec.ID()] = v
}

func (f *fakeSchedules) List(_ context.Context, pipelineName string) ([]pipeline.ScheduleView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists = append(f.lists, pipelineName)
	if f.err != nil {
		return nil, f.err
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
	if f.err != nil {
		return pipeline.ScheduleView{}, f.err
	}
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
	v := pipeline.ScheduleView{Spec: spec, Description: "described " + spec.Cron}
	f.views[spec.ID()] = v
	return v, nil
}

func (f *fakeSchedules) Update(_ context.Context, id string, patch pipeline.SchedulePatch) (pipeline.ScheduleView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.patches[id] = patch
	v, err := f.get(id)
	if err != nil {
		return v, err
	}
	if v.Spec.Source == pipeline.SourceFile && patch.Cron != nil {
		return v, fmt.Errorf("schedule %q (%s:%d): %w", id, v.Spec.SourceFile, v.Spec.SourceLine, pipeline.ErrScheduleFromFile)
	}
	if patch.Cron != nil {
		v.Spec.Cron = *patch.Cron
	}
	if patch.Paused != nil {
		v.Paused = *patch.Paused
		v.PauseNote = ""
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
		return fmt.Errorf("schedule %q (%s:%d): %w", id, v.Spec.SourceFile, v.Spec.SourceLine, pipeline.ErrScheduleFromFile)
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
	return "0d9a3c1e-8a4e-4a52-9f5e-2b7f1f0e6a11", nil
}

func (f *fakeSchedules) Backfill(_ context.Context, id string, from, to time.Time, user string) ([]pipeline.ScheduleFiring, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.backfill = append(f.backfill, fmt.Sprintf("%s %s %s %s", id, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), user))
	if _, err := f.get(id); err != nil {
		return nil, err
	}
	return f.firings, nil
}

func (f *fakeSchedules) Firings(_ context.Context, id string, limit int) ([]pipeline.ScheduleFiring, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(id); err != nil {
		return nil, err
	}
	return f.firings[:min(limit, len(f.firings))], nil
}
