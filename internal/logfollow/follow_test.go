package logfollow

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// fakeSource is a runner with one job whose task "t" the test changes, and whose follows the
// test feeds by hand: each FollowLog call is handed to the test on follows.
type fakeSource struct {
	mu      sync.Mutex
	job     pipeline.Job
	jobErr  error
	follows chan *followCall
}

// followCall is one FollowLog call: where it was asked to start, and the channel the test
// feeds (and closes).
type followCall struct {
	from [2]int64
	ch   chan pipeline.LogChunk
}

func newFakeSource(status pipeline.TaskStatus, attempt int) *fakeSource {
	return &fakeSource{
		job: pipeline.Job{
			ID: "job", Status: pipeline.JobRunning,
			Tasks: []pipeline.Task{{Name: "t", Status: status, Attempt: attempt}},
		},
		follows: make(chan *followCall),
	}
}

func (s *fakeSource) Job(context.Context, string) (*pipeline.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jobErr != nil {
		return nil, s.jobErr
	}
	j := s.job
	j.Tasks = append([]pipeline.Task(nil), s.job.Tasks...)
	return &j, nil
}

func (s *fakeSource) FollowLog(ctx context.Context, _, task string, from map[pipeline.LogStream]int64) (<-chan pipeline.LogChunk, error) {
	if task != "t" {
		return nil, pipeline.ErrTaskNotFound
	}
	c := &followCall{from: [2]int64{from[pipeline.Stdout], from[pipeline.Stderr]}, ch: make(chan pipeline.LogChunk, 16)}
	select {
	case s.follows <- c:
		return c.ch, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// setTask changes the task's record.
func (s *fakeSource) setTask(fn func(t *pipeline.Task)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.job.Tasks[0])
}

// run is one Follow in its own goroutine, with its events on a channel.
type run struct {
	events chan Event
	// err is Follow's result once done is closed.
	err    error
	done   chan struct{}
	cancel context.CancelFunc
}

// result waits for Follow to return and returns its result.
func (r *run) result(t *testing.T) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not return within 5s")
		return nil
	}
}

// start runs Follow of task "t" with short timings unless opts sets others.
func start(t *testing.T, src Source, opts Options) *run {
	t.Helper()
	if opts.Heartbeat == 0 {
		opts.Heartbeat = time.Hour
	}
	if opts.Refollow == 0 {
		opts.Refollow = time.Millisecond
	}
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{events: make(chan Event, 64), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(r.done)
		r.err = Follow(ctx, src, "job", "t", opts, func(ev Event) error {
			ev.Data = append([]byte(nil), ev.Data...) // Data is valid only during emit.
			select {
			case r.events <- ev:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		close(r.events)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Error("Follow did not return after its context ended")
		}
	})
	return r
}

// next returns the next event that is not a Heartbeat or Flush.
func (r *run) next(t *testing.T) Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-r.events:
			if !ok {
				t.Fatal("the follow ended; want another event")
			}
			if ev.Kind != Heartbeat && ev.Kind != Flush {
				return ev
			}
		case <-deadline:
			t.Fatal("no event within 5s")
		}
	}
}

// nextFollow returns the next FollowLog call.
func nextFollow(t *testing.T, s *fakeSource) *followCall {
	t.Helper()
	select {
	case c := <-s.follows:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no FollowLog call within 5s")
		return nil
	}
}

func out(stream pipeline.LogStream, data string, pos [2]int64) Event {
	return Event{Kind: Output, Stream: stream, Data: []byte(data), Pos: pos, Attempt: 1}
}

// wantEvent compares the fields of an event that a test sets.
func wantEvent(t *testing.T, got, want Event) {
	t.Helper()
	if got.Kind != want.Kind || got.Stream != want.Stream || string(got.Data) != string(want.Data) ||
		got.Pos != want.Pos || got.Attempt != want.Attempt || got.Restart != want.Restart {
		t.Errorf("event = {kind %d %s %q pos %v attempt %d restart %v}, want {kind %d %s %q pos %v attempt %d restart %v}",
			got.Kind, got.Stream, got.Data, got.Pos, got.Attempt, got.Restart,
			want.Kind, want.Stream, want.Data, want.Pos, want.Attempt, want.Restart)
	}
}

func TestFollowDeliversWholeCharactersWithOffsets(t *testing.T) {
	t.Parallel()
	src := newFakeSource(pipeline.TaskRunning, 1)
	r := start(t, src, Options{From: [2]int64{3, 1}})
	f := nextFollow(t, src)
	if f.from != [2]int64{3, 1} {
		t.Errorf("FollowLog from %v, want [3 1]", f.from)
	}
	euro := "€" // three bytes, split across three chunks
	f.ch <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: 3, Data: []byte("ab" + euro[:1])}
	wantEvent(t, r.next(t), out(pipeline.Stdout, "ab", [2]int64{5, 1}))
	f.ch <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: 6, Data: []byte(euro[1:2])}
	f.ch <- pipeline.LogChunk{Stream: pipeline.Stderr, Offset: 1, Data: []byte("err\n")}
	wantEvent(t, r.next(t), out(pipeline.Stderr, "err\n", [2]int64{5, 5}))
	f.ch <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: 7, Data: []byte(euro[2:] + "!\n")}
	wantEvent(t, r.next(t), out(pipeline.Stdout, euro+"!\n", [2]int64{10, 5}))
	// A chunk that overlaps what was delivered gives only the new part.
	f.ch <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: 8, Data: []byte("!\nmore\n")}
	wantEvent(t, r.next(t), out(pipeline.Stdout, "more\n", [2]int64{15, 5}))

	// The task ends: the follow closes, the next one starts where the output ends and finds
	// nothing more, and the End carries the final record.
	src.setTask(func(t *pipeline.Task) { t.Status, t.ExitCode = pipeline.TaskError, 3 })
	close(f.ch)
	f = nextFollow(t, src)
	if f.from != [2]int64{15, 5} {
		t.Errorf("FollowLog after the end from %v, want [15 5]", f.from)
	}
	close(f.ch)
	end := r.next(t)
	wantEvent(t, end, Event{Kind: End, Pos: [2]int64{15, 5}, Attempt: 1})
	if end.Task == nil || end.Task.Status != pipeline.TaskError || end.Task.ExitCode != 3 {
		t.Errorf("End task = %+v, want the final record", end.Task)
	}
	if err := r.result(t); err != nil {
		t.Errorf("Follow = %v, want nil", err)
	}
}

func TestFollowEndSendsACutCharacterAsItIs(t *testing.T) {
	t.Parallel()
	src := newFakeSource(pipeline.TaskDone, 1)
	r := start(t, src, Options{})
	f := nextFollow(t, src)
	f.ch <- pipeline.LogChunk{Stream: pipeline.Stderr, Offset: 0, Data: []byte("x\xe2\x82")}
	close(f.ch)
	wantEvent(t, r.next(t), out(pipeline.Stderr, "x", [2]int64{0, 1}))
	wantEvent(t, r.next(t), out(pipeline.Stderr, "\xe2\x82", [2]int64{0, 3}))
	wantEvent(t, r.next(t), Event{Kind: End, Pos: [2]int64{0, 3}, Attempt: 1})
}

func TestFollowSwitchesToTheNextAttempt(t *testing.T) {
	t.Parallel()
	src := newFakeSource(pipeline.TaskRunning, 1)
	r := start(t, src, Options{})
	f := nextFollow(t, src)
	f.ch <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: 0, Data: []byte("first\n")}
	wantEvent(t, r.next(t), out(pipeline.Stdout, "first\n", [2]int64{6, 0}))

	// Attempt 1 failed and attempt 2 started: the runner closes the follow of attempt 1.
	src.setTask(func(t *pipeline.Task) { t.Attempt = 2 })
	close(f.ch)
	wantEvent(t, r.next(t), Event{Kind: Attempt, Attempt: 2, Restart: true})
	f = nextFollow(t, src)
	if f.from != [2]int64{} {
		t.Errorf("FollowLog of attempt 2 from %v, want [0 0]", f.from)
	}
	f.ch <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: 0, Data: []byte("second\n")}
	want := out(pipeline.Stdout, "second\n", [2]int64{7, 0})
	want.Attempt = 2
	wantEvent(t, r.next(t), want)
}

// TestFollowLeavesAFollowOfALaterAttempt covers the runner knowing of attempt 2 a moment before
// its stored record does: a follow begun from attempt 1's offsets gets attempt 2's output, which
// must be followed again from its start, and the record that still says 1 must not switch back.
func TestFollowLeavesAFollowOfALaterAttempt(t *testing.T) {
	t.Parallel()
	src := newFakeSource(pipeline.TaskRunning, 1)
	r := start(t, src, Options{})
	f := nextFollow(t, src)
	f.ch <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: 0, Data: []byte("first\n"), Attempt: 1}
	wantEvent(t, r.next(t), out(pipeline.Stdout, "first\n", [2]int64{6, 0}))
	close(f.ch)

	f = nextFollow(t, src) // the record still says attempt 1; the runner follows attempt 2
	if f.from != [2]int64{6, 0} {
		t.Fatalf("FollowLog from %v, want [6 0]", f.from)
	}
	f.ch <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: 6, Data: []byte("output\n"), Attempt: 2}
	wantEvent(t, r.next(t), Event{Kind: Attempt, Attempt: 2, Restart: true})
	f = nextFollow(t, src)
	if f.from != [2]int64{} {
		t.Errorf("FollowLog of attempt 2 from %v, want [0 0]", f.from)
	}
	f.ch <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: 0, Data: []byte("second output\n"), Attempt: 2}
	want := out(pipeline.Stdout, "second output\n", [2]int64{14, 0})
	want.Attempt = 2
	wantEvent(t, r.next(t), want)
	close(f.ch)

	// The record is still behind: the next follow goes on with attempt 2.
	f = nextFollow(t, src)
	if f.from != [2]int64{14, 0} {
		t.Errorf("FollowLog from %v, want [14 0]", f.from)
	}
	src.setTask(func(t *pipeline.Task) { t.Attempt, t.Status = 2, pipeline.TaskDone })
	close(f.ch)
	close(nextFollow(t, src).ch)
	wantEvent(t, r.next(t), Event{Kind: End, Pos: [2]int64{14, 0}, Attempt: 2})
}

func TestFollowStartAttempt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		current  int
		from     [2]int64
		attempt  int
		want     *Event // nil: no Attempt event
		wantFrom [2]int64
	}{
		{"not retried", 1, [2]int64{4, 2}, 0, nil, [2]int64{4, 2}},
		{"retried before the follow: the offsets are the current attempt's", 3, [2]int64{4, 2}, 0,
			&Event{Kind: Attempt, Attempt: 3, Pos: [2]int64{4, 2}}, [2]int64{4, 2}},
		{"offsets of the current attempt", 2, [2]int64{4, 2}, 2, nil, [2]int64{4, 2}},
		{"offsets of an earlier attempt: the current one from the start", 2, [2]int64{4, 2}, 1,
			&Event{Kind: Attempt, Attempt: 2, Restart: true}, [2]int64{0, 0}},
		{"offsets of an attempt the task has not reached", 1, [2]int64{4, 2}, 5,
			&Event{Kind: Attempt, Attempt: 1, Restart: true}, [2]int64{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := newFakeSource(pipeline.TaskRunning, tt.current)
			r := start(t, src, Options{From: tt.from, Attempt: tt.attempt})
			f := nextFollow(t, src)
			if f.from != tt.wantFrom {
				t.Errorf("FollowLog from %v, want %v", f.from, tt.wantFrom)
			}
			f.ch <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: tt.wantFrom[0], Data: []byte("x")}
			if tt.want != nil {
				wantEvent(t, r.next(t), *tt.want)
			}
			wantEvent(t, r.next(t), Event{Kind: Output, Stream: pipeline.Stdout, Data: []byte("x"),
				Pos: [2]int64{tt.wantFrom[0] + 1, tt.wantFrom[1]}, Attempt: tt.current})
		})
	}
}

func TestFollowResumesAfterADrop(t *testing.T) {
	t.Parallel()
	src := newFakeSource(pipeline.TaskRunning, 1)
	// A long refollow delay: a follow that delivered output is followed again at once.
	r := start(t, src, Options{Refollow: time.Hour})
	f := nextFollow(t, src)
	f.ch <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: 0, Data: []byte("abc\xe2")}
	wantEvent(t, r.next(t), out(pipeline.Stdout, "abc", [2]int64{3, 0}))
	close(f.ch) // dropped for falling behind, the task goes on
	f = nextFollow(t, src)
	if f.from != [2]int64{3, 0} {
		t.Errorf("FollowLog after the drop from %v, want [3 0] (the carried byte comes again)", f.from)
	}
	f.ch <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: 3, Data: []byte("\xe2\x82\xac")}
	wantEvent(t, r.next(t), out(pipeline.Stdout, "€", [2]int64{6, 0}))
}

func TestFollowWaitsBeforeFollowingAgainWithoutOutput(t *testing.T) {
	t.Parallel()
	src := newFakeSource(pipeline.TaskWaiting, 0)
	const refollow = 50 * time.Millisecond
	start(t, src, Options{Refollow: refollow})
	f := nextFollow(t, src)
	close(f.ch) // not started yet: nothing to follow
	closed := time.Now()
	nextFollow(t, src)
	if waited := time.Since(closed); waited < refollow {
		t.Errorf("followed again after %v, want at least the refollow delay %v", waited, refollow)
	}
}

func TestFollowHeartbeatsWhileIdle(t *testing.T) {
	t.Parallel()
	src := newFakeSource(pipeline.TaskRunning, 1)
	r := start(t, src, Options{Heartbeat: 10 * time.Millisecond})
	f := nextFollow(t, src)
	for range 2 {
		select {
		case ev := <-r.events:
			if ev.Kind != Heartbeat {
				t.Fatalf("event kind %d while idle, want Heartbeat", ev.Kind)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no heartbeat within 5s")
		}
	}
	close(f.ch)
}

func TestFollowFlushesABatch(t *testing.T) {
	t.Parallel()
	src := newFakeSource(pipeline.TaskRunning, 1)
	r := start(t, src, Options{Batch: 20 * time.Millisecond})
	f := nextFollow(t, src)
	f.ch <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: 0, Data: []byte("a")}
	f.ch <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: 1, Data: []byte("b")}
	var kinds []Kind
	deadline := time.After(5 * time.Second)
	for len(kinds) < 3 {
		select {
		case ev := <-r.events:
			kinds = append(kinds, ev.Kind)
		case <-deadline:
			t.Fatalf("events %v, want Output, Output, Flush", kinds)
		}
	}
	if kinds[0] != Output || kinds[1] != Output || kinds[2] != Flush {
		t.Errorf("events %v, want Output, Output, Flush", kinds)
	}
}

func TestFollowStopsWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	src := newFakeSource(pipeline.TaskRunning, 1)
	r := start(t, src, Options{})
	nextFollow(t, src) // never closed: the follow waits for output
	r.cancel()
	if err := r.result(t); err != nil {
		t.Errorf("Follow = %v, want nil", err)
	}
	for ev := range r.events {
		if ev.Kind == End || ev.Kind == Error {
			t.Errorf("event kind %d after the context ended", ev.Kind)
		}
	}
}

func TestFollowReportsErrors(t *testing.T) {
	t.Parallel()
	src := newFakeSource(pipeline.TaskRunning, 1)
	src.jobErr = pipeline.ErrJobNotFound
	r := start(t, src, Options{})
	if ev := r.next(t); ev.Kind != Error || !errors.Is(ev.Err, pipeline.ErrJobNotFound) {
		t.Errorf("event = %+v, want an Error with ErrJobNotFound", ev)
	}
	if err := r.result(t); err != nil {
		t.Errorf("Follow = %v, want nil", err)
	}
}

func TestFollowReturnsTheConsumersError(t *testing.T) {
	t.Parallel()
	src := newFakeSource(pipeline.TaskDone, 1)
	gone := errors.New("client gone")
	done := make(chan error, 1)
	go func() {
		done <- Follow(context.Background(), src, "job", "t", Options{}, func(Event) error { return gone })
	}()
	f := nextFollow(t, src)
	f.ch <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: 0, Data: []byte("x")}
	select {
	case err := <-done:
		if !errors.Is(err, gone) {
			t.Errorf("Follow = %v, want the consumer's error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not return after emit failed")
	}
}
