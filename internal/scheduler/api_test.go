package scheduler

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

func TestCreateValidatesStoresAndArms(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newBackend(), t0, defs(every("p", "file", "1m"))).start(t)
	spec := every("p", "api", "1m")
	spec.Variables = map[string]any{"x": "1"}
	v, err := h.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if v.Spec.Source != pipeline.SourceAPI || v.Spec.Missed != pipeline.MissedSkip || v.Spec.Overlap != pipeline.OverlapAllow {
		t.Errorf("created %+v; want source api and the defaults filled in", v.Spec)
	}
	if len(v.Next) != 5 || !v.Next[0].Equal(at(1, 0)) || v.Description != "every 1m" {
		t.Errorf("view next %v, description %q", v.Next, v.Description)
	}
	if _, ok := h.b.api["p/api"]; !ok {
		t.Error("the schedule was not stored")
	}
	for _, tc := range []struct {
		name string
		spec pipeline.ScheduleSpec
		want error
	}{
		{"unknown pipeline", every("nope", "x", "1m"), pipeline.ErrUnknownPipeline},
		{"bad expression", pipeline.ScheduleSpec{Pipeline: "p", Name: "bad", Cron: "every day"}, pipeline.ErrInvalidSchedule},
		{"an API schedule's name", every("p", "api", "5m"), pipeline.ErrScheduleExists},
		{"a file schedule's name", every("p", "file", "5m"), pipeline.ErrScheduleExists},
	} {
		if _, err := h.Create(t.Context(), tc.spec); !errors.Is(err, tc.want) {
			t.Errorf("Create with %s: %v, want %v", tc.name, err, tc.want)
		}
	}
	h.advanceTo(t, at(1, 0))
	if got := fireTimes(h.b.fired(), "p/api", pipeline.FiringCron); !slices.Equal(got, []time.Time{at(1, 0)}) {
		t.Errorf("created schedule fired %v, want 10:01", got)
	}
	views, err := h.List(t.Context(), "p")
	if err != nil || len(views) != 2 || views[0].Spec.ID() != "p/api" || views[1].Spec.ID() != "p/file" {
		t.Fatalf("List(p) = %+v, %v; want p/api and p/file in order", views, err)
	}
	if l := views[0].Last; l == nil || !l.FireTime.Equal(at(1, 0)) || l.JobID == "" {
		t.Errorf("last firing %+v, want 10:01 with its job", l)
	}
	if views, _ := h.List(t.Context(), "q"); len(views) != 0 {
		t.Errorf("List(q) = %d schedules, want none", len(views))
	}
}

func TestUpdateChangesAnAPIScheduleOnly(t *testing.T) {
	t.Parallel()
	fileSpec := every("p", "file", "1m")
	fileSpec.SourceFile, fileSpec.SourceLine = "/etc/prunner/pipelines.yml", 12
	h := newHarness(t, newBackend(), t0, defs(fileSpec)).start(t)
	if _, err := h.Create(t.Context(), every("p", "api", "1m")); err != nil {
		t.Fatal(err)
	}
	cron := "@every 10m"
	v, err := h.Update(t.Context(), "p/api", pipeline.SchedulePatch{Cron: &cron, Variables: map[string]any{"y": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Spec.Cron != cron || v.Spec.Variables["y"] != "2" || h.b.api["p/api"].Cron != cron {
		t.Errorf("updated view %+v, stored %+v", v.Spec, h.b.api["p/api"])
	}
	bad := "sometimes"
	if _, err := h.Update(t.Context(), "p/api", pipeline.SchedulePatch{Cron: &bad}); !errors.Is(err, pipeline.ErrInvalidSchedule) {
		t.Errorf("Update with a bad expression: %v, want ErrInvalidSchedule", err)
	}
	_, err = h.Update(t.Context(), "p/file", pipeline.SchedulePatch{Cron: &cron})
	if !errors.Is(err, pipeline.ErrScheduleFromFile) || !strings.Contains(err.Error(), "/etc/prunner/pipelines.yml:12") {
		t.Errorf("Update of a file schedule: %v; want ErrScheduleFromFile naming the file and line", err)
	}
	if _, err := h.Update(t.Context(), "p/none", pipeline.SchedulePatch{Cron: &cron}); !errors.Is(err, pipeline.ErrScheduleNotFound) {
		t.Errorf("Update of an unknown schedule: %v", err)
	}
	h.advanceTo(t, at(10, 0))
	if got := fireTimes(h.b.fired(), "p/api", pipeline.FiringCron); !slices.Equal(got, []time.Time{at(10, 0)}) {
		t.Errorf("after the change fired %v, want 10:10 only", got)
	}
}

func TestDeleteStopsAnAPISchedule(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newBackend(), t0, defs(every("p", "file", "1m"))).start(t)
	if _, err := h.Create(t.Context(), every("q", "api", "1m")); err != nil {
		t.Fatal(err)
	}
	if err := h.Delete(t.Context(), "q/api"); err != nil {
		t.Fatal(err)
	}
	if err := h.Delete(t.Context(), "p/file"); !errors.Is(err, pipeline.ErrScheduleFromFile) {
		t.Errorf("Delete of a file schedule: %v, want ErrScheduleFromFile", err)
	}
	if err := h.Delete(t.Context(), "q/api"); !errors.Is(err, pipeline.ErrScheduleNotFound) {
		t.Errorf("second Delete: %v, want not found", err)
	}
	h.advanceTo(t, at(1, 0))
	if got := fireTimes(h.b.fired(), "q/api", pipeline.FiringCron); len(got) != 0 {
		t.Errorf("a deleted schedule fired at %v", got)
	}
}

func TestTriggerStartsAJobNow(t *testing.T) {
	t.Parallel()
	spec := every("p", "s", "1h")
	spec.Overlap = pipeline.OverlapSkip
	h := newHarness(t, newBackend(), t0, defs(spec)).start(t)
	paused := true
	if _, err := h.Update(t.Context(), "p/s", pipeline.SchedulePatch{Paused: &paused}); err != nil {
		t.Fatal(err)
	}
	id, err := h.Trigger(t.Context(), "p/s", "alice")
	if err != nil || id == "" {
		t.Fatalf("Trigger = %q, %v", id, err)
	}
	c := h.b.fired()[0]
	if c.f.Kind != pipeline.FiringTrigger || !c.f.FireTime.Equal(t0) || c.f.SkipIfActive || c.req.User != "schedule:p/s" {
		t.Errorf("trigger fired %+v with %+v; want kind trigger at now, no overlap skip, user schedule:p/s", c.f, c.req)
	}
	// A second trigger at the same instant (the fixed clock) is a job of its own, a
	// microsecond later.
	again, err := h.Trigger(t.Context(), "p/s", "alice")
	if err != nil || again == "" || again == id {
		t.Fatalf("second Trigger at the same instant = %q, %v; want another job", again, err)
	}
	if all := h.b.fired(); !all[len(all)-1].f.FireTime.Equal(t0.Add(time.Microsecond)) {
		t.Errorf("second trigger stands for %v, want a microsecond after %v", all[len(all)-1].f.FireTime, t0)
	}
	h.b.admitErr = pipeline.ErrQueueFull
	h.clock.advance(time.Second)
	if _, err := h.Trigger(t.Context(), "p/s", "alice"); !errors.Is(err, pipeline.ErrQueueFull) {
		t.Errorf("rejected trigger: %v, want ErrQueueFull", err)
	}
	if _, err := h.Trigger(t.Context(), "p/none", "alice"); !errors.Is(err, pipeline.ErrScheduleNotFound) {
		t.Errorf("Trigger of an unknown schedule: %v", err)
	}
}

func TestBackfillFiresEachTimeInTheRangeOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newBackend(), t0, defs(every("p", "s", "1m"))).start(t)
	h.advanceTo(t, at(5, 30)) // 10:01 … 10:05 fired on their own
	from, to := at(3, 30), at(8, 0)
	h.advanceTo(t, at(8, 0))
	firings, err := h.Backfill(t.Context(), "p/s", at(0, 0).Add(-3*time.Minute), from, "bob")
	if err != nil {
		t.Fatal(err)
	}
	// 09:58, 09:59 and 10:00 had not fired; 10:01 … 10:03 had.
	var times []time.Time
	for _, f := range firings {
		times = append(times, f.FireTime)
		if f.Kind != pipeline.FiringBackfill || f.Outcome != pipeline.FiringStarted || f.JobID == "" {
			t.Errorf("backfill firing %+v", f)
		}
	}
	want := []time.Time{at(0, 0).Add(-2 * time.Minute), at(0, 0).Add(-time.Minute), at(0, 0)}
	if !slices.Equal(times, want) {
		t.Fatalf("backfill recorded %v, want %v", times, want)
	}
	if again, err := h.Backfill(t.Context(), "p/s", at(0, 0).Add(-3*time.Minute), from, "bob"); err != nil || len(again) != 0 {
		t.Errorf("the same backfill again recorded %v, %v; want nothing", again, err)
	}
	h.b.admitErr = pipeline.ErrQueueFull
	rej, err := h.Backfill(t.Context(), "p/s", at(0, 0).Add(-5*time.Minute), at(0, 0).Add(-3*time.Minute), "bob")
	if err != nil || len(rej) != 2 || rej[0].Outcome != pipeline.FiringRejected || rej[0].Detail == "" {
		t.Errorf("rejected backfill = %+v, %v; want two rejected firings with the reason", rej, err)
	}
	for name, r := range map[string][2]time.Time{
		"empty range":         {to, from},
		"range in the future": {from, to.Add(time.Minute)},
		"too many":            {to.Add(-(pipeline.MaxBackfill + 1) * time.Minute), to},
	} {
		if _, err := h.Backfill(t.Context(), "p/s", r[0], r[1], "bob"); !errors.Is(err, pipeline.ErrInvalidSchedule) {
			t.Errorf("backfill of %s: %v, want ErrInvalidSchedule", name, err)
		}
	}
	if _, err := h.Backfill(t.Context(), "p/s", to.Add(-pipeline.MaxBackfill*time.Minute), to, "bob"); err != nil {
		t.Errorf("backfill of exactly %d fire times: %v", pipeline.MaxBackfill, err)
	}
}

func TestFiringsOfASchedule(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newBackend(), t0, defs(every("p", "s", "1m"))).start(t)
	h.advanceTo(t, at(3, 0))
	fs, err := h.Firings(t.Context(), "p/s", 2)
	if err != nil || len(fs) != 2 || !fs[0].FireTime.Equal(at(3, 0)) || !fs[1].FireTime.Equal(at(2, 0)) {
		t.Errorf("Firings = %+v, %v; want 10:03 and 10:02, newest first", fs, err)
	}
	if _, err := h.Firings(t.Context(), "p/none", 2); !errors.Is(err, pipeline.ErrScheduleNotFound) {
		t.Errorf("Firings of an unknown schedule: %v", err)
	}
}
