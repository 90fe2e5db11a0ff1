package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// attemptsJSON is the part of the job detail that describes the attempts of retried tasks.
type attemptsJSON struct {
	Tasks []struct {
		Name     string `json:"name"`
		Status   string `json:"status"`
		Error    string `json:"error"`
		Attempt  int    `json:"attempt"`
		Attempts []struct {
			Number   int    `json:"number"`
			Start    string `json:"start"`
			End      string `json:"end"`
			ExitCode int    `json:"exitCode"`
			Error    string `json:"error"`
		} `json:"attempts"`
	} `json:"tasks"`
}

// attempts returns the attempt number and the earlier attempts of a task of a job.
func (s *server) attempts(id, task string) (int, []int) {
	s.t.Helper()
	status, body := s.do("GET", "/job/detail?id="+id, nil)
	if status != 200 {
		s.t.Fatalf("job detail %s: status %d, body %s", id, status, body)
	}
	var j attemptsJSON
	if err := json.Unmarshal(body, &j); err != nil {
		s.t.Fatalf("job detail %s: %v", body, err)
	}
	for _, t := range j.Tasks {
		if t.Name != task {
			continue
		}
		var codes []int
		for i, a := range t.Attempts {
			if a.Number != i+1 || a.Start == "" || a.End == "" {
				s.t.Errorf("task %s: attempt %d = %+v, want number %d with start and end", task, i+1, a, i+1)
			}
			codes = append(codes, a.ExitCode)
		}
		return t.Attempt, codes
	}
	s.t.Fatalf("job %s has no task %s: %s", id, task, body)
	return 0, nil
}

// attemptLogs returns the stdout of one attempt of a task through GET /job/logs?attempt=N.
func (s *server) attemptLogs(id, task string, attempt int) string {
	s.t.Helper()
	status, body := s.do("GET", fmt.Sprintf("/job/logs?id=%s&task=%s&attempt=%d", id, task, attempt), nil)
	if status != 200 {
		s.t.Fatalf("logs %s/%s attempt %d: status %d, body %s", id, task, attempt, status, body)
	}
	var l struct {
		Stdout string `json:"stdout"`
	}
	if err := json.Unmarshal(body, &l); err != nil {
		s.t.Fatalf("logs %s: %v", body, err)
	}
	return l.Stdout
}

func TestTaskTimeoutKillsGrandchildren(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  slow:
    tasks:
      hang:
        script: ["sh -c 'sleep 300 & echo $! > gc.pid; wait'"]
        timeout: 500ms
`).start()
	start := time.Now()
	j := s.waitFinished(s.schedule("slow", nil))
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("job took %v, want the task killed after 500ms", elapsed)
	}
	task := j.task("hang")
	if task.Status != "error" || !task.Errored || task.Error != "timeout: task exceeded 500ms" {
		t.Errorf("task = %+v, want error %q", task, "timeout: task exceeded 500ms")
	}
	if !j.Errored || j.Canceled || j.LastError != "timeout: task exceeded 500ms" {
		t.Errorf("job errored %v canceled %v lastError %q, want a failure with the timeout", j.Errored, j.Canceled, j.LastError)
	}
	gc := readPid(t, filepath.Join(s.dir, "gc.pid"))
	eventually(t, 5*time.Second, "the grandchild to die", func() bool { return !pidAlive(gc) })
}

func TestJobTimeoutKillsRunningTasksAndRunsOnError(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  bounded:
    timeout: 1s
    tasks:
      prepare: {script: ["true"]}
      hang: {script: ["sh -c 'sleep 300 & echo $! > gc.pid; wait'"], depends_on: [prepare]}
      other: {script: ["sleep 300"], depends_on: [prepare]}
      after: {script: ["touch after.txt"], depends_on: [hang]}
    on_error:
      script: ["echo '{{ .failedTaskError }}' > on_error.txt"]
`).start()
	start := time.Now()
	j := s.waitFinished(s.schedule("bounded", nil))
	if elapsed := time.Since(start); elapsed < time.Second || elapsed > 15*time.Second {
		t.Errorf("job took %v, want it stopped after its 1s timeout", elapsed)
	}
	if !j.Completed || !j.Errored || j.Canceled || j.LastError != "timeout: job exceeded 1s" {
		t.Errorf("job completed %v errored %v canceled %v lastError %q, want failed by the job timeout",
			j.Completed, j.Errored, j.Canceled, j.LastError)
	}
	for name, want := range map[string]string{"prepare": "done", "hang": "error", "other": "error", "after": "skipped", "on_error": "done"} {
		if got := j.task(name).Status; got != want {
			t.Errorf("task %s = %q, want %q", name, got, want)
		}
	}
	if got := j.task("hang").Error; got != "timeout: job exceeded 1s" {
		t.Errorf("hang error = %q, want the job timeout", got)
	}
	gc := readPid(t, filepath.Join(s.dir, "gc.pid"))
	eventually(t, 5*time.Second, "the grandchild to die", func() bool { return !pidAlive(gc) })
	if out, _ := os.ReadFile(filepath.Join(s.dir, "on_error.txt")); string(out) != "timeout: job exceeded 1s\n" {
		t.Errorf("on_error wrote %q, want the timeout", out)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "after.txt")); err == nil {
		t.Error("a task after the timeout ran")
	}
}

const counterScript = `n=$(cat c 2>/dev/null || echo 0); n=$((n+1)); echo $n > c; echo attempt $n; [ $n -ge 3 ]`

func TestRetriesKeepEachAttempt(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  flaky:
    tasks:
      flaky:
        script: ["`+counterScript+`"]
        retry: {attempts: 5, delay: 300ms, backoff: 2}
`).start()
	start := time.Now()
	id := s.schedule("flaky", nil)
	j := s.waitFinished(id)
	// Two failed attempts: 300ms after the first, 600ms after the second.
	if elapsed := time.Since(start); elapsed < 900*time.Millisecond {
		t.Errorf("job took %v, want at least the delays 300ms + 600ms", elapsed)
	}
	if j.Errored || j.task("flaky").Status != "done" {
		t.Fatalf("job = %+v, want done in the third attempt", j)
	}
	attempt, codes := s.attempts(id, "flaky")
	if attempt != 3 || fmt.Sprint(codes) != "[1 1]" {
		t.Errorf("attempt %d, earlier exit codes %v, want 3 after [1 1]", attempt, codes)
	}

	// The default is the last attempt; each attempt's output is kept.
	if out, _ := s.logs(id, "flaky"); out != "attempt 3\n" {
		t.Errorf("default logs = %q, want the last attempt's", out)
	}
	for n := 1; n <= 3; n++ {
		if got, want := s.attemptLogs(id, "flaky", n), fmt.Sprintf("attempt %d\n", n); got != want {
			t.Errorf("logs of attempt %d = %q, want %q", n, got, want)
		}
	}
	for _, tt := range []struct {
		attempt string
		status  int
		msg     string
	}{
		{"4", 404, "Attempt not found"},
		{"0", 400, "Invalid attempt"},
		{"x", 400, "Invalid attempt"},
	} {
		status, body := s.do("GET", "/job/logs?id="+id+"&task=flaky&attempt="+tt.attempt, nil)
		if status != tt.status || !strings.Contains(string(body), tt.msg) {
			t.Errorf("attempt=%s: status %d body %s, want %d %q", tt.attempt, status, body, tt.status, tt.msg)
		}
	}
}

func TestRetriesStopAtCancel(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  failing:
    tasks:
      failing:
        script: ["echo run >> runs.txt; exit 1"]
        retry: {attempts: 5, delay: 1m}
    on_error:
      script: ["touch on_error.txt"]
`).start()
	id := s.schedule("failing", nil)
	eventually(t, 10*time.Second, "the first attempt to fail", func() bool {
		attempt, codes := s.attempts(id, "failing")
		return attempt == 2 && len(codes) == 1
	})
	start := time.Now()
	if status, body := s.do("POST", "/job/cancel?id="+id, nil); status != 200 {
		t.Fatalf("cancel: status %d, body %s", status, body)
	}
	j := s.waitFinished(id)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("cancel took %v, want the retry delay cut short", elapsed)
	}
	if !j.Canceled || j.task("failing").Status != "canceled" {
		t.Errorf("job canceled %v, task %+v, want both canceled", j.Canceled, j.task("failing"))
	}
	if runs, _ := os.ReadFile(filepath.Join(s.dir, "runs.txt")); string(runs) != "run\n" {
		t.Errorf("the task ran %q, want once", runs)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "on_error.txt")); err == nil {
		t.Error("on_error ran after a cancel request")
	}
}

func TestOnErrorRunsOnceAfterTheLastAttempt(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  broken:
    tasks:
      broken:
        script: ["n=$(cat c 2>/dev/null || echo 0); n=$((n+1)); echo $n > c; echo output $n; exit 7"]
        retry: {attempts: 3, delay: 100ms}
    on_error:
      script: ["echo '{{ .failedTaskName }} {{ .failedTaskExitCode }} {{ .failedTaskStdout }}' >> on_error.txt"]
`).start()
	id := s.schedule("broken", nil)
	j := s.waitFinished(id)
	if !j.Errored || j.LastError != "exit status 7" || j.task("on_error").Status != "done" {
		t.Fatalf("job = %+v, want failed with exit status 7 and on_error done", j)
	}
	if attempt, codes := s.attempts(id, "broken"); attempt != 3 || fmt.Sprint(codes) != "[7 7]" {
		t.Errorf("attempt %d, earlier exit codes %v, want 3 after [7 7]", attempt, codes)
	}
	out, _ := os.ReadFile(filepath.Join(s.dir, "on_error.txt"))
	if got := strings.Join(strings.Fields(string(out)), " "); got != "broken 7 output 3" {
		t.Errorf("on_error wrote %q, want one run with the last attempt's output", out)
	}
}
