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
	"github.com/prunner-dev/prunner/internal/tasklog"
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

	// mu guards cause, finalizing and the task records in job.Tasks (task goroutines write
	// them).
	mu    sync.Mutex
	cause error
	// finalizing is set once the run has decided how the job ends; a cancel request after that
	// has no effect on the outcome (see Runner.Cancel).
	finalizing bool
	// done is closed when the job's end is stored.
	done chan struct{}
	// lost is closed when the node lost its lease and with it the job (see dropLost): the
	// writes about the job that wait for the database give up then.
	lost     chan struct{}
	lostOnce sync.Once
	// next holds the jobs that the store started in the slot this job freed, in the transaction
	// that ended it (see persistEnd); nil when that claim did not happen.
	next *store.ClaimResult
}

type taskResult struct {
	name     string
	exitCode int
	err      error
	end      time.Time
	// attempt is the number of the attempt the result is of; attempts holds the failed
	// attempts before it.
	attempt  int
	attempts []pipeline.TaskAttempt
}

func newJobRun(r *Runner, job *pipeline.Job) *jobRun {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &jobRun{r: r, job: job, def: job.Definition, ctx: ctx, cancel: cancel, done: make(chan struct{}), lost: make(chan struct{})}
}

// requestCancel stops the job with cause; the first cause wins. It reports false when the job
// had already decided how it ends: the request came too late to change the outcome.
func (jr *jobRun) requestCancel(cause error) bool {
	jr.mu.Lock()
	if jr.finalizing {
		jr.mu.Unlock()
		return false
	}
	if jr.cause == nil {
		jr.cause = cause
	}
	jr.mu.Unlock()
	jr.cancel(cause)
	return true
}

// finalize marks the decision point of the job's outcome and returns the cancel cause, if any.
func (jr *jobRun) finalize() error {
	jr.mu.Lock()
	defer jr.mu.Unlock()
	jr.finalizing = true
	return jr.cause
}

// run executes the job's tasks as the DAG allows, decides the outcome, runs on_error if it must
// and stores the job's end.
func (jr *jobRun) run() {
	defer close(jr.done)
	log := jr.r.log.With("job_id", jr.job.ID, "pipeline", jr.job.Pipeline)
	started := time.Now()
	data := script.PrepareData(jr.job.Variables, jr.job.ID, nil)

	// taskCtx is canceled on fail-fast; jobCtx when the pipeline's timeout elapses; the job's
	// ctx on a cancel request or SIGTERM.
	jobCtx, stopJobTimer := withTimeout(jr.ctx, "job", jr.def.Timeout)
	defer stopJobTimer()
	taskCtx, failFast := context.WithCancelCause(jobCtx)
	defer failFast(nil)

	d := newDAG(jr.job.Tasks, jr.def.ContinueRunningTasksAfterFailure)
	results := make(chan taskResult)
	var failure *pipeline.Task
	for {
		if taskCtx.Err() == nil {
			for _, name := range d.start() {
				go func() { results <- jr.runTask(taskCtx, name, data, nil) }()
			}
		}
		if !d.busy() {
			break
		}
		rec := jr.finishTask(<-results)
		if rec.Status == pipeline.TaskError {
			if failure == nil {
				// A copy, so that rec itself does not escape on every task's end.
				first := rec
				failure = &first
			}
			if !jr.def.ContinueRunningTasksAfterFailure {
				// First stop the other tasks, then record what will not run.
				failFast(fmt.Errorf("%w: task %q failed", errFailFast, rec.Name))
			}
		}
		for _, name := range d.finish(rec.Name, rec.Status) {
			jr.writeTask(pipeline.Task{Name: name, Status: pipeline.TaskSkipped})
		}
	}

	canceled := jr.finalize()
	end := decideOutcome(runEnd{
		canceled:   canceled,
		timeout:    timedOut(jobCtx),
		failure:    failure,
		unfinished: d.unfinished(),
		hasOnError: jr.def.OnError != nil,
	})
	if end.onError != nil {
		jr.runOnError(data, end.onError)
	}

	jr.persistEnd(store.FinishParams{
		JobID:        jr.job.ID,
		Status:       end.status,
		End:          jr.r.now(),
		LastError:    end.lastError,
		PendingTasks: pipeline.TaskSkipped,
		RunningTasks: pipeline.TaskCanceled,
		ReplacedBy:   interruptedBy(canceled),
	})
	jr.r.cfg.Observer.JobFinished(jr.job.Pipeline, end.status, time.Since(started))
	log.Info("job finished", "status", end.status, "duration_ms", time.Since(started).Milliseconds(), "last_error", end.lastError)
}

// runOnError runs the pipeline's on_error task with the failed task's details.
func (jr *jobRun) runOnError(data map[string]any, failed *pipeline.Task) {
	out := attemptOf(jr.job.ID, failed.Name, failed.Attempt)
	extra := maps.Clone(data)
	extra["failedTaskName"] = failed.Name
	extra["failedTaskExitCode"] = failed.ExitCode
	extra["failedTaskError"] = failed.Error
	extra["failedTaskStdout"] = tasklog.Tail(jr.ctx, jr.r.logs, out, pipeline.Stdout, failedTaskOutputLimit)
	extra["failedTaskStderr"] = tasklog.Tail(jr.ctx, jr.r.logs, out, pipeline.Stderr, failedTaskOutputLimit)
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
// running first. Each attempt has its own output files and its own timeout (the task's
// timeout: its process groups are killed when it elapses). A task with a retry policy runs
// again after a failed attempt, after the policy's delay, unless ctx ended (cancel request,
// fail-fast, job timeout): then the last attempt's result stands.
func (jr *jobRun) runTask(ctx context.Context, name string, data map[string]any, override *pipeline.TaskDefinition) taskResult {
	def := jr.taskDef(name, override)
	now := jr.r.now()
	jr.writeTask(pipeline.Task{Name: name, DependsOn: def.DependsOn, Status: pipeline.TaskRunning, Start: &now, Attempt: 1})

	lines := make([]string, len(def.Script))
	for i, line := range def.Script {
		rendered, err := script.Render(line, data)
		if err != nil {
			// Not retried: the same data renders the same error.
			return taskResult{name: name, exitCode: -1, err: err, end: jr.r.now(), attempt: 1}
		}
		lines[i] = rendered
	}
	var attempts []pipeline.TaskAttempt
	for attempt := 1; ; attempt++ {
		attemptStart := now
		if attempt > 1 {
			attemptStart = jr.r.now()
		}
		stdout, stderr, err := jr.r.openOutput(ctx, jr.job.ID, name, attempt)
		if err != nil {
			return taskResult{name: name, exitCode: -1, err: fmt.Errorf("task output: %w", err), end: jr.r.now(), attempt: attempt, attempts: attempts}
		}

		attemptCtx, stopTimer := withTimeout(ctx, "task", def.Timeout)
		code, runErr := script.Run(attemptCtx, script.Task{
			Lines:        lines,
			Env:          jr.r.taskEnv(jr.def, def, name, jr.job.ID),
			Dir:          jr.r.cfg.WorkDir,
			Stdout:       stdout,
			Stderr:       stderr,
			AllowFailure: def.AllowFailure,
			KillGrace:    jr.r.cfg.KillGrace,
		})
		if te := timedOut(attemptCtx); runErr != nil && te != nil {
			// Killed by the task's or the job's timeout: say so instead of "script canceled".
			code, runErr = -1, te
		}
		stopTimer()
		outErr := errors.Join(stdout.Close(), stderr.Close())
		if runErr == nil && outErr != nil {
			runErr = fmt.Errorf("task output: %w", outErr)
			if code == 0 {
				code = -1
			}
		}
		res := taskResult{name: name, exitCode: code, err: runErr, end: jr.r.now(), attempt: attempt, attempts: attempts}
		if runErr == nil || attempt >= def.Retry.MaxAttempts() || !retryable(ctx, runErr) {
			return res
		}

		delay := def.Retry.DelayAfter(attempt)
		jr.r.log.Warn("task attempt failed, retrying", "job_id", jr.job.ID, "task", name, "attempt", attempt,
			"max_attempts", def.Retry.MaxAttempts(), "exit_code", code, "error", runErr, "delay_ms", delay.Milliseconds())
		next := append(attempts[:len(attempts):len(attempts)], pipeline.TaskAttempt{
			Number: attempt, Start: attemptStart, End: res.end, ExitCode: code, Error: runErr.Error(),
		})
		// The record shows the failed attempt at once and the next one as current while the
		// task waits for it.
		jr.writeTask(pipeline.Task{Name: name, Status: pipeline.TaskRunning, Attempt: attempt + 1, Attempts: next})
		if !waitRetry(ctx, delay) {
			return res
		}
		attempts = next
	}
}

// finishTask writes the final record of a task and returns it.
func (jr *jobRun) finishTask(res taskResult) pipeline.Task {
	rec := pipeline.Task{Name: res.name, Status: pipeline.TaskDone, ExitCode: res.exitCode, End: &res.end,
		Attempt: res.attempt, Attempts: res.attempts}
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
	jr.mu.Lock()
	var start *time.Time
	if t := jr.job.Task(res.name); t != nil {
		start = t.Start
	}
	jr.mu.Unlock()
	if start != nil {
		jr.r.cfg.Observer.TaskFinished(jr.job.Pipeline, rec.Status, res.end.Sub(*start))
	}
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
		if t.Attempt == 0 {
			// An update that knows nothing of attempts (a task skipped) keeps them.
			t.Attempt, t.Attempts = cur.Attempt, cur.Attempts
		}
		*cur = t
	} else {
		jr.job.Tasks = append(jr.job.Tasks, t)
	}
	jr.mu.Unlock()
	err := jr.retryUnavailable("write task", func() error {
		return jr.r.st.UpdateTask(context.Background(), jr.job.ID, t)
	})
	if err != nil {
		jr.r.log.Error("write task", "job_id", jr.job.ID, "task", t.Name, "error", err)
		if errors.Is(err, store.ErrLeaseLost) {
			// Another node decides this job's end now: stop its processes.
			jr.dropLost()
		}
	}
}

// Backoff of the writes about a running job while the database is unavailable: from
// unavailableRetryMin, doubling up to unavailableRetryMax, so that a write goes through within
// about a second of the database's return.
const (
	unavailableRetryMin = 100 * time.Millisecond
	unavailableRetryMax = time.Second
)

// retryUnavailable calls write until it returns anything but store.ErrUnavailable, and returns
// that. While the database is unavailable it waits with backoff: a write about a running job
// must not be dropped (a job whose end is never recorded stays running for ever), and the
// job's processes go on meanwhile. It gives up, returning the last error, when the node lost
// its lease and with it the job (another node then records the job's end). A node without a
// lease (one node on its database) waits until the database is back or the runner is stopped.
func (jr *jobRun) retryUnavailable(what string, write func() error) error {
	delay := unavailableRetryMin
	for attempt := 1; ; attempt++ {
		err := write()
		if !errors.Is(err, store.ErrUnavailable) {
			if attempt > 1 && err == nil {
				jr.r.log.Info(what+": stored after the database came back", "job_id", jr.job.ID, "attempts", attempt)
			}
			return err
		}
		if attempt == 1 {
			jr.r.log.Warn(what+": database unavailable, retrying until it is back or this node's lease is lost",
				"job_id", jr.job.ID, "error", err)
		}
		if !jr.pause(delay) {
			jr.r.log.Warn(what+": giving up, this node lost its lease while the database was unavailable; another node records the job's end",
				"job_id", jr.job.ID, "error", err)
			return err
		}
		delay = min(2*delay, unavailableRetryMax)
	}
}

// pause waits for d; false when the job was lost with the node's lease meanwhile.
func (jr *jobRun) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-jr.lost:
		return false
	}
}

// persistEnd writes the job's final state. A job must never stay "running" in the store while no
// process runs it, so a failed write is retried with backoff: while the database is unavailable
// until it is back or the node's lease is lost (see retryUnavailable), after other errors (a full
// disk) ten times; if it still fails, the next start's recovery ends the job.
//
// Unless the runner is closing, the same transaction claims the waiting jobs of the pipeline that
// may start in the freed slot (jr.next): one write less per job on a busy pipeline.
func (jr *jobRun) persistEnd(p store.FinishParams) {
	delay := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := jr.retryUnavailable("finish job", func() error { return jr.finishOnce(p) })
		if err == nil || errors.Is(err, pipeline.ErrJobFinished) || errors.Is(err, pipeline.ErrJobNotFound) {
			return
		}
		if errors.Is(err, store.ErrLeaseLost) {
			// The node lost the job with its lease: another node records its end.
			jr.r.log.Warn("finish job: refused, this node lost its lease", "job_id", p.JobID, "error", err)
			return
		}
		if errors.Is(err, store.ErrUnavailable) || attempt == 10 {
			jr.r.log.Error("finish job: giving up; the job is ended by the reaper or on the next start", "job_id", p.JobID, "error", err)
			return
		}
		jr.r.log.Error("finish job: retrying", "job_id", p.JobID, "attempt", attempt, "error", err)
		time.Sleep(delay)
		delay = min(2*delay, 5*time.Second)
	}
}

// finishOnce stores the job's end once, with the claim of the freed slot unless the runner is
// closing.
func (jr *jobRun) finishOnce(p store.FinishParams) error {
	claim, ok := jr.r.claimParams(jr.job.Pipeline)
	if !ok {
		return jr.r.st.FinishJob(context.Background(), p)
	}
	res, err := jr.r.st.FinishAndClaim(context.Background(), p, claim)
	if err == nil {
		jr.next = &res
	}
	return err
}
