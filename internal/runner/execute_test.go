package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// TestJobRunsTheDAG runs each pipeline as a job on a real runner and checks how the job and each
// task ended.
func TestJobRunsTheDAG(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		pipeline  string
		status    pipeline.JobStatus
		lastError string
		tasks     map[string]pipeline.TaskStatus
		// ran lists the tasks that must have written their name to ran.txt, in order.
		ran []string
	}{
		{
			name: "tasks run in dependency order",
			pipeline: `
    tasks:
      a: {script: ["echo a >> ran.txt"]}
      b: {script: ["echo b >> ran.txt"], depends_on: [a]}
      c: {script: ["echo c >> ran.txt"], depends_on: [b]}
      d: {script: ["echo d >> ran.txt"], depends_on: [c, a]}`,
			status: pipeline.JobSucceeded,
			tasks:  map[string]pipeline.TaskStatus{"a": pipeline.TaskDone, "b": pipeline.TaskDone, "c": pipeline.TaskDone, "d": pipeline.TaskDone},
			ran:    []string{"a", "b", "c", "d"},
		},
		{
			name: "fail-fast cancels the running tasks and skips the rest",
			pipeline: `
    tasks:
      bad: {script: ["sleep 0.2", "exit 3"]}
      slow: {script: ["sleep 20", "echo slow >> ran.txt"]}
      after: {script: ["echo after >> ran.txt"], depends_on: [bad]}
      other: {script: ["echo other >> ran.txt"], depends_on: [slow]}`,
			status:    pipeline.JobFailed,
			lastError: "exit status 3",
			tasks:     map[string]pipeline.TaskStatus{"bad": pipeline.TaskError, "slow": pipeline.TaskCanceled, "after": pipeline.TaskSkipped, "other": pipeline.TaskSkipped},
		},
		{
			name: "continue after failure runs the independent branches and skips the failed task's dependents",
			pipeline: `
    continue_running_tasks_after_failure: true
    tasks:
      bad: {script: ["exit 3"]}
      slow: {script: ["sleep 0.3", "echo slow >> ran.txt"]}
      next: {script: ["echo next >> ran.txt"], depends_on: [slow]}
      after: {script: ["echo after >> ran.txt"], depends_on: [bad]}
      afterafter: {script: ["echo afterafter >> ran.txt"], depends_on: [after]}
      join: {script: ["echo join >> ran.txt"], depends_on: [slow, bad]}`,
			status:    pipeline.JobFailed,
			lastError: "exit status 3",
			tasks: map[string]pipeline.TaskStatus{"bad": pipeline.TaskError, "slow": pipeline.TaskDone, "next": pipeline.TaskDone,
				"after": pipeline.TaskSkipped, "afterafter": pipeline.TaskSkipped, "join": pipeline.TaskSkipped},
			ran: []string{"slow", "next"},
		},
		{
			name: "allow_failure lets the dependents run",
			pipeline: `
    tasks:
      allowed: {script: ["false", "echo allowed >> ran.txt"], allow_failure: true}
      after: {script: ["echo after >> ran.txt"], depends_on: [allowed]}`,
			status: pipeline.JobSucceeded,
			tasks:  map[string]pipeline.TaskStatus{"allowed": pipeline.TaskDone, "after": pipeline.TaskDone},
			ran:    []string{"allowed", "after"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, dir := startRunner(t, "pipelines:\n  p:"+tt.pipeline+"\n")
			start := time.Now()
			j := waitDone(t, r, schedule(t, r, "p"))
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("job took %v, want no task left to run out its sleep", elapsed)
			}
			if j.Status != tt.status || j.LastError != tt.lastError {
				t.Errorf("job = %s %q, want %s %q", j.Status, j.LastError, tt.status, tt.lastError)
			}
			if errored := tt.status == pipeline.JobFailed; j.Errored != errored {
				t.Errorf("job errored = %v, want %v", j.Errored, errored)
			}
			for name, want := range tt.tasks {
				if got := j.Task(name); got == nil || got.Status != want {
					t.Errorf("task %s = %+v, want %s", name, got, want)
				}
			}
			if len(j.Tasks) != len(tt.tasks) {
				t.Errorf("job has %d tasks, want %d (no on_error)", len(j.Tasks), len(tt.tasks))
			}
			out, _ := os.ReadFile(filepath.Join(dir, "ran.txt"))
			if got := strings.Fields(string(out)); strings.Join(got, " ") != strings.Join(tt.ran, " ") {
				t.Errorf("ran %v, want %v", got, tt.ran)
			}
		})
	}
}

func TestOnErrorRunsOnceWithTheFailedTask(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		pipeline string
		// onError is the on_error task's status, errored flag and exit code.
		onError pipeline.Task
		// stdout is what on_error appended to on_error.txt.
		stdout string
	}{
		{
			name: "after a failure, with the first failed task's details",
			pipeline: `
    continue_running_tasks_after_failure: true
    tasks:
      bad: {script: ["echo some-output", "echo some-error >&2", "exit 7"]}
      later: {script: ["sleep 0.2", "exit 8"]}
    on_error:
      script: ["echo '{{ .failedTaskName }}|{{ .failedTaskExitCode }}|{{ .failedTaskError }}|{{ .failedTaskStdout }}|{{ .failedTaskStderr }}' >> on_error.txt"]`,
			onError: pipeline.Task{Status: pipeline.TaskDone},
			stdout:  "bad|7|exit status 7|some-output\n|some-error\n\n",
		},
		{
			name: "a failing on_error is errored",
			pipeline: `
    tasks:
      bad: {script: ["exit 1"]}
    on_error:
      script: ["echo '{{ .failedTaskName }}|{{ .failedTaskExitCode }}' >> on_error.txt", "exit 9"]`,
			onError: pipeline.Task{Status: pipeline.TaskError, Errored: true, ExitCode: 9},
			stdout:  "bad|1\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, dir := startRunner(t, "pipelines:\n  p:"+tt.pipeline+"\n")
			j := waitDone(t, r, schedule(t, r, "p"))
			if j.Status != pipeline.JobFailed {
				t.Errorf("job = %s %q, want failed", j.Status, j.LastError)
			}
			last := j.Tasks[len(j.Tasks)-1]
			if last.Name != pipeline.OnErrorTaskName || last.Status != tt.onError.Status || last.Errored != tt.onError.Errored || last.ExitCode != tt.onError.ExitCode {
				t.Errorf("last task = %+v, want on_error %s errored %v exit code %d", last, tt.onError.Status, tt.onError.Errored, tt.onError.ExitCode)
			}
			out, err := os.ReadFile(filepath.Join(dir, "on_error.txt"))
			if err != nil || string(out) != tt.stdout {
				t.Errorf("on_error wrote %q (%v), want once %q", out, err, tt.stdout)
			}
		})
	}
}

func TestOnErrorDoesNotRunAfterACancel(t *testing.T) {
	t.Parallel()
	r, dir := startRunner(t, `
pipelines:
  p:
    tasks:
      t: {script: ["sleep 30"]}
      after: {script: ["true"], depends_on: [t]}
    on_error:
      script: ["touch on_error.txt"]
`)
	id := schedule(t, r, "p")
	waitJob(t, r, id, "running its task", func(j *pipeline.Job) bool { return j.Task("t").Status == pipeline.TaskRunning })
	if err := r.Cancel(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	j := waitDone(t, r, id)
	if j.Status != pipeline.JobCanceled || j.LastError != errCanceledByRequest.Error() {
		t.Errorf("job = %s %q, want canceled by request", j.Status, j.LastError)
	}
	if got := j.Task("t").Status; got != pipeline.TaskCanceled {
		t.Errorf("t = %s, want canceled", got)
	}
	if got := j.Task("after").Status; got != pipeline.TaskSkipped {
		t.Errorf("after = %s, want skipped", got)
	}
	if oe := j.Task(pipeline.OnErrorTaskName); oe != nil {
		t.Errorf("on_error ran after a cancel: %+v", oe)
	}
	if _, err := os.Stat(filepath.Join(dir, "on_error.txt")); err == nil {
		t.Error("on_error's script ran after a cancel")
	}
}

// TestAllowFailureReportsTheLastFailingExitCode: a task with allow_failure whose lines fail ends
// done and not errored, its dependents run and the job succeeds, but its exit code is the last
// failing line's (as the original prunner reports it), so the record shows that something failed.
func TestAllowFailureReportsTheLastFailingExitCode(t *testing.T) {
	t.Parallel()
	r, _ := startRunner(t, `pipelines:
  p:
    tasks:
      allowed: {script: ["sh -c 'exit 2'", "echo between", "exit 3"], allow_failure: true}
      clean: {script: ["true"], allow_failure: true}
      after: {script: ["true"], depends_on: [allowed]}
`)
	j := waitDone(t, r, schedule(t, r, "p"))
	if j.Status != pipeline.JobSucceeded || j.Errored {
		t.Errorf("job = %s (errored %v), want succeeded", j.Status, j.Errored)
	}
	tests := []struct {
		task     string
		exitCode int
	}{
		{"allowed", 3},
		{"clean", 0},
		{"after", 0},
	}
	for _, tt := range tests {
		got := j.Task(tt.task)
		if got == nil || got.Status != pipeline.TaskDone || got.Errored || got.Error != "" || got.ExitCode != tt.exitCode {
			t.Errorf("task %s = %+v, want done, not errored, exit code %d", tt.task, got, tt.exitCode)
		}
	}
}
