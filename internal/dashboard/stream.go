package dashboard

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"github.com/prunner-dev/prunner/internal/dashboard/view"
	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/web/templates"
)

// Live stream timing.
const (
	keepAliveEvery   = 15 * time.Second
	clockUpdateEvery = 2 * time.Second
	logBatchWindow   = 100 * time.Millisecond
	// A stream sends at most one event per batch window. When more than logWindowMax bytes
	// arrive in one window, only the newest logWindowKeep bytes are shown, after a notice: a
	// live tail must not flood the browser; the download has everything.
	logWindowMax  = 256 << 10
	logWindowKeep = 64 << 10
	retryMillis   = 2000
)

// sse writes server-sent events.
type sse struct {
	w        *bufio.Writer
	lastSent time.Time
}

// event writes one event; data may span lines (each becomes a data: line, which the browser
// joins with newlines).
func (s *sse) event(name, id, data string) {
	if id != "" {
		s.w.WriteString("id: " + id + "\n")
	}
	s.w.WriteString("event: " + name + "\n")
	for {
		line, rest, more := strings.Cut(data, "\n")
		s.w.WriteString("data: ")
		s.w.WriteString(strings.TrimSuffix(line, "\r"))
		s.w.WriteByte('\n')
		if !more {
			break
		}
		data = rest
	}
	s.w.WriteByte('\n')
}

// flush sends what was written; an error means the client is gone.
func (s *sse) flush() error {
	s.lastSent = time.Now()
	return s.w.Flush()
}

// keepAlive sends a comment when nothing was sent for a while, so that a closed connection is
// noticed while a stream waits.
func (s *sse) keepAlive() error {
	if time.Since(s.lastSent) < keepAliveEvery {
		return nil
	}
	s.w.WriteString(": keep-alive\n\n")
	return s.flush()
}

func startSSE(c *fiber.Ctx) {
	c.Set(fiber.HeaderContentType, "text/event-stream; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set("X-Accel-Buffering", "no")
}

// jobEvents streams a job page's fragments (head, details, graph, tasks, log head) whenever
// they change. The job is read from the store every PollInterval; the runner has no event
// feed yet. Changes of status are sent at once; running times at most every 2 s, so that
// swaps do not disturb a reader. The stream ends with an "end" event once the job is final.
func (d *Dashboard) jobEvents(c *fiber.Ctx) error {
	id := strings.Clone(param(c, "id"))
	task := strings.Clone(c.Query("task"))
	shown := strings.Clone(c.Query("log"))
	csrf := d.csrfToken(c)
	if _, err := d.runner.Job(c.UserContext(), id); err != nil {
		status, _, msg := failure(err)
		return c.Status(status).SendString(msg)
	}
	startSSE(c)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		d.streamJob(&sse{w: w}, id, task, shown, csrf)
	})
	return nil
}

// streamJob writes the job page's fragments until the job is final. task is the task the
// person chose; when they chose none, shown is the task whose log the page shows, and the log
// panel is replaced (event "log") whenever another task starts to matter (view.SelectTask).
func (d *Dashboard) streamJob(s *sse, id, task, shown, csrf string) {
	ctx, cancel := context.WithCancel(d.ctx)
	defer cancel()
	s.w.WriteString("retry: " + strconv.Itoa(retryMillis) + "\n\n")
	names := []string{"head", "details", "graph", "tasks", "loghead"}
	last := map[string]string{}
	var lastState string
	var lastClock time.Time
	ticker := time.NewTicker(d.cfg.PollInterval)
	defer ticker.Stop()
	for {
		job, err := d.runner.Job(ctx, id)
		if err != nil {
			if ctx.Err() == nil {
				s.event("end", "", "gone")
				_ = s.flush()
			}
			return
		}
		var wait *pipeline.WaitInfo
		if job.Status == pipeline.JobQueued {
			wait, _ = d.runner.WaitInfo(ctx, id)
		}
		now := d.now()
		v := view.NewJobView(job, view.JobInput{Paths: d.paths, CSRF: csrf, Wait: wait, Task: task, Now: now})
		state := jobState(job, wait)
		if state != lastState || time.Since(lastClock) >= clockUpdateEvery {
			comps := map[string]templ.Component{
				"head":    templates.JobHead(v),
				"details": templates.JobDetails(v),
				"graph":   templates.GraphView(v.Graph),
				"tasks":   templates.TasksView(v),
				"loghead": templates.LogHead(v.SelectedTask),
			}
			wrote := false
			if task == "" && v.Selected != shown {
				// A panel that cannot be built now (its log unreadable for a moment) is tried
				// again at the next change.
				if err := d.sendLogPanel(ctx, s, job, v); err == nil {
					shown, wrote = v.Selected, true
				} else if ctx.Err() != nil {
					return
				} else {
					d.logger.Warn("dashboard: switch log panel", "job_id", id, "task", v.Selected, "error", err)
				}
			}
			for _, name := range names {
				var buf bytes.Buffer
				if err := comps[name].Render(ctx, &buf); err != nil {
					d.logger.Error("dashboard: render fragment", "fragment", name, "job_id", id, "error", err)
					return
				}
				if html := buf.String(); html != last[name] {
					last[name] = html
					s.event(name, "", html)
					wrote = true
				}
			}
			lastState, lastClock = state, time.Now()
			if wrote {
				if err := s.flush(); err != nil {
					return
				}
			}
		}
		if job.Status.Final() {
			s.event("end", "", "done")
			_ = s.flush()
			return
		}
		if err := s.keepAlive(); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// sendLogPanel writes the log panel of the job view's selected task as the event "log".
func (d *Dashboard) sendLogPanel(ctx context.Context, s *sse, job *pipeline.Job, v view.JobView) error {
	panel, err := d.logPanel(ctx, job, v.Selected)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := templates.JobLog(v, panel).Render(ctx, &buf); err != nil {
		return fmt.Errorf("render log panel: %w", err)
	}
	s.event("log", "", buf.String())
	return nil
}

// jobState is a digest of what makes a job page change apart from the clock.
func jobState(j *pipeline.Job, w *pipeline.WaitInfo) string {
	var b strings.Builder
	b.WriteString(string(j.Status))
	b.WriteString(j.ReplacedBy)
	b.WriteString(j.LastError)
	stamp := func(t *time.Time) {
		if t != nil {
			b.WriteString(strconv.FormatInt(t.UnixNano(), 36))
		}
		b.WriteByte('|')
	}
	stamp(j.Start)
	stamp(j.End)
	for _, t := range j.Tasks {
		b.WriteString(t.Name)
		b.WriteByte(':')
		b.WriteString(string(t.Status))
		b.WriteString(t.Error)
		stamp(t.Start)
		stamp(t.End)
	}
	if w != nil {
		b.WriteString(strconv.Itoa(w.Position) + "/" + strconv.Itoa(w.Of) + w.Reason)
	}
	return b.String()
}

// logEvents streams a task's output from the given offsets (query parameters stdout and
// stderr, or the Last-Event-ID of a reconnecting browser) as escaped HTML, one event per
// stream and batch. Event IDs carry the offsets, so a reconnect resumes where it stopped.
func (d *Dashboard) logEvents(c *fiber.Ctx) error {
	id := strings.Clone(param(c, "id"))
	task := strings.Clone(param(c, "task"))
	offsets := map[pipeline.LogStream]int64{
		pipeline.Stdout: atoi64(c.Query("stdout")),
		pipeline.Stderr: atoi64(c.Query("stderr")),
	}
	if last := c.Get("Last-Event-ID"); last != "" {
		if a, b, ok := strings.Cut(last, ","); ok {
			offsets[pipeline.Stdout], offsets[pipeline.Stderr] = atoi64(a), atoi64(b)
		}
	}
	job, err := d.runner.Job(c.UserContext(), id)
	if err != nil {
		status, _, msg := failure(err)
		return c.Status(status).SendString(msg)
	}
	if job.Task(task) == nil {
		return c.Status(fiber.StatusNotFound).SendString("Task not found")
	}
	startSSE(c)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		d.streamLog(&sse{w: w}, id, task, offsets)
	})
	return nil
}

func (d *Dashboard) streamLog(s *sse, id, task string, offsets map[pipeline.LogStream]int64) {
	ctx, cancel := context.WithCancel(d.ctx)
	defer cancel()
	s.w.WriteString("retry: " + strconv.Itoa(retryMillis) + "\n\n")
	if err := s.flush(); err != nil {
		return
	}
	// carry holds an incomplete UTF-8 sequence at the end of what arrived, per stream.
	carry := map[pipeline.LogStream][]byte{}
	pending := map[pipeline.LogStream][]byte{}
	skipped := map[pipeline.LogStream]int64{}
	send := func() error {
		for _, st := range []pipeline.LogStream{pipeline.Stdout, pipeline.Stderr} {
			data := pending[st]
			if len(data) == 0 && skipped[st] == 0 {
				continue
			}
			complete, rest := splitComplete(data)
			carry[st] = append([]byte(nil), rest...)
			pending[st] = nil
			if len(complete) == 0 && skipped[st] == 0 {
				continue
			}
			eventID := strconv.FormatInt(offsets[pipeline.Stdout]-int64(len(carry[pipeline.Stdout])), 10) + "," +
				strconv.FormatInt(offsets[pipeline.Stderr]-int64(len(carry[pipeline.Stderr])), 10)
			html := logFragment(cleanLog(complete))
			if n := skipped[st]; n > 0 {
				html = skipFragment(n) + html
				skipped[st] = 0
			}
			s.event(string(st), eventID, html)
		}
		return s.flush()
	}
	// trim keeps the newest output of a window that got too much, from a line start.
	trim := func(st pipeline.LogStream) {
		data := pending[st]
		if len(data) <= logWindowMax {
			return
		}
		cut := len(data) - logWindowKeep
		if i := bytes.IndexByte(data[cut:], '\n'); i >= 0 && i < logWindowKeep-1 {
			cut += i + 1
		}
		// Do not start inside a UTF-8 sequence.
		for cut < len(data) && !utf8.RuneStart(data[cut]) {
			cut++
		}
		skipped[st] += int64(cut)
		pending[st] = append(data[:0:0], data[cut:]...)
	}
	keepAlive := time.NewTicker(keepAliveEvery)
	defer keepAlive.Stop()
	for {
		from := map[pipeline.LogStream]int64{
			pipeline.Stdout: offsets[pipeline.Stdout],
			pipeline.Stderr: offsets[pipeline.Stderr],
		}
		ch, err := d.runner.FollowLog(ctx, id, task, from)
		if err != nil {
			if ctx.Err() == nil {
				s.event("end", "", "gone")
				_ = s.flush()
			}
			return
		}
		got := false
		var batch <-chan time.Time
		open := true
		for open {
			select {
			case <-ctx.Done():
				return
			case chunk, ok := <-ch:
				if !ok {
					open = false
					break
				}
				if len(chunk.Data) == 0 {
					continue
				}
				got = true
				st := chunk.Stream
				if st != pipeline.Stderr {
					st = pipeline.Stdout
				}
				if chunk.Offset > offsets[st] {
					// The runner skipped ahead (it never does today); what lies between is lost
					// to this page but stays in the downloadable log.
					carry[st] = nil
				}
				skip := offsets[st] - chunk.Offset
				if skip >= int64(len(chunk.Data)) {
					continue
				}
				data := chunk.Data
				if skip > 0 {
					data = data[skip:]
				}
				if len(pending[st]) == 0 && len(carry[st]) > 0 {
					pending[st] = append(pending[st], carry[st]...)
					carry[st] = nil
				}
				pending[st] = append(pending[st], data...)
				offsets[st] = chunk.Offset + int64(len(chunk.Data))
				trim(st)
				if batch == nil {
					batch = time.After(logBatchWindow)
				}
			case <-batch:
				if err := send(); err != nil {
					return
				}
				batch = nil
			case <-keepAlive.C:
				if err := s.keepAlive(); err != nil {
					return
				}
			}
		}
		if err := send(); err != nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !got && d.taskEnded(ctx, id, task) {
			// Flush a carried incomplete sequence as it is: the output is complete.
			for st, rest := range carry {
				if len(rest) > 0 {
					s.event(string(st), "", logFragment(cleanLog(rest)))
				}
			}
			s.event("end", "", "done")
			_ = s.flush()
			return
		}
		if !got {
			// The channel closed without output while the task goes on (dropped, or not
			// started yet): try again shortly.
			select {
			case <-ctx.Done():
				return
			case <-time.After(d.cfg.PollInterval):
			}
			if err := s.keepAlive(); err != nil {
				return
			}
		}
	}
}

// taskEnded reports whether a task's output is complete: the task or its job is final (or
// gone).
func (d *Dashboard) taskEnded(ctx context.Context, id, task string) bool {
	job, err := d.runner.Job(ctx, id)
	if err != nil {
		return true
	}
	t := job.Task(task)
	return t == nil || t.Status.Final() || job.Status.Final()
}
