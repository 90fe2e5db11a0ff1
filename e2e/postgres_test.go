package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
)

const postgresPipelines = `
pipelines:
  build:
    concurrency: 1
    tasks:
      compile: {script: ["echo compiling {{ .version }}"]}
    schedules:
      - name: often
        cron: "@every 1s"
        variables: {version: scheduled}
        overlap: skip
`

// TestServerOnPostgres: with --database-url the server keeps its jobs in PostgreSQL: jobs run
// (scheduled through the API and by a schedule), survive a restart, and a second server on
// the same database is refused with a message that says why (one node per database for now).
func TestServerOnPostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	s := newServer(t, postgresPipelines, "--database-url", url).start()
	id := s.schedule("build", map[string]any{"version": "1.2.3"})
	if j := s.waitFinished(id); j.Status != "succeeded" {
		t.Fatalf("job ended %s: %s", j.Status, j.LastError)
	}
	if out, _ := s.logs(id, "compile"); out != "compiling 1.2.3\n" {
		t.Errorf("output %q", out)
	}
	eventually(t, 15*time.Second, "a job of the schedule", func() bool {
		return len(s.scheduledJobs("build/often")) > 0
	})

	second := newServer(t, postgresPipelines, "--database-url", url)
	second.startNoWait()
	if code := second.wait(30 * time.Second); code == 0 {
		t.Errorf("a second server on the same database started")
	}
	if out := second.output.String(); !strings.Contains(out, "another prunner server uses this database") {
		t.Errorf("the second server's output does not say why it stopped:\n%s", out)
	}
	// Nor may a node of a cluster join a database that a server without --node-id holds.
	member := newServer(t, postgresPipelines, "--database-url", url, "--node-id", "a")
	member.startNoWait()
	if code := member.wait(30 * time.Second); code == 0 {
		t.Errorf("a node of a cluster started on the database of a single server")
	}
	if out := member.output.String(); !strings.Contains(out, "without --node-id, alone") {
		t.Errorf("the node's output does not say why it stopped:\n%s", out)
	}

	s.stopGracefully()
	s.restart()
	if j := s.job(id); j.Status != "succeeded" {
		t.Errorf("after a restart the job is %q, want succeeded", j.Status)
	}
}
