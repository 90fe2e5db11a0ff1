package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// A node of a cluster tells the others, through its row in the node table, which pipeline
// definitions it runs (a hash of them, written at each load and reload) and when it stopped
// cleanly (Leave): the nodes' list then shows a stopped node, not a lost one.

// definitionsHash identifies a set of pipeline definitions: the hex SHA-256 of their canonical
// JSON, the pipelines in name order, each with its schedules. It is computed from what the files
// declare, not from their bytes, so that comments, formatting and the order of keys do not
// count, and without the files' paths (SourceFile, SourceLine), so that nodes that keep the same
// files in different directories agree. Maps encode with sorted keys, so the encoding is stable.
func definitionsHash(set *pipeline.Set) string {
	type entry struct {
		Definition pipeline.Definition     `json:"definition"`
		Schedules  []pipeline.ScheduleSpec `json:"schedules"`
	}
	entries := make([]entry, 0, len(set.Pipelines))
	for _, name := range set.Names() {
		d := *set.Pipelines[name]
		d.SourceFile = ""
		scheds := slices.Clone(d.Schedules)
		for i := range scheds {
			scheds[i].SourceFile, scheds[i].SourceLine = "", 0
		}
		entries = append(entries, entry{Definition: d, Schedules: scheds})
	}
	b, err := json.Marshal(entries)
	if err != nil {
		// Definitions are plain data; a value JSON cannot encode would be a bug, and the
		// hash then says so rather than matching another node's by chance.
		return "unhashable: " + err.Error()
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// publishDefinitions records the hash of the loaded definitions in the node table and warns
// when other alive nodes run other definitions. Publications are serialised, so the hash
// stored last is that of the definitions loaded last.
func (r *Runner) publishDefinitions() {
	cl := r.cluster()
	if cl == nil {
		return
	}
	r.publishMu.Lock()
	defer r.publishMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), r.lease())
	defer cancel()
	hash := r.definitionsHash()
	if err := cl.SetDefinitionsHash(ctx, hash); err != nil {
		r.log.Error("record the definitions hash of this node", "error", err)
		return
	}
	nodes, err := cl.Nodes(ctx)
	if err != nil {
		r.log.Error("compare the definitions of the nodes", "error", err)
		return
	}
	for _, n := range nodes {
		if n.ID == r.cfg.Node.ID || n.State != store.NodeAlive || n.DefinitionsHash == "" || n.DefinitionsHash == hash {
			continue
		}
		r.log.Warn(fmt.Sprintf("node %s runs other pipeline definitions than this node: load the same pipeline files on every node", n.ID),
			"node", n.ID, "its_definitions", n.DefinitionsHash, "these_definitions", hash)
	}
}

// definitionsHash returns the hash of the loaded definitions.
func (r *Runner) definitionsHash() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.defsHash
}

// nodeInfo returns what the node registers with: the configured NodeInfo with the hash of the
// definitions loaded now.
func (r *Runner) nodeInfo() store.NodeInfo {
	n := r.cfg.Node
	n.DefinitionsHash = r.definitionsHash()
	return n
}

// Leave marks this node stopped in the cluster (store.Cluster.StopNode) once the runner has
// stopped (Drain or Stop) and its jobs have ended: its lease ends with it, so that nothing
// waits for it to run out, and the nodes' list shows it stopped rather than lost. The lease
// loop ends first, so that it does not register the node again. A node that still runs jobs
// (its stop was cut short) leaves nothing: its lease runs out, and another node ends its jobs
// as lost. Without a cluster it does nothing.
func (r *Runner) Leave(ctx context.Context) error {
	cl := r.cluster()
	if cl == nil {
		return nil
	}
	if !r.isStopped() {
		return fmt.Errorf("leave the cluster: the runner has not stopped (Drain or Stop first)")
	}
	if n := r.Running(); n > 0 {
		return fmt.Errorf("leave the cluster: %d jobs still run here; their node's lease runs out and another node ends them", n)
	}
	r.stopLeaseLoop()
	r.mu.Lock()
	registered := !r.leaseGranted.IsZero()
	r.mu.Unlock()
	if !registered {
		return nil // it stopped before it registered: nothing to mark
	}
	if err := cl.StopNode(ctx); err != nil {
		return err
	}
	r.log.Info("node stopped: marked stopped in the cluster", "node", r.cfg.Node.ID)
	return nil
}

// stopLeaseLoop ends the lease loop (when it runs) and waits until it has returned.
func (r *Runner) stopLeaseLoop() {
	r.leaseStopOnce.Do(func() { close(r.leaseStop) })
	r.mu.Lock()
	done := r.leaseDone
	r.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(r.lease()):
		// A renewal that hangs on the database: StopNode is refused as well then, or ends
		// the lease all the same.
	}
}
