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

// testFinishAndClaim: a job's end and the claim of the slot it frees happen together; a finish
// that fails claims nothing.
func testFinishAndClaim(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1)
	f.admitStarted(d, at(0), "a")
	f.admitQueued(d, at(1), "b", "c")
	claim := store.ClaimParams{Pipeline: "p", Concurrency: 1, Now: at(5)}
	res, err := f.s.FinishAndClaim(f.ctx, store.FinishParams{JobID: "a", Status: pipeline.JobSucceeded, End: at(4)}, claim)
	if err != nil {
		t.Fatalf("FinishAndClaim(a) error: %v", err)
	}
	if len(res.Started) != 1 || res.Started[0].ID != "b" || res.Started[0].Status != pipeline.JobRunning ||
		res.Started[0].Definition == nil || len(res.Started[0].Tasks) != len(taskNames) {
		t.Fatalf("FinishAndClaim(a) started %+v, want job b running with its definition and tasks", res.Started)
	}
	f.wantStatus("a", pipeline.JobSucceeded)
	f.wantState("p", 1, "c")
	if jobs := f.list(store.JobQuery{Statuses: []pipeline.JobStatus{pipeline.JobSucceeded}}); len(jobs) != 1 {
		t.Errorf("succeeded jobs = %v, want [a]", jobIDs(jobs))
	} else {
		checkJob(t, jobs[0], withoutDefinition(f.job("a")))
	}
	_, err = f.s.FinishAndClaim(f.ctx, store.FinishParams{JobID: "a", Status: pipeline.JobFailed, End: at(6)}, claim)
	if !errors.Is(err, pipeline.ErrJobFinished) {
		t.Errorf("FinishAndClaim(a again) error = %v, want ErrJobFinished", err)
	}
	_, err = f.s.FinishAndClaim(f.ctx, store.FinishParams{JobID: "nope", Status: pipeline.JobFailed, End: at(6)},
		store.ClaimParams{Pipeline: "p", Concurrency: 5, Now: at(6)})
	if !errors.Is(err, pipeline.ErrJobNotFound) {
		t.Errorf("FinishAndClaim(unknown) error = %v, want ErrJobNotFound", err)
	}
	f.wantState("p", 1, "c") // nothing claimed by the failed calls
}
