package pipeline

import "errors"

// Sentinel errors shared by the runner, the stores and the API. The API maps them to HTTP statuses
// (see internal/api); wrap them with context, compare with errors.Is.
var (
	ErrUnknownPipeline = errors.New("unknown pipeline")
	ErrQueueFull       = errors.New("queue full")
	ErrNoQueue         = errors.New("no wait list")
	ErrJobNotFound     = errors.New("job not found")
	ErrTaskNotFound    = errors.New("task not found")
	ErrJobFinished     = errors.New("job already finished")
	ErrShuttingDown    = errors.New("server is shutting down")
	// ErrIdempotencyConflict: the idempotency key of a schedule request belongs to a job of
	// another pipeline.
	ErrIdempotencyConflict = errors.New("idempotency key already used")
)

// ErrAttemptNotFound is returned for an attempt number a task has not reached.
var ErrAttemptNotFound = errors.New("attempt not found")
