package api

import (
	"context"
	"io"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// Runner is what the API needs of the runner. It is declared here, with its consumer; the
// runner.Runner type implements it.
type Runner interface {
	// Schedule admits a new job and returns its ID once it is durable. Errors: wrapped
	// pipeline.ErrUnknownPipeline, ErrQueueFull, ErrNoQueue, ErrShuttingDown.
	Schedule(ctx context.Context, req ScheduleRequest) (jobID string, err error)
	// Cancel cancels a queued or running job. Canceling a canceled job is a no-op. Errors:
	// pipeline.ErrJobNotFound; pipeline.ErrJobFinished for a job that ended otherwise.
	Cancel(ctx context.Context, jobID string) error
	// Job returns one job, or pipeline.ErrJobNotFound.
	Job(ctx context.Context, jobID string) (*pipeline.Job, error)
	// Jobs lists jobs newest first.
	Jobs(ctx context.Context, q store.JobQuery) ([]*pipeline.Job, error)
	// Pipelines lists the loaded pipelines, sorted by name.
	Pipelines(ctx context.Context) ([]PipelineInfo, error)
	// OpenLog opens one output stream of a task of a job for reading from the start. A task
	// that has not written anything yet yields an empty reader. The caller closes it.
	OpenLog(ctx context.Context, jobID, task string, stream pipeline.LogStream) (io.ReadCloser, error)
}

// ScheduleRequest is a request to start a job.
type ScheduleRequest struct {
	Pipeline string
	// Variables decoded with json.Decoder.UseNumber, so numbers keep their form.
	Variables      map[string]any
	QueuePartition string
	// User is the token's sub claim ("" when none).
	User string
}

// PipelineInfo is one entry of GET /pipelines.
type PipelineInfo struct {
	Name        string
	Running     bool
	Schedulable bool
}
