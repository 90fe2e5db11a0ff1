package scheduler

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/schedule"
	"github.com/prunner-dev/prunner/internal/store"
)

// The API's Schedules are implemented by *Scheduler (see internal/api/deps.go).

// upcoming is how many next fire times a view shows.
const upcoming = 5

// ready waits until Start has read the schedules.
func (s *Scheduler) ready(ctx context.Context) error {
	select {
	case <-s.loaded:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadErr
}

// List returns every schedule (of one pipeline when pipelineName is not ""), sorted by ID.
func (s *Scheduler) List(ctx context.Context, pipelineName string) ([]pipeline.ScheduleView, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	last, err := s.st.LastFirings(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	views := make([]pipeline.ScheduleView, 0, len(s.scheds))
	for _, id := range sortedIDs(s.scheds) {
		sc := s.scheds[id]
		if pipelineName != "" && sc.spec.Pipeline != pipelineName {
			continue
		}
		var l *pipeline.ScheduleFiring
		if f, ok := last[id]; ok {
			l = &f
		}
		views = append(views, viewLocked(sc, l, now))
	}
	return views, nil
}

// Get returns one schedule.
func (s *Scheduler) Get(ctx context.Context, id string) (pipeline.ScheduleView, error) {
	if _, err := s.lookup(ctx, id); err != nil {
		return pipeline.ScheduleView{}, err
	}
	return s.view(ctx, id)
}

// view returns the view of schedule id with its latest firing.
func (s *Scheduler) view(ctx context.Context, id string) (pipeline.ScheduleView, error) {
	firings, err := s.st.ScheduleFirings(ctx, id, 1)
	if err != nil {
		return pipeline.ScheduleView{}, err
	}
	var last *pipeline.ScheduleFiring
	if len(firings) > 0 {
		last = &firings[0]
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.scheds[id]
	if sc == nil {
		return pipeline.ScheduleView{}, notFound(id)
	}
	return viewLocked(sc, last, now), nil
}

// viewLocked is the view of sc: its next fire times after now (also while paused: when it would
// fire) and the latest firing.
func viewLocked(sc *sched, last *pipeline.ScheduleFiring, now time.Time) pipeline.ScheduleView {
	return pipeline.ScheduleView{
		Spec:        sc.spec,
		Paused:      sc.paused,
		PauseNote:   sc.pauseNote,
		Description: sc.tt.Describe(),
		Next:        sc.tt.Upcoming(later(now, sc.cursor), upcoming),
		Last:        last,
	}
}

// lookup returns the spec of schedule id once the schedules are read.
func (s *Scheduler) lookup(ctx context.Context, id string) (pipeline.ScheduleSpec, error) {
	if err := s.ready(ctx); err != nil {
		return pipeline.ScheduleSpec{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.scheds[id]
	if sc == nil {
		return pipeline.ScheduleSpec{}, notFound(id)
	}
	return sc.spec, nil
}

func notFound(id string) error { return fmt.Errorf("%w: %q", pipeline.ErrScheduleNotFound, id) }

// fromFile is the error of a change of file schedule spec through the API.
func fromFile(spec pipeline.ScheduleSpec) error {
	return fmt.Errorf("%w: schedule %q is declared in %s:%d; change or remove it there (through the API it can only be paused and resumed)",
		pipeline.ErrScheduleFromFile, spec.ID(), spec.SourceFile, spec.SourceLine)
}

// validate checks spec against its loaded pipeline (filling in the defaults) and parses it.
func (s *Scheduler) validate(spec *pipeline.ScheduleSpec) (*schedule.Timetable, error) {
	s.mu.Lock()
	def := s.defs.Get(spec.Pipeline)
	s.mu.Unlock()
	if def == nil {
		return nil, fmt.Errorf("%w: pipeline %q is not defined", pipeline.ErrUnknownPipeline, spec.Pipeline)
	}
	if err := spec.Check(def); err != nil {
		return nil, err
	}
	tt, err := schedule.Parse(spec.Cron, spec.Timezone)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", pipeline.ErrInvalidSchedule, err)
	}
	return tt, nil
}

// Create validates and stores an API schedule and arms it: its first fire time is the next one
// after now.
func (s *Scheduler) Create(ctx context.Context, spec pipeline.ScheduleSpec) (pipeline.ScheduleView, error) {
	if err := s.ready(ctx); err != nil {
		return pipeline.ScheduleView{}, err
	}
	spec.Source, spec.SourceFile, spec.SourceLine = pipeline.SourceAPI, "", 0
	tt, err := s.validate(&spec)
	if err != nil {
		return pipeline.ScheduleView{}, err
	}
	id := spec.ID()
	s.mu.Lock()
	existing := s.scheds[id]
	s.mu.Unlock()
	if existing != nil {
		return pipeline.ScheduleView{}, fmt.Errorf("%w: %q (from %s)", pipeline.ErrScheduleExists, id, existing.spec.Source)
	}
	now := s.now()
	if err := s.st.CreateSchedule(ctx, spec, now); err != nil {
		return pipeline.ScheduleView{}, err
	}
	s.mu.Lock()
	sc := &sched{spec: spec, tt: tt, cursor: now, index: -1}
	s.scheds[id] = sc
	s.armLocked(sc, now)
	v := viewLocked(sc, nil, now)
	s.mu.Unlock()
	s.poke()
	s.log.Info("schedule created", "schedule", id, "cron", spec.Cron, "timezone", spec.Timezone)
	return v, nil
}

// changesSpec tells whether patch changes more than the pause.
func changesSpec(p pipeline.SchedulePatch) bool {
	return p.Cron != nil || p.Timezone != nil || p.Variables != nil || p.QueuePartition != nil ||
		p.Jitter != nil || p.Missed != nil || p.CatchupWindow != nil || p.Overlap != nil
}

// patched returns spec with the fields of p applied.
func patched(spec pipeline.ScheduleSpec, p pipeline.SchedulePatch) pipeline.ScheduleSpec {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&spec.Cron, p.Cron)
	set(&spec.Timezone, p.Timezone)
	set(&spec.QueuePartition, p.QueuePartition)
	if p.Variables != nil {
		spec.Variables = maps.Clone(p.Variables)
	}
	if p.Jitter != nil {
		spec.Jitter = *p.Jitter
	}
	if p.Missed != nil {
		spec.Missed = *p.Missed
	}
	if p.CatchupWindow != nil {
		spec.CatchupWindow = *p.CatchupWindow
	}
	if p.Overlap != nil {
		spec.Overlap = *p.Overlap
	}
	return spec
}

// Update changes an API schedule's fields, and pauses (with a note) or resumes any schedule. A
// changed expression arms the next fire time after now (and after the latest one handled); a
// resume moves the cursor to now first, so the fire times passed while paused do not fire.
func (s *Scheduler) Update(ctx context.Context, id string, patch pipeline.SchedulePatch) (pipeline.ScheduleView, error) {
	spec, err := s.lookup(ctx, id)
	if err != nil {
		return pipeline.ScheduleView{}, err
	}
	if changesSpec(patch) {
		if spec.Source == pipeline.SourceFile {
			return pipeline.ScheduleView{}, fromFile(spec)
		}
		if err := s.updateSpec(ctx, patched(spec, patch)); err != nil {
			return pipeline.ScheduleView{}, err
		}
	}
	if patch.Paused != nil || patch.Note != nil {
		if err := s.setPaused(ctx, id, patch.Paused, patch.Note); err != nil {
			return pipeline.ScheduleView{}, err
		}
	}
	return s.view(ctx, id)
}

// updateSpec validates, stores and applies the changed spec of an API schedule.
func (s *Scheduler) updateSpec(ctx context.Context, spec pipeline.ScheduleSpec) error {
	tt, err := s.validate(&spec)
	if err != nil {
		return err
	}
	if err := s.st.UpdateSchedule(ctx, spec); err != nil {
		return err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.scheds[spec.ID()]
	if sc == nil {
		return notFound(spec.ID())
	}
	sameTimes := sc.spec.Cron == spec.Cron && sc.spec.Timezone == spec.Timezone
	sc.spec = spec
	if !sameTimes {
		sc.tt = tt
		s.armLocked(sc, later(sc.cursor, now))
		s.poke()
	}
	s.log.Info("schedule changed", "schedule", spec.ID(), "cron", spec.Cron, "timezone", spec.Timezone)
	return nil
}

// setPaused pauses or resumes schedule id; a nil paused keeps the pause and changes its note.
func (s *Scheduler) setPaused(ctx context.Context, id string, paused *bool, note *string) error {
	s.mu.Lock()
	sc := s.scheds[id]
	if sc == nil {
		s.mu.Unlock()
		return notFound(id)
	}
	wasPaused, newNote := sc.paused, sc.pauseNote
	s.mu.Unlock()
	pause := wasPaused
	if paused != nil {
		pause = *paused
	}
	if note != nil {
		newNote = *note
	}
	if !pause {
		newNote = ""
	}
	now := s.now()
	if wasPaused && !pause {
		// First the cursor, then the resume: a crash in between leaves it paused, never
		// resumed with the paused fire times still to catch up.
		if err := s.st.AdvanceScheduleCursor(ctx, id, now); err != nil {
			return err
		}
	}
	if err := s.st.SetSchedulePaused(ctx, id, pause, newNote, now); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sc.paused, sc.pauseNote = pause, newNote
	if wasPaused && !pause {
		sc.cursor = later(sc.cursor, now)
	}
	if wasPaused != pause {
		s.armLocked(sc, later(sc.cursor, now))
		s.poke()
		s.log.Info("schedule paused or resumed", "schedule", id, "paused", pause, "note", newNote)
	}
	return nil
}

// Delete deletes an API schedule with its state and firing records (the jobs it started stay).
func (s *Scheduler) Delete(ctx context.Context, id string) error {
	spec, err := s.lookup(ctx, id)
	if err != nil {
		return err
	}
	if spec.Source == pipeline.SourceFile {
		return fromFile(spec)
	}
	if err := s.st.DeleteSchedule(ctx, id); err != nil {
		return err
	}
	s.mu.Lock()
	if sc := s.scheds[id]; sc != nil {
		s.removeLocked(sc)
	}
	s.mu.Unlock()
	s.poke()
	s.log.Info("schedule deleted", "schedule", id)
	return nil
}

// Trigger starts a job of the schedule now ("run now"), with its variables, through normal
// admission (also while paused; overlap: skip does not apply to it).
func (s *Scheduler) Trigger(ctx context.Context, id, user string) (string, error) {
	spec, err := s.lookup(ctx, id)
	if err != nil {
		return "", err
	}
	// A trigger stands for the instant it was asked for. Two triggers of one instant (a fixed
	// clock, or a clock that went back) would share the firing's key: the later one takes the
	// next microsecond instead.
	f := store.Firing{ScheduleID: id, FireTime: s.now(), Kind: pipeline.FiringTrigger}
	var jobID string
	for range 3 {
		var res store.AdmitResult
		jobID, res, err = s.cfg.Firer.Fire(ctx, request(spec), f)
		if err != nil {
			return "", err
		}
		if !res.AlreadyFired {
			break
		}
		f.FireTime = f.FireTime.Add(time.Microsecond)
	}
	if jobID == "" {
		return "", fmt.Errorf("%w: schedule %q was triggered at %s already; try again", pipeline.ErrScheduleExists, id, f.FireTime.Format(time.RFC3339Nano))
	}
	s.log.Info("schedule triggered", "schedule", id, "job_id", jobID, "by", user)
	return jobID, nil
}

// Backfill starts one job per fire time of the schedule in (from, to], in order, at most
// pipeline.MaxBackfill; to may not be in the future. Fire times that fired before are left out;
// a firing that admission rejects is recorded as rejected and the backfill goes on. It returns
// the firings it recorded.
func (s *Scheduler) Backfill(ctx context.Context, id string, from, to time.Time, user string) ([]pipeline.ScheduleFiring, error) {
	spec, err := s.lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	times, err := s.backfillTimes(id, from, to)
	if err != nil {
		return nil, err
	}
	firings := []pipeline.ScheduleFiring{}
	for _, t := range times {
		f, ok, err := s.fireBackfill(ctx, spec, t)
		if err != nil {
			return firings, err
		}
		if ok {
			firings = append(firings, f)
		}
	}
	s.log.Info("schedule backfilled", "schedule", id, "from", from, "to", to, "fire_times", len(times), "recorded", len(firings), "by", user)
	return firings, nil
}

// backfillTimes returns the fire times of schedule id in (from, to], or ErrInvalidSchedule for a
// range that is empty, reaches into the future or holds more than pipeline.MaxBackfill.
func (s *Scheduler) backfillTimes(id string, from, to time.Time) ([]time.Time, error) {
	if !from.Before(to) {
		return nil, fmt.Errorf("%w: backfill: from (%s) must be before to (%s)", pipeline.ErrInvalidSchedule, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if now := s.now(); to.After(now) {
		return nil, fmt.Errorf("%w: backfill: to (%s) is in the future; fire times to come fire on their own", pipeline.ErrInvalidSchedule, to.Format(time.RFC3339))
	}
	s.mu.Lock()
	sc := s.scheds[id]
	s.mu.Unlock()
	if sc == nil {
		return nil, notFound(id)
	}
	times, more := sc.tt.Between(from, to, pipeline.MaxBackfill)
	if more {
		return nil, fmt.Errorf("%w: backfill: the range holds more than %d fire times (the most one backfill starts); split it", pipeline.ErrInvalidSchedule, pipeline.MaxBackfill)
	}
	return times, nil
}

// fireBackfill fires the fire time t of a backfill; false when it had fired before.
func (s *Scheduler) fireBackfill(ctx context.Context, spec pipeline.ScheduleSpec, t time.Time) (pipeline.ScheduleFiring, bool, error) {
	f := pipeline.ScheduleFiring{ScheduleID: spec.ID(), FireTime: t, Kind: pipeline.FiringBackfill}
	jobID, res, err := s.cfg.Firer.Fire(ctx, request(spec), store.Firing{ScheduleID: spec.ID(), FireTime: t, Kind: pipeline.FiringBackfill})
	f.Recorded = s.now()
	switch {
	case rejected(err):
		f.Outcome, f.Detail = pipeline.FiringRejected, err.Error()
		return f, true, nil
	case err != nil:
		return f, false, err
	case res.AlreadyFired:
		return f, false, nil
	case res.Skipped != "":
		f.Outcome, f.Detail = pipeline.FiringSkipped, res.Skipped
		return f, true, nil
	}
	f.Outcome, f.JobID = pipeline.FiringStarted, jobID
	f.JobStatus = pipeline.JobQueued
	if res.Started {
		f.JobStatus = pipeline.JobRunning
	}
	return f, true, nil
}

// Firings returns the newest firings of a schedule, newest first, at most limit.
func (s *Scheduler) Firings(ctx context.Context, id string, limit int) ([]pipeline.ScheduleFiring, error) {
	if _, err := s.lookup(ctx, id); err != nil {
		return nil, err
	}
	return s.st.ScheduleFirings(ctx, id, limit)
}
