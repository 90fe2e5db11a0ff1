package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
	"github.com/prunner-dev/prunner/internal/tasklog"
	"github.com/prunner-dev/prunner/internal/tasklog/tasklogtest"
)

// smallBatches cuts every stream into many chunks and flushes them often, so that the suite
// crosses chunk boundaries everywhere and runs the interval timer. Not smaller: the suite writes
// 16 MiB in one test, a commit per batch, and with 1000-byte batches that took 30 s under -race.
var smallBatches = TaskLogOptions{BatchBytes: 4000, FlushInterval: 5 * time.Millisecond}

func TestTaskLogConformance(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	// One database for the suite: its tests use random job IDs, so they never see each other's
	// output, and each gets a Live (a node) of its own.
	s := openTest(t, pgtest.NewDatabase(t))
	for name, opts := range map[string]TaskLogOptions{"default": {}, "small-batches": smallBatches} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tasklogtest.Run(t, func(t *testing.T) tasklog.Store { return tasklog.NewLive(s.TaskLogs(opts)) })
		})
	}
}

func TestTaskLogConformanceShared(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	url := pgtest.NewDatabase(t)
	// Two stores on one database: two nodes, each with its own pool and backend.
	a, b := openTest(t, url), openTest(t, url)
	for name, opts := range map[string]TaskLogOptions{"default": {}, "small-batches": smallBatches} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tasklogtest.RunShared(t, func(t *testing.T) (tasklog.Store, tasklog.Store) {
				return tasklog.NewLive(a.TaskLogs(opts)), tasklog.NewLive(b.TaskLogs(opts))
			})
		})
	}
}

// pattern is a reproducible stream of n bytes that is not the same at any two nearby offsets,
// written without holding it in memory.
type pattern struct{ off, n int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for i := range b {
		x := uint64(p.off + int64(i))
		b[i] = byte(x ^ x>>8 ^ x>>16 ^ x*7)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// peakHeap samples the heap while fn runs and returns how far it grew above where it was.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	base, peak := m.HeapAlloc, m.HeapAlloc
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
	fn()
	close(done)
	wg.Wait()
	return peak - min(peak, base)
}

// TestTaskLogLargeStreamOnAnotherNode writes 20 MB through one node, which then goes away, and
// reads it back exactly on another, with the memory of a few chunks on both sides. Not parallel:
// it measures the heap, which other tests would share.
func TestTaskLogLargeStreamOnAnotherNode(t *testing.T) {
	pgtest.Require(t)
	const size = 20 << 20
	const bound = 8 << 20 // far below the stream: neither side may hold it
	url := pgtest.NewDatabase(t)
	writerStore, err := Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer writerStore.Close()
	reader := tasklog.NewLive(openTest(t, url).TaskLogs(TaskLogOptions{}))
	writer := tasklog.NewLive(writerStore.TaskLogs(TaskLogOptions{}))
	a := tasklog.Attempt{JobID: uuid.NewString(), Task: "big", Number: 1}
	ctx := t.Context()

	want := sha256.New()
	grew := peakHeap(func() {
		o, e, err := writer.Create(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		// A shell's pipe writes: 32 KiB pieces.
		if _, err := io.CopyBuffer(o, io.TeeReader(&pattern{n: size}, want), make([]byte, 32<<10)); err != nil {
			t.Fatal(err)
		}
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("writing %d MB grew the heap by %.1f MB at most", size>>20, float64(grew)/(1<<20))
	if grew > bound {
		t.Errorf("writing %d MB grew the heap by %d MB: the writer holds far more than a few batches", size>>20, grew>>20)
	}
	writerStore.Close() // the writing node is gone; its output is not

	got := sha256.New()
	var n int64
	grew = peakHeap(func() {
		r, err := reader.Open(ctx, a, pipeline.Stdout)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if st, err := r.Stat(); err != nil || st.Size() != size {
			t.Errorf("Stat() on the other node = %v, %v; want size %d", st, err, size)
		}
		n, err = io.Copy(got, r)
		if err != nil {
			t.Fatal(err)
		}
	})
	if n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Errorf("the other node read %d bytes (sha256 equal: %v), want the %d written", n, bytes.Equal(got.Sum(nil), want.Sum(nil)), size)
	}
	t.Logf("reading %d MB grew the heap by %.1f MB at most", size>>20, float64(grew)/(1<<20))
	if grew > bound {
		t.Errorf("reading %d MB grew the heap by %d MB: the reader holds far more than a chunk", size>>20, grew>>20)
	}
}

// TestTaskLogUnclosedOutputIsStoredWithinTheInterval: output of a task that is still running (or
// whose node dies without closing) reaches the database within the flush interval, so a crash
// loses at most that; a full batch goes at once.
func TestTaskLogUnclosedOutputIsStoredWithinTheInterval(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	url := pgtest.NewDatabase(t)
	opts := TaskLogOptions{BatchBytes: 4096, FlushInterval: 100 * time.Millisecond}
	writer := tasklog.NewLive(openTest(t, url).TaskLogs(opts))
	other := openTest(t, url).TaskLogs(opts)
	a := tasklog.Attempt{JobID: uuid.NewString(), Task: "slow", Number: 1}
	o, e, err := writer.Create(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	defer e.Close()
	stored := func() int64 {
		size, err := other.storedSize(t.Context(), outputKey{a, pipeline.Stdout})
		if err != nil {
			t.Fatal(err)
		}
		return size
	}

	t0 := time.Now()
	if _, err := io.WriteString(o, "one line\n"); err != nil {
		t.Fatal(err)
	}
	for stored() == 0 {
		if time.Since(t0) > 5*time.Second {
			t.Fatal("a line was not stored within 5s of its write (interval 100ms)")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if d := time.Since(t0); d < opts.FlushInterval/2 {
		t.Errorf("a short write was stored after %v, before its interval (%v): no batching", d, opts.FlushInterval)
	}
	if got := readAll(t, tasklog.NewLive(other), a); got != "one line\n" {
		t.Errorf("the other node reads %q, want %q", got, "one line\n")
	}

}

// TestTaskLogFullBatchesAreStoredAtOnce: a full batch is committed without waiting for the
// interval, and what a crash would lose is the batch being filled.
func TestTaskLogFullBatchesAreStoredAtOnce(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	url := pgtest.NewDatabase(t)
	opts := TaskLogOptions{BatchBytes: 4096, FlushInterval: time.Hour}
	writer := tasklog.NewLive(openTest(t, url).TaskLogs(opts))
	other := openTest(t, url).TaskLogs(opts)
	a := tasklog.Attempt{JobID: uuid.NewString(), Task: "fast", Number: 1}
	o, e, err := writer.Create(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	stored := func() int64 {
		size, err := other.storedSize(t.Context(), outputKey{a, pipeline.Stdout})
		if err != nil {
			t.Fatal(err)
		}
		return size
	}
	full := int64(3 * opts.BatchBytes)
	if _, err := o.Write(bytes.Repeat([]byte("b"), int(full)+100)); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for stored() < full {
		if time.Since(t0) > 10*time.Second {
			t.Fatalf("%d of %d bytes in full batches stored after 10s (interval: an hour)", stored(), full)
		}
		time.Sleep(time.Millisecond)
	}
	if got := stored(); got != full {
		t.Errorf("stored %d bytes before Close, want the %d of the full batches", got, full)
	}
	if got := readAll(t, writer, a); len(got) != int(full)+100 {
		t.Errorf("the writing node reads %d bytes, want all %d written (its unflushed part too)", len(got), full+100)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if got := stored(); got != full+100 {
		t.Errorf("stored %d bytes after Close, want all %d", got, full+100)
	}
}

// readAll reads stdout of an attempt through s.
func readAll(t *testing.T, s tasklog.Store, a tasklog.Attempt) string {
	t.Helper()
	r, err := s.Open(t.Context(), a, pipeline.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTaskLogFailedCommitFailsTheWriter: when the database refuses the output, Write and Close
// return the error (the task fails with it) instead of losing output silently.
func TestTaskLogFailedCommitFailsTheWriter(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	url := pgtest.NewDatabase(t)
	s := openTest(t, url)
	logs := tasklog.NewLive(s.TaskLogs(TaskLogOptions{BatchBytes: 100}))
	if _, err := s.pool.Exec(t.Context(), `ALTER TABLE task_output RENAME TO task_output_gone`); err != nil {
		t.Fatal(err)
	}
	o, e, err := logs.Create(t.Context(), tasklog.Attempt{JobID: uuid.NewString(), Task: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var werr error
	for i := 0; i < 100 && werr == nil; i++ {
		_, werr = o.Write(bytes.Repeat([]byte("x"), 100))
	}
	cerr := o.Close()
	if werr == nil || cerr == nil {
		t.Errorf("Write = %v, Close = %v with the table gone; want both to fail", werr, cerr)
	}
}

// TestTaskLogNotifiesEachCommittedChunk: with Notify, every committed chunk sends the job's ID on
// OutputChannel, with the sending node, so that another node can wake its followers.
func TestTaskLogNotifiesEachCommittedChunk(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	listener, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(context.Background())
	if _, err := listener.Exec(ctx, "LISTEN "+OutputChannel); err != nil {
		t.Fatal(err)
	}
	quiet := tasklog.NewLive(openTest(t, url).TaskLogs(TaskLogOptions{}))
	logs := tasklog.NewLive(openTest(t, url).TaskLogs(TaskLogOptions{Notify: true}))
	silent := tasklog.Attempt{JobID: uuid.NewString(), Task: "t"}
	a := tasklog.Attempt{JobID: uuid.NewString(), Task: "t"}
	for _, w := range []struct {
		s tasklog.Store
		a tasklog.Attempt
	}{{quiet, silent}, {logs, a}} {
		o, e, err := w.s.Create(ctx, w.a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(o, "out\n"); err != nil {
			t.Fatal(err)
		}
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		e.Close()
	}
	n, err := listener.WaitForNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node, job, ok := ParseOutputPayload(n.Payload)
	if !ok || job != a.JobID || node != "" {
		t.Errorf("notification %q = node %q, job %q, %v; want job %s of the unregistered node", n.Payload, node, job, ok, a.JobID)
	}
}

// TestTaskLogListenOutputWakesTheFollowersOfAnotherNode: a node that listens for output
// notifications wakes its watchers of a job as soon as another node committed output of it.
func TestTaskLogListenOutputWakesTheFollowersOfAnotherNode(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	writer := tasklog.NewLive(openTest(t, url).TaskLogs(TaskLogOptions{Notify: true, FlushInterval: time.Millisecond}))
	readerStore := openTest(t, url)
	reader := tasklog.NewLive(readerStore.TaskLogs(TaskLogOptions{}))
	heard := make(chan string, 100)
	listening := make(chan struct{})
	go func() {
		_ = readerStore.ListenOutput(ctx, func(jobID string) {
			reader.Wake(jobID)
			select {
			case heard <- jobID:
			default:
			}
		})
		close(listening)
	}()
	a := tasklog.Attempt{JobID: uuid.NewString(), Task: "t", Number: 1}
	o, e, err := writer.Create(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	defer o.Close()
	// The listener may not be listening yet: write until it hears of the job.
	changed, release := reader.Watch(a.JobID)
	defer release()
	for woken := false; !woken; {
		if _, err := io.WriteString(o, "tick\n"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
			woken = true
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the other node's watcher was never woken by the output notifications")
		}
	}
	if got := <-heard; got != a.JobID {
		t.Errorf("heard of job %q, want %q", got, a.JobID)
	}
	cancel()
	<-listening
}
