package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/prunner-dev/prunner/internal/durfmt"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// timeoutError is the cause of a context whose timeout elapsed: the timeout of one attempt of a
// task (scope "task") or of a whole job (scope "job"). Its text becomes the task's error and the
// job's lastError. A timeout is a failure, not a cancel request: on_error runs after it.
type timeoutError struct {
	scope string
	limit time.Duration
}

func (e *timeoutError) Error() string {
	return "timeout: " + e.scope + " exceeded " + durfmt.Format(e.limit)
}

// withTimeout returns a child of ctx that ends after limit with a *timeoutError as its cause;
// a limit <= 0 sets no bound. The caller must call the cancel function.
func withTimeout(ctx context.Context, scope string, limit time.Duration) (context.Context, context.CancelFunc) {
	if limit <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, limit, &timeoutError{scope: scope, limit: limit})
}

// timedOut returns the timeout that ended ctx (its own or an ancestor's), or nil when ctx has
// not ended or ended for another reason.
func timedOut(ctx context.Context) *timeoutError {
	if ctx.Err() == nil {
		return nil
	}
	var te *timeoutError
	if errors.As(context.Cause(ctx), &te) {
		return te
	}
	return nil
}

// retryable reports whether a failed attempt may be followed by another one: not once ctx
// ended (the job was canceled, timed out or stops after another task failed), nor when the
// attempt itself was canceled.
func retryable(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !isCanceled(err)
}

// waitRetry waits d before the next attempt. It reports false, at once, when ctx ends first: a
// cancel request must not wait for a long back-off.
func waitRetry(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}

// taskAttempt returns the number of the current or last attempt of a task. A job this process
// runs is read from memory (it is ahead of or equal to the store); any other from the store.
// Errors: pipeline.ErrJobNotFound, pipeline.ErrTaskNotFound.
func (r *Runner) taskAttempt(ctx context.Context, jobID, task string) (int, error) {
	r.mu.Lock()
	jr := r.running[jobID]
	r.mu.Unlock()
	if jr != nil {
		jr.mu.Lock()
		t := jr.job.Task(task)
		attempt := 0
		if t != nil {
			attempt = t.Attempt
		}
		jr.mu.Unlock()
		if t != nil {
			return max(attempt, 1), nil
		}
	}
	job, err := r.st.Job(ctx, jobID)
	if err != nil {
		return 0, err
	}
	t := job.Task(task)
	if t == nil {
		return 0, fmt.Errorf("job %s: task %q: %w", jobID, task, pipeline.ErrTaskNotFound)
	}
	return max(t.Attempt, 1), nil
}

// lastAttempt returns the attempt whose output OpenLog serves: the task's current or last one.
// For an unknown job or task it is 1, and OpenLog answers as it always did (no output).
func (r *Runner) lastAttempt(ctx context.Context, jobID, task string) int {
	attempt, err := r.taskAttempt(ctx, jobID, task)
	if err != nil {
		return 1
	}
	return attempt
}

// OpenAttemptLog opens one output stream of one attempt (1-based) of a task for reading from
// the start. An attempt without output yields an empty reader. Errors: pipeline.ErrJobNotFound,
// pipeline.ErrTaskNotFound, and pipeline.ErrAttemptNotFound for an attempt the task has not
// reached.
func (r *Runner) OpenAttemptLog(ctx context.Context, jobID, task string, attempt int, stream pipeline.LogStream) (io.ReadCloser, error) {
	last, err := r.taskAttempt(ctx, jobID, task)
	if err != nil {
		return nil, err
	}
	if attempt < 1 || attempt > last {
		return nil, fmt.Errorf("job %s: task %q: attempt %d of %d: %w", jobID, task, attempt, last, pipeline.ErrAttemptNotFound)
	}
	return r.logs.Open(ctx, attemptOf(jobID, task, attempt), stream)
}
