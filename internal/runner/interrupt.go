package runner

import (
	"context"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// interrupt_running in a cluster: the running job that a new job interrupts is the one of the
// pipeline (of its partition, with partitioned_replace) that started first on any node. The
// runner finds it in the store; when it runs here, it is canceled at once, otherwise an
// interrupt request naming the new job is stored for the node that runs it (which hears of it
// by its wake-up or its next poll, and ends it as interrupted: see cancelHere).

// interruptInCluster interrupts, for job, the oldest running job of its pipeline in the cluster.
func (r *Runner) interruptInCluster(job *pipeline.Job, rc store.RemoteCancel) {
	ctx, cancel := context.WithTimeout(context.Background(), r.lease())
	defer cancel()
	oldest, err := r.oldestRunning(ctx, job)
	if err != nil {
		r.log.Error("interrupt_running: find the running job to interrupt", "job_id", job.ID, "pipeline", job.Pipeline, "error", err)
		return
	}
	if oldest == nil {
		return
	}
	cause := interruptedError{by: job.ID}
	r.mu.Lock()
	jr := r.running[oldest.ID]
	r.mu.Unlock()
	if jr != nil {
		if jr.requestCancel(cause) {
			r.log.Info("running job interrupted by a new job (interrupt_running)", "job_id", oldest.ID, "replaced_by", job.ID, "pipeline", job.Pipeline)
		}
		return
	}
	// Another node's, or claimed here and not registered yet: the owner polls its requests.
	status, owner, err := rc.RequestInterrupt(ctx, oldest.ID, job.ID, r.now())
	if err != nil {
		r.log.Error("interrupt_running: request the interrupt", "job_id", oldest.ID, "replaced_by", job.ID, "error", err)
		return
	}
	if status == pipeline.JobRunning {
		r.log.Info("interrupt requested of a job running on another node (interrupt_running)", "job_id", oldest.ID, "node", owner, "replaced_by", job.ID, "pipeline", job.Pipeline)
	}
}

// oldestRunning returns the running job of job's pipeline (of its partition, with
// partitioned_replace) that started first, on any node; nil when none runs.
func (r *Runner) oldestRunning(ctx context.Context, job *pipeline.Job) (*pipeline.Job, error) {
	running, err := r.st.Jobs(ctx, store.JobQuery{Pipeline: job.Pipeline, Statuses: []pipeline.JobStatus{pipeline.JobRunning}, WithoutTasks: true})
	if err != nil {
		return nil, err
	}
	partitioned := job.Definition.QueueStrategy == pipeline.QueuePartitionedReplace
	var oldest *pipeline.Job
	for _, j := range running {
		if j.ID == job.ID || partitioned && j.QueuePartition != job.QueuePartition {
			continue
		}
		if oldest == nil || startedBefore(j, oldest) {
			oldest = j
		}
	}
	return oldest, nil
}

// startedBefore reports whether job a started before job b (a job without a start time never
// did).
func startedBefore(a, b *pipeline.Job) bool {
	switch {
	case a.Start == nil:
		return false
	case b.Start == nil:
		return true
	default:
		return a.Start.Before(*b.Start)
	}
}
