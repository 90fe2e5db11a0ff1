package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/storetest"
)

func openTest(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%s) error: %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() error: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, filepath.Join(t.TempDir(), "prunner.db"))
	})
}

// TestConformancePersistence runs the part of the suite that opens the same file again.
func TestConformancePersistence(t *testing.T) {
	t.Parallel()
	storetest.RunPersistence(t, func(t *testing.T) (store.Store, func() store.Store) {
		path := filepath.Join(t.TempDir(), "prunner.db")
		first, err := Open(t.Context(), path)
		if err != nil {
			t.Fatalf("Open(%s) error: %v", path, err)
		}
		t.Cleanup(func() { first.Close() }) // idempotent: the test closes it first
		return first, func() store.Store { return openTest(t, path) }
	})
}

func testDefinition() *pipeline.Definition {
	limit := 5
	return &pipeline.Definition{
		Name:          "release",
		Concurrency:   1,
		QueueLimit:    &limit,
		QueueStrategy: pipeline.QueueAppend,
		Tasks: map[string]pipeline.TaskDefinition{
			"build": {Name: "build", Script: []string{"make"}},
			"test":  {Name: "test", Script: []string{"make test"}, DependsOn: []string{"build"}},
		},
	}
}

// TestReopenPersists closes the store and opens the file again: every job, task and time is
// still there, and the pipeline state is the same.
func TestReopenPersists(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "prunner.db")
	now := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	d := testDefinition()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open() error: %v", err)
	}
	for i, id := range []string{"j1", "j2", "j3"} {
		j := &pipeline.Job{ID: id, Pipeline: d.Name, Created: now.Add(time.Duration(i) * time.Second),
			User: "alice", Variables: map[string]any{"n": json.Number("12345678901")},
			Definition: d, Tasks: pipeline.NewJobTasks(d)}
		if _, err := s.Admit(ctx, store.AdmitParams{Job: j, Definition: d, Now: j.Created}); err != nil {
			t.Fatalf("Admit(%s) error: %v", id, err)
		}
	}
	if err := s.UpdateTask(ctx, "j1", pipeline.Task{Name: "build", Status: pipeline.TaskError, Errored: true, ExitCode: 2, Error: "exit status 2"}); err != nil {
		t.Fatalf("UpdateTask() error: %v", err)
	}
	if err := s.UpdateTask(ctx, "j1", pipeline.Task{Name: pipeline.OnErrorTaskName, Status: pipeline.TaskDone}); err != nil {
		t.Fatalf("UpdateTask() error: %v", err)
	}
	if err := s.FinishJob(ctx, store.FinishParams{JobID: "j1", Status: pipeline.JobFailed, End: now.Add(time.Minute),
		LastError: "exit status 2", PendingTasks: pipeline.TaskSkipped, RunningTasks: pipeline.TaskCanceled}); err != nil {
		t.Fatalf("FinishJob() error: %v", err)
	}
	before, err := s.Jobs(ctx, store.JobQuery{})
	if err != nil {
		t.Fatalf("Jobs() error: %v", err)
	}
	statesBefore, err := s.PipelineStates(ctx)
	if err != nil {
		t.Fatalf("PipelineStates() error: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() error: %v", err)
	}

	s2 := openTest(t, path)
	after, err := s2.Jobs(ctx, store.JobQuery{})
	if err != nil {
		t.Fatalf("Jobs() after reopen error: %v", err)
	}
	if !reflect.DeepEqual(after, before) {
		t.Errorf("Jobs() after reopen =\n%+v\nwant\n%+v", after, before)
	}
	statesAfter, err := s2.PipelineStates(ctx)
	if err != nil {
		t.Fatalf("PipelineStates() error: %v", err)
	}
	if !reflect.DeepEqual(statesAfter, statesBefore) {
		t.Errorf("PipelineStates() after reopen = %+v, want %+v", statesAfter, statesBefore)
	}
	// New jobs continue the creation order.
	j := &pipeline.Job{ID: "j4", Pipeline: d.Name, Created: now, Definition: d, Tasks: pipeline.NewJobTasks(d)}
	if _, err := s2.Admit(ctx, store.AdmitParams{Job: j, Definition: d, Now: now}); err != nil {
		t.Fatalf("Admit(j4) error: %v", err)
	}
	jobs, err := s2.Jobs(ctx, store.JobQuery{Limit: 1, WithoutTasks: true})
	if err != nil || len(jobs) != 1 || jobs[0].ID != "j4" {
		t.Errorf("newest job after reopen = %v, %v; want j4", jobs, err)
	}
}

func userVersion(t *testing.T, s *Store) int {
	t.Helper()
	var v int
	if err := s.read.QueryRowContext(t.Context(), "PRAGMA user_version").Scan(&v); err != nil {
		t.Fatalf("read user_version: %v", err)
	}
	return v
}

func TestMigrationsIdempotent(t *testing.T) {
	t.Parallel()
	ms, err := migrations()
	if err != nil {
		t.Fatalf("migrations() error: %v", err)
	}
	path := filepath.Join(t.TempDir(), "prunner.db")
	for i := range 3 {
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatalf("Open() #%d error: %v", i+1, err)
		}
		if got := userVersion(t, s); got != len(ms) {
			t.Errorf("user_version after open #%d = %d, want %d", i+1, got, len(ms))
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close() error: %v", err)
		}
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "prunner.db")
	s := openTest(t, path)
	err := s.withWriter(t.Context(), func(ctx context.Context) error {
		_, err := s.wconn.ExecContext(ctx, "PRAGMA user_version = 999")
		return err
	})
	if err != nil {
		t.Fatalf("set user_version: %v", err)
	}
	if _, err := Open(t.Context(), path); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open() of a newer schema error = %v, want one saying it is newer", err)
	}
}

// TestPragmas checks the settings every connection must have.
func TestPragmas(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     Options
		wantSync int
	}{
		{"default", Options{}, 1},                   // NORMAL
		{"full", Options{SynchronousFull: true}, 2}, // FULL
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := OpenWith(t.Context(), filepath.Join(t.TempDir(), "prunner.db"), tt.opts)
			if err != nil {
				t.Fatalf("OpenWith() error: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			for _, c := range []struct {
				db interface {
					QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
				}
				name  string
				query string
				want  string
			}{
				{s.wconn, "writer", "PRAGMA journal_mode", "wal"},
				{s.wconn, "writer", "PRAGMA foreign_keys", "1"},
				{s.wconn, "writer", "PRAGMA busy_timeout", "10000"},
				{s.wconn, "writer", "PRAGMA synchronous", strconv.Itoa(tt.wantSync)},
				{s.wconn, "writer", "PRAGMA wal_autocheckpoint", strconv.Itoa(walFallbackPages)},
				{s.wconn, "writer", "PRAGMA temp_store", "2"}, // memory
				{s.read, "reader", "PRAGMA journal_mode", "wal"},
				{s.read, "reader", "PRAGMA query_only", "1"},
				{s.read, "reader", "PRAGMA busy_timeout", "10000"},
			} {
				var got string
				if err := c.db.QueryRowContext(t.Context(), c.query).Scan(&got); err != nil {
					t.Fatalf("%s %s: %v", c.name, c.query, err)
				}
				if got != c.want {
					t.Errorf("%s %s = %q, want %q", c.name, c.query, got, c.want)
				}
			}
		})
	}
}

// TestReadsDoNotWaitForWrites holds the write lock in an open transaction: reads still answer.
func TestReadsDoNotWaitForWrites(t *testing.T) {
	t.Parallel()
	s := openTest(t, filepath.Join(t.TempDir(), "prunner.db"))
	inWrite := make(chan struct{})
	release := make(chan struct{})
	writeDone := make(chan error, 1)
	go func() {
		writeDone <- s.writeTx(t.Context(), func(ctx context.Context) error {
			if _, err := s.wconn.ExecContext(ctx, "INSERT INTO jobs (id, pipeline, status) VALUES ('x', 'p', 'queued')"); err != nil {
				return err
			}
			close(inWrite)
			<-release
			return errors.New("roll back")
		})
	}()
	select {
	case <-inWrite:
	case err := <-writeDone:
		t.Fatalf("write transaction ended early: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.Jobs(ctx, store.JobQuery{}); err != nil {
		t.Errorf("Jobs() during a write transaction error: %v", err)
	}
	if _, err := s.Job(ctx, "x"); !errors.Is(err, pipeline.ErrJobNotFound) {
		t.Errorf("Job(x) of an uncommitted job error = %v, want %v", err, pipeline.ErrJobNotFound)
	}
	close(release)
	if err := <-writeDone; err == nil || err.Error() != "roll back" {
		t.Errorf("write transaction error = %v, want roll back", err)
	}
}

// TestWriteWaitHonoursContext: a write that waits for the writer gives up when its context ends.
func TestWriteWaitHonoursContext(t *testing.T) {
	t.Parallel()
	s := openTest(t, filepath.Join(t.TempDir(), "prunner.db"))
	s.wlock <- struct{}{} // hold the writer
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := s.CancelQueued(ctx, "x", time.Now())
	<-s.wlock
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("CancelQueued() while the writer is busy error = %v, want %v", err, context.DeadlineExceeded)
	}
}

func TestFinishJobRejectsStatusNotFinal(t *testing.T) {
	t.Parallel()
	s := openTest(t, filepath.Join(t.TempDir(), "prunner.db"))
	err := s.FinishJob(t.Context(), store.FinishParams{JobID: "j1", Status: pipeline.JobRunning})
	if err == nil || errors.Is(err, pipeline.ErrJobNotFound) {
		t.Errorf("FinishJob(status running) error = %v, want a status error", err)
	}
}

func TestParseSimpleStringArray(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		want   []string
		wantOK bool
	}{
		{`[]`, []string{}, true},
		{`["a"]`, []string{"a"}, true},
		{`["a","b c","d,e"]`, []string{"a", "b c", "d,e"}, true},
		{`["a\"b"]`, nil, false},
		{`["a" ,"b"]`, nil, false},
		{`["a",]`, nil, false},
		{`[1]`, nil, false},
		{`["a"`, nil, false},
	}
	for _, tt := range tests {
		got, ok := parseSimpleStringArray(tt.in)
		if ok != tt.wantOK || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseSimpleStringArray(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
		if !ok {
			continue
		}
		var viaJSON []string
		if err := json.Unmarshal([]byte(tt.in), &viaJSON); err != nil || !reflect.DeepEqual(got, viaJSON) {
			t.Errorf("parseSimpleStringArray(%q) = %q, encoding/json says %q (%v)", tt.in, got, viaJSON, err)
		}
	}
}

// TestBackgroundCheckpoint: committed pages reach the database file without a checkpoint in
// any commit.
func TestBackgroundCheckpoint(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "prunner.db")
	s := openTest(t, path)
	size := func() int64 {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("stat: %v", err)
		}
		return fi.Size()
	}
	// Let the checkpoint of the migrations pass first.
	time.Sleep(3 * checkpointDelay)
	before := size()
	d := testDefinition()
	d.Concurrency = 1000
	for i := range 200 {
		j := &pipeline.Job{ID: "job-" + strconv.Itoa(i), Pipeline: d.Name, Created: time.Now(), Definition: d, Tasks: pipeline.NewJobTasks(d)}
		if _, err := s.Admit(t.Context(), store.AdmitParams{Job: j, Definition: d, Now: j.Created}); err != nil {
			t.Fatalf("Admit() error: %v", err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for size() <= before {
		if time.Now().After(deadline) {
			t.Fatalf("database file still %d bytes after 200 admissions, want it to grow", size())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// decodeWithEncodingJSON is what the fast paths must agree with.
func decodeWithEncodingJSON(text string, v any) error {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

func TestParseFlatObject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		wantOK bool
	}{
		{`{}`, true},
		{`{"a":"b"}`, true},
		{`{"a":"b,c","d":"e:f"}`, true},
		{`{"n":12345678901,"f":-1.5e+3,"z":0,"t":true,"f2":false,"x":null}`, true},
		{`{"a":""}`, true},
		{`{"":"empty key"}`, true},
		{`{"ü":"日本"}`, true},
		{`{"a":{"b":1}}`, false},
		{`{"a":[1]}`, false},
		{`{"a":"b\"c"}`, false},
		{`{"a": 1}`, false},
		{`{"a":01}`, false},
		{`{"a":1.}`, false},
		{`{"a":.5}`, false},
		{`{"a":1e}`, false},
		{`{"a":+1}`, false},
		{`{"a":tru}`, false},
		{`{"a":1,}`, false},
		{`{"a"}`, false},
		{`{"a":}`, false},
		{`{"a":"b"`, false},
		{"{\"a\":\"\x01\"}", false},
		{"{\"a\":\"\xff\"}", false},
	}
	for _, tt := range tests {
		got, ok := parseFlatObject(tt.in)
		if ok != tt.wantOK {
			t.Errorf("parseFlatObject(%q) ok = %v, want %v", tt.in, ok, tt.wantOK)
		}
		if !ok {
			continue
		}
		var want map[string]any
		if err := decodeWithEncodingJSON(tt.in, &want); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parseFlatObject(%q) = %#v, encoding/json says %#v (%v)", tt.in, got, want, err)
		}
	}
}

// FuzzParseFlatObject: whenever the fast path accepts a text, encoding/json decodes it to the
// same value.
func FuzzParseFlatObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"b"}`, `{"n":12345678901,"t":true,"x":null}`, `{"a":-0.5E-7}`, `{"a":"b","a":1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := parseFlatObject(in)
		if !ok {
			return
		}
		var want map[string]any
		if err := decodeWithEncodingJSON(in, &want); err != nil {
			t.Fatalf("parseFlatObject(%q) accepted what encoding/json rejects: %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseFlatObject(%q) = %#v, encoding/json says %#v", in, got, want)
		}
	})
}

// FuzzParseSimpleStringArray: whenever the fast path accepts a text, encoding/json decodes it
// to the same value.
func FuzzParseSimpleStringArray(f *testing.F) {
	for _, s := range []string{`[]`, `["a"]`, `["a","b,c"]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := parseSimpleStringArray(in)
		if !ok {
			return
		}
		var want []string
		if err := decodeWithEncodingJSON(in, &want); err != nil {
			t.Fatalf("parseSimpleStringArray(%q) accepted what encoding/json rejects: %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseSimpleStringArray(%q) = %#v, encoding/json says %#v", in, got, want)
		}
	})
}

// TestMigrateFromVersion1 opens a database written by the first schema: the later migrations
// apply and the existing rows read as before (tasks of that time had one attempt).
func TestMigrateFromVersion1(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "prunner.db")
	ms, err := migrations()
	if err != nil {
		t.Fatalf("migrations() error: %v", err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	for _, q := range []string{
		ms[0].SQL,
		"PRAGMA user_version = 1",
		"INSERT INTO jobs (seq, id, pipeline, status, created_at) VALUES (1, 'old', 'p', 'succeeded', 1000)",
		"INSERT INTO tasks (job_seq, position, name, status, exit_code) VALUES (1, 0, 'build', 'done', 0)",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.40s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s := openTest(t, path)
	if got := userVersion(t, s); got != len(ms) {
		t.Errorf("user_version = %d, want %d", got, len(ms))
	}
	j, err := s.Job(ctx, "old")
	if err != nil {
		t.Fatalf("Job(old) error: %v", err)
	}
	if len(j.Tasks) != 1 || j.Tasks[0].Attempt != 1 || j.Tasks[0].Attempts != nil || j.Tasks[0].Status != pipeline.TaskDone {
		t.Errorf("migrated task = %+v, want build done with attempt 1", j.Tasks)
	}
	if want := time.Unix(0, 1000).UTC(); !j.Created.Equal(want) {
		t.Errorf("Created = %v, want %v", j.Created, want)
	}
}
