package runner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store/sqlite"
)

// benchObserver counts finished jobs and hands each one's status to a channel.
type benchObserver struct {
	nopObserver
	finished chan pipeline.JobStatus
	count    atomic.Int64
}

func (o *benchObserver) JobFinished(_ string, status pipeline.JobStatus, _ time.Duration) {
	o.count.Add(1)
	select {
	case o.finished <- status:
	default:
	}
}

// benchRunner starts a runner on a fresh SQLite store in b.TempDir() with the pipelines of file.
func benchRunner(b *testing.B, file string) (*Runner, *benchObserver) {
	b.Helper()
	dir := b.TempDir()
	st, err := sqlite.Open(b.Context(), filepath.Join(dir, "prunner.db"))
	if err != nil {
		b.Fatal(err)
	}
	defs, _, errs := pipeline.Parse("pipelines.yml", []byte(file))
	if len(errs) > 0 {
		b.Fatalf("pipelines.yml: %v", errs)
	}
	obs := &benchObserver{finished: make(chan pipeline.JobStatus, 1)}
	r := New(Config{
		Store:    st,
		DataDir:  dir,
		WorkDir:  dir,
		Env:      []string{"PATH=" + os.Getenv("PATH")},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Observer: obs,
	})
	r.SetDefinitions(&pipeline.Set{Pipelines: defs})
	if err := r.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			b.Error(err)
		}
		_ = st.Close()
	})
	return r, obs
}

// BenchmarkScheduleQueued is admission alone: a job goes durably onto a wait list that already
// holds `waiting` jobs (a start delay keeps them there; nothing runs). This is the work behind
// each 202 of a busy pipeline. The new job is canceled again outside the timer, so the wait list
// keeps its length and ns/op does not depend on b.N.
func BenchmarkScheduleQueued(b *testing.B) {
	for _, waiting := range []int{0, 100, 1000} {
		b.Run("waiting="+strconv.Itoa(waiting), func(b *testing.B) {
			r, _ := benchRunner(b, `
pipelines:
  p:
    start_delay: 1h
    tasks:
      t: {script: ["true"]}
`)
			ctx := b.Context()
			vars := map[string]any{"i": 1}
			for range waiting {
				if _, err := r.Schedule(ctx, pipeline.ScheduleRequest{Pipeline: "p", Variables: vars}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				id, err := r.Schedule(ctx, pipeline.ScheduleRequest{Pipeline: "p", Variables: vars})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := r.Cancel(ctx, id); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkScheduleToFinish schedules a 1-task job (a shell builtin, no process) and waits until
// it finished: admission, start, the task's store writes and the job's end, without HTTP. It is
// the floor of the benchmark's 1-task latency scenario.
func BenchmarkScheduleToFinish(b *testing.B) {
	r, obs := benchRunner(b, `
pipelines:
  one:
    tasks:
      t: {script: ["true"]}
`)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Schedule(ctx, pipeline.ScheduleRequest{Pipeline: "one"}); err != nil {
			b.Fatal(err)
		}
		select {
		case st := <-obs.finished:
			if st != pipeline.JobSucceeded {
				b.Fatalf("job ended %s", st)
			}
		case <-time.After(10 * time.Second):
			b.Fatal("job did not finish within 10s")
		}
	}
}

// BenchmarkWide200 runs a job of 200 independent 1-line tasks (a shell builtin each) to its end:
// the benchmark's wide-DAG scenario without HTTP and polling.
func BenchmarkWide200(b *testing.B) {
	var y strings.Builder
	y.WriteString("pipelines:\n  wide:\n    tasks:\n")
	for i := range 200 {
		fmt.Fprintf(&y, "      w%04d: {script: [\"true\"]}\n", i)
	}
	r, obs := benchRunner(b, y.String())
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Schedule(ctx, pipeline.ScheduleRequest{Pipeline: "wide"}); err != nil {
			b.Fatal(err)
		}
		select {
		case st := <-obs.finished:
			if st != pipeline.JobSucceeded {
				b.Fatalf("job ended %s", st)
			}
		case <-time.After(time.Minute):
			b.Fatal("job did not finish within a minute")
		}
	}
}

// BenchmarkThroughput500 is the benchmark's throughput scenario without HTTP: 4 clients schedule
// 500 1-task jobs into a pipeline with concurrency 8 and an unbounded wait list, then it waits
// until all finished. One op is one batch; jobs/s is the figure to compare with the target.
func BenchmarkThroughput500(b *testing.B) {
	const jobs, clients = 500, 4
	r, obs := benchRunner(b, `
pipelines:
  tp:
    concurrency: 8
    tasks:
      t: {script: ["true"]}
`)
	ctx := b.Context()
	b.ReportAllocs()
	var total time.Duration
	for b.Loop() {
		t0 := time.Now()
		want := obs.count.Load() + jobs
		var next atomic.Int64
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for next.Add(1) <= jobs {
					if _, err := r.Schedule(ctx, pipeline.ScheduleRequest{Pipeline: "tp"}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		deadline := time.Now().Add(time.Minute)
		for obs.count.Load() < want {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d jobs finished after a minute", jobs-(want-obs.count.Load()), jobs)
			}
			time.Sleep(100 * time.Microsecond)
		}
		total += time.Since(t0)
	}
	b.ReportMetric(float64(b.N*jobs)/total.Seconds(), "jobs/s")
}
