package scheduler

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

func every(pipe, name, d string) pipeline.ScheduleSpec {
	return pipeline.ScheduleSpec{Pipeline: pipe, Name: name, Cron: "@every " + d}
}

func TestFiresEachFireTimeOnceWithTheSchedulesJob(t *testing.T) {
	t.Parallel()
	spec := every("p", "nightly", "1m")
	spec.Variables = map[string]any{"mode": "full"}
	spec.QueuePartition = "eu"
	h := newHarness(t, newBackend(), t0, defs(spec)).start(t)
	if n := len(h.b.fired()); n != 0 {
		t.Fatalf("%d firings before the first fire time", n)
	}
	h.advanceTo(t, at(0, 59))
	if n := len(h.b.fired()); n != 0 {
		t.Fatalf("%d firings a second before the fire time", n)
	}
	h.advanceTo(t, at(1, 0))
	h.advanceTo(t, at(2, 30))
	calls := h.b.fired()
	if got, want := fireTimes(calls, "p/nightly", pipeline.FiringCron), []time.Time{at(1, 0), at(2, 0)}; !slices.Equal(got, want) {
		t.Fatalf("fire times %v, want %v", got, want)
	}
	c := calls[0]
	if c.req.Pipeline != "p" || c.req.User != "schedule:p/nightly" || c.req.Variables["mode"] != "full" || c.req.QueuePartition != "eu" {
		t.Errorf("request %+v; want pipeline p, user schedule:p/nightly, the variables and partition", c.req)
	}
	if c.f.SkipIfActive {
		t.Error("overlap: allow asked to skip while active")
	}
}

func TestOverlapSkipAsksTheStoreToSkipWhileActive(t *testing.T) {
	t.Parallel()
	spec := every("p", "s", "1m")
	spec.Overlap = pipeline.OverlapSkip
	h := newHarness(t, newBackend(), t0, defs(spec)).start(t)
	h.advanceTo(t, at(1, 0))
	if calls := h.b.fired(); len(calls) != 1 || !calls[0].f.SkipIfActive {
		t.Fatalf("calls %+v; want one firing with SkipIfActive", calls)
	}
}

func TestJitterDelaysTheFiringNotItsFireTime(t *testing.T) {
	t.Parallel()
	spec := every("p", "s", "1m")
	spec.Jitter = 30 * time.Second
	h := newHarness(t, newBackend(), t0, defs(spec))
	h.cfg.Rand = rand.New(maxSource{}) // the longest delay there is
	h.start(t)
	h.advanceTo(t, at(1, 29))
	if n := len(h.b.fired()); n != 0 {
		t.Fatalf("%d firings before the jitter elapsed", n)
	}
	h.advanceTo(t, at(1, 30))
	if got := fireTimes(h.b.fired(), "p/s", pipeline.FiringCron); !slices.Equal(got, []time.Time{at(1, 0)}) {
		t.Fatalf("fire times %v, want the unjittered 10:01:00", got)
	}
}

// maxSource is a random source that always draws its largest number.
type maxSource struct{}

func (maxSource) Uint64() uint64 { return math.MaxUint64 }

func TestJitterStaysWithinItsBound(t *testing.T) {
	t.Parallel()
	s := New(Config{Rand: rand.New(rand.NewPCG(1, 2))})
	const bound = 3 * time.Second
	var lo, hi time.Duration = bound, 0
	for range 10000 {
		d := s.jitterLocked(bound)
		if d < 0 || d >= bound {
			t.Fatalf("jitter %v outside [0, %v)", d, bound)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo > bound/10 || hi < bound*9/10 {
		t.Errorf("jitters span [%v, %v]; want nearly all of [0, %v)", lo, hi, bound)
	}
	if d := s.jitterLocked(0); d != 0 {
		t.Errorf("no jitter gave %v", d)
	}
}

func TestMissedPolicyAtStart(t *testing.T) {
	t.Parallel()
	// Down from 09:00:30 (the last fire time handled is 09:00) until 10:00:30; fire times every
	// 10 minutes.
	cursor := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tenMin := func(hh, mm int) time.Time { return time.Date(2026, 3, 2, hh, mm, 0, 0, time.UTC) }
	for _, tc := range []struct {
		missed pipeline.MissedPolicy
		window time.Duration
		want   []time.Time
	}{
		{pipeline.MissedSkip, 0, nil},
		{pipeline.MissedOnce, 0, []time.Time{tenMin(10, 0)}},
		{pipeline.MissedAll, 0, []time.Time{tenMin(9, 10), tenMin(9, 20), tenMin(9, 30), tenMin(9, 40), tenMin(9, 50), tenMin(10, 0)}},
		{pipeline.MissedAll, 25 * time.Minute, []time.Time{tenMin(9, 40), tenMin(9, 50), tenMin(10, 0)}},
		{pipeline.MissedOnce, 5 * time.Minute, []time.Time{tenMin(10, 0)}},
	} {
		t.Run(string(tc.missed)+"/"+tc.window.String(), func(t *testing.T) {
			t.Parallel()
			spec := every("p", "s", "10m")
			spec.Missed, spec.CatchupWindow = tc.missed, tc.window
			b := newBackend()
			b.states["p/s"] = pipeline.ScheduleState{ID: "p/s", Cursor: cursor}
			h := newHarness(t, b, t0, defs(spec)).start(t)
			if got := fireTimes(b.fired(), "p/s", pipeline.FiringCron); !slices.Equal(got, tc.want) {
				t.Fatalf("missed times fired %v, want %v", got, tc.want)
			}
			if st := b.states["p/s"]; !st.Cursor.Equal(t0) {
				t.Errorf("cursor %v after the catch-up, want now (%v)", st.Cursor, t0)
			}
			h.advanceTo(t, tenMin(10, 10))
			if got := fireTimes(b.fired(), "p/s", pipeline.FiringCron); len(got) != len(tc.want)+1 || !got[len(got)-1].Equal(tenMin(10, 10)) {
				t.Errorf("after the catch-up fired %v; want the next regular time 10:10 once more", got)
			}
		})
	}
}

func TestNoMissedRunsForANewSchedule(t *testing.T) {
	t.Parallel()
	spec := every("p", "s", "1m")
	spec.Missed = pipeline.MissedAll
	b := newBackend()
	newHarness(t, b, t0, defs(spec)).start(t)
	if n := len(b.fired()); n != 0 {
		t.Fatalf("a schedule seen for the first time fired %d missed times", n)
	}
	if st := b.states["p/s"]; !st.Cursor.Equal(t0) {
		t.Errorf("its state's cursor is %v, want the first load (%v)", st.Cursor, t0)
	}
}

func TestPausedScheduleDoesNotFireAndResumeDoesNotCatchUp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newBackend(), t0, defs(every("p", "s", "1m"))).start(t)
	paused, note := true, "maintenance until noon"
	v, err := h.Update(t.Context(), "p/s", pipeline.SchedulePatch{Paused: &paused, Note: &note})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Paused || v.PauseNote != note {
		t.Errorf("view after pause: paused %v note %q", v.Paused, v.PauseNote)
	}
	if st := h.b.states["p/s"]; !st.Paused || st.PauseNote != note {
		t.Errorf("stored state %+v, want paused with the note", st)
	}
	h.advanceTo(t, at(5, 30))
	if n := len(h.b.fired()); n != 0 {
		t.Fatalf("a paused schedule fired %d times", n)
	}
	resume := false
	v, err = h.Update(t.Context(), "p/s", pipeline.SchedulePatch{Paused: &resume})
	if err != nil {
		t.Fatal(err)
	}
	if v.Paused || v.PauseNote != "" {
		t.Errorf("view after resume: paused %v note %q", v.Paused, v.PauseNote)
	}
	h.settle(t)
	if n := len(h.b.fired()); n != 0 {
		t.Fatalf("resume caught up %d paused fire times", n)
	}
	h.advanceTo(t, at(6, 0))
	if got := fireTimes(h.b.fired(), "p/s", pipeline.FiringCron); !slices.Equal(got, []time.Time{at(6, 0)}) {
		t.Errorf("after resume fired %v, want 10:06 only", got)
	}
}

func TestPausedStaysPausedAcrossRestart(t *testing.T) {
	t.Parallel()
	b := newBackend()
	b.states["p/s"] = pipeline.ScheduleState{ID: "p/s", Paused: true, PauseNote: "n", Cursor: at(0, 0).Add(-time.Hour)}
	spec := every("p", "s", "1m")
	spec.Missed = pipeline.MissedAll
	h := newHarness(t, b, t0, defs(spec)).start(t)
	h.advanceTo(t, at(3, 0))
	if n := len(b.fired()); n != 0 {
		t.Fatalf("a schedule paused before the restart fired %d times", n)
	}
	v, err := h.Get(t.Context(), "p/s")
	if err != nil || !v.Paused || v.PauseNote != "n" {
		t.Errorf("Get = %+v, %v; want paused with its note", v, err)
	}
}

func TestReloadChangesFileSchedulesWithoutDoubleFiring(t *testing.T) {
	t.Parallel()
	a, gone := every("p", "a", "1m"), every("q", "gone", "1m")
	h := newHarness(t, newBackend(), t0, defs(a, gone)).start(t)
	h.advanceTo(t, at(1, 0))

	// The same expression with other variables, the other schedule removed, a new one added.
	a2 := a
	a2.Variables = map[string]any{"v": "2"}
	added := every("q", "added", "1m")
	if err := h.SetDefinitions(t.Context(), defs(a2, added)); err != nil {
		t.Fatal(err)
	}
	if err := h.SetDefinitions(t.Context(), defs(a2, added)); err != nil {
		t.Fatal(err)
	}
	h.advanceTo(t, at(1, 30))
	h.advanceTo(t, at(2, 0))
	calls := h.b.fired()
	if got := fireTimes(calls, "p/a", pipeline.FiringCron); !slices.Equal(got, []time.Time{at(1, 0), at(2, 0)}) {
		t.Errorf("p/a fired %v, want 10:01 and 10:02 once each", got)
	}
	if last := calls[len(calls)-1]; last.f.ScheduleID == "p/a" && last.req.Variables["v"] != "2" {
		t.Errorf("the firing after the reload has variables %v, want the new ones", last.req.Variables)
	}
	if got := fireTimes(calls, "q/gone", pipeline.FiringCron); !slices.Equal(got, []time.Time{at(1, 0)}) {
		t.Errorf("removed schedule fired %v, want only 10:01 (before the reload)", got)
	}
	if got := fireTimes(calls, "q/added", pipeline.FiringCron); !slices.Equal(got, []time.Time{at(2, 0)}) {
		t.Errorf("added schedule fired %v, want 10:02", got)
	}
	if _, err := h.Get(t.Context(), "q/gone"); !errors.Is(err, pipeline.ErrScheduleNotFound) {
		t.Errorf("Get of a removed schedule: %v, want not found", err)
	}

	// A changed expression: the next fire time after the latest handled one and now.
	a3 := a2
	a3.Cron = "@every 5m"
	if err := h.SetDefinitions(t.Context(), defs(a3, added)); err != nil {
		t.Fatal(err)
	}
	h.advanceTo(t, at(5, 0))
	if got := fireTimes(h.b.fired(), "p/a", pipeline.FiringCron); !slices.Equal(got, []time.Time{at(1, 0), at(2, 0), at(5, 0)}) {
		t.Errorf("after the change p/a fired %v, want 10:05 next", got)
	}
}

func TestReloadKeepsThePauseOfAFileSchedule(t *testing.T) {
	t.Parallel()
	spec := every("p", "s", "1m")
	h := newHarness(t, newBackend(), t0, defs(spec)).start(t)
	paused := true
	if _, err := h.Update(t.Context(), "p/s", pipeline.SchedulePatch{Paused: &paused}); err != nil {
		t.Fatal(err)
	}
	changed := spec
	changed.Cron = "@every 2m"
	if err := h.SetDefinitions(t.Context(), defs(changed)); err != nil {
		t.Fatal(err)
	}
	// Removed and declared again: its stored state (the pause) comes back with it.
	if err := h.SetDefinitions(t.Context(), defs()); err != nil {
		t.Fatal(err)
	}
	if err := h.SetDefinitions(t.Context(), defs(changed)); err != nil {
		t.Fatal(err)
	}
	h.advanceTo(t, at(4, 0))
	if n := len(h.b.fired()); n != 0 {
		t.Fatalf("a paused file schedule fired %d times across reloads", n)
	}
	if v, err := h.Get(t.Context(), "p/s"); err != nil || !v.Paused {
		t.Errorf("Get = %+v, %v; want paused", v, err)
	}
}

func TestAPISchedulesFireOnlyWhileTheirPipelineIsLoaded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newBackend(), t0, defs()).start(t)
	if _, err := h.Create(t.Context(), every("q", "api", "1m")); err != nil {
		t.Fatal(err)
	}
	onlyP := &pipeline.Set{Pipelines: map[string]*pipeline.Definition{"p": {Name: "p"}}}
	if err := h.SetDefinitions(t.Context(), onlyP); err != nil {
		t.Fatal(err)
	}
	h.advanceTo(t, at(2, 30))
	if n := len(h.b.fired()); n != 0 {
		t.Fatalf("a schedule of a removed pipeline fired %d times", n)
	}
	if err := h.SetDefinitions(t.Context(), defs()); err != nil {
		t.Fatal(err)
	}
	h.advanceTo(t, at(3, 0))
	if got := fireTimes(h.b.fired(), "q/api", pipeline.FiringCron); !slices.Equal(got, []time.Time{at(3, 0)}) {
		t.Errorf("after its pipeline came back fired %v, want 10:03 (no catch-up)", got)
	}
}

func TestManySchedulesFireTheSameMinuteThroughBoundedWorkers(t *testing.T) {
	t.Parallel()
	const n = 10000
	b := newBackend()
	for i := range n {
		spec := every("p", fmt.Sprintf("s%05d", i), "1m")
		if err := spec.Check(&pipeline.Definition{Name: "p"}); err != nil {
			t.Fatal(err)
		}
		spec.Source = pipeline.SourceAPI
		b.api[spec.ID()] = spec
		b.states[spec.ID()] = pipeline.ScheduleState{ID: spec.ID(), Cursor: t0}
	}
	h := newHarness(t, b, t0, defs()).start(t)
	h.advanceTo(t, at(1, 0))
	calls := b.fired()
	if len(calls) != n {
		t.Fatalf("%d firings, want %d", len(calls), n)
	}
	seen := map[string]bool{}
	for _, c := range calls {
		if seen[c.f.ScheduleID] || !c.f.FireTime.Equal(at(1, 0)) {
			t.Fatalf("firing %+v twice or at the wrong time", c.f)
		}
		seen[c.f.ScheduleID] = true
	}
	if b.most > h.cfg.Workers {
		t.Errorf("%d firings ran at once, more than the %d workers", b.most, h.cfg.Workers)
	}
	h.mu.Lock()
	armed := len(h.armed)
	h.mu.Unlock()
	if armed != n {
		t.Errorf("%d schedules armed for the next minute, want %d", armed, n)
	}
}

func TestStopWaitsForFiringsInFlight(t *testing.T) {
	t.Parallel()
	b := newBackend()
	b.block = make(chan struct{})
	h := newHarness(t, b, t0, defs(every("p", "s", "1m"))).start(t)
	h.clock.advance(30 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		active := b.active
		b.mu.Unlock()
		if active == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the firing did not begin")
		}
		time.Sleep(time.Millisecond)
	}
	stopped := make(chan struct{})
	go func() { h.Stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a firing was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(b.block)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return after the firing ended")
	}
}

func TestMissedAllFiresEveryMissedTimeInBatches(t *testing.T) {
	t.Parallel()
	const missed = 2500 // more than one batch of schedule.MaxMissed
	spec := every("p", "s", "1s")
	spec.Missed = pipeline.MissedAll
	b := newBackend()
	b.states["p/s"] = pipeline.ScheduleState{ID: "p/s", Cursor: t0.Add(-missed * time.Second)}
	newHarness(t, b, t0, defs(spec)).start(t)
	got := fireTimes(b.fired(), "p/s", pipeline.FiringCron)
	if len(got) != missed {
		t.Fatalf("fired %d missed times, want %d", len(got), missed)
	}
	for i, at := range got {
		if want := t0.Add(time.Duration(i-missed+1) * time.Second); !at.Equal(want) {
			t.Fatalf("missed time %d fired as %v, want %v (each once, in order)", i, at, want)
		}
	}
}
