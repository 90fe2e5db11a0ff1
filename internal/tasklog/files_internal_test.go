package tasklog

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// createFiles returns the file writers of a test attempt of s.
func createFiles(t *testing.T, s *Files) (a Attempt, stdout, stderr *liveWriter) {
	t.Helper()
	a = Attempt{JobID: "job", Task: "t", Number: 1}
	o, e, err := s.Create(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	return a, o.(*liveWriter), e.(*liveWriter)
}

func TestHubDropsFullSubscriberWithoutBlocking(t *testing.T) {
	t.Parallel()
	s := NewFiles(t.TempDir())
	a, stdout, stderr := createFiles(t, s)
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
	if s.lookup(a) == nil {
		t.Error("the attempt's output was unregistered before both writers were closed")
	}
	_ = stderr.Close()
	if s.lookup(a) != nil {
		t.Error("the attempt's output is still registered after both writers were closed")
	}
}

func TestHubUnsubscribeAndCloseTwice(t *testing.T) {
	t.Parallel()
	w := &liveWriter{app: &fileAppender{path: filepath.Join(t.TempDir(), "x.stdout")}, hub: hub{stream: pipeline.Stdout}}
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

// TestFollowOfClosedWritersStillRegisteredReadsTheFiles follows an attempt whose writers are
// closed while its output is still registered (the moment between the two Close calls' ends and
// the unregistering): the files are read to their end, in bounded pieces.
func TestFollowOfClosedWritersStillRegisteredReadsTheFiles(t *testing.T) {
	t.Parallel()
	s := NewFiles(t.TempDir())
	a, stdout, stderr := createFiles(t, s)
	big := bytes.Repeat([]byte("0123456789abcdef"), 10000) // several read pieces
	_, _ = stdout.Write(big)
	_, _ = stderr.Write([]byte("err\n"))
	o := s.lookup(a)
	// Closed without unregistering.
	stdout.onClose, stderr.onClose = nil, nil
	_ = stdout.Close()
	_ = stderr.Close()
	if s.lookup(a) != o {
		t.Fatal("the output was unregistered")
	}
	var got [2]bytes.Buffer
	pos, err := s.Follow(context.Background(), a, [2]int64{3, 0}, func(c pipeline.LogChunk) error {
		if len(c.Data) > followChunkSize {
			t.Errorf("chunk of %d bytes, want at most %d", len(c.Data), followChunkSize)
		}
		if c.Stream == pipeline.Stdout {
			got[0].Write(c.Data)
		} else {
			got[1].Write(c.Data)
		}
		return nil
	})
	if err != nil {
		t.Errorf("Follow = %v", err)
	}
	if !bytes.Equal(got[0].Bytes(), big[3:]) || got[1].String() != "err\n" {
		t.Errorf("got %d/%q, want %d/%q", got[0].Len(), got[1].String(), len(big)-3, "err\n")
	}
	if pos != [2]int64{int64(len(big)), 4} {
		t.Errorf("offsets %v, want [%d 4]", pos, len(big))
	}
}

// TestLiveOutputIsItsStoresOwn checks that an attempt's live output is found only through the
// Live value that created it, even on the same directory.
func TestLiveOutputIsItsStoresOwn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mine, other := NewFiles(dir), NewFiles(dir)
	a, stdout, stderr := createFiles(t, mine)
	if mine.lookup(a) == nil {
		t.Error("the creating store does not find the attempt's output")
	}
	if other.lookup(a) != nil {
		t.Error("another store finds the attempt's output")
	}
	_ = stdout.Close()
	_ = stderr.Close()
	if mine.lookup(a) != nil {
		t.Error("the attempt's output is still registered after both writers were closed")
	}
}
