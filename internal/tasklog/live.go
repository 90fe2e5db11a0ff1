package tasklog

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Backend is where a Live store keeps the streams: files (Files), or a database. Live does the
// rest of the Store contract: it checks names, serialises the writes of each stream, keeps the
// first error, fans the writes out to live followers without waiting for them, switches a
// follower from the stored output to the live writes, and wakes the watchers. Live checks job
// IDs and streams before it calls the Backend, and passes attempts with Number >= 1.
type Backend interface {
	// Append returns the appender of one stream of an attempt that starts now. It should do no
	// I/O that a task without output does not need (Files creates a file on the first write).
	Append(ctx context.Context, a Attempt, stream pipeline.LogStream) (Appender, error)
	// Open opens one stream for reading, as Store.Open. On the node that writes a stream it
	// reads everything its Appender was given so far (an appender that batches serves its
	// unflushed part too): Live reads the stream up to the size of its writes when it switches a
	// follower to the live writes, and a gap there would lose output.
	Open(ctx context.Context, a Attempt, stream pipeline.LogStream) (Reader, error)
	// DeleteJob deletes the streams of a job, as Store.DeleteJob.
	DeleteJob(ctx context.Context, jobID string) error
}

// Appender appends to one stream. Live calls it under the stream's lock, so never concurrently.
// Write appends all of p or returns an error (and how much of p it took); Close stores what is
// left and is called once. Its errors wrap their cause (errors.Is(err, syscall.ENOSPC) tells a
// full disk).
type Appender interface {
	io.WriteCloser
}

// Live is a Store on a Backend, with the live output of the attempts that run in this process
// in memory: a follower of such an attempt gets its writes as they come; any other attempt is
// read from the Backend. The live output is this Live value's own: another one on the same
// Backend (another process, another node) reads what is stored.
type Live struct {
	b Backend

	mu sync.Mutex
	// outputs holds the writers of the attempts that are live here (Number >= 1).
	outputs map[Attempt]*liveOutput
	// waiters holds the Watch channels, by job ID.
	waiters map[string]*jobWaiters
}

var _ Store = (*Live)(nil)

// NewLive returns a Store that keeps the streams in b.
func NewLive(b Backend) *Live {
	return &Live{b: b, outputs: map[Attempt]*liveOutput{}, waiters: map[string]*jobWaiters{}}
}

// normal returns a with Number >= 1, the key of its live output; an error for an invalid job.
func normal(a Attempt) (Attempt, error) {
	a.Number = a.number()
	return a, CheckJobID(a.JobID)
}

// jobWaiters is the wake-up channel of the followers waiting on one job, and their number, so
// that the entry goes when the last one stops waiting.
type jobWaiters struct {
	ch chan struct{}
	n  int
}

// liveOutput is the pair of writers of one live attempt.
type liveOutput struct {
	l    *Live
	a    Attempt
	w    [2]*liveWriter
	open int // writers not closed yet; guarded by l.mu
}

// Create returns the writers of an attempt and registers them as its live output until both
// are closed.
func (l *Live) Create(ctx context.Context, a Attempt) (stdout, stderr io.WriteCloser, err error) {
	if a, err = normal(a); err != nil {
		return nil, nil, err
	}
	o := &liveOutput{l: l, a: a, open: 2}
	for i, stream := range Streams {
		app, err := l.b.Append(ctx, a, stream)
		if err != nil {
			if i == 1 {
				_ = o.w[0].app.Close()
			}
			return nil, nil, fmt.Errorf("create output of %s: %w", a, err)
		}
		o.w[i] = &liveWriter{app: app, hub: hub{stream: stream}, onClose: o.writerClosed}
	}
	l.mu.Lock()
	l.outputs[a] = o
	l.wakeLocked(a.JobID)
	l.mu.Unlock()
	return o.w[0], o.w[1], nil
}

func (o *liveOutput) writerClosed() {
	l := o.l
	l.mu.Lock()
	defer l.mu.Unlock()
	o.open--
	if o.open == 0 {
		if l.outputs[o.a] == o {
			delete(l.outputs, o.a)
		}
		l.wakeLocked(o.a.JobID)
	}
}

// lookup returns the live output of an attempt (Number >= 1); nil when it does not run here.
func (l *Live) lookup(a Attempt) *liveOutput {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.outputs[a]
}

// Open opens one stream of an attempt from the Backend.
func (l *Live) Open(ctx context.Context, a Attempt, stream pipeline.LogStream) (Reader, error) {
	a, err := normal(a)
	if err != nil {
		return nil, err
	}
	if err := CheckStream(stream); err != nil {
		return nil, err
	}
	return l.b.Open(ctx, a, stream)
}

// DeleteJob deletes the job's streams from the Backend.
func (l *Live) DeleteJob(ctx context.Context, jobID string) error {
	if err := CheckJobID(jobID); err != nil {
		return err
	}
	return l.b.DeleteJob(ctx, jobID)
}

// Watch returns a channel that is closed when an attempt of a task of the job is created here,
// when its writers are both closed, or when Wake is called for the job.
func (l *Live) Watch(jobID string) (changed <-chan struct{}, release func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.waiters[jobID]
	if w == nil {
		w = &jobWaiters{ch: make(chan struct{})}
		l.waiters[jobID] = w
	}
	w.n++
	return w.ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		w.n--
		if w.n == 0 && l.waiters[jobID] == w {
			delete(l.waiters, jobID)
		}
	}
}

// Wake wakes the watchers of a job: a Backend that learns that output of the job was stored
// elsewhere (a notification from another node) calls it, so that followers read it at once.
func (l *Live) Wake(jobID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.wakeLocked(jobID)
}

// wakeLocked wakes the watchers of a job. The caller holds l.mu.
func (l *Live) wakeLocked(jobID string) {
	if w := l.waiters[jobID]; w != nil {
		close(w.ch)
		delete(l.waiters, jobID)
	}
}
