package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
)

// The three-node suite: three real prunner processes on one PostgreSQL database, each scenario
// in a test of its own with a database of its own, so that they run in parallel and fail
// separately.

// cluster3Pipelines are the pipelines of every three-node test. shared is a directory all
// nodes (and the test) see.
//   - once creates a file of a unique name that starts with its job's number in shared/ran:
//     the test counts how often each ran. (Not lines appended to one file: the shell's echo
//     writes its argument and the newline apart, so concurrent appends interleave.)
//   - capped sleeps half a second, at most 4 at once in the cluster.
//   - hold runs one at a time; its jobs sleep secs seconds once started.
//   - long is a pipeline of independent sleepers (concurrency 10): a job sleeps secs seconds.
//   - ticker prints five numbered lines, 0.3 s apart.
//   - quick does nothing; keyed sleeps a little (idempotency keys).
//   - latest keeps one waiting job at most and replaces it by the newest request.
func cluster3Pipelines(shared string) string {
	return fmt.Sprintf(`
pipelines:
  once:
    concurrency: 8
    tasks:
      run: {script: ["mktemp %s/{{ .n }}.XXXXXX"]}
  capped:
    concurrency: 4
    tasks:
      nap: {script: ["sleep 0.5"]}
  hold:
    concurrency: 1
    tasks:
      wait: {script: ["echo started", "sleep {{ .secs }}"]}
  long:
    concurrency: 10
    tasks:
      wait: {script: ["echo started", "sleep {{ .secs }}"]}
  ticker:
    tasks:
      tick: {script: ["for i in 1 2 3 4 5; do echo tick $i; sleep 0.3; done"]}
  quick:
    concurrency: 4
    tasks:
      t: {script: ["true"]}
  keyed:
    concurrency: 4
    tasks:
      t: {script: ["sleep 0.2"]}
  latest:
    concurrency: 1
    queue_strategy: replace
    queue_limit: 1
    tasks:
      t: {script: ["sleep 0.2"]}
`, filepath.Join(shared, "ran"))
}

// cluster3IDs are the node IDs of a cluster3, in the order of its nodes.
var cluster3IDs = []string{"a", "b", "c"}

// cluster3 is three nodes a, b and c of one cluster on a database of their own.
type cluster3 struct {
	nodes  []*server
	shared string
	url    string // the database
}

// Leases of the nodes of a cluster3. The failover tests need a short one, so that a node is
// lost soon, the others a long one. On a loaded machine (-race, every test's nodes and one
// PostgreSQL at once) renewals were seen to miss a whole 2 s lease: a node that loses its lease
// refuses schedules (503) and gives up its jobs, which is right but not what the tests are
// about; 5 s leaves room for such stalls.
const (
	shortLease = 5 * time.Second
	longLease  = 30 * time.Second
)

// newCluster3 starts three nodes with the lease on a new database.
func newCluster3(t *testing.T, lease time.Duration) *cluster3 {
	t.Helper()
	url := pgtest.NewDatabase(t)
	shared := t.TempDir()
	if err := os.Mkdir(filepath.Join(shared, "ran"), 0o755); err != nil {
		t.Fatal(err)
	}
	yml := cluster3Pipelines(shared)
	c := &cluster3{shared: shared, url: url}
	for _, id := range cluster3IDs {
		c.nodes = append(c.nodes, newServer(t, yml, "--database-url", withSessionName(t, url, id),
			"--node-id", id, "--lease", lease.String(), "--cluster-poll", "200ms").start())
	}
	return c
}

// withSessionName adds to a database URL the application_name of the node's sessions, which
// names them in pg_stat_activity (for a look at them in pg_stat_activity while debugging).
func withSessionName(t *testing.T, raw, node string) string {
	t.Helper()
	u, err := neturl.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", sessionName(node))
	u.RawQuery = q.Encode()
	return u.String()
}

func sessionName(node string) string { return "prunner-e2e-node-" + node }

// pause stops the node (SIGSTOP) at whatever moment it is: also inside a database transaction,
// whose row locks (its node row, a pipeline's row) the database releases after the sessions'
// idle_in_transaction_session_timeout (5 s), so that the other nodes' reapers and admissions go
// on. (A node paused inside a transaction held its locks for good before that setting.)
func (c *cluster3) pause(t *testing.T, node string) {
	t.Helper()
	c.node(t, node).signal(syscall.SIGSTOP)
}

// node returns the node with the ID.
func (c *cluster3) node(t *testing.T, id string) *server {
	t.Helper()
	for i, s := range c.nodes {
		if cluster3IDs[i] == id {
			return s
		}
	}
	t.Fatalf("no node %q in the cluster", id)
	return nil
}

// others returns the nodes other than the one with the ID.
func (c *cluster3) others(id string) []*server {
	var rest []*server
	for i, s := range c.nodes {
		if cluster3IDs[i] != id {
			rest = append(rest, s)
		}
	}
	return rest
}

// taskGroups counts the process groups of the tasks that the cluster's nodes run right now
// (each task runs in a process group of its own; the servers run in the test's group).
func (c *cluster3) taskGroups() func() int {
	markers := map[string]bool{}
	servers := map[int]bool{}
	for _, s := range c.nodes {
		markers[s.marker] = true
		servers[s.cmd.Process.Pid] = true
	}
	own := syscall.Getpgrp()
	return func() int {
		groups := map[int]bool{}
		for _, p := range markedProcesses(func(m string) bool { return markers[m] }) {
			if !servers[p.pid] && p.pgid != own {
				groups[p.pgid] = true
			}
		}
		return len(groups)
	}
}

// sampler records the largest value a measure took, sampled every 10 ms (a scan of /proc costs
// a few ms of CPU) until stop.
type sampler struct {
	max  atomic.Int64
	stop chan struct{}
	once sync.Once
	done chan struct{}
}

// sampleMax starts sampling; a test that ends early stops it at its cleanup, before the
// servers it measures are stopped.
func sampleMax(t *testing.T, measure func() int) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { s.finish() })
	go func() {
		defer close(s.done)
		for {
			if n := int64(measure()); n > s.max.Load() {
				s.max.Store(n)
			}
			select {
			case <-s.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return s
}

// finish stops sampling and returns the largest value seen.
func (s *sampler) finish() int {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return int(s.max.Load())
}

// jobOwner returns the node that runs or ran the job, as s sees it ("" before it started).
func (s *server) jobOwner(id string) string {
	s.t.Helper()
	_, body := s.do("GET", "/job/detail?id="+id, nil)
	var j struct {
		Node string `json:"node"`
	}
	if err := json.Unmarshal(body, &j); err != nil {
		s.t.Fatalf("job detail %s: %v", body, err)
	}
	return j.Node
}

// scheduleAll schedules n jobs of pipeline from 8 goroutines, job i through node i%3, and
// returns their IDs by job number.
func (c *cluster3) scheduleAll(t *testing.T, pipeline string, n int, vars func(i int) map[string]any) []string {
	t.Helper()
	ids := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || t.Failed() {
					return
				}
				id, status, body := c.nodes[i%3].trySchedule(pipeline, vars(i), "")
				if status != http.StatusAccepted {
					t.Errorf("schedule job %d of %s through node %d: %d %s", i, pipeline, i%3, status, body)
					return
				}
				ids[i] = id
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return ids
}

// TestCluster3RunsEveryJobOnce: 1,000 jobs scheduled concurrently through three nodes each run
// exactly once (their task leaves a file named after the job's number) and all succeed.
func TestCluster3RunsEveryJobOnce(t *testing.T) {
	t.Parallel()
	c := newCluster3(t, longLease)
	const n = 1000
	ids := c.scheduleAll(t, "once", n, func(i int) map[string]any { return map[string]any{"n": fmt.Sprint(i)} })
	for i, id := range ids {
		j := c.nodes[(i+1)%3].waitJob(id, 60*time.Second, "finished", jobJSON.finished)
		if j.Status != "succeeded" {
			t.Errorf("job %d ended %s: %s", i, j.Status, j.LastError)
		}
	}
	files, err := os.ReadDir(filepath.Join(c.shared, "ran"))
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]int{}
	for _, f := range files {
		n, _, _ := strings.Cut(f.Name(), ".")
		runs[n]++
	}
	for i := range n {
		if k := runs[fmt.Sprint(i)]; k != 1 {
			t.Errorf("job %d's task ran %d times, want exactly once", i, k)
		}
	}
	if len(runs) != n {
		t.Errorf("%d distinct job numbers in the file, want %d", len(runs), n)
	}
}

// TestCluster3HoldsConcurrency: the task processes of a pipeline with concurrency 4, counted
// on the machine across the three nodes while 40 of its jobs run, never exceed 4 and reach it.
func TestCluster3HoldsConcurrency(t *testing.T) {
	t.Parallel()
	c := newCluster3(t, longLease)
	running := sampleMax(t, c.taskGroups())
	ids := c.scheduleAll(t, "capped", 40, func(int) map[string]any { return nil })
	for i, id := range ids {
		if j := c.nodes[(i+1)%3].waitJob(id, 60*time.Second, "finished", jobJSON.finished); j.Status != "succeeded" {
			t.Errorf("job %d ended %s: %s", i, j.Status, j.LastError)
		}
	}
	if most := running.finish(); most != 4 {
		t.Errorf("at most %d tasks of capped ran at once in the cluster, want exactly its concurrency 4", most)
	}
}

// TestCluster3KilledNode: when a node running jobs is killed (kill -9), another node ends its
// jobs as failed ("node <id> lost") once the lease expired, the job waiting behind one of them
// starts on a surviving node, and the two others go on serving.
func TestCluster3KilledNode(t *testing.T) {
	t.Parallel()
	c := newCluster3(t, shortLease)
	a := c.nodes[0]
	// Both start on a, the node they are scheduled through (their slots are free).
	held := a.schedule("hold", map[string]any{"secs": "60"})
	other := a.schedule("long", map[string]any{"secs": "60"})
	waiting := c.nodes[1].schedule("hold", map[string]any{"secs": "0.2"})
	alive := c.others("a")
	for _, id := range []string{held, other} {
		// Stored in the database before the kill: read through another node.
		waitLog(t, alive[0], id, "wait", "started")
		if node := alive[0].jobOwner(id); node != "a" {
			t.Fatalf("job %s runs on node %q, want a", id, node)
		}
	}

	killed := time.Now()
	a.kill9()
	for _, id := range []string{held, other} {
		j := alive[0].waitJob(id, 30*time.Second, "finished", jobJSON.finished)
		if j.Status != "failed" || !strings.Contains(j.LastError, "node a lost") {
			t.Errorf("the dead node's job %s ended %s: %q, want failed, node a lost", id, j.Status, j.LastError)
		}
	}
	if took := time.Since(killed); took > 4*shortLease {
		t.Errorf("the dead node's jobs ended %v after the kill, want within the %v lease and a margin", took, shortLease)
	}
	if j := alive[1].waitFinished(waiting); j.Status != "succeeded" {
		t.Errorf("the waiting job ended %s: %s", j.Status, j.LastError)
	}
	if node := alive[0].jobOwner(waiting); node != "b" && node != "c" {
		t.Errorf("the waiting job ran on node %q, want a surviving node", node)
	}
	for _, s := range alive {
		if id := s.schedule("quick", nil); s.waitFinished(id).Status != "succeeded" {
			t.Errorf("a surviving node does not run jobs after node a died")
		}
	}
}

// TestCluster3PausedNode: a node paused (SIGSTOP) past its lease loses its jobs to another node
// ("node <id> lost"). Once it runs again (SIGCONT) it kills the processes of those jobs, and its
// late writes are refused: a task that ended while it was paused does not turn its job into
// anything but the one final state the other node recorded.
func TestCluster3PausedNode(t *testing.T) {
	t.Parallel()
	c := newCluster3(t, shortLease)
	a := c.nodes[0]
	// Both jobs start at once on a, the node they are scheduled through (slots are free).
	short := a.schedule("long", map[string]any{"secs": "6"})
	long := a.schedule("long", map[string]any{"secs": "60"})
	for _, id := range []string{short, long} {
		waitLog(t, a, id, "wait", "started")
		if node := a.jobOwner(id); node != "a" {
			t.Fatalf("job %s runs on node %q, want a (scheduled through it with free slots)", id, node)
		}
	}
	// A failing test must not leave a stopped node to the cleanup (it stops nodes by signals).
	t.Cleanup(func() { _ = a.cmd.Process.Signal(syscall.SIGCONT) })
	c.pause(t, "a")

	b := c.nodes[1]
	lost := map[string]jobJSON{}
	for _, id := range []string{short, long} {
		j := b.waitJob(id, 30*time.Second, "finished", jobJSON.finished)
		if j.Status != "failed" || !strings.Contains(j.LastError, "node a lost") {
			t.Errorf("job %s of the paused node ended %s: %q, want failed, node a lost", id, j.Status, j.LastError)
		}
		lost[id] = j
	}
	// The short task's process ends while its node is still paused (the node runs the script's
	// shell itself, so it learns of the end only after SIGCONT); the long one's goes on.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		procs := a.taskProcesses()
		sleeps := map[string]int{}
		for _, p := range procs {
			sleeps[p.cmdline]++
		}
		if sleeps["sleep 6"] == 0 && sleeps["sleep 60"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the paused node's processes are not just the long task's sleep after 30s: %v", procs)
		}
	}

	a.signal(syscall.SIGCONT)
	eventually(t, 20*time.Second, "the lost jobs' processes killed by the resumed node", func() bool {
		return len(a.taskProcesses()) == 0
	})
	eventually(t, 20*time.Second, "node a alive again", func() bool { return nodeState(b, "a") == "alive" })
	// The resumed node had its chance to write about the jobs; for a few seconds, through every
	// node, each job keeps the one final state b recorded.
	for until := time.Now().Add(3 * time.Second); time.Now().Before(until); time.Sleep(100 * time.Millisecond) {
		for _, s := range c.nodes {
			for id, want := range lost {
				if j := s.job(id); j.Status != want.Status || j.LastError != want.LastError || *j.End != *want.End {
					t.Fatalf("job %s through %s: %s %q end %s, want the final state %s %q end %s",
						id, s.url, j.Status, j.LastError, *j.End, want.Status, want.LastError, *want.End)
				}
			}
		}
	}
	if id := a.schedule("quick", nil); a.waitFinished(id).Status != "succeeded" {
		t.Errorf("the resumed node does not run jobs")
	}
}

// nodeState returns the state of node id as s lists it in GET /nodes ("" when not listed).
func nodeState(s *server, id string) string {
	s.t.Helper()
	_, body := s.do("GET", "/nodes", nil)
	var list struct {
		Nodes []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		s.t.Fatalf("GET /nodes: %v: %s", err, body)
	}
	for _, n := range list.Nodes {
		if n.ID == id {
			return n.State
		}
	}
	return ""
}

// TestCluster3CancelAndLiveLogThroughOtherNode: a task's live log stream is followed through a
// node that does not run it, and a job is canceled through another node than its owner.
func TestCluster3CancelAndLiveLogThroughOtherNode(t *testing.T) {
	t.Parallel()
	c := newCluster3(t, longLease)
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]

	ticker := a.schedule("ticker", nil)
	a.waitJob(ticker, 15*time.Second, "started on a node", func(j jobJSON) bool { return j.Start != nil })
	owner := a.jobOwner(ticker)
	reader := c.others(owner)[1]
	live := reader.openLive(ticker, "tick", "")
	var got strings.Builder
	for {
		ev, err := live.next()
		if err != nil {
			t.Fatalf("live stream through a node other than %s: %v (so far %q)", owner, err, got.String())
		}
		if ev.event == "end" {
			break
		}
		if ev.event == "stdout" {
			got.WriteString(ev.text(t))
		}
	}
	if want := numberedLines("tick", 5); got.String() != want {
		t.Errorf("live stream through a node other than %s: %q, want %q", owner, got.String(), want)
	}

	long := b.schedule("long", map[string]any{"secs": "60"})
	waitLog(t, b, long, "wait", "started")
	owner = b.jobOwner(long)
	canceler := c.others(owner)[0]
	if status, body := canceler.do("POST", "/job/cancel?id="+long, nil); status != http.StatusOK {
		t.Fatalf("cancel through a node other than %s: %d %s", owner, status, body)
	}
	if j := cc.waitFinished(long); j.Status != "canceled" {
		t.Errorf("the job canceled through another node ended %s: %s", j.Status, j.LastError)
	}
	ownerNode := c.node(t, owner)
	eventually(t, 15*time.Second, "the canceled job's processes gone", func() bool {
		return len(ownerNode.taskProcesses()) == 0
	})
}

// TestCluster3IdempotencyKeys: one idempotency key sent many times to all three nodes at once
// makes one job.
func TestCluster3IdempotencyKeys(t *testing.T) {
	t.Parallel()
	c := newCluster3(t, longLease)
	const keys, perNode = 10, 3
	ids := make([][]string, keys)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for k := range keys {
		key := fmt.Sprintf("deploy-%d", k)
		for _, s := range c.nodes {
			for range perNode {
				wg.Go(func() {
					status, id := s.scheduleWithKey("keyed", key)
					if status != http.StatusAccepted || id == "" {
						t.Errorf("key %s through %s: %d %q", key, s.url, status, id)
						return
					}
					mu.Lock()
					ids[k] = append(ids[k], id)
					mu.Unlock()
				})
			}
		}
	}
	wg.Wait()
	jobs := map[string]bool{}
	for k, got := range ids {
		for _, id := range got {
			if id != got[0] {
				t.Errorf("key deploy-%d made several jobs: %v", k, got)
				break
			}
		}
		if len(got) > 0 {
			jobs[got[0]] = true
		}
	}
	if len(jobs) != keys {
		t.Errorf("%d jobs for %d keys, want one each", len(jobs), keys)
	}
	for id := range jobs {
		if j := c.nodes[2].waitFinished(id); j.Status != "succeeded" {
			t.Errorf("job %s ended %s: %s", id, j.Status, j.LastError)
		}
	}
	if listed := c.nodes[1].page("/jobs?pipeline=keyed&limit=100").Jobs; len(listed) != keys {
		t.Errorf("%d jobs of keyed listed, want %d", len(listed), keys)
	}
}

// TestCluster3ReplaceStorm: a queue_strategy replace pipeline (concurrency 1, one waiting job)
// hammered through all three nodes at once never has more than one running and one waiting
// job; every job either ran and succeeded or was replaced on the wait list (status replaced,
// replacedBy set, never started), and the last request's job runs.
func TestCluster3ReplaceStorm(t *testing.T) {
	t.Parallel()
	c := newCluster3(t, longLease)
	running := sampleMax(t, c.taskGroups())
	var i atomic.Int64
	stateful := func(status string) func() int {
		return func() int { return len(c.nodes[i.Add(1)%3].jobsWithStatus("latest", status)) }
	}
	listedRunning := sampleMax(t, stateful("running"))
	listedQueued := sampleMax(t, stateful("queued"))

	ids := c.scheduleAll(t, "latest", 60, func(int) map[string]any { return nil })
	last := c.nodes[2].schedule("latest", nil)
	ids = append(ids, last)
	all := map[string]bool{}
	for _, id := range ids {
		all[id] = true
	}
	ran, replaced := 0, 0
	for k, id := range ids {
		j := c.nodes[k%3].waitJob(id, 60*time.Second, "finished", jobJSON.finished)
		switch {
		case j.Status == "succeeded":
			ran++
		case j.Status == "replaced" && j.Canceled && all[j.ReplacedBy] && j.ReplacedBy != id && j.Start == nil:
			replaced++
		default:
			t.Errorf("job %s ended %s (canceled %t, replacedBy %q, start %v): want succeeded, or replaced by a later job before it started",
				id, j.Status, j.Canceled, j.ReplacedBy, j.Start)
		}
	}
	if j := c.nodes[0].job(last); j.Status != "succeeded" {
		t.Errorf("the last request's job ended %s, want it run: %+v", j.Status, j)
	}
	if replaced == 0 {
		t.Errorf("no job was replaced (%d ran): the storm tested nothing", ran)
	}
	if n := running.finish(); n > 1 {
		t.Errorf("%d tasks of latest ran at once, want at most its concurrency 1", n)
	}
	if n := listedRunning.finish(); n > 1 {
		t.Errorf("%d jobs of latest listed running at once, want at most 1", n)
	}
	if n := listedQueued.finish(); n > 1 {
		t.Errorf("%d jobs of latest listed waiting at once, want at most its queue_limit 1", n)
	}
}
