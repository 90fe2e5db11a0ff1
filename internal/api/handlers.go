package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// maxTaskNameLength bounds the task query parameter; no real task name comes near it.
const maxTaskNameLength = 256

// handlers serves the compatible API routes.
type handlers struct {
	runner Runner
	logger *slog.Logger
	// done is closed when the server shuts down (see Config.Done): streamed lists end.
	done <-chan struct{}
	// listBuffer bounds what a whole list holds to send a Content-Length (Config.ListBuffer).
	listBuffer int
}

type pipelinesResponse struct {
	Pipelines []pipelineView `json:"pipelines"`
}

// pipelines serves GET /pipelines.
func (h *handlers) pipelines(c *fiber.Ctx) error {
	infos, err := h.runner.Pipelines(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(pipelinesResponse{Pipelines: pipelineViews(infos)})
}

// pipelinesJobs serves GET /pipelines/jobs: every pipeline and every job, newest first (or one
// page of them with limit/cursor; then nextCursor follows the jobs).
func (h *handlers) pipelinesJobs(c *fiber.Ctx) error {
	ctx := c.UserContext()
	infos, err := h.runner.Pipelines(ctx)
	if err != nil {
		return err
	}
	q, err := jobQueryParams(c)
	if err != nil {
		return err
	}
	pipelines, err := json.Marshal(pipelineViews(infos))
	if err != nil {
		return err
	}
	prefix := make([]byte, 0, len(pipelines)+16)
	prefix = append(prefix, `{"pipelines":`...)
	prefix = append(prefix, pipelines...)
	prefix = append(prefix, ',')
	return h.sendJobList(c, prefix, q)
}

// scheduleBody is the body of POST /pipelines/schedule. Unknown fields are ignored.
type scheduleBody struct {
	Pipeline string `json:"pipeline"`
	// Variables is decoded as any so that a non-object can be told apart from a malformed body.
	Variables      any    `json:"variables"`
	QueuePartition string `json:"queuePartition"`
}

type scheduleResponse struct {
	JobID string `json:"jobId"`
}

// schedule serves POST /pipelines/schedule. It answers exactly 202, which the PHP client
// requires.
func (h *handlers) schedule(c *fiber.Ctx) error {
	var body scheduleBody
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	// Numbers stay json.Number so that 12345678901 comes back as 12345678901, not 1.2345678901e+10.
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		return badRequest("Error decoding JSON: " + err.Error())
	}
	var variables map[string]any
	switch v := body.Variables.(type) {
	case nil:
	case map[string]any:
		variables = v
	default:
		return badRequest("Error decoding JSON: variables must be an object")
	}
	key := c.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		return badRequest(fmt.Sprintf("Idempotency-Key is longer than %d characters", maxIdempotencyKey))
	}
	id, err := h.runner.Schedule(c.UserContext(), pipeline.ScheduleRequest{
		Pipeline:       body.Pipeline,
		Variables:      variables,
		QueuePartition: body.QueuePartition,
		User:           userFrom(c),
		IdempotencyKey: key,
	})
	if err != nil {
		return &scheduleError{pipeline: body.Pipeline, err: err}
	}
	return c.Status(fiber.StatusAccepted).JSON(scheduleResponse{JobID: id})
}

// maxIdempotencyKey bounds the Idempotency-Key header of schedule requests.
const maxIdempotencyKey = 255

// jobDetail serves GET /job/detail?id=.
func (h *handlers) jobDetail(c *fiber.Ctx) error {
	id, err := jobIDParam(c)
	if err != nil {
		return err
	}
	job, err := h.runner.Job(c.UserContext(), id)
	if err != nil {
		return err
	}
	if job.Status == pipeline.JobQueued {
		wait, err := h.runner.WaitInfo(c.UserContext(), id)
		if err != nil {
			return err
		}
		if wait != nil {
			view := newJobView(job)
			view.Wait = &waitView{Position: wait.Position, Of: wait.Of, Partition: wait.Partition, Reason: wait.Reason}
			return c.JSON(view)
		}
	}
	// Clients poll the detail of running jobs, some with hundreds of tasks: the list encoder
	// writes the same bytes as encoding/json would, several times faster.
	body, err := appendJobJSON(make([]byte, 0, 512+256*len(job.Tasks)), job)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(body)
}

// jobCancel serves POST /job/cancel?id=. It answers exactly 200 with the body true, which the
// PHP client requires; the request body is ignored.
func (h *handlers) jobCancel(c *fiber.Ctx) error {
	id, err := jobIDParam(c)
	if err != nil {
		return err
	}
	if err := h.runner.Cancel(c.UserContext(), id); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(fiber.StatusOK).SendString("true")
}

// jobLogs serves GET /job/logs?id=&task= as {"stdout": "…", "stderr": "…", "stdoutOffset": N,
// "stderrOffset": M}. With the optional stdoutOffset/stderrOffset parameters only the bytes from
// there on are sent; the offsets in the answer are where the next read continues. The logs are
// streamed from the runner's readers into the response and never held in memory whole.
func (h *handlers) jobLogs(c *fiber.Ctx) error {
	id, err := jobIDParam(c)
	if err != nil {
		return err
	}
	task, err := taskParam(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	_, t, err := jobTask(ctx, h.runner, id, task)
	if err != nil {
		return err
	}
	attempt, err := attemptParam(c, t)
	if err != nil {
		return err
	}
	stdoutFrom, stdoutGiven, err := offsetParam(c, "stdoutOffset")
	if err != nil {
		return err
	}
	stderrFrom, stderrGiven, err := offsetParam(c, "stderrOffset")
	if err != nil {
		return err
	}
	open := func(stream pipeline.LogStream) (io.ReadCloser, error) {
		if attempt == 0 {
			return h.runner.OpenLog(ctx, id, task, stream) // the last attempt
		}
		return h.runner.OpenAttemptLog(ctx, id, task, attempt, stream)
	}
	// Both readers are opened before the response starts, so that failing to open one still
	// maps to a status.
	stdout, err := open(pipeline.Stdout)
	if err != nil {
		return err
	}
	stderr, err := open(pipeline.Stderr)
	if err != nil {
		_ = stdout.Close()
		return err
	}
	// A poller that gives offsets never gets half of a character at the end of a section.
	holdBack := stdoutGiven || stderrGiven
	stdoutSec, err := cutLog(stdout, stdoutFrom, holdBack)
	var stderrSec logSection
	if err == nil {
		stderrSec, err = cutLog(stderr, stderrFrom, holdBack)
	}
	if err != nil {
		_ = stdout.Close()
		_ = stderr.Close()
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	if c.Method() == fiber.MethodHead {
		_ = stdout.Close()
		_ = stderr.Close()
		return nil
	}
	// The stream writer runs after this handler returned, in its own goroutine: it must not use
	// c, so everything it needs is copied into locals here.
	logger := h.logger.With("job_id", id, "task", task)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer func() {
			_ = stdout.Close()
			_ = stderr.Close()
		}()
		if err := writeLogSections(w, stdoutSec, stderrSec); err != nil {
			// The status is sent already; the client sees a truncated body.
			logger.Warn("stream job logs", "error", err)
		}
	})
	return nil
}

// attemptParam returns the optional query parameter attempt of GET /job/logs: 0 when absent
// (the last attempt), a 400 error when it is not a positive number, pipeline.ErrAttemptNotFound
// beyond the attempts of task t.
func attemptParam(c *fiber.Ctx, t *pipeline.Task) (int, error) {
	raw := c.Query("attempt")
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return 0, badRequest("Invalid attempt: must be a positive number")
	}
	if n > max(t.Attempt, 1) {
		return 0, fmt.Errorf("task %q: attempt %d: %w", t.Name, n, pipeline.ErrAttemptNotFound)
	}
	return n, nil
}

// jobIDParam returns the query parameter id in canonical UUID form, or a 400 error.
func jobIDParam(c *fiber.Ctx) (string, error) {
	id, err := uuid.Parse(c.Query("id"))
	if err != nil {
		return "", badRequest("Invalid job id")
	}
	return id.String(), nil
}
