package tasklog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Files keeps task output in files: DIR/<jobID>/<pipeline.LogFileName(task, attempt, stream)>,
// the layout every prunner version wrote (a restarted server and the legacy import read the
// same files). A file is created on the first write, so an attempt without output leaves none.
// The live output of the attempts that run in this process is kept in memory by this Files
// value alone (see Live): another Files on the same directory reads the files only.
type Files struct {
	*Live
	files fileBackend
}

var _ Store = (*Files)(nil)

// NewFiles returns the Files store of the directory dir (the data directory's "logs").
func NewFiles(dir string) *Files {
	b := fileBackend{dir: dir}
	return &Files{Live: NewLive(b), files: b}
}

// Path returns the file of one stream of an attempt.
func (s *Files) Path(a Attempt, stream pipeline.LogStream) (string, error) {
	a, err := normal(a)
	if err != nil {
		return "", err
	}
	if err := CheckStream(stream); err != nil {
		return "", err
	}
	return s.files.path(a, stream), nil
}

// fileBackend is the Backend of Files.
type fileBackend struct{ dir string }

// path returns the file of one stream of a checked attempt.
func (b fileBackend) path(a Attempt, stream pipeline.LogStream) string {
	return filepath.Join(b.dir, a.JobID, pipeline.LogFileName(a.Task, a.Number, stream))
}

// Append returns the appender of a stream's file; the file is created on the first write.
func (b fileBackend) Append(_ context.Context, a Attempt, stream pipeline.LogStream) (Appender, error) {
	return &fileAppender{path: b.path(a, stream)}, nil
}

// Open opens the file of a stream: an *os.File, or an EmptyReader when the attempt wrote nothing
// to it.
func (b fileBackend) Open(_ context.Context, a Attempt, stream pipeline.LogStream) (Reader, error) {
	f, err := os.Open(b.path(a, stream))
	if errors.Is(err, fs.ErrNotExist) {
		return EmptyReader{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", a, err)
	}
	return f, nil
}

// DeleteJob removes the job's directory.
func (b fileBackend) DeleteJob(_ context.Context, jobID string) error {
	if err := os.RemoveAll(filepath.Join(b.dir, jobID)); err != nil {
		return fmt.Errorf("job %s: remove logs: %w", jobID, err)
	}
	return nil
}

// fileAppender appends to one file, which it creates (with its job's directory) on the first
// write.
type fileAppender struct {
	path string
	f    *os.File
}

func (w *fileAppender) Write(p []byte) (int, error) {
	if w.f == nil {
		if err := os.MkdirAll(filepath.Dir(w.path), 0o755); err != nil {
			return 0, fmt.Errorf("create log directory: %w", err)
		}
		f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return 0, fmt.Errorf("create log file: %w", err)
		}
		w.f = f
	}
	n, err := w.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("write log: %w", err)
	}
	return n, nil
}

func (w *fileAppender) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("close log: %w", err)
	}
	return nil
}
