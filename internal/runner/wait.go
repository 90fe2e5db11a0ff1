package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// WaitInfo tells where and why a queued job waits; nil for a job that is not queued.
func (r *Runner) WaitInfo(ctx context.Context, jobID string) (*pipeline.WaitInfo, error) {
	job, err := r.st.Job(ctx, jobID)
	if err != nil {
		return nil, err
	}
	if job.Status != pipeline.JobQueued {
		return nil, nil
	}
	// Until the start the runner is closed: that is no reason to tell.
	if err := r.awaitStart(ctx); err != nil {
		return nil, err
	}
	states, err := r.st.PipelineStates(ctx)
	if err != nil {
		return nil, err
	}
	state := states[job.Pipeline]
	info := &pipeline.WaitInfo{Of: len(state.Waiting), Partition: job.QueuePartition, StartAfter: job.StartAfter}
	for i, w := range state.Waiting {
		if w.ID == jobID {
			info.Position = i + 1
			break
		}
	}
	r.mu.Lock()
	closing := r.closing
	concurrency := r.concurrencyLocked(job.Pipeline)
	r.mu.Unlock()
	now := r.now()
	var noRoom string
	if !closing && state.Running+info.Position <= concurrency {
		// Its pipeline would let it start: it may wait for room on a node (--max-jobs).
		noRoom = r.noRoomReason(ctx)
	}
	switch {
	case closing:
		info.Reason = "the server is shutting down; the job starts after the restart"
	case !job.StartAfter.IsZero() && job.StartAfter.After(now):
		info.Reason = "start_delay until " + job.StartAfter.UTC().Truncate(time.Second).Format(time.RFC3339)
	case state.Running >= concurrency:
		info.Reason = fmt.Sprintf("concurrency %d/%d reached", state.Running, concurrency)
	case noRoom != "":
		info.Reason = noRoom
	case info.Position > 1:
		info.Reason = fmt.Sprintf("behind %d earlier waiting jobs", info.Position-1)
	default:
		info.Reason = "starting"
	}
	return info, nil
}

// Ready reports whether the runner can do its work: it has started (a check during the
// start-up waits for it, as admissions do, until ctx ends), the store answers and the runner is
// not shutting down.
func (r *Runner) Ready(ctx context.Context) error {
	if err := r.awaitStart(ctx); err != nil {
		return fmt.Errorf("starting: the pipeline definitions are still loading (%w)", err)
	}
	if _, err := r.st.QueuedPipelines(ctx); err != nil {
		return fmt.Errorf("store unreachable: %w", err)
	}
	r.mu.Lock()
	closing := r.closing
	r.mu.Unlock()
	if closing {
		return pipeline.ErrShuttingDown
	}
	return nil
}
