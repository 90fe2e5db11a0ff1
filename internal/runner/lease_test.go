package runner

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/postgres"
	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
)

// The tests of this file run nodes of a cluster: runners on PostgreSQL stores of one database.

const leasePipelines = `pipelines:
  slow:
    concurrency: 1
    tasks:
      sleep:
        script:
          - sh -c 'echo $$ > task.pid; exec sleep 60'
  quick:
    tasks:
      hello:
        script:
          - echo hello
`

// testLease is short, so that the tests see leases lost and nodes reaped within seconds.
const testLease = time.Second

// parseDefs parses the pipelines of file.
func parseDefs(t *testing.T, file string) map[string]*pipeline.Definition {
	t.Helper()
	defs, _, errs := pipeline.Parse("pipelines.yml", []byte(file))
	if len(errs) > 0 {
		t.Fatalf("pipelines.yml: %v", errs)
	}
	return defs
}

// startNode starts a runner as node id on a new store of the database url, with the pipelines
// of file and the configuration changed by mods; its tasks run in the returned directory.
func startNode(t *testing.T, url, id, file string, mods ...func(*Config)) (*Runner, string) {
	t.Helper()
	st, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := Config{
		Store:     st,
		DataDir:   dir,
		WorkDir:   dir,
		Env:       []string{"PATH=" + os.Getenv("PATH")},
		KillGrace: 200 * time.Millisecond,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Node:      store.NodeInfo{ID: id, Version: "test"},
		Lease:     testLease,
	}
	for _, mod := range mods {
		mod(&cfg)
	}
	r := New(cfg)
	r.SetDefinitions(&pipeline.Set{Pipelines: parseDefs(t, file)})
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Error(err)
		}
		_ = st.Close()
	})
	return r, dir
}

// execSQL runs one statement on the database url (what another party does to the database).
func execSQL(t *testing.T, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// waitFor polls cond every 20ms until it holds, at most 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readPID waits for the pid file a task writes and returns the PID.
func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, "the task's pid file", func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid != os.Getpid()
	})
	return pid
}

// alive reports whether the process pid exists (and is not a zombie waiting for its parent).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	return err == nil && !strings.Contains(string(stat), ") Z ")
}

// TestNodeLosingItsLeaseKillsItsJobs: a node whose lease was taken away (as when it was paused
// past its lease) kills the processes of its jobs; the job ends as lost, once; the node
// registers again and runs jobs again.
func TestNodeLosingItsLeaseKillsItsJobs(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	url := pgtest.NewDatabase(t)
	a, dir := startNode(t, url, "a", leasePipelines)
	startNode(t, url, "b", leasePipelines) // another node, whose reaper may be the one to act

	id := schedule(t, a, "slow")
	pid := readPID(t, filepath.Join(dir, "task.pid"))
	if j, _ := a.Job(t.Context(), id); j.Node != "a" {
		t.Fatalf("job Node = %q, want a", j.Node)
	}

	execSQL(t, url, `UPDATE nodes SET lease_until = clock_timestamp() WHERE id = 'a'`)

	j := waitJob(t, a, id, "the job to end", func(j *pipeline.Job) bool { return j.Status.Final() })
	if j.Status != pipeline.JobFailed || j.LastError != store.LostNodeReason("a") {
		t.Errorf("job status %q LastError %q, want %q %q", j.Status, j.LastError, pipeline.JobFailed, store.LostNodeReason("a"))
	}
	waitFor(t, "the task's process to be killed", func() bool { return !alive(pid) })

	// The node holds a lease again and runs jobs.
	var quick string
	waitFor(t, "the node to admit jobs again", func() bool {
		var err error
		quick, err = a.Schedule(t.Context(), pipeline.ScheduleRequest{Pipeline: "quick"})
		if err != nil && !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("Schedule() error: %v", err)
		}
		return err == nil
	})
	waitJob(t, a, quick, "the new job to succeed", func(j *pipeline.Job) bool { return j.Status == pipeline.JobSucceeded })
	if got, _ := a.Job(t.Context(), id); got.Status != j.Status || got.LastError != j.LastError {
		t.Errorf("the lost job changed later: status %q LastError %q", got.Status, got.LastError)
	}
}

// TestReaperEndsDeadNodesJobs: a node that died (its lease runs out, nobody renews it) has its
// running job ended by another node as "node <id> lost", and the job waiting behind it runs.
func TestReaperEndsDeadNodesJobs(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	url := pgtest.NewDatabase(t)

	// The dead node: registered, started a job, then stopped renewing.
	dead, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	if _, err := dead.RegisterNode(t.Context(), store.NodeInfo{ID: "dead"}, testLease); err != nil {
		t.Fatal(err)
	}
	d := parseDefs(t, leasePipelines)["slow"]
	job := &pipeline.Job{ID: "orphan", Pipeline: "slow", Created: time.Now(), Definition: d, Tasks: pipeline.NewJobTasks(d)}
	if res, err := dead.Admit(t.Context(), store.AdmitParams{Job: job, Definition: d, Now: time.Now()}); err != nil || !res.Started {
		t.Fatalf("Admit() by the dead node = %+v, %v; want started", res, err)
	}

	b, _ := startNode(t, url, "b", strings.Replace(leasePipelines, "sh -c 'echo $$ > task.pid; exec sleep 60'", "true", 1))
	next := schedule(t, b, "slow") // waits behind the dead node's job (concurrency 1)

	j := waitJob(t, b, "orphan", "the dead node's job to end", func(j *pipeline.Job) bool { return j.Status.Final() })
	if j.Status != pipeline.JobFailed || j.LastError != store.LostNodeReason("dead") {
		t.Errorf("job status %q LastError %q, want %q %q", j.Status, j.LastError, pipeline.JobFailed, store.LostNodeReason("dead"))
	}
	n := waitJob(t, b, next, "the waiting job to run", func(j *pipeline.Job) bool { return j.Status == pipeline.JobSucceeded })
	if n.Node != "b" {
		t.Errorf("waiting job ran on node %q, want b", n.Node)
	}
}
