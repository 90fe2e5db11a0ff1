package dashboard

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

func TestJobEventsPushFragmentsUntilTheJobEnds(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	base := h.listen()
	events, resp := h.openStream(base, "/ui/jobs/job-running/events?task=test", nil)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type = %q", ct)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); csp == "" {
		t.Errorf("stream without CSP")
	}
	// First the current state of every fragment.
	head := nextEvent(t, events, "head")
	if !strings.Contains(head.data, `data-status="running"`) {
		t.Errorf("head = %q", head.data)
	}
	details := nextEvent(t, events, "details")
	graph := nextEvent(t, events, "graph")
	if !strings.Contains(graph.data, `data-testid="graph-node"`) {
		t.Errorf("graph = %q", graph.data)
	}
	for _, ev := range []sseEvent{head, graph, details} {
		assertSafe(t, ev.data)
	}

	// The job finishes: changed fragments, then the end.
	h.r.update("job-running", func(j *pipeline.Job) {
		j.Status = pipeline.JobSucceeded
		j.End = tp(testNow)
		j.Tasks[1].Status = pipeline.TaskDone
		j.Tasks[1].End = tp(testNow)
	})
	head = nextEvent(t, events, "head")
	if !strings.Contains(head.data, `data-status="succeeded"`) || strings.Contains(head.data, "job-cancel") {
		t.Errorf("head after the end = %q", head.data)
	}
	nextEvent(t, events, "end")
	select {
	case _, ok := <-events:
		if ok {
			// Further events are fine only if the stream then closes.
			for range events {
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("stream did not close after end")
	}
}

func TestJobEventsUnknownJob(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	base := h.listen()
	req, _ := http.NewRequest(http.MethodGet, base+"/ui/jobs/nope/events", nil)
	req.AddCookie(&http.Cookie{Name: jwtCookie, Value: h.token})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status = %d, want 404", resp.StatusCode)
	}
}

func TestLogEventsStreamEscapedOutput(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	h.r.setLog("job-running", "test", pipeline.Stdout, "before\n")
	live := make(chan pipeline.LogChunk, 10)
	h.r.live["job-running/test"] = live
	base := h.listen()
	events, _ := h.openStream(base, "/ui/jobs/job-running/tasks/test/log/events?stdout=0&stderr=0", nil)

	ev := nextEvent(t, events, "stdout")
	if ev.data != `<span data-lines="1">before`+"\n"+`</span>` || ev.id != "7,0" {
		t.Errorf("first event = %+v", ev)
	}
	// Hostile output, ANSI colours and a UTF-8 character split across chunks.
	euro := []byte("€")
	first := []byte("\x1b[31m" + xssScript + "\x1b[0m\r\n" + xssAttr + "\n" + string(euro[:1]))
	live <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: 7, Data: first}
	rest := append(euro[1:], '\n')
	end := 7 + len(first) + len(rest)
	sentRest := false
	live <- pipeline.LogChunk{Stream: pipeline.Stderr, Offset: 0, Data: []byte("oops\n")}
	var stdout strings.Builder
	var lastID string
	deadline := time.After(5 * time.Second)
	for !strings.Contains(stdout.String(), "€") {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("stream ended early; got %q", stdout.String())
			}
			if ev.name == "stdout" {
				stdout.WriteString(ev.data)
				lastID = ev.id
				assertSafe(t, ev.data)
				if strings.Contains(ev.data, "<script") || strings.Contains(ev.data, "<img") {
					t.Errorf("unescaped output: %q", ev.data)
				}
			}
			if ev.name == "stderr" && ev.data != `<span data-lines="1">oops`+"\n</span>" {
				t.Errorf("stderr = %q", ev.data)
			}
			if ev.name == "stdout" && strings.Contains(ev.data, "&lt;script") && !sentRest {
				// The first part of the split character was held back; send the rest.
				if strings.Contains(ev.data, "\uFFFD") {
					t.Errorf("a split character was sent broken: %q", ev.data)
				}
				live <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: int64(7 + len(first)), Data: rest}
				sentRest = true
			}
		case <-deadline:
			t.Fatalf("no complete output; got %q", stdout.String())
		}
	}
	want := "&lt;script&gt;alert(1)&lt;/script&gt;\n&#34;&gt;&lt;img src=x onerror=alert(1)&gt;\n"
	if !strings.Contains(stdout.String(), want) {
		t.Errorf("stdout = %q, want it to contain %q", stdout.String(), want)
	}
	if strings.Contains(stdout.String(), "\x1b") || strings.Contains(stdout.String(), "[31m") {
		t.Errorf("ANSI escapes left in %q", stdout.String())
	}
	if !strings.HasPrefix(lastID, fmt.Sprint(end)+",") {
		t.Errorf("last event id = %q, want the stdout offset %d", lastID, end)
	}

	// The task ends: the stream says so and closes.
	h.r.update("job-running", func(j *pipeline.Job) { j.Tasks[1].Status = pipeline.TaskDone })
	close(live)
	nextEvent(t, events, "end")
}

func TestLogEventsResumeFromLastEventID(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	h.r.setLog("job-done", "test", pipeline.Stdout, "0123456789")
	h.r.setLog("job-done", "test", pipeline.Stderr, "abcdef")
	base := h.listen()
	events, _ := h.openStream(base, "/ui/jobs/job-done/tasks/test/log/events?stdout=0&stderr=0", map[string]string{"Last-Event-ID": "8,4"})
	out := nextEvent(t, events, "stdout")
	errEv := nextEvent(t, events, "stderr")
	if !strings.Contains(out.data, ">89<") || !strings.Contains(errEv.data, ">ef<") {
		t.Errorf("resumed output stdout=%q stderr=%q", out.data, errEv.data)
	}
	nextEvent(t, events, "end")
	h.r.mu.Lock()
	first := h.r.follows[0]
	h.r.mu.Unlock()
	if first[pipeline.Stdout] != 8 || first[pipeline.Stderr] != 4 {
		t.Errorf("FollowLog from %v, want stdout 8, stderr 4", first)
	}
}

func TestLogEventsUnknownTask(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	r := h.get("/ui/jobs/job-done/tasks/nope/log/events")
	wantStatus(t, r, http.StatusNotFound)
}

func TestLogEventsDoNotFloodTheBrowser(t *testing.T) {
	t.Parallel()
	// The whole output is there before the stream starts; a batch window long enough for a
	// slow (loaded, race-instrumented) reader to take it in makes it "too much at once" however
	// slowly the test runs.
	h := newHarness(t, func(c *Config) { c.LogBatch = time.Second })
	h.seed()
	live := make(chan pipeline.LogChunk, 1024)
	h.r.live["job-running/test"] = live
	const total = 4 << 20
	line := strings.Repeat("x", 63) + "\n"
	for off := 0; off < total; off += 4096 {
		live <- pipeline.LogChunk{Stream: pipeline.Stdout, Offset: int64(off), Data: []byte(strings.Repeat(line, 64))}
	}
	base := h.listen()
	events, _ := h.openStream(base, "/ui/jobs/job-running/tasks/test/log/events?stdout=0&stderr=0", nil)
	var shown int
	var notices int
	var lastID string
	for lastID != fmt.Sprintf("%d,0", total) {
		ev := nextEvent(t, events, "stdout")
		shown += len(ev.data)
		notices += strings.Count(ev.data, "not shown live")
		lastID = ev.id
	}
	if notices == 0 {
		t.Errorf("no notice of skipped output")
	}
	if shown > total/4 {
		t.Errorf("sent %d bytes of HTML for %d bytes of fast output; want the live tail to skip most", shown, total)
	}
	h.r.update("job-running", func(j *pipeline.Job) { j.Tasks[1].Status = pipeline.TaskDone })
	close(live)
	nextEvent(t, events, "end")
}

func TestLogEventIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id      string
		pos     [2]int64
		attempt int
		ok      bool
	}{
		{"8,4", [2]int64{8, 4}, 1, true},
		{"8,4,2", [2]int64{8, 4}, 2, true},
		{"0,0,100", [2]int64{}, 100, true},
		{"", [2]int64{}, 0, false},
		{"8", [2]int64{}, 0, false},
		{"a,b", [2]int64{}, 0, false},
		{"-1,0", [2]int64{}, 0, false},
		{"8,4,0", [2]int64{}, 0, false},
		{"8,4,101", [2]int64{}, 0, false},
		{"1,2,3,4", [2]int64{}, 0, false},
	}
	for _, tt := range tests {
		pos, attempt, ok := parseLogEventID(tt.id)
		if pos != tt.pos || attempt != tt.attempt || ok != tt.ok {
			t.Errorf("parseLogEventID(%q) = %v, %d, %v; want %v, %d, %v", tt.id, pos, attempt, ok, tt.pos, tt.attempt, tt.ok)
		}
		if tt.ok {
			want := tt.id
			if tt.attempt == 1 {
				want = strings.TrimSuffix(want, ",1")
			}
			if got := logEventID(tt.pos, tt.attempt); got != want {
				t.Errorf("logEventID(%v, %d) = %q, want %q", tt.pos, tt.attempt, got, want)
			}
		}
	}
}

func TestJobEventsSwitchTheLogToTheTaskThatMatters(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	h.r.setLog("job-queued", "compile", pipeline.Stdout, "compiling\n")
	h.r.setLog("job-queued", "test", pipeline.Stdout, "FAIL: TestX\n")
	base := h.listen()
	// The page was opened while the job waited: it shows the first task's (empty) log.
	events, _ := h.openStream(base, "/ui/jobs/job-queued/events?log=compile", nil)
	nextEvent(t, events, "head")

	start := testNow.Add(time.Second)
	h.r.update("job-queued", func(j *pipeline.Job) {
		j.Status, j.Start = pipeline.JobRunning, tp(start)
		j.Task("compile").Status, j.Task("compile").Start = pipeline.TaskDone, tp(start)
		j.Task("compile").End = tp(start.Add(time.Second))
		j.Task("test").Status, j.Task("test").Start = pipeline.TaskRunning, tp(start.Add(time.Second))
	})
	panel := parse(t, nextEvent(t, events, "log").data)
	if got := attr(one(t, panel, "log"), "data-task"); got != "test" {
		t.Fatalf("log panel after the switch shows %q, want the running task test", got)
	}
	if got := text(one(t, panel, "log-stdout")); !strings.Contains(got, "FAIL: TestX") {
		t.Errorf("switched panel's stdout = %q, want the running task's output so far", got)
	}
	if got := attr(one(t, panel, "log-streams"), "sse-connect"); !strings.Contains(got, "/tasks/test/log/events?") {
		t.Errorf("switched panel follows %q, want the running task's live log", got)
	}

	// The job ends: the task stays shown, and no second switch is sent for it.
	h.r.update("job-queued", func(j *pipeline.Job) {
		j.Status, j.End = pipeline.JobFailed, tp(start.Add(2*time.Second))
		j.Task("test").Status, j.Task("test").End = pipeline.TaskError, tp(start.Add(2*time.Second))
	})
	for ev := range events {
		if ev.name == "log" {
			t.Errorf("a second log switch was sent: %q", ev.data)
		}
		if ev.name == "end" {
			break
		}
	}
}

func TestJobEventsKeepTheChosenTask(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	base := h.listen()
	// The person chose compile on a job whose running task is test: no switch.
	events, _ := h.openStream(base, "/ui/jobs/job-running/events?task=compile", nil)
	nextEvent(t, events, "head")
	h.r.update("job-running", func(j *pipeline.Job) {
		j.Status, j.End = pipeline.JobSucceeded, tp(testNow)
		j.Tasks[1].Status, j.Tasks[1].End = pipeline.TaskDone, tp(testNow)
	})
	for ev := range events {
		if ev.name == "log" {
			t.Errorf("the chosen task's panel was replaced: %q", ev.data)
		}
		if ev.name == "end" {
			break
		}
	}
}
