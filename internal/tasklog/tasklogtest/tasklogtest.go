// Package tasklogtest is the conformance suite of tasklog.Store: every implementation (files, a
// database) runs Run against itself, and RunShared against two stores on the same data (two
// nodes), so that the runner, the API and the dashboard can rely on the contract written in
// package tasklog, whatever keeps the output.
package tasklogtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/tasklog"
)

// NewStore returns an empty store for one test; the test's cleanup releases it. Two stores
// returned for the same test must not share data unless the implementation is shared by nodes.
type NewStore func(t *testing.T) tasklog.Store

// Run runs every conformance test against the stores that newStore returns, in parallel.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s tasklog.Store)
	}{
		{"WrittenOutputReadsBackExactly", writtenOutputReadsBackExactly},
		{"AttemptWithoutOutputIsEmpty", attemptWithoutOutputIsEmpty},
		{"AttemptsStreamsTasksAndJobsAreSeparate", attemptsStreamsTasksAndJobsAreSeparate},
		{"AnyTaskNameIsKept", anyTaskNameIsKept},
		{"InvalidJobIDsAndStreamsAreRefused", invalidJobIDsAndStreamsAreRefused},
		{"ConcurrentWritesStayWhole", concurrentWritesStayWhole},
		{"OpenWhileWritingReadsWhatWasWritten", openWhileWritingReadsWhatWasWritten},
		{"CloseIsIdempotent", closeIsIdempotent},
		{"FollowOfFinishedAttemptFromOffsets", followOfFinishedAttemptFromOffsets},
		{"FollowDeliversLiveWritesUntilClose", followDeliversLiveWritesUntilClose},
		{"FollowSwitchFromStoredToLiveIsExact", followSwitchFromStoredToLiveIsExact},
		{"SlowFollowerIsDroppedAndNeverBlocksTheWriter", slowFollowerIsDroppedAndNeverBlocksTheWriter},
		{"FollowEndsWithItsContext", followEndsWithItsContext},
		{"FollowEndsWithTheErrorOfSend", followEndsWithTheErrorOfSend},
		{"WatchWakesOnCreateAndOnClose", watchWakesOnCreateAndOnClose},
		{"DeleteJobRemovesOnlyThatJob", deleteJobRemovesOnlyThatJob},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// newJobID returns a job ID that no other test uses, also in a shared database: a random UUID,
// as the runner's.
func newJobID() string { return uuid.NewString() }

// ctxOf returns a context that ends with the test or after a minute.
func ctxOf(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// create returns the writers of an attempt, failing the test on an error.
func create(t *testing.T, s tasklog.Store, a tasklog.Attempt) (stdout, stderr io.WriteCloser) {
	t.Helper()
	stdout, stderr, err := s.Create(ctxOf(t), a)
	if err != nil {
		t.Fatalf("Create(%v): %v", a, err)
	}
	return stdout, stderr
}

// write writes p, failing the test on an error or a short write.
func write(t *testing.T, w io.Writer, p string) {
	t.Helper()
	if n, err := io.WriteString(w, p); err != nil || n != len(p) {
		t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
	}
}

// closeBoth closes both writers, failing the test on an error.
func closeBoth(t *testing.T, stdout, stderr io.Closer) {
	t.Helper()
	if err := stdout.Close(); err != nil {
		t.Fatalf("stdout Close: %v", err)
	}
	if err := stderr.Close(); err != nil {
		t.Fatalf("stderr Close: %v", err)
	}
}

// writeAttempt writes a whole attempt: stdout and stderr, then closes both.
func writeAttempt(t *testing.T, s tasklog.Store, a tasklog.Attempt, stdout, stderr string) {
	t.Helper()
	o, e := create(t, s, a)
	if stdout != "" {
		write(t, o, stdout)
	}
	if stderr != "" {
		write(t, e, stderr)
	}
	closeBoth(t, o, e)
}

// read returns a stream as Open reads it, and checks that Stat's size agrees.
func read(t *testing.T, s tasklog.Store, a tasklog.Attempt, stream pipeline.LogStream) string {
	t.Helper()
	r, err := s.Open(ctxOf(t), a, stream)
	if err != nil {
		t.Fatalf("Open(%v, %s): %v", a, stream, err)
	}
	defer r.Close()
	st, err := r.Stat()
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %v %s: %v", a, stream, err)
	}
	if st.Size() != int64(len(b)) {
		t.Errorf("%v %s: Stat().Size() = %d, but %d bytes were read", a, stream, st.Size(), len(b))
	}
	return string(b)
}

// followed is what one Follow call delivered.
type followed struct {
	mu   sync.Mutex
	from [2]int64
	data [2]bytes.Buffer
	errs []string
}

// sendFunc returns a send that collects the chunks and checks that they follow each other.
func (f *followed) sendFunc(attempt int) func(pipeline.LogChunk) error {
	return func(c pipeline.LogChunk) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		i := streamIndex(c.Stream)
		if i < 0 {
			f.errs = append(f.errs, fmt.Sprintf("chunk of stream %q", c.Stream))
			return nil
		}
		if want := f.from[i] + int64(f.data[i].Len()); c.Offset != want {
			f.errs = append(f.errs, fmt.Sprintf("%s chunk at offset %d, want %d", c.Stream, c.Offset, want))
		}
		if c.Attempt != attempt {
			f.errs = append(f.errs, fmt.Sprintf("%s chunk of attempt %d, want %d", c.Stream, c.Attempt, attempt))
		}
		if len(c.Data) == 0 {
			f.errs = append(f.errs, fmt.Sprintf("empty %s chunk", c.Stream))
		}
		f.data[i].Write(c.Data)
		return nil
	}
}

// got returns what stream i received so far.
func (f *followed) got(i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.data[i].String()
}

// check reports the chunks that broke the contract.
func (f *followed) check(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.errs {
		t.Error(e)
	}
}

func streamIndex(s pipeline.LogStream) int {
	for i, x := range tasklog.Streams {
		if x == s {
			return i
		}
	}
	return -1
}

// follow runs Follow to its end and returns what it delivered, the offsets and the error.
func follow(t *testing.T, ctx context.Context, s tasklog.Store, a tasklog.Attempt, from [2]int64) (*followed, [2]int64, error) {
	t.Helper()
	f := &followed{from: from}
	pos, err := s.Follow(ctx, a, from, f.sendFunc(max(a.Number, 1)))
	f.check(t)
	return f, pos, err
}

func writtenOutputReadsBackExactly(t *testing.T, s tasklog.Store) {
	a := tasklog.Attempt{JobID: newJobID(), Task: "build", Number: 1}
	o, e := create(t, s, a)
	var want strings.Builder
	for i := range 300 {
		line := fmt.Sprintf("line %d %s\n", i, strings.Repeat("x", i%97))
		want.WriteString(line)
		write(t, o, line)
	}
	write(t, e, "warning\n")
	closeBoth(t, o, e)

	if got := read(t, s, a, pipeline.Stdout); got != want.String() {
		t.Errorf("stdout: got %d bytes, want the %d written", len(got), want.Len())
	}
	if got := read(t, s, a, pipeline.Stderr); got != "warning\n" {
		t.Errorf("stderr = %q, want %q", got, "warning\n")
	}

	r, err := s.Open(ctxOf(t), a, pipeline.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 10)
	off := int64(want.Len() / 2)
	if n, err := r.ReadAt(buf, off); n != len(buf) || err != nil && err != io.EOF {
		t.Fatalf("ReadAt(%d) = %d, %v", off, n, err)
	}
	if string(buf) != want.String()[off:off+10] {
		t.Errorf("ReadAt(%d) = %q, want %q", off, buf, want.String()[off:off+10])
	}
	if _, err := r.Seek(off, io.SeekStart); err != nil {
		t.Fatalf("Seek: %v", err)
	}
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != want.String()[off:] {
		t.Errorf("read after Seek(%d): %d bytes, %v; want the %d from there", off, len(rest), err, want.Len()-int(off))
	}
}

func attemptWithoutOutputIsEmpty(t *testing.T, s tasklog.Store) {
	silent := tasklog.Attempt{JobID: newJobID(), Task: "quiet", Number: 1}
	writeAttempt(t, s, silent, "", "")
	never := tasklog.Attempt{JobID: newJobID(), Task: "never", Number: 1}
	for _, a := range []tasklog.Attempt{silent, never} {
		for _, stream := range tasklog.Streams {
			if got := read(t, s, a, stream); got != "" {
				t.Errorf("%v %s = %q, want empty", a, stream, got)
			}
		}
		f, pos, err := follow(t, ctxOf(t), s, a, [2]int64{0, 7})
		if err != nil || pos != [2]int64{0, 7} || f.got(0) != "" || f.got(1) != "" {
			t.Errorf("Follow(%v) = %v, %v and %q/%q; want nil, the offsets given and nothing", a, pos, err, f.got(0), f.got(1))
		}
	}
}

func attemptsStreamsTasksAndJobsAreSeparate(t *testing.T, s tasklog.Store) {
	job, other := newJobID(), newJobID()
	writeAttempt(t, s, tasklog.Attempt{JobID: job, Task: "t", Number: 1}, "t1 out\n", "t1 err\n")
	writeAttempt(t, s, tasklog.Attempt{JobID: job, Task: "t", Number: 2}, "t2 out\n", "t2 err\n")
	writeAttempt(t, s, tasklog.Attempt{JobID: job, Task: "u", Number: 1}, "u out\n", "")
	writeAttempt(t, s, tasklog.Attempt{JobID: other, Task: "t", Number: 1}, "other\n", "")
	tests := []struct {
		a      tasklog.Attempt
		stream pipeline.LogStream
		want   string
	}{
		{tasklog.Attempt{JobID: job, Task: "t", Number: 0}, pipeline.Stdout, "t1 out\n"}, // 0 means 1
		{tasklog.Attempt{JobID: job, Task: "t", Number: 1}, pipeline.Stdout, "t1 out\n"},
		{tasklog.Attempt{JobID: job, Task: "t", Number: 1}, pipeline.Stderr, "t1 err\n"},
		{tasklog.Attempt{JobID: job, Task: "t", Number: 2}, pipeline.Stdout, "t2 out\n"},
		{tasklog.Attempt{JobID: job, Task: "t", Number: 2}, pipeline.Stderr, "t2 err\n"},
		{tasklog.Attempt{JobID: job, Task: "t", Number: 3}, pipeline.Stdout, ""},
		{tasklog.Attempt{JobID: job, Task: "u", Number: 1}, pipeline.Stdout, "u out\n"},
		{tasklog.Attempt{JobID: job, Task: "u", Number: 1}, pipeline.Stderr, ""},
		{tasklog.Attempt{JobID: other, Task: "t", Number: 1}, pipeline.Stdout, "other\n"},
		{tasklog.Attempt{JobID: other, Task: "u", Number: 1}, pipeline.Stdout, ""},
	}
	for _, tt := range tests {
		if got := read(t, s, tt.a, tt.stream); got != tt.want {
			t.Errorf("%v %s = %q, want %q", tt.a, tt.stream, got, tt.want)
		}
	}
}

func anyTaskNameIsKept(t *testing.T, s tasklog.Store) {
	job := newJobID()
	names := []string{"a/b", "../escape", ".", "..", "with\x00nul", "ünïcödé 名前", "a b\tc\n", strings.Repeat("n", 100), "A", "a"}
	for i, name := range names {
		writeAttempt(t, s, tasklog.Attempt{JobID: job, Task: name, Number: 1}, fmt.Sprintf("task %d\n", i), "")
	}
	for i, name := range names {
		if got, want := read(t, s, tasklog.Attempt{JobID: job, Task: name, Number: 1}, pipeline.Stdout), fmt.Sprintf("task %d\n", i); got != want {
			t.Errorf("task %q: stdout = %q, want %q", name, got, want)
		}
	}
}

func invalidJobIDsAndStreamsAreRefused(t *testing.T, s tasklog.Store) {
	ctx := ctxOf(t)
	for _, id := range []string{"", "a/b", `a\b`, "..", "a.b", "x\x00y"} {
		a := tasklog.Attempt{JobID: id, Task: "t", Number: 1}
		if _, _, err := s.Create(ctx, a); !errors.Is(err, pipeline.ErrJobNotFound) {
			t.Errorf("Create(job %q): error = %v, want ErrJobNotFound", id, err)
		}
		if _, err := s.Open(ctx, a, pipeline.Stdout); !errors.Is(err, pipeline.ErrJobNotFound) {
			t.Errorf("Open(job %q): error = %v, want ErrJobNotFound", id, err)
		}
		if _, err := s.Follow(ctx, a, [2]int64{}, func(pipeline.LogChunk) error { return nil }); !errors.Is(err, pipeline.ErrJobNotFound) {
			t.Errorf("Follow(job %q): error = %v, want ErrJobNotFound", id, err)
		}
		if err := s.DeleteJob(ctx, id); !errors.Is(err, pipeline.ErrJobNotFound) {
			t.Errorf("DeleteJob(%q): error = %v, want ErrJobNotFound", id, err)
		}
	}
	a := tasklog.Attempt{JobID: newJobID(), Task: "t", Number: 1}
	for _, stream := range []pipeline.LogStream{"", "stdin", "STDOUT", "../stdout"} {
		if _, err := s.Open(ctx, a, stream); !errors.Is(err, pipeline.ErrTaskNotFound) {
			t.Errorf("Open(stream %q): error = %v, want ErrTaskNotFound", stream, err)
		}
	}
}

func concurrentWritesStayWhole(t *testing.T, s tasklog.Store) {
	a := tasklog.Attempt{JobID: newJobID(), Task: "pipeline", Number: 1}
	o, e := create(t, s, a)
	const writers, lines = 8, 200
	var wg sync.WaitGroup
	line := func(g, i int) string {
		return fmt.Sprintf("writer %d line %03d %s", g, i, strings.Repeat("z", (g*31+i)%200))
	}
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				if _, err := io.WriteString(o, line(g, i)+"\n"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	closeBoth(t, o, e)
	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(read(t, s, a, pipeline.Stdout), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	for _, l := range got {
		var g, i int
		if _, err := fmt.Sscanf(l, "writer %d line %d", &g, &i); err != nil || g < 0 || g >= writers {
			t.Fatalf("line %q was torn by another write", l)
		}
		if want := line(g, next[g]); l != want {
			t.Fatalf("got line %q, want %q: torn, or out of the writer's order", l, want)
		}
		next[g]++
	}
}

func openWhileWritingReadsWhatWasWritten(t *testing.T, s tasklog.Store) {
	a := tasklog.Attempt{JobID: newJobID(), Task: "running", Number: 1}
	o, e := create(t, s, a)
	defer closeBoth(t, o, e)
	write(t, o, "first\n")
	if got := read(t, s, a, pipeline.Stdout); got != "first\n" {
		t.Errorf("while writing: stdout = %q, want %q", got, "first\n")
	}
	write(t, o, "second\n")
	if got := read(t, s, a, pipeline.Stdout); got != "first\nsecond\n" {
		t.Errorf("while writing: stdout = %q, want %q", got, "first\nsecond\n")
	}
}

func closeIsIdempotent(t *testing.T, s tasklog.Store) {
	a := tasklog.Attempt{JobID: newJobID(), Task: "t", Number: 1}
	o, e := create(t, s, a)
	write(t, o, "x")
	closeBoth(t, o, e)
	closeBoth(t, o, e)
	if got := read(t, s, a, pipeline.Stdout); got != "x" {
		t.Errorf("stdout = %q, want %q", got, "x")
	}
}

func followOfFinishedAttemptFromOffsets(t *testing.T, s tasklog.Store) {
	a := tasklog.Attempt{JobID: newJobID(), Task: "done", Number: 2}
	// More than one read piece of any sensible implementation.
	out := strings.Repeat("0123456789abcdef", 20000)
	writeAttempt(t, s, a, out, "err\n")
	tests := []struct {
		from [2]int64
		want [2]string
	}{
		{[2]int64{0, 0}, [2]string{out, "err\n"}},
		{[2]int64{3, 1}, [2]string{out[3:], "rr\n"}},
		{[2]int64{int64(len(out)), 4}, [2]string{"", ""}},
		{[2]int64{int64(len(out)) + 100, 1000}, [2]string{"", ""}},
	}
	for _, tt := range tests {
		f, pos, err := follow(t, ctxOf(t), s, a, tt.from)
		if err != nil {
			t.Errorf("Follow from %v: %v", tt.from, err)
		}
		if f.got(0) != tt.want[0] || f.got(1) != tt.want[1] {
			t.Errorf("Follow from %v: got %d/%q bytes, want %d/%q", tt.from, len(f.got(0)), f.got(1), len(tt.want[0]), tt.want[1])
		}
		wantPos := [2]int64{max(tt.from[0], int64(len(out))), max(tt.from[1], 4)}
		if pos != wantPos {
			t.Errorf("Follow from %v returned offsets %v, want %v", tt.from, pos, wantPos)
		}
	}
}

// waitFor waits until cond holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func followDeliversLiveWritesUntilClose(t *testing.T, s tasklog.Store) {
	a := tasklog.Attempt{JobID: newJobID(), Task: "live", Number: 1}
	o, e := create(t, s, a)
	write(t, o, "before\n")
	f := &followed{}
	done := make(chan error, 1)
	var pos [2]int64
	go func() {
		var err error
		pos, err = s.Follow(ctxOf(t), a, [2]int64{}, f.sendFunc(1))
		done <- err
	}()
	waitFor(t, "the output written before Follow", func() bool { return f.got(0) == "before\n" })
	// Each write arrives while the writer is open: live, not after the end.
	var want strings.Builder
	want.WriteString("before\n")
	for i := range 5 {
		line := fmt.Sprintf("live %d\n", i)
		want.WriteString(line)
		write(t, o, line)
		waitFor(t, "a live write", func() bool { return f.got(0) == want.String() })
		write(t, e, line)
		waitFor(t, "a live write to stderr", func() bool { return strings.HasSuffix(f.got(1), line) })
	}
	select {
	case err := <-done:
		t.Fatalf("Follow returned (%v) while the writers were open", err)
	case <-time.After(20 * time.Millisecond):
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	write(t, e, "last\n")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Follow = %v after both writers were closed, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not return after both writers were closed")
	}
	f.check(t)
	if f.got(0) != want.String() || !strings.HasSuffix(f.got(1), "live 4\nlast\n") {
		t.Errorf("followed %q / %q", f.got(0), f.got(1))
	}
	if wantPos := [2]int64{int64(want.Len()), int64(len(f.got(1)))}; pos != wantPos {
		t.Errorf("Follow returned offsets %v, want %v", pos, wantPos)
	}
}

// followSwitchFromStoredToLiveIsExact starts followers at random moments (and offsets) while two
// streams are written concurrently: each must get exactly the bytes of the stream from its
// offset, with no gap or duplicate where reading what is stored hands over to the live writes.
func followSwitchFromStoredToLiveIsExact(t *testing.T, s tasklog.Store) {
	a := tasklog.Attempt{JobID: newJobID(), Task: "busy", Number: 1}
	stdout, stderr := create(t, s, a)
	const followers = 16
	type result struct {
		f   *followed
		err error
	}
	results := make([]*result, followers)
	var written [2]atomic.Int64
	var wg, writers sync.WaitGroup
	start := make(chan int, 64)
	for i, w := range []io.Writer{stdout, stderr} {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for n := range 2000 {
				// Varying sizes, sometimes larger than a read piece.
				size := 1 + (n*7919)%4096
				if n%500 == 0 {
					size = 40000
				}
				p := bytes.Repeat([]byte{byte('a' + (n+i)%26)}, size)
				p[len(p)-1] = '\n'
				if _, err := w.Write(p); err != nil {
					t.Error(err)
					return
				}
				written[i].Add(int64(size))
				if n%100 == 0 && i == 0 {
					start <- n / 100 // start a follower now and then
				}
				// About as fast as a busy task's output; much faster, and every follower is
				// dropped for falling behind (as it should be) before the switch is tested.
				time.Sleep(100 * time.Microsecond)
			}
		}()
	}
	go func() { writers.Wait(); close(start) }()
	for k := range start {
		if k >= followers {
			continue
		}
		res := &result{f: &followed{}}
		results[k] = res
		size := written[0].Load()
		// Some start at 0, some in the middle of what was written, some beyond the end.
		switch k % 3 {
		case 1:
			res.f.from = [2]int64{size / 2, size / 3}
		case 2:
			res.f.from = [2]int64{size + 5000, 0}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, res.err = s.Follow(ctxOf(t), a, res.f.from, res.f.sendFunc(1))
		}()
	}
	writers.Wait()
	closeBoth(t, stdout, stderr)
	wg.Wait()

	streams := [2]string{read(t, s, a, pipeline.Stdout), read(t, s, a, pipeline.Stderr)}
	checked, dropped := 0, 0
	for k, res := range results {
		if res == nil {
			continue
		}
		checked++
		res.f.check(t)
		if res.err != nil && !errors.Is(res.err, tasklog.ErrFellBehind) {
			t.Errorf("follower %d: Follow = %v", k, res.err)
		}
		if res.err != nil {
			dropped++
		}
		for i := range 2 {
			want := streams[i][min(res.f.from[i], int64(len(streams[i]))):]
			got := res.f.got(i)
			if res.err != nil {
				// Dropped for falling behind: what it got must still be an exact prefix.
				want = want[:min(len(want), len(got))]
			}
			if got != want {
				t.Errorf("follower %d (from %v, error %v): %s got %d bytes, want %d", k, res.f.from, res.err, tasklog.Streams[i], len(got), len(want))
			}
		}
	}
	t.Logf("%d followers, %d dropped for falling behind", checked, dropped)
	if checked < followers/2 || dropped > checked/2 {
		t.Errorf("%d followers ran, %d were dropped: the switch was hardly tested", checked, dropped)
	}
}

func slowFollowerIsDroppedAndNeverBlocksTheWriter(t *testing.T, s tasklog.Store) {
	a := tasklog.Attempt{JobID: newJobID(), Task: "flood", Number: 1}
	o, e := create(t, s, a)
	write(t, o, "start\n")
	release := make(chan struct{})
	f := &followed{}
	collect := f.sendFunc(1)
	blocked := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		_, err := s.Follow(ctxOf(t), a, [2]int64{}, func(c pipeline.LogChunk) error {
			once.Do(func() { close(blocked) })
			<-release // a reader that does not read
			return collect(c)
		})
		done <- err
	}()
	<-blocked
	// 16 MiB while the follower takes nothing: every write must return, and soon.
	p := bytes.Repeat([]byte("y"), 16<<10)
	p[len(p)-1] = '\n'
	t0 := time.Now()
	for range 1024 {
		if _, err := o.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(t0); d > 30*time.Second {
		t.Errorf("16 MiB took %v to write with a stuck follower: the writer waited for it", d)
	}
	closeBoth(t, o, e)
	close(release)
	select {
	case err := <-done:
		if !errors.Is(err, tasklog.ErrFellBehind) {
			t.Errorf("Follow of a stuck follower = %v, want ErrFellBehind", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stuck follower's Follow did not return")
	}
	f.check(t)
	whole := read(t, s, a, pipeline.Stdout)
	if got := f.got(0); !strings.HasPrefix(whole, got) || len(got) >= len(whole) {
		t.Errorf("the dropped follower got %d bytes, want a strict prefix of the %d written", len(got), len(whole))
	}
}

func followEndsWithItsContext(t *testing.T, s tasklog.Store) {
	a := tasklog.Attempt{JobID: newJobID(), Task: "quiet", Number: 1}
	o, e := create(t, s, a)
	defer closeBoth(t, o, e)
	write(t, o, "hello\n")
	ctx, cancel := context.WithCancel(ctxOf(t))
	f := &followed{}
	done := make(chan error, 1)
	go func() {
		_, err := s.Follow(ctx, a, [2]int64{}, f.sendFunc(1))
		done <- err
	}()
	waitFor(t, "the output written", func() bool { return f.got(0) == "hello\n" })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Follow after its context ended = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not return when its context ended")
	}
}

func followEndsWithTheErrorOfSend(t *testing.T, s tasklog.Store) {
	a := tasklog.Attempt{JobID: newJobID(), Task: "t", Number: 1}
	writeAttempt(t, s, a, "one\n", "")
	errGone := errors.New("reader went away")
	_, err := s.Follow(ctxOf(t), a, [2]int64{}, func(pipeline.LogChunk) error { return errGone })
	if !errors.Is(err, errGone) {
		t.Errorf("Follow = %v, want the error of send", err)
	}
	live := tasklog.Attempt{JobID: newJobID(), Task: "t", Number: 1}
	o, e := create(t, s, live)
	defer closeBoth(t, o, e)
	done := make(chan error, 1)
	go func() {
		_, err := s.Follow(ctxOf(t), live, [2]int64{}, func(pipeline.LogChunk) error { return errGone })
		done <- err
	}()
	write(t, o, "two\n")
	select {
	case err := <-done:
		if !errors.Is(err, errGone) {
			t.Errorf("live Follow = %v, want the error of send", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("live Follow did not return after send failed")
	}
}

// closed reports whether ch is closed, waiting a little for it.
func closed(ch <-chan struct{}, wait time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(wait):
		return false
	}
}

func watchWakesOnCreateAndOnClose(t *testing.T, s tasklog.Store) {
	job, other := newJobID(), newJobID()
	created, release := s.Watch(job)
	defer release()
	unrelated, releaseOther := s.Watch(other)
	defer releaseOther()
	o, e := create(t, s, tasklog.Attempt{JobID: job, Task: "t", Number: 1})
	if !closed(created, 10*time.Second) {
		t.Fatal("Watch was not woken when an attempt of the job was created")
	}
	ended, release2 := s.Watch(job)
	defer release2()
	write(t, o, "x")
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if closed(ended, 50*time.Millisecond) {
		t.Error("Watch was woken when one writer of two was closed")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if !closed(ended, 10*time.Second) {
		t.Error("Watch was not woken when both writers were closed")
	}
	if closed(unrelated, 50*time.Millisecond) {
		t.Error("Watch of another job was woken")
	}
}

func deleteJobRemovesOnlyThatJob(t *testing.T, s tasklog.Store) {
	gone, kept := newJobID(), newJobID()
	for _, job := range []string{gone, kept} {
		writeAttempt(t, s, tasklog.Attempt{JobID: job, Task: "t", Number: 1}, "out "+job, "err "+job)
		writeAttempt(t, s, tasklog.Attempt{JobID: job, Task: "t", Number: 2}, "again "+job, "")
	}
	ctx := ctxOf(t)
	if err := s.DeleteJob(ctx, gone); err != nil {
		t.Fatalf("DeleteJob: %v", err)
	}
	for _, n := range []int{1, 2} {
		for _, stream := range tasklog.Streams {
			if got := read(t, s, tasklog.Attempt{JobID: gone, Task: "t", Number: n}, stream); got != "" {
				t.Errorf("deleted job: attempt %d %s = %q, want empty", n, stream, got)
			}
		}
	}
	if got := read(t, s, tasklog.Attempt{JobID: kept, Task: "t", Number: 1}, pipeline.Stdout); got != "out "+kept {
		t.Errorf("the other job's output = %q, want it kept", got)
	}
	if err := s.DeleteJob(ctx, gone); err != nil {
		t.Errorf("DeleteJob of a deleted job: %v, want nil", err)
	}
	if err := s.DeleteJob(ctx, newJobID()); err != nil {
		t.Errorf("DeleteJob of a job without output: %v, want nil", err)
	}
}

// NewNodes returns two stores on the same data, as two nodes (or two processes, one after the
// other) see it: what one stores, the other reads. The test's cleanup releases them.
type NewNodes func(t *testing.T) (a, b tasklog.Store)

// RunShared runs the conformance tests of output shared between nodes: output written on one is
// read, followed (by polling what is stored) and deleted through the other.
func RunShared(t *testing.T, newNodes NewNodes) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b tasklog.Store)
	}{
		{"ClosedOutputReadsTheSameOnEveryNode", closedOutputReadsTheSameOnEveryNode},
		{"FollowOnAnotherNodeSendsWhatIsStoredAndReturns", followOnAnotherNodeSendsWhatIsStoredAndReturns},
		{"DeleteJobOnOneNodeDeletesForAll", deleteJobOnOneNodeDeletesForAll},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := newNodes(t)
			tt.fn(t, a, b)
		})
	}
}

func closedOutputReadsTheSameOnEveryNode(t *testing.T, writer, reader tasklog.Store) {
	a := tasklog.Attempt{JobID: newJobID(), Task: "t", Number: 2}
	out := strings.Repeat("shared output\n", 5000)
	writeAttempt(t, writer, a, out, "err\n")
	if got := read(t, reader, a, pipeline.Stdout); got != out {
		t.Errorf("the other node reads %d bytes, want the %d written", len(got), len(out))
	}
	f, pos, err := follow(t, ctxOf(t), reader, a, [2]int64{5, 0})
	if err != nil || f.got(0) != out[5:] || f.got(1) != "err\n" || pos != [2]int64{int64(len(out)), 4} {
		t.Errorf("Follow on the other node = %v, %v, %d/%q bytes; want nil, the ends, everything", pos, err, len(f.got(0)), f.got(1))
	}
}

func followOnAnotherNodeSendsWhatIsStoredAndReturns(t *testing.T, writer, reader tasklog.Store) {
	a := tasklog.Attempt{JobID: newJobID(), Task: "t", Number: 1}
	o, e := create(t, writer, a)
	write(t, o, "first\n")
	done := make(chan struct{})
	var f *followed
	var pos [2]int64
	var err error
	go func() {
		defer close(done)
		f, pos, err = follow(t, ctxOf(t), reader, a, [2]int64{})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Follow on a node that does not write the attempt waited for the writers")
	}
	if err != nil || !strings.HasPrefix("first\n", f.got(0)) || pos[0] != int64(len(f.got(0))) {
		t.Errorf("Follow on the other node = %v, %v, %q; want nil and what is stored (a prefix of %q)", pos, err, f.got(0), "first\n")
	}
	write(t, o, "second\n")
	closeBoth(t, o, e)
	// Closed: everything is stored, and a follow from where the last one ended gets the rest.
	rest, _, err := follow(t, ctxOf(t), reader, a, pos)
	if got := f.got(0) + rest.got(0); err != nil || got != "first\nsecond\n" {
		t.Errorf("following again after the writers closed: %v, %q in all; want %q", err, got, "first\nsecond\n")
	}
}

func deleteJobOnOneNodeDeletesForAll(t *testing.T, writer, deleter tasklog.Store) {
	a := tasklog.Attempt{JobID: newJobID(), Task: "t", Number: 1}
	writeAttempt(t, writer, a, "out\n", "err\n")
	if err := deleter.DeleteJob(ctxOf(t), a.JobID); err != nil {
		t.Fatal(err)
	}
	for _, s := range []tasklog.Store{writer, deleter} {
		if got := read(t, s, a, pipeline.Stdout); got != "" {
			t.Errorf("after DeleteJob on one node: stdout = %q, want empty", got)
		}
	}
}
