package legacyimport

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/sqlite"
)

// The job IDs of the sample data directory (UUIDs, as the original makes them).
const (
	idDone       = "0b0e5f6c-1a2b-4c3d-8e9f-000000000001"
	idErrored    = "0b0e5f6c-1a2b-4c3d-8e9f-000000000002"
	idCanceled   = "0b0e5f6c-1a2b-4c3d-8e9f-000000000003"
	idRunning    = "0b0e5f6c-1a2b-4c3d-8e9f-000000000004"
	idWaiting    = "0b0e5f6c-1a2b-4c3d-8e9f-000000000005"
	idRestarted  = "0b0e5f6c-1a2b-4c3d-8e9f-000000000006"
	idReplaced   = "0b0e5f6c-1a2b-4c3d-8e9f-000000000007"
	idNoTaskLogs = "0b0e5f6c-1a2b-4c3d-8e9f-000000000008"
)

// sampleDataJSON is a data.json as the original prunner (v1.4) writes it: Go field names as
// keys, false/nil/empty fields left out, times in RFC 3339 with nanoseconds and the server's
// zone, jobs in map order (not by creation), one line with a trailing newline.
const sampleDataJSON = `{"Jobs":[` +
	// Running when the original crashed: no end, not completed.
	`{"ID":"` + idRunning + `","Pipeline":"deploy","Created":"2024-05-02T12:00:00.5+02:00","Start":"2024-05-02T12:00:01+02:00","Variables":{"env":"prod"},"User":"bob","Tasks":[` +
	`{"Name":"build","Script":["make"],"Status":"done","Start":"2024-05-02T12:00:01+02:00","End":"2024-05-02T12:00:05+02:00"},` +
	`{"Name":"upload","Script":["./upload.sh"],"DependsOn":["build"],"Status":"running","Start":"2024-05-02T12:00:05.25+02:00"},` +
	`{"Name":"notify","Script":["./notify.sh"],"DependsOn":["upload"],"Status":"waiting"}]},` +
	// Succeeded, with variables of every kind, a big number among them.
	`{"ID":"` + idDone + `","Pipeline":"release","Completed":true,"Created":"2024-05-01T10:00:00.123456789+02:00","Start":"2024-05-01T10:00:00.2+02:00","End":"2024-05-01T10:01:00+02:00",` +
	`"Variables":{"big":12345678901234567890,"id":12345678901,"ratio":0.5,"branch":"main","flag":true,"none":null,"list":[1,"two"],"nested":{"n":3}},"User":"alice","Tasks":[` +
	`{"Name":"build","Script":["make build"],"Status":"done","Start":"2024-05-01T10:00:00.3+02:00","End":"2024-05-01T10:00:30+02:00"},` +
	`{"Name":"test","Script":["make test"],"DependsOn":["build"],"AllowFailure":true,"Status":"done","Start":"2024-05-01T10:00:30+02:00","End":"2024-05-01T10:01:00+02:00"}]},` +
	// Failed: a task errored, its dependent was skipped.
	`{"ID":"` + idErrored + `","Pipeline":"release","Completed":true,"Created":"2024-05-01T11:00:00Z","Start":"2024-05-01T11:00:01Z","End":"2024-05-01T11:00:09Z","Tasks":[` +
	`{"Name":"build","Script":["make build"],"Status":"done","Start":"2024-05-01T11:00:01Z","End":"2024-05-01T11:00:05Z"},` +
	`{"Name":"lint","Script":["make lint"],"DependsOn":["build"],"Status":"error","Start":"2024-05-01T11:00:05Z","End":"2024-05-01T11:00:08Z","ExitCode":2,"Errored":true,"Error":"exit status 2"},` +
	`{"Name":"test","Script":["make test"],"DependsOn":["build"],"Status":"error","Start":"2024-05-01T11:00:05Z","End":"2024-05-01T11:00:09Z","ExitCode":42,"Errored":true,"Error":"exit status 42"},` +
	`{"Name":"deploy","Script":["make deploy"],"DependsOn":["test"],"Status":"skipped","Skipped":true}]},` +
	// Canceled while it ran.
	`{"ID":"` + idCanceled + `","Pipeline":"release","Completed":true,"Canceled":true,"Created":"2024-05-01T12:00:00Z","Start":"2024-05-01T12:00:00Z","End":"2024-05-01T12:00:07Z","Tasks":[` +
	`{"Name":"sleep","Script":["sleep 60"],"Status":"canceled","Start":"2024-05-01T12:00:00Z","End":"2024-05-01T12:00:07Z","ExitCode":-1}]},` +
	// Waiting on the wait list when the original crashed.
	`{"ID":"` + idWaiting + `","Pipeline":"deploy","Created":"2024-05-02T12:00:02+02:00","Tasks":[` +
	`{"Name":"build","Script":["make"],"Status":"waiting"}]},` +
	// Running when the original stopped; the original's restart marked it canceled, no end.
	`{"ID":"` + idRestarted + `","Pipeline":"deploy","Canceled":true,"Created":"2024-04-30T08:00:00Z","Start":"2024-04-30T08:00:01Z","Tasks":[` +
	`{"Name":"build","Script":["make"],"Status":"canceled","Start":"2024-04-30T08:00:01Z","End":"2024-04-30T08:00:03Z"}]},` +
	// Replaced on the wait list: canceled without a start.
	`{"ID":"` + idReplaced + `","Pipeline":"deploy","Canceled":true,"Created":"2024-04-30T07:00:00Z","Tasks":[` +
	`{"Name":"build","Script":["make"],"Status":"waiting"}]},` +
	// A task name that cannot be a file name of the job directory; no tasks ran output.
	`{"ID":"` + idNoTaskLogs + `","Pipeline":"odd","Completed":true,"Created":"2024-04-29T00:00:00Z","Start":"2024-04-29T00:00:00Z","End":"2024-04-29T00:00:01Z","Tasks":[` +
	`{"Name":"a/b","Script":["true"],"Status":"done","Start":"2024-04-29T00:00:00Z","End":"2024-04-29T00:00:01Z"}]}` +
	"]}\n"

// sampleLogs are the original's log files: path below DATA/logs → content.
var sampleLogs = map[string]string{
	idDone + "/build-stdout.log":     "compiling\ndone\n",
	idDone + "/build-stderr.log":     "warning: x\n",
	idDone + "/test-stdout.log":      "ok\n",
	idDone + "/test-stderr.log":      "",
	idErrored + "/test-stdout.log":   "FAIL\n",
	idErrored + "/test-stderr.log":   "assertion failed\n",
	idCanceled + "/sleep-stdout.log": "sleeping\n",
	idRunning + "/upload-stdout.log": "uploading part 1\n",
	idRunning + "/upload-stderr.log": "partial",
}

// makeOriginalDataDir lays out an original data directory and returns its path.
func makeOriginalDataDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), ".prunner")
	writeFile(t, filepath.Join(dir, DataFile), sampleDataJSON)
	for name, content := range sampleLogs {
		writeFile(t, filepath.Join(dir, "logs", filepath.FromSlash(name)), content)
	}
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func openStore(t *testing.T, dataDir string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(dataDir, "prunner.db"))
	if err != nil {
		t.Fatalf("sqlite.Open() error: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func at(s string) *time.Time {
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	u := tm.UTC()
	return &u
}

// wantJobs are the jobs of sampleDataJSON as they must be stored.
func wantJobs() []*pipeline.Job {
	return []*pipeline.Job{
		{
			ID: idNoTaskLogs, Pipeline: "odd", Status: pipeline.JobSucceeded,
			Created: *at("2024-04-29T00:00:00Z"), Start: at("2024-04-29T00:00:00Z"), End: at("2024-04-29T00:00:01Z"),
			Tasks: []pipeline.Task{
				{Name: "a/b", Status: pipeline.TaskDone, Start: at("2024-04-29T00:00:00Z"), End: at("2024-04-29T00:00:01Z")},
			},
		},
		{
			// Replaced on the wait list: canceled; the end is its creation, its task skipped.
			ID: idReplaced, Pipeline: "deploy", Status: pipeline.JobCanceled,
			Created: *at("2024-04-30T07:00:00Z"), End: at("2024-04-30T07:00:00Z"),
			Tasks: []pipeline.Task{{Name: "build", Status: pipeline.TaskSkipped}},
		},
		{
			// Marked canceled by the original's restart, never ended: failed, ends at the last
			// recorded time (its task's end); the canceled task stays canceled.
			ID: idRestarted, Pipeline: "deploy", Status: pipeline.JobFailed, Errored: true, LastError: UnfinishedError,
			Created: *at("2024-04-30T08:00:00Z"), Start: at("2024-04-30T08:00:01Z"), End: at("2024-04-30T08:00:03Z"),
			Tasks: []pipeline.Task{
				{Name: "build", Status: pipeline.TaskCanceled, Start: at("2024-04-30T08:00:01Z"), End: at("2024-04-30T08:00:03Z")},
			},
		},
		{
			ID: idDone, Pipeline: "release", Status: pipeline.JobSucceeded, User: "alice",
			Variables: map[string]any{
				"big": json.Number("12345678901234567890"), "id": json.Number("12345678901"),
				"ratio": json.Number("0.5"), "branch": "main", "flag": true, "none": nil,
				"list": []any{json.Number("1"), "two"}, "nested": map[string]any{"n": json.Number("3")},
			},
			Created: *at("2024-05-01T08:00:00.123456789Z"), Start: at("2024-05-01T08:00:00.2Z"), End: at("2024-05-01T08:01:00Z"),
			Tasks: []pipeline.Task{
				{Name: "build", Status: pipeline.TaskDone, Start: at("2024-05-01T08:00:00.3Z"), End: at("2024-05-01T08:00:30Z")},
				{Name: "test", DependsOn: []string{"build"}, Status: pipeline.TaskDone, Start: at("2024-05-01T08:00:30Z"), End: at("2024-05-01T08:01:00Z")},
			},
		},
		{
			// The first task to fail (by end) gives the last error.
			ID: idErrored, Pipeline: "release", Status: pipeline.JobFailed, Errored: true, LastError: "exit status 2",
			Created: *at("2024-05-01T11:00:00Z"), Start: at("2024-05-01T11:00:01Z"), End: at("2024-05-01T11:00:09Z"),
			Tasks: []pipeline.Task{
				{Name: "build", Status: pipeline.TaskDone, Start: at("2024-05-01T11:00:01Z"), End: at("2024-05-01T11:00:05Z")},
				{Name: "lint", DependsOn: []string{"build"}, Status: pipeline.TaskError, Start: at("2024-05-01T11:00:05Z"), End: at("2024-05-01T11:00:08Z"),
					ExitCode: 2, Errored: true, Error: "exit status 2"},
				{Name: "test", DependsOn: []string{"build"}, Status: pipeline.TaskError, Start: at("2024-05-01T11:00:05Z"), End: at("2024-05-01T11:00:09Z"),
					ExitCode: 42, Errored: true, Error: "exit status 42"},
				{Name: "deploy", DependsOn: []string{"test"}, Status: pipeline.TaskSkipped},
			},
		},
		{
			ID: idCanceled, Pipeline: "release", Status: pipeline.JobCanceled,
			Created: *at("2024-05-01T12:00:00Z"), Start: at("2024-05-01T12:00:00Z"), End: at("2024-05-01T12:00:07Z"),
			Tasks: []pipeline.Task{
				{Name: "sleep", Status: pipeline.TaskCanceled, Start: at("2024-05-01T12:00:00Z"), End: at("2024-05-01T12:00:07Z"), ExitCode: -1},
			},
		},
		{
			// Running at the crash: failed; the running task errors with the reason and ends
			// with the job, the waiting one is skipped.
			ID: idRunning, Pipeline: "deploy", Status: pipeline.JobFailed, Errored: true, LastError: UnfinishedError,
			User: "bob", Variables: map[string]any{"env": "prod"},
			Created: *at("2024-05-02T10:00:00.5Z"), Start: at("2024-05-02T10:00:01Z"), End: at("2024-05-02T10:00:05.25Z"),
			Tasks: []pipeline.Task{
				{Name: "build", Status: pipeline.TaskDone, Start: at("2024-05-02T10:00:01Z"), End: at("2024-05-02T10:00:05Z")},
				{Name: "upload", DependsOn: []string{"build"}, Status: pipeline.TaskError, Start: at("2024-05-02T10:00:05.25Z"), End: at("2024-05-02T10:00:05.25Z"),
					Errored: true, Error: UnfinishedError},
				{Name: "notify", DependsOn: []string{"upload"}, Status: pipeline.TaskSkipped},
			},
		},
		{
			// Waiting at the crash: failed too, never started.
			ID: idWaiting, Pipeline: "deploy", Status: pipeline.JobFailed, Errored: true, LastError: UnfinishedError,
			Created: *at("2024-05-02T10:00:02Z"), End: at("2024-05-02T10:00:02Z"),
			Tasks: []pipeline.Task{{Name: "build", Status: pipeline.TaskSkipped}},
		},
	}
}

// checkJob compares every field of a stored job with the expectation.
func checkJob(t *testing.T, got, want *pipeline.Job) {
	t.Helper()
	if got.ID != want.ID || got.Pipeline != want.Pipeline || got.Status != want.Status ||
		got.User != want.User || got.LastError != want.LastError || got.Errored != want.Errored ||
		got.QueuePartition != "" || got.ReplacedBy != "" || got.Definition != nil || !got.StartAfter.IsZero() {
		t.Errorf("job %s = %+v,\nwant %+v", want.ID, got, want)
	}
	if !reflect.DeepEqual(got.Variables, want.Variables) {
		t.Errorf("job %s Variables = %#v, want %#v", want.ID, got.Variables, want.Variables)
	}
	wantTime(t, "job "+want.ID+" Created", &got.Created, &want.Created)
	wantTime(t, "job "+want.ID+" Start", got.Start, want.Start)
	wantTime(t, "job "+want.ID+" End", got.End, want.End)
	if len(got.Tasks) != len(want.Tasks) {
		t.Fatalf("job %s tasks = %+v, want %+v", want.ID, got.Tasks, want.Tasks)
	}
	for i, w := range want.Tasks {
		g := got.Tasks[i]
		what := "job " + want.ID + " task " + w.Name
		if g.Name != w.Name || g.Status != w.Status || g.ExitCode != w.ExitCode || g.Errored != w.Errored ||
			g.Error != w.Error || !slices.Equal(g.DependsOn, w.DependsOn) || g.Attempt != 1 || g.Attempts != nil {
			t.Errorf("%s = %+v, want %+v", what, g, w)
		}
		wantTime(t, what+" Start", g.Start, w.Start)
		wantTime(t, what+" End", g.End, w.End)
	}
}

func wantTime(t *testing.T, what string, got, want *time.Time) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil || !got.Equal(*want):
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestRunImportsEveryJob(t *testing.T) {
	t.Parallel()
	dir := makeOriginalDataDir(t)
	st := openStore(t, dir)

	res, err := Run(t.Context(), dir, st, nil)
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	want := Result{Found: 8, Imported: 8, LogFiles: len(sampleLogs), RenamedTo: filepath.Join(dir, "data.json.imported")}
	if res != want {
		t.Errorf("Run() = %+v, want %+v", res, want)
	}

	wantList := wantJobs()
	for _, w := range wantList {
		got, err := st.Job(t.Context(), w.ID)
		if err != nil {
			t.Fatalf("Job(%s) error: %v", w.ID, err)
		}
		checkJob(t, got, w)
	}
	// Listed newest first by creation, whatever the order in data.json.
	jobs, err := st.Jobs(t.Context(), store.JobQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs, wantIDs []string
	for _, j := range jobs {
		gotIDs = append(gotIDs, j.ID)
	}
	for i := len(wantList) - 1; i >= 0; i-- {
		wantIDs = append(wantIDs, wantList[i].ID)
	}
	if !slices.Equal(gotIDs, wantIDs) {
		t.Errorf("Jobs() = %v, want %v", gotIDs, wantIDs)
	}
	// Nothing runs or waits after the import.
	if states, err := st.PipelineStates(t.Context()); err != nil || len(states) != 0 {
		t.Errorf("PipelineStates() = %v, %v; want none", states, err)
	}

	checkLogs(t, dir, true)

	// The original's file is kept, renamed, byte for byte.
	if _, err := os.Stat(filepath.Join(dir, DataFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data.json still there after the import (stat error %v)", err)
	}
	if b, err := os.ReadFile(res.RenamedTo); err != nil || string(b) != sampleDataJSON {
		t.Errorf("%s = %q, %v; want the original data.json", res.RenamedTo, b, err)
	}
}

// checkLogs checks that every original log file is readable in our layout with its content,
// and that the original files are still there.
func checkLogs(t *testing.T, dir string, wantLinked bool) {
	t.Helper()
	for name, content := range sampleLogs {
		jobID, file, _ := strings.Cut(name, "/")
		task, stream, _ := strings.Cut(strings.TrimSuffix(file, ".log"), "-")
		orig := filepath.Join(dir, "logs", jobID, file)
		ours := filepath.Join(dir, "logs", jobID, pipeline.LogFileName(task, 0, pipeline.LogStream(stream)))
		got, err := os.ReadFile(ours)
		if err != nil || string(got) != content {
			t.Errorf("log %s of task %s of job %s = %q, %v; want %q", stream, task, jobID, got, err, content)
		}
		if b, err := os.ReadFile(orig); err != nil || string(b) != content {
			t.Errorf("original log %s = %q, %v; want it unchanged", orig, b, err)
		}
		oi, err1 := os.Stat(orig)
		wi, err2 := os.Stat(ours)
		if err1 == nil && err2 == nil && os.SameFile(oi, wi) != wantLinked {
			t.Errorf("log %s: same file as the original = %v, want %v", ours, !wantLinked, wantLinked)
		}
	}
	// Tasks without output get no files; the odd task name is skipped.
	entries, err := os.ReadDir(filepath.Join(dir, "logs", idNoTaskLogs))
	if err == nil && len(entries) > 0 {
		t.Errorf("log files for job %s: %v, want none", idNoTaskLogs, entries)
	}
	for _, e := range mustGlob(t, filepath.Join(dir, "logs", "*", "*.import-tmp")) {
		t.Errorf("temporary file left: %s", e)
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRunCopiesWithoutHardLinks takes the copying path, as on a file system without hard links.
// Not parallel: it replaces linkFile (the parallel tests run after it).
func TestRunCopiesWithoutHardLinks(t *testing.T) {
	linkFile = func(string, string) error { return errors.New("hard links not supported") }
	t.Cleanup(func() { linkFile = os.Link })

	dir := makeOriginalDataDir(t)
	// A large file, to show the copy is complete (it is streamed).
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	writeFile(t, filepath.Join(dir, "logs", idDone, "build-stdout.log"), string(big))
	st := openStore(t, dir)
	res, err := Run(t.Context(), dir, st, nil)
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	if res.Imported != 8 || res.LogFiles != len(sampleLogs) {
		t.Errorf("Run() = %+v, want 8 jobs and %d log files", res, len(sampleLogs))
	}
	got, err := os.ReadFile(filepath.Join(dir, "logs", idDone, pipeline.LogFileName("build", 0, pipeline.Stdout)))
	if err != nil || !bytes.Equal(got, big) {
		t.Errorf("copied big log: %d bytes, %v; want %d bytes, equal", len(got), err, len(big))
	}
	oi, _ := os.Stat(filepath.Join(dir, "logs", idDone, "build-stdout.log"))
	wi, _ := os.Stat(filepath.Join(dir, "logs", idDone, pipeline.LogFileName("build", 0, pipeline.Stdout)))
	if os.SameFile(oi, wi) {
		t.Errorf("log was linked, want a copy")
	}
}

// TestRunOnce: a second start imports nothing; a data.json put back later is imported again
// without duplicates and without replacing the first renamed file.
func TestRunOnce(t *testing.T) {
	t.Parallel()
	dir := makeOriginalDataDir(t)
	st := openStore(t, dir)
	if _, err := Run(t.Context(), dir, st, nil); err != nil {
		t.Fatalf("first Run() error: %v", err)
	}
	// The user's later history in the new store: retention deleted a job, a log was added.
	if _, err := st.DeleteFinished(t.Context(), store.RetentionParams{Pipeline: "odd", EndedBefore: time.Now()}); err != nil {
		t.Fatal(err)
	}

	res, err := Run(t.Context(), dir, st, nil)
	if err != nil || res != (Result{}) {
		t.Fatalf("second Run() = %+v, %v; want nothing done", res, err)
	}
	if _, err := st.Job(t.Context(), idNoTaskLogs); !errors.Is(err, pipeline.ErrJobNotFound) {
		t.Errorf("job %s deleted by retention is back after a second start (error %v)", idNoTaskLogs, err)
	}

	// The user puts the file back (say, after running the original again): the known jobs are
	// skipped, and the first renamed file is kept.
	writeFile(t, filepath.Join(dir, DataFile), sampleDataJSON)
	res, err = Run(t.Context(), dir, st, nil)
	if err != nil {
		t.Fatalf("third Run() error: %v", err)
	}
	want := Result{Found: 8, Imported: 1, Skipped: 7, LogFiles: 0, RenamedTo: filepath.Join(dir, "data.json.imported.2")}
	if res != want {
		t.Errorf("third Run() = %+v, want %+v", res, want)
	}
	for _, name := range []string{"data.json.imported", "data.json.imported.2"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != sampleDataJSON {
			t.Errorf("%s = %d bytes, %v; want the original data", name, len(b), err)
		}
	}
	checkLogs(t, dir, true)
}

func TestRunWithoutDataFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := openStore(t, dir)
	res, err := Run(t.Context(), dir, st, nil)
	if err != nil || res != (Result{}) {
		t.Errorf("Run() without data.json = %+v, %v; want nothing, nil", res, err)
	}
}

// TestRunBrokenDataFile: a data file that cannot be decoded stops the import with an error that
// names the file and tells how to skip it; nothing is imported or moved.
func TestRunBrokenDataFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"truncated", sampleDataJSON[:len(sampleDataJSON)/2], "unexpected EOF"},
		{"syntax", `{"Jobs":[{"ID":"x",}]}`, "at byte"},
		{"empty", "", "empty"},
		{"wrong type", `{"Jobs":{"ID":"x"}}`, "cannot unmarshal"},
		{"trailing data", `{"Jobs":[]} {"Jobs":[]}`, "after the top-level object"},
		{"no ID", `{"Jobs":[{"Pipeline":"p","Created":"2024-05-01T11:00:00Z","Tasks":[]}]}`, "no ID"},
		{"ID with a path", `{"Jobs":[{"ID":"../x","Pipeline":"p","Created":"2024-05-01T11:00:00Z","Tasks":[]}]}`, "not a valid ID"},
		{"bad time", `{"Jobs":[{"ID":"x","Pipeline":"p","Created":"yesterday","Tasks":[]}]}`, "yesterday"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, DataFile)
			writeFile(t, path, tt.content)
			st := openStore(t, dir)
			_, err := Run(t.Context(), dir, st, nil)
			if err == nil {
				t.Fatal("Run() error = nil, want an error")
			}
			for _, part := range []string{path, tt.want, "mv " + path + " " + path + ".skip"} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("Run() error %q does not contain %q", err, part)
				}
			}
			if b, err := os.ReadFile(path); err != nil || string(b) != tt.content {
				t.Errorf("data.json after a failed import = %q, %v; want it untouched", b, err)
			}
			if jobs, err := st.Jobs(t.Context(), store.JobQuery{}); err != nil || len(jobs) != 0 {
				t.Errorf("Jobs() after a failed import = %d jobs, %v; want none", len(jobs), err)
			}
		})
	}
}

// TestConvertStatuses covers the status mapping for each combination of the original's flags.
func TestConvertStatuses(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Second)
	done := legacyTask{Name: "a", Status: "done", Start: &t0, End: &t1}
	failed := legacyTask{Name: "a", Status: "error", Start: &t0, End: &t1, Errored: true, ExitCode: 1, Error: ptr("exit status 1")}
	tests := []struct {
		name          string
		job           legacyJob
		want          pipeline.JobStatus
		wantLastError string
	}{
		{"completed", legacyJob{Completed: true, Start: &t0, End: &t1, Tasks: []legacyTask{done}}, pipeline.JobSucceeded, ""},
		{"completed, task errored", legacyJob{Completed: true, Start: &t0, End: &t1, Tasks: []legacyTask{failed}}, pipeline.JobFailed, "exit status 1"},
		{"canceled after a task failed", legacyJob{Completed: true, Canceled: true, Start: &t0, End: &t1, Tasks: []legacyTask{failed}}, pipeline.JobFailed, "exit status 1"},
		{"canceled while running", legacyJob{Completed: true, Canceled: true, Start: &t0, End: &t1}, pipeline.JobCanceled, ""},
		{"canceled while waiting", legacyJob{Canceled: true}, pipeline.JobCanceled, ""},
		{"running", legacyJob{Start: &t0, Tasks: []legacyTask{done}}, pipeline.JobFailed, UnfinishedError},
		{"running, marked canceled by a restart", legacyJob{Canceled: true, Start: &t0}, pipeline.JobFailed, UnfinishedError},
		{"waiting", legacyJob{}, pipeline.JobFailed, UnfinishedError},
		{"end without completion", legacyJob{Start: &t0, End: &t1}, pipeline.JobFailed, UnfinishedError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lj := tt.job
			lj.ID, lj.Pipeline, lj.Created = "j", "p", t0
			j, err := convert(&lj)
			if err != nil {
				t.Fatalf("convert() error: %v", err)
			}
			if j.Status != tt.want || j.LastError != tt.wantLastError {
				t.Errorf("convert() status %q, LastError %q; want %q, %q", j.Status, j.LastError, tt.want, tt.wantLastError)
			}
			if !j.Status.Final() || j.End == nil {
				t.Errorf("convert() status %q, End %v; want a final status with an end", j.Status, j.End)
			}
			if j.Errored != (tt.want == pipeline.JobFailed) {
				t.Errorf("convert() Errored = %v for status %q", j.Errored, j.Status)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
