package runner

import (
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
)

// steadyLease gives a node a lease that outlasts the pauses of a busy machine, for the tests
// that never wait for a lease to run out.
func steadyLease(c *Config) { c.Lease = 20 * time.Second }

const interruptPartitions = `pipelines:
  tenant:
    concurrency: 2
    queue_strategy: partitioned_replace
    queue_partition_limit: 1
    interrupt_running: true
    tasks:
      t: {script: ["sleep 60"]}
`

// TestInterruptRunningOnAnotherNode: with partitioned_replace, a new job admitted through one
// node interrupts the running job of its partition on another node, as interrupted by it, and
// leaves the job of another partition alone.
func TestInterruptRunningOnAnotherNode(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	url := pgtest.NewDatabase(t)
	a, _ := startNode(t, url, "a", interruptPartitions, steadyLease)
	b, _ := startNode(t, url, "b", interruptPartitions, steadyLease)
	schedule := func(r *Runner, partition string) string {
		t.Helper()
		id, err := r.Schedule(t.Context(), pipeline.ScheduleRequest{Pipeline: "tenant", QueuePartition: partition})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	running := func(j *pipeline.Job) bool { return j.Status == pipeline.JobRunning }
	x1 := schedule(a, "x")
	if j := waitJob(t, a, x1, "running", running); j.Node != "a" {
		t.Fatalf("x1 runs on %q, want a", j.Node)
	}
	y1 := schedule(b, "y")
	waitJob(t, b, y1, "running", running)

	x2 := schedule(b, "x")
	j := waitJob(t, b, x1, "ended", func(j *pipeline.Job) bool { return j.End != nil })
	if j.Status != pipeline.JobCanceled || j.ReplacedBy != x2 || !strings.Contains(j.LastError, "interrupted by the newer job "+x2) {
		t.Errorf("x1 ended %s, replaced by %q, %q; want canceled, replaced by x2 (%s)", j.Status, j.ReplacedBy, j.LastError, x2)
	}
	waitJob(t, b, x2, "running", running)
	if j, err := b.Job(t.Context(), y1); err != nil || j.Status != pipeline.JobRunning {
		t.Errorf("y1 of another partition: %+v, %v; want still running", j, err)
	}
}
