package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
)

// clusterPipelines: work creates a file named after the job's number in a directory all nodes
// share, so that the test counts how often each job's task ran; long runs until it is canceled.
func clusterPipelines(shared string) string {
	return fmt.Sprintf(`
pipelines:
  work:
    concurrency: 2
    tasks:
      run: {script: ["mktemp %s/{{ .n }}.XXXXXX", "sleep 0.05"]}
  long:
    tasks:
      wait: {script: ["echo started", "sleep 60"]}
  ticker:
    tasks:
      tick: {script: ["for i in 1 2 3 4 5; do echo tick $i; sleep 0.3; done"]}
`, shared)
}

// newNode starts a prunner node of a cluster on the database url.
func newNode(t *testing.T, yml, url, id string) *server {
	t.Helper()
	// A 5 s lease: short enough for the failover to be quick, long enough that renewals do not
	// miss it on a loaded 2-core CI machine under -race (2 s leases did).
	return newServer(t, yml, "--database-url", url, "--node-id", id, "--lease", "5s", "--cluster-poll", "200ms").start()
}

// TestClusterOfTwoNodes: two nodes on one PostgreSQL database are one cluster: jobs scheduled
// through both run exactly once each within the pipeline's concurrency cluster-wide; a task's
// output is read through the node that does not run it; a cancel through that node ends the
// job; and when a node dies (kill -9) with a running job, the other node ends that job as
// failed ("node … lost") once the lease expired, and the task's output outlives the node.
func TestClusterOfTwoNodes(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	shared := t.TempDir()
	yml := clusterPipelines(shared)
	a := newNode(t, yml, url, "a")
	b := newNode(t, yml, url, "b")

	// Concurrency 2 across the cluster, sampled from both nodes while 40 jobs run.
	var maxRunning atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			node := []*server{a, b}[i%2]
			if n := int64(len(node.jobsWithStatus("work", "running"))); n > maxRunning.Load() {
				maxRunning.Store(n)
			}
		}
	}()
	var ids []string
	for i := range 40 {
		node := []*server{a, b}[i%2]
		ids = append(ids, node.schedule("work", map[string]any{"n": fmt.Sprint(i)}))
	}
	for i, id := range ids {
		if j := []*server{b, a}[i%2].waitFinished(id); j.Status != "succeeded" {
			t.Errorf("job %d ended %s: %s", i, j.Status, j.LastError)
		}
	}
	close(stop)
	<-sampled
	if n := maxRunning.Load(); n > 2 {
		t.Errorf("%d jobs of work ran at once in the cluster, want at most its concurrency 2", n)
	}
	// One file per run (appends to one file could interleave: echo writes the number and the
	// newline apart).
	entries, err := os.ReadDir(shared)
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]int{}
	for _, e := range entries {
		n, _, _ := strings.Cut(e.Name(), ".")
		runs[n]++
	}
	for i := range 40 {
		if runs[fmt.Sprint(i)] != 1 {
			t.Errorf("job %d's task ran %d times, want exactly once", i, runs[fmt.Sprint(i)])
		}
	}

	// Every node lists both nodes, and a job names the node that ran it.
	status, body := b.do("GET", "/nodes", nil)
	var nodes struct {
		Nodes []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"nodes"`
	}
	if status != 200 || json.Unmarshal(body, &nodes) != nil || len(nodes.Nodes) != 2 {
		t.Errorf("GET /nodes through b: %d %s, want the two nodes", status, body)
	}
	for _, n := range nodes.Nodes {
		if n.State != "alive" {
			t.Errorf("node %s is %s, want alive", n.ID, n.State)
		}
	}
	// The operator's view in the terminal: prunner nodes through a lists both, alive.
	r := a.cli("nodes")
	r.expect(t, 0, []string{"ID", "STATE", "JOBS", "HEARTBEAT", "LEASE", "DEFINITIONS"}, nil)
	for _, id := range []string{"a", "b"} {
		if !regexp.MustCompile(`(?m)^` + id + ` +alive `).MatchString(r.stdout) {
			t.Errorf("prunner nodes does not list node %s alive:\n%s", id, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "Warning") {
		t.Errorf("prunner nodes warns although both nodes load the same files:\n%s", r.stdout)
	}

	_, body = a.do("GET", "/job/detail?id="+ids[0], nil)
	var detail struct {
		Node string `json:"node"`
	}
	if json.Unmarshal(body, &detail) != nil || (detail.Node != "a" && detail.Node != "b") {
		t.Errorf("job detail names node %q, want a or b: %s", detail.Node, body)
	}

	// The live stream through b of a task that runs on a: every line, in order, then the end.
	ticker := a.schedule("ticker", nil)
	live := b.openLive(ticker, "tick", "")
	var got strings.Builder
	for {
		ev, err := live.next()
		if err != nil {
			t.Fatalf("live stream through b: %v (so far %q)", err, got.String())
		}
		if ev.event == "end" {
			break
		}
		if ev.event == "stdout" {
			got.WriteString(ev.text(t))
		}
	}
	if want := "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n"; got.String() != want {
		t.Errorf("live stream through b: %q, want %q", got.String(), want)
	}

	// A cancel through b of a job that a admitted and runs.
	long := a.schedule("long", nil)
	waitLog(t, a, long, "wait", "started")
	// Its output, written on a, is read through b too.
	waitLog(t, b, long, "wait", "started")
	if status, body := b.do("POST", "/job/cancel?id="+long, nil); status != 200 {
		t.Fatalf("cancel through b: %d %s", status, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	if j := b.waitFinished(long); j.Status != "canceled" || time.Now().After(deadline) {
		t.Errorf("the job canceled through b ended %s", j.Status)
	}

	// a dies with a running job: b ends it once a's lease has expired.
	orphan := a.schedule("long", nil)
	// Stored in the database once b reads it (a crash loses at most the last 200 ms of output).
	waitLog(t, b, orphan, "wait", "started")
	killed := time.Now()
	a.kill9()
	j := b.waitFinished(orphan)
	if j.Status != "failed" || !strings.Contains(j.LastError, "node a lost") {
		t.Errorf("the dead node's job ended %s: %q, want failed, node a lost", j.Status, j.LastError)
	}
	if took := time.Since(killed); took > 20*time.Second {
		t.Errorf("the dead node's job ended %v after the kill, want within the 5s lease and a margin", took)
	}
	if id := b.schedule("work", map[string]any{"n": "after"}); b.waitFinished(id).Status != "succeeded" {
		t.Errorf("b does not run jobs after a died")
	}
	// What the dead node's task printed outlives it.
	if out, _ := b.logs(orphan, "wait"); out != "started\n" {
		t.Errorf("the dead node's task output through b: %q, want what it printed", out)
	}

	// a comes back: it kills the task process its lost run left (found by its node marker,
	// since b ended the job), and runs jobs again.
	if len(a.taskProcesses()) == 0 {
		t.Fatalf("the dead node's task process is gone before it restarted; the test checks nothing")
	}
	a.restart()
	eventually(t, 10*time.Second, "the lost run's task process killed", func() bool { return len(a.taskProcesses()) == 0 })
	if id := a.schedule("work", map[string]any{"n": "back"}); a.waitFinished(id).Status != "succeeded" {
		t.Errorf("a does not run jobs after its restart")
	}
}

// jobsWithStatus lists the IDs of the jobs of a pipeline with a status, as the node sees them.
func (s *server) jobsWithStatus(pipeline, status string) []string {
	_, body := s.do("GET", "/pipelines/jobs?pipeline="+pipeline+"&status="+status+"&limit=100", nil)
	var list struct {
		Jobs []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"jobs"`
	}
	if json.Unmarshal(body, &list) != nil {
		return nil
	}
	var ids []string
	for _, j := range list.Jobs {
		if j.Status == status {
			ids = append(ids, j.ID)
		}
	}
	return ids
}

// taskProcesses lists the live processes that the node's runs started (they carry its marker),
// other than the node's current server process.
func (s *server) taskProcesses() []markedProcess {
	var server int
	if s.cmd != nil && s.cmd.Process != nil {
		server = s.cmd.Process.Pid
	}
	var tasks []markedProcess
	for _, p := range markedProcesses(func(m string) bool { return m == s.marker }) {
		if p.pid != server {
			tasks = append(tasks, p)
		}
	}
	return tasks
}
