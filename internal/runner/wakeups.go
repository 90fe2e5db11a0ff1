package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// A node of a cluster hears of what other nodes did through the store's wake-ups
// (store.Wakeups: a job waits or a slot was freed → claim that pipeline now; a cancel was
// requested → cancel that job if it runs here) and polls besides, every Config.PollInterval: it
// claims every pipeline with waiting jobs and cancels its jobs that have a cancel request. A
// lost wake-up thus costs at most one poll interval; correctness never depends on one.
//
// Like the lease, none of this runs unless the runner is a node of a shared store (cluster).

// DefaultPollInterval is the poll interval of a node when Config.PollInterval is not set.
const DefaultPollInterval = time.Second

// pollInterval returns the configured poll interval.
func (r *Runner) pollInterval() time.Duration {
	if r.cfg.PollInterval > 0 {
		return r.cfg.PollInterval
	}
	return DefaultPollInterval
}

// startWakeups starts the listener (when the store has wake-ups and they are not off) and the
// poll loop of a node. Both end once the runner has stopped and its last job has ended: a
// draining node still cancels its jobs on request.
func (r *Runner) startWakeups() {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-r.stopped
		_ = r.waitIdle(context.Background())
		cancel()
	}()
	if w, ok := r.st.(store.Wakeups); ok && !r.wakeupsOff {
		go func() { _ = w.Listen(ctx, r.wake) }()
	}
	go r.pollLoop(ctx)
}

// wake acts on one wake-up from another node.
func (r *Runner) wake(w store.Wakeup) {
	switch w.Kind {
	case store.WakePipeline:
		if r.defs.Load().Get(w.Pipeline) != nil {
			go r.claim(w.Pipeline)
		}
	case store.WakeCancel:
		// It reads the request in the store: not on the listener's goroutine.
		go r.cancelHere(w.JobID)
	case store.WakeResync:
		r.log.Info("wake-ups from other nodes: listening")
		go r.poll()
	case store.WakeLost:
		r.log.Warn("wake-ups from other nodes: connection lost; reconnecting (polling meanwhile)", "error", w.Err)
	}
}

// pollLoop polls every poll interval until ctx ends.
func (r *Runner) pollLoop(ctx context.Context) {
	t := time.NewTicker(r.pollInterval())
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.poll()
		case <-ctx.Done():
			return
		}
	}
}

// poll claims every loaded pipeline that has waiting jobs and cancels the jobs of this node
// that another node asked to cancel: what a lost wake-up would have done.
func (r *Runner) poll() {
	ctx, cancel := context.WithTimeout(context.Background(), r.pollInterval())
	defer cancel()
	r.pollCancelRequests(ctx)
	if r.isStopped() {
		return
	}
	names, err := r.st.QueuedPipelines(ctx)
	if err != nil {
		r.logStoreError("poll the wait lists", err)
		return
	}
	r.storeReachable()
	for _, name := range names {
		if r.defs.Load().Get(name) != nil {
			r.claim(name)
		}
	}
}

// pollCancelRequests cancels this node's jobs that have a cancel request in the store.
func (r *Runner) pollCancelRequests(ctx context.Context) {
	rc, ok := r.st.(store.RemoteCancel)
	if !ok || r.Running() == 0 {
		return
	}
	ids, err := rc.CancelRequests(ctx)
	if err != nil {
		r.logStoreError("poll cancel requests", err)
		return
	}
	for _, id := range ids {
		r.cancelHere(id)
	}
}

// cancelHere cancels job id on request when this runner executes it; otherwise nothing. A
// request that names an interrupting job (store.RemoteCancel.RequestInterrupt) ends the job as
// interrupted by it; a request the store cannot be asked about now is taken up again at the
// next poll.
func (r *Runner) cancelHere(id string) {
	r.mu.Lock()
	jr := r.running[id]
	r.mu.Unlock()
	if jr == nil || jr.stopping() {
		return
	}
	var cause error = errCanceledByRequest
	if rc, ok := r.st.(store.RemoteCancel); ok {
		ctx, cancel := context.WithTimeout(context.Background(), r.pollInterval())
		by, err := rc.InterruptedBy(ctx, id)
		cancel()
		if err != nil {
			r.log.Warn("read a cancel request; trying again at the next poll", "job_id", id, "error", err)
			return
		}
		if by != "" {
			cause = interruptedError{by: by}
		}
	}
	if jr.requestCancel(cause) {
		r.log.Info("running job canceled on request from another node", "job_id", id, "replaced_by", interruptedBy(cause))
	}
}

// stopping reports whether the job was asked to stop already, or has decided how it ends.
func (jr *jobRun) stopping() bool {
	jr.mu.Lock()
	defer jr.mu.Unlock()
	return jr.cause != nil || jr.finalizing
}

// cancelElsewhere is Cancel of a job the store says is running and this runner does not
// execute. On a node of a cluster whose store takes cancel requests, the request is stored for
// the job's owner, which cancels it when it hears of it (at the latest at its next poll); the
// note for launch is dropped when the owner is another node. Otherwise the job was claimed here
// and not registered yet, and launch applies the note.
func (r *Runner) cancelElsewhere(ctx context.Context, jobID string) error {
	rc, ok := r.st.(store.RemoteCancel)
	if !ok || r.cluster() == nil {
		return nil
	}
	status, owner, err := rc.RequestCancel(ctx, jobID, r.now())
	if err != nil || owner != r.cfg.Node.ID {
		// The note is for a job claimed here; on an error the caller learns that the cancel
		// failed, as when Cancel's own store call fails.
		r.mu.Lock()
		delete(r.cancelPending, jobID)
		r.mu.Unlock()
	}
	if err != nil {
		return err
	}
	switch status {
	case pipeline.JobRunning:
		if owner != r.cfg.Node.ID {
			r.log.Info("cancel requested of a job running on another node", "job_id", jobID, "node", owner)
		}
		return nil
	case pipeline.JobSucceeded, pipeline.JobFailed:
		// It ended meanwhile.
		return fmt.Errorf("job %s: %w", jobID, pipeline.ErrJobFinished)
	case pipeline.JobCanceled, pipeline.JobReplaced:
		return nil
	default:
		return fmt.Errorf("job %s: cancel: unexpected status %q", jobID, status)
	}
}
