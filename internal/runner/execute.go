package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/runner/script"
	"github.com/prunner-dev/prunner/internal/store"
)

// failedTaskOutputLimit bounds the failedTaskStdout/Stderr variables of on_error: the tail of the
// failed task's output, so that a huge log cannot exhaust memory.
const failedTaskOutputLimit = 1 << 20

// jobRun executes one job. Its tasks run in goroutines; their ends come back on one channel and
// the run loop alone decides what starts next, so the DAG bookkeeping needs no locks.
type jobRun struct {
	r   *Runner
	job *pipeline.Job
	def *pipeline.Definition

	ctx    context.Context
	cancel context.CancelCauseFunc

	// mu guards cause and the task records in job.Tasks (task goroutines write them).
	mu    sync.Mutex
	cause error
}

type taskResult struct {
	name     string
	exitCode int
	err      error
	end time.Time
}

func newJobRun(r *Runner, job *pipeline.Job) *jobRun {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &jobRun{r: r, job: job, def: job.Definition, ctx: ctx, cancel: cancel}
}

// requestCancel stops the job with cause; the first cause wins.
func (jr *jobRun) requestCancel(cause error) {
	jr.mu.Lock()
	if jr.cause == nil {
		jr.cause = cause
	}
	jr.mu.Unlock()
	jr.cancel(cause)
}

func (jr *jobRun) canceledBy() error {
	jr.mu.Lock()
	defer jr.mu.Unlock()
	return jr.cause
}

func (jr *jobRun) run() {
	log := jr.r.log.With("job_id", jr.job.ID, "pipeline", jr.job.Pipeline)
	started := time.Now()
	data := script.PrepareData(jr.job.Variables, jr.job.ID, nil)

	status := make(map[string]pipeline.TaskStatus, len(jr.job.Tasks))
	waitingOn := make(map[string]int, len(jr.job.Tasks))
	dependents := make(map[string][]string)
	for _, t := range jr.job.Tasks {
		status[t.Name] = t.Status
		waitingOn[t.Name] = len(t.DependsOn)
		for _, dep := range t.DependsOn {
			dependents[dep] = append(dependents[dep], t.Name)
		}
	}

	results := make(chan taskResult)
	runningTasks := 0
	var firstFailure *pipeline.Task
	failed := false
	// taskCtx is canceled on fail-fast; the job's ctx on a cancel request or SIGTERM.
	taskCtx, failFast := context.WithCancelCause(jr.ctx)
	defer failFast(nil)

	start := func(name string) {
		status[name] = pipeline.TaskRunning
		runningTasks++
		go func() { results <- jr.runTask(taskCtx, name, data, nil) }()
	}
	startReady := func() {
		if failed && !jr.def.ContinueRunningTasksAfterFailure || taskCtx.Err() != nil {
			return
		}
		var ready []string
		for _, t := range jr.job.Tasks {
			if status[t.Name] == pipeline.TaskWaiting && waitingOn[t.Name] == 0 {
				ready = append(ready, t.Name)
			}
		}
		for _, name := range ready {
			start(name)
		}
	}
	// skipDependents marks every task that (transitively) depends on name as skipped.
	var skipDependents func(name string)
	skipDependents = func(name string) {
		for _, d := range dependents[name] {
			if status[d] == pipeline.TaskWaiting {
				status[d] = pipeline.TaskSkipped
				jr.writeTask(pipeline.Task{Name: d, Status: pipeline.TaskSkipped})
				skipDependents(d)
			}
		}
	}

	startReady()
	for runningTasks > 0 {
		res := <-results
		runningTasks--
		rec := jr.finishTask(res)
		status[res.name] = rec.Status
		switch rec.Status {
		case pipeline.TaskDone:
			for _, d := range dependents[res.name] {
				waitingOn[d]--
			}
		case pipeline.TaskError:
			if !failed {
				failed = true
				r := rec
				firstFailure = &r
			}
			if jr.def.ContinueRunningTasksAfterFailure {
				skipDependents(res.name)
			} else {
				failFast(fmt.Errorf("%w: task %q failed", errFailFast, res.name))
			}
		}
		startReady()
	}

	cause := jr.canceledBy()
	final := pipeline.JobSucceeded
	lastError := ""
	switch {
	case cause != nil:
		final = pipeline.JobCanceled
		lastError = cause.Error()
	case failed:
		final = pipeline.JobFailed
		lastError = firstFailure.Error
	}

	if failed && cause == nil && jr.def.OnError != nil {
		jr.runOnError(data, firstFailure)
	}

	err := jr.r.st.FinishJob(context.Background(), store.FinishParams{
		JobID:        jr.job.ID,
		Status:       final,
		End:          jr.r.now(),
		LastError:    lastError,
		PendingTasks: pipeline.TaskSkipped,
		RunningTasks: pipeline.TaskCanceled,
	})
	if err != nil {
		log.Error("finish job", "error", err)
	}
	log.Info("job finished", "status", final, "duration_ms", time.Since(started).Milliseconds(), "last_error", lastError)
}

// runOnError runs the pipeline's on_error task with the failed task's details.
func (jr *jobRun) runOnError(data map[string]any, failed *pipeline.Task) {
	stdoutPath, _ := jr.r.logPath(jr.job.ID, failed.Name, pipeline.Stdout)
	stderrPath, _ := jr.r.logPath(jr.job.ID, failed.Name, pipeline.Stderr)
	extra := maps.Clone(data)
	extra["failedTaskName"] = failed.Name
	extra["failedTaskExitCode"] = failed.ExitCode
	extra["failedTaskError"] = failed.Error
	extra["failedTaskStdout"] = readTail(stdoutPath, failedTaskOutputLimit)
	extra["failedTaskStderr"] = readTail(stderrPath, failedTaskOutputLimit)
	res := jr.runTask(jr.ctx, pipeline.OnErrorTaskName, extra, jr.def.OnError)
	jr.finishTask(res)
}

// taskDef returns the definition of a task of the job (or of the on_error handler).
func (jr *jobRun) taskDef(name string, override *pipeline.TaskDefinition) pipeline.TaskDefinition {
	if override != nil {
		return *override
	}
	return jr.def.Tasks[name]
}

// runTask renders and runs one task and returns its result; the task record is written as
// running first.
func (jr *jobRun) runTask(ctx context.Context, name string, data map[string]any, override *pipeline.TaskDefinition) taskResult {
	def := jr.taskDef(name, override)
	now := jr.r.now()
	jr.writeTask(pipeline.Task{Name: name, DependsOn: def.DependsOn, Status: pipeline.TaskRunning, Start: &now})

	lines := make([]string, len(def.Script))
	for i, line := range def.Script {
		rendered, err := script.Render(line, data)
		if err != nil {
			return taskResult{name: name, exitCode: -1, err: err, end: jr.r.now()}
		}
		lines[i] = rendered
	}
	stdoutPath, err := jr.r.logPath(jr.job.ID, name, pipeline.Stdout)
	if err != nil {
		return taskResult{name: name, exitCode: -1, err: err, end: jr.r.now()}
	}
	stderrPath, _ := jr.r.logPath(jr.job.ID, name, pipeline.Stderr)
	stdout := &logWriter{path: stdoutPath}
	stderr := &logWriter{path: stderrPath}

	code, runErr := script.Run(ctx, script.Task{
		Lines:        lines,
		Env:          jr.r.taskEnv(jr.def, def, name, jr.job.ID),
		Dir:          jr.r.cfg.WorkDir,
		Stdout:       stdout,
		Stderr:       stderr,
		AllowFailure: def.AllowFailure,
		KillGrace:    jr.r.cfg.KillGrace,
	})
	outErr := errors.Join(stdout.Close(), stderr.Close())
	if runErr == nil && outErr != nil {
		runErr = fmt.Errorf("task output: %w", outErr)
		if code == 0 {
			code = -1
		}
	}
	return taskResult{name: name, exitCode: code, err: runErr, end: jr.r.now()}
}

// finishTask writes the final record of a task and returns it.
func (jr *jobRun) finishTask(res taskResult) pipeline.Task {
	rec := pipeline.Task{Name: res.name, Status: pipeline.TaskDone, ExitCode: res.exitCode, End: &res.end}
	if res.err != nil {
		rec.Error = res.err.Error()
		rec.Status = pipeline.TaskError
		rec.Errored = true
		if ctxErr := jr.ctx.Err(); ctxErr != nil || isCanceled(res.err) {
			// Killed because the job was canceled or another task failed (fail-fast): the task
			// did not fail by itself.
			rec.Status = pipeline.TaskCanceled
			rec.Errored = false
		}
	}
	jr.writeTask(rec)
	return rec
}

func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, errCanceledByRequest) || errors.Is(err, errServerStopping) || errors.Is(err, errFailFast)
}

var errFailFast = errors.New("canceled after another task failed")

// writeTask persists a task record; a store error is logged (the job goes on: its final state is
// written by FinishJob, and a crash is recovered on restart).
func (jr *jobRun) writeTask(t pipeline.Task) {
	jr.mu.Lock()
	if cur := jr.job.Task(t.Name); cur != nil {
		// Keep what the update does not know: the dependencies and the start time.
		if t.Start == nil {
			t.Start = cur.Start
		}
		if t.DependsOn == nil {
			t.DependsOn = cur.DependsOn
		}
		*cur = t
	} else {
		jr.job.Tasks = append(jr.job.Tasks, t)
	}
	jr.mu.Unlock()
	if err := jr.r.st.UpdateTask(context.Background(), jr.job.ID, t); err != nil {
		jr.r.log.Error("write task", "job_id", jr.job.ID, "task", t.Name, "error", err)
	}
}
