package view

import (
	"strconv"
	"time"

	"github.com/prunner-dev/prunner/internal/store"
)

// NodesPage lists the nodes of the cluster the server is a node of.
type NodesPage struct {
	Layout Layout
	Nodes  []NodeRow
	// Mismatch is true when the alive nodes load different pipeline definitions (their hashes
	// differ).
	Mismatch bool
}

// NodeRow is one node of the cluster.
type NodeRow struct {
	ID, Address, Version string
	// State is "alive", "lost" or "stopped", with its badge.
	State                          Status
	Epoch                          string
	Started, Heartbeat, LeaseUntil Time
	Running                        int
	// MaxJobs is the node's --max-jobs ("no limit" for 0).
	MaxJobs     string
	Definitions string
}

// NewNodesPage builds the Nodes page of nodes at now.
func NewNodesPage(l Layout, nodes []store.Node, now time.Time) NodesPage {
	p := NodesPage{Layout: l}
	hashes := map[string]bool{}
	for _, n := range nodes {
		// A node's state in the colours of the job statuses it resembles.
		state := nodeState(n.State)
		// Only the alive nodes run jobs: a stopped or lost node's old definitions matter not.
		if n.State == store.NodeAlive && n.DefinitionsHash != "" {
			hashes[n.DefinitionsHash] = true
		}
		maxJobs := "no limit"
		if n.MaxJobs > 0 {
			maxJobs = strconv.Itoa(n.MaxJobs)
		}
		p.Nodes = append(p.Nodes, NodeRow{
			ID: n.ID, Address: n.Address, Version: n.Version, State: state,
			Epoch:   strconv.FormatInt(n.Epoch, 10),
			Started: At(n.Started, now), Heartbeat: At(n.Heartbeat, now), LeaseUntil: At(n.LeaseUntil, now),
			Running: n.Running, MaxJobs: maxJobs, Definitions: Truncate(n.DefinitionsHash, 12),
		})
	}
	p.Mismatch = len(hashes) > 1
	return p
}

// nodeState is a node's state with the badge of the job status it resembles.
func nodeState(st store.NodeState) Status {
	switch st {
	case store.NodeAlive:
		return Status{Label: "alive", Class: "st-running"}
	case store.NodeStopped:
		return Status{Label: "stopped", Class: "st-canceled"}
	default:
		return Status{Label: string(st), Class: "st-failed"}
	}
}
