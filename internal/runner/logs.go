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

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// logDir returns the directory that holds the output files of one job.
func (r *Runner) logDir(jobID string) (string, error) {
	if jobID == "" || strings.ContainsAny(jobID, `/\.`+"\x00") {
		return "", fmt.Errorf("job %q: %w", jobID, pipeline.ErrJobNotFound)
	}
	return filepath.Join(r.cfg.DataDir, "logs", jobID), nil
}

// logPath returns the file of one output stream of one task. Task names are hex-encoded so that
// any name (with slashes, dots or NUL) maps to a plain file name inside the job's directory.
func (r *Runner) logPath(jobID, task string, stream pipeline.LogStream) (string, error) {
	dir, err := r.logDir(jobID)
	if err != nil {
		return "", err
	}
	if stream != pipeline.Stdout && stream != pipeline.Stderr {
		return "", fmt.Errorf("log stream %q: %w", stream, pipeline.ErrTaskNotFound)
	}
	return filepath.Join(dir, hex.EncodeToString([]byte(task))+"."+string(stream)), nil
}

// OpenLog opens one output stream of a task for reading from the start. A task without output
// yields an empty reader.
func (r *Runner) OpenLog(_ context.Context, jobID, task string, stream pipeline.LogStream) (io.ReadCloser, error) {
	path, err := r.logPath(jobID, task, stream)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return io.NopCloser(strings.NewReader("")), nil
	}
	if err != nil {
		return nil, fmt.Errorf("open log of task %q of job %s: %w", task, jobID, err)
	}
	return f, nil
}

// logWriter appends one output stream of a running task to its file. The file is created on the
// first write, so tasks without output leave no files. Writes are serialised because a shell
// pipeline's stages may write the same stream at once. A write error (disk full) is remembered
// and reported when the task ends, so the task fails with a clear message instead of losing
// output silently.
type logWriter struct {
	path string

	mu   sync.Mutex
	f    *os.File
	size int64
	err  error
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
	n, err := w.f.Write(p)
	w.size += int64(n)
	if err != nil {
		w.err = fmt.Errorf("write log: %w", err)
		return n, w.err
	}
	return n, nil
}

// Close closes the file and returns the first error the writer met.
func (w *logWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		if err := w.f.Close(); err != nil && w.err == nil {
			w.err = fmt.Errorf("close log: %w", err)
		}
		w.f = nil
	}
	return w.err
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
