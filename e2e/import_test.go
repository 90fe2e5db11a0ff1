package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The IDs of the jobs of the original prunner's data directory below.
const (
	importedDone    = "7d5c1f0e-0000-4000-8000-000000000001"
	importedFailed  = "7d5c1f0e-0000-4000-8000-000000000002"
	importedRunning = "7d5c1f0e-0000-4000-8000-000000000003"
)

// originalDataJSON is a data.json of the original prunner (v1.4): Go field names as keys, times
// with the server's zone, jobs in no particular order. The pipeline "gone" is not defined any
// more: its history stays.
const originalDataJSON = `{"Jobs":[` +
	`{"ID":"` + importedRunning + `","Pipeline":"gone","Created":"2024-05-02T12:00:00+02:00","Start":"2024-05-02T12:00:01+02:00","Tasks":[` +
	`{"Name":"sync","Script":["rsync"],"Status":"running","Start":"2024-05-02T12:00:01+02:00"}]},` +
	`{"ID":"` + importedDone + `","Pipeline":"release","Completed":true,"Created":"2024-05-01T10:00:00.123+02:00","Start":"2024-05-01T10:00:01+02:00","End":"2024-05-01T10:01:00+02:00",` +
	`"Variables":{"ticket":12345678901234567890,"branch":"main"},"User":"alice","Tasks":[` +
	`{"Name":"build","Script":["make"],"Status":"done","Start":"2024-05-01T10:00:01+02:00","End":"2024-05-01T10:00:30+02:00"},` +
	`{"Name":"test","Script":["make test"],"DependsOn":["build"],"Status":"done","Start":"2024-05-01T10:00:30+02:00","End":"2024-05-01T10:01:00+02:00"}]},` +
	`{"ID":"` + importedFailed + `","Pipeline":"release","Completed":true,"Created":"2024-05-01T11:00:00Z","Start":"2024-05-01T11:00:00Z","End":"2024-05-01T11:00:05Z","Tasks":[` +
	`{"Name":"build","Script":["make"],"Status":"error","Start":"2024-05-01T11:00:00Z","End":"2024-05-01T11:00:05Z","ExitCode":2,"Errored":true,"Error":"exit status 2"},` +
	`{"Name":"test","Script":["make test"],"DependsOn":["build"],"Status":"skipped","Skipped":true}]}` +
	"]}\n"

// layOutOriginalDataDir writes the original's data.json and task logs into dataDir.
func layOutOriginalDataDir(t *testing.T, dataDir string) {
	t.Helper()
	writeFile(t, filepath.Join(dataDir, "data.json"), originalDataJSON)
	for name, content := range map[string]string{
		importedDone + "/build-stdout.log":   "compiled\n",
		importedDone + "/build-stderr.log":   "warning: unused\n",
		importedDone + "/test-stdout.log":    "PASS\n",
		importedFailed + "/build-stderr.log": "error: syntax\n",
		importedRunning + "/sync-stdout.log": "sent 1 of 2",
	} {
		writeFile(t, filepath.Join(dataDir, "logs", filepath.FromSlash(name)), content)
	}
}

func TestImportOriginalDataDirectory(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  release:
    tasks:
      build: {script: ["echo new build"]}
`)
	layOutOriginalDataDir(t, s.dataDir)
	s.start()
	// The import is logged before "prunner started"; the API may answer before that line has
	// reached the test.
	if out := s.waitOutput("prunner started", 10*time.Second); !strings.Contains(out, "imported the history of the original prunner") || !strings.Contains(out, "jobs=3") {
		t.Errorf("start-up output does not report 3 imported jobs:\n%s", out)
	}

	done := s.job(importedDone)
	if done.Pipeline != "release" || !done.Completed || done.Canceled || done.Errored || done.User != "alice" ||
		done.Created != "2024-05-01T08:00:00Z" || deref(done.Start) != "2024-05-01T08:00:01Z" || deref(done.End) != "2024-05-01T08:01:00Z" ||
		done.LastError != "" || done.Variables["branch"] != "main" {
		t.Errorf("imported done job = %+v", done)
	}
	if tk := done.task("test"); tk.Status != "done" || len(tk.DependsOn) != 1 || tk.DependsOn[0] != "build" ||
		deref(tk.Start) != "2024-05-01T08:00:30Z" || deref(tk.End) != "2024-05-01T08:01:00Z" {
		t.Errorf("imported task test = %+v", tk)
	}
	// The big number keeps its digits.
	if status, body := s.do("GET", "/job/detail?id="+importedDone, nil); status != http.StatusOK || !strings.Contains(string(body), `"ticket":12345678901234567890`) {
		t.Errorf("job detail = %d %s; want the variable ticket as 12345678901234567890", status, body)
	}
	if stdout, stderr := s.logs(importedDone, "build"); stdout != "compiled\n" || stderr != "warning: unused\n" {
		t.Errorf("logs of build = %q, %q", stdout, stderr)
	}
	if stdout, stderr := s.logs(importedDone, "test"); stdout != "PASS\n" || stderr != "" {
		t.Errorf("logs of test = %q, %q", stdout, stderr)
	}

	failed := s.job(importedFailed)
	if !failed.Completed || !failed.Errored || failed.Canceled || failed.LastError != "exit status 2" {
		t.Errorf("imported failed job = %+v", failed)
	}
	if tk := failed.task("build"); tk.Status != "error" || tk.ExitCode != 2 || !tk.Errored || tk.Error != "exit status 2" {
		t.Errorf("imported failed task = %+v", tk)
	}
	if tk := failed.task("test"); tk.Status != "skipped" || !tk.Skipped {
		t.Errorf("imported skipped task = %+v", tk)
	}
	if _, stderr := s.logs(importedFailed, "build"); stderr != "error: syntax\n" {
		t.Errorf("stderr of failed build = %q", stderr)
	}

	running := s.job(importedRunning)
	const unfinished = "imported from the original prunner data directory without an end (the original server stopped while it ran or waited)"
	if running.Pipeline != "gone" || !running.Errored || running.LastError != unfinished || running.End == nil {
		t.Errorf("job running at the original's crash = %+v", running)
	}
	if tk := running.task("sync"); tk.Status != "error" || tk.Error != unfinished {
		t.Errorf("task running at the original's crash = %+v", tk)
	}
	if stdout, _ := s.logs(importedRunning, "sync"); stdout != "sent 1 of 2" {
		t.Errorf("partial output of sync = %q", stdout)
	}

	// The imported jobs are listed, and the original's file is kept under a new name.
	if status, body := s.do("GET", "/pipelines/jobs", nil); status != http.StatusOK ||
		!strings.Contains(string(body), importedDone) || !strings.Contains(string(body), importedRunning) {
		t.Errorf("job list = %d %s; want the imported jobs", status, body)
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "data.json")); !os.IsNotExist(err) {
		t.Errorf("data.json still in place after the import (stat: %v)", err)
	}
	if b, err := os.ReadFile(filepath.Join(s.dataDir, "data.json.imported")); err != nil || string(b) != originalDataJSON {
		t.Errorf("data.json.imported = %d bytes, %v; want the original file", len(b), err)
	}

	// New jobs run next to the history; a restart imports nothing again.
	id := s.schedule("release", nil)
	if j := s.waitFinished(id); j.Errored {
		t.Errorf("new job = %+v", j)
	}
	s.signal(syscall.SIGTERM)
	if code := s.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	s.restart()
	if out := s.waitOutput("prunner started", 10*time.Second); strings.Contains(out, "imported the history") {
		t.Errorf("second start imported again:\n%s", out)
	}
	if j := s.job(importedDone); !j.Completed || j.User != "alice" {
		t.Errorf("imported job after restart = %+v", j)
	}
}

func TestBrokenOriginalDataFileStopsStartup(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  release:
    tasks:
      build: {script: ["true"]}
`)
	path := filepath.Join(s.dataDir, "data.json")
	writeFile(t, path, originalDataJSON[:100])
	s.startNoWait()
	if code := s.wait(5 * time.Second); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	out := s.output.String()
	for _, want := range []string{path, "mv " + path + " " + path + ".skip"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != originalDataJSON[:100] {
		t.Errorf("data.json after the refused start = %q, %v; want it untouched", b, err)
	}
	// Moving it away, as the message says, starts the server without the history.
	if err := os.Rename(path, path+".skip"); err != nil {
		t.Fatal(err)
	}
	s.start()
	if status, _ := s.do("GET", "/job/detail?id="+importedDone, nil); status != http.StatusNotFound {
		t.Errorf("job detail of a skipped import = %d, want 404", status)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
