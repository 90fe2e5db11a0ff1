package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/api"
	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
)

// dbCutPipelines: a job of gated prints "begin", writes the PID of the shell that waits for the
// test's release file, waits for it, prints "end" and leaves its side effect (a file named after the job, and a line
// in ran.txt, so that the test sees how often each job ran). Its concurrency of 1 keeps the
// later jobs waiting behind the first.
func dbCutPipelines(shared string) string {
	return fmt.Sprintf(`
pipelines:
  gated:
    concurrency: 1
    queue_limit: 10
    tasks:
      run:
        script:
          - echo begin
          - sh -c 'echo $$ > %[1]s/pid-{{ .n }}; while [ ! -f %[1]s/release ]; do sleep 0.05; done'
          - echo end
          - sh -c 'touch %[1]s/effect-{{ .n }}; echo {{ .n }} >> %[1]s/ran.txt'
`, shared)
}

// newCutNode starts node id on the database url (the proxy's) with a lease of lease.
func newCutNode(t *testing.T, yml, url, id, lease string) *server {
	t.Helper()
	return newServer(t, yml, "--database-url", url, "--node-id", id, "--lease", lease, "--cluster-poll", "200ms").start()
}

// TestClusterSurvivesDatabaseCut: the database of a node is cut off (through a TCP proxy the test
// controls) for less than the node's lease, then restored. During the cut a schedule request
// gets 503 with an error that says what to do, the node is not ready, and the running job's
// process goes on and finishes. After the restore, without a restart of prunner: the running
// job's end is recorded (succeeded, with all its output), the jobs acknowledged before the cut
// run, each once, new schedules work, and the node listens for wake-ups again. Then every
// session of the database is ended, as a PostgreSQL restart does, and the node goes on.
func TestClusterSurvivesDatabaseCut(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	proxyURL, proxy := proxiedURL(t, url)
	shared := t.TempDir()
	a := newCutNode(t, dbCutPipelines(shared), proxyURL, "a", "10s")
	pid := a.cmd.Process.Pid

	var ids []string
	for n := range 3 {
		ids = append(ids, a.schedule("gated", map[string]any{"n": fmt.Sprint(n)}))
	}
	waitLog(t, a, ids[0], "run", "begin")
	taskPID := readPid(t, filepath.Join(shared, "pid-0"))
	a.waitOutput("wake-ups from other nodes: listening", 10*time.Second)

	proxy.Cut()
	// Every request is answered within the store's bounds (the harness's client gives up after
	// requestTimeout): a 503 that says the database is unreachable, not a hang.
	status, body := a.do("POST", "/pipelines/schedule", map[string]any{"pipeline": "gated", "variables": map[string]any{"n": "cut"}})
	if status != http.StatusServiceUnavailable || errorOf(body) != api.UnavailableMessage {
		t.Errorf("schedule during the cut: %d %s, want 503 with %q", status, body, api.UnavailableMessage)
	}
	if status, body := a.do("GET", "/readyz", nil); status != http.StatusServiceUnavailable || !bytes.Contains(body, []byte("unavailable")) {
		t.Errorf("/readyz during the cut: %d %s, want 503 unavailable", status, body)
	}
	for _, read := range []string{"/job/detail?id=" + ids[0], "/pipelines/jobs", "/job/logs?id=" + ids[0] + "&task=run", "/nodes"} {
		if status, body := a.do("GET", read, nil); status != http.StatusServiceUnavailable || errorOf(body) != api.UnavailableMessage {
			t.Errorf("GET %s during the cut: %d %s, want 503 with %q", read, status, body, api.UnavailableMessage)
		}
	}
	if !pidAlive(taskPID) {
		t.Fatalf("the running job's process died with the database connection")
	}
	// The job finishes while the database is away: its process runs to its end, and its task
	// and job ends wait for the database.
	writeFile(t, filepath.Join(shared, "release"), "")
	eventually(t, 10*time.Second, "the side effect of the job running during the cut", func() bool {
		_, err := os.Stat(filepath.Join(shared, "effect-0"))
		return err == nil
	})
	// The cut lasts over two failed lease renewals (a quarter of the lease apart), longer than a
	// few quick retries of a write would wait, and ends before the lease does. Meanwhile the
	// job's last output, its task's end and its own end wait for the database.
	eventually(t, 15*time.Second, "two failed lease renewals", func() bool {
		return strings.Count(a.output.String(), "renew node lease: retrying") >= 2
	})
	if _, err := os.Stat(filepath.Join(shared, "effect-1")); err == nil {
		t.Errorf("a job waiting behind the running one started while the database was cut off")
	}
	proxy.Restore()

	for n, id := range ids {
		j := a.waitFinished(id)
		if j.Status != "succeeded" || j.task("run").Status != "done" {
			t.Errorf("job %d ended %s (task %s): %s, want succeeded", n, j.Status, j.task("run").Status, j.LastError)
		}
		if out, _ := a.logs(id, "run"); out != "begin\nend\n" {
			t.Errorf("output of job %d: %q, want all of it", n, out)
		}
	}
	assertRanOnce(t, shared, len(ids))
	if id := a.schedule("gated", map[string]any{"n": "after"}); a.waitFinished(id).Status != "succeeded" {
		t.Errorf("a job scheduled after the restore did not succeed")
	}
	if status, body := a.do("GET", "/readyz", nil); status != http.StatusOK {
		t.Errorf("/readyz after the restore: %d %s", status, body)
	}
	// A PostgreSQL restart ends every session: the next schedule is stored all the same (its
	// write retries on a new connection) and runs.
	if n := pgtest.TerminateConnections(t, databaseName(t, url)); n == 0 {
		t.Fatal("no connection of the node was ended")
	}
	if id := a.schedule("gated", map[string]any{"n": "restarted"}); a.waitFinished(id).Status != "succeeded" {
		t.Errorf("a job scheduled after the database's sessions ended did not succeed")
	}
	// The wake-up listener lost its connection with the cut and listens again.
	eventually(t, 15*time.Second, "the wake-up listener to connect again", func() bool {
		return strings.Count(a.output.String(), "wake-ups from other nodes: listening") >= 2
	})
	assertNotRestarted(t, a, pid)
}

// TestClusterDatabaseCutLongerThanLease: node a's database is blackholed (connections closed,
// new ones never answered) for longer than its lease while a job runs on it; node b, which still
// reaches the database, ends the job as failed ("node a lost"), and a kills the job's process.
// After the restore a registers again and serves without a restart, and the job keeps the one
// final state b recorded.
func TestClusterDatabaseCutLongerThanLease(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	proxyURL, proxy := proxiedURL(t, url)
	shared := t.TempDir()
	yml := dbCutPipelines(shared)
	a := newCutNode(t, yml, proxyURL, "a", "3s")
	b := newCutNode(t, yml, url, "b", "3s")
	pid := a.cmd.Process.Pid

	id := a.schedule("gated", map[string]any{"n": "0"})
	waitLog(t, a, id, "run", "begin")
	taskPID := readPid(t, filepath.Join(shared, "pid-0"))

	proxy.Blackhole()
	status, body := a.do("POST", "/pipelines/schedule", map[string]any{"pipeline": "gated", "variables": map[string]any{"n": "cut"}})
	if status != http.StatusServiceUnavailable {
		t.Errorf("schedule during the cut: %d %s, want 503", status, body)
	}
	lost := b.waitJob(id, 30*time.Second, "ended by the other node", jobJSON.finished)
	if lost.Status != "failed" || !strings.Contains(lost.LastError, "node a lost") {
		t.Errorf("the cut-off node's job ended %s: %q, want failed, node a lost", lost.Status, lost.LastError)
	}
	eventually(t, 30*time.Second, "the cut-off node to kill the process of its lost job", func() bool { return !pidAlive(taskPID) })
	proxy.Restore()

	// a registers again (schedules get 503 until it has a new lease) and runs jobs.
	var after string
	eventually(t, 30*time.Second, "a schedule through a after the restore", func() bool {
		var status int
		after, status, _ = a.trySchedule("gated", map[string]any{"n": "after"}, "")
		return status == http.StatusAccepted
	})
	writeFile(t, filepath.Join(shared, "release"), "")
	if j := a.waitFinished(after); j.Status != "succeeded" {
		t.Errorf("a job scheduled through a after the restore ended %s: %s", j.Status, j.LastError)
	}
	// One final state: what b recorded, as both nodes read it now.
	for _, s := range []*server{a, b} {
		if j := s.job(id); j.Status != lost.Status || j.LastError != lost.LastError || *j.End != *lost.End {
			t.Errorf("the lost job now reads %s %q ended %v, want what b recorded: %s %q %v",
				j.Status, j.LastError, *j.End, lost.Status, lost.LastError, *lost.End)
		}
	}
	if _, err := os.Stat(filepath.Join(shared, "effect-0")); err == nil {
		t.Errorf("the lost job's task ran to its end after its node lost the lease")
	}
	assertNotRestarted(t, a, pid)
}

// databaseName returns the database of a PostgreSQL URL.
func databaseName(t *testing.T, databaseURL string) string {
	t.Helper()
	u, err := neturl.Parse(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// errorOf returns the error message of a JSON error body.
func errorOf(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error
}

// assertRanOnce checks that the jobs 0..n-1 of gated each left one line in ran.txt.
func assertRanOnce(t *testing.T, shared string, n int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(shared, "ran.txt"))
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]int{}
	for _, f := range strings.Fields(string(data)) {
		runs[f]++
	}
	for i := range n {
		if runs[fmt.Sprint(i)] != 1 {
			t.Errorf("job %d ran %d times, want once", i, runs[fmt.Sprint(i)])
		}
	}
}

// assertNotRestarted checks that the node's process is the one started first and still runs.
func assertNotRestarted(t *testing.T, s *server, pid int) {
	t.Helper()
	select {
	case <-s.exited:
		t.Errorf("the node exited: %v", s.exitErr)
	default:
	}
	if s.cmd.Process.Pid != pid {
		t.Errorf("the node was restarted")
	}
}
