package api

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// maxPageSize bounds the limit parameter of job lists.
const maxPageSize = 1000

// jobStatusHint names the accepted values of the status filter, every job status:
// "use queued, running, succeeded, failed, canceled or replaced".
var jobStatusHint = func() string {
	var names []string
	for _, s := range pipeline.JobStatuses() {
		names = append(names, string(s))
	}
	return "use " + strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}()

// jobQueryParams reads the optional list parameters: pipeline, status (comma-separated or
// repeated), limit (1…1000) and cursor (the nextCursor of the previous page). Without them the
// query lists every job, as old clients expect.
func jobQueryParams(c *fiber.Ctx) (store.JobQuery, error) {
	var q store.JobQuery
	q.Pipeline = c.Query("pipeline")
	for _, raw := range c.Context().QueryArgs().PeekMulti("status") {
		for _, s := range strings.Split(string(raw), ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			st, ok := pipeline.ParseJobStatus(s)
			if !ok {
				return q, badRequest("Invalid status " + strconv.Quote(s) + ": " + jobStatusHint)
			}
			q.Statuses = append(q.Statuses, st)
		}
	}
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxPageSize {
			return q, badRequest("Invalid limit: use a number from 1 to 1000")
		}
		q.Limit = n
	}
	if raw := c.Query("cursor"); raw != "" {
		id, err := uuid.Parse(raw)
		if err != nil {
			return q, badRequest("Invalid cursor")
		}
		q.Before = id.String()
	}
	return q, nil
}

// sendJobList answers with one page of jobs (q.Limit 0: every job, see streamJobList) as a
// JSON object: prefix (the opening brace and any fields before "jobs"), then "jobs" and, when
// the limit cut the list, "nextCursor". A page (at most 1,000 jobs) is encoded one job at a
// time as the store streams them, into pooled chunks that become the response body, sent with
// a Content-Length: the page is one snapshot, the read ends before the first byte is sent, and
// an error still gets an error response. A whole list streams instead, because holding it
// whole would cost its size in memory.
func (h *handlers) sendJobList(c *fiber.Ctx, prefix []byte, q store.JobQuery) error {
	if q.Limit == 0 {
		return h.streamJobList(c, prefix, q)
	}
	limit := q.Limit
	if limit > 0 {
		// One job more than the limit tells whether a next page exists.
		q.Limit = limit + 1
	}
	q.VariablesAsJSON = true
	body := &chunkedBody{}
	buf := body.start()
	buf = append(buf, prefix...)
	buf = append(buf, `"jobs":[`...)
	var (
		n    int
		last string
		more bool
	)
	err := h.runner.EachJob(c.UserContext(), q, func(j *pipeline.Job) error {
		if limit > 0 && n == limit {
			more = true
			return errListComplete
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = appendJobJSON(buf, j); err != nil {
			return fmt.Errorf("job %s: %w", j.ID, err)
		}
		n++
		last = j.ID
		if len(buf) >= listChunk {
			buf = body.push(buf)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errListComplete) {
		body.finish(buf)
		body.Close()
		return err
	}
	buf = append(buf, ']')
	if more {
		buf = append(buf, `,"nextCursor":`...)
		buf = appendJSONString(buf, last)
	}
	buf = append(buf, '}')
	body.finish(buf)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	c.Response().SetBodyStream(body, body.size)
	return nil
}

// listChunk is the size at which the encoder moves on to the next chunk of a list.
const listChunk = 64 << 10

// listChunks holds the chunks of list bodies; a chunk has room for one more job past listChunk.
var listChunks = sync.Pool{New: func() any {
	b := make([]byte, 0, listChunk+16<<10)
	return &b
}}

// chunkedBody is a response body made of encoded chunks. The server reads it after the handler
// returned and closes it, which returns the chunks to the pool.
type chunkedBody struct {
	chunks []*[]byte
	cur    *[]byte // the chunk being filled
	size   int
	read   int // bytes of chunks[0] already read
}

// start returns the first chunk to fill.
func (b *chunkedBody) start() []byte {
	b.cur = listChunks.Get().(*[]byte)
	return (*b.cur)[:0]
}

// push keeps the filled chunk (which may have grown past its capacity) and returns the next.
func (b *chunkedBody) push(filled []byte) []byte {
	b.finish(filled)
	return b.start()
}

// finish keeps the last filled chunk.
func (b *chunkedBody) finish(filled []byte) {
	*b.cur = filled
	b.chunks = append(b.chunks, b.cur)
	b.size += len(filled)
	b.cur = nil
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	for len(b.chunks) > 0 {
		c := *b.chunks[0]
		if b.read < len(c) {
			n := copy(p, c[b.read:])
			b.read += n
			return n, nil
		}
		listChunks.Put(b.chunks[0])
		b.chunks[0] = nil
		b.chunks = b.chunks[1:]
		b.read = 0
	}
	return 0, io.EOF
}

// WriteTo writes the rest of the body a chunk per write (the server copies with it instead of
// Read through a small buffer).
func (b *chunkedBody) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for len(b.chunks) > 0 {
		c := *b.chunks[0]
		n, err := w.Write(c[b.read:])
		total += int64(n)
		b.read += n
		if err != nil {
			return total, err
		}
		listChunks.Put(b.chunks[0])
		b.chunks[0] = nil
		b.chunks = b.chunks[1:]
		b.read = 0
	}
	return total, nil
}

// Close returns the chunks to the pool.
func (b *chunkedBody) Close() error {
	for _, c := range b.chunks {
		listChunks.Put(c)
	}
	b.chunks = nil
	return nil
}

// errListComplete stops a list once it has one job more than the page.
var errListComplete = errors.New("list complete")

// jobs serves GET /jobs: one page of jobs (same parameters as /pipelines/jobs), without the
// pipeline list.
func (h *handlers) jobs(c *fiber.Ctx) error {
	q, err := jobQueryParams(c)
	if err != nil {
		return err
	}
	if q.Limit == 0 {
		q.Limit = 50
	}
	return h.sendJobList(c, []byte{'{'}, q)
}
