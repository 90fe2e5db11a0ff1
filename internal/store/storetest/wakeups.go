package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// RunWakeups runs the conformance suite of store.Wakeups and store.RemoteCancel: which changes
// wake the other nodes, that a node does not hear its own, and cancel requests. openNodes is
// as for RunCluster (n stores on one new database, each implementing store.Cluster,
// store.Wakeups and store.RemoteCancel); a backend of one node has neither capability and does
// not run it.
func RunWakeups(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, openNodes func(t *testing.T, n int) []store.Store)
	}{
		{"WakeupsOfAdmitAndFinish", testWakeupsOfAdmitAndFinish},
		{"WakeupsOnlyOfRegisteredNodes", testWakeupsOnlyOfRegisteredNodes},
		{"RemoteCancel", testRemoteCancel},
		{"RemoteInterrupt", testRemoteInterrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, openNodes)
		})
	}
}

// wakeQuiet is how long a test waits to be sure that no wake-up comes.
const wakeQuiet = 300 * time.Millisecond

// listenTo runs the Listen of node i until the test ends and returns the wake-ups it delivers,
// once it is connected (its first WakeResync is consumed).
func (c *cluster) listenTo(i int) <-chan store.Wakeup {
	c.t.Helper()
	w, ok := c.nodes[i].s.(store.Wakeups)
	if !ok {
		c.t.Fatalf("%T does not implement store.Wakeups", c.nodes[i].s)
	}
	return Listen(c.t, w)
}

// Listen runs w.Listen until the test ends and returns the wake-ups it delivers, once the
// listener is connected (its first WakeResync is consumed). A backend's own tests use it too.
func Listen(t *testing.T, w store.Wakeups) <-chan store.Wakeup {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan store.Wakeup, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Listen(ctx, func(w store.Wakeup) { got <- w })
	}()
	t.Cleanup(func() { cancel(); <-done })
	WantWakeup(t, got, store.WakeResync)
	return got
}

// WantWakeup returns the next wake-up of kind from got (others are skipped), failing after 5s.
func WantWakeup(t *testing.T, got <-chan store.Wakeup, kind store.WakeKind) store.Wakeup {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case w := <-got:
			if w.Kind == kind {
				return w
			}
		case <-deadline:
			t.Fatalf("no wake-up of kind %d within 5s", kind)
		}
	}
}

// wantNoWakeup fails when a wake-up other than a reconnect's comes within wakeQuiet.
func wantNoWakeup(t *testing.T, got <-chan store.Wakeup, when string) {
	t.Helper()
	deadline := time.After(wakeQuiet)
	for {
		select {
		case w := <-got:
			if w.Kind == store.WakePipeline || w.Kind == store.WakeCancel {
				t.Errorf("%s: unexpected wake-up %+v", when, w)
			}
		case <-deadline:
			return
		}
	}
}

// testWakeupsOfAdmitAndFinish: a job that waits wakes the other nodes for its pipeline, one
// that starts at once does not; the end of a running job wakes them when its pipeline has
// waiting jobs, not when it has none. A node does not hear its own wake-ups.
func testWakeupsOfAdmitAndFinish(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	c := newCluster(t, openNodes, 2)
	c.register(0, "a")
	c.register(1, "b")
	a, _ := c.node(0)
	gotA, gotB := c.listenTo(0), c.listenTo(1)
	d := testDefinition("p", 1)

	a.admitStarted(d, at(0), "first")
	wantNoWakeup(t, gotB, "after a job started at once")
	a.admitQueued(d, at(1), "second")
	if w := WantWakeup(t, gotB, store.WakePipeline); w.Pipeline != "p" {
		t.Errorf("wake-up for pipeline %q, want p", w.Pipeline)
	}
	wantNoWakeup(t, gotA, "node a, of its own admission")

	a.finish("first", pipeline.JobSucceeded, at(2))
	if w := WantWakeup(t, gotB, store.WakePipeline); w.Pipeline != "p" {
		t.Errorf("wake-up for pipeline %q after the end, want p", w.Pipeline)
	}

	alone := testDefinition("alone", 1)
	a.admitStarted(alone, at(3), "alone-1")
	a.finish("alone-1", pipeline.JobSucceeded, at(4))
	wantNoWakeup(t, gotB, "after the end of a job that nobody waits for")

	// A job that a node without room (NoStart) stores queued wakes the others, which may have.
	held := testDefinition("held", 1)
	res, err := a.s.Admit(a.ctx, store.AdmitParams{Job: newJob(held, "held-1", at(5)), Definition: held, Now: at(5), NoStart: true})
	if err != nil || !res.Held {
		t.Fatalf("Admit(NoStart) = %+v, %v; want held", res, err)
	}
	if w := WantWakeup(t, gotB, store.WakePipeline); w.Pipeline != "held" {
		t.Errorf("wake-up for pipeline %q after a held admission, want held", w.Pipeline)
	}
}

// testWakeupsOnlyOfRegisteredNodes: a store that is not registered (one node per database)
// wakes nobody.
func testWakeupsOnlyOfRegisteredNodes(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	c := newCluster(t, openNodes, 2)
	c.register(1, "b")
	single, _ := c.node(0)
	got := c.listenTo(1)
	d := testDefinition("p", 1)
	single.admitStarted(d, at(0), "first")
	single.admitQueued(d, at(1), "second")
	single.finish("first", pipeline.JobSucceeded, at(2))
	wantNoWakeup(t, got, "changes of a store that is not registered")
}

// testRemoteCancel: a cancel requested through node b of a job running on node a is stored for
// a (CancelRequests) and wakes a; jobs that do not run are left alone and say what they are.
func testRemoteCancel(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	c := newCluster(t, openNodes, 2)
	c.register(0, "a")
	c.register(1, "b")
	a, _ := c.node(0)
	b, _ := c.node(1)
	rcA, rcB := a.s.(store.RemoteCancel), b.s.(store.RemoteCancel)
	gotA := c.listenTo(0)
	d := testDefinition("p", 1)
	a.admitStarted(d, at(0), "running")
	a.admitQueued(d, at(1), "queued")

	status, owner, err := rcB.RequestCancel(c.ctx, "running", at(2))
	if err != nil || status != pipeline.JobRunning || owner != "a" {
		t.Fatalf("RequestCancel(running) = %q, %q, %v; want running, a, nil", status, owner, err)
	}
	if w := WantWakeup(t, gotA, store.WakeCancel); w.JobID != "running" {
		t.Errorf("cancel wake-up for job %q, want running", w.JobID)
	}
	wantCancelRequests(t, "a", rcA, "running")
	wantCancelRequests(t, "b", rcB)
	a.wantStatus("running", pipeline.JobRunning) // a request only: the owner cancels

	if status, _, err := rcB.RequestCancel(c.ctx, "queued", at(3)); err != nil || status != pipeline.JobQueued {
		t.Errorf("RequestCancel(queued) = %q, %v; want queued, nil", status, err)
	}
	a.wantStatus("queued", pipeline.JobQueued)
	if _, _, err := rcB.RequestCancel(c.ctx, "nope", at(3)); !errors.Is(err, pipeline.ErrJobNotFound) {
		t.Errorf("RequestCancel(nope) error %v, want ErrJobNotFound", err)
	}

	a.finish("running", pipeline.JobCanceled, at(4))
	wantCancelRequests(t, "a", rcA)
	if status, _, err := rcB.RequestCancel(c.ctx, "running", at(5)); err != nil || status != pipeline.JobCanceled {
		t.Errorf("RequestCancel of the ended job = %q, %v; want canceled, nil", status, err)
	}
}

// wantCancelRequests checks the cancel requests of node.
func wantCancelRequests(t *testing.T, node string, rc store.RemoteCancel, want ...string) {
	t.Helper()
	got, err := rc.CancelRequests(t.Context())
	if err != nil {
		t.Fatalf("CancelRequests() of %s error: %v", node, err)
	}
	if len(got) != len(want) || len(got) > 0 && got[0] != want[0] {
		t.Errorf("CancelRequests() of %s = %v, want %v", node, got, want)
	}
}

// testRemoteInterrupt: an interrupt request is a cancel request (the owner hears of it and
// finds it among its cancel requests) that names the interrupting job; the first one is kept.
// A plain cancel request names none, and a job that is not running gets no request.
func testRemoteInterrupt(t *testing.T, openNodes func(t *testing.T, n int) []store.Store) {
	c := newCluster(t, openNodes, 2)
	c.register(0, "a")
	c.register(1, "b")
	a, _ := c.node(0)
	b, _ := c.node(1)
	rcA, rcB := a.s.(store.RemoteCancel), b.s.(store.RemoteCancel)
	gotA := c.listenTo(0)
	d := testDefinition("p", 2)
	a.admitStarted(d, at(0), "old", "plain")
	a.admitQueued(d, at(1), "new")

	status, owner, err := rcB.RequestInterrupt(c.ctx, "old", "new", at(2))
	if err != nil || status != pipeline.JobRunning || owner != "a" {
		t.Fatalf("RequestInterrupt(old) = %q, %q, %v; want running, a, nil", status, owner, err)
	}
	if w := WantWakeup(t, gotA, store.WakeCancel); w.JobID != "old" {
		t.Errorf("cancel wake-up for job %q, want old", w.JobID)
	}
	wantCancelRequests(t, "a", rcA, "old")
	if _, _, err := rcB.RequestInterrupt(c.ctx, "old", "newer", at(3)); err != nil {
		t.Fatalf("RequestInterrupt(old) again error: %v", err)
	}
	wantInterruptedBy := func(id, want string) {
		t.Helper()
		if got, err := rcA.InterruptedBy(c.ctx, id); err != nil || got != want {
			t.Errorf("InterruptedBy(%s) = %q, %v; want %q", id, got, err, want)
		}
	}
	wantInterruptedBy("old", "new")
	a.wantStatus("old", pipeline.JobRunning) // a request only: the owner ends it

	if _, _, err := rcB.RequestCancel(c.ctx, "plain", at(4)); err != nil {
		t.Fatal(err)
	}
	wantInterruptedBy("plain", "")
	if status, _, err := rcB.RequestInterrupt(c.ctx, "new", "x", at(5)); err != nil || status != pipeline.JobQueued {
		t.Errorf("RequestInterrupt(queued) = %q, %v; want queued, nil", status, err)
	}
	wantInterruptedBy("new", "")
	if _, _, err := rcB.RequestInterrupt(c.ctx, "nope", "new", at(5)); !errors.Is(err, pipeline.ErrJobNotFound) {
		t.Errorf("RequestInterrupt(nope) error %v, want ErrJobNotFound", err)
	}
	if _, err := rcB.InterruptedBy(c.ctx, "nope"); !errors.Is(err, pipeline.ErrJobNotFound) {
		t.Errorf("InterruptedBy(nope) error %v, want ErrJobNotFound", err)
	}
}
