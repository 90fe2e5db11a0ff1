package store

import (
	"context"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Wakeups is the capability of a store that several nodes share to tell a node, as they
// happen, the changes other nodes made that it may act on: a job waits (claim its pipeline), a
// job ended (a slot is free: claim its pipeline), a cancel was requested (cancel the job if it
// runs here). Wake-ups are an optimisation: one may be lost (a reconnect, a node that was not
// listening), so a node also polls (see RemoteCancel.CancelRequests and QueuedPipelines), and
// correctness never depends on a wake-up arriving.
//
// A store sends wake-ups only once it is registered as a node (Cluster.RegisterNode), and
// only when the transaction that made the change commits. A node does not receive the wake-ups
// of its own store: it acted on those changes itself.
type Wakeups interface {
	// Listen delivers wake-ups to fn, one at a time, until ctx ends; then it returns ctx's
	// error. It holds a connection of its own and reconnects with backoff when it is lost: it
	// delivers WakeLost with the error when the connection is lost or cannot be made, and
	// WakeResync each time it (re)connects, including the first (what was sent meanwhile is
	// lost: the node should look at everything).
	Listen(ctx context.Context, fn func(Wakeup)) error
}

// WakeKind tells what a Wakeup asks for.
type WakeKind int

const (
	// WakePipeline: the pipeline Wakeup.Pipeline has waiting jobs that may start now.
	WakePipeline WakeKind = iota + 1
	// WakeCancel: a cancel of the running job Wakeup.JobID was requested.
	WakeCancel
	// WakeResync: the listener (re)connected; wake-ups may have been lost before.
	WakeResync
	// WakeLost: the listener lost its connection (Wakeup.Err); it reconnects with backoff.
	WakeLost
)

// Wakeup is one wake-up delivered by Wakeups.Listen.
type Wakeup struct {
	Kind     WakeKind
	Pipeline string
	JobID    string
	Err      error
}

// RemoteCancel is the capability of a store that several nodes share to cancel a job running
// on another node: the request is stored with the job (and a WakeCancel sent), and the owner
// cancels the job when it hears of it, at the latest when it next polls CancelRequests.
type RemoteCancel interface {
	// RequestCancel records a cancel request for job jobID when it is running, and returns its
	// status and its owner (pipeline.Job.Node; "" for a job without one). A job that is not
	// running is left alone: its status says what it is. pipeline.ErrJobNotFound when there is
	// no such job. Requesting again is harmless.
	RequestCancel(ctx context.Context, jobID string, now time.Time) (status pipeline.JobStatus, owner string, err error)

	// CancelRequests returns the IDs of the running jobs of the store's registered node that
	// have a cancel request (none when the store is not registered).
	CancelRequests(ctx context.Context) ([]string, error)

	// RequestInterrupt is RequestCancel for an interrupt_running pipeline: the request also
	// names the newer job by that interrupts job jobID, so that the owner cancels it as
	// interrupted (ReplacedBy = by, no on_error). The first interrupter of a job is kept.
	RequestInterrupt(ctx context.Context, jobID, by string, now time.Time) (status pipeline.JobStatus, owner string, err error)

	// InterruptedBy returns the job named by the interrupt request of job jobID (see
	// RequestInterrupt); "" when it has none (no request, or a plain cancel request).
	InterruptedBy(ctx context.Context, jobID string) (string, error)
}
