package store

import (
	"context"
	"errors"
	"time"
)

// ErrLeaseLost is returned by a write about a running job (UpdateTask, FinishJob,
// FinishAndClaim), by Claim and Admit, and by RenewLease, when the store's node does not hold a
// valid lease for it: the node's lease expired (by the database's clock), the reaper declared
// the node lost, the node registered again since it started the job (a new epoch), or the job
// belongs to another node. Nothing was written. A runner that gets it for a job stops the job's
// processes and forgets the job: another node has decided, or will decide, its final state.
var ErrLeaseLost = errors.New("node lease lost")

// Cluster is the capability of a store that several prunner nodes may share: node
// registration, leases, job ownership with fencing, the reaping of lost nodes and per-node
// recovery. A store is bound to at most one node: RegisterNode binds it.
//
// Once a store is registered, the jobs it starts (Admit deciding to start, Claim, FinishAndClaim)
// record its node ID and lease epoch as their owner (pipeline.Job.Node), and every write about an
// owned job (UpdateTask, FinishJob, FinishAndClaim) checks, in the same transaction, that the
// job is owned by this node under its current epoch and that the lease is still valid by the
// database's clock; otherwise it fails with ErrLeaseLost and writes nothing. Claim and Admit
// fail with ErrLeaseLost while the lease is not valid. A store that is not registered behaves as
// the single-node store of the Store contract (no owner, no fencing).
type Cluster interface {
	// Shared reports whether several nodes may share the store's database: only then do
	// leases expire and does a node need to renew its lease and run the reaper. The embedded
	// SQLite store is one node's (false).
	Shared() bool

	// RegisterNode registers the store's node (a node that registers again with the same ID,
	// after a restart or a lost lease, gets a new epoch: the jobs it started before are no longer
	// its to write) and grants it a lease of the given length from the database's clock. From
	// then on the store acts for this node.
	RegisterNode(ctx context.Context, n NodeInfo, lease time.Duration) (Lease, error)

	// RenewLease extends the lease of the registered node to lease from now (the database's
	// clock). ErrLeaseLost when the lease has expired already, the node was declared lost or
	// registered again elsewhere: the node must stop its jobs and register again. A lease of 0
	// ends the lease at once (a node giving up; the reaper then ends its running jobs).
	RenewLease(ctx context.Context, lease time.Duration) (Lease, error)

	// ReapLostNodes ends the running jobs of every node whose lease has expired (by the
	// database's clock) as failed, with LastError "node <id> lost" and End = now (their running
	// tasks become errors with that reason, their waiting tasks skipped, as RecoverRunning
	// does), frees their slots, and marks the node lost so that its late writes are refused. It
	// also ends running jobs of a node that registered again since it started them. Each node is
	// reaped in one transaction; running it on several nodes at once ends each job once. Returns
	// what it ended, by node.
	ReapLostNodes(ctx context.Context, now time.Time) ([]ReapedNode, error)

	// RecoverNode ends, as RecoverRunning does, the running jobs that the registered node's ID
	// started under an earlier epoch (before a restart with the same ID), and only those: other
	// nodes' jobs are left alone. Returns the IDs of those jobs. A node calls it at start-up,
	// after RegisterNode and before it starts jobs: a store that is not Shared may end every
	// running job (RecoverRunning). Without a registered node it is RecoverRunning.
	RecoverNode(ctx context.Context, reason string, now time.Time) ([]string, error)

	// Nodes lists the registered nodes, sorted by ID, with their running job counts. A store
	// that is not Shared keeps no node table and returns none (its one node knows itself).
	Nodes(ctx context.Context) ([]Node, error)

	// SetDefinitionsHash records the hash of the pipeline definitions the registered node has
	// loaded now (NodeInfo.DefinitionsHash), after a load or a reload. It is not fenced: a node
	// whose lease expired still says what it runs. Without a registered node it does nothing.
	SetDefinitionsHash(ctx context.Context, hash string) error

	// StopNode marks the registered node stopped (NodeStopped) and ends its lease at once: a
	// node that stops cleanly, once its jobs have ended, says so, and nothing waits for its
	// lease to run out. The reaper does not call a stopped node lost (it still ends running
	// jobs the node left, as those of a lost node). The node's writes are refused from then on,
	// as after a lost lease, until it registers again. Without a registered node it does
	// nothing.
	StopNode(ctx context.Context) error
}

// NodeInfo describes a node when it registers.
type NodeInfo struct {
	// ID names the node; a node that restarts with the same ID takes over its registration.
	ID string
	// Address is where the node's API can be reached (for links across nodes).
	Address string
	// Version is the prunner version the node runs.
	Version string
	// DefinitionsHash identifies the pipeline definitions the node loaded: nodes whose hashes
	// differ run different definitions.
	DefinitionsHash string
	// MaxJobs is the most jobs the node runs at once (its --max-jobs); 0: no limit.
	MaxJobs int
}

// Lease is a node's current lease.
type Lease struct {
	Node string
	// Epoch counts the registrations of the node's ID.
	Epoch int64
	// Until is when the lease expires, by the database's clock, unless renewed.
	Until time.Time
}

// NodeState is the state of a registered node.
type NodeState string

const (
	// NodeAlive: the node registered and has not been declared lost (its lease may still have
	// expired: the reaper has not run since).
	NodeAlive NodeState = "alive"
	// NodeLost: the reaper found the node's lease expired and ended its running jobs.
	NodeLost NodeState = "lost"
	// NodeStopped: the node stopped cleanly (Cluster.StopNode) and has not registered since.
	NodeStopped NodeState = "stopped"
)

// Node is a registered node as Cluster.Nodes lists it.
type Node struct {
	NodeInfo
	Epoch     int64
	State     NodeState
	Started   time.Time
	Heartbeat time.Time
	// LeaseUntil is when the lease expires (or expired).
	LeaseUntil time.Time
	// Running is the number of running jobs the node owns.
	Running int
}

// ReapedNode is what ReapLostNodes did to one node.
type ReapedNode struct {
	Node string
	// Jobs are the IDs of the jobs it ended, in creation order.
	Jobs []string
}

// LostNodeReason is the LastError of the jobs of a lost node.
func LostNodeReason(node string) string {
	return "node " + node + " lost"
}
