package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

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

// streamJobList answers with the whole list q (no limit) as a JSON object: prefix (the opening
// brace and any fields before "jobs"), then "jobs". A list of 100,000 jobs is 43 MB of JSON;
// held whole to send a Content-Length, it would cost its size in memory for each client that
// polls it. So the list is read and encoded a batch at a time, and at most h.listBuffer bytes
// of it are held: a list that ends within that is sent with a Content-Length (fasthttp writes
// such a body in large pieces), a longer one with chunked transfer encoding, as it is read, at
// the pace of the client.
//
// How the list is read: in keyset batches (Runner.EachJobFrom), each in its own short read,
// newest first as every list. A batch is encoded into memory and the read ends before the
// client gets it, so a client that reads slowly never holds a read open. The list is not one
// snapshot, but a job that exists for the whole response comes exactly once; one that is
// deleted meanwhile at most once.
//
// Every batch that the handler reads (at least the first) comes before the response's status:
// an error there (an unknown cursor, a broken store) is still a JSON error with its status. An
// error later, after bytes went out, can only end the response: the body then ends without its
// closing brackets and without the last chunk of the chunked encoding, and the connection is
// closed, so a client sees a truncated body (its HTTP library reports an unexpected EOF) rather
// than a valid-looking partial list. When the server shuts down, a list stops at its next batch
// in the same way, and a write to a client that stopped reading fails after
// shutdownWriteGrace, so that a list never holds the shutdown.
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
	}
	head := s.next()
	head = append(head, prefix...)
	head = append(head, `"jobs":[`...)
	if err := s.fill(head); err != nil {
		s.Close()
		return err
	}
	for !s.pos.End && s.held < h.listBuffer {
		if err := s.fill(s.next()); err != nil {
			s.Close()
			return err
		}
	}
	// A list stops at its next batch when the server shuts down (Read checks done); a client
	// that stopped reading must not hold the shutdown either.
	s.stopWatch = watchShutdown(h.done, c.Context().Conn(), nil)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	size := -1 // chunked: the server sends the body as it reads it
	if s.pos.End {
		size = s.held
	}
	c.Response().SetBodyStream(s, size)
	return nil
}

// streamBufs holds the encoding buffers of streamed lists, one per batch.
var streamBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 256<<10)
	return &b
}}

// maxPooledStreamBuf is the largest buffer given back to streamBufs: one grown by a batch of
// unusually large jobs is left to the garbage collector.
const maxPooledStreamBuf = 1 << 20

// jobListStream is the body of a whole list: an io.Reader that the server reads after the
// handler returned. It holds the encoded batches not read yet, and encodes the next batch when
// they were read, so the server pulls the rest of the list at the pace of the client.
type jobListStream struct {
	ctx    context.Context
	runner Runner
	logger *slog.Logger
	q      store.JobQuery
	pos    store.ListPos
	done   <-chan struct{}

	bufs [][]byte // the encoded batches not read yet; bufs[0][off:] comes next
	off  int
	held int   // bytes in bufs not read yet
	n    int   // jobs encoded so far
	err  error // set when the body ends: io.EOF after its last byte, else why it broke off

	stopWatch func()
	closeOnce sync.Once
}

// next returns an empty buffer to encode a batch into.
func (s *jobListStream) next() []byte {
	return (*streamBufs.Get().(*[]byte))[:0]
}

// release gives a buffer back to the pool.
func release(b []byte) {
	if cap(b) <= maxPooledStreamBuf {
		b = b[:0]
		streamBufs.Put(&b)
	}
}

// fill encodes the next batch after what buf holds and, after the last job, the list's closing
// brackets, and queues buf to be read. On an error, buf goes back to the pool: what the failed
// batch encoded is not sent.
func (s *jobListStream) fill(buf []byte) error {
	next, err := s.runner.EachJobFrom(s.ctx, s.q, s.pos, func(j *pipeline.Job) error {
		if s.n > 0 {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = appendJobJSON(buf, j); err != nil {
			return fmt.Errorf("job %s: %w", j.ID, err)
		}
		s.n++
		return nil
	})
	if err != nil {
		release(buf)
		return err
	}
	s.pos = next
	if next.End {
		buf = append(buf, ']', '}')
	}
	s.bufs = append(s.bufs, buf)
	s.held += len(buf)
	return nil
}

// Read implements io.Reader for the server. An error other than io.EOF makes the server end
// the response without the chunked encoding's last chunk and close the connection.
func (s *jobListStream) Read(p []byte) (int, error) {
	for len(s.bufs) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		if s.pos.End {
			s.err = io.EOF
			continue
		}
		// A list that started answering when the server shuts down stops at its next batch;
		// one asked for during the shutdown is answered (reads go on while jobs drain).
		err := errListShutdown
		select {
		case <-s.done:
		default:
			err = s.fill(s.next())
		}
		if err != nil {
			// The body ends after the last whole batch.
			s.err = fmt.Errorf("list jobs after %d jobs: %w", s.n, err)
			if !errors.Is(err, errListShutdown) {
				s.logger.Error("job list broken off", "jobs_sent", s.n, "error", err)
			}
		}
	}
	n := copy(p, s.bufs[0][s.off:])
	s.off += n
	s.held -= n
	if s.off == len(s.bufs[0]) {
		release(s.bufs[0])
		s.bufs[0] = nil
		s.bufs, s.off = s.bufs[1:], 0
	}
	return n, nil
}

// Close implements io.Closer: the server calls it when the response ended (or was dropped).
func (s *jobListStream) Close() error {
	s.closeOnce.Do(func() {
		if s.stopWatch != nil {
			s.stopWatch()
		}
		for _, b := range s.bufs {
			release(b)
		}
		s.bufs, s.off, s.held = nil, 0, 0
		if s.err == nil {
			s.err = io.ErrClosedPipe
		}
	})
	return nil
}
