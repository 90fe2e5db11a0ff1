package runner

import (
	"bytes"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Bounds of one live subscriber's buffer. A subscriber that has this much output queued and not
// taken yet is dropped: the task never waits for a reader, and a dropped reader resumes from the
// offsets it got (the file on disk has everything).
const (
	subscriberChunks = 256
	subscriberBytes  = 1 << 20
)

// logHub fans the output written to one stream of a running task out to live subscribers. It has
// no lock of its own: its owner, the logWriter, calls it under its lock, so that a subscriber
// learns the exact size of the file at the moment it subscribes and receives every later write.
type logHub struct {
	stream pipeline.LogStream
	subs   map[*logSub]struct{}
	closed bool
}

// logSub is one live subscriber of a logHub. Its channel carries the writes in order, each with
// its offset in the file; the chunks' Data are shared between subscribers and must not be
// modified. The channel is closed when the stream ends (the writer was closed), when the
// subscriber is dropped for falling behind (dropped is set first), or by unsubscribe.
type logSub struct {
	ch chan pipeline.LogChunk
	// queued counts the bytes in ch; the writer adds, the reader subtracts (see taken).
	queued  atomic.Int64
	dropped atomic.Bool
}

// taken tells the subscription that the reader took c off the channel.
func (s *logSub) taken(c pipeline.LogChunk) { s.queued.Add(-int64(len(c.Data))) }

// subscribe adds a subscriber; nil when the stream has ended already.
func (h *logHub) subscribe() *logSub {
	if h.closed {
		return nil
	}
	if h.subs == nil {
		h.subs = map[*logSub]struct{}{}
	}
	s := &logSub{ch: make(chan pipeline.LogChunk, subscriberChunks)}
	h.subs[s] = struct{}{}
	return s
}

// unsubscribe removes s and closes its channel, unless that happened already.
func (h *logHub) unsubscribe(s *logSub) {
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

// publish hands a copy of p, written at offset off, to every subscriber without ever blocking:
// a subscriber without room for it is dropped.
func (h *logHub) publish(off int64, p []byte) {
	if len(h.subs) == 0 || len(p) == 0 {
		return
	}
	// One copy shared by all subscribers: the caller reuses p.
	c := pipeline.LogChunk{Stream: h.stream, Offset: off, Data: bytes.Clone(p)}
	n := int64(len(p))
	for s := range h.subs {
		q := s.queued.Load()
		if len(s.ch) == cap(s.ch) || (q > 0 && q+n > subscriberBytes) {
			s.dropped.Store(true)
			h.unsubscribe(s)
			continue
		}
		s.queued.Add(n)
		// Only publish sends, under the owner's lock, and there is room: this never blocks.
		s.ch <- c
	}
}

// close ends the stream: every subscriber's channel is closed once it has taken what is queued.
func (h *logHub) close() {
	h.closed = true
	for s := range h.subs {
		h.unsubscribe(s)
	}
}

// liveOutputs is the runner's registry of the output of the tasks that run in this process now,
// by the path of their stdout file, so that FollowLog finds a running task's writers; and it
// wakes followers waiting for a task of a job to start or end (one channel per job log
// directory, closed and forgotten on each start and end). It belongs to its Runner, beside the
// running jobs: what runs here, and how to read its output live, is the runner's to tell, and
// the place where output that is not written here would be looked up instead.
type liveOutputs struct {
	mu      sync.Mutex
	outputs map[string]*taskOutput
	waiters map[string]*jobWaiters
}

func newLiveOutputs() *liveOutputs {
	return &liveOutputs{outputs: map[string]*taskOutput{}, waiters: map[string]*jobWaiters{}}
}

// jobWaiters is the wake-up channel of the followers waiting on one job, and their number, so
// that the entry goes when the last one stops waiting.
type jobWaiters struct {
	ch chan struct{}
	n  int
}

// taskOutput is the pair of writers of one running task (attempt).
type taskOutput struct {
	reg            *liveOutputs
	key            string // the stdout path
	stdout, stderr *logWriter
	open           int // writers not closed yet; guarded by reg.mu
}

// open returns the writers of a task's stdout and stderr files and registers them as the task's
// live output until both are closed.
func (l *liveOutputs) open(stdoutPath, stderrPath string) (stdout, stderr *logWriter) {
	o := &taskOutput{reg: l, key: stdoutPath, open: 2}
	o.stdout = &logWriter{path: stdoutPath, hub: logHub{stream: pipeline.Stdout}, onClose: o.writerClosed}
	o.stderr = &logWriter{path: stderrPath, hub: logHub{stream: pipeline.Stderr}, onClose: o.writerClosed}
	l.mu.Lock()
	l.outputs[o.key] = o
	l.wakeLocked(o.key)
	l.mu.Unlock()
	return o.stdout, o.stderr
}

func (o *taskOutput) writerClosed() {
	l := o.reg
	l.mu.Lock()
	defer l.mu.Unlock()
	o.open--
	if o.open == 0 {
		if l.outputs[o.key] == o {
			delete(l.outputs, o.key)
		}
		l.wakeLocked(o.key)
	}
}

// lookup returns the registered output whose stdout file is stdoutPath; nil when that task does
// not run here now.
func (l *liveOutputs) lookup(stdoutPath string) *taskOutput {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.outputs[stdoutPath]
}

// watchJob returns a channel that is closed when a task of the job that path belongs to starts
// or ends its output. Take it before looking at the job's state, so that no change is missed.
// The caller calls release when it stops waiting.
func (l *liveOutputs) watchJob(path string) (ch <-chan struct{}, release func()) {
	dir := filepath.Dir(path)
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.waiters[dir]
	if w == nil {
		w = &jobWaiters{ch: make(chan struct{})}
		l.waiters[dir] = w
	}
	w.n++
	return w.ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		w.n--
		if w.n == 0 && l.waiters[dir] == w {
			delete(l.waiters, dir)
		}
	}
}

// wakeLocked wakes the followers waiting on the job that path belongs to.
func (l *liveOutputs) wakeLocked(path string) {
	dir := filepath.Dir(path)
	if w := l.waiters[dir]; w != nil {
		close(w.ch)
		delete(l.waiters, dir)
	}
}
