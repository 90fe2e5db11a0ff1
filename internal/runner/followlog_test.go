package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store/sqlite"
)

// newFollowTestRunner starts a runner with a real SQLite store on the pipelines of yml.
func newFollowTestRunner(t *testing.T, yml string) *Runner {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pipelines.yml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	set, _, err := pipeline.Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "prunner.db"))
	if err != nil {
		t.Fatal(err)
	}
	r := New(Config{
		Store:   st,
		DataDir: filepath.Join(dir, "data"),
		WorkDir: dir,
		Env:     os.Environ(),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	r.SetDefinitions(set)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Stop(stopCtx)
		_ = st.Close()
	})
	return r
}

// collect reads the channel until it is closed and returns both streams' bytes, checking that
// the chunks follow each other without gaps from the given offsets.
func collect(t *testing.T, ch <-chan pipeline.LogChunk, from map[pipeline.LogStream]int64, timeout time.Duration) map[pipeline.LogStream]string {
	t.Helper()
	got := map[pipeline.LogStream]*strings.Builder{pipeline.Stdout: {}, pipeline.Stderr: {}}
	deadline := time.After(timeout)
	for {
		select {
		case c, open := <-ch:
			if !open {
				return map[pipeline.LogStream]string{pipeline.Stdout: got[pipeline.Stdout].String(), pipeline.Stderr: got[pipeline.Stderr].String()}
			}
			if want := from[c.Stream] + int64(got[c.Stream].Len()); c.Offset != want {
				t.Fatalf("%s chunk at offset %d, want %d", c.Stream, c.Offset, want)
			}
			got[c.Stream].Write(c.Data)
		case <-deadline:
			t.Fatalf("follow did not end within %v", timeout)
		}
	}
}

func numbered(prefix string, n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%s %d\n", prefix, i)
	}
	return b.String()
}

func TestFollowLogOfRunningTaskAndOfTaskNotStartedYet(t *testing.T) {
	t.Parallel()
	r := newFollowTestRunner(t, `
pipelines:
  p:
    tasks:
      first:
        script:
          - "for i in $(seq 1 20); do echo line $i; echo err $i >&2; sleep 0.02; done"
      second:
        depends_on: [first]
        script:
          - "sleep 0.1; for i in $(seq 1 5); do echo next $i; sleep 0.02; done"
`)
	ctx := context.Background()
	id, err := r.Schedule(ctx, pipeline.ScheduleRequest{Pipeline: "p"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := r.FollowLog(ctx, id, "first", nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := r.FollowLog(ctx, id, "second", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, first, nil, 20*time.Second)
	if got[pipeline.Stdout] != numbered("line", 20) || got[pipeline.Stderr] != numbered("err", 20) {
		t.Errorf("first: got %q / %q", got[pipeline.Stdout], got[pipeline.Stderr])
	}
	// The channel closes once the task's record is final.
	job, err := r.Job(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st := job.Task("first").Status; !st.Final() {
		t.Errorf("first: status %q when its follow ended, want a final one", st)
	}
	got = collect(t, second, nil, 20*time.Second)
	if got[pipeline.Stdout] != numbered("next", 5) || got[pipeline.Stderr] != "" {
		t.Errorf("second: got %q / %q", got[pipeline.Stdout], got[pipeline.Stderr])
	}

	// A finished task is read from disk, from the offsets given.
	from := map[pipeline.LogStream]int64{pipeline.Stdout: int64(len("line 1\n")), pipeline.Stderr: 1000}
	done, err := r.FollowLog(ctx, id, "first", from)
	if err != nil {
		t.Fatal(err)
	}
	got = collect(t, done, from, 5*time.Second)
	if got[pipeline.Stdout] != strings.TrimPrefix(numbered("line", 20), "line 1\n") || got[pipeline.Stderr] != "" {
		t.Errorf("finished task from offsets: got %q / %q", got[pipeline.Stdout], got[pipeline.Stderr])
	}
}

func TestFollowLogSkippedTaskEnds(t *testing.T) {
	t.Parallel()
	r := newFollowTestRunner(t, `
pipelines:
  p:
    tasks:
      fails: {script: ["sleep 0.1; exit 3"]}
      never: {script: ["echo never"], depends_on: [fails]}
`)
	ctx := context.Background()
	id, err := r.Schedule(ctx, pipeline.ScheduleRequest{Pipeline: "p"})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := r.FollowLog(ctx, id, "never", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(t, ch, nil, 10*time.Second); got[pipeline.Stdout] != "" {
		t.Errorf("skipped task: got %q", got[pipeline.Stdout])
	}
}

func TestFollowLogCanceledContextCloses(t *testing.T) {
	t.Parallel()
	r := newFollowTestRunner(t, `
pipelines:
  p:
    tasks:
      slow: {script: ["echo started; sleep 30"]}
`)
	id, err := r.Schedule(context.Background(), pipeline.ScheduleRequest{Pipeline: "p"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := r.FollowLog(ctx, id, "slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The output may arrive in more than one chunk (a pipe read can split it).
	var got []byte
	for len(got) < len("started\n") {
		select {
		case c := <-ch:
			got = append(got, c.Data...)
		case <-time.After(10 * time.Second):
			t.Fatalf("no output; got %q", got)
		}
	}
	if string(got) != "started\n" {
		t.Errorf("first output %q", got)
	}
	cancel()
	collect(t, ch, map[pipeline.LogStream]int64{pipeline.Stdout: 8}, 5*time.Second)
	_ = r.Cancel(context.Background(), id)
}

func TestFollowLogErrors(t *testing.T) {
	t.Parallel()
	r := newFollowTestRunner(t, `
pipelines:
  p:
    tasks:
      a: {script: ["true"]}
`)
	ctx := context.Background()
	if _, err := r.FollowLog(ctx, "00000000-0000-4000-8000-000000000000", "a", nil); !errors.Is(err, pipeline.ErrJobNotFound) {
		t.Errorf("unknown job: err = %v, want ErrJobNotFound", err)
	}
	id, err := r.Schedule(ctx, pipeline.ScheduleRequest{Pipeline: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.FollowLog(ctx, id, "nope", nil); !errors.Is(err, pipeline.ErrTaskNotFound) {
		t.Errorf("unknown task: err = %v, want ErrTaskNotFound", err)
	}
}

func TestFollowLogChunksTellTheirAttempt(t *testing.T) {
	t.Parallel()
	r := newFollowTestRunner(t, `
pipelines:
  p:
    tasks:
      flaky:
        retry: {attempts: 2}
        script: ["if [ -f first.done ]; then echo two; else touch first.done; echo one; exit 1; fi"]
`)
	ctx := context.Background()
	id, err := r.Schedule(ctx, pipeline.ScheduleRequest{Pipeline: "p"})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, r, id)
	ch, err := r.FollowLog(ctx, id, "flaky", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for c := range ch {
		if c.Attempt != 2 {
			t.Errorf("chunk %q of attempt %d, want 2", c.Data, c.Attempt)
		}
		got.Write(c.Data)
	}
	if got.String() != "two\n" {
		t.Errorf("followed %q, want the last attempt's %q", got.String(), "two\n")
	}
}
