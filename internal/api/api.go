// Package api is prunner's HTTP interface: the JSON API that is compatible with the original
// prunner (README.md, section "API"; every route is described in openapi.json), its JWT
// authentication, request logging and the one function that maps errors to HTTP statuses.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// DefaultBodyLimit is the largest request body accepted when Config.BodyLimit is 0.
const DefaultBodyLimit = 1 << 20

// Config configures the HTTP app.
type Config struct {
	// Secret is the HS256 key that every API request's JWT must be signed with. Required.
	Secret []byte
	// Logger receives one line per request and the causes of internal errors. Defaults to
	// slog.Default().
	Logger *slog.Logger
	// EnableProfiling serves net/http/pprof under /debug/pprof/ (behind the JWT check).
	EnableProfiling bool
	// BodyLimit is the largest request body in bytes; larger ones get 413 without being read.
	// 0 means DefaultBodyLimit.
	BodyLimit int
	// Ready reports whether the server can do its work (store reachable, definitions loaded);
	// /readyz answers 503 with its error. Nil means always ready.
	Ready func(ctx context.Context) error
	// Metrics serves the Prometheus metrics at /metrics (nil: no route). The route needs a token
	// unless MetricsPublic is set.
	Metrics       http.Handler
	MetricsPublic bool
	// Done ends the live log streams (GET /job/logs/live) and streamed job lists when it is
	// closed. Close it when the server's shutdown starts: the shutdown waits for open
	// connections, and a live stream would otherwise stay open until its task ends (a list,
	// until a slow client read it). Nil: streams end only with their task or client.
	Done <-chan struct{}
	// ListBuffer is how many bytes of a whole job list (GET /pipelines/jobs without limit) are
	// held to send it with a Content-Length; a longer list is sent chunked as it is read, so
	// that no list costs more memory than this. 0: DefaultListBuffer.
	ListBuffer int
	// Schedules manages the schedules (issue 11): with it the app serves /schedules and its
	// sub-routes; nil means the server has no scheduler and those routes do not exist (404).
	Schedules Schedules
}

// DefaultListBuffer is Config.ListBuffer's default: a list of about 20,000 typical jobs still
// goes out with a Content-Length, which fasthttp writes in large pieces; a chunked body costs a
// write to the socket per 4 KiB.
const DefaultListBuffer = 8 << 20

// New returns the Fiber app serving the prunner-compatible API with r. It panics when
// cfg.Secret is empty, because an app that cannot authenticate anyone is a wiring bug.
func New(cfg Config, r Runner) *fiber.App {
	if len(cfg.Secret) == 0 {
		panic("api.New: empty JWT secret")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	secret := append([]byte(nil), cfg.Secret...)
	logger := cfg.Logger

	app := fiber.New(fiber.Config{
		// Handlers may keep strings from the request (IDs, names) beyond the handler.
		Immutable:             true,
		DisableStartupMessage: true,
		BodyLimit:             cfg.BodyLimit,
		// Request line and headers; larger ones get 431. Fiber's 4 KiB default is tight for
		// browsers with a few cookies.
		ReadBufferSize: 16 << 10,
		// Response writes: a streamed body goes out in chunks of 4 KiB, each flushed on its
		// own (fasthttp's chunked encoding); a buffer with room for a whole chunk and its
		// framing makes that one write to the socket per chunk instead of two.
		WriteBufferSize: 8 << 10,
		ErrorHandler:    errorHandler(logger),
	})
	app.Use(logRequests(logger))

	h := &handlers{runner: r, logger: logger, done: cfg.Done, listBuffer: cfg.ListBuffer}
	if h.listBuffer <= 0 {
		h.listBuffer = DefaultListBuffer
	}
	authn := requireToken(secret)
	app.Get("/pipelines", authn, h.pipelines) // non-strict routing also serves /pipelines/
	app.Get("/pipelines/jobs", authn, h.pipelinesJobs)
	app.Post("/pipelines/schedule", authn, h.schedule)
	app.Get("/job/detail", authn, h.jobDetail)
	app.Get("/jobs", authn, h.jobs)
	app.Get("/job/logs", authn, h.jobLogs)
	app.Get("/job/logs/raw", authn, h.jobLogRaw)
	app.Get("/job/logs/live", authn, newLiveLogsHandler(r, logger, cfg.Done))
	app.Post("/job/cancel", authn, h.jobCancel)

	if cfg.Schedules != nil {
		registerSchedules(app, cfg.Schedules, authn)
	}
	if n, ok := r.(Nodes); ok {
		registerNodes(app, n, authn)
	}
	registerOps(app, cfg, authn)
	if cfg.EnableProfiling {
		registerPprof(app, authn)
	}
	return app
}

// requestStartKey is the c.Locals key under which logRequests stores the request's start time;
// its presence tells errorHandler that the request line will be logged by logRequests.
type requestStartKey struct{}

// logRequests logs one line per request with its final status. Errors returned by later
// handlers are turned into responses here (not after this middleware returns) so that the
// logged status is the one sent; panics become 500s instead of killing the server.
//
// duration_ms covers the handler only: a streamed body (job logs) is written after it returns.
func logRequests(logger *slog.Logger) fiber.Handler {
	return func(c *fiber.Ctx) (err error) {
		start := time.Now()
		c.Locals(requestStartKey{}, start)
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
			}
			if err != nil {
				if herr := c.App().ErrorHandler(c, err); herr != nil {
					logger.Error("error handler failed", "error", herr)
					_ = c.SendStatus(fiber.StatusInternalServerError)
				}
				err = nil
			}
			logRequest(logger, c, time.Since(start))
		}()
		return c.Next()
	}
}

func logRequest(logger *slog.Logger, c *fiber.Ctx, d time.Duration) {
	logger.Info("http request",
		"method", c.Method(),
		"path", c.Path(),
		"status", c.Response().StatusCode(),
		"duration_ms", float64(d.Microseconds())/1000,
		"remote", c.IP(),
	)
}

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error string `json:"error"`
}

// errorHandler answers err with errorStatus's status and message and logs the cause of internal
// errors. It also receives errors that fasthttp raises before any handler runs (an oversized
// body, a malformed request); those requests are logged here because logRequests never saw them.
func errorHandler(logger *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		status, msg := errorStatus(err)
		switch {
		case errors.Is(err, store.ErrUnavailable):
			// Not a failure of prunner's: the database is down or cut off, and every request
			// says so until it is back. One line, without the noise of an internal error.
			logger.Warn("request failed: database unavailable", "method", c.Method(), "path", c.Path(), "status", status, "error", err)
		case status >= fiber.StatusInternalServerError && !errors.Is(err, pipeline.ErrShuttingDown) && !errors.Is(err, store.ErrLeaseLost):
			logger.Error("request failed", "method", c.Method(), "path", c.Path(), "status", status, "error", err)
		}
		c.Response().ResetBody()
		if jerr := c.Status(status).JSON(errorBody{Error: msg}); jerr != nil {
			return jerr
		}
		if c.Locals(requestStartKey{}) == nil {
			logRequest(logger, c, 0)
		}
		return nil
	}
}

// requestError is an error caused by the request, with a status and a message safe to show.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(msg string) error {
	return &requestError{status: fiber.StatusBadRequest, msg: msg}
}

// scheduleError carries the requested pipeline's name along with the runner's error so that
// errorStatus can name it. Its text is the runner's.
type scheduleError struct {
	pipeline string
	err      error
}

func (e *scheduleError) Error() string { return e.err.Error() }
func (e *scheduleError) Unwrap() error { return e.err }

// UnavailableMessage is the error of every response to a request that failed because the job
// database could not be reached (store.ErrUnavailable).
const UnavailableMessage = "The job database is unreachable: nothing was stored; retry in a moment"

// errorStatus is the one mapping from errors to HTTP statuses and the messages clients see.
// Messages of internal errors are never shown; the caller logs them.
func errorStatus(err error) (status int, message string) {
	var (
		reqErr   *requestError
		fiberErr *fiber.Error
		schedErr *scheduleError
	)
	switch {
	case errors.As(err, &reqErr):
		return reqErr.status, reqErr.msg
	case errors.Is(err, pipeline.ErrShuttingDown):
		return fiber.StatusServiceUnavailable, "Server is shutting down"
	case errors.Is(err, store.ErrLeaseLost):
		// A node of a cluster that lost its lease on the database writes nothing until it has
		// a new one: nothing was stored, and another node (or this one in a moment) can take it.
		return fiber.StatusServiceUnavailable, "This node has lost its lease on the database and stores nothing until it has a new one: retry in a moment or through another node"
	case errors.Is(err, store.ErrUnavailable):
		// The store could not reach the database (or it did not answer in time): the request
		// changed nothing, and the same request succeeds once the database is back.
		return fiber.StatusServiceUnavailable, UnavailableMessage
	case errors.Is(err, pipeline.ErrScheduleNotFound):
		return fiber.StatusNotFound, err.Error()
	case errors.Is(err, pipeline.ErrScheduleExists), errors.Is(err, pipeline.ErrScheduleFromFile):
		return fiber.StatusConflict, err.Error()
	case errors.Is(err, pipeline.ErrInvalidSchedule):
		// The scheduler's messages say what to change; they are meant for people.
		return fiber.StatusBadRequest, err.Error()
	case errors.Is(err, pipeline.ErrUnknownPipeline):
		if errors.As(err, &schedErr) {
			return fiber.StatusBadRequest, fmt.Sprintf("pipeline %q not found", schedErr.pipeline)
		}
		return fiber.StatusBadRequest, "pipeline not found"
	case errors.Is(err, pipeline.ErrQueueFull), errors.Is(err, pipeline.ErrNoQueue):
		// 400, not the 409 the dashboard shows for the same rejection, on purpose: it is what
		// the original prunner answers to a schedule request it cannot queue, and clients
		// written for it (the PHP package, prunner-ui) may rely on it.
		return fiber.StatusBadRequest, err.Error()
	case errors.Is(err, pipeline.ErrJobNotFound):
		return fiber.StatusNotFound, "Job not found"
	case errors.Is(err, pipeline.ErrTaskNotFound):
		return fiber.StatusNotFound, "Task not found"
	case errors.Is(err, pipeline.ErrAttemptNotFound):
		return fiber.StatusNotFound, "Attempt not found"
	case errors.Is(err, pipeline.ErrJobFinished):
		return fiber.StatusConflict, "Job already finished"
	case errors.Is(err, pipeline.ErrIdempotencyConflict):
		return fiber.StatusConflict, err.Error()
	case errors.As(err, &fiberErr):
		if fiberErr.Code >= fiber.StatusInternalServerError {
			return fiberErr.Code, "internal error"
		}
		return fiberErr.Code, fiberErr.Message
	default:
		return fiber.StatusInternalServerError, "internal error"
	}
}
