package runner

import (
	"github.com/prunner-dev/prunner/internal/pipeline"
)

// runEnd is what a job's run knows once no task runs any more.
type runEnd struct {
	// canceled is the cause of a cancel request or a stopping server; nil if there was none.
	canceled error
	// timeout is the job's timeout if its timer fired; nil otherwise.
	timeout *timeoutError
	// failure is the record of the first task that failed by itself; nil if none did.
	failure *pipeline.Task
	// unfinished is true when a task neither ran nor was skipped.
	unfinished bool
	// hasOnError is true when the pipeline defines on_error.
	hasOnError bool
}

// outcome is how a job ends.
type outcome struct {
	status    pipeline.JobStatus
	lastError string
	// onError is the failure that on_error runs with; nil when on_error does not run.
	onError *pipeline.Task
}

// decideOutcome returns how a job ends. A cancel wins over everything (and on_error does not run
// after it); then the job's timeout, then the first failed task. A timeout that fired when every
// task had already ended changed nothing, so it is ignored: the job did all its work. on_error
// runs after a failure or a timeout; when the job timed out between two tasks, no task failed by
// itself and on_error gets the timeout with exit code -1.
func decideOutcome(e runEnd) outcome {
	timeout := e.timeout
	if timeout != nil && e.failure == nil && !e.unfinished {
		timeout = nil
	}
	var o outcome
	switch {
	case e.canceled != nil:
		return outcome{status: pipeline.JobCanceled, lastError: e.canceled.Error()}
	case timeout != nil:
		o = outcome{status: pipeline.JobFailed, lastError: timeout.Error()}
	case e.failure != nil:
		o = outcome{status: pipeline.JobFailed, lastError: e.failure.Error}
	default:
		return outcome{status: pipeline.JobSucceeded}
	}
	if e.hasOnError {
		o.onError = e.failure
		if o.onError == nil {
			o.onError = &pipeline.Task{ExitCode: -1, Error: o.lastError}
		}
	}
	return o
}
