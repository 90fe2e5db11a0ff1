package runner

import (
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Observer receives the runner's events, for metrics. Its methods are called on the runner's hot
// paths: they must be fast and must not block.
type Observer interface {
	// ScheduleRejected is called when a schedule request is refused (reason: "unknown_pipeline",
	// "queue_full", "no_queue", "shutting_down").
	ScheduleRejected(pipeline, reason string)
	// JobFinished is called once per job run by this process, with its final status and the
	// time from its start to its end.
	JobFinished(pipeline string, status pipeline.JobStatus, duration time.Duration)
	// TaskFinished is called once per finished task run.
	TaskFinished(pipeline string, status pipeline.TaskStatus, duration time.Duration)
}

type nopObserver struct{}

func (nopObserver) ScheduleRejected(string, string)                         {}
func (nopObserver) JobFinished(string, pipeline.JobStatus, time.Duration)   {}
func (nopObserver) TaskFinished(string, pipeline.TaskStatus, time.Duration) {}
