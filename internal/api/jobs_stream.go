package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// streamBatch is how many jobs a streamed list reads from the store at a time. Each batch is
// one short read, encoded into memory and then sent: the read ends before the client gets the
// batch, so a client that reads slowly never holds a read open. A batch of typical jobs is a
// few hundred KiB of JSON, which bounds the memory of a list of any length.
const streamBatch = 500

// errListShutdown ends a streamed list when the server shuts down.
var errListShutdown = errors.New("server shutting down")

// streamJobList answers with the whole list q (no limit) as a JSON object streamed with chunked
// transfer encoding: prefix (the opening brace and any fields before "jobs"), then "jobs". A
// list of 100,000 jobs is 43 MB of JSON; held whole to send a Content-Length, it would cost its
// size in memory for each client that polls it.
//
// How the list is read while it streams: in keyset batches (Runner.EachJobFrom), each in its own
// short read, newest first as every list. The list is not one snapshot, but a job that exists
// for the whole response comes exactly once; one that is deleted meanwhile at most once.
//
// The first batch is read before the handler returns, so that an error there (an unknown
// cursor, a broken store) is still a JSON error with its status. An error later, after bytes
// went out, can only end the response: the body then ends without its closing brackets and
// without the last chunk of the chunked encoding, and the connection is closed, so a client
// sees a truncated body (its HTTP library reports an unexpected EOF) rather than a valid-looking
// partial list. When the server shuts down, a list stops at its next batch in the same way, and
// a write to a client that stopped reading fails after shutdownWriteGrace, so that a list never
// holds the shutdown.
func (h *handlers) streamJobList(c *fiber.Ctx, prefix []byte, q store.JobQuery) error {
	q.VariablesAsJSON = true
	q.Limit = streamBatch
	// The body is read after the handler returned: nothing of c may be used then, so the
	// stream gets copies (the query's strings are immutable, see Config of New).
	s := &jobListStream{
		ctx:    c.UserContext(),
		runner: h.runner,
		logger: h.logger,
		q:      q,
		done:   h.done,
		buf:    (*streamBufs.Get().(*[]byte))[:0],
	}
	s.buf = append(s.buf, prefix...)
	s.buf = append(s.buf, `"jobs":[`...)
	if err := s.fill(); err != nil {
		s.Close()
		return err
	}
	s.watchShutdown(c.Context().Conn())
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	// A negative size makes the server send the body chunked, as it reads it.
	c.Response().SetBodyStream(s, -1)
	return nil
}

// streamBufs holds the encoding buffers of streamed lists.
var streamBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 256<<10)
	return &b
}}

// maxPooledStreamBuf is the largest buffer given back to streamBufs: one grown by a batch of
// unusually large jobs is left to the garbage collector.
const maxPooledStreamBuf = 1 << 20

// jobListStream is the body of a streamed list: an io.Reader that the server reads after the
// handler returned. It encodes the next batch when the previous one was read, so the server
// pulls the list at the pace of the client.
type jobListStream struct {
	ctx    context.Context
	runner Runner
	logger *slog.Logger
	q      store.JobQuery
	pos    store.ListPos
	done   <-chan struct{}

	buf []byte // the encoded bytes; buf[off:] is not read yet
	off int
	n   int   // jobs encoded so far
	err error // set when the body ends: io.EOF after its last byte, else why it broke off

	stopWatch func()
	closeOnce sync.Once
}

// fill encodes the next batch into buf and, after the last job, the list's closing brackets.
func (s *jobListStream) fill() error {
	select {
	case <-s.done:
		return errListShutdown
	default:
	}
	next, err := s.runner.EachJobFrom(s.ctx, s.q, s.pos, func(j *pipeline.Job) error {
		if s.n > 0 {
			s.buf = append(s.buf, ',')
		}
		var err error
		if s.buf, err = appendJobJSON(s.buf, j); err != nil {
			return fmt.Errorf("job %s: %w", j.ID, err)
		}
		s.n++
		return nil
	})
	if err != nil {
		return err
	}
	s.pos = next
	if next.End {
		s.buf = append(s.buf, ']', '}')
	}
	return nil
}

// Read implements io.Reader for the server. An error other than io.EOF makes the server end
// the response without the chunked encoding's last chunk and close the connection.
func (s *jobListStream) Read(p []byte) (int, error) {
	for s.off == len(s.buf) {
		if s.err != nil {
			return 0, s.err
		}
		if s.pos.End {
			s.err = io.EOF
			continue
		}
		s.buf, s.off = s.buf[:0], 0
		if err := s.fill(); err != nil {
			// What the failed batch encoded is not sent: the body ends after the last whole
			// batch.
			s.buf = s.buf[:0]
			s.err = fmt.Errorf("list jobs after %d jobs: %w", s.n, err)
			if !errors.Is(err, errListShutdown) {
				s.logger.Error("job list broken off", "jobs_sent", s.n, "error", err)
			}
		}
	}
	n := copy(p, s.buf[s.off:])
	s.off += n
	return n, nil
}

// Close implements io.Closer: the server calls it when the response ended (or was dropped).
func (s *jobListStream) Close() error {
	s.closeOnce.Do(func() {
		if s.stopWatch != nil {
			s.stopWatch()
		}
		if cap(s.buf) <= maxPooledStreamBuf {
			b := s.buf[:0]
			streamBufs.Put(&b)
		}
		s.buf, s.off = nil, 0
		if s.err == nil {
			s.err = io.ErrClosedPipe
		}
	})
	return nil
}

// watchShutdown bounds the writes of the list once the server shuts down: a client that stopped
// reading would otherwise hold the shutdown (which waits for open connections) forever.
func (s *jobListStream) watchShutdown(conn net.Conn) {
	if s.done == nil || conn == nil {
		return
	}
	quit := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-s.done:
			_ = conn.SetWriteDeadline(time.Now().Add(shutdownWriteGrace))
		case <-quit:
		}
	}()
	s.stopWatch = func() {
		close(quit)
		<-stopped
	}
}
