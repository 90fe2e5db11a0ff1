package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/schedule"
	"github.com/prunner-dev/prunner/internal/store"
)

// fireTimeout bounds one firing's store transaction.
const fireTimeout = time.Minute

// work is what a worker does for one schedule, then arms it again: fire the fire time that came
// due (at), or, at Start, catch up the fire times missed until catchUpTo by the missed policy.
type work struct {
	sc        *sched
	spec      pipeline.ScheduleSpec
	at        time.Time
	catchUpTo time.Time
}

// Start reads the API schedules and the state of every schedule, handles the fire times missed
// while prunner was down by each schedule's missed policy (skip: none fire, the cursor moves to
// now; once: the latest within the catch-up window; all: each within the window, in order) and
// starts waiting for the next ones. The firings of missed times run in the background. Start it
// after the runner has started.
func (s *Scheduler) Start(ctx context.Context) error {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	s.mu.Lock()
	stopped := s.stopped
	s.starting = true
	s.mu.Unlock()
	var works []work
	err := errStopped
	if !stopped {
		works, err = s.load(ctx)
	}
	s.mu.Lock()
	s.loadErr = err
	s.mu.Unlock()
	close(s.loaded)
	if err != nil {
		return err
	}
	go s.loop()
	for _, w := range works {
		s.dispatch(w)
	}
	return nil
}

// load reads the schedules and their states, and returns the catch-up work of the missed fire
// times with every other schedule armed.
func (s *Scheduler) load(ctx context.Context) ([]work, error) {
	apiSpecs, err := s.st.APISchedules(ctx)
	if err != nil {
		return nil, fmt.Errorf("schedules: read the API schedules: %w", err)
	}
	s.mu.Lock()
	fileSpecs := s.fileSpecs
	s.mu.Unlock()
	now := s.now()
	ids := make([]string, 0, len(fileSpecs))
	for _, spec := range fileSpecs {
		ids = append(ids, spec.ID())
	}
	if len(ids) > 0 {
		if err := s.st.EnsureScheduleStates(ctx, ids, now); err != nil {
			return nil, fmt.Errorf("schedules: store the state of file schedules: %w", err)
		}
	}
	states, err := s.st.ScheduleStates(ctx)
	if err != nil {
		return nil, fmt.Errorf("schedules: read their state: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, spec := range apiSpecs {
		spec.Source = pipeline.SourceAPI
		s.newSchedLocked(spec, states[spec.ID()], now)
	}
	for _, spec := range fileSpecs {
		if s.scheds[spec.ID()] != nil {
			s.log.Warn("a schedule in the pipeline files has the ID of a schedule created through the API; the API's is kept", "schedule", spec.ID(), "file", spec.SourceFile, "line", spec.SourceLine)
			continue
		}
		s.newSchedLocked(spec, states[spec.ID()], now)
	}
	s.started = true
	var works []work
	for _, id := range sortedIDs(s.scheds) {
		if w, ok := s.catchUpLocked(s.scheds[id], now); ok {
			works = append(works, w)
		}
	}
	return works, nil
}

// catchUpLocked decides what becomes of sc's fire times missed before now: it returns the work
// that fires or passes over them (and marks sc as being fired), or arms sc when none was missed.
func (s *Scheduler) catchUpLocked(sc *sched, now time.Time) (work, bool) {
	if !s.armableLocked(sc) {
		return work{}, false
	}
	first := sc.tt.Next(sc.cursor)
	if first.IsZero() || first.After(now) {
		s.armLocked(sc, sc.cursor)
		return work{}, false
	}
	s.log.Info("schedule missed fire times while prunner was down", "schedule", sc.spec.ID(), "missed", string(sc.spec.Missed), "first_missed", first)
	sc.firing = true
	return work{sc: sc, spec: sc.spec, catchUpTo: now}, true
}

// errStopped is the error of a Start after Stop.
var errStopped = errors.New("schedules: the scheduler was stopped before it started")

// Stop stops waiting for fire times and waits for the firings in flight (and for a Start that
// is still reading the schedules). Stop it before the runner drains.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	s.stopped = true
	starting := s.starting
	s.mu.Unlock()
	s.stopOnce.Do(func() { close(s.stop) })
	if starting {
		<-s.loaded
	}
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if started {
		<-s.loopDone
	}
	s.inflight.Wait()
}

// loop waits for the earliest armed schedule and hands the due ones to workers.
func (s *Scheduler) loop() {
	defer close(s.loopDone)
	for {
		due, next := s.takeDue()
		for _, w := range due {
			if !s.dispatch(w) {
				return
			}
		}
		if len(due) > 0 {
			continue
		}
		var timer Timer
		var fired <-chan time.Time
		if !next.IsZero() {
			timer = s.clock.TimerAt(next)
			fired = timer.C()
		}
		select {
		case <-fired:
		case <-s.wake:
		case <-s.stop:
		}
		if timer != nil {
			timer.Stop()
		}
		select {
		case <-s.stop:
			return
		default:
		}
	}
}

// takeDue takes the schedules whose time has come out of the heap (marking them as being fired)
// and returns their work; otherwise when the earliest is due (zero: none is armed).
func (s *Scheduler) takeDue() ([]work, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	var due []work
	for len(s.armed) > 0 && !s.armed[0].at.After(now) {
		sc := s.armed[0]
		s.armed.drop(sc)
		sc.firing = true
		due = append(due, work{sc: sc, spec: sc.spec, at: sc.next})
	}
	if len(due) > 0 || len(s.armed) == 0 {
		return due, time.Time{}
	}
	return nil, s.armed[0].at
}

// dispatch runs w on a worker once one is free; false when the scheduler stopped first.
func (s *Scheduler) dispatch(w work) bool {
	select {
	case s.sem <- struct{}{}:
	case <-s.stop:
		return false
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		<-s.sem
		return false
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.inflight.Done()
		defer func() { <-s.sem }()
		s.run(w)
	}()
	return true
}

// run does w (see work) and arms its schedule again.
func (s *Scheduler) run(w work) {
	handled := w.at
	if w.catchUpTo.IsZero() {
		s.fireCron(w.spec, w.at)
	} else {
		s.catchUp(w.spec, w.sc.tt, w.sc.cursor, w.catchUpTo)
		handled = w.catchUpTo
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w.sc.firing = false
	w.sc.cursor = later(w.sc.cursor, handled)
	s.armLocked(w.sc, w.sc.cursor)
	s.poke()
}

// catchUp fires the fire times of spec missed in (cursor, now] that its missed policy fires
// (schedule.Missed; missed: all in batches, in order), then moves the stored cursor to now: the
// others are passed over.
func (s *Scheduler) catchUp(spec pipeline.ScheduleSpec, tt *schedule.Timetable, cursor, now time.Time) {
	for {
		times := schedule.Missed(tt, cursor, now, string(spec.Missed), spec.CatchupWindow)
		for _, t := range times {
			s.fireCron(spec, t)
			cursor = t
		}
		if len(times) < schedule.MaxMissed || s.isStopped() {
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), fireTimeout)
	defer cancel()
	if err := s.st.AdvanceScheduleCursor(ctx, spec.ID(), now); err != nil {
		s.log.Error("schedule: could not move its cursor past the missed fire times", "schedule", spec.ID(), "error", err)
	}
}

// isStopped tells whether Stop was called.
func (s *Scheduler) isStopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// fireCron fires the regular fire time t of spec (a due one or a missed one) and logs what
// became of it.
func (s *Scheduler) fireCron(spec pipeline.ScheduleSpec, t time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), fireTimeout)
	defer cancel()
	f := store.Firing{ScheduleID: spec.ID(), FireTime: t, Kind: pipeline.FiringCron, SkipIfActive: spec.Overlap == pipeline.OverlapSkip}
	jobID, res, err := s.cfg.Firer.Fire(ctx, request(spec), f)
	log := s.log.With("schedule", spec.ID(), "fire_time", t)
	switch {
	case rejected(err):
		log.Warn("schedule firing rejected by admission (recorded on the schedule)", "error", err)
	case errors.Is(err, pipeline.ErrShuttingDown):
		log.Info("schedule firing not started: the server is stopping")
	case err != nil:
		log.Error("schedule firing failed", "error", err)
	case res.AlreadyFired:
		log.Debug("schedule fire time fired before; nothing to do")
	case res.Skipped != "":
		log.Info("schedule firing skipped (overlap: skip)", "reason", res.Skipped)
	default:
		log.Debug("schedule fired", "job_id", jobID, "started", res.Started)
	}
}

// request is the job request of a firing of spec.
func request(spec pipeline.ScheduleSpec) pipeline.ScheduleRequest {
	return pipeline.ScheduleRequest{
		Pipeline:       spec.Pipeline,
		Variables:      spec.Variables,
		QueuePartition: spec.QueuePartition,
		User:           "schedule:" + spec.ID(),
	}
}

// rejected tells whether err is admission refusing a job (recorded as a rejected firing).
func rejected(err error) bool {
	return errors.Is(err, pipeline.ErrQueueFull) || errors.Is(err, pipeline.ErrNoQueue)
}
