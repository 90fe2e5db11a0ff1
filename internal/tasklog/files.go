package tasklog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Files keeps task output in files: DIR/<jobID>/<pipeline.LogFileName(task, attempt, stream)>,
// the layout every prunner version wrote (a restarted server and the legacy import read the
// same files). A file is created on the first write, so an attempt without output leaves none.
// The live output of the attempts that run in this process is kept in memory, by this Files
// value alone: another Files on the same directory reads the files only.
type Files struct {
	dir string

	mu sync.Mutex
	// outputs holds the writers of the attempts that are live here, by the path of their
	// stdout file.
	outputs map[string]*fileOutput
	// waiters holds the Watch channels, by job ID.
	waiters map[string]*jobWaiters
}

var _ Store = (*Files)(nil)

// NewFiles returns the Files store of the directory dir (the data directory's "logs").
func NewFiles(dir string) *Files {
	return &Files{dir: dir, outputs: map[string]*fileOutput{}, waiters: map[string]*jobWaiters{}}
}

// JobDir returns the directory that holds the files of one job.
func (s *Files) JobDir(jobID string) (string, error) {
	if err := CheckJobID(jobID); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, jobID), nil
}

// Path returns the file of one stream of an attempt.
func (s *Files) Path(a Attempt, stream pipeline.LogStream) (string, error) {
	dir, err := s.JobDir(a.JobID)
	if err != nil {
		return "", err
	}
	if err := CheckStream(stream); err != nil {
		return "", err
	}
	return filepath.Join(dir, pipeline.LogFileName(a.Task, a.number(), stream)), nil
}

// paths returns the files of both streams of an attempt, in the order of Streams.
func (s *Files) paths(a Attempt) (paths [2]string, err error) {
	for i, stream := range Streams {
		if paths[i], err = s.Path(a, stream); err != nil {
			return paths, err
		}
	}
	return paths, nil
}

// jobWaiters is the wake-up channel of the followers waiting on one job, and their number, so
// that the entry goes when the last one stops waiting.
type jobWaiters struct {
	ch chan struct{}
	n  int
}

// fileOutput is the pair of writers of one live attempt.
type fileOutput struct {
	s     *Files
	jobID string
	key   string // the stdout path
	w     [2]*fileWriter
	open  int // writers not closed yet; guarded by s.mu
}

// Create returns the writers of an attempt's files and registers them as its live output until
// both are closed.
func (s *Files) Create(_ context.Context, a Attempt) (stdout, stderr io.WriteCloser, err error) {
	paths, err := s.paths(a)
	if err != nil {
		return nil, nil, err
	}
	o := &fileOutput{s: s, jobID: a.JobID, key: paths[0], open: 2}
	for i, stream := range Streams {
		o.w[i] = &fileWriter{path: paths[i], hub: hub{stream: stream}, onClose: o.writerClosed}
	}
	s.mu.Lock()
	s.outputs[o.key] = o
	s.wakeLocked(a.JobID)
	s.mu.Unlock()
	return o.w[0], o.w[1], nil
}

func (o *fileOutput) writerClosed() {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	o.open--
	if o.open == 0 {
		if s.outputs[o.key] == o {
			delete(s.outputs, o.key)
		}
		s.wakeLocked(o.jobID)
	}
}

// lookup returns the live output whose stdout file is stdoutPath; nil when that attempt does
// not run here now.
func (s *Files) lookup(stdoutPath string) *fileOutput {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outputs[stdoutPath]
}

// Watch returns a channel that is closed when an attempt of a task of the job is created here
// or its writers are both closed.
func (s *Files) Watch(jobID string) (changed <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.waiters[jobID]
	if w == nil {
		w = &jobWaiters{ch: make(chan struct{})}
		s.waiters[jobID] = w
	}
	w.n++
	return w.ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		w.n--
		if w.n == 0 && s.waiters[jobID] == w {
			delete(s.waiters, jobID)
		}
	}
}

// wakeLocked wakes the followers waiting on a job. The caller holds s.mu.
func (s *Files) wakeLocked(jobID string) {
	if w := s.waiters[jobID]; w != nil {
		close(w.ch)
		delete(s.waiters, jobID)
	}
}

// Open opens the file of one stream of an attempt; an *os.File, or an EmptyReader when the
// attempt wrote nothing to it.
func (s *Files) Open(_ context.Context, a Attempt, stream pipeline.LogStream) (Reader, error) {
	path, err := s.Path(a, stream)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return EmptyReader{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", a, err)
	}
	return f, nil
}

// DeleteJob removes the job's directory.
func (s *Files) DeleteJob(_ context.Context, jobID string) error {
	dir, err := s.JobDir(jobID)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("job %s: remove logs: %w", jobID, err)
	}
	return nil
}
