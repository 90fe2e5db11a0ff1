package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/sqlite"
)

// seedTemplateJobs is how many jobs a seeded history runs through the API first: real jobs,
// whose newest is the template of the seeded ones.
const seedTemplateJobs = 500

// seedImportChunk is how many jobs one import transaction stores.
const seedImportChunk = 10_000

// seedHistory adds n finished jobs to the SQLite store in dataDir (the server must be stopped):
// copies of the newest job there, each with its own ID and variable i, written by the store's
// own import (Store.ImportJobs), which stores a finished job as a finished run leaves it (its
// columns, its tasks and its one-value record that lists read). Running 100,000 jobs through
// the API takes minutes on a small machine and measures nothing the other groups do not; what
// the history-100k group measures — lists, pages, restarts — reads only what is stored. The
// seeded jobs are older than the ones that ran (imports list before existing jobs), and have
// no log files, which no list reads.
func seedHistory(ctx context.Context, dataDir string, n int) (err error) {
	st, err := sqlite.Open(ctx, filepath.Join(dataDir, "prunner.db"))
	if err != nil {
		return fmt.Errorf("seed history: %w", err)
	}
	defer func() {
		if cerr := st.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("seed history: %w", cerr)
		}
	}()
	newest, err := st.Jobs(ctx, store.JobQuery{Limit: 1})
	if err != nil || len(newest) == 0 {
		return fmt.Errorf("seed history: no job to copy (%v)", err)
	}
	tmpl, err := st.Job(ctx, newest[0].ID)
	if err != nil {
		return fmt.Errorf("seed history: %w", err)
	}
	if !tmpl.Status.Final() {
		return fmt.Errorf("seed history: job %s to copy is %s, not finished", tmpl.ID, tmpl.Status)
	}
	// Each import goes before every stored job, so the chunks are imported newest first:
	// chunk k holds the copies numbered below those of chunk k-1.
	for done := 0; done < n; {
		size := min(seedImportChunk, n-done)
		jobs := make([]*pipeline.Job, size)
		for i := range jobs {
			num := n - done - size + i // ascending within the chunk: the import keeps the order
			j := *tmpl
			j.ID = uuid.NewString()
			j.Variables = map[string]any{"i": json.Number(strconv.Itoa(num))}
			j.Created = tmpl.Created.Add(-time.Duration(n-num) * time.Millisecond)
			j.Tasks = append([]pipeline.Task(nil), tmpl.Tasks...)
			jobs[i] = &j
		}
		got, err := st.ImportJobs(ctx, jobs)
		if err != nil {
			return fmt.Errorf("seed history: %w", err)
		}
		if got != size {
			return fmt.Errorf("seed history: imported %d of %d jobs", got, size)
		}
		done += size
	}
	return nil
}
