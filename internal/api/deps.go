package api

import (
	"context"
	"io"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// Runner is what the API needs of the runner. It is declared here, with its consumer;
// *runner.Runner implements it, as the compile-time assertion where cmd/prunner wires the two
// together makes sure.
type Runner interface {
	// Schedule admits a new job and returns its ID once it is durable. Errors: wrapped
	// pipeline.ErrUnknownPipeline, ErrQueueFull, ErrNoQueue, ErrShuttingDown.
	Schedule(ctx context.Context, req pipeline.ScheduleRequest) (jobID string, err error)
	// Cancel cancels a queued or running job. Canceling a canceled job is a no-op. Errors:
	// pipeline.ErrJobNotFound; pipeline.ErrJobFinished for a job that ended otherwise.
	Cancel(ctx context.Context, jobID string) error
	// Job returns one job, or pipeline.ErrJobNotFound.
	Job(ctx context.Context, jobID string) (*pipeline.Job, error)
	// Jobs lists jobs newest first.
	Jobs(ctx context.Context, q store.JobQuery) ([]*pipeline.Job, error)
	// EachJob streams the jobs that Jobs returns to fn, in the same order (see
	// store.Store.EachJob); fn's error stops it and is returned.
	EachJob(ctx context.Context, q store.JobQuery, fn func(*pipeline.Job) error) error
	// EachJobFrom streams the next batch (at most q.Limit jobs) of a list read in batches,
	// each in a short read of its own, and returns where the next batch begins (see
	// store.Store.EachJobFrom).
	EachJobFrom(ctx context.Context, q store.JobQuery, from store.ListPos, fn func(*pipeline.Job) error) (store.ListPos, error)
	// Pipelines lists the loaded pipelines, sorted by name.
	Pipelines(ctx context.Context) ([]pipeline.Info, error)
	// OpenLog opens one output stream of a task of a job for reading from the start. A task
	// that has not written anything yet yields an empty reader. The caller closes it.
	OpenLog(ctx context.Context, jobID, task string, stream pipeline.LogStream) (io.ReadCloser, error)
	// OpenAttemptLog opens one output stream of one attempt (1-based) of a retried task, like
	// OpenLog (which serves the last attempt). Errors: pipeline.ErrJobNotFound,
	// pipeline.ErrTaskNotFound, pipeline.ErrAttemptNotFound beyond the task's attempts.
	OpenAttemptLog(ctx context.Context, jobID, task string, attempt int, stream pipeline.LogStream) (io.ReadCloser, error)
	// FollowLog streams a task's output: first what was written from the given offsets on
	// (a stream missing from `from` starts at 0), then new output as it is produced. The channel
	// is closed when the task has ended and everything was sent, when ctx ends, or when the
	// reader falls too far behind (it is dropped so that it never slows the task; it resumes
	// from the offsets it got). Errors: pipeline.ErrJobNotFound, pipeline.ErrTaskNotFound.
	FollowLog(ctx context.Context, jobID, task string, from map[pipeline.LogStream]int64) (<-chan pipeline.LogChunk, error)
	// WaitInfo tells where and why a queued job waits; nil (and no error) for a job that is not
	// queued. Errors: pipeline.ErrJobNotFound.
	WaitInfo(ctx context.Context, jobID string) (*pipeline.WaitInfo, error)
}

// Schedules is what the API needs of the scheduler (issue 11); *scheduler.Scheduler implements
// it. Errors: pipeline.ErrScheduleNotFound (404), ErrScheduleExists and ErrScheduleFromFile
// (409), ErrInvalidSchedule and ErrUnknownPipeline (400), each wrapped with a message for people;
// the admission errors of Runner.Schedule for Trigger and Backfill.
type Schedules interface {
	// List returns every schedule (of one pipeline when pipelineName is not ""), sorted by ID.
	List(ctx context.Context, pipelineName string) ([]pipeline.ScheduleView, error)
	Get(ctx context.Context, id string) (pipeline.ScheduleView, error)
	// Create validates and stores an API schedule (spec.Source is set to api).
	Create(ctx context.Context, spec pipeline.ScheduleSpec) (pipeline.ScheduleView, error)
	// Update changes an API schedule, or pauses/resumes any schedule (a file schedule only
	// accepts Paused and Note).
	Update(ctx context.Context, id string, patch pipeline.SchedulePatch) (pipeline.ScheduleView, error)
	Delete(ctx context.Context, id string) error
	// Trigger starts a job now with the schedule's variables, through normal admission.
	Trigger(ctx context.Context, id, user string) (jobID string, err error)
	// Backfill starts one job per fire time in (from, to], in order, at most
	// pipeline.MaxBackfill (more is ErrInvalidSchedule); fire times that fired before are
	// left out. It returns the firings it recorded.
	Backfill(ctx context.Context, id string, from, to time.Time, user string) ([]pipeline.ScheduleFiring, error)
	// Firings returns the newest firings of a schedule, newest first, at most limit.
	Firings(ctx context.Context, id string, limit int) ([]pipeline.ScheduleFiring, error)
}
