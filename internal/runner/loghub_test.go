package runner

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

func TestLogHubDropsFullSubscriberWithoutBlocking(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	outputs := newLiveOutputs()
	stdout, stderr := outputs.open(filepath.Join(dir, "t.stdout"), filepath.Join(dir, "t.stderr"))
	defer stderr.Close()

	stuck, _ := stdout.subscribe()
	reader, _ := stdout.subscribe()
	var got bytes.Buffer
	drain := func() {
		for {
			select {
			case c, open := <-reader.ch:
				if !open {
					return
				}
				reader.taken(c)
				got.Write(c.Data)
			default:
				return
			}
		}
	}

	// Far more than a subscriber may hold: the stuck one must be dropped, the writer must never
	// wait for it, and the one that reads after each write must get everything.
	var want bytes.Buffer
	line := bytes.Repeat([]byte("x"), 1000)
	for i := range 4 * subscriberChunks {
		p := fmt.Appendf(nil, "%05d %s\n", i, line)
		want.Write(p)
		if _, err := stdout.Write(p); err != nil {
			t.Fatal(err)
		}
		drain()
	}
	if err := stdout.Close(); err != nil {
		t.Fatal(err)
	}
	drain()
	if _, open := <-reader.ch; open {
		t.Error("the reading subscriber's channel is open after Close")
	}

	if !stuck.dropped.Load() {
		t.Error("the subscriber that never read was not dropped")
	}
	n := 0
	for c := range stuck.ch { // closed after what it holds
		n += len(c.Data)
	}
	if n > subscriberBytes+1100 {
		t.Errorf("the dropped subscriber held %d bytes, want at most about %d", n, subscriberBytes)
	}
	if reader.dropped.Load() {
		t.Error("the reading subscriber was dropped")
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Errorf("the reading subscriber got %d bytes, want the %d written", got.Len(), want.Len())
	}
	if stdout.hub.subscribe() != nil {
		t.Error("a closed hub accepted a subscriber")
	}
	if outputs.lookup(filepath.Join(dir, "t.stdout")) == nil {
		t.Error("the task output was unregistered before both writers were closed")
	}
	_ = stderr.Close()
	if outputs.lookup(filepath.Join(dir, "t.stdout")) != nil {
		t.Error("the task output is still registered after both writers were closed")
	}
}

func TestLogHubUnsubscribeAndCloseTwice(t *testing.T) {
	t.Parallel()
	w := &logWriter{path: filepath.Join(t.TempDir(), "x.stdout"), hub: logHub{stream: pipeline.Stdout}}
	s, size := w.subscribe()
	if size != 0 {
		t.Fatalf("size = %d, want 0", size)
	}
	w.unsubscribe(s)
	w.unsubscribe(s) // no double close
	if _, err := w.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, open := <-s.ch; open {
		t.Error("unsubscribed channel still open")
	}
	calls := 0
	w.onClose = func() { calls++ }
	_ = w.Close()
	_ = w.Close()
	if calls != 1 {
		t.Errorf("onClose called %d times, want 1", calls)
	}
}

// testFollower returns a follower of the files in dir without a job behind it.
func testFollower(dir string, from [2]int64) *follower {
	return &follower{
		r:     &Runner{log: slog.New(slog.NewTextHandler(io.Discard, nil)), outputs: newLiveOutputs()},
		jobID: "test",
		task:  "t",
		paths: [2]string{filepath.Join(dir, "t.stdout"), filepath.Join(dir, "t.stderr")},
		pos:   from,
		out:   make(chan pipeline.LogChunk),
	}
}

// TestFollowLiveSwitchFromDiskIsExact starts followers at random moments (and offsets) while two
// streams are written concurrently: each must get exactly the bytes of the file from its offset,
// with no gap or duplicate where reading the file hands over to the live writes.
func TestFollowLiveSwitchFromDiskIsExact(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	outputs := newLiveOutputs()
	stdout, stderr := outputs.open(filepath.Join(dir, "t.stdout"), filepath.Join(dir, "t.stderr"))
	o := outputs.lookup(filepath.Join(dir, "t.stdout"))

	const followers = 16
	type result struct {
		from [2]int64
		data [2]bytes.Buffer
		ok   bool
	}
	results := make([]*result, followers)
	var wg sync.WaitGroup
	start := make(chan int, 64)

	var writers sync.WaitGroup
	for i, w := range []*logWriter{stdout, stderr} {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for n := range 2000 {
				// Varying sizes, sometimes larger than a read piece of the file.
				size := 1 + (n*7919)%(followChunkSize/8)
				if n%500 == 0 {
					size = followChunkSize + 17
				}
				p := bytes.Repeat([]byte{byte('a' + (n+i)%26)}, size)
				p[len(p)-1] = '\n'
				if _, err := w.Write(p); err != nil {
					t.Error(err)
					return
				}
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
		res := &result{}
		results[k] = res
		// Some start at 0, some in the middle of what was written, some beyond the end.
		stdout.mu.Lock()
		size := stdout.size
		stdout.mu.Unlock()
		switch k % 3 {
		case 1:
			res.from = [2]int64{size / 2, size / 3}
		case 2:
			res.from = [2]int64{size + 5000, 0}
		}
		f := testFollower(dir, res.from)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for c := range f.out {
				i := 0
				if c.Stream == pipeline.Stderr {
					i = 1
				}
				if want := res.from[i] + int64(res.data[i].Len()); c.Offset != want {
					t.Errorf("follower %d: %s chunk at offset %d, want %d", k, c.Stream, c.Offset, want)
				}
				res.data[i].Write(c.Data)
			}
		}()
		go func() {
			defer wg.Done()
			defer close(f.out)
			res.ok = f.followLive(context.Background(), o)
		}()
	}
	writers.Wait()
	_ = stdout.Close()
	_ = stderr.Close()
	wg.Wait()

	var files [2][]byte
	for i, path := range []string{o.stdout.path, o.stderr.path} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		files[i] = b
	}
	checked := 0
	for k, res := range results {
		if res == nil {
			continue
		}
		checked++
		for i := range 2 {
			from := min(res.from[i], int64(len(files[i])))
			want := files[i][from:]
			got := res.data[i].Bytes()
			if !res.ok {
				// Dropped for falling behind: what it got must still be an exact prefix.
				want = want[:min(len(want), len(got))]
			}
			if !bytes.Equal(got, want) {
				t.Errorf("follower %d (from %v, ok %v): %s got %d bytes, want %d (first difference at %d)",
					k, res.from, res.ok, logStreams[i], len(got), len(want), firstDiff(got, want))
			}
		}
	}
	dropped := 0
	for _, res := range results {
		if res != nil && !res.ok {
			dropped++
		}
	}
	t.Logf("%d followers, %d dropped for falling behind", checked, dropped)
	if checked < followers/2 || dropped > checked/2 {
		t.Errorf("%d followers ran, %d were dropped: the switch was hardly tested", checked, dropped)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestFollowClosedWriterReadsFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	outputs := newLiveOutputs()
	stdout, stderr := outputs.open(filepath.Join(dir, "t.stdout"), filepath.Join(dir, "t.stderr"))
	big := bytes.Repeat([]byte("0123456789abcdef"), 10000) // several read pieces
	_, _ = stdout.Write(big)
	_, _ = stderr.Write([]byte("err\n"))
	o := outputs.lookup(filepath.Join(dir, "t.stdout"))
	_ = stdout.Close()
	_ = stderr.Close()

	f := testFollower(dir, [2]int64{3, 0})
	var got [2]bytes.Buffer
	done := make(chan bool, 1)
	go func() { defer close(f.out); done <- f.followLive(context.Background(), o) }()
	for c := range f.out {
		if len(c.Data) > followChunkSize {
			t.Errorf("chunk of %d bytes, want at most %d", len(c.Data), followChunkSize)
		}
		if c.Stream == pipeline.Stdout {
			got[0].Write(c.Data)
		} else {
			got[1].Write(c.Data)
		}
	}
	if !<-done {
		t.Error("followLive reported a drop")
	}
	if !bytes.Equal(got[0].Bytes(), big[3:]) || got[1].String() != "err\n" {
		t.Errorf("got %d/%q, want %d/%q", got[0].Len(), got[1].String(), len(big)-3, "err\n")
	}
}

// TestLiveOutputsAreTheirRunnersOwn checks that a task's live output is found only through the
// registry (the runner) that opened it, even for the same path.
func TestLiveOutputsAreTheirRunnersOwn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "t.stdout")
	mine, other := newLiveOutputs(), newLiveOutputs()
	stdout, stderr := mine.open(path, filepath.Join(dir, "t.stderr"))
	if mine.lookup(path) == nil {
		t.Error("the opening registry does not find the task's output")
	}
	if other.lookup(path) != nil {
		t.Error("another registry finds the task's output")
	}
	_ = stdout.Close()
	_ = stderr.Close()
	if mine.lookup(path) != nil {
		t.Error("the task output is still registered after both writers were closed")
	}
}
