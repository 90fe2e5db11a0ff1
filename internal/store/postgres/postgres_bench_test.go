package postgres

import (
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
	"github.com/prunner-dev/prunner/internal/tasklog"
)

func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.Context(), pgtest.NewDatabase(b))
	if err != nil {
		b.Fatalf("Open() error: %v", err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchJob(d *pipeline.Definition, i int, now time.Time) *pipeline.Job {
	return &pipeline.Job{
		ID:         "job-" + strconv.Itoa(i),
		Pipeline:   d.Name,
		Created:    now,
		Variables:  map[string]any{"branch": "main", "build": json.Number(strconv.Itoa(i))},
		Definition: d,
		Tasks:      pipeline.NewJobTasks(d),
	}
}

// BenchmarkOneTaskJob is the store's part of a 1-task job's life, one job after the other: Admit
// (it starts at once), the task's start and end (UpdateTask twice), and FinishAndClaim (the
// runner's end of a job, which claims the next waiting one). Besides the mean it reports the
// median and the 99th percentile of one job's store time (ms-median, ms-p99), the figure the
// 1-task latency target (≤ 10 ms median on one node) is about.
func BenchmarkOneTaskJob(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	d := clusterDefinition("bench", 1, nil)
	now := time.Now().UTC()
	var total, admit, tasks, finish durations
	i := 0
	for b.Loop() {
		t0 := time.Now()
		j := benchJob(d, i, now)
		i++
		res, err := s.Admit(ctx, store.AdmitParams{Job: j, Definition: d, Now: now})
		if err != nil || !res.Started {
			b.Fatalf("Admit() = %+v, %v; want started", res, err)
		}
		t1 := time.Now()
		task := j.Tasks[0]
		task.Status, task.Start = pipeline.TaskRunning, &now
		if err := s.UpdateTask(ctx, j.ID, task); err != nil {
			b.Fatal(err)
		}
		task.Status, task.End = pipeline.TaskDone, &now
		if err := s.UpdateTask(ctx, j.ID, task); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if _, err := s.FinishAndClaim(ctx,
			store.FinishParams{JobID: j.ID, Status: pipeline.JobSucceeded, End: now},
			store.ClaimParams{Pipeline: d.Name, Concurrency: d.Concurrency, Now: now}); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		total, admit, tasks, finish = append(total, t3.Sub(t0)), append(admit, t1.Sub(t0)),
			append(tasks, t2.Sub(t1)), append(finish, t3.Sub(t2))
	}
	b.ReportMetric(total.ms(0.5), "ms-median")
	b.ReportMetric(total.ms(0.99), "ms-p99")
	b.ReportMetric(admit.ms(0.5), "ms-admit-median")
	b.ReportMetric(tasks.ms(0.5), "ms-2tasks-median")
	b.ReportMetric(finish.ms(0.5), "ms-finish-median")
}

type durations []time.Duration

// ms returns the q quantile in milliseconds.
func (d durations) ms(q float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[int(q*float64(len(s)-1))].Microseconds()) / 1000
}

// BenchmarkEachJob10000 streams 10,000 finished jobs of 3 tasks each without keeping them, as
// the API does (the history is stored with ImportJobs).
func BenchmarkEachJob10000(b *testing.B) {
	s := benchStore(b)
	d := clusterDefinition("bench", 1, nil)
	for name, dep := range map[string]string{"second": "only", "third": "second"} {
		d.Tasks[name] = pipeline.TaskDefinition{Name: name, Script: []string{"true"}, DependsOn: []string{dep}}
	}
	now := time.Now().UTC()
	jobs := make([]*pipeline.Job, 10000)
	for i := range jobs {
		j := benchJob(d, i, now)
		j.Status, j.Start, j.End = pipeline.JobSucceeded, &now, &now
		for k := range j.Tasks {
			j.Tasks[k].Status, j.Tasks[k].Start, j.Tasks[k].End = pipeline.TaskDone, &now, &now
		}
		jobs[i] = j
	}
	if _, err := s.ImportJobs(b.Context(), jobs); err != nil {
		b.Fatalf("ImportJobs() error: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := s.EachJob(b.Context(), store.JobQuery{VariablesAsJSON: true}, func(j *pipeline.Job) error {
			n += len(j.Tasks)
			return nil
		})
		if err != nil || n != 30000 {
			b.Fatalf("EachJob() = %d tasks, %v; want 30000", n, err)
		}
	}
}

// BenchmarkOneTaskJobParallel runs the life of BenchmarkOneTaskJob from 8 goroutines at once, all
// on one pipeline of concurrency 8: every admission and end takes the same pipeline row lock,
// which is what bounds a pipeline's throughput across nodes. It reports jobs per second.
func BenchmarkOneTaskJobParallel(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	d := clusterDefinition("bench", 8, nil)
	now := time.Now().UTC()
	var next atomic.Int64
	b.SetParallelism(4) // 4 × GOMAXPROCS (2 here) = 8 goroutines
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			j := benchJob(d, int(next.Add(1)), now)
			res, err := s.Admit(ctx, store.AdmitParams{Job: j, Definition: d, Now: now})
			if err != nil {
				b.Error(err)
				return
			}
			if !res.Started {
				continue // queued: a finishing job claims it
			}
			// Run the job, and every job that its end starts, to its end.
			for mine := []string{j.ID}; len(mine) > 0; {
				id := mine[len(mine)-1]
				mine = mine[:len(mine)-1]
				task := pipeline.Task{Name: "only", Status: pipeline.TaskDone, Start: &now, End: &now}
				if err := s.UpdateTask(ctx, id, task); err != nil {
					b.Error(err)
					return
				}
				cr, err := s.FinishAndClaim(ctx,
					store.FinishParams{JobID: id, Status: pipeline.JobSucceeded, End: now},
					store.ClaimParams{Pipeline: d.Name, Concurrency: d.Concurrency, Now: now})
				if err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, jobIDs(cr.Started)...)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	var left int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE status <> 'succeeded'`).Scan(&left); err != nil || left != 0 {
		b.Errorf("%d jobs did not end (%v)", left, err)
	}
}

// BenchmarkTaskLogs writes 50 MB of one task's stdout through one writer of tasklog.Live on the
// PostgreSQL backend (default batches: 64 KiB or 200 ms), in a shell pipe's 32 KiB writes, until
// Close returns (everything committed), and reads it back on another node (another store on the
// database) with io.Copy. It reports the throughput of each: write-MB/s and read-MB/s.
func BenchmarkTaskLogs(b *testing.B) {
	const size = 50 << 20
	url := pgtest.NewDatabase(b)
	writer := tasklog.NewLive(benchStoreAt(b, url).TaskLogs(TaskLogOptions{}))
	reader := tasklog.NewLive(benchStoreAt(b, url).TaskLogs(TaskLogOptions{}))
	ctx := b.Context()
	var writing, reading time.Duration
	for b.Loop() {
		a := tasklog.Attempt{JobID: uuid.NewString(), Task: "bench", Number: 1}
		t0 := time.Now()
		o, e, err := writer.Create(ctx, a)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(o, &pattern{n: size}, make([]byte, 32<<10)); err != nil {
			b.Fatal(err)
		}
		if err := errors.Join(o.Close(), e.Close()); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		r, err := reader.Open(ctx, a, pipeline.Stdout)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, r)
		r.Close()
		if err != nil || n != size {
			b.Fatalf("read back %d bytes, %v; want %d", n, err, size)
		}
		writing += t1.Sub(t0)
		reading += time.Since(t1)
		b.StopTimer()
		if err := writer.DeleteJob(ctx, a.JobID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.SetBytes(size)
	b.ReportMetric(float64(b.N)*size/(1<<20)/writing.Seconds(), "write-MB/s")
	b.ReportMetric(float64(b.N)*size/(1<<20)/reading.Seconds(), "read-MB/s")
}

func benchStoreAt(b *testing.B, url string) *Store {
	b.Helper()
	s, err := Open(b.Context(), url)
	if err != nil {
		b.Fatalf("Open() error: %v", err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}
