package api

import (
	"context"
	"strconv"
	"strings"

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

type jobPage struct {
	Jobs       []jobView `json:"jobs"`
	NextCursor string    `json:"nextCursor,omitempty"`
}

// jobPage lists one page of jobs. It asks for one job more than the limit to know whether a next
// page exists.
func (h *handlers) jobPage(ctx context.Context, q store.JobQuery) (jobPage, error) {
	limit := q.Limit
	if limit > 0 {
		q.Limit = limit + 1
	}
	jobs, err := h.runner.Jobs(ctx, q)
	if err != nil {
		return jobPage{}, err
	}
	var page jobPage
	if limit > 0 && len(jobs) > limit {
		jobs = jobs[:limit]
		page.NextCursor = jobs[limit-1].ID
	}
	page.Jobs = newJobViews(jobs)
	return page, nil
}

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
	page, err := h.jobPage(c.UserContext(), q)
	if err != nil {
		return err
	}
	return c.JSON(page)
}
