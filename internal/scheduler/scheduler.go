// Package scheduler starts the jobs of schedules (issue 11): the schedules declared in the
// pipeline files and those created through the API (kept in the store). It keeps every armed
// schedule in a heap ordered by its next fire time and waits on one timer for the earliest, so
// schedules cost nothing between their firings; due firings go through a bounded pool of workers,
// each one firing (Firer.Fire, the runner's admission) in one store transaction keyed by
// (schedule, fire time), which is what guarantees that a fire time starts at most one job.
//
// Decisions:
//   - A paused schedule is not armed; resuming moves its cursor to now first, so a resume does
//     not catch up the fire times that passed while it was paused.
//   - The missed policy applies to the fire times that passed while prunner was down (at
//     Start). A schedule armed later (created, changed, resumed, its pipeline loaded again)
//     starts with the next fire time after now.
//   - overlap: skip applies to the regular firings; a trigger ("run now") and a backfill are
//     asked for explicitly and go through admission as they are.
//   - Every firing's job has the user "schedule:<id>"; who asked for a trigger or a backfill is
//     logged.
package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/schedule"
	"github.com/prunner-dev/prunner/internal/store"
)

// Firer admits the job of a firing; *runner.Runner implements it (Runner.Fire).
type Firer interface {
	Fire(ctx context.Context, req pipeline.ScheduleRequest, f store.Firing) (jobID string, res store.AdmitResult, err error)
}

// Config configures a Scheduler.
type Config struct {
	Store store.Store
	Firer Firer
	// Clock is the time (default: the time package's).
	Clock  Clock
	Logger *slog.Logger
	// Rand is the source of the jitter (nil: math/rand/v2's global one). It is used with the
	// scheduler's lock held.
	Rand *rand.Rand
	// Workers is how many firings run at once (default 256): each waits for the store's group
	// commit, so simultaneous firings share transactions. There must be enough of them that
	// firings still wait for the writer while a batch of them commits, so that the store runs
	// them ahead of the job ends waiting there (sqlite: groupcommit.go). With 64 (the earlier
	// default) the writer found no firing waiting after each commit and ran job ends first: a
	// burst of 10,000 firings came out about twice as late.
	Workers int
}

// sched is one schedule in memory.
type sched struct {
	spec pipeline.ScheduleSpec
	// tt is the parsed Cron in Timezone, parsed again only when either changes.
	tt        *schedule.Timetable
	paused    bool
	pauseNote string
	// cursor is the latest fire time handled (fired, skipped, rejected, passed over).
	cursor time.Time
	// next is the armed fire time, at when it fires (next plus its jitter); index is its place
	// in the heap (-1 when not armed).
	next, at time.Time
	index    int
	// firing: a worker handles the schedule now; it arms it again when done.
	firing  bool
	removed bool
}

// Scheduler runs the schedules. Create it with New, give it the definitions with SetDefinitions,
// then Start it (after the runner has started); Stop it before the runner drains.
type Scheduler struct {
	cfg   Config
	st    store.Store
	log   *slog.Logger
	clock Clock

	// setMu serializes Start and SetDefinitions.
	setMu sync.Mutex

	mu        sync.Mutex
	defs      *pipeline.Set
	fileSpecs []pipeline.ScheduleSpec
	scheds    map[string]*sched
	armed     armedHeap
	// starting: Start was called; started: it has read the schedules; stopped: Stop was called.
	starting bool
	started  bool
	stopped  bool

	// loaded is closed when Start has read the schedules (loadErr says whether it could); the
	// API methods wait for it.
	loaded  chan struct{}
	loadErr error
	// wake tells the loop that the heap changed; stop ends it, and loopDone says it has ended.
	wake     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	loopDone chan struct{}
	// sem bounds the firings that run at once; inflight counts them for Stop.
	sem      chan struct{}
	inflight sync.WaitGroup
}

// New returns a Scheduler that is not started.
func New(cfg Config) *Scheduler {
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 256
	}
	return &Scheduler{
		cfg:      cfg,
		st:       cfg.Store,
		log:      cfg.Logger,
		clock:    cfg.Clock,
		defs:     &pipeline.Set{Pipelines: map[string]*pipeline.Definition{}},
		scheds:   map[string]*sched{},
		loaded:   make(chan struct{}),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
		sem:      make(chan struct{}, cfg.Workers),
	}
}

func (s *Scheduler) now() time.Time { return s.clock.Now().UTC() }

// fileSchedules returns the schedules declared in the definitions, by pipeline name and order.
func fileSchedules(set *pipeline.Set) []pipeline.ScheduleSpec {
	var specs []pipeline.ScheduleSpec
	for _, name := range set.Names() {
		for _, spec := range set.Pipelines[name].Schedules {
			spec.Pipeline = name
			spec.Source = pipeline.SourceFile
			specs = append(specs, spec)
		}
	}
	return specs
}

// SetDefinitions takes the loaded definitions, at load and on every reload: the file schedules
// they declare are added, changed and removed without double firing (an unchanged expression
// keeps its armed fire time; a changed one arms the next fire time after both now and the
// latest one handled), and API schedules fire only while their pipeline is loaded. A schedule
// of a removed pipeline stops; its state and firings stay in the store. Before Start it only
// remembers them.
func (s *Scheduler) SetDefinitions(ctx context.Context, set *pipeline.Set) error {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	specs := fileSchedules(set)
	s.mu.Lock()
	s.defs, s.fileSpecs = set, specs
	started := s.started
	s.mu.Unlock()
	if !started {
		return nil
	}
	return s.applyFileSchedules(ctx, specs)
}

// applyFileSchedules brings the running file schedules in line with specs (see SetDefinitions).
func (s *Scheduler) applyFileSchedules(ctx context.Context, specs []pipeline.ScheduleSpec) error {
	now := s.now()
	states, err := s.statesOfNew(ctx, specs, now)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	declared := make(map[string]bool, len(specs))
	for _, spec := range specs {
		declared[spec.ID()] = true
	}
	for id, sc := range s.scheds {
		if sc.spec.Source == pipeline.SourceFile && !declared[id] {
			s.removeLocked(sc)
			s.log.Info("schedule removed from the pipeline files; it stops (its history stays)", "schedule", id)
		}
	}
	for _, spec := range specs {
		s.applyFileScheduleLocked(spec, states, now)
	}
	for _, sc := range s.scheds {
		if sc.spec.Source == pipeline.SourceAPI && (sc.index >= 0) != s.armableLocked(sc) {
			s.armLocked(sc, later(sc.cursor, now))
		}
	}
	s.poke()
	return nil
}

// statesOfNew creates the store state of the specs that are not running yet and returns the
// states of all schedules (nil when every spec runs already).
func (s *Scheduler) statesOfNew(ctx context.Context, specs []pipeline.ScheduleSpec, now time.Time) (map[string]pipeline.ScheduleState, error) {
	var ids []string
	s.mu.Lock()
	for _, spec := range specs {
		if s.scheds[spec.ID()] == nil {
			ids = append(ids, spec.ID())
		}
	}
	s.mu.Unlock()
	if len(ids) == 0 {
		return nil, nil
	}
	if err := s.st.EnsureScheduleStates(ctx, ids, now); err != nil {
		return nil, fmt.Errorf("schedules: store the state of new schedules: %w", err)
	}
	states, err := s.st.ScheduleStates(ctx)
	if err != nil {
		return nil, fmt.Errorf("schedules: read their state: %w", err)
	}
	return states, nil
}

// applyFileScheduleLocked adds or changes one file schedule after a reload.
func (s *Scheduler) applyFileScheduleLocked(spec pipeline.ScheduleSpec, states map[string]pipeline.ScheduleState, now time.Time) {
	id := spec.ID()
	sc := s.scheds[id]
	switch {
	case sc == nil:
		sc = s.newSchedLocked(spec, states[id], now)
		if sc != nil {
			s.armLocked(sc, later(sc.cursor, now))
			s.log.Info("schedule added from the pipeline files", "schedule", id)
		}
	case sc.spec.Source != pipeline.SourceFile:
		s.log.Warn("a schedule in the pipeline files has the ID of a schedule created through the API; the API's is kept", "schedule", id, "file", spec.SourceFile, "line", spec.SourceLine)
	case sc.spec.Cron == spec.Cron && sc.spec.Timezone == spec.Timezone:
		// The same fire times: the armed one stays, the next firing uses the new fields.
		sc.spec = spec
	default:
		tt, err := schedule.Parse(spec.Cron, spec.Timezone)
		if err != nil {
			s.log.Error("schedule not changed: its expression does not parse", "schedule", id, "error", err)
			return
		}
		sc.spec, sc.tt = spec, tt
		s.armLocked(sc, later(sc.cursor, now))
		s.log.Info("schedule changed in the pipeline files", "schedule", id, "cron", spec.Cron, "timezone", spec.Timezone)
	}
}

// newSchedLocked makes the in-memory schedule of spec with its stored state (its cursor is now
// when it has none); nil when its expression does not parse (logged).
func (s *Scheduler) newSchedLocked(spec pipeline.ScheduleSpec, st pipeline.ScheduleState, now time.Time) *sched {
	tt, err := schedule.Parse(spec.Cron, spec.Timezone)
	if err != nil {
		s.log.Error("schedule left out: its expression does not parse", "schedule", spec.ID(), "error", err)
		return nil
	}
	cursor := st.Cursor
	if cursor.IsZero() {
		cursor = now
	}
	sc := &sched{spec: spec, tt: tt, paused: st.Paused, pauseNote: st.PauseNote, cursor: cursor, index: -1}
	s.scheds[spec.ID()] = sc
	return sc
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// armableLocked tells whether sc should wait for its next fire time: not paused, not removed,
// not being fired, and its pipeline loaded.
func (s *Scheduler) armableLocked(sc *sched) bool {
	return !sc.removed && !sc.paused && !sc.firing && s.defs.Get(sc.spec.Pipeline) != nil
}

// armLocked puts sc in the heap at its first fire time after base (plus a new jitter), or takes
// it out when it should not fire.
func (s *Scheduler) armLocked(sc *sched, base time.Time) {
	if !s.armableLocked(sc) {
		s.armed.drop(sc)
		sc.next, sc.at = time.Time{}, time.Time{}
		return
	}
	sc.next = sc.tt.Next(base)
	if sc.next.IsZero() {
		s.armed.drop(sc)
		return
	}
	sc.at = sc.next.Add(s.jitterLocked(sc.spec.Jitter))
	s.armed.put(sc)
}

// jitterLocked returns a random delay in [0, max) (0 when max is not positive).
func (s *Scheduler) jitterLocked(max time.Duration) time.Duration {
	return schedule.JitterDelay(max, s.cfg.Rand)
}

// removeLocked stops sc for good (deleted, or gone from the files).
func (s *Scheduler) removeLocked(sc *sched) {
	sc.removed = true
	s.armed.drop(sc)
	delete(s.scheds, sc.spec.ID())
}

// poke wakes the loop to look at the heap again.
func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// sortedIDs returns the IDs of m in order.
func sortedIDs[T any](m map[string]T) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
