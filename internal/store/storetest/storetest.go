// Package storetest is the conformance suite of store.Store: every backend runs Run, so that the
// embedded SQLite store and the PostgreSQL store have the same semantics.
package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// Run runs the conformance suite against a backend. open must return a new, empty store for
// each call and close it in t.Cleanup; the subtests run in parallel, each on its own store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) store.Store)
	}{
		{"AdmitStrategies", testAdmitStrategies},
		{"AdmitStoresJob", testAdmitStoresJob},
		{"AdmitRejectedStoresNothing", testAdmitRejectedStoresNothing},
		{"AdmitReplaced", testAdmitReplaced},
		{"AdmitDuplicateID", testAdmitDuplicateID},
		{"AdmitConcurrent", testAdmitConcurrent},
		{"AdmitIdempotencyKey", testAdmitIdempotencyKey},
		{"ClaimFIFO", testClaimFIFO},
		{"ClaimRespectsConcurrency", testClaimRespectsConcurrency},
		{"ClaimStartDelay", testClaimStartDelay},
		{"ClaimSkipsJobsStillDelayed", testClaimSkipsJobsStillDelayed},
		{"ClaimNothingQueued", testClaimNothingQueued},
		{"CancelQueuedFreesSlot", testCancelQueuedFreesSlot},
		{"CancelQueuedNotQueued", testCancelQueuedNotQueued},
		{"FinishJob", testFinishJob},
		{"FinishJobErrors", testFinishJobErrors},
		{"FinishAndClaim", testFinishAndClaim},
		{"UpdateTask", testUpdateTask},
		{"UpdateTaskOnError", testUpdateTaskOnError},
		{"UpdateTaskUnknownJob", testUpdateTaskUnknownJob},
		{"UpdateTaskAttempts", testUpdateTaskAttempts},
		{"RecoverRunning", testRecoverRunning},
		{"DeleteFinished", testDeleteFinished},
		{"JobsQuery", testJobsQuery},
		{"JobsTasks", testJobsTasks},
		{"JobsPagingWhileAdding", testJobsPagingWhileAdding},
		{"JobsUnknownCursor", testJobsUnknownCursor},
		{"EachJob", testEachJob},
		{"EachJobFrom", testEachJobFrom},
		{"JobsLongMixedList", testJobsLongMixedList},
		{"JobsAfterLateTaskUpdate", testJobsAfterLateTaskUpdate},
		{"JobUnknown", testJobUnknown},
		{"VariablesRoundTrip", testVariablesRoundTrip},
		{"TimesRoundTrip", testTimesRoundTrip},
		{"DefinitionRoundTrip", testDefinitionRoundTrip},
		{"PipelineStates", testPipelineStates},
		{"QueuedPipelines", testQueuedPipelines},
		{"CloseIdempotent", testCloseIdempotent},
		{"ImportJobs", testImportJobs},
		{"ImportJobsInvalid", testImportJobsInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open)
		})
	}
}

// testAdmitStrategies replays schedule requests against each queue strategy and checks every
// decision and the resulting wait list.
func testAdmitStrategies(t *testing.T, open func(t *testing.T) store.Store) {
	// outcome of one request: "start", "queue", or an error.
	type request struct {
		id        string
		partition string
		want      string
		wantErr   error
		// replaces lists the waiting jobs this request replaces.
		replaces []string
	}
	start := func(id string) request { return request{id: id, want: "start"} }
	queue := func(id string, replaces ...string) request { return request{id: id, want: "queue", replaces: replaces} }
	reject := func(id string, err error) request { return request{id: id, wantErr: err} }
	inPartition := func(p string, r request) request { r.partition = p; return r }

	tests := []struct {
		name        string
		def         *pipeline.Definition
		requests    []request
		wantRunning int
		wantWaiting []string
	}{
		{
			name:        "append with limit rejects when full",
			def:         testDefinition("p", 1, queueLimit(2)),
			requests:    []request{start("j1"), queue("j2"), queue("j3"), reject("j4", pipeline.ErrQueueFull)},
			wantRunning: 1,
			wantWaiting: []string{"j2", "j3"},
		},
		{
			name:        "append unbounded",
			def:         testDefinition("p", 1),
			requests:    []request{start("j1"), queue("j2"), queue("j3"), queue("j4"), queue("j5"), queue("j6")},
			wantRunning: 1,
			wantWaiting: []string{"j2", "j3", "j4", "j5", "j6"},
		},
		{
			name:        "append with concurrency 2",
			def:         testDefinition("p", 2, queueLimit(1)),
			requests:    []request{start("j1"), start("j2"), queue("j3"), reject("j4", pipeline.ErrQueueFull)},
			wantRunning: 2,
			wantWaiting: []string{"j3"},
		},
		{
			name:        "queue_limit 0 starts when a slot is free",
			def:         testDefinition("p", 1, queueLimit(0)),
			requests:    []request{start("j1"), reject("j2", pipeline.ErrNoQueue)},
			wantRunning: 1,
			wantWaiting: []string{},
		},
		{
			name:        "queue_limit 0 with concurrency 2",
			def:         testDefinition("p", 2, queueLimit(0)),
			requests:    []request{start("j1"), start("j2"), reject("j3", pipeline.ErrNoQueue)},
			wantRunning: 2,
			wantWaiting: []string{},
		},
		{
			name:        "replace with limit 1 replaces the waiting job",
			def:         testDefinition("p", 1, strategy(pipeline.QueueReplace), queueLimit(1)),
			requests:    []request{start("j1"), queue("j2"), queue("j3", "j2"), queue("j4", "j3")},
			wantRunning: 1,
			wantWaiting: []string{"j4"},
		},
		{
			name:        "replace with limit 2 replaces the last waiting job",
			def:         testDefinition("p", 1, strategy(pipeline.QueueReplace), queueLimit(2)),
			requests:    []request{start("j1"), queue("j2"), queue("j3"), queue("j4", "j3"), queue("j5", "j4")},
			wantRunning: 1,
			wantWaiting: []string{"j2", "j5"},
		},
		{
			name:        "replace unbounded never replaces",
			def:         testDefinition("p", 1, strategy(pipeline.QueueReplace)),
			requests:    []request{start("j1"), queue("j2"), queue("j3"), queue("j4"), queue("j5")},
			wantRunning: 1,
			wantWaiting: []string{"j2", "j3", "j4", "j5"},
		},
		{
			name: "partitioned_replace limit 1 appends the new job at the end",
			def:  testDefinition("p", 1, partitionLimit(1)),
			requests: []request{
				inPartition("a", start("j1")),
				inPartition("a", queue("j2")),
				inPartition("b", queue("j3")),
				inPartition("a", queue("j4", "j2")),
				queue("j5"),
				inPartition("b", queue("j6", "j3")),
				queue("j7", "j5"),
			},
			wantRunning: 1,
			wantWaiting: []string{"j4", "j6", "j7"},
		},
		{
			name: "partitioned_replace limit 2 with global concurrency 2",
			def:  testDefinition("p", 2, partitionLimit(2)),
			requests: []request{
				inPartition("a", start("j1")),
				inPartition("b", start("j2")),
				// Both slots are busy although partition c has never run: concurrency is global.
				inPartition("c", queue("j3")),
				inPartition("a", queue("j4")),
				inPartition("a", queue("j5")),
				inPartition("b", queue("j6")),
				inPartition("a", queue("j7", "j5")),
			},
			wantRunning: 2,
			wantWaiting: []string{"j3", "j4", "j6", "j7"},
		},
		{
			name:        "start_delay queues even an idle pipeline",
			def:         testDefinition("p", 2, startDelay(10*time.Second)),
			requests:    []request{queue("j1"), queue("j2")},
			wantRunning: 0,
			wantWaiting: []string{"j1", "j2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, open)
			for i, r := range tt.requests {
				// The request is admitted a little after the job was created: Start and End
				// are the admission's time.
				now := at(i).Add(time.Millisecond)
				j := newJob(tt.def, r.id, at(i))
				j.QueuePartition = r.partition
				res, err := f.tryAdmit(tt.def, j, now)
				if r.wantErr != nil {
					if !errors.Is(err, r.wantErr) {
						t.Fatalf("Admit(%s) error = %v, want %v", r.id, err, r.wantErr)
					}
					f.wantNoJob(r.id)
					continue
				}
				if err != nil {
					t.Fatalf("Admit(%s) error: %v", r.id, err)
				}
				if res.Started != (r.want == "start") {
					t.Errorf("Admit(%s) Started = %v, want %v", r.id, res.Started, r.want == "start")
				}
				if !slices.Equal(res.Replaced, r.replaces) {
					t.Errorf("Admit(%s) Replaced = %v, want %v", r.id, res.Replaced, r.replaces)
				}
				got := f.job(r.id)
				if r.want == "start" {
					if got.Status != pipeline.JobRunning {
						t.Errorf("job %s status = %q, want %q", r.id, got.Status, pipeline.JobRunning)
					}
					wantTimePtr(t, "job "+r.id+" Start", got.Start, &now)
				} else {
					if got.Status != pipeline.JobQueued {
						t.Errorf("job %s status = %q, want %q", r.id, got.Status, pipeline.JobQueued)
					}
					wantTimePtr(t, "job "+r.id+" Start", got.Start, nil)
				}
				for _, old := range r.replaces {
					rj := f.job(old)
					if rj.Status != pipeline.JobReplaced || rj.ReplacedBy != r.id {
						t.Errorf("replaced job %s status %q, ReplacedBy %q; want %q, %q",
							old, rj.Status, rj.ReplacedBy, pipeline.JobReplaced, r.id)
					}
					wantTimePtr(t, "replaced job "+old+" End", rj.End, &now)
				}
			}
			f.wantState(tt.def.Name, tt.wantRunning, tt.wantWaiting...)
		})
	}
}

// testAdmitStoresJob checks that every field given to Admit is stored and read back.
func testAdmitStoresJob(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("deploy", 1, startDelay(30*time.Second))
	j := newJob(d, "job-1", at(0))
	j.User = "alice"
	j.QueuePartition = "customer-42"
	j.Variables = map[string]any{"branch": "main", "count": json.Number("3")}
	res := f.admit(d, j, at(1))
	if res.Started || len(res.Replaced) != 0 {
		t.Errorf("Admit() = %+v, want queued without replacements", res)
	}

	want := *j
	want.Status = pipeline.JobQueued
	want.Tasks = []pipeline.Task{
		{Name: "build", Status: pipeline.TaskWaiting, Attempt: 1},
		{Name: "test", Status: pipeline.TaskWaiting, DependsOn: []string{"build"}, Attempt: 1},
		{Name: "deploy", Status: pipeline.TaskWaiting, DependsOn: []string{"test"}, Attempt: 1},
	}
	checkJob(t, f.job("job-1"), &want)
	jobs := f.list(store.JobQuery{})
	if len(jobs) != 1 {
		t.Fatalf("Jobs() returned %d jobs, want 1", len(jobs))
	}
	checkJob(t, jobs[0], withoutDefinition(&want))
}

func testAdmitRejectedStoresNothing(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1, queueLimit(0))
	f.admitStarted(d, at(0), "j1")
	if _, err := f.tryAdmit(d, newJob(d, "j2", at(1)), at(1)); !errors.Is(err, pipeline.ErrNoQueue) {
		t.Fatalf("Admit(j2) error = %v, want %v", err, pipeline.ErrNoQueue)
	}
	f.wantNoJob("j2")
	if got := jobIDs(f.list(store.JobQuery{})); !slices.Equal(got, []string{"j1"}) {
		t.Errorf("Jobs() = %v, want [j1]", got)
	}
	// The slot frees when j1 ends: the next request starts at once.
	f.finish("j1", pipeline.JobSucceeded, at(2))
	f.admitStarted(d, at(3), "j3")
}

// testAdmitReplaced checks everything about a job that a newer one replaced.
func testAdmitReplaced(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1, strategy(pipeline.QueueReplace), queueLimit(1))
	f.admitStarted(d, at(0), "j1")
	f.admitQueued(d, at(1), "j2")
	res := f.admit(d, newJob(d, "j3", at(2)), at(2))
	if res.Started || !slices.Equal(res.Replaced, []string{"j2"}) {
		t.Fatalf("Admit(j3) = %+v, want queued replacing [j2]", res)
	}
	j2 := f.job("j2")
	if j2.Status != pipeline.JobReplaced || j2.ReplacedBy != "j3" {
		t.Errorf("j2 status %q ReplacedBy %q, want %q %q", j2.Status, j2.ReplacedBy, pipeline.JobReplaced, "j3")
	}
	wantTimePtr(t, "j2 End", j2.End, ptr(at(2)))
	wantTimePtr(t, "j2 Start", j2.Start, nil)
	if !j2.Canceled() || j2.Completed() {
		t.Errorf("j2 Canceled() = %v, Completed() = %v; want true, false", j2.Canceled(), j2.Completed())
	}
	f.wantTaskStatuses("j2", pipeline.TaskSkipped, pipeline.TaskSkipped, pipeline.TaskSkipped)
	f.wantState("p", 1, "j3")
	// The replaced job never starts.
	f.finish("j1", pipeline.JobSucceeded, at(3))
	if got := jobIDs(f.claim(d, at(4)).Started); !slices.Equal(got, []string{"j3"}) {
		t.Errorf("Claim() started %v, want [j3]", got)
	}
	f.wantStatus("j2", pipeline.JobReplaced)
}

func testAdmitDuplicateID(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1)
	f.admitStarted(d, at(0), "j1")
	if _, err := f.tryAdmit(d, newJob(d, "j1", at(1)), at(1)); err == nil {
		t.Fatal("Admit() of an existing ID succeeded, want an error")
	}
	f.wantState("p", 1)
}

// testAdmitConcurrent sends 20 requests at once: admission must be serialised per pipeline.
func testAdmitConcurrent(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 2, queueLimit(5))
	const n = 20
	type outcome struct {
		started bool
		err     error
	}
	outcomes := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("j%02d", i)
			res, err := f.tryAdmit(d, newJob(d, id, at(0)), at(0))
			outcomes[i] = outcome{res.Started, err}
		})
	}
	wg.Wait()
	var started, queued, full int
	for i, o := range outcomes {
		switch {
		case errors.Is(o.err, pipeline.ErrQueueFull):
			full++
			f.wantNoJob(fmt.Sprintf("j%02d", i))
		case o.err != nil:
			t.Errorf("Admit(j%02d) error: %v", i, o.err)
		case o.started:
			started++
		default:
			queued++
		}
	}
	if started != 2 || queued != 5 || full != n-7 {
		t.Errorf("started %d, queued %d, rejected %d; want 2, 5, %d", started, queued, full, n-7)
	}
	st := f.state("p")
	if st.Running != 2 || len(st.Waiting) != 5 {
		t.Errorf("state running %d waiting %d, want 2 and 5", st.Running, len(st.Waiting))
	}
}

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

func testCancelQueuedFreesSlot(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1, queueLimit(1))
	f.admitStarted(d, at(0), "j1")
	f.admitQueued(d, at(1), "j2")
	if _, err := f.tryAdmit(d, newJob(d, "j3", at(2)), at(2)); !errors.Is(err, pipeline.ErrQueueFull) {
		t.Fatalf("Admit(j3) error = %v, want %v", err, pipeline.ErrQueueFull)
	}

	before, err := f.s.CancelQueued(f.ctx, "j2", at(3))
	if err != nil || before != pipeline.JobQueued {
		t.Fatalf("CancelQueued(j2) = %q, %v; want %q, nil", before, err, pipeline.JobQueued)
	}
	j2 := f.job("j2")
	if j2.Status != pipeline.JobCanceled {
		t.Errorf("j2 status = %q, want %q", j2.Status, pipeline.JobCanceled)
	}
	wantTimePtr(t, "j2 End", j2.End, ptr(at(3)))
	wantTimePtr(t, "j2 Start", j2.Start, nil)
	f.wantTaskStatuses("j2", pipeline.TaskSkipped, pipeline.TaskSkipped, pipeline.TaskSkipped)
	f.wantState("p", 1)

	// The wait-list place is free again, and the canceled job never starts.
	f.admitQueued(d, at(4), "j3")
	f.finish("j1", pipeline.JobSucceeded, at(5))
	if got := jobIDs(f.claim(d, at(6)).Started); !slices.Equal(got, []string{"j3"}) {
		t.Errorf("Claim() started %v, want [j3]", got)
	}
	f.wantStatus("j2", pipeline.JobCanceled)
}

func testCancelQueuedNotQueued(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1)
	f.admitStarted(d, at(0), "done")
	f.finish("done", pipeline.JobSucceeded, at(1))
	f.admitStarted(d, at(2), "running")
	f.admitQueued(d, at(2), "queued")
	if _, err := f.s.CancelQueued(f.ctx, "queued", at(3)); err != nil {
		t.Fatalf("CancelQueued(queued) error: %v", err)
	}

	tests := []struct {
		id   string
		want pipeline.JobStatus
	}{
		{"running", pipeline.JobRunning},
		{"done", pipeline.JobSucceeded},
		{"queued", pipeline.JobCanceled}, // a second cancel
	}
	for _, tt := range tests {
		before := f.job(tt.id)
		got, err := f.s.CancelQueued(f.ctx, tt.id, at(10))
		if err != nil || got != tt.want {
			t.Errorf("CancelQueued(%s) = %q, %v; want %q, nil", tt.id, got, err, tt.want)
		}
		checkJob(t, f.job(tt.id), before)
	}
	if _, err := f.s.CancelQueued(f.ctx, "nope", at(10)); !errors.Is(err, pipeline.ErrJobNotFound) {
		t.Errorf("CancelQueued(nope) error = %v, want %v", err, pipeline.ErrJobNotFound)
	}
}

func testFinishJob(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name      string
		params    store.FinishParams
		wantTasks []pipeline.TaskStatus
	}{
		{
			name: "canceled: pending skipped, running canceled",
			params: store.FinishParams{Status: pipeline.JobCanceled, LastError: "canceled by request",
				PendingTasks: pipeline.TaskSkipped, RunningTasks: pipeline.TaskCanceled},
			wantTasks: []pipeline.TaskStatus{pipeline.TaskDone, pipeline.TaskCanceled, pipeline.TaskSkipped},
		},
		{
			name: "failed with other task statuses",
			params: store.FinishParams{Status: pipeline.JobFailed, LastError: "exit status 1",
				PendingTasks: pipeline.TaskCanceled, RunningTasks: pipeline.TaskError},
			wantTasks: []pipeline.TaskStatus{pipeline.TaskDone, pipeline.TaskError, pipeline.TaskCanceled},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, open)
			d := testDefinition("p", 1)
			f.admitStarted(d, at(0), "j1")
			f.updateTask("j1", pipeline.Task{Name: "build", Status: pipeline.TaskDone, Start: ptr(at(1)), End: ptr(at(2))})
			f.updateTask("j1", pipeline.Task{Name: "test", DependsOn: []string{"build"}, Status: pipeline.TaskRunning, Start: ptr(at(2))})
			p := tt.params
			p.JobID, p.End = "j1", at(5)
			if err := f.s.FinishJob(f.ctx, p); err != nil {
				t.Fatalf("FinishJob() error: %v", err)
			}
			j := f.job("j1")
			if j.Status != p.Status || j.LastError != p.LastError {
				t.Errorf("job status %q LastError %q, want %q %q", j.Status, j.LastError, p.Status, p.LastError)
			}
			wantTimePtr(t, "End", j.End, ptr(at(5)))
			wantTimePtr(t, "Start", j.Start, ptr(at(0)))
			if !j.Completed() {
				t.Errorf("Completed() = false, want true")
			}
			f.wantTaskStatuses("j1", tt.wantTasks...)
			// A task that had ended keeps its record.
			wantTimePtr(t, "build End", j.Tasks[0].End, ptr(at(2)))
			f.wantState("p", 0)
		})
	}
}

func testFinishJobErrors(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1, strategy(pipeline.QueueReplace), queueLimit(1))
	f.admitStarted(d, at(0), "done")
	f.finish("done", pipeline.JobSucceeded, at(1))
	f.admitStarted(d, at(2), "running")
	f.admitQueued(d, at(3), "replaced")
	f.admitQueued(d, at(4), "waiting")
	if _, err := f.s.CancelQueued(f.ctx, "waiting", at(5)); err != nil {
		t.Fatalf("CancelQueued() error: %v", err)
	}

	tests := []struct {
		id      string
		wantErr error
	}{
		{"done", pipeline.ErrJobFinished},
		{"replaced", pipeline.ErrJobFinished},
		{"waiting", pipeline.ErrJobFinished}, // canceled while queued
		{"nope", pipeline.ErrJobNotFound},
	}
	for _, tt := range tests {
		var before *pipeline.Job
		if tt.wantErr != pipeline.ErrJobNotFound {
			before = f.job(tt.id)
		}
		err := f.s.FinishJob(f.ctx, store.FinishParams{JobID: tt.id, Status: pipeline.JobFailed, End: at(9),
			LastError: "late", PendingTasks: pipeline.TaskSkipped, RunningTasks: pipeline.TaskCanceled})
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("FinishJob(%s) error = %v, want %v", tt.id, err, tt.wantErr)
		}
		if before != nil {
			checkJob(t, f.job(tt.id), before)
		}
	}
	f.wantStatus("running", pipeline.JobRunning)
}

func testUpdateTask(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1)
	f.admitStarted(d, at(0), "j1")

	build := pipeline.Task{Name: "build", Status: pipeline.TaskDone, Start: ptr(at(1)), End: ptr(at(2))}
	f.updateTask("j1", pipeline.Task{Name: "build", Status: pipeline.TaskRunning, Start: ptr(at(1))})
	f.updateTask("j1", build)
	if j := f.job("j1"); j.Errored {
		t.Errorf("Errored = true after a successful task, want false")
	}

	test := pipeline.Task{Name: "test", DependsOn: []string{"build"}, Status: pipeline.TaskError,
		Start: ptr(at(2)), End: ptr(at(3)), ExitCode: 42, Errored: true, Error: "exit status 42"}
	f.updateTask("j1", test)
	j := f.job("j1")
	if !j.Errored {
		t.Errorf("Errored = false after an errored task, want true")
	}
	want := []pipeline.Task{build, test, {Name: "deploy", DependsOn: []string{"test"}, Status: pipeline.TaskWaiting, Attempt: 1}}
	if len(j.Tasks) != len(want) {
		t.Fatalf("tasks = %+v, want %+v", j.Tasks, want)
	}
	for i := range want {
		checkTask(t, "j1", j.Tasks[i], want[i])
	}

	// Errored stays set: a later task that succeeds does not clear it. The whole record is
	// written, DependsOn included.
	deploy := pipeline.Task{Name: "deploy", DependsOn: []string{"build", "test"}, Status: pipeline.TaskSkipped}
	f.updateTask("j1", deploy)
	j = f.job("j1")
	if !j.Errored || j.Status != pipeline.JobRunning {
		t.Errorf("job Errored %v status %q, want true %q", j.Errored, j.Status, pipeline.JobRunning)
	}
	checkTask(t, "j1", j.Tasks[2], deploy)
}

func testUpdateTaskOnError(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1)
	f.admitStarted(d, at(0), "j1")
	f.updateTask("j1", pipeline.Task{Name: "build", Status: pipeline.TaskError, Errored: true, ExitCode: 1, Error: "exit status 1"})
	onError := pipeline.Task{Name: pipeline.OnErrorTaskName, Status: pipeline.TaskRunning, Start: ptr(at(4))}
	f.updateTask("j1", onError)
	names := func() []string {
		var ns []string
		for _, t := range f.job("j1").Tasks {
			ns = append(ns, t.Name)
		}
		return ns
	}
	wantNames := append(slices.Clone(taskNames), pipeline.OnErrorTaskName)
	if got := names(); !slices.Equal(got, wantNames) {
		t.Fatalf("task names = %v, want %v", got, wantNames)
	}
	// Updating it again keeps its place.
	onError.Status, onError.End = pipeline.TaskDone, ptr(at(5))
	f.updateTask("j1", onError)
	if got := names(); !slices.Equal(got, wantNames) {
		t.Errorf("task names after update = %v, want %v", got, wantNames)
	}
	checkTask(t, "j1", f.job("j1").Tasks[3], onError)
	// The list shows it last too.
	jobs := f.list(store.JobQuery{})
	if len(jobs) != 1 || len(jobs[0].Tasks) != 4 || jobs[0].Tasks[3].Name != pipeline.OnErrorTaskName {
		t.Errorf("Jobs() tasks = %+v, want on_error last", jobs[0].Tasks)
	}
}

func testUpdateTaskUnknownJob(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	for _, errored := range []bool{false, true} {
		err := f.s.UpdateTask(f.ctx, "nope", pipeline.Task{Name: "build", Status: pipeline.TaskDone, Errored: errored})
		if !errors.Is(err, pipeline.ErrJobNotFound) {
			t.Errorf("UpdateTask(nope, errored %v) error = %v, want %v", errored, err, pipeline.ErrJobNotFound)
		}
	}
	f.wantNoJob("nope")
}

func testRecoverRunning(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 2)
	other := testDefinition("other", 1)
	f.admitStarted(d, at(0), "r1", "done")
	f.finish("done", pipeline.JobSucceeded, at(1))
	f.admitStarted(d, at(2), "r2")
	f.admitQueued(d, at(3), "queued")
	f.admitStarted(other, at(4), "r3")
	f.updateTask("r1", pipeline.Task{Name: "build", Status: pipeline.TaskDone, Start: ptr(at(1)), End: ptr(at(2))})
	f.updateTask("r1", pipeline.Task{Name: "test", DependsOn: []string{"build"}, Status: pipeline.TaskRunning, Start: ptr(at(2))})
	doneBefore, queuedBefore := f.job("done"), f.job("queued")

	const reason = "the server stopped while the job was running"
	ids, err := f.s.RecoverRunning(f.ctx, reason, at(10))
	if err != nil {
		t.Fatalf("RecoverRunning() error: %v", err)
	}
	slices.Sort(ids)
	if want := []string{"r1", "r2", "r3"}; !slices.Equal(ids, want) {
		t.Errorf("RecoverRunning() = %v, want %v", ids, want)
	}
	for _, id := range []string{"r1", "r2", "r3"} {
		j := f.job(id)
		if j.Status != pipeline.JobFailed || j.LastError != reason || !j.Errored {
			t.Errorf("job %s status %q LastError %q Errored %v; want %q %q true", id, j.Status, j.LastError, j.Errored, pipeline.JobFailed, reason)
		}
		wantTimePtr(t, "job "+id+" End", j.End, ptr(at(10)))
		if !j.Completed() {
			t.Errorf("job %s Completed() = false, want true", id)
		}
	}
	f.wantTaskStatuses("r1", pipeline.TaskDone, pipeline.TaskError, pipeline.TaskSkipped)
	if tk := f.job("r1").Tasks[1]; tk.Error != reason || !tk.Errored {
		t.Errorf("running task after recovery: Error %q Errored %v, want %q true", tk.Error, tk.Errored, reason)
	}
	f.wantTaskStatuses("r2", pipeline.TaskSkipped, pipeline.TaskSkipped, pipeline.TaskSkipped)
	checkJob(t, f.job("done"), doneBefore)
	checkJob(t, f.job("queued"), queuedBefore)
	f.wantState("p", 0, "queued")

	if ids, err := f.s.RecoverRunning(f.ctx, reason, at(11)); err != nil || len(ids) != 0 {
		t.Errorf("second RecoverRunning() = %v, %v; want nothing", ids, err)
	}
}

func testDeleteFinished(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name        string
		params      store.RetentionParams
		wantDeleted []string
	}{
		{"nothing asked", store.RetentionParams{}, nil},
		{"ended before", store.RetentionParams{EndedBefore: at(3600*2 + 1800)}, []string{"f1", "f2"}},
		{"ended before the first", store.RetentionParams{EndedBefore: at(3600)}, nil},
		{"keep newest 1", store.RetentionParams{KeepNewest: 1}, []string{"f1", "f2", "f3"}},
		{"keep newest 3", store.RetentionParams{KeepNewest: 3}, []string{"f1"}},
		{"keep more than there are", store.RetentionParams{KeepNewest: 10}, nil},
		{"whichever comes first", store.RetentionParams{EndedBefore: at(3600*3 + 1800), KeepNewest: 3}, []string{"f1", "f2", "f3"}},
		{"everything finished", store.RetentionParams{EndedBefore: at(100000)}, []string{"f1", "f2", "f3", "f4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, open)
			d := testDefinition("p", 5)
			other := testDefinition("other", 1)
			// Running and queued jobs are the oldest, to show that age never deletes them.
			f.admitStarted(d, at(0), "running")
			f.admitStarted(d, at(1), "f1", "f2", "f3", "f4")
			f.admitQueued(d, at(2), "queued")
			f.admitStarted(other, at(0), "o1")
			f.finish("o1", pipeline.JobSucceeded, at(1))
			for i, id := range []string{"f1", "f2", "f3", "f4"} {
				f.finish(id, []pipeline.JobStatus{pipeline.JobSucceeded, pipeline.JobFailed, pipeline.JobCanceled, pipeline.JobSucceeded}[i], at(3600*(i+1)))
			}

			p := tt.params
			p.Pipeline = "p"
			got, err := f.s.DeleteFinished(f.ctx, p)
			if err != nil {
				t.Fatalf("DeleteFinished() error: %v", err)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.wantDeleted) {
				t.Errorf("DeleteFinished(%+v) = %v, want %v", p, got, tt.wantDeleted)
			}
			for _, id := range tt.wantDeleted {
				f.wantNoJob(id)
			}
			want := []string{"o1", "queued"}
			for _, id := range []string{"f4", "f3", "f2", "f1"} {
				if !slices.Contains(tt.wantDeleted, id) {
					want = append(want, id)
				}
			}
			want = append(want, "running")
			if got := jobIDs(f.list(store.JobQuery{})); !slices.Equal(got, want) {
				t.Errorf("Jobs() after retention = %v, want %v", got, want)
			}
			f.wantState("p", 1, "queued")
		})
	}
	t.Run("replaced jobs", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		d := testDefinition("p", 1, strategy(pipeline.QueueReplace), queueLimit(1))
		f.admitStarted(d, at(0), "running")
		f.admitQueued(d, at(1), "replaced")
		f.admitQueued(d, at(2), "queued")
		got, err := f.s.DeleteFinished(f.ctx, store.RetentionParams{Pipeline: "p", KeepNewest: 1, EndedBefore: at(1000)})
		if err != nil || !slices.Equal(got, []string{"replaced"}) {
			t.Errorf("DeleteFinished() = %v, %v; want [replaced]", got, err)
		}
		f.wantState("p", 1, "queued")
	})
}

// jobsFixture stores jobs of two pipelines, created alternately:
// a1 b1 a2 b2 a3 b3 a4 (a4 queued, a1 and b1 finished, the others running).
func jobsFixture(t *testing.T, open func(t *testing.T) store.Store) *fixture {
	t.Helper()
	f := newFixture(t, open)
	a := testDefinition("a", 3)
	b := testDefinition("b", 5)
	f.admitStarted(a, at(1), "a1")
	f.admitStarted(b, at(2), "b1")
	f.admitStarted(a, at(3), "a2")
	f.admitStarted(b, at(4), "b2")
	f.admitStarted(a, at(5), "a3")
	f.admitStarted(b, at(6), "b3")
	f.admitQueued(a, at(7), "a4")
	f.finish("a1", pipeline.JobSucceeded, at(8))
	f.finish("b1", pipeline.JobFailed, at(9))
	return f
}

func testJobsQuery(t *testing.T, open func(t *testing.T) store.Store) {
	f := jobsFixture(t, open)
	tests := []struct {
		name string
		q    store.JobQuery
		want []string
	}{
		{"all newest first", store.JobQuery{}, []string{"a4", "b3", "a3", "b2", "a2", "b1", "a1"}},
		{"pipeline", store.JobQuery{Pipeline: "a"}, []string{"a4", "a3", "a2", "a1"}},
		{"unknown pipeline", store.JobQuery{Pipeline: "zzz"}, []string{}},
		{"status", store.JobQuery{Statuses: []pipeline.JobStatus{pipeline.JobQueued}}, []string{"a4"}},
		{"statuses", store.JobQuery{Statuses: []pipeline.JobStatus{pipeline.JobSucceeded, pipeline.JobFailed}}, []string{"b1", "a1"}},
		{"pipeline and status", store.JobQuery{Pipeline: "b", Statuses: []pipeline.JobStatus{pipeline.JobRunning}}, []string{"b3", "b2"}},
		{"limit", store.JobQuery{Limit: 3}, []string{"a4", "b3", "a3"}},
		{"before", store.JobQuery{Before: "a3"}, []string{"b2", "a2", "b1", "a1"}},
		{"before the oldest", store.JobQuery{Before: "a1"}, []string{}},
		{"before with limit", store.JobQuery{Before: "b3", Limit: 2}, []string{"a3", "b2"}},
		{"before with pipeline", store.JobQuery{Before: "a3", Pipeline: "b"}, []string{"b2", "b1"}},
		{"before with pipeline, status and limit", store.JobQuery{Before: "a4", Pipeline: "a",
			Statuses: []pipeline.JobStatus{pipeline.JobRunning, pipeline.JobSucceeded}, Limit: 2}, []string{"a3", "a2"}},
		{"without tasks", store.JobQuery{WithoutTasks: true, Limit: 2}, []string{"a4", "b3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fixture{t: t, ctx: f.ctx, s: f.s}
			jobs := f.list(tt.q)
			if got := jobIDs(jobs); !slices.Equal(got, tt.want) {
				t.Errorf("Jobs(%+v) = %v, want %v", tt.q, got, tt.want)
			}
			for _, j := range jobs {
				if tt.q.WithoutTasks {
					if len(j.Tasks) != 0 {
						t.Errorf("job %s has %d tasks with WithoutTasks", j.ID, len(j.Tasks))
					}
					continue
				}
				checkJob(t, j, withoutDefinition(f.job(j.ID)))
			}
		})
	}
}

func testJobsTasks(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 10)
	// A second pipeline with a different task set interleaves its jobs.
	// Three of its jobs after each job of p make p's jobs sparse in creation order, while the
	// newest jobs of other are contiguous: listing exercises both kinds of task loading.
	other := &pipeline.Definition{Name: "other", Concurrency: 100, QueueStrategy: pipeline.QueueAppend,
		Tasks: map[string]pipeline.TaskDefinition{"only": {Name: "only", Script: []string{"true"}}}}
	var want []string
	for i := range 5 {
		f.admitStarted(d, at(i), fmt.Sprintf("p%d", i))
		for k := range 3 {
			f.admitStarted(other, at(i), fmt.Sprintf("o%d-%d", i, k))
		}
		want = append(want, fmt.Sprintf("p%d", i))
	}
	f.updateTask("p2", pipeline.Task{Name: pipeline.OnErrorTaskName, Status: pipeline.TaskRunning})
	slices.Reverse(want)
	for _, q := range []store.JobQuery{{Pipeline: "p"}, {}, {Limit: 3}, {Pipeline: "other", Limit: 2}} {
		for _, j := range f.list(q) {
			wantNames := taskNames
			switch {
			case j.Pipeline == "other":
				wantNames = []string{"only"}
			case j.ID == "p2":
				wantNames = append(slices.Clone(taskNames), pipeline.OnErrorTaskName)
			}
			var got []string
			for _, tk := range j.Tasks {
				got = append(got, tk.Name)
			}
			if !slices.Equal(got, wantNames) {
				t.Errorf("Jobs(%+v): job %s tasks = %v, want %v", q, j.ID, got, wantNames)
			}
		}
	}
	if got := jobIDs(f.list(store.JobQuery{Pipeline: "p"})); !slices.Equal(got, want) {
		t.Errorf("Jobs(p) = %v, want %v", got, want)
	}
	// A caller may append to a returned task list without changing another job's tasks.
	jobs := f.list(store.JobQuery{Pipeline: "p"})
	jobs[1].Tasks = append(jobs[1].Tasks, pipeline.Task{Name: "extra"})
	if jobs[0].Tasks[0].Name != "build" {
		t.Errorf("appending to one job's tasks changed another job's tasks: %+v", jobs[0].Tasks)
	}
}

// testJobsPagingWhileAdding pages through the list with the Before cursor while new jobs
// arrive: every job present at the start is seen exactly once, in order.
func testJobsPagingWhileAdding(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 100)
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("j%03d", i)
		f.admitStarted(d, at(i), id)
		want = append(want, id)
	}
	slices.Reverse(want)

	var got []string
	before, added := "", 0
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatalf("paging does not end; seen %v", got)
		}
		jobs := f.list(store.JobQuery{Limit: 10, Before: before, WithoutTasks: page%2 == 1})
		if len(jobs) == 0 {
			break
		}
		got = append(got, jobIDs(jobs)...)
		before = jobs[len(jobs)-1].ID
		for range 3 {
			f.admitStarted(d, at(100+added), fmt.Sprintf("new%03d", added))
			added++
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged IDs = %v, want %v", got, want)
	}
}

func testJobsUnknownCursor(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	f.admitStarted(testDefinition("p", 1), at(0), "j1")
	if jobs, err := f.s.Jobs(f.ctx, store.JobQuery{Before: "nope"}); !errors.Is(err, pipeline.ErrJobNotFound) {
		t.Errorf("Jobs(Before: nope) = %v, %v; want error %v", jobIDs(jobs), err, pipeline.ErrJobNotFound)
	}
}

func testJobUnknown(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	f.wantNoJob("nope")
	if jobs := f.list(store.JobQuery{}); len(jobs) != 0 {
		t.Errorf("Jobs() of an empty store = %v, want none", jobIDs(jobs))
	}
}

func testVariablesRoundTrip(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		vars map[string]any
	}{
		{"nil", nil},
		{"empty", map[string]any{}},
		{"numbers keep their form", map[string]any{
			"big":      json.Number("12345678901"),
			"huge":     json.Number("123456789012345678901234567890"),
			"float":    json.Number("1.50"),
			"exponent": json.Number("1e3"),
			"negative": json.Number("-7"),
		}},
		{"every JSON type", map[string]any{
			"string":  `quote " backslash \ newline` + "\n" + ` unicode ☃ <html>`,
			"bool":    true,
			"null":    nil,
			"list":    []any{json.Number("1"), "two", false, nil, []any{}, map[string]any{}},
			"nested":  map[string]any{"id": json.Number("12345678901"), "tags": []any{"a", "b"}},
			"empty":   "",
			"unicode": "日本語",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, open)
			d := testDefinition("p", 1)
			j := newJob(d, "j1", at(0))
			j.Variables = tt.vars
			f.admit(d, j, at(0))
			if got := f.job("j1").Variables; !reflect.DeepEqual(got, tt.vars) {
				t.Errorf("Job() Variables = %#v, want %#v", got, tt.vars)
			}
			if got := f.list(store.JobQuery{})[0].Variables; !reflect.DeepEqual(got, tt.vars) {
				t.Errorf("Jobs() Variables = %#v, want %#v", got, tt.vars)
			}
		})
	}
}

// testTimesRoundTrip stores times of other zones with nanoseconds: they come back as the same
// instants, in UTC.
func testTimesRoundTrip(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	created := time.Date(2024, 2, 29, 23, 59, 59, 999999999, zone)
	startAfter := created.Add(1500 * time.Millisecond)
	now := time.Date(2024, 3, 1, 1, 2, 3, 1, zone)
	end := now.Add(time.Hour + time.Nanosecond)
	d := testDefinition("p", 1, startDelay(1500*time.Millisecond))
	j := newJob(d, "j1", created)
	f.admit(d, j, now)
	res := f.claim(d, startAfter)
	if len(res.Started) != 1 {
		t.Fatalf("Claim() started %v, want [j1]", jobIDs(res.Started))
	}
	taskStart := time.Now() // with a monotonic reading, which must not matter
	f.updateTask("j1", pipeline.Task{Name: "build", Status: pipeline.TaskDone, Start: &taskStart, End: &end})
	f.finish("j1", pipeline.JobSucceeded, end)

	for _, got := range []*pipeline.Job{f.job("j1"), f.list(store.JobQuery{})[0]} {
		wantTime(t, "Created", got.Created, created)
		wantTime(t, "StartAfter", got.StartAfter, startAfter)
		wantTimePtr(t, "Start", got.Start, &startAfter)
		wantTimePtr(t, "End", got.End, &end)
		wantTimePtr(t, "task Start", got.Tasks[0].Start, &taskStart)
		wantTimePtr(t, "task End", got.Tasks[0].End, &end)
		wantTimePtr(t, "waiting task Start", got.Tasks[1].Start, nil)
	}
	// Zero times stay zero.
	d0 := testDefinition("q", 1)
	f.admitStarted(d0, at(0), "j2")
	wantTime(t, "StartAfter without delay", f.job("j2").StartAfter, time.Time{})
}

func testDefinitionRoundTrip(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	limit := 3
	d := &pipeline.Definition{
		Name:                             "release",
		SourceFile:                       "ci/pipelines.yml",
		Concurrency:                      2,
		QueueLimit:                       &limit,
		QueueStrategy:                    pipeline.QueueReplace,
		StartDelay:                       1500 * time.Millisecond,
		ContinueRunningTasksAfterFailure: true,
		RetentionPeriod:                  48 * time.Hour,
		RetentionCount:                   10,
		Timeout:                          time.Hour,
		Env:                              map[string]string{"GOFLAGS": "-mod=mod", "EMPTY": ""},
		Tasks: map[string]pipeline.TaskDefinition{
			"build": {Name: "build", Script: []string{"make build", "echo {{ .version }}"}, Env: map[string]string{"CGO_ENABLED": "0"}},
			"test": {Name: "test", Script: []string{"go test ./..."}, DependsOn: []string{"build"}, AllowFailure: true,
				Timeout: 10 * time.Minute, Retry: &pipeline.RetryPolicy{Attempts: 3, Delay: time.Second, Backoff: 1.5, MaxDelay: time.Minute}},
		},
		OnError: &pipeline.TaskDefinition{Name: pipeline.OnErrorTaskName, Script: []string{"notify {{ .failedTaskName }}"}},
	}
	f.admit(d, newJob(d, "j1", at(0)), at(0))
	// A job without a snapshot stays without one.
	plain := testDefinition("plain", 1)
	noDef := newJob(plain, "j2", at(1))
	noDef.Definition = nil
	f.admit(plain, noDef, at(1))

	if got := f.job("j1").Definition; !reflect.DeepEqual(got, d) {
		t.Errorf("Job() Definition = %+v, want %+v", got, d)
	}
	if got := f.job("j2").Definition; got != nil {
		t.Errorf("Job() Definition = %+v, want nil", got)
	}
	// Lists leave the definition out.
	jobs := f.list(store.JobQuery{Pipeline: "release"})
	if len(jobs) != 1 || jobs[0].Definition != nil {
		t.Errorf("Jobs() = %d jobs, Definition %+v; want 1 job without definition", len(jobs), jobs[0].Definition)
	}
}

func testPipelineStates(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	a := testDefinition("a", 1, startDelay(time.Minute), partitionLimit(5))
	b := testDefinition("b", 2)
	idle := testDefinition("idle", 1)
	ja := newJob(a, "a1", at(0))
	ja.QueuePartition = "x"
	f.admit(a, ja, at(0))
	f.admitQueued(a, at(10), "a2")
	f.admitStarted(b, at(0), "b1", "b2")
	f.admitQueued(b, at(1), "b3")
	f.admitStarted(idle, at(0), "i1")
	f.finish("i1", pipeline.JobSucceeded, at(1))

	states, err := f.s.PipelineStates(f.ctx)
	if err != nil {
		t.Fatalf("PipelineStates() error: %v", err)
	}
	want := map[string]pipeline.AdmissionState{
		"a": {Running: 0, Waiting: []pipeline.WaitingJob{
			{ID: "a1", Partition: "x", StartAfter: at(60)},
			{ID: "a2", StartAfter: at(70)},
		}},
		"b": {Running: 2, Waiting: []pipeline.WaitingJob{{ID: "b3"}}},
	}
	if len(states) != len(want) {
		t.Errorf("PipelineStates() has pipelines %v, want a and b", states)
	}
	for name, w := range want {
		got := states[name]
		if got.Running != w.Running || len(got.Waiting) != len(w.Waiting) {
			t.Errorf("state of %s = %+v, want %+v", name, got, w)
			continue
		}
		for i := range w.Waiting {
			g := got.Waiting[i]
			if g.ID != w.Waiting[i].ID || g.Partition != w.Waiting[i].Partition {
				t.Errorf("state of %s waiting[%d] = %+v, want %+v", name, i, g, w.Waiting[i])
			}
			wantTime(t, name+" waiting "+g.ID+" StartAfter", g.StartAfter, w.Waiting[i].StartAfter)
		}
	}
}

func testQueuedPipelines(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	names, err := f.s.QueuedPipelines(f.ctx)
	if err != nil || len(names) != 0 {
		t.Fatalf("QueuedPipelines() of an empty store = %v, %v; want none", names, err)
	}
	for _, name := range []string{"zeta", "alpha", "mid"} {
		d := testDefinition(name, 1)
		f.admitStarted(d, at(0), name+"-1")
		f.admitQueued(d, at(1), name+"-2")
	}
	runningOnly := testDefinition("running-only", 1)
	f.admitStarted(runningOnly, at(0), "r1")
	canceled := testDefinition("canceled", 1)
	f.admitStarted(canceled, at(0), "c1")
	f.admitQueued(canceled, at(1), "c2")
	if _, err := f.s.CancelQueued(f.ctx, "c2", at(2)); err != nil {
		t.Fatalf("CancelQueued() error: %v", err)
	}

	names, err = f.s.QueuedPipelines(f.ctx)
	if err != nil {
		t.Fatalf("QueuedPipelines() error: %v", err)
	}
	slices.Sort(names)
	if want := []string{"alpha", "mid", "zeta"}; !slices.Equal(names, want) {
		t.Errorf("QueuedPipelines() = %v, want %v", names, want)
	}
}

func testCloseIdempotent(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	for i := range 3 {
		if err := s.Close(); err != nil {
			t.Errorf("Close() #%d error: %v", i+1, err)
		}
	}
}
