package tasklog

import (
	"bytes"
	"sync/atomic"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Bounds of one live subscriber's buffer. A subscriber that has this much output queued and not
// taken yet is dropped: the task never waits for a reader, and a dropped reader resumes from the
// offsets it got (the stored output has everything).
const (
	subscriberChunks = 256
	subscriberBytes  = 1 << 20
)

// hub fans the output written to one stream of a running task out to live subscribers. It has
// no lock of its own: its owner, the writer, calls it under its lock, so that a subscriber
// learns the exact size of the stream at the moment it subscribes and receives every later
// write. A database backend can use it the same way for the writers it owns.
type hub struct {
	stream pipeline.LogStream
	subs   map[*sub]struct{}
	closed bool
}

// sub is one live subscriber of a hub. Its channel carries the writes in order, each with its
// offset in the stream; the chunks' Data are shared between subscribers and must not be
// modified. The channel is closed when the stream ends (the writer was closed), when the
// subscriber is dropped for falling behind (dropped is set first), or by unsubscribe.
type sub struct {
	ch chan pipeline.LogChunk
	// queued counts the bytes in ch; the writer adds, the reader subtracts (see taken).
	queued  atomic.Int64
	dropped atomic.Bool
}

// taken tells the subscription that the reader took c off the channel.
func (s *sub) taken(c pipeline.LogChunk) { s.queued.Add(-int64(len(c.Data))) }

// subscribe adds a subscriber; nil when the stream has ended already.
func (h *hub) subscribe() *sub {
	if h.closed {
		return nil
	}
	if h.subs == nil {
		h.subs = map[*sub]struct{}{}
	}
	s := &sub{ch: make(chan pipeline.LogChunk, subscriberChunks)}
	h.subs[s] = struct{}{}
	return s
}

// unsubscribe removes s and closes its channel, unless that happened already.
func (h *hub) unsubscribe(s *sub) {
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

// publish hands a copy of p, written at offset off, to every subscriber without ever blocking:
// a subscriber without room for it is dropped.
func (h *hub) publish(off int64, p []byte) {
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
func (h *hub) close() {
	h.closed = true
	for s := range h.subs {
		h.unsubscribe(s)
	}
}
