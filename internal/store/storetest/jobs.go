package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

func testJobUnknown(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	f.wantNoJob("nope")
	if jobs := f.list(store.JobQuery{}); len(jobs) != 0 {
		t.Errorf("Jobs() of an empty store = %v, want none", jobIDs(jobs))
	}
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

// testEachJob: EachJob yields what Jobs returns, in the same order, and stops at fn's error.
func testEachJob(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 2)
	f.admitStarted(d, at(0), "a", "b")
	f.admitQueued(d, at(1), "c", "d")
	f.finish("a", pipeline.JobSucceeded, at(2))
	if _, err := f.s.CancelQueued(f.ctx, "d", at(3)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []store.JobQuery{{}, {Limit: 2}, {Statuses: []pipeline.JobStatus{pipeline.JobSucceeded, pipeline.JobQueued}},
		{Before: "c"}, {WithoutTasks: true}} {
		want := f.list(q)
		var got []string
		if err := f.s.EachJob(f.ctx, q, func(j *pipeline.Job) error {
			// The job is valid during the call only: compare it now.
			if i := len(got); i < len(want) {
				checkJob(t, j, want[i])
			}
			got = append(got, j.ID)
			return nil
		}); err != nil {
			t.Fatalf("EachJob(%+v) error: %v", q, err)
		}
		if !slices.Equal(got, jobIDs(want)) {
			t.Errorf("EachJob(%+v) = %v, Jobs = %v", q, got, jobIDs(want))
		}
	}
	stop := errors.New("enough")
	n := 0
	err := f.s.EachJob(f.ctx, store.JobQuery{}, func(*pipeline.Job) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("EachJob with fn failing = %v after %d calls, want %v after 1", err, n, stop)
	}
	if err := f.s.EachJob(f.ctx, store.JobQuery{Before: "nope"}, func(*pipeline.Job) error { return nil }); !errors.Is(err, pipeline.ErrJobNotFound) {
		t.Errorf("EachJob(unknown cursor) = %v, want ErrJobNotFound", err)
	}
}

// testJobsLongMixedList lists more jobs than a store may read at once, in every state (finished
// in each way, running with task updates, queued, replaced), and compares each listed job with
// the job as Job reads it.
func testJobsLongMixedList(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1000)
	q := testDefinition("q", 1, strategy(pipeline.QueueReplace))
	for i := range 700 {
		id := fmt.Sprintf("j%04d", i)
		j := newJob(d, id, at(i))
		if i%7 == 0 {
			j.Variables = map[string]any{"n": fmt.Sprint(i), "html": "<b>&</b>"}
		}
		j.User = "user"
		f.admit(d, j, at(i))
		start := at(i).Add(time.Second)
		switch i % 5 {
		case 0:
			f.updateTask(id, pipeline.Task{Name: "build", Status: pipeline.TaskDone, Start: &start, End: &start, Attempt: 1})
			f.finish(id, pipeline.JobSucceeded, at(i+1))
		case 1:
			f.updateTask(id, pipeline.Task{Name: "build", Status: pipeline.TaskError, Start: &start, End: &start, ExitCode: 3,
				Errored: true, Error: "exit status 3", Attempt: 2,
				Attempts: []pipeline.TaskAttempt{{Number: 1, Start: start, End: start, ExitCode: 1, Error: "exit status 1"}}})
			f.finish(id, pipeline.JobFailed, at(i+1))
		case 2:
			f.updateTask(id, pipeline.Task{Name: "build", Status: pipeline.TaskRunning, Start: &start, Attempt: 1})
		case 3:
			f.finish(id, pipeline.JobCanceled, at(i+1))
		}
		if i%50 == 0 {
			f.admit(q, newJob(q, fmt.Sprintf("q%04d-a", i), at(i)), at(i))
			f.admit(q, newJob(q, fmt.Sprintf("q%04d-b", i), at(i)), at(i))
			f.admit(q, newJob(q, fmt.Sprintf("q%04d-c", i), at(i)), at(i))
		}
	}
	for _, query := range []store.JobQuery{{}, {Pipeline: "p"}, {Limit: 300}, {Statuses: []pipeline.JobStatus{pipeline.JobRunning, pipeline.JobFailed}}} {
		jobs := f.list(query)
		k := 0
		if err := f.s.EachJob(f.ctx, query, func(j *pipeline.Job) error {
			if k >= len(jobs) || j.ID != jobs[k].ID {
				return fmt.Errorf("EachJob(%+v) job %d = %s, not as listed by Jobs", query, k, j.ID)
			}
			checkJob(t, j, jobs[k])
			k++
			return nil
		}); err != nil || k != len(jobs) {
			t.Fatalf("EachJob(%+v) = %d jobs, %v; want %d", query, k, err, len(jobs))
		}
		for k, j := range jobs {
			if k > 0 && j.ID == jobs[k-1].ID {
				t.Fatalf("Jobs(%+v) lists %s twice", query, j.ID)
			}
			checkJob(t, j, withoutDefinition(f.job(j.ID)))
		}
		// Asked for, the variables come as their JSON object, from records and columns alike.
		vq := query
		vq.VariablesAsJSON = true
		k = 0
		if err := f.s.EachJob(f.ctx, vq, func(j *pipeline.Job) error {
			want := jobs[k]
			k++
			wantJSON := ""
			if want.Variables != nil {
				b, err := json.Marshal(want.Variables)
				if err != nil {
					return err
				}
				wantJSON = string(b)
			}
			if j.Variables != nil || j.VariablesJSON != wantJSON {
				return fmt.Errorf("job %s with VariablesAsJSON: Variables %v, VariablesJSON %q; want nil, %q", j.ID, j.Variables, j.VariablesJSON, wantJSON)
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
		if query.Limit == 0 && query.Pipeline == "" && len(query.Statuses) == 0 && len(jobs) != 700+3*14 {
			t.Errorf("Jobs() = %d jobs, want %d", len(jobs), 700+3*14)
		}
	}
}

// testJobsAfterLateTaskUpdate: a task update that arrives after its job ended (the runner
// allows it) shows in lists as in Job; so does a late errored mark.
func testJobsAfterLateTaskUpdate(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1)
	f.admitStarted(d, at(0), "j")
	f.finish("j", pipeline.JobCanceled, at(1))
	_ = f.list(store.JobQuery{})
	end := at(2)
	f.updateTask("j", pipeline.Task{Name: "build", Status: pipeline.TaskError, End: &end, ExitCode: 9, Errored: true,
		Error: "late", Attempt: 1})
	f.updateTask("j", pipeline.Task{Name: pipeline.OnErrorTaskName, Status: pipeline.TaskDone, End: &end, Attempt: 1})
	jobs := f.list(store.JobQuery{})
	if len(jobs) != 1 {
		t.Fatalf("Jobs() = %d jobs, want 1", len(jobs))
	}
	want := f.job("j")
	if !want.Errored || want.Tasks[0].Error != "late" || len(want.Tasks) != 4 {
		t.Fatalf("Job() after late updates = %+v", want)
	}
	checkJob(t, jobs[0], withoutDefinition(want))
}
