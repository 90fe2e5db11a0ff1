package dashboard

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/runner"
	"github.com/prunner-dev/prunner/internal/store/sqlite"
)

// runnerLogs is a dashboard Runner whose jobs and task output come from a real runner; the
// rest (which the log stream does not use) comes from the fake.
type runnerLogs struct {
	*fakeRunner
	r *runner.Runner
}

func (l runnerLogs) Job(ctx context.Context, id string) (*pipeline.Job, error) {
	return l.r.Job(ctx, id)
}

func (l runnerLogs) OpenLog(ctx context.Context, id, task string, stream pipeline.LogStream) (io.ReadCloser, error) {
	return l.r.OpenLog(ctx, id, task, stream)
}

func (l runnerLogs) FollowLog(ctx context.Context, id, task string, from map[pipeline.LogStream]int64) (<-chan pipeline.LogChunk, error) {
	return l.r.FollowLog(ctx, id, task, from)
}

// newRunnerHarness returns a dashboard harness on a real runner (SQLite store, real task
// processes) with the pipelines of yml, and the directory its tasks run in.
func newRunnerHarness(t *testing.T, yml string) (*harness, *runner.Runner, string) {
	t.Helper()
	dir := t.TempDir()
	defs, _, errs := pipeline.Parse("pipelines.yml", []byte(yml))
	if len(errs) > 0 {
		t.Fatalf("pipelines.yml: %v", errs)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "prunner.db"))
	if err != nil {
		t.Fatal(err)
	}
	r := runner.New(runner.Config{
		Store:     st,
		DataDir:   filepath.Join(dir, "data"),
		WorkDir:   dir,
		Env:       []string{"PATH=" + os.Getenv("PATH")},
		KillGrace: 200 * time.Millisecond,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	r.SetDefinitions(&pipeline.Set{Pipelines: defs})
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Registered before the cleanup of h.listen: the server's streams end before the runner
	// stops.
	h := newHarness(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Error(err)
		}
		_ = st.Close()
	})
	h.d.runner = runnerLogs{fakeRunner: h.r, r: r}
	return h, r, dir
}

// logText collects the text of a log stream's stdout events until the stream ends and hands
// each event to onEvent (which may be nil).
func logText(t *testing.T, events <-chan sseEvent, onEvent func(sseEvent, string)) (text string, ids []string) {
	t.Helper()
	var b strings.Builder
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the stream closed without an end event; stdout so far %q", b.String())
			}
			switch ev.name {
			case "stdout":
				b.WriteString(text0(t, ev.data))
				ids = append(ids, ev.id)
			case "end":
				if ev.data != "done" {
					t.Errorf("end event %q, want done", ev.data)
				}
				return b.String(), ids
			}
			if onEvent != nil {
				onEvent(ev, b.String())
			}
		case <-deadline:
			t.Fatalf("no end event within 20s; stdout so far %q", b.String())
		}
	}
}

// text0 is the text of an HTML fragment of the log pane.
func text0(t *testing.T, fragment string) string {
	t.Helper()
	return text(parse(t, fragment))
}

// TestLogEventsShowEveryAttemptOfARetriedTask follows a task that prints, fails and is retried
// while its page is open: the log pane must show attempt 1's output, a separator and attempt
// 2's output, and a browser that reconnects with the id of an event of attempt 1 must get
// attempt 2's output from its start.
func TestLogEventsShowEveryAttemptOfARetriedTask(t *testing.T) {
	t.Parallel()
	h, r, dir := newRunnerHarness(t, `
pipelines:
  p:
    tasks:
      flaky:
        retry: {attempts: 2}
        script:
          - |
            if [ -f first.done ]; then
              echo "attempt 2 output"
            else
              touch first.done
              echo "attempt 1 output"
              while [ ! -f fail.now ]; do sleep 0.01; done
              exit 1
            fi
`)
	id, err := r.Schedule(t.Context(), pipeline.ScheduleRequest{Pipeline: "p"})
	if err != nil {
		t.Fatal(err)
	}
	base := h.listen()
	events, _ := h.openStream(base, "/ui/jobs/"+id+"/tasks/flaky/log/events?stdout=0&stderr=0", nil)
	failed := false
	var idOfAttempt1 string
	got, ids := logText(t, events, func(ev sseEvent, soFar string) {
		if !failed && strings.Contains(soFar, "attempt 1 output\n") {
			// The page showed attempt 1's output while it ran: now it fails.
			failed = true
			idOfAttempt1 = ev.id
			if err := os.WriteFile(filepath.Join(dir, "fail.now"), nil, 0o644); err != nil {
				t.Error(err)
			}
		}
	})
	want := "attempt 1 output\n— attempt 2 —\nattempt 2 output\n"
	if got != want {
		t.Errorf("the log pane shows %q, want %q", got, want)
	}
	if last := ids[len(ids)-1]; last != "17,0,2" {
		t.Errorf("last event id %q, want 17,0,2 (offsets of attempt 2)", last)
	}

	// Reconnecting after the task ended.
	tests := []struct {
		name, lastID, want string
	}{
		{"with an id of attempt 1", idOfAttempt1, "— attempt 2 —\nattempt 2 output\n"},
		{"with the last id of attempt 2", "17,0,2", ""},
		{"with an id of attempt 2 in the middle", "10,0,2", "output\n"},
	}
	for _, tt := range tests {
		events, _ := h.openStream(base, "/ui/jobs/"+id+"/tasks/flaky/log/events?stdout=0&stderr=0", map[string]string{"Last-Event-ID": tt.lastID})
		if got, _ := logText(t, events, nil); got != tt.want {
			t.Errorf("%s (%q): got %q, want %q", tt.name, tt.lastID, got, tt.want)
		}
	}
}
