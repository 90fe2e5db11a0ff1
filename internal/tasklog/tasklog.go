// Package tasklog keeps the output of tasks: the one seam through which the runner writes a
// task's stdout and stderr, reads them back, follows them live and deletes them. Files (this
// package) keeps them in files under the data directory, as prunner always did; a backend for
// several nodes (chunks in a database table) implements the same Store, and the conformance suite
// in tasklogtest checks both.
//
// # What an implementation guarantees
//
// A stream is one output stream (stdout or stderr) of one attempt of a task of a job
// (an Attempt and a pipeline.LogStream). Every implementation of Store guarantees:
//
//   - Bytes and offsets. A stream is a sequence of bytes; an offset is a byte offset in it,
//     starting at 0 for every attempt. The bytes are kept exactly as written and in the order of
//     the writes: every reader (Open, Follow, on any node) sees the same byte at the same offset.
//     Nothing is split or joined by lines or characters: a read or a followed chunk may end in
//     the middle of a UTF-8 character (logfollow and the API hold an incomplete character back
//     until the rest comes), so an implementation may cut the stream into chunks anywhere.
//   - Writers never wait for readers. A write may wait for the storage (a file system, a batch
//     being committed) but never for a follower. Memory is bounded per writer and per follower:
//     a follower that falls behind is dropped (Follow returns ErrFellBehind) and resumes from
//     the offsets it got. An implementation may batch the writes before it stores them.
//   - Durability on Close. When both writers of an attempt are closed, its output is stored: Open
//     and Follow read all of it, on every node that shares the store. Close returns the first
//     error a write met (a full disk, an unreachable database): the task then fails with it
//     instead of losing output silently. What a crash of the writing process can lose is the
//     implementation's to say (Files: nothing when the process dies, since the kernel has every
//     write; the last seconds on a power loss. A database backend: at most the writes not
//     flushed yet, one batch).
//   - Reading while writing. Open of a stream that is being written reads what is stored when
//     it is called; on the node that writes it that is everything written so far (Files), and an
//     implementation that batches should serve its unflushed part there too. Elsewhere it may lag
//     by one batch. Follow starts from what is stored and switches to the live writes without a
//     gap or a duplicate.
//   - Live output and other nodes. Follow delivers the writes as they come only for the writers
//     this Store created (the task runs in this process); for output written elsewhere it sends
//     what is stored and returns, and the caller follows again after a while (or when Watch
//     wakes it): a follower on another node polls the stored chunks.
//   - An attempt without output is no error: Open gives an empty reader, Follow sends nothing.
//   - A writer that dies with its process (a crash, kill -9, a node lost) is never closed: its
//     streams hold what was stored, and the job's record (ended as failed by the recovery) tells
//     readers that nothing more will come. Nothing in a Store needs recovering.
//   - Names. Any task name is valid (slashes, dots, NUL, any bytes); a job ID that cannot be one
//     (empty, or with '/', '\\', '.' or NUL) gives pipeline.ErrJobNotFound, a stream other than
//     stdout or stderr pipeline.ErrTaskNotFound. Attempt numbers below 1 mean attempt 1.
//
// # A database implementation
//
// Live does the live half of the contract on any Backend, so a database backend is a Backend:
// it can keep each stream as rows of (job, task, attempt, stream, offset, bytes), appended by its
// Appender in batches (a size or a short interval, whichever comes first; and on Close, which
// returns once the last batch is committed), so that memory stays bounded and a crash loses at
// most one batch; its Open serves the unflushed tail on the writing node (see Backend). For an
// attempt written on another node, Live's Follow sends the stored chunks after the offsets and
// returns; a NOTIFY sent with each committed batch can call Live.Wake, so that a follower on
// another node reads as soon as something was stored. DeleteJob deletes the job's rows
// (retention runs once cluster-wide; deleting twice is harmless).
package tasklog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Attempt names one attempt of a task of a job, whose output is a stdout and a stderr stream.
type Attempt struct {
	JobID string
	Task  string
	// Number is the attempt, 1-based; 0 means 1 (a task that was never retried).
	Number int
}

// number returns the attempt's number, at least 1.
func (a Attempt) number() int { return max(a.Number, 1) }

// String names the attempt in errors.
func (a Attempt) String() string {
	return fmt.Sprintf("attempt %d of task %q of job %s", a.number(), a.Task, a.JobID)
}

// Streams are the streams of an attempt in the order of the offset arrays of Follow: index 0 is
// stdout, 1 is stderr.
var Streams = [2]pipeline.LogStream{pipeline.Stdout, pipeline.Stderr}

// ErrFellBehind is returned by Follow when the follower took the live output too slowly and was
// dropped, so that the writer never waits: follow again from the offsets Follow returned.
var ErrFellBehind = errors.New("log follower fell behind and was dropped")

// Store keeps the output of tasks. Its methods are safe for concurrent use.
type Store interface {
	// Create returns the writers of the stdout and stderr of an attempt that starts now. Each
	// writer is safe for concurrent use (a shell pipeline's stages may write the same stream at
	// once); writes are appended in the order they are made. Until both writers are closed,
	// the attempt is live: Follow delivers its writes as they come. Close is idempotent and
	// returns the first error the writer met.
	Create(ctx context.Context, a Attempt) (stdout, stderr io.WriteCloser, err error)
	// Open opens one stream of an attempt for reading from its start: Stat().Size() is its
	// size at the moment of the call, and reads beyond it may return more of a stream that is
	// being written. A stream without output gives an empty reader (size 0). The caller closes
	// it.
	Open(ctx context.Context, a Attempt, stream pipeline.LogStream) (Reader, error)
	// Follow sends both streams of an attempt to send, each from its offset in from (index as
	// in Streams; an offset beyond the end waits for the stream to reach it), as chunks that
	// follow each other without gap or overlap (Offset is where Data starts; Attempt is the
	// attempt's number). send is called concurrently for the two streams, never concurrently
	// for one; it keeps the chunk (Data is not reused) but must not modify Data; an error from
	// it ends Follow with that error.
	//
	// While this Store's writers of the attempt are open, Follow waits for their writes and
	// sends them, until both are closed. Otherwise it sends what is stored, to its end. It
	// returns nil when it sent everything that the attempt had when it returned and nothing is
	// written here any more; ErrFellBehind when the follower was dropped; ctx's error when ctx
	// ended; or a read error. It returns the offsets after what it sent in every case, for the
	// next Follow. Whether the attempt has ended, or has not started yet, is the caller's to
	// know (the job's record): Follow is called again until it has.
	Follow(ctx context.Context, a Attempt, from [2]int64, send func(pipeline.LogChunk) error) ([2]int64, error)
	// Watch returns a channel that is closed when an attempt of a task of the job is created in
	// this Store or its writers are both closed (an implementation may close it for other
	// changes too, such as output stored by another node); take it before looking at the job's
	// state, so that no change is missed. The caller calls release when it stops waiting.
	Watch(jobID string) (changed <-chan struct{}, release func())
	// DeleteJob deletes the output of every task of a job. A job without output is no error.
	// It is called for jobs that have ended (retention), never while their writers are open.
	DeleteJob(ctx context.Context, jobID string) error
}

// Reader reads one stream of an attempt. An *os.File is one (the API sends a file's range with
// sendfile); other implementations give Stat a size and may leave the rest of the FileInfo zero.
type Reader interface {
	io.ReadSeekCloser
	io.ReaderAt
	Stat() (fs.FileInfo, error)
}

// CheckJobID returns pipeline.ErrJobNotFound for a job ID that cannot name a job: one that is
// empty or holds a path separator, a dot or NUL (IDs are UUIDs; this keeps every ID a plain
// file name, and a storage key without surprises).
func CheckJobID(jobID string) error {
	if jobID == "" || strings.ContainsAny(jobID, `/\.`+"\x00") {
		return fmt.Errorf("job %q: %w", jobID, pipeline.ErrJobNotFound)
	}
	return nil
}

// CheckStream returns pipeline.ErrTaskNotFound for a stream other than stdout and stderr.
func CheckStream(stream pipeline.LogStream) error {
	if stream != pipeline.Stdout && stream != pipeline.Stderr {
		return fmt.Errorf("log stream %q: %w", stream, pipeline.ErrTaskNotFound)
	}
	return nil
}

// Tail returns at most limit bytes from the end of one stream of an attempt ("" when it has no
// output or cannot be read): what on_error gets of the failed task's output.
func Tail(ctx context.Context, s Store, a Attempt, stream pipeline.LogStream, limit int64) string {
	r, err := s.Open(ctx, a, stream)
	if err != nil {
		return ""
	}
	defer r.Close()
	st, err := r.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-limit, 0)
	b, err := io.ReadAll(io.NewSectionReader(r, off, st.Size()-off))
	if err != nil {
		return ""
	}
	return string(b)
}

// EmptyReader is the Reader of a stream without output.
type EmptyReader struct{}

func (EmptyReader) Read([]byte) (int, error)          { return 0, io.EOF }
func (EmptyReader) ReadAt([]byte, int64) (int, error) { return 0, io.EOF }
func (EmptyReader) Seek(int64, int) (int64, error)    { return 0, nil }
func (EmptyReader) Close() error                      { return nil }
func (EmptyReader) Stat() (fs.FileInfo, error)        { return emptyInfo{}, nil }

type emptyInfo struct{}

func (emptyInfo) Name() string       { return "" }
func (emptyInfo) Size() int64        { return 0 }
func (emptyInfo) Mode() fs.FileMode  { return 0o644 }
func (emptyInfo) ModTime() time.Time { return time.Time{} }
func (emptyInfo) IsDir() bool        { return false }
func (emptyInfo) Sys() any           { return nil }
