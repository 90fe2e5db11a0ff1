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
	"github.com/prunner-dev/prunner/internal/logfollow"
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
	return s.comment()
}

// comment sends a comment line, which the browser ignores.
func (s *sse) comment() error {
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
	page := &jobPage{id: id, task: task, shown: shown, csrf: csrf, last: map[string]string{}}
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
		if !d.sendJobChanges(ctx, s, page, job) {
			return
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

// jobPage is what one job stream knows about the page it updates: what it was asked for and
// what it has sent so far.
type jobPage struct {
	id, task, shown, csrf string
	// last holds the fragments last sent, by name.
	last map[string]string
	// lastState and lastClock are the jobState and the time of the last render.
	lastState string
	lastClock time.Time
}

// sendJobChanges renders the job page again when the job changed or its clock is due, and
// sends the fragments that differ from the ones sent before. It reports false when the stream
// must end.
func (d *Dashboard) sendJobChanges(ctx context.Context, s *sse, p *jobPage, job *pipeline.Job) bool {
	var wait *pipeline.WaitInfo
	if job.Status == pipeline.JobQueued {
		wait, _ = d.runner.WaitInfo(ctx, p.id)
	}
	now := d.now()
	v := view.NewJobView(job, view.JobInput{Paths: d.paths, CSRF: p.csrf, Wait: wait, Task: p.task, Now: now})
	state := jobState(job, wait)
	if state == p.lastState && time.Since(p.lastClock) < clockUpdateEvery {
		return true
	}
	wrote := false
	if p.task == "" && v.Selected != p.shown {
		// A panel that cannot be built now (its log unreadable for a moment) is tried
		// again at the next change.
		if err := d.sendLogPanel(ctx, s, job, v); err == nil {
			p.shown, wrote = v.Selected, true
		} else if ctx.Err() != nil {
			return false
		} else {
			d.logger.Warn("dashboard: switch log panel", "job_id", p.id, "task", v.Selected, "error", err)
		}
	}
	sent, ok := d.sendChangedFragments(ctx, s, p, v)
	if !ok {
		return false
	}
	p.lastState, p.lastClock = state, time.Now()
	if wrote || sent {
		if err := s.flush(); err != nil {
			return false
		}
	}
	return true
}

// jobFragment is one part of the job page that the stream replaces: the event's name and
// its component.
type jobFragment struct {
	name      string
	component templ.Component
}

// jobFragments are the job page's parts, in the order the stream sends them.
func jobFragments(v view.JobView) [5]jobFragment {
	return [...]jobFragment{
		{"head", templates.JobHead(v)},
		{"details", templates.JobDetails(v)},
		{"graph", templates.GraphView(v.Graph)},
		{"tasks", templates.TasksView(v)},
		{"loghead", templates.LogHead(v.SelectedTask)},
	}
}

// sendChangedFragments renders the fragments of v and sends each that differs from the one
// last sent, reporting whether it sent any. A fragment that fails to render is logged and ends
// the stream (ok is false).
func (d *Dashboard) sendChangedFragments(ctx context.Context, s *sse, p *jobPage, v view.JobView) (sent, ok bool) {
	for _, f := range jobFragments(v) {
		var buf bytes.Buffer
		if err := f.component.Render(ctx, &buf); err != nil {
			d.logger.Error("dashboard: render fragment", "fragment", f.name, "job_id", p.id, "error", err)
			return sent, false
		}
		if html := buf.String(); html != p.last[f.name] {
			p.last[f.name] = html
			s.event(f.name, "", html)
			sent = true
		}
	}
	return sent, true
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
// stream and batch. Event IDs carry the offsets, and for a retried task's later attempts the
// attempt (see logEventID), so a reconnect resumes where it stopped, in the right attempt.
func (d *Dashboard) logEvents(c *fiber.Ctx) error {
	id := strings.Clone(param(c, "id"))
	task := strings.Clone(param(c, "task"))
	// The offsets of the page's first render belong to the attempt that was current then:
	// the follow takes them for the attempt that is current when it starts.
	from := [2]int64{atoi64(c.Query("stdout")), atoi64(c.Query("stderr"))}
	attempt := 0
	if pos, a, ok := parseLogEventID(c.Get("Last-Event-ID")); ok {
		from, attempt = pos, a
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
		d.streamLog(&sse{w: w}, id, task, from, attempt)
	})
	return nil
}

// logEventID is the id of a log event: the offsets of stdout and stderr after it, and for
// attempt 2 and later the attempt they belong to ("120,7" or "120,7,2").
func logEventID(pos [2]int64, attempt int) string {
	id := strconv.FormatInt(pos[0], 10) + "," + strconv.FormatInt(pos[1], 10)
	if attempt > 1 {
		id += "," + strconv.Itoa(attempt)
	}
	return id
}

// parseLogEventID reads an id of logEventID. Offsets without an attempt are the first
// attempt's. ok is false for anything else, which is ignored.
func parseLogEventID(id string) (pos [2]int64, attempt int, ok bool) {
	parts := strings.Split(id, ",")
	if len(parts) != 2 && len(parts) != 3 {
		return pos, 0, false
	}
	attempt = 1
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 || i == 2 && (n < 1 || n > pipeline.MaxRetryAttempts) {
			return [2]int64{}, 0, false
		}
		if i < 2 {
			pos[i] = n
		} else {
			attempt = int(n)
		}
	}
	return pos, attempt, true
}

func (d *Dashboard) streamLog(s *sse, id, task string, from [2]int64, attempt int) {
	ctx, cancel := context.WithCancel(d.ctx)
	defer cancel()
	s.w.WriteString("retry: " + strconv.Itoa(retryMillis) + "\n\n")
	if err := s.flush(); err != nil {
		return
	}
	tail := &logTail{s: s, pos: from, sent: from, attempt: attempt}
	opts := logfollow.Options{
		From:      from,
		Attempt:   attempt,
		Heartbeat: keepAliveEvery,
		Refollow:  d.cfg.PollInterval,
		Batch:     d.cfg.LogBatch,
		Logger:    d.logger,
	}
	_ = logfollow.Follow(ctx, d.runner, id, task, opts, tail.write)
}

// logTail formats a follow's events for the log pane: the output of a batch window as one
// HTML fragment per stream, trimmed to the newest output when it is too much.
type logTail struct {
	s *sse
	// pending is the output of the current window, per stream (stdout, stderr); skipped counts
	// what trim dropped of it.
	pending [2][]byte
	skipped [2]int64
	// pos is what the follow delivered (pending included), sent what went out: the offsets
	// of the event ids.
	pos, sent [2]int64
	attempt   int
}

var logStreams = [2]pipeline.LogStream{pipeline.Stdout, pipeline.Stderr}

// write handles one event of the follow; an error means the client is gone.
func (l *logTail) write(ev logfollow.Event) error {
	switch ev.Kind {
	case logfollow.Output:
		i := logfollow.Index(ev.Stream)
		l.pending[i] = append(l.pending[i], ev.Data...)
		l.pos = ev.Pos
		l.trim(i)
	case logfollow.Flush:
		return l.send()
	case logfollow.Attempt:
		if err := l.send(); err != nil {
			return err
		}
		l.attempt, l.pos, l.sent = ev.Attempt, ev.Pos, ev.Pos
		if !ev.Restart {
			// The follow started in this attempt: the page shows it already.
			return nil
		}
		for _, st := range logStreams {
			l.s.event(string(st), logEventID(l.sent, l.attempt), attemptFragment(ev.Attempt))
		}
		return l.s.flush()
	case logfollow.Heartbeat:
		return l.s.comment()
	case logfollow.End, logfollow.Error:
		if err := l.send(); err != nil {
			return err
		}
		if ev.Kind == logfollow.End {
			l.s.event("end", "", "done")
		} else {
			l.s.event("end", "", "gone")
		}
		return l.s.flush()
	}
	return nil
}

// send sends the output of the window, if any.
func (l *logTail) send() error {
	wrote := false
	for i, st := range logStreams {
		data := l.pending[i]
		if len(data) == 0 && l.skipped[i] == 0 {
			continue
		}
		html := logFragment(cleanLog(data))
		if n := l.skipped[i]; n > 0 {
			html = skipFragment(n) + html
			l.skipped[i] = 0
		}
		l.pending[i] = data[:0]
		l.sent[i] = l.pos[i]
		l.s.event(string(st), logEventID(l.sent, l.attempt), html)
		wrote = true
	}
	if !wrote {
		return nil
	}
	return l.s.flush()
}

// trim keeps the newest output of a window that got too much, from a line start.
func (l *logTail) trim(i int) {
	data := l.pending[i]
	if len(data) <= logWindowMax {
		return
	}
	cut := len(data) - logWindowKeep
	if j := bytes.IndexByte(data[cut:], '\n'); j >= 0 && j < logWindowKeep-1 {
		cut += j + 1
	}
	// Do not start inside a UTF-8 sequence.
	for cut < len(data) && !utf8.RuneStart(data[cut]) {
		cut++
	}
	l.skipped[i] += int64(cut)
	l.pending[i] = data[:copy(data, data[cut:])]
}
