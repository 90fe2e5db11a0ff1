package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/prunner-dev/prunner/internal/logfollow"
	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Timing of live log streams.
const (
	// liveHeartbeat is how long an idle stream waits before a comment line keeps it open (and
	// tells whether the client is still there).
	liveHeartbeat = logfollow.DefaultHeartbeat
	// shutdownWriteGrace is how long a stream's last write may take once the server shuts
	// down; then the connection's writes fail, so that a client that does not read cannot hold
	// the shutdown.
	shutdownWriteGrace = time.Second
)

// liveLogs serves GET /job/logs/live?id=&task=: a task's output as Server-Sent Events.
//
// Framing: each piece of output is one event
//
//	event: stdout            (or stderr)
//	id: <stdoutOffset>,<stderrOffset>
//	data: {"text":"…"}
//
// The id holds both streams' byte offsets after this event: where to resume. The text is one
// JSON string on one data line, so newlines and a missing final newline survive exactly; invalid
// UTF-8 becomes U+FFFD (a character split between two pieces of output is never split between
// events). A client resumes with the Last-Event-ID header (which EventSource sends by itself) or
// with the stdoutOffset/stderrOffset query parameters; the header wins. When the task has ended
// and everything was sent, a last event
//
//	event: end
//	data: {"status":"done","exitCode":0}
//
// (plus "error" when the task has one) precedes the end of the response. For a retried task the
// output of the current attempt is sent, after an event attempt with data {"attempt":N}; when
// the next attempt starts, another such event (with id 0,0) precedes its output, whose offsets
// start at 0. A comment line is sent
// every 15 s while nothing else is. The stream also ends when the client goes away and when the
// server shuts down (done is closed); an error after the response started comes as an event
// error with data {"error":"…"}.
type liveLogs struct {
	runner    Runner
	logger    *slog.Logger
	done      <-chan struct{}
	heartbeat time.Duration
	// refollow is the wait before following a task again whose follow ended without output
	// (0: logfollow.DefaultRefollow).
	refollow time.Duration
}

// newLiveLogsHandler returns the handler of GET /job/logs/live. Streams end when done is closed
// (nil: never), so that closing it before the server's shutdown lets the shutdown finish.
func newLiveLogsHandler(r Runner, logger *slog.Logger, done <-chan struct{}) fiber.Handler {
	l := &liveLogs{runner: r, logger: logger, done: done, heartbeat: liveHeartbeat}
	return l.serve
}

func (l *liveLogs) serve(c *fiber.Ctx) error {
	id, err := jobIDParam(c)
	if err != nil {
		return err
	}
	task, err := taskParam(c)
	if err != nil {
		return err
	}
	from, err := liveOffsets(c)
	if err != nil {
		return err
	}
	job, err := l.runner.Job(c.UserContext(), id)
	if err != nil {
		return err
	}
	if job.Task(task) == nil && !hasOnError(job, task) {
		return pipeline.ErrTaskNotFound
	}
	c.Set(fiber.HeaderContentType, "text/event-stream; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	// Reverse proxies (nginx) must pass events on at once.
	c.Set("X-Accel-Buffering", "no")
	if c.Method() == fiber.MethodHead {
		return nil
	}
	// The headers go out at once, before the first event, which may take long.
	c.Context().Response.ImmediateHeaderFlush = true
	// The stream writer runs after this handler returned, in its own goroutine: it must not use
	// c, so everything it needs is copied here. The connection itself stays valid while the
	// response is being written.
	s := &liveStream{
		runner:    l.runner,
		logger:    l.logger.With("job_id", id, "task", task),
		id:        id,
		task:      task,
		pos:       from,
		done:      l.done,
		conn:      c.Context().Conn(),
		heartbeat: l.heartbeat,
		refollow:  l.refollow,
	}
	c.Context().SetBodyStreamWriter(s.run)
	return nil
}

// hasOnError reports whether task is the on_error handler of job's pipeline, which appears in
// the job's tasks only once it runs.
func hasOnError(job *pipeline.Job, task string) bool {
	return task == pipeline.OnErrorTaskName && job.Definition != nil && job.Definition.OnError != nil
}

// liveOffsets returns where a live stream starts: the Last-Event-ID header
// ("<stdoutOffset>,<stderrOffset>") when present, else the stdoutOffset and stderrOffset query
// parameters (missing ones are 0).
func liveOffsets(c *fiber.Ctx) ([2]int64, error) {
	var from [2]int64
	if last := c.Get("Last-Event-ID"); last != "" {
		a, b, ok := strings.Cut(last, ",")
		x, errA := strconv.ParseInt(a, 10, 64)
		y, errB := strconv.ParseInt(b, 10, 64)
		if !ok || errA != nil || errB != nil || x < 0 || y < 0 {
			return from, badRequest("Invalid Last-Event-ID: want <stdoutOffset>,<stderrOffset>")
		}
		return [2]int64{x, y}, nil
	}
	for i, name := range [2]string{"stdoutOffset", "stderrOffset"} {
		off, _, err := offsetParam(c, name)
		if err != nil {
			return from, err
		}
		from[i] = off
	}
	return from, nil
}

// liveStream is one live log response: it writes the events of a logfollow.Follow.
type liveStream struct {
	runner    Runner
	logger    *slog.Logger
	id, task  string
	done      <-chan struct{}
	conn      net.Conn
	heartbeat time.Duration
	refollow  time.Duration

	// pos is what was sent of each stream (stdout, stderr): the offsets in the events' ids.
	pos [2]int64
	buf []byte
}

// run writes the stream until the task ended and everything was sent, the client went away, or
// the server shuts down.
func (s *liveStream) run(w *bufio.Writer) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	began := time.Now()
	defer func() {
		s.logger.Debug("live log stream ended", "duration_ms", time.Since(began).Milliseconds(), "stdout_offset", s.pos[0], "stderr_offset", s.pos[1])
	}()
	stopWatch := s.watchShutdown(cancel)
	defer stopWatch()
	s.buf = make([]byte, logChunkSize)
	opts := logfollow.Options{From: s.pos, Heartbeat: s.heartbeat, Refollow: s.refollow, Logger: s.logger}
	_ = logfollow.Follow(ctx, s.runner, s.id, s.task, opts, func(ev logfollow.Event) error {
		return s.write(ctx, w, ev)
	})
}

// write writes one event of the follow; an error means the client is gone.
func (s *liveStream) write(ctx context.Context, w *bufio.Writer, ev logfollow.Event) error {
	switch ev.Kind {
	case logfollow.Output:
		return s.event(w, ev.Stream, ev.Data, ev.Pos)
	case logfollow.Attempt:
		s.pos = ev.Pos
		fmt.Fprintf(w, "event: attempt\nid: %d,%d\ndata: {\"attempt\":%d}\n\n", s.pos[0], s.pos[1], ev.Attempt)
		return w.Flush()
	case logfollow.Heartbeat:
		return s.comment(w, "keep-alive")
	case logfollow.End:
		s.end(w, ev.Task)
	case logfollow.Error:
		s.fail(ctx, w, ev.Err)
	}
	return nil
}

// watchShutdown ends the stream when the server shuts down (see watchShutdown): the follow is
// canceled and the connection's writes are bounded.
func (s *liveStream) watchShutdown(cancel context.CancelFunc) (stop func()) {
	return watchShutdown(s.done, s.conn, cancel)
}

// watchShutdown is how a response that is written after its handler returned (a live log, a
// streamed job list) ends when the server shuts down: when done is closed, onDone runs (nil:
// nothing to do) and a write to conn fails after shutdownWriteGrace, so that a client that
// stopped reading cannot hold the shutdown, which waits for open connections. The returned
// function stops watching; it returns once the watcher has stopped, so nothing touches the
// connection after the response. A nil done never fires.
func watchShutdown(done <-chan struct{}, conn net.Conn, onDone func()) (stop func()) {
	if done == nil {
		return func() {}
	}
	quit := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-done:
			if onDone != nil {
				onDone()
			}
			if conn != nil {
				_ = conn.SetWriteDeadline(time.Now().Add(shutdownWriteGrace))
			}
		case <-quit:
		}
	}()
	return func() {
		close(quit)
		<-stopped
	}
}

// event writes one output event; pos holds both streams' offsets after data.
func (s *liveStream) event(w *bufio.Writer, stream pipeline.LogStream, data []byte, pos [2]int64) error {
	s.pos = pos
	fmt.Fprintf(w, "event: %s\nid: %d,%d\ndata: {\"text\":", stream, s.pos[0], s.pos[1])
	// writeJSONString's scratch space grows with its read buffer: a small piece of output gets
	// a small one, not the 32 KiB for a whole log.
	if err := writeJSONString(w, bytes.NewReader(data), s.buf[:min(len(s.buf), len(data))]); err != nil {
		return err
	}
	if _, err := w.WriteString("}\n\n"); err != nil {
		return err
	}
	return w.Flush()
}

// liveEnd is the data of the end event.
type liveEnd struct {
	Status   pipeline.TaskStatus `json:"status"`
	ExitCode int                 `json:"exitCode"`
	Error    string              `json:"error,omitempty"`
}

// end writes the end event with the task's final state (what was left of a character cut at the
// very end of the output came before, as U+FFFD). t is nil for an on_error handler that never
// ran.
func (s *liveStream) end(w *bufio.Writer, t *pipeline.Task) {
	data := liveEnd{Status: pipeline.TaskSkipped}
	if t != nil {
		data = liveEnd{Status: t.Status, ExitCode: t.ExitCode, Error: t.Error}
	}
	b, _ := json.Marshal(data)
	fmt.Fprintf(w, "event: end\nid: %d,%d\ndata: %s\n\n", s.pos[0], s.pos[1], b)
	_ = w.Flush()
}

// fail ends the stream with an error event (the status was sent already). Errors caused by the
// stream ending are not reported.
func (s *liveStream) fail(ctx context.Context, w *bufio.Writer, err error) {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return
	}
	status, msg := errorStatus(err)
	if status >= fiber.StatusInternalServerError {
		s.logger.Error("live log", "error", err)
	}
	b, _ := json.Marshal(errorBody{Error: msg})
	fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
	_ = w.Flush()
}

// comment writes an SSE comment line, which clients ignore.
func (s *liveStream) comment(w *bufio.Writer, text string) error {
	if _, err := io.WriteString(w, ": "+text+"\n\n"); err != nil {
		return err
	}
	return w.Flush()
}
