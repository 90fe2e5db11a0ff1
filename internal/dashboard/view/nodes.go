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
	// Mismatch is true when the nodes load different pipeline definitions (their hashes differ).
	Mismatch bool
}

// NodeRow is one node of the cluster.
type NodeRow struct {
	ID, Address, Version string
	// State is "alive" or "lost", with its badge.
	State                          Status
	Epoch                          string
	Started, Heartbeat, LeaseUntil Time
	Running                        int
	Definitions                    string
}

// NewNodesPage builds the Nodes page of nodes at now.
func NewNodesPage(l Layout, nodes []store.Node, now time.Time) NodesPage {
	p := NodesPage{Layout: l}
	hashes := map[string]bool{}
	for _, n := range nodes {
		// A node's state in the colours of the job statuses it resembles.
		state := Status{Label: "alive", Class: "st-running"}
		if n.State != store.NodeAlive {
			state = Status{Label: string(n.State), Class: "st-failed"}
		}
		if n.DefinitionsHash != "" {
			hashes[n.DefinitionsHash] = true
		}
		p.Nodes = append(p.Nodes, NodeRow{
			ID: n.ID, Address: n.Address, Version: n.Version, State: state,
			Epoch:   strconv.FormatInt(n.Epoch, 10),
			Started: At(n.Started, now), Heartbeat: At(n.Heartbeat, now), LeaseUntil: At(n.LeaseUntil, now),
			Running: n.Running, Definitions: Truncate(n.DefinitionsHash, 12),
		})
	}
	p.Mismatch = len(hashes) > 1
	return p
}
