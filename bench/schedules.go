package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/sqlite"
)

// schedulesN is how many schedules the schedules group creates (and the concurrency of its
// pipeline, so that every firing of a minute starts at once).
const schedulesN = 10000

// schedulesCPUWindow is how long the group measures the server's CPU between two minutes.
const schedulesCPUWindow = 20 * time.Second

// groupSchedules creates schedulesN API schedules "* * * * *" of a trivial task, waits for the
// next minute and measures each firing's lateness (the job's start minus the fire time it stands
// for, read from the store at full precision once the server stopped), that every schedule
// fired exactly once for that minute, and the server's CPU between the minutes.
func (b *bench) groupSchedules(ctx context.Context) error {
	late := &result{Group: "schedules", Scenario: fmt.Sprintf("%d schedules * * * * *: firing lateness (job start − fire time), p99", schedulesN), Unit: "ms", Target: atMost(1000), Extra: map[string]any{}}
	once := &result{Group: "schedules", Scenario: "… jobs of the minute (exactly once each: " + fmt.Sprint(schedulesN) + ")", Unit: "jobs"}
	create := &result{Group: "schedules", Scenario: "… POST /schedules (4 clients)", Unit: "ms"}
	idle := &result{Group: "schedules", Scenario: fmt.Sprintf("… server CPU between minutes (%s after the burst)", schedulesCPUWindow), Unit: "%", Target: atMost(2)}
	defer func() {
		b.add(late)
		b.add(once)
		b.add(create)
		b.add(idle)
	}()
	s, c, err := b.startFresh(ctx, "schedules")
	if err != nil {
		return err
	}
	defer s.kill()
	lat, err := b.createSchedules(ctx, c)
	create.Samples = lat
	if err != nil {
		create.Err = err.Error()
		return nil
	}
	// Every schedule was created before this minute began: its first fire time is the minute.
	minute := time.Now().UTC().Truncate(time.Minute).Add(time.Minute)
	fmt.Fprintf(os.Stderr, "bench:   created; waiting for %s\n", minute.Format(time.TimeOnly))
	profiled := b.profileBurst(ctx, c, minute)
	if err := sleepCtx(ctx, time.Until(minute)+2*time.Second); err != nil {
		return err
	}
	burst, err := waitNoneRunning(ctx, c, minute.Add(55*time.Second))
	if err != nil {
		return err
	}
	late.Extra["burst_s"] = burst.Sub(minute).Seconds()
	// Between the end of the burst and the next minute.
	window := min(schedulesCPUWindow, time.Until(minute.Add(59*time.Second)))
	if window < time.Second {
		idle.Err = fmt.Sprintf("the jobs of the minute ran until %s after it: no time left to measure", burst.Sub(minute).Round(time.Second))
	} else {
		cpu0, t0 := procCPU(s.pid()), time.Now()
		if err := sleepCtx(ctx, window); err != nil {
			return err
		}
		idle.Samples = []float64{100 * (procCPU(s.pid()) - cpu0) / time.Since(t0).Seconds()}
		idle.Note = fmt.Sprintf("over %s", window.Round(time.Second))
	}
	if err := <-profiled; err != nil {
		fmt.Fprintf(os.Stderr, "bench:   profile schedules: %v\n", err)
	}
	c.closeIdle()
	if _, err := s.stop(syscall.SIGINT); err != nil {
		return err
	}
	jobs, err := scheduledJobs(ctx, s.dataDir)
	if err != nil {
		late.Err = err.Error()
		return nil
	}
	measureFirings(jobs, minute, late, once)
	return nil
}

// profileBurst, with --pprof, takes a CPU profile of the server over the firing burst of minute
// (from half a second before it, --pprof-seconds long) into schedules.cpu.pprof. The channel
// gets its error (nil without --pprof).
func (b *bench) profileBurst(ctx context.Context, c *client, minute time.Time) <-chan error {
	done := make(chan error, 1)
	if b.cfg.pprofDir == "" {
		done <- nil
		return done
	}
	go func() {
		if err := sleepCtx(ctx, time.Until(minute.Add(-500*time.Millisecond))); err != nil {
			done <- err
			return
		}
		f, err := os.Create(filepath.Join(b.cfg.pprofDir, "schedules.cpu.pprof"))
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		st, _, err := c.stream(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", max(1, b.cfg.pprofSeconds)), f)
		if err == nil && st != http.StatusOK {
			err = fmt.Errorf("GET /debug/pprof/profile: HTTP %d", st)
		}
		done <- err
	}()
	return done
}

// waitNoneRunning polls GET /pipelines until no job of the schedules' pipeline runs, at most
// until deadline, and returns when that was.
func waitNoneRunning(ctx context.Context, c *client, deadline time.Time) (time.Time, error) {
	for {
		st, body, err := c.do(ctx, http.MethodGet, "/pipelines", nil)
		if err != nil {
			return time.Time{}, err
		}
		var r struct {
			Pipelines []struct {
				Pipeline string `json:"pipeline"`
				Running  bool   `json:"running"`
			} `json:"pipelines"`
		}
		if st != http.StatusOK || json.Unmarshal(body, &r) != nil {
			return time.Time{}, fmt.Errorf("GET /pipelines: HTTP %d: %s", st, truncate(body, 200))
		}
		running := false
		for _, p := range r.Pipelines {
			running = running || p.Pipeline == pipeSched && p.Running
		}
		if !running || time.Now().After(deadline) {
			return time.Now(), nil
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return time.Time{}, err
		}
	}
}

// createSchedules creates the schedules through the API with the bench's clients and returns
// each request's latency.
func (b *bench) createSchedules(ctx context.Context, c *client) ([]float64, error) {
	lat := make([]float64, schedulesN)
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range b.cfg.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= schedulesN || ctx.Err() != nil {
					return
				}
				body, _ := json.Marshal(map[string]any{"pipeline": pipeSched, "name": fmt.Sprintf("s%05d", i), "cron": "* * * * *"})
				t0 := time.Now()
				st, resp, err := c.do(ctx, http.MethodPost, "/schedules", body)
				lat[i] = ms(time.Since(t0))
				if err == nil && st != http.StatusCreated {
					err = fmt.Errorf("POST /schedules: HTTP %d: %s", st, truncate(resp, 200))
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return lat, firstErr
}

// scheduledJobs reads the jobs of the schedules' pipeline from the stopped server's store.
func scheduledJobs(ctx context.Context, dataDir string) ([]*pipeline.Job, error) {
	st, err := sqlite.Open(ctx, filepath.Join(dataDir, "prunner.db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return st.Jobs(ctx, store.JobQuery{Pipeline: pipeSched, WithoutTasks: true})
}

// measureFirings fills late with the lateness of the jobs of minute and once with how many
// schedules started a job for it; a schedule with two jobs for one fire time is an error.
func measureFirings(jobs []*pipeline.Job, minute time.Time, late, once *result) {
	perFire := map[string]int{}
	var lateness []float64
	for _, j := range jobs {
		if j.ScheduledFor == nil || j.Schedule == "" {
			continue
		}
		key := j.Schedule + "@" + j.ScheduledFor.UTC().Format(time.RFC3339)
		perFire[key]++
		if j.ScheduledFor.Equal(minute) && j.Start != nil {
			lateness = append(lateness, ms(j.Start.Sub(*j.ScheduledFor)))
		}
	}
	dups := 0
	for _, n := range perFire {
		if n > 1 {
			dups++
		}
	}
	sort.Float64s(lateness)
	once.Samples = []float64{float64(len(lateness))}
	if len(lateness) != schedulesN || dups > 0 {
		once.Err = fmt.Sprintf("%d jobs for the minute (want %d), %d fire times with more than one job", len(lateness), schedulesN, dups)
	}
	if len(lateness) == 0 {
		late.Err = "no job of the minute started"
		return
	}
	late.Samples = []float64{percentile(lateness, 99)}
	late.Extra["p50_ms"] = percentile(lateness, 50)
	late.Extra["max_ms"] = lateness[len(lateness)-1]
	late.Note = fmt.Sprintf("p50 %.0f ms, max %.0f ms", percentile(lateness, 50), lateness[len(lateness)-1])
}
