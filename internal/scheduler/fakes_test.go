package scheduler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// fakeClock is a Clock that moves only when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool          { return true }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) TimerAt(at time.Time) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: at, c: make(chan time.Time, 1)}
	if !at.After(c.now) {
		t.c <- c.now
	} else {
		c.timers = append(c.timers, t)
	}
	return t
}

// advance moves the clock forward by d and fires the timers that are due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			kept = append(kept, t)
			continue
		}
		t.c <- c.now
	}
	c.timers = kept
}

type firingKey struct {
	id string
	at time.Time
}

// backend is an in-memory store of schedules and the runner's Fire on it, with the store's
// guarantees for firings: one per (schedule, fire time), regular ones only after the cursor.
type backend struct {
	store.Store // the rest is not used

	mu      sync.Mutex
	api     map[string]pipeline.ScheduleSpec
	states  map[string]pipeline.ScheduleState
	firings map[firingKey]pipeline.ScheduleFiring
	// fires are the Fire calls in order; active counts Fire calls in flight, most the highest.
	fires        []fireCall
	active, most int
	// admitErr, when set, is returned by admission (and the firing recorded as rejected).
	admitErr error
	// block, when set, holds every Fire until it is closed.
	block chan struct{}
	jobs  int
}

type fireCall struct {
	req pipeline.ScheduleRequest
	f   store.Firing
}

func newBackend() *backend {
	return &backend{
		api:     map[string]pipeline.ScheduleSpec{},
		states:  map[string]pipeline.ScheduleState{},
		firings: map[firingKey]pipeline.ScheduleFiring{},
	}
}

func (b *backend) Fire(ctx context.Context, req pipeline.ScheduleRequest, f store.Firing) (string, store.AdmitResult, error) {
	b.mu.Lock()
	b.active++
	b.most = max(b.most, b.active)
	block := b.block
	b.mu.Unlock()
	if block != nil {
		<-block
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.active--
	b.fires = append(b.fires, fireCall{req, f})
	key := firingKey{f.ScheduleID, f.FireTime.UTC()}
	st := b.states[f.ScheduleID]
	if _, ok := b.firings[key]; ok || f.Kind == pipeline.FiringCron && !f.FireTime.After(st.Cursor) {
		return "", store.AdmitResult{AlreadyFired: true}, nil
	}
	if f.Kind == pipeline.FiringCron {
		st.ID, st.Cursor = f.ScheduleID, f.FireTime
		b.states[f.ScheduleID] = st
	}
	rec := pipeline.ScheduleFiring{ScheduleID: f.ScheduleID, FireTime: f.FireTime, Kind: f.Kind, Outcome: pipeline.FiringStarted}
	if b.admitErr != nil {
		rec.Outcome, rec.Detail = pipeline.FiringRejected, b.admitErr.Error()
		b.firings[key] = rec
		return "", store.AdmitResult{}, b.admitErr
	}
	b.jobs++
	rec.JobID = fmt.Sprintf("job-%d", b.jobs)
	b.firings[key] = rec
	return rec.JobID, store.AdmitResult{Started: true}, nil
}

// fired returns the fire calls so far.
func (b *backend) fired() []fireCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.fires)
}

func (b *backend) CreateSchedule(_ context.Context, spec pipeline.ScheduleSpec, now time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.api[spec.ID()]; ok {
		return pipeline.ErrScheduleExists
	}
	b.api[spec.ID()] = spec
	b.states[spec.ID()] = pipeline.ScheduleState{ID: spec.ID(), Cursor: now}
	return nil
}

func (b *backend) UpdateSchedule(_ context.Context, spec pipeline.ScheduleSpec) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.api[spec.ID()]; !ok {
		return pipeline.ErrScheduleNotFound
	}
	b.api[spec.ID()] = spec
	return nil
}

func (b *backend) DeleteSchedule(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.api[id]; !ok {
		return pipeline.ErrScheduleNotFound
	}
	delete(b.api, id)
	delete(b.states, id)
	return nil
}

func (b *backend) APISchedules(context.Context) ([]pipeline.ScheduleSpec, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var specs []pipeline.ScheduleSpec
	for _, id := range sortedIDs(b.api) {
		specs = append(specs, b.api[id])
	}
	return specs, nil
}

func (b *backend) EnsureScheduleStates(_ context.Context, ids []string, now time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		if _, ok := b.states[id]; !ok {
			b.states[id] = pipeline.ScheduleState{ID: id, Cursor: now}
		}
	}
	return nil
}

func (b *backend) ScheduleStates(context.Context) (map[string]pipeline.ScheduleState, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := make(map[string]pipeline.ScheduleState, len(b.states))
	for id, st := range b.states {
		m[id] = st
	}
	return m, nil
}

func (b *backend) SetSchedulePaused(_ context.Context, id string, paused bool, note string, now time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.states[id]
	if !ok {
		st = pipeline.ScheduleState{ID: id, Cursor: now}
	}
	st.Paused, st.PauseNote = paused, note
	if !paused {
		st.PauseNote = ""
	}
	b.states[id] = st
	return nil
}

func (b *backend) AdvanceScheduleCursor(_ context.Context, id string, t time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.states[id]
	if t.After(st.Cursor) {
		st.ID, st.Cursor = id, t
		b.states[id] = st
	}
	return nil
}

func (b *backend) ScheduleFirings(_ context.Context, id string, limit int) ([]pipeline.ScheduleFiring, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var fs []pipeline.ScheduleFiring
	for k, f := range b.firings {
		if k.id == id {
			fs = append(fs, f)
		}
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].FireTime.After(fs[j].FireTime) })
	if limit > 0 && len(fs) > limit {
		fs = fs[:limit]
	}
	return fs, nil
}

func (b *backend) LastFirings(ctx context.Context) (map[string]pipeline.ScheduleFiring, error) {
	b.mu.Lock()
	ids := map[string]bool{}
	for k := range b.firings {
		ids[k.id] = true
	}
	b.mu.Unlock()
	last := map[string]pipeline.ScheduleFiring{}
	for id := range ids {
		fs, _ := b.ScheduleFirings(ctx, id, 1)
		last[id] = fs[0]
	}
	return last, nil
}

// t0 is the tests' start time: half a minute past 10:00.
var t0 = time.Date(2026, 3, 2, 10, 0, 30, 0, time.UTC)

// harness is a scheduler on a backend and a fake clock.
type harness struct {
	*Scheduler
	b     *backend
	clock *fakeClock
}

// defs is a set of pipelines "p" and "q" with the given file schedules (of either).
func defs(specs ...pipeline.ScheduleSpec) *pipeline.Set {
	set := &pipeline.Set{Pipelines: map[string]*pipeline.Definition{
		"p": {Name: "p", QueueStrategy: pipeline.QueuePartitionedReplace},
		"q": {Name: "q"},
	}}
	for _, spec := range specs {
		spec.Source = pipeline.SourceFile
		if spec.SourceFile == "" {
			spec.SourceFile, spec.SourceLine = "pipelines.yml", 7
		}
		d := set.Pipelines[spec.Pipeline]
		if err := spec.Check(d); err != nil {
			panic(err)
		}
		d.Schedules = append(d.Schedules, spec)
	}
	return set
}

// newHarness returns a scheduler that is not started, at t0, with the definitions of set.
func newHarness(t *testing.T, b *backend, at time.Time, set *pipeline.Set) *harness {
	t.Helper()
	clock := &fakeClock{now: at}
	s := New(Config{Store: b, Firer: b, Clock: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Workers: 8})
	if err := s.SetDefinitions(t.Context(), set); err != nil {
		t.Fatal(err)
	}
	return &harness{Scheduler: s, b: b, clock: clock}
}

// start starts h's scheduler and stops it when the test ends.
func (h *harness) start(t *testing.T) *harness {
	t.Helper()
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	h.settle(t)
	return h
}

// settle waits until nothing is due or being fired: every firing of the time so far is done.
func (h *harness) settle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !h.settled() {
		if time.Now().After(deadline) {
			t.Fatal("the scheduler did not settle in time")
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) settled() bool {
	now := h.clock.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, sc := range h.scheds {
		if sc.firing {
			return false
		}
	}
	return len(h.armed) == 0 || h.armed[0].at.After(now)
}

// advanceTo moves the clock to at and waits for the firings due until then.
func (h *harness) advanceTo(t *testing.T, at time.Time) {
	t.Helper()
	h.clock.advance(at.Sub(h.clock.Now()))
	h.settle(t)
}

// fireTimes returns the fire times of the fire calls of schedule id of kind.
func fireTimes(calls []fireCall, id string, kind pipeline.FiringKind) []time.Time {
	var times []time.Time
	for _, c := range calls {
		if c.f.ScheduleID == id && c.f.Kind == kind {
			times = append(times, c.f.FireTime)
		}
	}
	return times
}

// at returns 10:mm:ss of the tests' day.
func at(mm, ss int) time.Time { return time.Date(2026, 3, 2, 10, mm, ss, 0, time.UTC) }
