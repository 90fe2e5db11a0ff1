package postgres

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// Cluster-wide housekeeping happens once: every node of a cluster applies retention on its own
// timer, so several nodes delete the same pipeline's old jobs at the same moment. Each job must be
// deleted by exactly one of them (its output is removed by the node whose DeleteFinished returned
// it), none twice and none left behind. (Reaping lost nodes and firing schedules are raced in
// storetest's cluster suite and TestClusterFiringRace.)

// TestClusterRetentionDeletesEachJobOnce: three nodes apply the same retention five times each at
// once; the jobs they report deleted are exactly the ones retention does not keep, each reported
// by one node only.
func TestClusterRetentionDeletesEachJobOnce(t *testing.T) {
	t.Parallel()
	nodes := openNodes(t, 3)
	const n, keep = 120, 10
	d := clusterDefinition("p", n, nil)
	var all []string
	for i := range n {
		id := fmt.Sprintf("j%03d", i)
		if _, err := nodes[i%3].Admit(t.Context(), store.AdmitParams{Job: clusterJob(d, id), Definition: d, Now: clusterBase}); err != nil {
			t.Fatalf("Admit(%s) error: %v", id, err)
		}
		end := clusterBase.Add(time.Duration(i) * time.Second)
		if err := nodes[0].FinishJob(t.Context(), store.FinishParams{JobID: id, Status: pipeline.JobSucceeded, End: end}); err != nil {
			t.Fatalf("FinishJob(%s) error: %v", id, err)
		}
		all = append(all, id)
	}

	var (
		mu      sync.Mutex
		deleted = map[string]int{}
		wg      sync.WaitGroup
	)
	for w := range 15 {
		wg.Go(func() {
			ids, err := nodes[w%3].DeleteFinished(t.Context(), store.RetentionParams{Pipeline: "p", KeepNewest: keep})
			if err != nil {
				t.Errorf("DeleteFinished() error: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				deleted[id]++
			}
		})
	}
	wg.Wait()

	for id, k := range deleted {
		if k != 1 {
			t.Errorf("job %s reported deleted %d times, want once", id, k)
		}
	}
	want := all[:n-keep]
	got := make([]string, 0, len(deleted))
	for id := range deleted {
		got = append(got, id)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("deleted %d jobs %v…, want the %d oldest", len(got), got[:min(len(got), 5)], len(want))
	}
	left, err := nodes[1].Jobs(t.Context(), store.JobQuery{Pipeline: "p"})
	if err != nil {
		t.Fatalf("Jobs() error: %v", err)
	}
	if len(left) != keep {
		t.Errorf("%d jobs left, want the %d newest", len(left), keep)
	}
}
