package runner

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// heldPipelines: jobs of two pipelines that run until the test releases them by file.
const heldPipelines = `pipelines:
  a:
    concurrency: 5
    tasks:
      t: {script: ["touch ran-{{ .__jobID }}", "while [ ! -e release-{{ .__jobID }} ]; do sleep 0.02; done"]}
  b:
    concurrency: 5
    tasks:
      t: {script: ["touch ran-{{ .__jobID }}", "while [ ! -e release-{{ .__jobID }} ]; do sleep 0.02; done"]}
`

// release lets job id end.
func release(t *testing.T, dir, id string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "release-"+id), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// watchRunning samples how many jobs the store has running until stop is closed and keeps the
// most it saw.
func watchRunning(r *Runner, stop <-chan struct{}, most *atomic.Int64, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		states, err := r.st.PipelineStates(context.Background())
		if err == nil {
			n := 0
			for _, s := range states {
				n += s.Running
			}
			if int64(n) > most.Load() {
				most.Store(int64(n))
			}
		}
		select {
		case <-stop:
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// TestMaxJobsBoundsTheJobsOfANode: a runner with MaxJobs 2 runs at most two jobs of any
// pipelines at once; a job beyond them waits, saying why, and starts when a job of another
// pipeline ends.
func TestMaxJobsBoundsTheJobsOfANode(t *testing.T) {
	r, dir := startRunnerWith(t, heldPipelines, func(st store.Store) store.Store { return st },
		func(c *Config) { c.MaxJobs = 2 })
	var (
		most atomic.Int64
		wg   sync.WaitGroup
	)
	stop := make(chan struct{})
	wg.Add(1)
	go watchRunning(r, stop, &most, &wg)

	a1, a2 := schedule(t, r, "a"), schedule(t, r, "a")
	b1 := schedule(t, r, "b")
	running := func(j *pipeline.Job) bool { return j.Status == pipeline.JobRunning }
	waitJob(t, r, a1, "running", running)
	waitJob(t, r, a2, "running", running)
	if j, err := r.Job(t.Context(), b1); err != nil || j.Status != pipeline.JobQueued {
		t.Fatalf("job b1 = %+v, %v; want queued while a1 and a2 run", j, err)
	}
	info, err := r.WaitInfo(t.Context(), b1)
	if err != nil {
		t.Fatal(err)
	}
	if want := "this node runs its --max-jobs (2/2)"; info == nil || info.Reason != want {
		t.Errorf("WaitInfo(b1) = %+v, want reason %q", info, want)
	}

	// A job of pipeline a ends: the waiting job of pipeline b takes its slot.
	release(t, dir, a1)
	waitJob(t, r, b1, "running", running)

	// Many jobs at once, of both pipelines, through admissions and claims racing each other.
	var ids []string
	var mu sync.Mutex
	var sched sync.WaitGroup
	for i := range 8 {
		sched.Add(1)
		go func() {
			defer sched.Done()
			id := schedule(t, r, []string{"a", "b"}[i%2])
			mu.Lock()
			ids = append(ids, id)
			mu.Unlock()
		}()
	}
	sched.Wait()
	// Release each job once it runs, in whatever order they start, until all have ended.
	released := map[string]bool{a1: true}
	waitFor(t, "every job to end", func() bool {
		ended := 0
		for _, id := range append([]string{a2, b1}, ids...) {
			j, err := r.Job(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if j.Status == pipeline.JobRunning && !released[id] {
				release(t, dir, id)
				released[id] = true
			}
			if j.End != nil {
				ended++
			}
		}
		return ended == len(ids)+2
	})
	for _, id := range append([]string{a1, a2, b1}, ids...) {
		if j := waitDone(t, r, id); j.Status != pipeline.JobSucceeded {
			t.Errorf("job %s ended %s (%s), want succeeded", id, j.Status, j.LastError)
		}
	}
	close(stop)
	wg.Wait()
	if got := most.Load(); got != 2 {
		t.Errorf("at most %d jobs ran at once, want 2 (MaxJobs)", got)
	}
}

// TestClusterFullReason: a job waits for room only when every alive node runs its --max-jobs;
// a node without a limit, with room, or not alive does not count as full.
func TestClusterFullReason(t *testing.T) {
	t.Parallel()
	node := func(id string, state store.NodeState, running, maxJobs int) store.Node {
		return store.Node{NodeInfo: store.NodeInfo{ID: id, MaxJobs: maxJobs}, State: state, Running: running}
	}
	tests := []struct {
		name  string
		nodes []store.Node
		want  string
	}{
		{"every alive node full", []store.Node{node("a", store.NodeAlive, 2, 2), node("b", store.NodeAlive, 1, 1),
			node("c", store.NodeStopped, 0, 0), node("d", store.NodeLost, 0, 3)}, "every node runs its --max-jobs (a 2/2, b 1/1)"},
		{"a node with room", []store.Node{node("a", store.NodeAlive, 2, 2), node("b", store.NodeAlive, 0, 1)}, ""},
		{"a node without a limit", []store.Node{node("a", store.NodeAlive, 2, 2), node("b", store.NodeAlive, 5, 0)}, ""},
		{"no alive node", []store.Node{node("a", store.NodeStopped, 0, 1)}, ""},
	}
	for _, tt := range tests {
		if got := clusterFullReason(tt.nodes); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// claimBlock is a store whose claims of one pipeline wait until release is closed, holding the
// room they reserved meanwhile.
type claimBlock struct {
	store.Store
	pipeline string
	claiming chan struct{}
	once     sync.Once
	release  chan struct{}
}

func (s *claimBlock) Claim(ctx context.Context, p store.ClaimParams) (store.ClaimResult, error) {
	if p.Pipeline == s.pipeline {
		s.once.Do(func() { close(s.claiming) })
		<-s.release
	}
	return s.Store.Claim(ctx, p)
}

// TestMaxJobsHeldJobStartsWhenReservedRoomComesBack: a job admitted while a claim holds the
// node's only slot waits; when that claim starts nothing and gives the slot back, the job
// starts (nothing else would start it: no job runs whose end would).
func TestMaxJobsHeldJobStartsWhenReservedRoomComesBack(t *testing.T) {
	t.Parallel()
	block := &claimBlock{pipeline: "a", claiming: make(chan struct{}), release: make(chan struct{})}
	r, dir := startRunnerWith(t, heldPipelines, func(st store.Store) store.Store { block.Store = st; return block },
		func(c *Config) { c.MaxJobs = 1 })
	go r.claim("a") // nothing waits in a: the claim will start nothing
	<-block.claiming
	b1 := schedule(t, r, "b")
	if j, err := r.Job(t.Context(), b1); err != nil || j.Status != pipeline.JobQueued {
		t.Fatalf("job b1 = %+v, %v; want queued while the claim holds the slot", j, err)
	}
	close(block.release)
	waitJob(t, r, b1, "running", func(j *pipeline.Job) bool { return j.Status == pipeline.JobRunning })
	release(t, dir, b1)
	waitDone(t, r, b1)
}

// TestMaxJobsPipelinesTakeTurns: on a full node, the freed slot goes to the pipelines with
// waiting jobs in turn, not to the pipeline of the job that ended: a busy pipeline does not
// keep the node from the others.
func TestMaxJobsPipelinesTakeTurns(t *testing.T) {
	t.Parallel()
	r, dir := startRunnerWith(t, heldPipelines, func(st store.Store) store.Store { return st },
		func(c *Config) { c.MaxJobs = 1 })
	a1 := schedule(t, r, "a")
	waitJob(t, r, a1, "running", func(j *pipeline.Job) bool { return j.Status == pipeline.JobRunning })
	a2, a3 := schedule(t, r, "a"), schedule(t, r, "a")
	b1, b2 := schedule(t, r, "b"), schedule(t, r, "b")
	// Each job, once it runs alone, is released; the next to run must alternate.
	prev := a1
	for _, next := range []string{b1, a2, b2, a3} {
		release(t, dir, prev)
		j := waitJob(t, r, next, "running", func(j *pipeline.Job) bool { return j.Status != pipeline.JobQueued })
		if j.Status != pipeline.JobRunning {
			t.Fatalf("job %s of %s: %s, want running", next, j.Pipeline, j.Status)
		}
		prev = next
	}
	release(t, dir, prev)
	waitDone(t, r, prev)
}

// TestInTurn: the pipelines' turn begins after the one whose job started last.
func TestInTurn(t *testing.T) {
	t.Parallel()
	names := []string{"a", "b", "c"}
	for last, want := range map[string][]string{
		"": {"a", "b", "c"}, "a": {"b", "c", "a"}, "b": {"c", "a", "b"}, "c": {"a", "b", "c"}, "bb": {"c", "a", "b"},
	} {
		if got := inTurn(names, last); !slices.Equal(got, want) {
			t.Errorf("inTurn(%v, %q) = %v, want %v", names, last, got, want)
		}
	}
}
