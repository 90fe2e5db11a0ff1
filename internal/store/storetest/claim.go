package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

func testClaimFIFO(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1)
	f.admitStarted(d, at(0), "j1")
	f.admitQueued(d, at(1), "j2", "j3", "j4")
	f.finish("j1", pipeline.JobSucceeded, at(2))

	res := f.claim(d, at(3))
	if got := jobIDs(res.Started); !slices.Equal(got, []string{"j2"}) {
		t.Fatalf("Claim() started %v, want [j2]", got)
	}
	if !res.NextStart.IsZero() {
		t.Errorf("Claim() NextStart = %v, want zero", res.NextStart)
	}
	// The claimed job comes back fully loaded, as stored.
	want := newJob(d, "j2", at(1))
	want.Status = pipeline.JobRunning
	want.Start = ptr(at(3))
	want.Tasks = f.job("j2").Tasks
	checkJob(t, res.Started[0], want)
	if len(res.Started[0].Tasks) != 3 {
		t.Errorf("claimed job has %d tasks, want 3", len(res.Started[0].Tasks))
	}
	checkJob(t, f.job("j2"), want)

	// With two free slots the next two start, in wait-list order.
	f.finish("j2", pipeline.JobSucceeded, at(4))
	d2 := testDefinition("p", 2)
	if got := jobIDs(f.claim(d2, at(5)).Started); !slices.Equal(got, []string{"j3", "j4"}) {
		t.Errorf("Claim(concurrency 2) started %v, want [j3 j4]", got)
	}
	if got := f.claim(d2, at(6)); len(got.Started) != 0 {
		t.Errorf("Claim() of an empty wait list started %v", jobIDs(got.Started))
	}
	f.wantState("p", 2)
}

func testClaimRespectsConcurrency(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 2)
	f.admitStarted(d, at(0), "j1", "j2")
	f.admitQueued(d, at(1), "j3")
	if got := f.claim(d, at(2)); len(got.Started) != 0 {
		t.Errorf("Claim() with all slots busy started %v", jobIDs(got.Started))
	}
	f.wantStatus("j3", pipeline.JobQueued)
}

func testClaimStartDelay(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1, startDelay(10*time.Second))
	f.admitQueued(d, at(0), "j1") // StartAfter at(10)
	f.admitQueued(d, at(5), "j2") // StartAfter at(15)

	res := f.claim(d, at(1))
	if len(res.Started) != 0 {
		t.Errorf("Claim() before the delay started %v", jobIDs(res.Started))
	}
	wantTime(t, "NextStart", res.NextStart, at(10))

	res = f.claim(d, at(10))
	if got := jobIDs(res.Started); !slices.Equal(got, []string{"j1"}) {
		t.Fatalf("Claim() at the delay started %v, want [j1]", got)
	}
	wantTimePtr(t, "j1 Start", res.Started[0].Start, ptr(at(10)))
	wantTime(t, "j1 StartAfter", res.Started[0].StartAfter, at(10))
	wantTime(t, "NextStart", res.NextStart, at(15))

	// j2's delay has elapsed but the only slot is busy: nothing to wait for.
	res = f.claim(d, at(20))
	if len(res.Started) != 0 || !res.NextStart.IsZero() {
		t.Errorf("Claim() with a busy slot = %v, NextStart %v; want nothing, zero", jobIDs(res.Started), res.NextStart)
	}
	f.finish("j1", pipeline.JobSucceeded, at(21))
	if got := jobIDs(f.claim(d, at(22)).Started); !slices.Equal(got, []string{"j2"}) {
		t.Errorf("Claim() started %v, want [j2]", got)
	}
}

// testClaimSkipsJobsStillDelayed: a job whose delay has elapsed starts even when an earlier
// job on the list still waits for its own (longer) delay.
func testClaimSkipsJobsStillDelayed(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1, startDelay(time.Second))
	late := newJob(d, "late", at(0))
	late.StartAfter = at(100)
	f.admit(d, late, at(0))
	f.admitQueued(d, at(1), "soon") // StartAfter at(2)
	res := f.claim(d, at(50))
	if got := jobIDs(res.Started); !slices.Equal(got, []string{"soon"}) {
		t.Errorf("Claim() started %v, want [soon]", got)
	}
	wantTime(t, "NextStart", res.NextStart, at(100))
	f.wantState("p", 1, "late")
}

func testClaimNothingQueued(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	res := f.claim(testDefinition("unknown", 1), at(0))
	if len(res.Started) != 0 || !res.NextStart.IsZero() {
		t.Errorf("Claim() of an unknown pipeline = %+v, want nothing", res)
	}
}

// testClaimLimit: ClaimParams.Limit bounds how many jobs a claim starts (the claiming node's
// room), the first ones of the wait list; 0 is no limit. FinishAndClaim applies it as well.
func testClaimLimit(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1)
	f.admitStarted(d, at(0), "j1")
	f.admitQueued(d, at(1), "j2", "j3", "j4", "j5", "j6")
	// The pipeline now allows five at once; the claiming node has room for two.
	claim := func(limit int, now time.Time) []string {
		t.Helper()
		res, err := f.s.Claim(f.ctx, store.ClaimParams{Pipeline: "p", Concurrency: 5, Now: now, Limit: limit})
		if err != nil {
			t.Fatalf("Claim(limit %d) error: %v", limit, err)
		}
		return jobIDs(res.Started)
	}
	if got := claim(2, at(2)); !slices.Equal(got, []string{"j2", "j3"}) {
		t.Fatalf("Claim(limit 2) started %v, want [j2 j3]", got)
	}
	f.wantState("p", 3, "j4", "j5", "j6")
	res, err := f.s.FinishAndClaim(f.ctx, store.FinishParams{JobID: "j1", Status: pipeline.JobSucceeded, End: at(3)},
		store.ClaimParams{Pipeline: "p", Concurrency: 5, Now: at(3), Limit: 1})
	if err != nil {
		t.Fatalf("FinishAndClaim(limit 1) error: %v", err)
	}
	if got := jobIDs(res.Started); !slices.Equal(got, []string{"j4"}) {
		t.Fatalf("FinishAndClaim(limit 1) started %v, want [j4]", got)
	}
	// No limit: what the concurrency allows (two more of five).
	if got := claim(0, at(4)); !slices.Equal(got, []string{"j5", "j6"}) {
		t.Fatalf("Claim(limit 0) started %v, want [j5 j6]", got)
	}
	f.wantState("p", 5)
}

// testAdmitNoStart: AdmitParams.NoStart stores the job queued even when admission would start
// it, in its place on the wait list, and a later claim starts it.
func testAdmitNoStart(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 2)
	j := newJob(d, "j1", at(0))
	res, err := f.s.Admit(f.ctx, store.AdmitParams{Job: j, Definition: d, Now: at(0), NoStart: true})
	if err != nil {
		t.Fatalf("Admit(NoStart) error: %v", err)
	}
	if res.Started || !res.Held {
		t.Fatalf("Admit(NoStart) Started = %v, Held = %v; want false, true", res.Started, res.Held)
	}
	f.wantStatus("j1", pipeline.JobQueued)
	if got := f.job("j1").Start; got != nil {
		t.Errorf("job j1 Start = %v, want nil", got)
	}
	// The next job waits behind it, as behind any waiting job: for its pipeline, not held.
	if res := f.admit(d, newJob(d, "j2", at(1)), at(1)); res.Started || res.Held {
		t.Fatalf("Admit(j2) Started = %v, Held = %v; want false, false", res.Started, res.Held)
	}
	f.wantState("p", 0, "j1", "j2")
	if got := jobIDs(f.claim(d, at(2)).Started); !slices.Equal(got, []string{"j1", "j2"}) {
		t.Fatalf("Claim() started %v, want [j1 j2]", got)
	}
	f.wantState("p", 2)
}
