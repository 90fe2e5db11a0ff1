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

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Timing of live log streams.
const (
	// liveHeartbeat is how often a comment line keeps an idle stream open (and tells whether
	// the client is still there).
	liveHeartbeat = 15 * time.Second
	// liveRefollow is how long a stream waits before following again after a follow ended
	// without output while the task had not ended (for example a task that runs on another
	// node, whose output is not live here).
	liveRefollow = time.Second
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

// liveStream is one live log response.
type liveStream struct {
	runner    Runner
	logger    *slog.Logger
	id, task  string
	done      <-chan struct{}
	conn      net.Conn
	heartbeat time.Duration

	// pos is what was sent of each stream (stdout, stderr): the offsets in the events' ids.
	pos [2]int64
	// attempt is the attempt of a retried task whose output is sent (0 before the first look).
	attempt int
	// carry holds the start of a character that a piece of output ended in the middle of; it
	// goes out with the next piece. The follow continues after it (pos + len(carry)).
	carry [2][]byte
	buf   []byte
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
	heartbeat := time.NewTicker(s.heartbeat)
	defer heartbeat.Stop()

	for {
		// Whether the task had ended before this follow started: then the follow reads its
		// output to the end and the stream is complete when it closes. Otherwise it closes
		// when the task ends (and the next round finds it ended) or when the runner dropped
		// this reader for falling behind (and the next round resumes).
		job, err := s.runner.Job(ctx, s.id)
		if err != nil {
			s.fail(ctx, w, err)
			return
		}
		t := job.Task(s.task)
		ended := job.Status.Final() || t != nil && t.Status.Final()
		if t != nil && max(t.Attempt, 1) != s.attempt {
			// A retried task: the runner follows the current attempt, whose output has
			// offsets of its own.
			first := s.attempt == 0
			s.attempt = max(t.Attempt, 1)
			if !first {
				s.pos = [2]int64{}
			}
			if (!first || s.attempt > 1) && s.attemptEvent(w) != nil {
				return
			}
		}

		s.carry = [2][]byte{}
		from := map[pipeline.LogStream]int64{pipeline.Stdout: s.pos[0], pipeline.Stderr: s.pos[1]}
		chunks, err := s.runner.FollowLog(ctx, s.id, s.task, from)
		if err != nil {
			s.fail(ctx, w, err)
			return
		}
		sent, ok := s.forward(ctx, w, chunks, heartbeat.C)
		if !ok {
			return
		}
		if ended {
			s.end(w, t)
			return
		}
		if !sent {
			timer := time.NewTimer(liveRefollow)
			select {
			case <-timer.C:
			case <-heartbeat.C:
				timer.Stop()
				if s.comment(w, "keep-alive") != nil {
					return
				}
			case <-ctx.Done():
				timer.Stop()
				return
			}
		}
	}
}

// watchShutdown ends the stream when the server shuts down: it cancels the follow and bounds
// the time a write to the connection may still take. The returned function stops watching; it
// returns once the watcher has stopped, so nothing touches the connection after the response.
func (s *liveStream) watchShutdown(cancel context.CancelFunc) (stop func()) {
	if s.done == nil {
		return func() {}
	}
	quit := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-s.done:
			cancel()
			if s.conn != nil {
				_ = s.conn.SetWriteDeadline(time.Now().Add(shutdownWriteGrace))
			}
		case <-quit:
		}
	}()
	return func() {
		close(quit)
		<-stopped
	}
}

// forward writes the chunks of one follow as events until its channel closes. It reports
// whether it wrote any output, and false in ok when the stream must end (the client went away,
// the server shuts down).
func (s *liveStream) forward(ctx context.Context, w *bufio.Writer, chunks <-chan pipeline.LogChunk, heartbeat <-chan time.Time) (sent, ok bool) {
	for {
		select {
		case c, open := <-chunks:
			if !open {
				return sent, ctx.Err() == nil
			}
			wrote, err := s.chunk(w, c)
			if err != nil {
				return sent, false
			}
			sent = sent || wrote
		case <-heartbeat:
			if s.comment(w, "keep-alive") != nil {
				return sent, false
			}
		case <-ctx.Done():
			return sent, false
		}
	}
}

func streamIndex(stream pipeline.LogStream) int {
	if stream == pipeline.Stderr {
		return 1
	}
	return 0
}

// chunk writes one piece of output as an event (the start of a character it ends in the middle
// of waits for the next piece). It reports whether it wrote an event.
func (s *liveStream) chunk(w *bufio.Writer, c pipeline.LogChunk) (bool, error) {
	i := streamIndex(c.Stream)
	next := s.pos[i] + int64(len(s.carry[i]))
	if c.Offset != next {
		// The runner sends each stream in order and without gaps from the offsets asked for;
		// anything else is a bug that must not corrupt the client's copy.
		if c.Offset > next || c.Offset+int64(len(c.Data)) <= next {
			s.logger.Error("live log: chunk out of order", "stream", c.Stream, "offset", c.Offset, "want", next)
			return false, nil
		}
		c.Data = c.Data[next-c.Offset:]
	}
	// c.Data is shared with other readers: never modify it.
	data := c.Data
	if len(s.carry[i]) > 0 {
		data = append(s.carry[i], c.Data...)
	}
	keep := incompleteUTF8Tail(data)
	s.carry[i] = bytes.Clone(data[len(data)-keep:])
	data = data[:len(data)-keep]
	if len(data) == 0 {
		return false, nil
	}
	return true, s.event(w, c.Stream, i, data)
}

// event writes one output event and advances stream i past data.
func (s *liveStream) event(w *bufio.Writer, stream pipeline.LogStream, i int, data []byte) error {
	s.pos[i] += int64(len(data))
	fmt.Fprintf(w, "event: %s\nid: %d,%d\ndata: {\"text\":", stream, s.pos[0], s.pos[1])
	if err := writeJSONString(w, bytes.NewReader(data), s.buf); err != nil {
		return err
	}
	if _, err := w.WriteString("}\n\n"); err != nil {
		return err
	}
	return w.Flush()
}

// attemptEvent tells that the output of another attempt of a retried task follows; the offsets
// start again at 0.
func (s *liveStream) attemptEvent(w *bufio.Writer) error {
	fmt.Fprintf(w, "event: attempt\nid: %d,%d\ndata: {\"attempt\":%d}\n\n", s.pos[0], s.pos[1], s.attempt)
	return w.Flush()
}

// liveEnd is the data of the end event.
type liveEnd struct {
	Status   pipeline.TaskStatus `json:"status"`
	ExitCode int                 `json:"exitCode"`
	Error    string              `json:"error,omitempty"`
}

// end writes what is left of a character cut at the very end of the output (as U+FFFD) and the
// end event with the task's final state. t is nil for an on_error handler that never ran.
func (s *liveStream) end(w *bufio.Writer, t *pipeline.Task) {
	for i, stream := range [2]pipeline.LogStream{pipeline.Stdout, pipeline.Stderr} {
		if len(s.carry[i]) > 0 {
			if err := s.event(w, stream, i, s.carry[i]); err != nil {
				return
			}
			s.carry[i] = nil
		}
	}
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
