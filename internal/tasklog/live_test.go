package tasklog_test

import (
	"bytes"
	"context"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/tasklog"
	"github.com/prunner-dev/prunner/internal/tasklog/tasklogtest"
)

// TestLiveConformanceOnAnotherBackend runs the conformance suite against Live on a Backend that
// keeps the streams in memory: the Backend contract is all that a new backend (a database) has
// to meet for the Store contract to hold.
func TestLiveConformanceOnAnotherBackend(t *testing.T) {
	t.Parallel()
	tasklogtest.Run(t, func(t *testing.T) tasklog.Store {
		return tasklog.NewLive(&memBackend{streams: map[memKey]*bytes.Buffer{}})
	})
}

type memKey struct {
	a      tasklog.Attempt
	stream pipeline.LogStream
}

// memBackend keeps streams in memory; its appenders store every write at once.
type memBackend struct {
	mu      sync.Mutex
	streams map[memKey]*bytes.Buffer
}

func (b *memBackend) Append(_ context.Context, a tasklog.Attempt, stream pipeline.LogStream) (tasklog.Appender, error) {
	return &memAppender{b: b, key: memKey{a, stream}}, nil
}

func (b *memBackend) Open(_ context.Context, a tasklog.Attempt, stream pipeline.LogStream) (tasklog.Reader, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	buf := b.streams[memKey{a, stream}]
	if buf == nil {
		return tasklog.EmptyReader{}, nil
	}
	data := bytes.Clone(buf.Bytes())
	return memReader{Reader: bytes.NewReader(data), size: int64(len(data))}, nil
}

func (b *memBackend) DeleteJob(_ context.Context, jobID string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.streams {
		if k.a.JobID == jobID {
			delete(b.streams, k)
		}
	}
	return nil
}

type memAppender struct {
	b   *memBackend
	key memKey
}

func (w *memAppender) Write(p []byte) (int, error) {
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	buf := w.b.streams[w.key]
	if buf == nil {
		buf = &bytes.Buffer{}
		w.b.streams[w.key] = buf
	}
	return buf.Write(p)
}

func (w *memAppender) Close() error { return nil }

// memReader is a snapshot of a stream.
type memReader struct {
	*bytes.Reader
	size int64
}

func (memReader) Close() error                 { return nil }
func (r memReader) Stat() (fs.FileInfo, error) { return memInfo{size: r.size}, nil }

type memInfo struct{ size int64 }

func (memInfo) Name() string       { return "" }
func (i memInfo) Size() int64      { return i.size }
func (memInfo) Mode() fs.FileMode  { return 0o644 }
func (memInfo) ModTime() time.Time { return time.Time{} }
func (memInfo) IsDir() bool        { return false }
func (memInfo) Sys() any           { return nil }
