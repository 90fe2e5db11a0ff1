package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// RunCluster runs the conformance suite of store.Cluster: node registration, leases, job
// ownership, fencing, the reaping of lost nodes and per-node recovery. openNodes must return n
// new stores on one new, empty database (as n prunner nodes would open it), each implementing
// store.Cluster, and close them in t.Cleanup. A backend that one node only can use (SQLite)
// skips t when n > 1: it then runs the single-node subset.
//
// Lease expiry is by the database's clock: most tests end a lease at once with RenewLease(0),
// and ClusterLeaseExpiresWithTime waits (about a second) for a short lease to run out.
func RunCluster(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, openNodes func(t *testing.T, n int) []store.Store)
	}{
		// One node (every backend).
		{"ClusterSingleNode", testClusterSingleNode},
		{"ClusterRecoverNodeAfterRestart", testClusterRecoverNodeAfterRestart},
		// Several nodes on one database.
		{"ClusterOwner", testClusterOwner},
		{"ClusterFencingOtherNode", testClusterFencingOtherNode},
		{"ClusterFencingAfterExpiry", testClusterFencingAfterExpiry},
		{"ClusterLeaseExpiresWithTime", testClusterLeaseExpiresWithTime},
		{"ClusterReaper", testClusterReaper},
		{"ClusterReapersRace", testClusterReapersRace},
		{"ClusterFinishRacesReaper", testClusterFinishRacesReaper},
		{"ClusterRecoverNodeLeavesOthers", testClusterRecoverNodeLeavesOthers},
		{"ClusterReapEarlierEpoch", testClusterReapEarlierEpoch},
		{"ClusterNodeLifecycle", testClusterNodeLifecycle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, openNodes)
		})
	}
}

// longLease is a lease that does not run out during a test.
const longLease = 10 * time.Minute

// cluster is n stores (nodes) of the backend under test on one database.
type cluster struct {
	t     *testing.T
	ctx   context.Context
	nodes []*fixture
}

func newCluster(t *testing.T, openNodes func(t *testing.T, n int) []store.Store, n int) *cluster {
	t.Helper()
	stores := openNodes(t, n)
	if len(stores) != n {
		t.Fatalf("openNodes(%d) returned %d stores", n, len(stores))
	}
	c := &cluster{t: t, ctx: t.Context()}
	for _, s := range stores {
		if _, ok := s.(store.Cluster); !ok {
			t.Fatalf("%T does not implement store.Cluster", s)
		}
		c.nodes = append(c.nodes, &fixture{t: t, ctx: c.ctx, s: s})
	}
	return c
}

// node returns the fixture of node i and its store.Cluster.
func (c *cluster) node(i int) (*fixture, store.Cluster) {
	return c.nodes[i], c.nodes[i].s.(store.Cluster)
}

// register registers node i as id with the long lease.
func (c *cluster) register(i int, id string) store.Lease {
	c.t.Helper()
	_, cl := c.node(i)
	l, err := cl.RegisterNode(c.ctx, store.NodeInfo{ID: id, Address: "http://" + id + ":9009",
		Version: "test", DefinitionsHash: "hash-" + id}, longLease)
	if err != nil {
		c.t.Fatalf("RegisterNode(%s) error: %v", id, err)
	}
	if l.Node != id {
		c.t.Errorf("RegisterNode(%s) lease of node %q", id, l.Node)
	}
	return l
}

// expire ends the lease of node i at once (RenewLease with a lease of 0).
func (c *cluster) expire(i int) {
	c.t.Helper()
	_, cl := c.node(i)
	if _, err := cl.RenewLease(c.ctx, 0); err != nil {
		c.t.Fatalf("RenewLease(0) of node %d error: %v", i, err)
	}
}

// reap runs ReapLostNodes on node i.
func (c *cluster) reap(i int, now time.Time) []store.ReapedNode {
	c.t.Helper()
	_, cl := c.node(i)
	reaped, err := cl.ReapLostNodes(c.ctx, now)
	if err != nil {
		c.t.Fatalf("ReapLostNodes() error: %v", err)
	}
	return reaped
}

// wantLeaseLost checks that err is store.ErrLeaseLost.
func wantLeaseLost(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("%s error = %v, want store.ErrLeaseLost", what, err)
	}
}

// wantNode checks the owner recorded for a job.
func (f *fixture) wantNode(id, node string) {
	f.t.Helper()
	if got := f.job(id).Node; got != node {
		f.t.Errorf("job %s Node = %q, want %q", id, got, node)
	}
}

// wantLost checks that a job ended as a lost node's job, at end.
func (f *fixture) wantLost(id, node string, end time.Time) {
	f.t.Helper()
	j := f.job(id)
	want := store.LostNodeReason(node)
	if j.Status != pipeline.JobFailed || j.LastError != want || !j.Errored {
		f.t.Errorf("job %s status %q LastError %q Errored %v; want %q %q true", id, j.Status, j.LastError, j.Errored,
			pipeline.JobFailed, want)
	}
	wantTimePtr(f.t, "job "+id+" End", j.End, &end)
}

// testClusterSingleNode: a registered node of any backend admits, claims, writes and finishes
// its jobs as an unregistered store does; renewing works; the reaper finds nobody lost.
func testClusterSingleNode(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	c := newCluster(t, openNodes, 1)
	f, cl := c.node(0)
	l := c.register(0, "solo")
	if l.Epoch < 1 || !l.Until.After(time.Now().Add(longLease/2)) {
		t.Errorf("RegisterNode() = %+v, want epoch ≥ 1 and a lease until about %v from now", l, longLease)
	}
	d := testDefinition("p", 1)
	f.admitStarted(d, at(0), "j1")
	f.admitQueued(d, at(1), "j2")
	f.updateTask("j1", pipeline.Task{Name: "build", Status: pipeline.TaskDone, Start: ptr(at(1)), End: ptr(at(2))})
	res, err := f.s.FinishAndClaim(f.ctx, store.FinishParams{JobID: "j1", Status: pipeline.JobSucceeded, End: at(3)},
		store.ClaimParams{Pipeline: "p", Concurrency: 1, Now: at(3)})
	if err != nil {
		t.Fatalf("FinishAndClaim() error: %v", err)
	}
	if got := jobIDs(res.Started); !slices.Equal(got, []string{"j2"}) {
		t.Errorf("FinishAndClaim() started %v, want [j2]", got)
	}
	if renewed, err := cl.RenewLease(f.ctx, longLease); err != nil || renewed.Until.Before(l.Until) {
		t.Errorf("RenewLease() = %+v, %v; want a lease until at least %v", renewed, err, l.Until)
	}
	if reaped := c.reap(0, at(4)); len(reaped) != 0 {
		t.Errorf("ReapLostNodes() = %v, want nothing", reaped)
	}
	f.wantStatus("j2", pipeline.JobRunning)
	f.finish("j2", pipeline.JobSucceeded, at(5))
	f.wantState("p", 0)
}

// testClusterRecoverNodeAfterRestart: a node that registers again with its ID (a restart) ends,
// with RecoverNode, the jobs it ran before; queued and finished jobs stay as they are.
func testClusterRecoverNodeAfterRestart(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	c := newCluster(t, openNodes, 1)
	f, cl := c.node(0)
	first := c.register(0, "solo")
	d, other := testDefinition("p", 1), testDefinition("other", 1)
	f.admitStarted(d, at(0), "r1")
	f.admitQueued(d, at(1), "queued")
	f.admitStarted(other, at(2), "r2")
	f.updateTask("r1", pipeline.Task{Name: "build", Status: pipeline.TaskRunning, Start: ptr(at(1))})
	queuedBefore := f.job("queued")

	again := c.register(0, "solo")
	if again.Epoch < first.Epoch {
		t.Errorf("epoch after registering again %d, before %d: want no smaller", again.Epoch, first.Epoch)
	}
	const reason = "node solo restarted while the job was running"
	ids, err := cl.RecoverNode(f.ctx, reason, at(10))
	if err != nil {
		t.Fatalf("RecoverNode() error: %v", err)
	}
	slices.Sort(ids)
	if want := []string{"r1", "r2"}; !slices.Equal(ids, want) {
		t.Errorf("RecoverNode() = %v, want %v", ids, want)
	}
	for _, id := range ids {
		if j := f.job(id); j.Status != pipeline.JobFailed || j.LastError != reason {
			t.Errorf("job %s status %q LastError %q, want %q %q", id, j.Status, j.LastError, pipeline.JobFailed, reason)
		}
	}
	f.wantTaskStatuses("r1", pipeline.TaskError, pipeline.TaskSkipped, pipeline.TaskSkipped)
	checkJob(t, f.job("queued"), queuedBefore)
	f.wantState("p", 0, "queued")
	f.wantState("other", 0)
	if ids, err := cl.RecoverNode(f.ctx, reason, at(11)); err != nil || len(ids) != 0 {
		t.Errorf("second RecoverNode() = %v, %v; want nothing", ids, err)
	}
}
