package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
)

// heldPipelines: a job of hold runs until the test creates the file release-<job ID> in shared.
func heldPipelines(shared, extra string) string {
	return fmt.Sprintf(`
pipelines:
  hold:
    concurrency: 5
    tasks:
      wait: {script: ["while [ ! -e %s/release-{{ .__jobID }} ]; do sleep 0.05; done"]}
%s`, shared, extra)
}

// newSteadyNode starts a node of a cluster whose lease outlasts the pauses of a busy machine:
// the tests that use it never wait for a lease to run out.
func newSteadyNode(t *testing.T, yml, url, id string, extra ...string) *server {
	t.Helper()
	args := append([]string{"--database-url", url, "--node-id", id, "--lease", "20s", "--cluster-poll", "200ms"}, extra...)
	return newServer(t, yml, args...).start()
}

// nodeJSON is a node as GET /nodes lists it.
type nodeJSON struct {
	ID              string `json:"id"`
	State           string `json:"state"`
	DefinitionsHash string `json:"definitionsHash"`
	RunningJobs     int    `json:"runningJobs"`
	MaxJobs         int    `json:"maxJobs"`
}

// nodes lists the cluster's nodes through s, by ID.
func (s *server) nodes() map[string]nodeJSON {
	s.t.Helper()
	status, body := s.do("GET", "/nodes", nil)
	var list struct {
		Nodes []nodeJSON `json:"nodes"`
	}
	if status != 200 || json.Unmarshal(body, &list) != nil {
		s.t.Fatalf("GET /nodes: %d %s", status, body)
	}
	byID := map[string]nodeJSON{}
	for _, n := range list.Nodes {
		byID[n.ID] = n
	}
	return byID
}

// jobNode returns the node that runs or ran a job, and the reason it waits ("" when it does
// not).
func (s *server) jobNode(id string) (node, waitReason string) {
	s.t.Helper()
	status, body := s.do("GET", "/job/detail?id="+id, nil)
	var j struct {
		Node string `json:"node"`
		Wait *struct {
			Reason string `json:"reason"`
		} `json:"wait"`
	}
	if status != 200 || json.Unmarshal(body, &j) != nil {
		s.t.Fatalf("job detail %s: %d %s", id, status, body)
	}
	if j.Wait != nil {
		waitReason = j.Wait.Reason
	}
	return j.Node, waitReason
}

// nodesPageWarns reports whether the dashboard's Nodes page through s warns that the nodes
// run different definitions.
func (s *server) nodesPageWarns() bool {
	s.t.Helper()
	// A dashboard page, not the API: not checked against the OpenAPI document (s.do).
	req, err := http.NewRequest("GET", s.url+"/ui/nodes", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || !strings.Contains(string(body), `data-testid="nodes"`) {
		s.t.Fatalf("GET /ui/nodes: %d %v %s", resp.StatusCode, err, body)
	}
	return strings.Contains(string(body), `data-testid="nodes-mismatch"`)
}

// waitRunningOn waits until job id runs and returns the node it runs on.
func (s *server) waitRunningOn(id string) string {
	s.t.Helper()
	s.waitJob(id, 20*time.Second, "running", func(j jobJSON) bool { return j.Status == "running" })
	node, _ := s.jobNode(id)
	return node
}

// release lets held jobs end.
func release(t *testing.T, shared string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		writeFile(t, filepath.Join(shared, "release-"+id), "")
	}
}

// TestClusterNodesMaxJobsAndLifecycle: a node at its --max-jobs leaves a job it admits to a node
// with room; GET /nodes shows each node's max jobs and the hash of its definitions (the same
// for the same files, another for other files, with a warning in the log); a node stopped with
// SIGINT is listed stopped, and alive again when it starts; a job that every node is too full
// for waits and says so.
func TestClusterNodesMaxJobsAndLifecycle(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	shared := t.TempDir()
	yml := heldPipelines(shared, "")
	a := newSteadyNode(t, yml, url, "a", "--max-jobs", "1")
	b := newSteadyNode(t, yml, url, "b")

	// a runs one job; the next one it admits runs on b, which has room.
	j1 := a.schedule("hold", nil)
	if node := a.waitRunningOn(j1); node != "a" {
		t.Fatalf("first job runs on %q, want a", node)
	}
	j2 := a.schedule("hold", nil)
	if node := a.waitRunningOn(j2); node != "b" {
		t.Fatalf("second job admitted by a (full) runs on %q, want b", node)
	}
	eventually(t, 10*time.Second, "the definitions hashes of both nodes", func() bool {
		nodes := b.nodes()
		return nodes["a"].DefinitionsHash != "" && nodes["b"].DefinitionsHash != ""
	})
	nodes := b.nodes()
	if na, nb := nodes["a"], nodes["b"]; na.MaxJobs != 1 || na.RunningJobs != 1 || nb.MaxJobs != 0 || nb.RunningJobs != 1 {
		t.Errorf("GET /nodes: a %+v, b %+v; want max jobs 1 and 0, one running job each", na, nb)
	}
	if na, nb := nodes["a"], nodes["b"]; na.DefinitionsHash == "" || na.DefinitionsHash != nb.DefinitionsHash {
		t.Errorf("definitions hashes of nodes with the same files: a %q, b %q; want equal, not empty", na.DefinitionsHash, nb.DefinitionsHash)
	}
	if a.nodesPageWarns() {
		t.Errorf("the Nodes page warns of different definitions on nodes with the same files")
	}
	release(t, shared, j1, j2)
	for _, id := range []string{j1, j2} {
		if j := a.waitFinished(id); j.Status != "succeeded" {
			t.Errorf("job %s ended %s: %s", id, j.Status, j.LastError)
		}
	}

	// b stops cleanly: it is listed stopped.
	b.signal(syscall.SIGINT)
	if code := b.wait(stopWait); code != 0 {
		t.Fatalf("b exited with %d", code)
	}
	if n := a.nodes()["b"]; n.State != "stopped" {
		t.Errorf("b after SIGINT: %+v, want stopped", n)
	}

	// b comes back with other pipeline files and --max-jobs 1: alive, another hash, a warning.
	writeFile(t, filepath.Join(b.dir, "pipelines.yml"), heldPipelines(shared, `  other:
    tasks:
      t: {script: ["true"]}
`))
	b.extra = append(b.extra, "--max-jobs", "1")
	b.restart()
	// It registers before its definitions have loaded, and records their hash once they have.
	eventually(t, 10*time.Second, "b's definitions hash", func() bool { return a.nodes()["b"].DefinitionsHash != "" })
	nodes = a.nodes()
	if na, nb := nodes["a"], nodes["b"]; nb.State != "alive" || nb.MaxJobs != 1 || nb.DefinitionsHash == na.DefinitionsHash {
		t.Errorf("b after its restart with other files: %+v (a: %+v); want alive, max jobs 1, another hash", nb, na)
	}
	b.waitOutput("node a runs other pipeline definitions than this node", 10*time.Second)
	if !a.nodesPageWarns() {
		t.Errorf("the Nodes page does not warn of the nodes' different definitions")
	}

	// Both nodes full: the next job waits and says why.
	j3, j4 := a.schedule("hold", nil), b.schedule("hold", nil)
	on := map[string]bool{a.waitRunningOn(j3): true, a.waitRunningOn(j4): true}
	if !on["a"] || !on["b"] {
		t.Fatalf("two jobs with room for one on each node run on %v, want a and b", on)
	}
	j5 := b.schedule("hold", nil)
	want := "every node runs its --max-jobs (a 1/1, b 1/1)"
	eventually(t, 10*time.Second, "the wait reason "+want, func() bool {
		_, reason := a.jobNode(j5)
		return reason == want
	})
	release(t, shared, j3)
	if node := a.waitRunningOn(j5); node == "" {
		t.Errorf("the waiting job runs on no node")
	}
	release(t, shared, j4, j5)
	for _, id := range []string{j3, j4, j5} {
		if j := a.waitFinished(id); j.Status != "succeeded" {
			t.Errorf("job %s ended %s: %s", id, j.Status, j.LastError)
		}
	}
}

// interruptClusterPipelines: a job of deploy runs until released (or interrupted); its on_error
// leaves a file in shared.
func interruptClusterPipelines(shared string) string {
	return fmt.Sprintf(`
pipelines:
  deploy:
    queue_strategy: replace
    queue_limit: 1
    interrupt_running: true
    tasks:
      run: {script: ["while [ ! -e %[1]s/release-{{ .__jobID }} ]; do sleep 0.05; done"]}
    on_error:
      script: ["touch %[1]s/on_error-{{ .__jobID }}"]
`, shared)
}

// TestClusterInterruptRunningAcrossNodes: a job of an interrupt_running pipeline admitted
// through one node interrupts the job running on the other: that one ends canceled, replaced
// by the new job and saying so, without on_error, and the new job runs.
func TestClusterInterruptRunningAcrossNodes(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	shared := t.TempDir()
	yml := interruptClusterPipelines(shared)
	a := newSteadyNode(t, yml, url, "a")
	b := newSteadyNode(t, yml, url, "b")

	old := a.schedule("deploy", nil)
	if node := a.waitRunningOn(old); node != "a" {
		t.Fatalf("the first job runs on %q, want a", node)
	}
	newer := b.schedule("deploy", nil)
	j := b.waitFinished(old)
	if j.Status != "canceled" || j.ReplacedBy != newer || !strings.Contains(j.LastError, "interrupted by the newer job "+newer) {
		t.Errorf("the interrupted job ended %s, replacedBy %q, %q; want canceled, replaced by %s, saying why", j.Status, j.ReplacedBy, j.LastError, newer)
	}
	b.waitRunningOn(newer)
	release(t, shared, newer)
	if j := a.waitFinished(newer); j.Status != "succeeded" {
		t.Errorf("the new job ended %s: %s", j.Status, j.LastError)
	}
	if _, err := os.Stat(filepath.Join(shared, "on_error-"+old)); err == nil {
		t.Errorf("on_error ran for the interrupted job")
	}
}
