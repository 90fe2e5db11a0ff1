package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// testAdmitIdempotencyKey: a repeated request with the same key stores nothing and names the job
// that has the key, also when the requests race, and also when the first job has finished.
func testAdmitIdempotencyKey(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	d := testDefinition("p", 1)
	admitKeyed := func(id, key string) (store.AdmitResult, error) {
		return f.s.Admit(context.Background(), store.AdmitParams{Job: newJob(d, id, at(0)), Definition: d, Now: at(0), IdempotencyKey: key})
	}
	first, err := admitKeyed("j1", "key-1")
	if err != nil || first.ExistingID != "" || !first.Started {
		t.Fatalf("first Admit = %+v, %v; want a started job", first, err)
	}
	again, err := admitKeyed("j2", "key-1")
	if err != nil || again.ExistingID != "j1" || again.ExistingPipeline != "p" || again.Started {
		t.Fatalf("repeated Admit = %+v, %v; want ExistingID j1", again, err)
	}
	f.wantNoJob("j2")
	f.finish("j1", pipeline.JobSucceeded, at(1))
	if again, _ := admitKeyed("j3", "key-1"); again.ExistingID != "j1" {
		t.Errorf("repeated Admit after the job finished = %+v; want ExistingID j1", again)
	}
	if other, err := admitKeyed("j4", "key-2"); err != nil || other.ExistingID != "" {
		t.Errorf("Admit with another key = %+v, %v; want a new job", other, err)
	}
	if plain, err := admitKeyed("j5", ""); err != nil || plain.ExistingID != "" {
		t.Errorf("Admit without a key = %+v, %v", plain, err)
	}

	// Racing requests with one key make exactly one job.
	const n = 10
	results := make([]store.AdmitResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := admitKeyed(fmt.Sprintf("r%02d", i), "race")
			if err != nil {
				t.Errorf("racing Admit %d: %v", i, err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	owner := ""
	for i, r := range results {
		if r.ExistingID == "" {
			if owner != "" {
				t.Errorf("two racing requests stored a job: %s and r%02d", owner, i)
			}
			owner = fmt.Sprintf("r%02d", i)
		}
	}
	if owner == "" {
		t.Fatal("no racing request stored a job")
	}
	for i, r := range results {
		if id := fmt.Sprintf("r%02d", i); id != owner && r.ExistingID != owner {
			t.Errorf("racing request %s: ExistingID %q, want %s", id, r.ExistingID, owner)
		}
	}
}
