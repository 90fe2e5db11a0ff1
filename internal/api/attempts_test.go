package api

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

const jobRetriedID = "0b5a7b2e-6f0a-4c53-9b1e-4d7e2a0c5555"

// seedRetried adds a finished job whose task "flaky" succeeded in its third attempt.
func seedRetried(f *fakeRunner) {
	t0 := time.Date(2026, 11, 28, 1, 20, 21, 987654321, time.UTC)
	end := t0.Add(10 * time.Second)
	f.addJob(&pipeline.Job{
		ID: jobRetriedID, Pipeline: "deploy", Status: pipeline.JobSucceeded, Created: t0, Start: &t0, End: &end,
		Tasks: []pipeline.Task{{
			Name: "flaky", Status: pipeline.TaskDone, Start: &t0, End: &end, Attempt: 3,
			Attempts: []pipeline.TaskAttempt{
				{Number: 1, Start: t0, End: t0.Add(time.Second), ExitCode: 1, Error: "exit status 1"},
				{Number: 2, Start: t0.Add(2 * time.Second), End: t0.Add(3 * time.Second), ExitCode: -1, Error: "timeout: task exceeded 1s"},
			},
		}},
	})
	for _, a := range []struct {
		key, out string
	}{
		{jobRetriedID + "/flaky#1/stdout", "attempt 1\n"},
		{jobRetriedID + "/flaky#2/stdout", "attempt 2\n"},
		{jobRetriedID + "/flaky#2/stderr", "slow\n"},
		{jobRetriedID + "/flaky/stdout", "attempt 3\n"},
	} {
		f.logs[a.key] = func() io.Reader { return strings.NewReader(a.out) }
	}
}

func TestJobLogsAttempt(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	seedRetried(e.runner)
	tests := []struct {
		query      string
		wantStdout string
		wantStderr string
	}{
		{"", "attempt 3\n", ""},
		{"&attempt=1", "attempt 1\n", ""},
		{"&attempt=2", "attempt 2\n", "slow\n"},
		{"&attempt=3", "attempt 3\n", ""},
	}
	for _, tt := range tests {
		resp, body := e.do(t, http.MethodGet, "/job/logs?id="+jobRetriedID+"&task=flaky"+tt.query, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("logs%s: status %d, body %s", tt.query, resp.StatusCode, body)
		}
		if want := wantLogsBody(t, tt.wantStdout, tt.wantStderr); string(body) != want {
			t.Errorf("logs%s = %s, want %s", tt.query, body, want)
		}
	}
	// A task that was not retried has exactly one attempt.
	resp, body := e.do(t, http.MethodGet, "/job/logs?id="+jobFinishedID+"&task=build&attempt=1", "")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("attempt 1 of a task without retries: status %d, body %s", resp.StatusCode, body)
	}
	if o, c := e.runner.opened.Load(), e.runner.closed.Load(); o != c {
		t.Errorf("opened %d, closed %d log readers", o, c)
	}
}

func TestJobLogsAttemptErrors(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	seedRetried(e.runner)
	tests := []struct {
		target string
		status int
		msg    string
	}{
		{"/job/logs?id=" + jobRetriedID + "&task=flaky&attempt=0", http.StatusBadRequest, "Invalid attempt: must be a positive number"},
		{"/job/logs?id=" + jobRetriedID + "&task=flaky&attempt=-1", http.StatusBadRequest, "Invalid attempt: must be a positive number"},
		{"/job/logs?id=" + jobRetriedID + "&task=flaky&attempt=two", http.StatusBadRequest, "Invalid attempt: must be a positive number"},
		{"/job/logs?id=" + jobRetriedID + "&task=flaky&attempt=99999999999999999999", http.StatusBadRequest, "Invalid attempt: must be a positive number"},
		{"/job/logs?id=" + jobRetriedID + "&task=flaky&attempt=4", http.StatusNotFound, "Attempt not found"},
		{"/job/logs?id=" + jobFinishedID + "&task=build&attempt=2", http.StatusNotFound, "Attempt not found"},
		{"/job/logs?id=" + jobRetriedID + "&task=nope&attempt=1", http.StatusNotFound, "Task not found"},
	}
	for _, tt := range tests {
		resp, body := e.do(t, http.MethodGet, tt.target, "")
		wantError(t, resp, body, tt.status, tt.msg)
	}
}

func TestJobDetailAttempts(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seedRetried(e.runner)
	resp, body := e.do(t, http.MethodGet, "/job/detail?id="+jobRetriedID, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	want := `"tasks":[{"name":"flaky","status":"done","start":"2026-11-28T01:20:21Z","end":"2026-11-28T01:20:31Z",` +
		`"skipped":false,"exitCode":0,"errored":false,"attempt":3,"attempts":[` +
		`{"number":1,"start":"2026-11-28T01:20:21Z","end":"2026-11-28T01:20:22Z","exitCode":1,"error":"exit status 1"},` +
		`{"number":2,"start":"2026-11-28T01:20:23Z","end":"2026-11-28T01:20:24Z","exitCode":-1,"error":"timeout: task exceeded 1s"}]}]`
	if !strings.Contains(string(body), want) {
		t.Errorf("body =\n%s\nwant it to contain\n%s", body, want)
	}
	checkJobShape(t, decodeJSON(t, body))
}
