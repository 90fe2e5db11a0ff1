package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// The tests of this file need several nodes on one database (see RunCluster).

// testClusterOwner: the node that starts a job owns it, whether admission started it or a claim
// did; a queued job has no owner; Nodes lists the nodes with what they run.
func testClusterOwner(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	c := newCluster(t, openNodes, 2)
	a, _ := c.node(0)
	b, bc := c.node(1)
	c.register(0, "a")
	c.register(1, "b")
	d := testDefinition("p", 2)
	a.admitStarted(d, at(0), "j1")
	b.admitStarted(d, at(1), "j2")
	a.admitQueued(d, at(2), "j3")
	a.wantNode("j1", "a")
	a.wantNode("j2", "b")
	a.wantNode("j3", "")

	res, err := a.s.FinishAndClaim(a.ctx, store.FinishParams{JobID: "j1", Status: pipeline.JobSucceeded, End: at(3)},
		store.ClaimParams{Pipeline: "p", Concurrency: 2, Now: at(3)})
	if err != nil {
		t.Fatalf("FinishAndClaim() error: %v", err)
	}
	if len(res.Started) != 1 || res.Started[0].Node != "a" {
		t.Fatalf("FinishAndClaim() started %v, want j3 owned by a", res.Started)
	}
	b.wantNode("j3", "a")
	b.wantNode("j1", "a") // a finished job keeps the node that ran it

	nodes, err := bc.Nodes(b.ctx)
	if err != nil {
		t.Fatalf("Nodes() error: %v", err)
	}
	var got []string
	for _, n := range nodes {
		got = append(got, fmt.Sprintf("%s %s %s %s running=%d", n.ID, n.State, n.Address, n.DefinitionsHash, n.Running))
		if n.Heartbeat.IsZero() || n.Started.IsZero() || !n.LeaseUntil.After(n.Heartbeat) {
			t.Errorf("node %s: started %v heartbeat %v lease until %v", n.ID, n.Started, n.Heartbeat, n.LeaseUntil)
		}
	}
	want := []string{"a alive http://a:9009 hash-a running=1", "b alive http://b:9009 hash-b running=1"}
	if !slices.Equal(got, want) {
		t.Errorf("Nodes() = %q, want %q", got, want)
	}
}

// testClusterFencingOtherNode: a node cannot write about another node's job.
func testClusterFencingOtherNode(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	c := newCluster(t, openNodes, 2)
	a, _ := c.node(0)
	b, _ := c.node(1)
	c.register(0, "a")
	c.register(1, "b")
	d := testDefinition("p", 1)
	a.admitStarted(d, at(0), "j1")
	a.updateTask("j1", pipeline.Task{Name: "build", Status: pipeline.TaskRunning, Start: ptr(at(1))})
	before := a.job("j1")

	wantLeaseLost(t, "UpdateTask by another node", b.s.UpdateTask(b.ctx, "j1",
		pipeline.Task{Name: "build", Status: pipeline.TaskDone, Start: ptr(at(1)), End: ptr(at(2))}))
	wantLeaseLost(t, "FinishJob by another node", b.s.FinishJob(b.ctx,
		store.FinishParams{JobID: "j1", Status: pipeline.JobSucceeded, End: at(3)}))
	_, err := b.s.FinishAndClaim(b.ctx, store.FinishParams{JobID: "j1", Status: pipeline.JobSucceeded, End: at(3)},
		store.ClaimParams{Pipeline: "p", Concurrency: 1, Now: at(3)})
	wantLeaseLost(t, "FinishAndClaim by another node", err)
	checkJob(t, a.job("j1"), before)
	a.wantState("p", 1)
	a.finish("j1", pipeline.JobSucceeded, at(4)) // the owner still can
}

// testClusterFencingAfterExpiry: once a node's lease has expired it can write nothing about its
// jobs, start nothing and not renew; other nodes go on.
func testClusterFencingAfterExpiry(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	c := newCluster(t, openNodes, 2)
	a, ac := c.node(0)
	b, _ := c.node(1)
	c.register(0, "a")
	c.register(1, "b")
	d := testDefinition("p", 2)
	a.admitStarted(d, at(0), "j1")
	before := a.job("j1")
	c.expire(0)

	wantLeaseLost(t, "UpdateTask", a.s.UpdateTask(a.ctx, "j1",
		pipeline.Task{Name: "build", Status: pipeline.TaskDone, Start: ptr(at(1)), End: ptr(at(2))}))
	wantLeaseLost(t, "UpdateTask (errored)", a.s.UpdateTask(a.ctx, "j1",
		pipeline.Task{Name: "build", Status: pipeline.TaskError, Errored: true, Start: ptr(at(1)), End: ptr(at(2))}))
	wantLeaseLost(t, "FinishJob", a.s.FinishJob(a.ctx, store.FinishParams{JobID: "j1", Status: pipeline.JobSucceeded, End: at(3)}))
	_, err := a.s.FinishAndClaim(a.ctx, store.FinishParams{JobID: "j1", Status: pipeline.JobSucceeded, End: at(3)},
		store.ClaimParams{Pipeline: "p", Concurrency: 2, Now: at(3)})
	wantLeaseLost(t, "FinishAndClaim", err)
	_, err = a.s.Claim(a.ctx, store.ClaimParams{Pipeline: "p", Concurrency: 2, Now: at(3)})
	wantLeaseLost(t, "Claim", err)
	_, err = a.tryAdmit(d, newJob(d, "new", at(4)), at(4))
	wantLeaseLost(t, "Admit", err)
	a.wantNoJob("new")
	fr := firing(pipeline.FiringTrigger, at(4))
	_, err = a.s.Admit(a.ctx, store.AdmitParams{Job: newJob(d, "fired", at(4)), Definition: d, Now: at(4), Firing: &fr})
	wantLeaseLost(t, "Admit of a firing", err)
	a.wantNoJob("fired")
	if fs := b.firings(schedID, 0); len(fs) != 0 {
		t.Errorf("firings after a refused firing = %+v, want none (the node that fires it next may)", fs)
	}
	_, err = ac.RenewLease(a.ctx, longLease)
	wantLeaseLost(t, "RenewLease", err)

	checkJob(t, b.job("j1"), before)
	b.wantState("p", 1)
	// The other node is not affected.
	b.admitStarted(d, at(5), "b1")
	b.wantNode("b1", "b")
	b.finish("b1", pipeline.JobSucceeded, at(6))
}

// testClusterLeaseExpiresWithTime: a lease that is not renewed runs out by the database's clock,
// and then the node's writes are refused.
func testClusterLeaseExpiresWithTime(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	c := newCluster(t, openNodes, 2)
	a, ac := c.node(0)
	const lease = time.Second
	registered := time.Now()
	if _, err := ac.RegisterNode(a.ctx, store.NodeInfo{ID: "a"}, lease); err != nil {
		t.Fatalf("RegisterNode() error: %v", err)
	}
	d := testDefinition("p", 1)
	_, err := a.tryAdmit(d, newJob(d, "j1", at(0)), at(0))
	if time.Since(registered) > lease/2 {
		t.Skip("the machine is too slow to write within half the lease")
	}
	if err != nil {
		t.Fatalf("Admit() within the lease error: %v", err)
	}
	task := pipeline.Task{Name: "build", Status: pipeline.TaskRunning, Start: ptr(at(1))}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := a.s.UpdateTask(a.ctx, "j1", task)
		if errors.Is(err, store.ErrLeaseLost) {
			break
		}
		if err != nil {
			t.Fatalf("UpdateTask() error: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("UpdateTask() still accepted %v after the lease of %v was granted", time.Since(registered), lease)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if elapsed := time.Since(registered); elapsed < lease-100*time.Millisecond {
		t.Errorf("writes refused %v after registering, before the lease of %v ran out", elapsed, lease)
	}
}

// testClusterReaper: the reaper ends a lost node's running jobs once, as failed with "node <id>
// lost", frees their slots for the waiting jobs, and the lost node's late writes never change
// what it decided.
func testClusterReaper(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	c := newCluster(t, openNodes, 2)
	a, ac := c.node(0)
	b, bc := c.node(1)
	c.register(0, "a")
	c.register(1, "b")
	d := testDefinition("p", 2)
	a.admitStarted(d, at(0), "r1", "r2")
	b.admitQueued(d, at(1), "q1", "q2", "q3")
	a.updateTask("r1", pipeline.Task{Name: "build", Status: pipeline.TaskDone, Start: ptr(at(1)), End: ptr(at(2))})
	a.updateTask("r1", pipeline.Task{Name: "test", DependsOn: []string{"build"}, Status: pipeline.TaskRunning, Start: ptr(at(2))})
	if reaped := c.reap(1, at(5)); len(reaped) != 0 {
		t.Fatalf("ReapLostNodes() before the lease expired = %v, want nothing", reaped)
	}
	c.expire(0)

	reaped := c.reap(1, at(10))
	want := []store.ReapedNode{{Node: "a", Jobs: []string{"r1", "r2"}}}
	if fmt.Sprint(reaped) != fmt.Sprint(want) {
		t.Fatalf("ReapLostNodes() = %v, want %v", reaped, want)
	}
	b.wantLost("r1", "a", at(10))
	b.wantLost("r2", "a", at(10))
	b.wantTaskStatuses("r1", pipeline.TaskDone, pipeline.TaskError, pipeline.TaskSkipped)
	if tk := b.job("r1").Tasks[1]; tk.Error != store.LostNodeReason("a") || !tk.Errored {
		t.Errorf("running task after reaping: Error %q Errored %v, want %q true", tk.Error, tk.Errored, store.LostNodeReason("a"))
	}
	b.wantState("p", 0, "q1", "q2", "q3")
	if again := c.reap(0, at(11)); len(again) != 0 {
		t.Errorf("second ReapLostNodes() = %v, want nothing", again)
	}
	nodes, err := bc.Nodes(b.ctx)
	if err != nil || len(nodes) != 2 || nodes[0].State != store.NodeLost || nodes[0].Running != 0 || nodes[1].State != store.NodeAlive {
		t.Errorf("Nodes() = %+v, %v; want a lost without jobs, b alive", nodes, err)
	}

	// The wait list moves on: the freed slots are claimable.
	if got := jobIDs(b.claim(d, at(12)).Started); !slices.Equal(got, []string{"q1", "q2"}) {
		t.Errorf("Claim() after reaping started %v, want [q1 q2]", got)
	}

	// The lost node's late writes are refused and change nothing.
	lostBefore := b.job("r1")
	wantLeaseLost(t, "late FinishJob", a.s.FinishJob(a.ctx, store.FinishParams{JobID: "r1", Status: pipeline.JobSucceeded, End: at(13)}))
	wantLeaseLost(t, "late UpdateTask", a.s.UpdateTask(a.ctx, "r1",
		pipeline.Task{Name: "test", DependsOn: []string{"build"}, Status: pipeline.TaskDone, Start: ptr(at(2)), End: ptr(at(13))}))
	checkJob(t, b.job("r1"), lostBefore)
	b.wantState("p", 2, "q3")

	// Registering again gives the node a new lease; its old jobs stay ended.
	l := c.register(0, "a")
	if l.Epoch < 2 {
		t.Errorf("epoch after registering again = %d, want ≥ 2", l.Epoch)
	}
	if _, err := ac.RenewLease(a.ctx, longLease); err != nil {
		t.Errorf("RenewLease() after registering again error: %v", err)
	}
	wantLeaseLost(t, "FinishJob of the earlier epoch's job", a.s.FinishJob(a.ctx,
		store.FinishParams{JobID: "r2", Status: pipeline.JobSucceeded, End: at(14)}))
	b.wantLost("r2", "a", at(10))
}

// testClusterReapersRace: several nodes reaping at once end each of a lost node's jobs exactly
// once.
func testClusterReapersRace(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	c := newCluster(t, openNodes, 3)
	a, _ := c.node(0)
	c.register(0, "a")
	c.register(1, "b")
	c.register(2, "c")
	var all []string
	for p := range 4 {
		d := testDefinition(fmt.Sprintf("p%d", p), 10)
		for i := range 5 {
			id := fmt.Sprintf("p%d-j%d", p, i)
			a.admitStarted(d, at(i), id)
			all = append(all, id)
		}
	}
	c.expire(0)

	var (
		mu    sync.Mutex
		ended []string
		wg    sync.WaitGroup
	)
	for i := range 6 {
		wg.Go(func() {
			_, cl := c.node(1 + i%2)
			reaped, err := cl.ReapLostNodes(c.ctx, at(20))
			if err != nil {
				t.Errorf("ReapLostNodes() error: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, r := range reaped {
				ended = append(ended, r.Jobs...)
			}
		})
	}
	wg.Wait()
	slices.Sort(ended)
	slices.Sort(all)
	if !slices.Equal(ended, all) {
		t.Errorf("jobs ended by the reapers (%d) = %v, want each of %v once", len(ended), ended, all)
	}
	for _, id := range all {
		a.wantLost(id, "a", at(20))
	}
	for p := range 4 {
		a.wantState(fmt.Sprintf("p%d", p), 0)
	}
}

// testClusterFinishRacesReaper: a node's lease ends while it finishes its jobs and another node
// reaps: every job ends exactly once, either as its owner finished it (the write was
// accepted) or as lost (the write was refused).
func testClusterFinishRacesReaper(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	c := newCluster(t, openNodes, 2)
	a, _ := c.node(0)
	b, _ := c.node(1)
	c.register(0, "a")
	c.register(1, "b")
	d := testDefinition("p", 40)
	const n = 40
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("j%02d", i)
		a.admitStarted(d, at(0), ids[i])
	}

	finishErrs := make([]error, n)
	var (
		wg     sync.WaitGroup
		reaped []store.ReapedNode
	)
	wg.Go(func() {
		for i, id := range ids {
			finishErrs[i] = a.s.FinishJob(a.ctx, store.FinishParams{JobID: id, Status: pipeline.JobSucceeded, End: at(1)})
		}
	})
	wg.Go(func() {
		time.Sleep(5 * time.Millisecond) // let some finishes through
		if _, err := a.s.(store.Cluster).RenewLease(a.ctx, 0); err != nil {
			t.Errorf("RenewLease(0) error: %v", err)
		}
		for range 3 {
			r, err := b.s.(store.Cluster).ReapLostNodes(b.ctx, at(2))
			if err != nil {
				t.Errorf("ReapLostNodes() error: %v", err)
			}
			reaped = append(reaped, r...)
		}
	})
	wg.Wait()
	lost := map[string]bool{}
	for _, r := range reaped {
		for _, id := range r.Jobs {
			if lost[id] {
				t.Errorf("job %s reaped twice", id)
			}
			lost[id] = true
		}
	}
	for i, id := range ids {
		j := b.job(id)
		switch err := finishErrs[i]; {
		case err == nil:
			if j.Status != pipeline.JobSucceeded || lost[id] {
				t.Errorf("job %s: finish accepted, but status %q (reaped: %v)", id, j.Status, lost[id])
			}
		case errors.Is(err, store.ErrLeaseLost):
			if !lost[id] {
				t.Errorf("job %s: finish refused, but the reaper did not end it", id)
			}
			b.wantLost(id, "a", at(2))
		default:
			t.Errorf("FinishJob(%s) error: %v", id, err)
		}
	}
	b.wantState("p", 0)
	t.Logf("%d of %d jobs finished by their owner, %d reaped", n-len(lost), n, len(lost))
}

// testClusterRecoverNodeLeavesOthers: a node that restarts (registers again with its ID) ends
// its own earlier jobs and no other node's; its earlier incarnation can no longer write them.
func testClusterRecoverNodeLeavesOthers(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	c := newCluster(t, openNodes, 3)
	oldA, _ := c.node(0)
	b, _ := c.node(1)
	newA, newAC := c.node(2)
	c.register(0, "a")
	c.register(1, "b")
	d := testDefinition("p", 10)
	oldA.admitStarted(d, at(0), "a1", "a2")
	b.admitStarted(d, at(1), "b1")

	c.register(2, "a") // the restart
	newA.admitStarted(d, at(2), "a3")
	const reason = "node a restarted while the job was running"
	ids, err := newAC.RecoverNode(newA.ctx, reason, at(3))
	if err != nil {
		t.Fatalf("RecoverNode() error: %v", err)
	}
	if want := []string{"a1", "a2"}; !slices.Equal(ids, want) {
		t.Errorf("RecoverNode() = %v, want %v", ids, want)
	}
	for _, id := range ids {
		if j := b.job(id); j.Status != pipeline.JobFailed || j.LastError != reason {
			t.Errorf("job %s status %q LastError %q, want %q %q", id, j.Status, j.LastError, pipeline.JobFailed, reason)
		}
	}
	b.wantStatus("b1", pipeline.JobRunning)
	b.wantStatus("a3", pipeline.JobRunning)
	b.wantState("p", 2)
	wantLeaseLost(t, "UpdateTask by the earlier incarnation", oldA.s.UpdateTask(oldA.ctx, "a1",
		pipeline.Task{Name: "build", Status: pipeline.TaskDone, Start: ptr(at(1)), End: ptr(at(2))}))
	newA.finish("a3", pipeline.JobSucceeded, at(4))
	b.finish("b1", pipeline.JobSucceeded, at(4))
}

// testClusterReapEarlierEpoch: when a node registered again without recovering, the reaper ends
// the jobs of its earlier epoch (nobody can write them any more) and leaves its new ones.
func testClusterReapEarlierEpoch(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	c := newCluster(t, openNodes, 3)
	oldA, _ := c.node(0)
	newA, _ := c.node(2)
	c.register(0, "a")
	c.register(1, "b")
	d := testDefinition("p", 10)
	oldA.admitStarted(d, at(0), "a1")
	c.register(2, "a")
	newA.admitStarted(d, at(1), "a2")

	reaped := c.reap(1, at(5))
	want := []store.ReapedNode{{Node: "a", Jobs: []string{"a1"}}}
	if fmt.Sprint(reaped) != fmt.Sprint(want) {
		t.Fatalf("ReapLostNodes() = %v, want %v", reaped, want)
	}
	newA.wantLost("a1", "a", at(5))
	newA.wantStatus("a2", pipeline.JobRunning)
	newA.wantState("p", 1)
	newA.finish("a2", pipeline.JobSucceeded, at(6))
}

// testClusterNodeLifecycle: a node's max jobs and definitions hash are listed (the hash as last
// set); a node that stops is listed stopped, its writes are refused, the reaper does not call
// it lost (it still ends a job the node left running), and it is alive again when it registers.
func testClusterNodeLifecycle(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	c := newCluster(t, openNodes, 2)
	a, ac := c.node(0)
	_, bc := c.node(1)
	if _, err := ac.RegisterNode(a.ctx, store.NodeInfo{ID: "a", DefinitionsHash: "first", MaxJobs: 2}, longLease); err != nil {
		t.Fatalf("RegisterNode(a) error: %v", err)
	}
	c.register(1, "b")
	if err := ac.SetDefinitionsHash(a.ctx, "second"); err != nil {
		t.Fatalf("SetDefinitionsHash() error: %v", err)
	}
	wantNodes := func(what string, want ...string) {
		t.Helper()
		nodes, err := bc.Nodes(a.ctx)
		if err != nil {
			t.Fatalf("Nodes() error: %v", err)
		}
		var got []string
		for _, n := range nodes {
			got = append(got, fmt.Sprintf("%s %s %s max=%d running=%d", n.ID, n.State, n.DefinitionsHash, n.MaxJobs, n.Running))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: Nodes() = %q, want %q", what, got, want)
		}
	}
	wantNodes("registered", "a alive second max=2 running=0", "b alive hash-b max=0 running=0")

	d := testDefinition("p", 1)
	a.admitStarted(d, at(0), "left")
	if err := ac.StopNode(a.ctx); err != nil {
		t.Fatalf("StopNode() error: %v", err)
	}
	wantNodes("stopped", "a stopped second max=2 running=1", "b alive hash-b max=0 running=0")
	wantLeaseLost(t, "FinishJob after StopNode", a.s.FinishJob(a.ctx,
		store.FinishParams{JobID: "left", Status: pipeline.JobSucceeded, End: at(1)}))
	_, err := a.tryAdmit(d, newJob(d, "late", at(1)), at(1))
	wantLeaseLost(t, "Admit after StopNode", err)

	// Its lease ended with it: the reaper ends the job it left at once, and it stays stopped.
	reaped := c.reap(1, at(2))
	if len(reaped) != 1 || reaped[0].Node != "a" || !slices.Equal(reaped[0].Jobs, []string{"left"}) {
		t.Fatalf("ReapLostNodes() = %v, want job left of node a", reaped)
	}
	a.wantLost("left", "a", at(2))
	if reaped := c.reap(1, at(3)); len(reaped) != 0 {
		t.Errorf("ReapLostNodes() again = %v, want nothing", reaped)
	}
	wantNodes("reaped", "a stopped second max=2 running=0", "b alive hash-b max=0 running=0")

	if _, err := ac.RegisterNode(a.ctx, store.NodeInfo{ID: "a", DefinitionsHash: "third", MaxJobs: 1}, longLease); err != nil {
		t.Fatalf("RegisterNode(a) again error: %v", err)
	}
	wantNodes("registered again", "a alive third max=1 running=0", "b alive hash-b max=0 running=0")
	a.admitStarted(d, at(4), "again")
	a.finish("again", pipeline.JobSucceeded, at(5))
}
