package storetest

import (
	"slices"
	"testing"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

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
