package runner

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// logDir returns the directory that holds the output files of one job.
func (r *Runner) logDir(jobID string) (string, error) {
	if jobID == "" || strings.ContainsAny(jobID, `/\.`+"\x00") {
		return "", fmt.Errorf("job %q: %w", jobID, pipeline.ErrJobNotFound)
	}
	return filepath.Join(r.cfg.DataDir, "logs", jobID), nil
}

// logPath returns the file of one output stream of one attempt of a task. Task names are
// hex-encoded so that any name (with slashes, dots or NUL) maps to a plain file name inside the
// job's directory. The first attempt (attempt <= 1) has no suffix; a retried task keeps each
// attempt's output in its own file (<name>.attempt2.stdout, …).
func (r *Runner) logPath(jobID, task string, attempt int, stream pipeline.LogStream) (string, error) {
	dir, err := r.logDir(jobID)
	if err != nil {
		return "", err
	}
	if stream != pipeline.Stdout && stream != pipeline.Stderr {
		return "", fmt.Errorf("log stream %q: %w", stream, pipeline.ErrTaskNotFound)
	}
	name := hex.EncodeToString([]byte(task))
	if attempt > 1 {
		name += fmt.Sprintf(".attempt%d", attempt)
	}
	return filepath.Join(dir, name+"."+string(stream)), nil
}

// OpenLog opens one output stream of a task for reading from the start: of its last attempt
// when it was retried. A task without output yields an empty reader.
func (r *Runner) OpenLog(ctx context.Context, jobID, task string, stream pipeline.LogStream) (io.ReadCloser, error) {
	path, err := r.logPath(jobID, task, r.lastAttempt(ctx, jobID, task), stream)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return emptyLog{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open log of task %q of job %s: %w", task, jobID, err)
	}
	return f, nil
}

// emptyLog is the log of a task that wrote nothing (its file does not exist). Like the *os.File
// of a log, it has ReadAt and Stat, which readers use to read a range of a log.
type emptyLog struct{}

func (emptyLog) Read([]byte) (int, error)          { return 0, io.EOF }
func (emptyLog) ReadAt([]byte, int64) (int, error) { return 0, io.EOF }
func (emptyLog) Close() error                      { return nil }
func (emptyLog) Stat() (fs.FileInfo, error)        { return emptyLogInfo{}, nil }

type emptyLogInfo struct{}

func (emptyLogInfo) Name() string       { return "" }
func (emptyLogInfo) Size() int64        { return 0 }
func (emptyLogInfo) Mode() fs.FileMode  { return 0o644 }
func (emptyLogInfo) ModTime() time.Time { return time.Time{} }
func (emptyLogInfo) IsDir() bool        { return false }
func (emptyLogInfo) Sys() any           { return nil }

// logWriter appends one output stream of a running task to its file and hands every write to
// its live subscribers (see logHub) without ever waiting for them. The file is created on the
// first write, so tasks without output leave no files. Writes are serialised because a shell
// pipeline's stages may write the same stream at once. A write error (disk full) is remembered
// and reported when the task ends, so the task fails with a clear message instead of losing
// output silently.
type logWriter struct {
	path string
	// onClose is called once, after the first Close (it unregisters the task's live output).
	onClose func()
	// onNoSpace is called when a write fails because the disk is full (may be nil).
	onNoSpace func()

	mu     sync.Mutex
	f      *os.File
	size   int64
	err    error
	hub    logHub
	closed bool
}

func (w *logWriter) Write(p []byte) (int, error) {
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
		if errors.Is(err, syscall.ENOSPC) && w.onNoSpace != nil {
			w.onNoSpace()
		}
		return n, w.err
	}
	return n, nil
}

// subscribe returns a live subscription to the writes from now on and the size of the file
// before them; the subscription is nil when the writer is closed already.
func (w *logWriter) subscribe() (*logSub, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hub.subscribe(), w.size
}

// unsubscribe ends a subscription early (its reader went away).
func (w *logWriter) unsubscribe(s *logSub) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hub.unsubscribe(s)
}

// Close closes the file, ends the live subscriptions and returns the first error the writer met.
func (w *logWriter) Close() error {
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

// readTail returns at most max bytes from the end of a log file ("" when it does not exist).
func readTail(path string, max int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := int64(0)
	if st.Size() > max {
		off = st.Size() - max
	}
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return ""
	}
	return string(b)
}
