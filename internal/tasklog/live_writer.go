package tasklog

import (
	"fmt"
	"io/fs"
	"sync"
)

// liveWriter appends one output stream of a running task through its Backend's Appender and
// hands every write to its live subscribers (see hub) without ever waiting for them. Writes are
// serialised because a shell pipeline's stages may write the same stream at once. A write error
// (disk full) is remembered and returned by every later write and by Close, so the task fails
// with a clear message instead of losing output silently.
type liveWriter struct {
	app Appender
	// onClose is called once, after the first Close (it unregisters the attempt's live output).
	onClose func()

	mu     sync.Mutex
	size   int64
	err    error
	hub    hub
	closed bool
}

func (w *liveWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, fmt.Errorf("write log: %w", fs.ErrClosed)
	}
	off := w.size
	n, err := w.app.Write(p)
	w.size += int64(n)
	w.hub.publish(off, p[:n])
	if err != nil {
		w.err = err
		return n, err
	}
	return n, nil
}

// subscribe returns a live subscription to the writes from now on and the size of the stream
// before them; the subscription is nil when the writer is closed already.
func (w *liveWriter) subscribe() (*sub, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hub.subscribe(), w.size
}

// unsubscribe ends a subscription early (its reader went away).
func (w *liveWriter) unsubscribe(s *sub) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hub.unsubscribe(s)
}

// Close closes the appender (which stores what is left), ends the live subscriptions and
// returns the first error the writer met.
func (w *liveWriter) Close() error {
	w.mu.Lock()
	first := !w.closed
	if first {
		if err := w.app.Close(); err != nil && w.err == nil {
			w.err = err
		}
	}
	w.hub.close()
	w.closed = true
	err := w.err
	w.mu.Unlock()
	if first && w.onClose != nil {
		w.onClose()
	}
	return err
}
