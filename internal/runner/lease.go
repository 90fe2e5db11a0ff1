package runner

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prunner-dev/prunner/internal/store"
)

// A node of a cluster (a store that several nodes share, store.Cluster with Shared) holds a
// lease in the store: the runner registers at start-up, renews the lease four times per lease
// length, and runs the reaper of lost nodes as often. When the lease is lost (the store refuses
// the renewal or a write with store.ErrLeaseLost, or the store has not answered for a whole
// lease), the node's jobs are no longer its own: another node ends them as lost, so the runner
// kills their processes and forgets them, then registers again (a new epoch) and goes on.
//
// Leases are off unless Config.Node.ID is set and the store is shared: with SQLite, or a
// PostgreSQL store used by one node, nothing of this runs.

// DefaultLease is the node lease when Config.Lease is not set.
const DefaultLease = 20 * time.Second

// errLeaseLost is the cancel cause of the jobs of a node that lost its lease. It counts as a
// server stopping (no on_error): the job's final state is another node's to record.
var errLeaseLost = stoppingError{reason: "this node lost its lease; another node ends the job"}

// cluster returns the store's store.Cluster when this runner is a node of a cluster.
func (r *Runner) cluster() store.Cluster {
	if r.cfg.Node.ID == "" {
		return nil
	}
	if cl, ok := r.st.(store.Cluster); ok && cl.Shared() {
		return cl
	}
	return nil
}

// Nodes lists the nodes of the cluster this runner is a node of, as the store has them; none
// for a runner that is no node of a cluster.
func (r *Runner) Nodes(ctx context.Context) ([]store.Node, error) {
	cl := r.cluster()
	if cl == nil {
		return []store.Node{}, nil
	}
	return cl.Nodes(ctx)
}

// lease returns the configured lease length.
func (r *Runner) lease() time.Duration {
	if r.cfg.Lease > 0 {
		return r.cfg.Lease
	}
	return DefaultLease
}

// register registers the node with a new lease. The returned time is when the request was
// sent: the lease runs until at least that plus its length (by a clock that runs as ours).
func (r *Runner) register(ctx context.Context, cl store.Cluster) (time.Time, error) {
	sent := time.Now()
	l, err := cl.RegisterNode(ctx, r.nodeInfo(), r.lease())
	if err != nil {
		return time.Time{}, err
	}
	r.log.Info("node registered", "node", l.Node, "epoch", l.Epoch, "lease", r.lease())
	return sent, nil
}

// leaseLoop renews the lease and reaps lost nodes until the runner has stopped and its last
// job has ended (a draining node still needs its lease to record its jobs' ends), or Leave
// ends it. granted is when the current lease was granted (see register).
func (r *Runner) leaseLoop(cl store.Cluster, granted time.Time) {
	every := r.lease() / 4
	t := time.NewTicker(every)
	defer t.Stop()
	// The reaper runs beside the heartbeats, one round at a time: a round that waits on the
	// locks of a stalled node (until the database ends that node's transaction) must not keep
	// this node from renewing its own lease.
	var reaping sync.Mutex
	defer func() { reaping.Lock() }() // the last round ends before the loop does
	for {
		select {
		case <-t.C:
		case <-r.leaseStop:
			return
		}
		if r.isStopped() && r.Running() == 0 {
			return
		}
		granted = r.heartbeat(cl, granted, every)
		if !granted.IsZero() && reaping.TryLock() {
			go func() {
				defer reaping.Unlock()
				r.reapLostNodes(cl, every)
			}()
		}
	}
}

// heartbeat renews the lease, or registers again when it is lost, and returns when the lease
// now held was granted (zero while the node holds none).
func (r *Runner) heartbeat(cl store.Cluster, granted time.Time, timeout time.Duration) time.Time {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if granted.IsZero() {
		// The lease was lost: register again once the store answers.
		sent, err := r.register(ctx, cl)
		if err != nil {
			r.logStoreError("register node", err)
		}
		return sent
	}
	sent := time.Now()
	_, err := cl.RenewLease(ctx, r.lease())
	switch {
	case err == nil:
		r.storeReachable()
		return sent
	case errors.Is(err, store.ErrLeaseLost):
		r.leaseLost(err)
		return time.Time{}
	case time.Since(granted) >= r.lease():
		// The store has not answered for a whole lease: other nodes may have reaped ours.
		r.leaseLost(err)
		return time.Time{}
	default:
		r.log.Warn("renew node lease: retrying", "error", err, "lease_left", r.lease()-time.Since(granted))
		return granted
	}
}

// isStopped reports whether Drain or Stop began.
func (r *Runner) isStopped() bool {
	select {
	case <-r.stopped:
		return true
	default:
		return false
	}
}

// leaseLost stops every job this node runs: they are not its own any more.
func (r *Runner) leaseLost(cause error) {
	r.mu.Lock()
	n := len(r.running)
	for _, jr := range r.running {
		jr.dropLost()
	}
	r.mu.Unlock()
	r.log.Error("node lease lost: killing the processes of this node's jobs", "jobs", n, "error", cause)
}

// reapLostNodes ends the jobs of nodes whose lease expired, and lets the wait lists move on. A
// round gives up after timeout (the next one tries again).
func (r *Runner) reapLostNodes(cl store.Cluster, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	reaped, err := cl.ReapLostNodes(ctx, r.now())
	if err != nil {
		r.logStoreError("reap lost nodes", err)
	}
	if len(reaped) == 0 {
		return
	}
	for _, n := range reaped {
		r.log.Warn("node lost: its running jobs were marked failed", "node", n.Node, "jobs", n.Jobs)
	}
	// The freed slots are claimable: look at every wait list.
	for _, name := range r.defs.Load().Names() {
		go r.claim(name)
	}
}

// dropLost stops the job because its node lost the lease: its processes are killed and nothing
// more about it is written (the store refuses it).
func (jr *jobRun) dropLost() {
	jr.lostOnce.Do(func() { close(jr.lost) })
	if !jr.requestCancel(errLeaseLost) {
		// Deciding its end (maybe running on_error): stop its processes all the same.
		jr.cancel(errLeaseLost)
	}
}
