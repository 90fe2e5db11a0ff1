package tasklog

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// fileWriter appends one output stream of a running task to its file and hands every write to
// its live subscribers (see hub) without ever waiting for them. The file is created on the first
// write, so tasks without output leave no files. Writes are serialised because a shell
// pipeline's stages may write the same stream at once. A write error (disk full) is remembered
// and returned by every later write and by Close, so the task fails with a clear message instead
// of losing output silently; it wraps the cause (errors.Is(err, syscall.ENOSPC) tells a full
// disk).
type fileWriter struct {
	path string
	// onClose is called once, after the first Close (it unregisters the attempt's live output).
	onClose func()

	mu     sync.Mutex
	f      *os.File
	size   int64
	err    error
	hub    hub
	closed bool
}

func (w *fileWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if w.f == nil {
		if err := os.MkdirAll(filepath.Dir(w.path), 0o755); err != nil {
			w.err = fmt.Errorf("create log directory: %w", err)
			return 0, w.err
		}
		f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			w.err = fmt.Errorf("create log file: %w", err)
			return 0, w.err
		}
		w.f = f
	}
	off := w.size
	n, err := w.f.Write(p)
	w.size += int64(n)
	w.hub.publish(off, p[:n])
	if err != nil {
		w.err = fmt.Errorf("write log: %w", err)
		return n, w.err
	}
	return n, nil
}

// subscribe returns a live subscription to the writes from now on and the size of the file
// before them; the subscription is nil when the writer is closed already.
func (w *fileWriter) subscribe() (*sub, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hub.subscribe(), w.size
}

// unsubscribe ends a subscription early (its reader went away).
func (w *fileWriter) unsubscribe(s *sub) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hub.unsubscribe(s)
}

// Close closes the file, ends the live subscriptions and returns the first error the writer met.
func (w *fileWriter) Close() error {
	w.mu.Lock()
	if w.f != nil {
		if err := w.f.Close(); err != nil && w.err == nil {
			w.err = fmt.Errorf("close log: %w", err)
		}
		w.f = nil
	}
	w.hub.close()
	first := !w.closed
	w.closed = true
	err := w.err
	w.mu.Unlock()
	if first && w.onClose != nil {
		w.onClose()
	}
	return err
}
