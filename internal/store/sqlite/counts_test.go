package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// counts is a pipeline's running and queued counts.
type counts struct{ running, queued int }

// keptCounts reads the counts that migration 0006's triggers keep, by pipeline (idle pipelines
// left out).
func keptCounts(t *testing.T, s *Store) map[string]counts {
	t.Helper()
	got := map[string]counts{}
	err := scanRows(s.read.QueryContext(t.Context(),
		`SELECT pipeline, running, queued FROM pipeline_counts WHERE running <> 0 OR queued <> 0`))(func(rows *sql.Rows) error {
		var (
			name string
			c    counts
		)
		err := rows.Scan(&name, &c.running, &c.queued)
		got[name] = c
		return err
	})
	if err != nil {
		t.Fatalf("read pipeline_counts: %v", err)
	}
	return got
}

// countedJobs counts the running and queued jobs of every pipeline in the jobs table.
func countedJobs(t *testing.T, s *Store) map[string]counts {
	t.Helper()
	want := map[string]counts{}
	err := scanRows(s.read.QueryContext(t.Context(), `SELECT pipeline, sum(status = 'running'), sum(status = 'queued')
		FROM jobs WHERE status IN ('running', 'queued') GROUP BY pipeline`))(func(rows *sql.Rows) error {
		var (
			name string
			c    counts
		)
		err := rows.Scan(&name, &c.running, &c.queued)
		want[name] = c
		return err
	})
	if err != nil {
		t.Fatalf("count jobs: %v", err)
	}
	return want
}

// checkCounts fails the test unless the kept counts are the jobs' counts and, for the pipeline
// name, want.
func checkCounts(t *testing.T, s *Store, step, name string, want counts) {
	t.Helper()
	kept, counted := keptCounts(t, s), countedJobs(t, s)
	if len(kept) != len(counted) {
		t.Errorf("%s: kept counts %v, jobs counted %v", step, kept, counted)
	}
	for p, c := range counted {
		if kept[p] != c {
			t.Errorf("%s: kept counts of %s = %+v, jobs counted %+v", step, p, kept[p], c)
		}
	}
	if kept[name] != want {
		t.Errorf("%s: counts of %s = %+v, want %+v", step, name, kept[name], want)
	}
}

func countsDefinition(name string, concurrency int, strategy pipeline.QueueStrategy) *pipeline.Definition {
	limit := 10
	return &pipeline.Definition{Name: name, Concurrency: concurrency, QueueLimit: &limit, QueueStrategy: strategy,
		Tasks: map[string]pipeline.TaskDefinition{"build": {Name: "build", Script: []string{"make"}}}}
}

func admitCounted(t *testing.T, s *Store, d *pipeline.Definition, id string, now time.Time) {
	t.Helper()
	j := &pipeline.Job{ID: id, Pipeline: d.Name, Created: now, Definition: d, Tasks: pipeline.NewJobTasks(d)}
	if _, err := s.Admit(t.Context(), store.AdmitParams{Job: j, Definition: d, Now: now}); err != nil {
		t.Fatalf("Admit(%s): %v", id, err)
	}
}

// TestPipelineCountsFollowEveryWrite: the running and queued counts that admission and claims
// read are the jobs' true counts after every kind of write that changes a job's status.
func TestPipelineCountsFollowEveryWrite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), "prunner.db"))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := countsDefinition("build", 2, pipeline.QueueAppend)
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		admitCounted(t, s, d, id, now)
	}
	checkCounts(t, s, "admitted 5 with concurrency 2", d.Name, counts{running: 2, queued: 3})

	res, err := s.FinishAndClaim(ctx, store.FinishParams{JobID: "a", Status: pipeline.JobSucceeded, End: now},
		store.ClaimParams{Pipeline: d.Name, Concurrency: d.Concurrency, Now: now})
	if err != nil || len(res.Started) != 1 || res.Started[0].ID != "c" {
		t.Fatalf("FinishAndClaim(a) = %+v, %v; want c started", res, err)
	}
	checkCounts(t, s, "a ended, c claimed", d.Name, counts{running: 2, queued: 2})

	if _, err := s.CancelQueued(ctx, "e", now); err != nil {
		t.Fatalf("CancelQueued(e): %v", err)
	}
	checkCounts(t, s, "e canceled", d.Name, counts{running: 2, queued: 1})

	if err := s.FinishJob(ctx, store.FinishParams{JobID: "b", Status: pipeline.JobFailed, End: now}); err != nil {
		t.Fatalf("FinishJob(b): %v", err)
	}
	checkCounts(t, s, "b failed", d.Name, counts{running: 1, queued: 1})

	if _, err := s.Claim(ctx, store.ClaimParams{Pipeline: d.Name, Concurrency: d.Concurrency, Now: now}); err != nil {
		t.Fatalf("Claim: %v", err)
	}
	checkCounts(t, s, "d claimed", d.Name, counts{running: 2, queued: 0})

	r := countsDefinition("replace", 1, pipeline.QueueReplace)
	one := 1
	r.QueueLimit = &one
	for _, id := range []string{"r1", "r2", "r3"} {
		admitCounted(t, s, r, id, now)
	}
	checkCounts(t, s, "r3 replaced r2", r.Name, counts{running: 1, queued: 1})

	if ids, err := s.RecoverRunning(ctx, "crash", now); err != nil || len(ids) != 3 {
		t.Fatalf("RecoverRunning = %v, %v; want 3 jobs", ids, err)
	}
	checkCounts(t, s, "recovered", d.Name, counts{})
	checkCounts(t, s, "recovered", r.Name, counts{running: 0, queued: 1})

	old := &pipeline.Job{ID: "imported", Pipeline: d.Name, Status: pipeline.JobSucceeded, Created: now, End: &now,
		Definition: d, Tasks: pipeline.NewJobTasks(d)}
	if _, err := s.ImportJobs(ctx, []*pipeline.Job{old}); err != nil {
		t.Fatalf("ImportJobs: %v", err)
	}
	if _, err := s.DeleteFinished(ctx, store.RetentionParams{Pipeline: d.Name, KeepNewest: 1}); err != nil {
		t.Fatalf("DeleteFinished: %v", err)
	}
	checkCounts(t, s, "imported and deleted finished jobs", r.Name, counts{running: 0, queued: 1})

	// The next admission of build starts at once: nothing runs or waits.
	admitCounted(t, s, d, "f", now)
	checkCounts(t, s, "f admitted", d.Name, counts{running: 1, queued: 0})
}

// TestPipelineCountsOfMigratedFile: a file of schema version 5 with running and queued jobs gets
// their counts from the migration.
func TestPipelineCountsOfMigratedFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "prunner.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := countsDefinition("build", 2, pipeline.QueueAppend)
	for _, id := range []string{"a", "b", "c", "d"} {
		admitCounted(t, s, d, id, now)
	}
	if err := s.FinishJob(t.Context(), store.FinishParams{JobID: "a", Status: pipeline.JobSucceeded, End: now}); err != nil {
		t.Fatal(err)
	}
	undoPipelineCounts(t, s)
	if _, err := s.wconn.ExecContext(t.Context(), `PRAGMA user_version = 5`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	checkCounts(t, s, "migrated", d.Name, counts{running: 1, queued: 2})
}

// undoPipelineCounts drops what migration 0006 creates, as in a file of schema version 5.
func undoPipelineCounts(t *testing.T, s *Store) {
	t.Helper()
	for _, q := range []string{`DROP TRIGGER jobs_count_insert`, `DROP TRIGGER jobs_count_delete`,
		`DROP TRIGGER jobs_count_leave`, `DROP TRIGGER jobs_count_enter`, `DROP TABLE pipeline_counts`} {
		if _, err := s.wconn.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
