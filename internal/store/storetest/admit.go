package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

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

// testAdmitReplaceVariables: a job that replaces waiting jobs takes over the values of the
// variables that replace_variables appends, along a chain of replacements, and stores them.
func testAdmitReplaceVariables(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1, strategy(pipeline.QueueReplace), queueLimit(1))
	d.ReplaceVariables = map[string]pipeline.VariableMerge{"documents": pipeline.MergeAppend}
	f.admitStarted(d, at(0), "j1")
	for i, docs := range [][]any{{"a"}, {"b", "a"}, {"c"}} {
		j := newJob(d, fmt.Sprintf("w%d", i), at(i+1))
		j.Variables = map[string]any{"documents": docs, "n": i}
		f.admit(d, j, at(i+1))
	}
	got := f.job("w2").Variables
	if docs := fmt.Sprint(got["documents"]); docs != "[a b c]" || fmt.Sprint(got["n"]) != "2" {
		t.Errorf("w2 variables = %v, want documents [a b c] and the newest n", got)
	}
	f.wantStatus("w1", pipeline.JobReplaced)
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
