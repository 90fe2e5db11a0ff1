package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// The schedule part of the contract: firings (Admit with AdmitParams.Firing), the API schedules,
// the schedule states and the firing records.

const schedID = "p/nightly"

// firing returns a firing of schedID at the fire time ft.
func firing(kind pipeline.FiringKind, ft time.Time) store.Firing {
	return store.Firing{ScheduleID: schedID, FireTime: ft, Kind: kind}
}

// fire admits a new job id of d as the firing fr, at now, as the schedule engine does: the job
// carries the schedule and the fire time.
func (f *fixture) fire(d *pipeline.Definition, id string, fr store.Firing, now time.Time) (store.AdmitResult, error) {
	j := newJob(d, id, now)
	j.Schedule, j.ScheduledFor = fr.ScheduleID, ptr(fr.FireTime)
	return f.s.Admit(f.ctx, store.AdmitParams{Job: j, Definition: d, Now: now, Firing: &fr})
}

// fireStarted fires and requires that the firing started its job (running or queued).
func (f *fixture) fireStarted(d *pipeline.Definition, id string, fr store.Firing, now time.Time) store.AdmitResult {
	f.t.Helper()
	res, err := f.fire(d, id, fr, now)
	if err != nil || res.AlreadyFired || res.Skipped != "" {
		f.t.Fatalf("firing %s at %v (job %s) = %+v, %v; want a job stored", fr.Kind, fr.FireTime, id, res, err)
	}
	return res
}

// wantAlreadyFired fires and requires AlreadyFired with nothing stored.
func (f *fixture) wantAlreadyFired(d *pipeline.Definition, id string, fr store.Firing, now time.Time) {
	f.t.Helper()
	res, err := f.fire(d, id, fr, now)
	if err != nil || !res.AlreadyFired || res.Started {
		f.t.Errorf("firing %s at %v (job %s) = %+v, %v; want AlreadyFired", fr.Kind, fr.FireTime, id, res, err)
	}
	f.wantNoJob(id)
}

func (f *fixture) firings(id string, limit int) []pipeline.ScheduleFiring {
	f.t.Helper()
	fs, err := f.s.ScheduleFirings(f.ctx, id, limit)
	if err != nil {
		f.t.Fatalf("ScheduleFirings(%s, %d) error: %v", id, limit, err)
	}
	return fs
}

func (f *fixture) scheduleState(id string) (pipeline.ScheduleState, bool) {
	f.t.Helper()
	states, err := f.s.ScheduleStates(f.ctx)
	if err != nil {
		f.t.Fatalf("ScheduleStates() error: %v", err)
	}
	st, ok := states[id]
	return st, ok
}

func (f *fixture) wantCursor(id string, want time.Time) {
	f.t.Helper()
	st, ok := f.scheduleState(id)
	if !ok {
		f.t.Fatalf("schedule %s has no state", id)
	}
	wantTime(f.t, "schedule "+id+" Cursor", st.Cursor, want)
}

// wantFiring checks one firing record (Recorded is when it was admitted: now).
func wantFiring(t *testing.T, got, want pipeline.ScheduleFiring) {
	t.Helper()
	if got.ScheduleID != want.ScheduleID || got.Kind != want.Kind || got.Outcome != want.Outcome ||
		got.JobID != want.JobID || got.JobStatus != want.JobStatus {
		t.Errorf("firing = %+v, want %+v", got, want)
	}
	if want.Detail != "" && !strings.Contains(got.Detail, want.Detail) {
		t.Errorf("firing Detail = %q, want it to contain %q", got.Detail, want.Detail)
	}
	if want.Detail == "" && got.Detail != "" {
		t.Errorf("firing Detail = %q, want none", got.Detail)
	}
	wantTime(t, "firing FireTime", got.FireTime, want.FireTime)
	wantTime(t, "firing Recorded", got.Recorded, want.Recorded)
}

// testFiringOncePerKey: a second firing of the same (schedule, fire time) stores nothing, whatever
// its kind; another fire time fires.
func testFiringOncePerKey(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 5)
	if res := f.fireStarted(d, "j1", firing(pipeline.FiringTrigger, at(10)), at(10)); !res.Started {
		t.Errorf("first firing Started = false, want true (a free slot)")
	}
	f.wantAlreadyFired(d, "j2", firing(pipeline.FiringTrigger, at(10)), at(11))
	f.wantAlreadyFired(d, "j3", firing(pipeline.FiringBackfill, at(10)), at(12))
	f.fireStarted(d, "j4", firing(pipeline.FiringTrigger, at(20)), at(20))
	if got := jobIDs(f.list(store.JobQuery{})); !slices.Equal(got, []string{"j4", "j1"}) {
		t.Errorf("Jobs() = %v, want [j4 j1]", got)
	}
	// The first firing of a schedule without a state gave it one, at the firing's admission.
	f.wantCursor(schedID, at(10))

	// A firing whose idempotency key a job has already names that job and records nothing.
	fr := firing(pipeline.FiringTrigger, at(30))
	j := newJob(d, "j5", at(30))
	res, err := f.s.Admit(f.ctx, store.AdmitParams{Job: j, Definition: d, Now: at(30), Firing: &fr, IdempotencyKey: "k"})
	if err != nil || res.ExistingID != "" {
		t.Fatalf("firing with a new key = %+v, %v", res, err)
	}
	fr2 := firing(pipeline.FiringTrigger, at(40))
	res, err = f.s.Admit(f.ctx, store.AdmitParams{Job: newJob(d, "j6", at(40)), Definition: d, Now: at(40), Firing: &fr2, IdempotencyKey: "k"})
	if err != nil || res.ExistingID != "j5" {
		t.Errorf("firing with a known key = %+v, %v; want ExistingID j5", res, err)
	}
	f.wantNoJob("j6")
	if fs := f.firings(schedID, 0); len(fs) != 3 || !fs[0].FireTime.Equal(at(30)) {
		t.Errorf("firings = %+v, want 3, the newest at %v", fs, at(30))
	}
}

// testFiringConcurrentSameKey: many concurrent firings of one key start exactly one job.
func testFiringConcurrentSameKey(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 100)
	const n = 32
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		started []string
		fired   int
	)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("j%d", i)
			res, err := f.fire(d, id, firing(pipeline.FiringCron, at(60)), at(60))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("firing (job %s) error: %v", id, err)
			case res.AlreadyFired:
				fired++
			default:
				started = append(started, id)
			}
		})
	}
	wg.Wait()
	if len(started) != 1 || fired != n-1 {
		t.Fatalf("%d concurrent firings of one key: started %v, %d AlreadyFired; want one started, %d AlreadyFired",
			n, started, fired, n-1)
	}
	if got := jobIDs(f.list(store.JobQuery{})); !slices.Equal(got, started) {
		t.Errorf("Jobs() = %v, want %v", got, started)
	}
	if fs := f.firings(schedID, 0); len(fs) != 1 || fs[0].JobID != started[0] {
		t.Errorf("firings = %+v, want one, of job %s", fs, started[0])
	}
}

// testFiringCronCursor: a cron firing must come after the cursor and moves it; backfills and
// triggers are keyed by their fire time only, so a past time below the cursor backfills once.
func testFiringCronCursor(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 100)
	spec := pipeline.ScheduleSpec{Pipeline: "p", Name: "nightly", Cron: "* * * * *", Source: pipeline.SourceAPI}
	if err := f.s.CreateSchedule(f.ctx, spec, at(0)); err != nil {
		t.Fatalf("CreateSchedule() error: %v", err)
	}
	f.wantCursor(schedID, at(0))
	// A fire time at the creation is not after the cursor: it never fires as a regular firing.
	f.wantAlreadyFired(d, "j0", firing(pipeline.FiringCron, at(0)), at(1))

	f.fireStarted(d, "j60", firing(pipeline.FiringCron, at(60)), at(60))
	f.wantCursor(schedID, at(60))
	f.wantAlreadyFired(d, "again60", firing(pipeline.FiringCron, at(60)), at(61))
	// 30 has no record, but it is not after the cursor.
	f.wantAlreadyFired(d, "j30", firing(pipeline.FiringCron, at(30)), at(62))
	f.fireStarted(d, "j120", firing(pipeline.FiringCron, at(120)), at(120))
	f.wantCursor(schedID, at(120))

	// Backfill below the cursor works once, and does not move the cursor.
	f.fireStarted(d, "b30", firing(pipeline.FiringBackfill, at(30)), at(130))
	f.wantAlreadyFired(d, "b30again", firing(pipeline.FiringBackfill, at(30)), at(131))
	f.wantAlreadyFired(d, "c30", firing(pipeline.FiringCron, at(30)), at(132))
	// A trigger fires at its own time; it does not move the cursor either.
	f.fireStarted(d, "t", firing(pipeline.FiringTrigger, at(150)), at(150))
	f.wantCursor(schedID, at(120))
	f.fireStarted(d, "j180", firing(pipeline.FiringCron, at(180)), at(180))
	f.wantCursor(schedID, at(180))
}

// testFiringSkipIfActive: overlap skip records a skipped firing while a job of the schedule is
// queued or running, and starts again once none is.
func testFiringSkipIfActive(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1)
	skip := func(ft time.Time) store.Firing {
		fr := firing(pipeline.FiringCron, ft)
		fr.SkipIfActive = true
		return fr
	}
	// A job of another schedule, or of none, is no overlap.
	other := store.Firing{ScheduleID: "p/other", FireTime: at(0), Kind: pipeline.FiringCron}
	f.fireStarted(d, "other", other, at(0))
	f.admitQueued(d, at(1), "manual")
	f.fireStarted(d, "j60", skip(at(60)), at(60)) // queued behind the others

	res, err := f.fire(d, "j120", skip(at(120)), at(120))
	if err != nil || res.Skipped == "" || res.Started || res.AlreadyFired || !strings.Contains(res.Skipped, "j60") {
		t.Fatalf("firing while j60 is queued = %+v, %v; want Skipped naming j60", res, err)
	}
	f.wantNoJob("j120")
	f.wantCursor(schedID, at(120))
	wantFiring(t, f.firings(schedID, 1)[0], pipeline.ScheduleFiring{ScheduleID: schedID, FireTime: at(120),
		Kind: pipeline.FiringCron, Outcome: pipeline.FiringSkipped, Detail: "j60", Recorded: at(120)})
	f.wantAlreadyFired(d, "j120again", skip(at(120)), at(121))

	// Running counts too.
	f.finish("other", pipeline.JobSucceeded, at(130))
	if _, err := f.s.CancelQueued(f.ctx, "manual", at(131)); err != nil {
		t.Fatalf("CancelQueued(manual) error: %v", err)
	}
	if got := f.claim(d, at(132)); len(got.Started) != 1 || got.Started[0].ID != "j60" {
		t.Fatalf("Claim() started %v, want [j60]", jobIDs(got.Started))
	}
	if res, err := f.fire(d, "j180", skip(at(180)), at(180)); err != nil || !strings.Contains(res.Skipped, "j60") {
		t.Fatalf("firing while j60 runs = %+v, %v; want Skipped naming j60", res, err)
	}
	f.finish("j60", pipeline.JobFailed, at(190))
	if res := f.fireStarted(d, "j240", skip(at(240)), at(240)); !res.Started {
		t.Errorf("firing after j60 ended: Started = false, want true")
	}
}

// testFiringRejected: a firing that admission rejects is recorded as rejected with the error's
// message, Admit returns that error, and no job is stored.
func testFiringRejected(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1, queueLimit(1))
	f.admitStarted(d, at(0), "running")
	f.admitQueued(d, at(1), "waiting")
	_, err := f.fire(d, "j60", firing(pipeline.FiringCron, at(60)), at(60))
	if !errors.Is(err, pipeline.ErrQueueFull) {
		t.Fatalf("firing into a full wait list: error = %v, want %v", err, pipeline.ErrQueueFull)
	}
	f.wantNoJob("j60")
	f.wantCursor(schedID, at(60))
	fs := f.firings(schedID, 0)
	if len(fs) != 1 {
		t.Fatalf("firings = %+v, want the rejected one", fs)
	}
	wantFiring(t, fs[0], pipeline.ScheduleFiring{ScheduleID: schedID, FireTime: at(60), Kind: pipeline.FiringCron,
		Outcome: pipeline.FiringRejected, Detail: err.Error(), Recorded: at(60)})
	// The fire time was handled: it does not fire again once there is room.
	f.finish("waiting", pipeline.JobCanceled, at(61))
	f.wantAlreadyFired(d, "j60again", firing(pipeline.FiringCron, at(60)), at(62))

	noQueue := testDefinition("q", 1, queueLimit(0))
	f.admitStarted(noQueue, at(0), "q-running")
	fr := store.Firing{ScheduleID: "q/s", FireTime: at(70), Kind: pipeline.FiringTrigger}
	if _, err := f.fire(noQueue, "q70", fr, at(70)); !errors.Is(err, pipeline.ErrNoQueue) {
		t.Fatalf("firing without a wait list: error = %v, want %v", err, pipeline.ErrNoQueue)
	}
	if fs := f.firings("q/s", 0); len(fs) != 1 || fs[0].Outcome != pipeline.FiringRejected {
		t.Errorf("firings of q/s = %+v, want one rejected", fs)
	}
}

// testScheduledJobRoundTrip: a job of a schedule keeps Schedule and ScheduledFor in every read,
// before and after it ends; other jobs have neither.
func testScheduledJobRoundTrip(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 5)
	f.fireStarted(d, "sched", firing(pipeline.FiringCron, at(60)), at(61))
	f.admitStarted(d, at(62), "plain")
	check := func(what string, j *pipeline.Job) {
		t.Helper()
		switch j.ID {
		case "sched":
			if j.Schedule != schedID {
				t.Errorf("%s: job sched Schedule = %q, want %q", what, j.Schedule, schedID)
			}
			wantTimePtr(t, what+": job sched ScheduledFor", j.ScheduledFor, ptr(at(60)))
		case "plain":
			if j.Schedule != "" || j.ScheduledFor != nil {
				t.Errorf("%s: job plain Schedule %q, ScheduledFor %v; want none", what, j.Schedule, fmtTimePtr(j.ScheduledFor))
			}
		}
	}
	checkAll := func(when string) {
		t.Helper()
		for _, id := range []string{"sched", "plain"} {
			check(when+" Job", f.job(id))
		}
		for _, j := range f.list(store.JobQuery{}) {
			check(when+" Jobs", j)
		}
		err := f.s.EachJob(f.ctx, store.JobQuery{WithoutTasks: true}, func(j *pipeline.Job) error {
			check(when+" EachJob", j)
			return nil
		})
		if err != nil {
			t.Fatalf("EachJob() error: %v", err)
		}
		if _, err := f.s.EachJobFrom(f.ctx, store.JobQuery{Limit: 1}, store.ListPos{}, func(j *pipeline.Job) error {
			check(when+" EachJobFrom", j)
			return nil
		}); err != nil {
			t.Fatalf("EachJobFrom() error: %v", err)
		}
	}
	checkAll("running")
	f.finish("sched", pipeline.JobSucceeded, at(70))
	f.finish("plain", pipeline.JobFailed, at(71))
	checkAll("finished")
}

// testScheduleCRUD: the API schedules and their errors.
func testScheduleCRUD(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	b := pipeline.ScheduleSpec{Pipeline: "p", Name: "b", Cron: "0 3 * * *", Timezone: "Europe/Berlin",
		Variables: map[string]any{"env": "prod"}, QueuePartition: "eu", Jitter: 30 * time.Second,
		Missed: pipeline.MissedOnce, CatchupWindow: time.Hour, Overlap: pipeline.OverlapSkip, Source: pipeline.SourceAPI}
	a := pipeline.ScheduleSpec{Pipeline: "p", Name: "a", Cron: "@hourly", Missed: pipeline.MissedSkip,
		CatchupWindow: pipeline.DefaultCatchupWindow, Overlap: pipeline.OverlapAllow, Source: pipeline.SourceAPI}
	if got, err := f.s.APISchedules(f.ctx); err != nil || len(got) != 0 {
		t.Fatalf("APISchedules() on a new store = %v, %v; want none", got, err)
	}
	for _, spec := range []pipeline.ScheduleSpec{b, a} {
		if err := f.s.CreateSchedule(f.ctx, spec, at(5)); err != nil {
			t.Fatalf("CreateSchedule(%s) error: %v", spec.ID(), err)
		}
	}
	if err := f.s.CreateSchedule(f.ctx, a, at(6)); !errors.Is(err, pipeline.ErrScheduleExists) {
		t.Errorf("CreateSchedule(%s) again: error = %v, want %v", a.ID(), err, pipeline.ErrScheduleExists)
	}
	wantSpecs := func(want ...pipeline.ScheduleSpec) {
		t.Helper()
		got, err := f.s.APISchedules(f.ctx)
		if err != nil {
			t.Fatalf("APISchedules() error: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("APISchedules() = %+v, want %+v", got, want)
		}
	}
	wantSpecs(a, b) // sorted by ID
	f.wantCursor("p/a", at(5))

	b.Cron, b.Variables = "0 4 * * *", map[string]any{"env": "staging"}
	if err := f.s.UpdateSchedule(f.ctx, b); err != nil {
		t.Fatalf("UpdateSchedule(%s) error: %v", b.ID(), err)
	}
	wantSpecs(a, b)
	missing := pipeline.ScheduleSpec{Pipeline: "p", Name: "missing", Cron: "@daily"}
	if err := f.s.UpdateSchedule(f.ctx, missing); !errors.Is(err, pipeline.ErrScheduleNotFound) {
		t.Errorf("UpdateSchedule(missing) error = %v, want %v", err, pipeline.ErrScheduleNotFound)
	}
	if err := f.s.DeleteSchedule(f.ctx, "p/missing"); !errors.Is(err, pipeline.ErrScheduleNotFound) {
		t.Errorf("DeleteSchedule(missing) error = %v, want %v", err, pipeline.ErrScheduleNotFound)
	}

	// Deleting takes the state and the firing records along; the jobs stay.
	d := testDefinition("p", 5)
	fr := store.Firing{ScheduleID: "p/a", FireTime: at(3600), Kind: pipeline.FiringCron}
	f.fireStarted(d, "ja", fr, at(3600))
	if err := f.s.DeleteSchedule(f.ctx, "p/a"); err != nil {
		t.Fatalf("DeleteSchedule(p/a) error: %v", err)
	}
	wantSpecs(b)
	if _, ok := f.scheduleState("p/a"); ok {
		t.Errorf("schedule p/a has a state after its deletion")
	}
	if fs := f.firings("p/a", 0); len(fs) != 0 {
		t.Errorf("firings of p/a after its deletion = %+v, want none", fs)
	}
	if j := f.job("ja"); j.Schedule != "p/a" {
		t.Errorf("job ja Schedule = %q after the deletion, want p/a", j.Schedule)
	}
	if err := f.s.DeleteSchedule(f.ctx, "p/a"); !errors.Is(err, pipeline.ErrScheduleNotFound) {
		t.Errorf("DeleteSchedule(p/a) again: error = %v, want %v", err, pipeline.ErrScheduleNotFound)
	}
	// The ID is free again: a new schedule of it starts fresh.
	if err := f.s.CreateSchedule(f.ctx, a, at(7200)); err != nil {
		t.Fatalf("CreateSchedule(%s) after the deletion: %v", a.ID(), err)
	}
	f.wantCursor("p/a", at(7200))
}

// testSchedulePause: pausing keeps a note and the time; resuming clears both; a schedule
// without a state gets one.
func testSchedulePause(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	if err := f.s.SetSchedulePaused(f.ctx, "p/file", true, "maintenance window", at(10)); err != nil {
		t.Fatalf("SetSchedulePaused(pause) error: %v", err)
	}
	st, ok := f.scheduleState("p/file")
	if !ok || !st.Paused || st.PauseNote != "maintenance window" {
		t.Fatalf("state after pause = %+v (%v), want paused with the note", st, ok)
	}
	wantTime(t, "PausedAt", st.PausedAt, at(10))
	wantTime(t, "Cursor of a new state", st.Cursor, at(10))
	if err := f.s.SetSchedulePaused(f.ctx, "p/file", false, "ignored", at(20)); err != nil {
		t.Fatalf("SetSchedulePaused(resume) error: %v", err)
	}
	st, _ = f.scheduleState("p/file")
	if st.Paused || st.PauseNote != "" || !st.PausedAt.IsZero() {
		t.Errorf("state after resume = %+v, want not paused, no note, no PausedAt", st)
	}
	wantTime(t, "Cursor after resume", st.Cursor, at(10))
	if err := f.s.SetSchedulePaused(f.ctx, "p/file", true, "", at(30)); err != nil {
		t.Fatalf("SetSchedulePaused(pause) error: %v", err)
	}
	st, _ = f.scheduleState("p/file")
	if !st.Paused || st.PauseNote != "" {
		t.Errorf("state after a pause without a note = %+v", st)
	}
	wantTime(t, "PausedAt", st.PausedAt, at(30))
	// Pausing again replaces the note; the schedule has been paused since 30.
	if err := f.s.SetSchedulePaused(f.ctx, "p/file", true, "still broken", at(40)); err != nil {
		t.Fatalf("SetSchedulePaused(pause again) error: %v", err)
	}
	st, _ = f.scheduleState("p/file")
	if !st.Paused || st.PauseNote != "still broken" {
		t.Errorf("state after pausing again = %+v, want the new note", st)
	}
	wantTime(t, "PausedAt after pausing again", st.PausedAt, at(30))
}

// testEnsureScheduleStates: states are created once, with the cursor at their creation, and
// existing ones are left alone; the cursor never moves back.
func testEnsureScheduleStates(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	ensure := func(now time.Time, ids ...string) {
		t.Helper()
		if err := f.s.EnsureScheduleStates(f.ctx, ids, now); err != nil {
			t.Fatalf("EnsureScheduleStates(%v) error: %v", ids, err)
		}
	}
	ensure(at(10), "p/a", "p/b")
	advance := func(id string, t2 time.Time) {
		t.Helper()
		if err := f.s.AdvanceScheduleCursor(f.ctx, id, t2); err != nil {
			t.Fatalf("AdvanceScheduleCursor(%s) error: %v", id, err)
		}
	}
	advance("p/a", at(50))
	advance("p/a", at(40)) // never back
	if err := f.s.SetSchedulePaused(f.ctx, "p/b", true, "why", at(15)); err != nil {
		t.Fatal(err)
	}
	ensure(at(20), "p/a", "p/b", "p/c")
	ensure(at(30)) // nothing
	f.wantCursor("p/a", at(50))
	f.wantCursor("p/b", at(10))
	f.wantCursor("p/c", at(20))
	if st, _ := f.scheduleState("p/b"); !st.Paused || st.PauseNote != "why" {
		t.Errorf("p/b after EnsureScheduleStates = %+v, want still paused", st)
	}

	// Many at once (a pipelines file with thousands of schedules).
	ids := make([]string, 2000)
	for i := range ids {
		ids[i] = fmt.Sprintf("many/%d", i)
	}
	ensure(at(60), ids...)
	states, err := f.s.ScheduleStates(f.ctx)
	if err != nil || len(states) != 3+len(ids) {
		t.Fatalf("ScheduleStates() = %d states, %v; want %d", len(states), err, 3+len(ids))
	}
}

// testFiringsBounded: the store keeps at least the newest KeptFirings records of a schedule, and
// not every record ever made.
func testFiringsBounded(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1, queueLimit(0))
	f.admitStarted(d, at(0), "busy") // every firing is rejected: no jobs pile up
	const n = 3 * store.KeptFirings
	for i := 1; i <= n; i++ {
		if _, err := f.fire(d, fmt.Sprintf("j%d", i), firing(pipeline.FiringCron, at(60*i)), at(60*i)); !errors.Is(err, pipeline.ErrNoQueue) {
			t.Fatalf("firing %d: error = %v, want %v", i, err, pipeline.ErrNoQueue)
		}
	}
	fs := f.firings(schedID, 0)
	if len(fs) < store.KeptFirings || len(fs) >= n {
		t.Fatalf("%d firings kept of %d, want at least %d and fewer than all", len(fs), n, store.KeptFirings)
	}
	for i, fr := range fs[:store.KeptFirings] {
		wantTime(t, fmt.Sprintf("firing %d FireTime", i), fr.FireTime, at(60*(n-i)))
	}
	if got := f.firings(schedID, 5); len(got) != 5 || !got[0].FireTime.Equal(at(60*n)) {
		t.Errorf("ScheduleFirings(limit 5) = %d firings, newest %v; want 5, newest %v", len(got), got[0].FireTime, at(60*n))
	}
	// The cursor still guards every fire time, kept or not.
	f.wantAlreadyFired(d, "old", firing(pipeline.FiringCron, at(60)), at(60*n+1))
}

// testFiringsShowJobStatus: the firing records show the current status of their jobs, newest
// fire time first; a job deleted by retention leaves its record with no status.
func testFiringsShowJobStatus(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1)
	f.fireStarted(d, "j60", firing(pipeline.FiringCron, at(60)), at(60))
	f.fireStarted(d, "j120", firing(pipeline.FiringCron, at(120)), at(120)) // queued
	other := store.Firing{ScheduleID: "p/other", FireTime: at(90), Kind: pipeline.FiringTrigger}
	f.fireStarted(d, "o90", other, at(90))
	// A backfill of an older time, recorded last, is not the newest firing.
	f.fireStarted(d, "b30", firing(pipeline.FiringBackfill, at(30)), at(130))

	want := func(id string, ft time.Time, kind pipeline.FiringKind, status pipeline.JobStatus, recorded time.Time) pipeline.ScheduleFiring {
		return pipeline.ScheduleFiring{ScheduleID: schedID, FireTime: ft, Kind: kind, Outcome: pipeline.FiringStarted,
			JobID: id, JobStatus: status, Recorded: recorded}
	}
	fs := f.firings(schedID, 0)
	if len(fs) != 3 {
		t.Fatalf("firings = %+v, want 3", fs)
	}
	wantFiring(t, fs[0], want("j120", at(120), pipeline.FiringCron, pipeline.JobQueued, at(120)))
	wantFiring(t, fs[1], want("j60", at(60), pipeline.FiringCron, pipeline.JobRunning, at(60)))
	wantFiring(t, fs[2], want("b30", at(30), pipeline.FiringBackfill, pipeline.JobQueued, at(130)))

	last, err := f.s.LastFirings(f.ctx)
	if err != nil || len(last) != 2 {
		t.Fatalf("LastFirings() = %+v, %v; want two schedules", last, err)
	}
	wantFiring(t, last[schedID], want("j120", at(120), pipeline.FiringCron, pipeline.JobQueued, at(120)))
	o := last["p/other"]
	if o.JobID != "o90" || o.Kind != pipeline.FiringTrigger || o.JobStatus != pipeline.JobQueued {
		t.Errorf("last firing of p/other = %+v, want o90's, queued", o)
	}

	f.finish("j60", pipeline.JobSucceeded, at(200))
	if got := f.firings(schedID, 0)[1]; got.JobStatus != pipeline.JobSucceeded {
		t.Errorf("firing of j60 after its end: JobStatus %q, want %q", got.JobStatus, pipeline.JobSucceeded)
	}
	deleted, err := f.s.DeleteFinished(f.ctx, store.RetentionParams{Pipeline: "p", KeepNewest: 0, EndedBefore: at(300)})
	if err != nil || !slices.Equal(deleted, []string{"j60"}) {
		t.Fatalf("DeleteFinished() = %v, %v; want [j60]", deleted, err)
	}
	wantFiring(t, f.firings(schedID, 0)[1], want("j60", at(60), pipeline.FiringCron, "", at(60)))
}

// RunPersistence runs the part of the conformance suite that needs a store opened again on the
// same data: open returns a new, empty store and a function that opens another store on the
// same data once the first is closed (both closed by the backend in t.Cleanup).
func RunPersistence(t *testing.T, open func(t *testing.T) (store.Store, func() store.Store)) {
	t.Run("FiringsSurviveReopen", func(t *testing.T) {
		t.Parallel()
		testFiringsSurviveReopen(t, open)
	})
}

// testFiringsSurviveReopen: what a firing committed is there after a restart, so a fire time
// never starts twice (the firing and its job are one transaction: all or nothing).
func testFiringsSurviveReopen(t *testing.T, open func(t *testing.T) (store.Store, func() store.Store)) {
	s, reopen := open(t)
	f := &fixture{t: t, ctx: t.Context(), s: s}
	d := testDefinition("p", 5)
	spec := pipeline.ScheduleSpec{Pipeline: "p", Name: "nightly", Cron: "* * * * *", Source: pipeline.SourceAPI}
	if err := s.CreateSchedule(f.ctx, spec, at(0)); err != nil {
		t.Fatalf("CreateSchedule() error: %v", err)
	}
	f.fireStarted(d, "j60", firing(pipeline.FiringCron, at(60)), at(60))
	f.fireStarted(d, "b30", firing(pipeline.FiringBackfill, at(30)), at(61))
	if err := s.SetSchedulePaused(f.ctx, schedID, true, "note", at(62)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() error: %v", err)
	}

	f.s = reopen()
	f.wantAlreadyFired(d, "j60again", firing(pipeline.FiringCron, at(60)), at(70))
	f.wantAlreadyFired(d, "b30again", firing(pipeline.FiringBackfill, at(30)), at(71))
	f.wantCursor(schedID, at(60))
	if st, _ := f.scheduleState(schedID); !st.Paused || st.PauseNote != "note" {
		t.Errorf("state after reopening = %+v, want paused with its note", st)
	}
	if got, err := f.s.APISchedules(f.ctx); err != nil || len(got) != 1 || got[0].ID() != schedID {
		t.Errorf("APISchedules() after reopening = %+v, %v", got, err)
	}
	if j := f.job("j60"); j.Schedule != schedID || j.ScheduledFor == nil || !j.ScheduledFor.Equal(at(60)) {
		t.Errorf("job j60 after reopening: Schedule %q ScheduledFor %v", j.Schedule, fmtTimePtr(j.ScheduledFor))
	}
	f.fireStarted(d, "j120", firing(pipeline.FiringCron, at(120)), at(120))
	if fs := f.firings(schedID, 0); len(fs) != 3 {
		t.Errorf("firings after reopening = %+v, want 3", fs)
	}
}
