package runner

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// graph returns waiting tasks from a compact spec: "a b:a c:a,b" is a; b depending on a; c
// depending on a and b.
func graph(t *testing.T, spec string) []pipeline.Task {
	t.Helper()
	var tasks []pipeline.Task
	for _, field := range strings.Fields(spec) {
		name, deps, _ := strings.Cut(field, ":")
		task := pipeline.Task{Name: name, Status: pipeline.TaskWaiting}
		if deps != "" {
			task.DependsOn = strings.Split(deps, ",")
		}
		tasks = append(tasks, task)
	}
	return tasks
}

// dagStep ends one running task and says what the DAG must answer.
type dagStep struct {
	finish  string
	as      pipeline.TaskStatus
	skipped []string
	// started is what start returns after the step.
	started []string
}

func TestDAG(t *testing.T) {
	t.Parallel()
	const (
		done     = pipeline.TaskDone
		failed   = pipeline.TaskError
		canceled = pipeline.TaskCanceled
	)
	tests := []struct {
		name                 string
		tasks                string
		continueAfterFailure bool
		first                []string
		steps                []dagStep
		unfinished           bool
	}{
		{
			name:  "a chain runs one task after the other",
			tasks: "a b:a c:b d:c,a",
			first: []string{"a"},
			steps: []dagStep{
				{finish: "a", as: done, started: []string{"b"}},
				{finish: "b", as: done, started: []string{"c"}},
				{finish: "c", as: done, started: []string{"d"}},
				{finish: "d", as: done},
			},
		},
		{
			name:  "independent tasks start together, a join waits for all its dependencies",
			tasks: "a b c:a,b",
			first: []string{"a", "b"},
			steps: []dagStep{
				{finish: "b", as: done},
				{finish: "a", as: done, started: []string{"c"}},
				{finish: "c", as: done},
			},
		},
		{
			name:  "fail-fast skips everything not started",
			tasks: "bad slow after:bad other:slow",
			first: []string{"bad", "slow"},
			steps: []dagStep{
				{finish: "bad", as: failed, skipped: []string{"after", "other"}},
				{finish: "slow", as: canceled},
			},
		},
		{
			name:  "fail-fast: a task that ends after the failure starts nothing",
			tasks: "bad slow after:slow",
			first: []string{"bad", "slow"},
			steps: []dagStep{
				{finish: "bad", as: failed, skipped: []string{"after"}},
				{finish: "slow", as: done},
			},
		},
		{
			name:                 "continue after failure skips the dependents, transitively, and runs the rest",
			tasks:                "bad slow after:bad afterafter:after next:slow join:slow,after",
			continueAfterFailure: true,
			first:                []string{"bad", "slow"},
			steps: []dagStep{
				{finish: "bad", as: failed, skipped: []string{"after", "afterafter", "join"}},
				{finish: "slow", as: done, started: []string{"next"}},
				{finish: "next", as: done},
			},
		},
		{
			name:  "an allowed failure ends done: its dependents run",
			tasks: "allowed after:allowed",
			first: []string{"allowed"},
			steps: []dagStep{
				{finish: "allowed", as: done, started: []string{"after"}},
				{finish: "after", as: done},
			},
		},
		{
			name:  "a canceled task leaves its dependents waiting for the job's end",
			tasks: "a b:a",
			first: []string{"a"},
			steps: []dagStep{
				{finish: "a", as: canceled},
			},
			unfinished: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDAG(graph(t, tt.tasks), tt.continueAfterFailure)
			if got := d.start(); !slices.Equal(got, tt.first) {
				t.Fatalf("first start = %v, want %v", got, tt.first)
			}
			if got := d.start(); got != nil {
				t.Fatalf("start again = %v, want nothing: the ready tasks were started already", got)
			}
			for _, s := range tt.steps {
				if !d.busy() {
					t.Fatalf("before %s ends: not busy, want a running task", s.finish)
				}
				if got := d.finish(s.finish, s.as); !slices.Equal(got, s.skipped) {
					t.Errorf("%s %s: skipped %v, want %v", s.finish, s.as, got, s.skipped)
				}
				if got := d.start(); !slices.Equal(got, s.started) {
					t.Errorf("after %s %s: started %v, want %v", s.finish, s.as, got, s.started)
				}
			}
			if d.busy() {
				t.Errorf("after the last step: busy, want every task ended")
			}
			if got := d.unfinished(); got != tt.unfinished {
				t.Errorf("unfinished = %v, want %v", got, tt.unfinished)
			}
		})
	}
}

func TestDecideOutcome(t *testing.T) {
	t.Parallel()
	canceled := errors.New("job canceled by request")
	timeout := &timeoutError{scope: "job", limit: time.Second}
	failure := &pipeline.Task{Name: "bad", ExitCode: 3, Error: "exit status 3"}
	tests := []struct {
		name string
		end  runEnd
		want outcome
	}{
		{
			name: "every task done",
			end:  runEnd{hasOnError: true},
			want: outcome{status: pipeline.JobSucceeded},
		},
		{
			name: "a failed task fails the job and runs on_error with it",
			end:  runEnd{failure: failure, hasOnError: true},
			want: outcome{status: pipeline.JobFailed, lastError: "exit status 3", onError: failure},
		},
		{
			name: "a failed task without on_error",
			end:  runEnd{failure: failure},
			want: outcome{status: pipeline.JobFailed, lastError: "exit status 3"},
		},
		{
			name: "a cancel wins over a failure and does not run on_error",
			end:  runEnd{canceled: canceled, failure: failure, timeout: timeout, unfinished: true, hasOnError: true},
			want: outcome{status: pipeline.JobCanceled, lastError: "job canceled by request"},
		},
		{
			name: "a timeout between two tasks fails the job; on_error gets the timeout",
			end:  runEnd{timeout: timeout, unfinished: true, hasOnError: true},
			want: outcome{status: pipeline.JobFailed, lastError: "timeout: job exceeded 1s",
				onError: &pipeline.Task{ExitCode: -1, Error: "timeout: job exceeded 1s"}},
		},
		{
			name: "a timeout that killed a task: the timeout is the job's error, on_error gets the task",
			end:  runEnd{timeout: timeout, failure: failure, hasOnError: true},
			want: outcome{status: pipeline.JobFailed, lastError: "timeout: job exceeded 1s", onError: failure},
		},
		{
			name: "a timeout after the last task ended changes nothing",
			end:  runEnd{timeout: timeout, hasOnError: true},
			want: outcome{status: pipeline.JobSucceeded},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := decideOutcome(tt.end)
			if got.status != tt.want.status || got.lastError != tt.want.lastError {
				t.Errorf("outcome = %s %q, want %s %q", got.status, got.lastError, tt.want.status, tt.want.lastError)
			}
			switch {
			case tt.want.onError == nil && got.onError != nil:
				t.Errorf("on_error runs with %+v, want it not to run", got.onError)
			case tt.want.onError != nil && got.onError == nil:
				t.Errorf("on_error does not run, want it to run with %+v", tt.want.onError)
			case tt.want.onError != nil && (got.onError.Name != tt.want.onError.Name ||
				got.onError.ExitCode != tt.want.onError.ExitCode || got.onError.Error != tt.want.onError.Error):
				t.Errorf("on_error runs with %+v, want %+v", got.onError, tt.want.onError)
			}
		})
	}
}
