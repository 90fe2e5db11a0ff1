package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	Event, ID, Data string
}

// parseSSE splits a stream into events and comments.
func parseSSE(t *testing.T, body string) (events []sseEvent, comments []string) {
	t.Helper()
	var cur sseEvent
	var data []string
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Event != "" || data != nil {
				cur.Data = strings.Join(data, "\n")
				events = append(events, cur)
			}
			cur, data = sseEvent{}, nil
		case strings.HasPrefix(line, ":"):
			comments = append(comments, strings.TrimSpace(line[1:]))
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				cur.Event = value
			case "id":
				cur.ID = value
			case "data":
				data = append(data, value)
			default:
				t.Errorf("unexpected field in line %q", line)
			}
		}
	}
	return events, comments
}

// reassemble returns the text of the output events per stream and the end event.
func reassemble(t *testing.T, events []sseEvent) (out map[string]string, end *sseEvent) {
	t.Helper()
	out = map[string]string{}
	for i, ev := range events {
		switch ev.Event {
		case "stdout", "stderr":
			var d struct {
				Text *string `json:"text"`
			}
			if err := json.Unmarshal([]byte(ev.Data), &d); err != nil || d.Text == nil {
				t.Fatalf("event %d data %q: not {\"text\":…}: %v", i, ev.Data, err)
			}
			out[ev.Event] += *d.Text
		case "end":
			end = &events[i]
			if i != len(events)-1 {
				t.Errorf("end is event %d of %d", i, len(events))
			}
		}
	}
	return out, end
}

func TestJobLogsLiveFinishedTask(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	// No newline at the end of stdout; characters that JSON escapes.
	stdout := "line 1\nline \"2\" <b>ü</b>\n\ttabbed\r\nno newline"
	e.runner.setLog(jobFinishedID, "build", pipeline.Stdout, func() io.Reader { return strings.NewReader(stdout) })
	e.runner.setLog(jobFinishedID, "build", pipeline.Stderr, func() io.Reader { return strings.NewReader("warn\n") })

	resp, body := e.do(t, http.MethodGet, "/job/logs/live?id="+jobFinishedID+"&task=build", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type = %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control = %q", cc)
	}
	events, _ := parseSSE(t, string(body))
	out, end := reassemble(t, events)
	if out["stdout"] != stdout || out["stderr"] != "warn\n" {
		t.Errorf("reassembled %q / %q", out["stdout"], out["stderr"])
	}
	if end == nil {
		t.Fatalf("no end event in %q", body)
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(end.Data), &d); err != nil {
		t.Fatal(err)
	}
	if d["status"] != "error" || d["exitCode"] != float64(42) || d["error"] != "exit status 42" {
		t.Errorf("end data = %s", end.Data)
	}
	wantID := "45,5"
	if end.ID != wantID || events[len(events)-2].ID != wantID {
		t.Errorf("last ids %q, %q, want %q", events[len(events)-2].ID, end.ID, wantID)
	}
	for _, ev := range events {
		if ev.Event == "stdout" && !strings.HasSuffix(ev.ID, ",0") && !strings.HasSuffix(ev.ID, ",5") {
			t.Errorf("stdout event id %q", ev.ID)
		}
	}
}

func TestJobLogsLiveResume(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	e.runner.setLog(jobFinishedID, "build", pipeline.Stdout, func() io.Reader { return strings.NewReader("one\ntwo\nthree\n") })
	e.runner.setLog(jobFinishedID, "build", pipeline.Stderr, func() io.Reader { return strings.NewReader("e1\ne2\n") })
	tests := []struct {
		name      string
		query     string
		lastID    string
		wantOut   string
		wantErr   string
		wantEndID string
	}{
		{"last event id", "", "4,3", "two\nthree\n", "e2\n", "14,6"},
		{"header wins over query", "&stdoutOffset=0&stderrOffset=0", "8,6", "three\n", "", "14,6"},
		{"query", "&stdoutOffset=14&stderrOffset=3", "", "", "e2\n", "14,6"},
		{"beyond the end", "&stdoutOffset=100", "", "", "e1\ne2\n", "100,6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/job/logs/live?id="+jobFinishedID+"&task=build"+tt.query, nil)
			req.Header.Set("Authorization", "Bearer "+e.token)
			if tt.lastID != "" {
				req.Header.Set("Last-Event-ID", tt.lastID)
			}
			resp, body := e.send(t, req)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, body %s", resp.StatusCode, body)
			}
			events, _ := parseSSE(t, string(body))
			out, end := reassemble(t, events)
			if out["stdout"] != tt.wantOut || out["stderr"] != tt.wantErr {
				t.Errorf("got %q / %q, want %q / %q", out["stdout"], out["stderr"], tt.wantOut, tt.wantErr)
			}
			if end == nil || end.ID != tt.wantEndID {
				t.Errorf("end = %+v, want id %q", end, tt.wantEndID)
			}
		})
	}
}

func TestJobLogsLiveErrors(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	base := "/job/logs/live?id=" + jobFinishedID + "&task=build"
	tests := []struct {
		target string
		lastID string
		status int
		msg    string
	}{
		{"/job/logs/live?task=build", "", 400, "Invalid job id"},
		{"/job/logs/live?id=" + jobFinishedID, "", 400, "Invalid task name"},
		{base + "&stdoutOffset=-1", "", 400, "Invalid stdoutOffset: must be a byte offset >= 0"},
		{base + "&stderrOffset=x", "", 400, "Invalid stderrOffset: must be a byte offset >= 0"},
		{base, "12", 400, "Invalid Last-Event-ID: want <stdoutOffset>,<stderrOffset>"},
		{base, "1,-2", 400, "Invalid Last-Event-ID: want <stdoutOffset>,<stderrOffset>"},
		{base, "a,b", 400, "Invalid Last-Event-ID: want <stdoutOffset>,<stderrOffset>"},
		{"/job/logs/live?id=" + unknownJobID + "&task=build", "", 404, "Job not found"},
		{"/job/logs/live?id=" + jobFinishedID + "&task=nope", "", 404, "Task not found"},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodGet, tt.target, nil)
		req.Header.Set("Authorization", "Bearer "+e.token)
		if tt.lastID != "" {
			req.Header.Set("Last-Event-ID", tt.lastID)
		}
		resp, body := e.send(t, req)
		wantError(t, resp, body, tt.status, tt.msg)
	}
}

// pieceRunner hands out the output in pieces of n bytes, as a runner does with output that
// arrives little by little.
type pieceRunner struct {
	*fakeRunner
	n int
}

func (p *pieceRunner) FollowLog(ctx context.Context, jobID, task string, from map[pipeline.LogStream]int64) (<-chan pipeline.LogChunk, error) {
	in, err := p.fakeRunner.FollowLog(ctx, jobID, task, from)
	if err != nil {
		return nil, err
	}
	out := make(chan pipeline.LogChunk)
	go func() {
		defer close(out)
		for c := range in {
			for len(c.Data) > 0 {
				k := min(p.n, len(c.Data))
				piece := pipeline.LogChunk{Stream: c.Stream, Offset: c.Offset, Data: c.Data[:k]}
				c.Offset += int64(k)
				c.Data = c.Data[k:]
				select {
				case out <- piece:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

func TestJobLogsLiveKeepsCharactersWhole(t *testing.T) {
	t.Parallel()
	fr := newFakeRunner()
	seed(fr)
	text := "ü€🎉 ok\nend \xff bad"
	fr.setLog(jobFinishedID, "build", pipeline.Stdout, func() io.Reader { return strings.NewReader(text) })
	// Ends in the middle of a character: it comes as U+FFFD at the end.
	fr.setLog(jobFinishedID, "build", pipeline.Stderr, func() io.Reader { return strings.NewReader("x\xe2\x82") })
	for _, n := range []int{1, 2, 3, 5} {
		app := New(Config{Secret: testSecret, Logger: discardLogger()}, &pieceRunner{fakeRunner: fr, n: n})
		e := &testEnv{app: app, runner: fr, token: newTestEnv(t).token}
		_, body := e.do(t, http.MethodGet, "/job/logs/live?id="+jobFinishedID+"&task=build", "")
		events, _ := parseSSE(t, string(body))
		out, end := reassemble(t, events)
		if want := strings.ReplaceAll(text, "\xff", "\ufffd"); out["stdout"] != want {
			t.Errorf("pieces of %d: stdout %q, want %q", n, out["stdout"], want)
		}
		if out["stderr"] != "x\ufffd\ufffd" { // as encoding/json: one per byte
			t.Errorf("pieces of %d: stderr %q, want %q", n, out["stderr"], "x\ufffd\ufffd")
		}
		// (A character split between events would have come as U+FFFD twice.)
		if end == nil || end.ID != "22,3" {
			t.Errorf("pieces of %d: end %+v, want id 22,3", n, end)
		}
	}
}

func TestJobLogsLiveEndsAtShutdownWithHeartbeats(t *testing.T) {
	t.Parallel()
	fr := newFakeRunner()
	seed(fr)
	fr.setLog(jobRunningID, "build", pipeline.Stdout, func() io.Reader { return strings.NewReader("so far\n") })
	done := make(chan struct{})
	app := fiber.New(fiber.Config{Immutable: true})
	l := &liveLogs{runner: fr, logger: discardLogger(), done: done, heartbeat: 20 * time.Millisecond}
	app.Get("/live", l.serve)

	time.AfterFunc(300*time.Millisecond, func() { close(done) })
	start := time.Now()
	resp, err := app.Test(httptest.NewRequest(http.MethodGet, "/live?id="+jobRunningID+"&task=build", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the stream of a running task took %v to end after done was closed", d)
	}
	events, comments := parseSSE(t, string(body))
	out, end := reassemble(t, events)
	if out["stdout"] != "so far\n" {
		t.Errorf("stdout %q", out["stdout"])
	}
	if end != nil {
		t.Errorf("end event for a task that did not end: %+v", end)
	}
	if len(comments) == 0 {
		t.Errorf("no heartbeat comment in %q", body)
	}
}

func TestJobLogsLiveHead(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	resp, body := e.do(t, http.MethodHead, "/job/logs/live?id="+jobRunningID+"&task=build", "")
	if resp.StatusCode != http.StatusOK || len(body) != 0 {
		t.Errorf("HEAD: status %d, body %q", resp.StatusCode, body)
	}
}
