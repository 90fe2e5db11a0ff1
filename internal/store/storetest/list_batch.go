package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// readInBatches reads the list q with EachJobFrom, size jobs per batch, and returns the IDs in
// the order fn saw them. between runs after each batch that did not end the list.
func (f *fixture) readInBatches(q store.JobQuery, size int, between func(batch int)) []string {
	f.t.Helper()
	q.Limit = size
	var (
		ids []string
		pos store.ListPos
	)
	for batch := 0; ; batch++ {
		if batch > 1000 {
			f.t.Fatalf("EachJobFrom(%+v) never ends", q)
		}
		next, err := f.s.EachJobFrom(f.ctx, q, pos, func(j *pipeline.Job) error {
			ids = append(ids, j.ID)
			return nil
		})
		if err != nil {
			f.t.Fatalf("EachJobFrom(%+v, %+v) error: %v", q, pos, err)
		}
		if next.End {
			return ids
		}
		pos = next
		if between != nil {
			between(batch)
		}
	}
}

// testEachJobFrom checks lists read in batches, on a still and on a changing history.
func testEachJobFrom(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Still", func(t *testing.T) {
		t.Parallel()
		testEachJobFromStill(t, open)
	})
	t.Run("WhileChanging", func(t *testing.T) {
		t.Parallel()
		testEachJobFromWhileChanging(t, open)
	})
}

// testEachJobFromStill: a list read in batches of any size is the list Jobs returns, with the
// same jobs; the cursor places the first batch; an unknown cursor and fn's error are returned.
func testEachJobFromStill(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	p := testDefinition("p", 2)
	q := testDefinition("q", 1)
	f.admitStarted(p, at(0), "p1", "p2")
	f.admitStarted(q, at(1), "q1")
	f.admitQueued(p, at(2), "p3", "p4")
	f.admitQueued(q, at(3), "q2", "q3")
	f.finish("p1", pipeline.JobSucceeded, at(4))
	f.finish("q1", pipeline.JobFailed, at(5))
	for i := range 5 {
		id := fmt.Sprintf("q%d", 4+i)
		f.admitQueued(q, at(6+i), id)
	}

	queries := []store.JobQuery{
		{},
		{Pipeline: "q"},
		{Statuses: []pipeline.JobStatus{pipeline.JobQueued, pipeline.JobSucceeded}},
		{Before: "q2"},
		{Pipeline: "p", Before: "p3"},
		{WithoutTasks: true, VariablesAsJSON: true},
	}
	for _, q := range queries {
		want := f.list(q)
		for _, size := range []int{0, 1, 2, 3, len(want), len(want) + 1} {
			if got := f.readInBatches(q, size, nil); !slices.Equal(got, jobIDs(want)) {
				t.Errorf("EachJobFrom(%+v) in batches of %d = %v, Jobs = %v", q, size, got, jobIDs(want))
			}
		}
		// Every job comes as Jobs lists it.
		k := 0
		if _, err := f.s.EachJobFrom(f.ctx, q, store.ListPos{}, func(j *pipeline.Job) error {
			if k < len(want) {
				checkJob(t, j, want[k])
			}
			k++
			return nil
		}); err != nil || k != len(want) {
			t.Errorf("EachJobFrom(%+v) = %d jobs, %v; want %d", q, k, err, len(want))
		}
	}

	if _, err := f.s.EachJobFrom(f.ctx, store.JobQuery{Before: "nope", Limit: 2}, store.ListPos{}, func(*pipeline.Job) error { return nil }); !errors.Is(err, pipeline.ErrJobNotFound) {
		t.Errorf("EachJobFrom(unknown cursor) = %v, want ErrJobNotFound", err)
	}
	stop := errors.New("enough")
	n := 0
	if _, err := f.s.EachJobFrom(f.ctx, store.JobQuery{Limit: 5}, store.ListPos{}, func(*pipeline.Job) error {
		n++
		return stop
	}); !errors.Is(err, stop) || n != 1 {
		t.Errorf("EachJobFrom with fn failing = %v after %d calls, want %v after 1", err, n, stop)
	}
	if next, err := f.s.EachJobFrom(f.ctx, store.JobQuery{}, store.ListPos{End: true}, func(j *pipeline.Job) error {
		return fmt.Errorf("job %s after the end", j.ID)
	}); err != nil || !next.End {
		t.Errorf("EachJobFrom(the end) = %+v, %v; want the end again", next, err)
	}
}

// testEachJobFromWhileChanging: between the batches of a list, jobs are created, finished and
// deleted — the job the list stopped at among them. Every job that exists for the whole list
// comes exactly once, in order; a job deleted before its batch does not come; jobs created
// meanwhile do not come.
func testEachJobFromWhileChanging(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 100)
	var all []string
	for i := range 12 {
		id := fmt.Sprintf("j%02d", i)
		f.admitStarted(d, at(i), id)
		all = append(all, id)
	}
	// j00…j03 end early: retention deletes them between batches.
	for i := range 4 {
		f.finish(all[i], pipeline.JobSucceeded, at(20+i))
	}
	before := jobIDs(f.list(store.JobQuery{}))

	got := f.readInBatches(store.JobQuery{}, 3, func(batch int) {
		if batch != 0 {
			return
		}
		// The first batch read j11, j10, j09. j09 (where the list stands) and the old jobs
		// end and are deleted; new jobs arrive.
		f.finish("j09", pipeline.JobFailed, at(30))
		if _, err := f.s.DeleteFinished(f.ctx, store.RetentionParams{Pipeline: "p", EndedBefore: at(31)}); err != nil {
			t.Fatalf("DeleteFinished error: %v", err)
		}
		f.admitStarted(d, at(40), "new1", "new2")
		f.finish("j05", pipeline.JobCanceled, at(41))
	})
	want := []string{"j11", "j10", "j09", "j08", "j07", "j06", "j05", "j04"}
	if !slices.Equal(got, want) {
		t.Errorf("list in batches while changing = %v, want %v (before: %v)", got, want, before)
	}
}
