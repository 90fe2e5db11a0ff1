package api

import (
	"errors"
	"fmt"
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

// jobStatuses are the accepted values of the status filter (the persisted job statuses).
var jobStatuses = map[string]pipeline.JobStatus{
	"queued": pipeline.JobQueued, "running": pipeline.JobRunning, "succeeded": pipeline.JobSucceeded,
	"failed": pipeline.JobFailed, "canceled": pipeline.JobCanceled, "replaced": pipeline.JobReplaced,
}

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
			st, ok := jobStatuses[s]
			if !ok {
				return q, badRequest("Invalid status " + strconv.Quote(s) + ": use queued, running, succeeded, failed, canceled or replaced")
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

// sendJobList answers with one page of jobs (q.Limit 0: every job) as a JSON object: prefix
// (the opening brace and any fields before "jobs"), then "jobs" and, when the limit cut the
// list, "nextCursor". The jobs are encoded one by one as the store streams them, into the
// response body in chunks: a list of 10,000 jobs never exists as views or as a second copy.
func (h *handlers) sendJobList(c *fiber.Ctx, prefix []byte, q store.JobQuery) error {
	limit := q.Limit
	if limit > 0 {
		// One job more than the limit tells whether a next page exists.
		q.Limit = limit + 1
	}
	resp := c.Response()
	resp.ResetBody()
	bp := listBuffers.Get().(*[]byte)
	defer listBuffers.Put(bp)
	buf := append((*bp)[:0], prefix...)
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
			resp.AppendBody(buf)
			buf = buf[:0]
		}
		return nil
	})
	*bp = buf[:0]
	if err != nil && !errors.Is(err, errListComplete) {
		resp.ResetBody()
		return err
	}
	buf = append(buf, ']')
	if more {
		buf = append(buf, `,"nextCursor":`...)
		buf = appendJSONString(buf, last)
	}
	buf = append(buf, '}')
	resp.AppendBody(buf)
	*bp = buf[:0]
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return nil
}

// listChunk is how much of a list is encoded before it is appended to the response body.
const listChunk = 32 << 10

// listBuffers holds the encoding buffers of lists.
var listBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, listChunk+8<<10)
	return &b
}}

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
