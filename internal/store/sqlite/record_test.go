package sqlite

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

func recordTestDefinition() *pipeline.Definition {
	return &pipeline.Definition{Name: "p", Concurrency: 10, QueueStrategy: pipeline.QueueAppend,
		Tasks: map[string]pipeline.TaskDefinition{"t": {Name: "t", Script: []string{"true"}}}}
}

// unrecorded counts the finished jobs without a record.
func unrecorded(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM jobs WHERE final_record IS NULL AND status IN ` + finalJobStatuses).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRecordsWrittenAndDropped: every way of ending a job stores its record; a late task update
// drops it (the list then reads the columns, see storetest).
func TestRecordsWrittenAndDropped(t *testing.T) {
	t.Parallel()
	s := openTest(t, filepath.Join(t.TempDir(), "prunner.db"))
	ctx := t.Context()
	d := recordTestDefinition()
	q := recordTestDefinition()
	limit := 1
	q.Name, q.Concurrency, q.QueueStrategy, q.QueueLimit = "q", 1, pipeline.QueueReplace, &limit
	now := time.Now()
	admit := func(d *pipeline.Definition, id string) {
		j := &pipeline.Job{ID: id, Pipeline: d.Name, Created: now, Definition: d, Tasks: pipeline.NewJobTasks(d)}
		if _, err := s.Admit(ctx, store.AdmitParams{Job: j, Definition: d, Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	admit(d, "finished")
	admit(d, "recovered")
	admit(q, "running")
	admit(q, "replaced")
	admit(q, "replacer")
	admit(q, "canceled")
	if err := s.FinishJob(ctx, store.FinishParams{JobID: "finished", Status: pipeline.JobSucceeded, End: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CancelQueued(ctx, "canceled", now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecoverRunning(ctx, "crashed", now); err != nil {
		t.Fatal(err)
	}
	var recorded, final int
	if err := s.read.QueryRow(`SELECT count(final_record), count(*) FROM jobs WHERE status IN `+finalJobStatuses).Scan(&recorded, &final); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"finished", "recovered", "running", "replaced", "canceled"} {
		var st string
		if err := s.read.QueryRow(`SELECT status FROM jobs WHERE id = ?`, id).Scan(&st); err != nil || !pipeline.JobStatus(st).Final() {
			t.Errorf("job %s status %q, %v; want a final one", id, st, err)
		}
	}
	if recorded != final || final < 5 {
		t.Errorf("%d of %d finished jobs have a record, want all (at least 5)", recorded, final)
	}
	if err := s.UpdateTask(ctx, "finished", pipeline.Task{Name: "t", Status: pipeline.TaskDone, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if n := unrecorded(t, s.read); n != 1 {
		t.Errorf("%d finished jobs without a record after a late task update, want 1", n)
	}
}

// TestRecordsBackfilledOnUpgrade: finished jobs of a database from before records get them when
// the new schema is applied, and Close leaves no WAL behind.
func TestRecordsBackfilledOnUpgrade(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "prunner.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	d := recordTestDefinition()
	now := time.Now()
	for _, id := range []string{"a", "b", "c"} {
		j := &pipeline.Job{ID: id, Pipeline: d.Name, Created: now, Definition: d, Tasks: pipeline.NewJobTasks(d)}
		if _, err := s.Admit(t.Context(), store.AdmitParams{Job: j, Definition: d, Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"a", "b"} {
		if err := s.FinishJob(t.Context(), store.FinishParams{JobID: id, Status: pipeline.JobFailed, End: now, LastError: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	// Back to version 3, as a database of the previous release is: first undo 0006, 0005,
	// then 0004.
	undoPipelineCounts(t, s)
	for _, q := range []string{`DROP TABLE schedules`, `DROP TABLE schedule_states`, `DROP TABLE schedule_firings`,
		`DROP INDEX jobs_schedule_active`, `ALTER TABLE jobs DROP COLUMN schedule_id`,
		`ALTER TABLE jobs DROP COLUMN scheduled_for`, `DROP TRIGGER jobs_final_record_stale`, `DROP TRIGGER tasks_insert_final_record_stale`,
		`DROP TRIGGER tasks_update_final_record_stale`, `DROP INDEX jobs_delayed`,
		`ALTER TABLE jobs DROP COLUMN final_record`, `PRAGMA user_version = 3`} {
		if _, err := s.wconn.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		t.Errorf("WAL of %d bytes left after Close", fi.Size())
	}
	s = openTest(t, path)
	if n := unrecorded(t, s.read); n != 0 {
		t.Errorf("%d finished jobs without a record after the upgrade, want 0", n)
	}
	jobs, err := s.Jobs(t.Context(), store.JobQuery{})
	if err != nil || len(jobs) != 3 {
		t.Fatalf("Jobs() = %d jobs, %v", len(jobs), err)
	}
	if jobs[1].ID != "b" || jobs[1].Status != pipeline.JobFailed || jobs[1].LastError != "x" || len(jobs[1].Tasks) != 1 ||
		jobs[1].Tasks[0].Status != pipeline.TaskSkipped {
		t.Errorf("listed job b = %+v", jobs[1])
	}
}
