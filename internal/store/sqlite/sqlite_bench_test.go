package sqlite

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "prunner.db"))
	if err != nil {
		b.Fatalf("Open() error: %v", err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchDefinition(tasks int) *pipeline.Definition {
	d := &pipeline.Definition{Name: "bench", Concurrency: 1 << 30, QueueStrategy: pipeline.QueueAppend,
		Tasks: map[string]pipeline.TaskDefinition{}}
	prev := ""
	for i := range tasks {
		name := "task" + strconv.Itoa(i)
		td := pipeline.TaskDefinition{Name: name, Script: []string{"echo " + name}}
		if prev != "" {
			td.DependsOn = []string{prev}
		}
		d.Tasks[name] = td
		prev = name
	}
	return d
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

// BenchmarkAdmit admits 1-task jobs that start at once (the common request). Every job goes to
// a pipeline of its own, so each admission sees an idle pipeline while the database grows, as
// in production, instead of one pipeline piling up thousands of running jobs.
func BenchmarkAdmit(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	d := benchDefinition(1)
	d.Concurrency = 1
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		j := benchJob(d, i, now)
		j.Pipeline = "bench-" + strconv.Itoa(i)
		res, err := s.Admit(ctx, store.AdmitParams{Job: j, Definition: d, Now: now})
		if err != nil || !res.Started {
			b.Fatalf("Admit() = %+v, %v; want started", res, err)
		}
		i++
	}
}

// BenchmarkFinishJob ends a running 1-task job (the job's end, with its record).
func BenchmarkFinishJob(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	d := benchDefinition(1)
	now := time.Now()
	const n = 20000
	for i := range n {
		j := benchJob(d, i, now)
		j.Pipeline = "bench-" + strconv.Itoa(i)
		if _, err := s.Admit(ctx, store.AdmitParams{Job: j, Definition: d, Now: now}); err != nil {
			b.Fatalf("Admit() error: %v", err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == n {
			b.Fatal("more iterations than prepared jobs")
		}
		if err := s.FinishJob(ctx, store.FinishParams{JobID: "job-" + strconv.Itoa(i), Status: pipeline.JobSucceeded, End: now}); err != nil {
			b.Fatalf("FinishJob() error: %v", err)
		}
		i++
	}
}

// BenchmarkUpdateTask rewrites a task record of a running job (a task starting or ending).
func BenchmarkUpdateTask(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	d := benchDefinition(3)
	now := time.Now()
	for i := range 100 {
		if _, err := s.Admit(ctx, store.AdmitParams{Job: benchJob(d, i, now), Definition: d, Now: now}); err != nil {
			b.Fatalf("Admit() error: %v", err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		t := pipeline.Task{Name: "task1", DependsOn: []string{"task0"}, Status: pipeline.TaskDone,
			Start: &now, End: &now, ExitCode: i % 2}
		if err := s.UpdateTask(ctx, "job-"+strconv.Itoa(i%100), t); err != nil {
			b.Fatalf("UpdateTask() error: %v", err)
		}
		i++
	}
}

// BenchmarkJobsList10000 lists 10,000 finished jobs of 3 tasks each, with their tasks (a
// history, read from the jobs' records).
func BenchmarkJobsList10000(b *testing.B) {
	s := benchHistory(b, 10000, true)
	b.ReportAllocs()
	for b.Loop() {
		jobs, err := s.Jobs(b.Context(), store.JobQuery{})
		if err != nil {
			b.Fatalf("Jobs() error: %v", err)
		}
		if len(jobs) != 10000 || len(jobs[0].Tasks) != 3 {
			b.Fatalf("Jobs() returned %d jobs, %d tasks each; want 10000, 3", len(jobs), len(jobs[0].Tasks))
		}
	}
}

// BenchmarkJobsListRunning10000 lists 10,000 running jobs (read from their columns).
func BenchmarkJobsListRunning10000(b *testing.B) {
	s := benchHistory(b, 10000, false)
	b.ReportAllocs()
	for b.Loop() {
		jobs, err := s.Jobs(b.Context(), store.JobQuery{})
		if err != nil || len(jobs) != 10000 {
			b.Fatalf("Jobs() = %d jobs, %v", len(jobs), err)
		}
	}
}

// BenchmarkEachJob10000 streams 10,000 finished jobs without keeping them, as the API does.
func BenchmarkEachJob10000(b *testing.B) {
	s := benchHistory(b, 10000, true)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := s.EachJob(b.Context(), store.JobQuery{VariablesAsJSON: true}, func(j *pipeline.Job) error {
			n += len(j.Tasks)
			return nil
		})
		if err != nil || n != 30000 {
			b.Fatalf("EachJob() = %d tasks, %v", n, err)
		}
	}
}

// benchHistory stores n jobs of 3 tasks, finished (succeeded) or left running.
func benchHistory(b *testing.B, n int, finished bool) *Store {
	s := benchStore(b)
	ctx := b.Context()
	d := benchDefinition(3)
	now := time.Now()
	for i := range n {
		j := benchJob(d, i, now)
		// Spread over pipelines: admission counts the running jobs of one pipeline.
		j.Pipeline = "bench-" + strconv.Itoa(i%100)
		if _, err := s.Admit(ctx, store.AdmitParams{Job: j, Definition: d, Now: now}); err != nil {
			b.Fatalf("Admit() error: %v", err)
		}
		if finished {
			if err := s.FinishJob(ctx, store.FinishParams{JobID: j.ID, Status: pipeline.JobSucceeded, End: now}); err != nil {
				b.Fatalf("FinishJob() error: %v", err)
			}
		}
	}
	return s
}

func BenchmarkJobsPage(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	d := benchDefinition(3)
	other := benchDefinition(3)
	other.Name = "other"
	now := time.Now()
	for i := range 10000 {
		def := d
		if i%10 != 0 {
			def = other
		}
		if _, err := s.Admit(ctx, store.AdmitParams{Job: benchJob(def, i, now), Definition: def, Now: now}); err != nil {
			b.Fatalf("Admit() error: %v", err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		jobs, err := s.Jobs(ctx, store.JobQuery{Pipeline: "bench", Limit: 50})
		if err != nil || len(jobs) != 50 {
			b.Fatalf("Jobs() = %d jobs, %v", len(jobs), err)
		}
	}
}

// BenchmarkJob reads one job with its tasks by ID (the API's job detail, polled by clients).
func BenchmarkJob(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	d := benchDefinition(3)
	now := time.Now()
	for i := range 1000 {
		j := benchJob(d, i, now)
		j.Pipeline = "bench-" + strconv.Itoa(i%100)
		if _, err := s.Admit(ctx, store.AdmitParams{Job: j, Definition: d, Now: now}); err != nil {
			b.Fatalf("Admit() error: %v", err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		j, err := s.Job(ctx, "job-"+strconv.Itoa(i%1000))
		if err != nil || len(j.Tasks) != 3 {
			b.Fatalf("Job() = %v, %v", j, err)
		}
		i++
	}
}

// BenchmarkFinishAndClaim is the writer's work when a slot frees on a busy pipeline: the running
// job ends and the next waiting one is claimed (concurrency 1, a long wait list).
func BenchmarkFinishAndClaim(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	d := benchDefinition(1)
	d.Concurrency = 1
	now := time.Now()
	const n = 20000
	for i := range n {
		if _, err := s.Admit(ctx, store.AdmitParams{Job: benchJob(d, i, now), Definition: d, Now: now}); err != nil {
			b.Fatalf("Admit() error: %v", err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == n-1 {
			b.Fatal("more iterations than prepared jobs")
		}
		if err := s.FinishJob(ctx, store.FinishParams{JobID: "job-" + strconv.Itoa(i), Status: pipeline.JobSucceeded, End: now}); err != nil {
			b.Fatalf("FinishJob() error: %v", err)
		}
		res, err := s.Claim(ctx, store.ClaimParams{Pipeline: d.Name, Concurrency: 1, Now: now})
		if err != nil || len(res.Started) != 1 {
			b.Fatalf("Claim() = %d started, %v", len(res.Started), err)
		}
		i++
	}
}

// BenchmarkFirings10000 is the burst of a minute at which 10,000 schedules ("* * * * *") fire:
// each firing is its own Admit call, all at once, as the schedule engine makes them; group
// commit batches them. One iteration is one minute's 10,000 firings; later iterations run on a
// store that holds the earlier minutes' jobs and firing records, so the figure would grow if the
// firing path scanned them. Every tenth schedule has overlap: skip (its previous job still runs,
// so from the second minute on those firings are recorded as skipped).
func BenchmarkFirings10000(b *testing.B) {
	const schedules = 10000
	s := benchStore(b)
	ctx := b.Context()
	defs := make([]*pipeline.Definition, 100)
	for i := range defs {
		defs[i] = benchDefinition(1)
		defs[i].Name = "bench-" + strconv.Itoa(i)
	}
	minute := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := 0
	for b.Loop() {
		m++
		fireTime := minute.Add(time.Duration(m) * time.Minute)
		var wg sync.WaitGroup
		errs := make(chan error, schedules)
		for i := range schedules {
			wg.Go(func() {
				d := defs[i%len(defs)]
				id := d.Name + "/s" + strconv.Itoa(i)
				j := benchJob(d, m*schedules+i, fireTime)
				j.Schedule, j.ScheduledFor = id, &fireTime
				f := store.Firing{ScheduleID: id, FireTime: fireTime, Kind: pipeline.FiringCron, SkipIfActive: i%10 == 0}
				res, err := s.Admit(ctx, store.AdmitParams{Job: j, Definition: d, Now: fireTime, Firing: &f})
				if err == nil && res.AlreadyFired {
					err = fmt.Errorf("firing %s at %v: AlreadyFired", id, fireTime)
				}
				if err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*schedules), "ns/firing")
}

// BenchmarkFiringBurst10000 is the schedules group of the bench (bench/schedules.go) on the
// store alone: 10,000 schedules of one pipeline (concurrency 10,000) fire at once through
// burstWorkers workers, as the scheduler fires them, and every job that starts runs its task
// (two task updates) and ends (FinishAndClaim) while the later firings are admitted. A firing's
// lateness is when its worker took it (the job's start time, which the runner takes before
// Admit) minus the burst's start; the metrics are its p50 and p99 over the 10,000.
func BenchmarkFiringBurst10000(b *testing.B) {
	const schedules, burstWorkers = 10000, 256
	d := benchDefinition(1)
	d.Concurrency = schedules
	var p50, p99 time.Duration
	for b.Loop() {
		b.StopTimer()
		s := benchStore(b)
		b.StartTimer()
		late := firingBurst(b, s, d, schedules, burstWorkers)
		p50, p99 = p50+late[len(late)/2], p99+late[len(late)*99/100]
	}
	b.ReportMetric(float64(p50.Milliseconds())/float64(b.N), "p50-ms")
	b.ReportMetric(float64(p99.Milliseconds())/float64(b.N), "p99-ms")
}

// firingBurst fires n firings of d at once through workers workers, runs each started job to
// its end in a goroutine of its own, and returns the sorted latenesses of the firings.
func firingBurst(b *testing.B, s *Store, d *pipeline.Definition, n, workers int) []time.Duration {
	ctx := b.Context()
	fireTime := time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)
	late := make([]time.Duration, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var jobs, ws sync.WaitGroup
	t0 := time.Now()
	for range workers {
		ws.Go(func() {
			for i := range next {
				late[i] = time.Since(t0)
				id := d.Name + "/s" + strconv.Itoa(i)
				j := benchJob(d, i, fireTime)
				f := store.Firing{ScheduleID: id, FireTime: fireTime, Kind: pipeline.FiringCron}
				res, err := s.Admit(ctx, store.AdmitParams{Job: j, Definition: d, Now: fireTime, Firing: &f})
				if err != nil || !res.Started {
					b.Errorf("firing %s: %+v, %v; want started", id, res, err)
					return
				}
				jobs.Go(func() { runBenchJob(b, s, d, j) })
			}
		})
	}
	ws.Wait()
	jobs.Wait()
	slices.Sort(late)
	return late
}

// runBenchJob runs the 1-task job j as the runner does: the task starts, ends, and the job
// ends with a claim.
func runBenchJob(b *testing.B, s *Store, d *pipeline.Definition, j *pipeline.Job) {
	ctx := b.Context()
	t := j.Tasks[0]
	now := time.Now()
	t.Status, t.Start = pipeline.TaskRunning, &now
	if err := s.UpdateTask(ctx, j.ID, t); err != nil {
		b.Errorf("UpdateTask: %v", err)
	}
	t.Status, t.End = pipeline.TaskDone, &now
	if err := s.UpdateTask(ctx, j.ID, t); err != nil {
		b.Errorf("UpdateTask: %v", err)
	}
	_, err := s.FinishAndClaim(ctx, store.FinishParams{JobID: j.ID, Status: pipeline.JobSucceeded, End: now},
		store.ClaimParams{Pipeline: d.Name, Concurrency: d.Concurrency, Now: now})
	if err != nil {
		b.Errorf("FinishAndClaim: %v", err)
	}
}
