package runner

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/postgres"
	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
)

// The tests of this file run two nodes on one PostgreSQL database and check that what one node
// does reaches the other at once by a wake-up (the poll interval is then far longer than the
// test allows), or, with the wake-ups off, by the poll.

const wakeupPipelines = `pipelines:
  gate:
    concurrency: 1
    tasks:
      wait:
        script:
          - sh -c 'while [ ! -f release ]; do sleep 0.02; done'
  slow:
    tasks:
      sleep:
        script:
          - sh -c 'echo $$ > task.pid; exec sleep 60'
`

// nodeOptions are how a test node hears of the other nodes.
type nodeOptions struct {
	poll       time.Duration
	wakeupsOff bool
}

// wakeByNotify: wake-ups on, a poll too slow to matter within a test's limits.
var wakeByNotify = nodeOptions{poll: time.Minute}

// wakeByPoll: wake-ups off, a short poll.
var wakeByPoll = nodeOptions{poll: 200 * time.Millisecond, wakeupsOff: true}

// startWakeNode starts a runner as node id on a new store of the database url, with the
// pipelines of wakeupPipelines; its tasks run in the returned directory.
func startWakeNode(t *testing.T, url, id string, o nodeOptions) (*Runner, string) {
	t.Helper()
	st, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := New(Config{
		Store:        st,
		DataDir:      dir,
		WorkDir:      dir,
		Env:          []string{"PATH=" + os.Getenv("PATH")},
		KillGrace:    200 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Node:         store.NodeInfo{ID: id, Version: "test"},
		Lease:        10 * time.Second,
		PollInterval: o.poll,
	})
	r.wakeupsOff = o.wakeupsOff
	r.SetDefinitions(&pipeline.Set{Pipelines: parseDefs(t, wakeupPipelines)})
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

// waitListeners waits until n sessions listen for wake-ups on the database url.
func waitListeners(t *testing.T, dbURL string, n int) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	waitFor(t, "the nodes to listen", func() bool {
		var got int
		err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND query LIKE 'LISTEN %'`, strings.TrimPrefix(u.Path, "/")).Scan(&got)
		return err == nil && got >= n
	})
}

// TestWaitingJobStartsOnAnotherNode: a job waits behind the running job of node A, which is
// draining (it starts nothing more); when that job ends, the waiting job starts on node B at
// once, woken by A's end (B's poll is a minute away).
func TestWaitingJobStartsOnAnotherNode(t *testing.T) {
	t.Parallel()
	testWaitingJobStartsOnAnotherNode(t, wakeByNotify, 500*time.Millisecond)
}

// TestWaitingJobStartsOnAnotherNodeByPoll: the same with the wake-ups off: B's poll starts the
// job within its interval.
func TestWaitingJobStartsOnAnotherNodeByPoll(t *testing.T) {
	t.Parallel()
	testWaitingJobStartsOnAnotherNode(t, wakeByPoll, wakeByPoll.poll+500*time.Millisecond)
}

func testWaitingJobStartsOnAnotherNode(t *testing.T, o nodeOptions, limit time.Duration) {
	pgtest.Require(t)
	url := pgtest.NewDatabase(t)
	a, dirA := startWakeNode(t, url, "a", o)
	b, _ := startWakeNode(t, url, "b", o)
	if !o.wakeupsOff {
		waitListeners(t, url, 2)
	}

	first := schedule(t, a, "gate")
	waitJob(t, a, first, "running on a", func(j *pipeline.Job) bool { return j.Status == pipeline.JobRunning && j.Node == "a" })
	next := schedule(t, a, "gate")
	drained := make(chan error, 1)
	go func() { drained <- a.Drain(context.Background()) }()
	waitFor(t, "a to drain", a.isStopped)

	if err := os.WriteFile(filepath.Join(dirA, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ended := waitJob(t, b, first, "to end", func(j *pipeline.Job) bool { return j.Status.Final() })
	started := waitJob(t, b, next, "to start", func(j *pipeline.Job) bool { return j.Start != nil })
	if started.Node != "b" {
		t.Errorf("waiting job started on node %q, want b", started.Node)
	}
	if d := started.Start.Sub(*ended.End); d > limit {
		t.Errorf("waiting job started %v after the slot was freed, want at most %v", d, limit)
	} else {
		t.Logf("waiting job started %v after the slot was freed", d)
	}
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
}

// TestCancelThroughAnotherNode: Cancel through node A of a job running on node B returns once
// the request is stored, and B ends the job as canceled, its process gone, within a second.
func TestCancelThroughAnotherNode(t *testing.T) {
	t.Parallel()
	testCancelThroughAnotherNode(t, wakeByNotify)
}

// TestCancelThroughAnotherNodeByPoll: the same with the wake-ups off: B's poll finds the
// request.
func TestCancelThroughAnotherNodeByPoll(t *testing.T) {
	t.Parallel()
	testCancelThroughAnotherNode(t, wakeByPoll)
}

func testCancelThroughAnotherNode(t *testing.T, o nodeOptions) {
	pgtest.Require(t)
	url := pgtest.NewDatabase(t)
	a, _ := startWakeNode(t, url, "a", o)
	b, dirB := startWakeNode(t, url, "b", o)
	if !o.wakeupsOff {
		waitListeners(t, url, 2)
	}

	id := schedule(t, b, "slow")
	pid := readPID(t, filepath.Join(dirB, "task.pid"))
	requested := time.Now()
	if err := a.Cancel(t.Context(), id); err != nil {
		t.Fatalf("Cancel() through a: %v", err)
	}
	j := waitJob(t, a, id, "canceled", func(j *pipeline.Job) bool { return j.Status.Final() })
	if j.Status != pipeline.JobCanceled || j.Node != "b" {
		t.Errorf("job status %q on node %q (%q), want %q on b", j.Status, j.Node, j.LastError, pipeline.JobCanceled)
	}
	waitFor(t, "the task's process to end", func() bool { return !alive(pid) })
	if d := time.Since(requested); d > time.Second {
		t.Errorf("the job ended %v after the cancel request, want within 1s", d)
	} else {
		t.Logf("the job ended %v after the cancel request", d)
	}
	a.mu.Lock()
	pending := len(a.cancelPending)
	a.mu.Unlock()
	if pending != 0 {
		t.Errorf("node a keeps %d cancel notes for launch, want none", pending)
	}
	if err := a.Cancel(t.Context(), id); err != nil {
		t.Errorf("Cancel() of the canceled job again: %v", err)
	}
}
