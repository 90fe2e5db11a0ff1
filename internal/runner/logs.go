package runner

import (
	"context"
	"errors"
	"io"
	"syscall"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/tasklog"
)

// attemptOf names one attempt of a task of a job in the task log store.
func attemptOf(jobID, task string, attempt int) tasklog.Attempt {
	return tasklog.Attempt{JobID: jobID, Task: task, Number: attempt}
}

// OpenLog opens one output stream of a task for reading from the start: of its last attempt
// when it was retried. A task without output yields an empty reader. The reader has ReadAt and
// Stat (see tasklog.Reader); with the default store it is the *os.File of the log.
func (r *Runner) OpenLog(ctx context.Context, jobID, task string, stream pipeline.LogStream) (io.ReadCloser, error) {
	return r.logs.Open(ctx, attemptOf(jobID, task, r.lastAttempt(ctx, jobID, task)), stream)
}

// openOutput returns the writers of one attempt of a task. A write that fails because the disk is
// full releases the reserved space (see diskFull).
func (r *Runner) openOutput(ctx context.Context, jobID, task string, attempt int) (stdout, stderr io.WriteCloser, err error) {
	stdout, stderr, err = r.logs.Create(ctx, attemptOf(jobID, task, attempt))
	if err != nil {
		return nil, nil, err
	}
	lost := func() { r.outputRefused(jobID) }
	return leaseWatch{noSpaceWatch{stdout, r.diskFull}, lost}, leaseWatch{noSpaceWatch{stderr, r.diskFull}, lost}, nil
}

// outputRefused stops job jobID because the store refused its output (store.ErrLeaseLost):
// this node lost the job with its lease, so its processes are killed and nothing more about it
// is written.
func (r *Runner) outputRefused(jobID string) {
	r.mu.Lock()
	jr := r.running[jobID]
	r.mu.Unlock()
	if jr != nil {
		r.log.Warn("task output refused: this node lost the job with its lease; stopping it", "job_id", jobID)
		jr.dropLost()
	}
}

// leaseWatch calls onLost when a write or the close of a task's output fails because the node
// lost the job with its lease.
type leaseWatch struct {
	io.WriteCloser
	onLost func()
}

func (w leaseWatch) Write(p []byte) (int, error) {
	n, err := w.WriteCloser.Write(p)
	if errors.Is(err, store.ErrLeaseLost) {
		w.onLost()
	}
	return n, err
}

func (w leaseWatch) Close() error {
	err := w.WriteCloser.Close()
	if errors.Is(err, store.ErrLeaseLost) {
		w.onLost()
	}
	return err
}

// noSpaceWatch calls onNoSpace when a write fails because the disk is full.
type noSpaceWatch struct {
	io.WriteCloser
	onNoSpace func()
}

func (w noSpaceWatch) Write(p []byte) (int, error) {
	n, err := w.WriteCloser.Write(p)
	if err != nil && errors.Is(err, syscall.ENOSPC) {
		w.onNoSpace()
	}
	return n, err
}
