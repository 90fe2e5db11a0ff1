package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// groupStartup measures idle start-up (exec → first 200 on /pipelines/jobs) on a fresh data
// directory and on an existing empty one, and SIGINT → exit of the idle server. Each restart of
// the empty one is paired with a start of a trivial Go net/http server (bench/floorserver), the
// floor that a Go binary cannot beat, so that figures from a noisy machine compare in one run.
func (b *bench) groupStartup(ctx context.Context) error {
	fresh := &result{Group: "startup", Scenario: "idle start-up, new data dir: exec → first 200", Unit: "ms", Target: atMost(10)}
	warm := &result{Group: "startup", Scenario: "idle start-up, empty history: exec → first 200", Unit: "ms", Target: atMost(10)}
	floor := &result{Group: "startup", Scenario: "floor: trivial Go net/http server: exec → first 200", Unit: "ms"}
	over := &result{Group: "startup", Scenario: "empty history minus floor, paired", Unit: "ms"}
	exit := &result{Group: "startup", Scenario: "SIGINT → exit, idle", Unit: "ms", Target: atMost(100)}
	defer func() {
		b.add(fresh)
		b.add(warm)
		b.add(floor)
		b.add(over)
		b.add(exit)
	}()
	startStop := func(s *server, into *result) error {
		d, err := b.startServer(ctx, s)
		if err != nil {
			return err
		}
		into.Samples = append(into.Samples, ms(d))
		e, err := s.stop(syscall.SIGINT)
		if err != nil {
			return err
		}
		exit.Samples = append(exit.Samples, ms(e))
		return nil
	}
	for i := range b.cfg.startupReps {
		s, err := b.newServer(fmt.Sprintf("startup-fresh-%d", i))
		if err != nil {
			return err
		}
		err = startStop(s, fresh)
		s.kill()
		if err != nil {
			return err
		}
	}
	// One server whose data directory exists (created by its first start), restarted.
	s, err := b.newServer("startup-empty")
	if err != nil {
		return err
	}
	defer s.kill()
	if _, err := b.startServer(ctx, s); err != nil {
		return err
	}
	if _, err := s.stop(syscall.SIGINT); err != nil {
		return err
	}
	fl, err := b.floorServer()
	if err != nil {
		floor.Skipped = err.Error()
		over.Skipped = err.Error()
		fl = nil
	}
	for range b.cfg.startupReps {
		if err := startStop(s, warm); err != nil {
			return err
		}
		if fl == nil {
			continue
		}
		d, err := b.startServer(ctx, fl)
		if err != nil {
			return err
		}
		if _, err := fl.stop(syscall.SIGINT); err != nil {
			return err
		}
		floor.Samples = append(floor.Samples, ms(d))
		over.Samples = append(over.Samples, warm.Samples[len(warm.Samples)-1]-ms(d))
	}
	return nil
}

// floorServer builds bench/floorserver (the bench runs from the module root) and returns a
// server that runs it.
func (b *bench) floorServer() (*server, error) {
	bin := filepath.Join(b.workDir, "floorserver")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./bench/floorserver")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the floor server: %v: %s", err, out)
	}
	b.nserver++
	return newServer(fmt.Sprintf("%02d-floor", b.nserver), bin, b.workDir, b.pipeDir, b.secret, nil)
}

// groupLatency measures schedule → observed completion of a 1-task job, polling /job/detail.
func (b *bench) groupLatency(ctx context.Context) error {
	r := &result{Group: "latency", Scenario: "1-task job: schedule → completed", Unit: "ms", Target: atMost(5),
		Extra: map[string]any{"poll_ms": ms(b.cfg.poll)}}
	defer b.add(r)
	s, c, err := b.startFresh(ctx, "latency")
	if err != nil {
		return err
	}
	defer s.kill()
	one, err := b.measureLatency(ctx, r, []*server{s}, []*client{c})
	if err != nil {
		return err
	}
	b.profile(ctx, s, c, "latency", func(ctx context.Context) error { _, _, err := one(0); return err })
	return nil
}

// measureLatency fills r with the latency of latencyN 1-task jobs (after latencyWarmup
// unmeasured ones), one at a time: job i is scheduled through clients[i%n] and polled through
// clients[(i+1)%n] (with one client, both through it). servers are the processes whose CPU
// time it reports. It returns the measurement of one job, for profiles.
func (b *bench) measureLatency(ctx context.Context, r *result, servers []*server, clients []*client) (func(i int) (time.Duration, bool, error), error) {
	one := func(i int) (time.Duration, bool, error) {
		t0 := time.Now()
		id, err := clients[i%len(clients)].schedule(ctx, pipeOne, nil)
		if err != nil {
			return 0, false, err
		}
		d, err := clients[(i+1)%len(clients)].waitDone(ctx, id, b.cfg.poll, time.Minute)
		if err != nil {
			return 0, false, err
		}
		return time.Since(t0), d.failed(), nil
	}
	for i := range b.cfg.latencyWarmup {
		if _, _, err := one(i); err != nil {
			return nil, err
		}
	}
	cpu := func() (sum float64) {
		for _, s := range servers {
			sum += procCPU(s.pid())
		}
		return sum
	}
	failed := 0
	cpu0 := cpu()
	for i := range b.cfg.latencyN {
		d, f, err := one(i)
		if err != nil {
			return nil, err
		}
		r.Samples = append(r.Samples, ms(d))
		if f {
			failed++
		}
	}
	r.Extra["server_cpu_s"] = cpu() - cpu0
	r.Extra["failed_jobs"] = failed
	if failed > 0 {
		r.Err = fmt.Sprintf("%d jobs failed", failed)
	}
	return one, nil
}

// groupGraph measures the wide DAG and the chain: schedule → completed.
func (b *bench) groupGraph(ctx context.Context) error {
	wide := &result{Group: "graph", Scenario: fmt.Sprintf("%d independent tasks in one job", b.cfg.wide), Unit: "ms", Target: atMost(60)}
	chain := &result{Group: "graph", Scenario: fmt.Sprintf("chain of %d dependent tasks", b.cfg.chain), Unit: "s", Target: atMost(0.5)}
	defer func() {
		b.add(wide)
		b.add(chain)
	}()
	s, c, err := b.startFresh(ctx, "graph")
	if err != nil {
		return err
	}
	defer s.kill()
	one := func(pipeline string, ntasks int) (time.Duration, error) {
		t0 := time.Now()
		id, err := c.schedule(ctx, pipeline, nil)
		if err != nil {
			return 0, err
		}
		d, err := c.waitDone(ctx, id, b.cfg.graphPoll, 2*time.Minute)
		if err != nil {
			return 0, err
		}
		el := time.Since(t0)
		if d.failed() || len(d.Tasks) != ntasks {
			return el, fmt.Errorf("%s job %s: errored=%t canceled=%t tasks=%d (want %d done) %s", pipeline, id, d.Errored, d.Canceled, len(d.Tasks), ntasks, d.LastError)
		}
		return el, nil
	}
	// One unmeasured run of each warms the server up like the latency warm-up does.
	if _, err := one(pipeWide, b.cfg.wide); err != nil {
		return err
	}
	for range b.cfg.graphReps {
		d, err := one(pipeWide, b.cfg.wide)
		if err != nil {
			wide.Err = err.Error()
			break
		}
		wide.Samples = append(wide.Samples, ms(d))
	}
	for range b.cfg.graphReps {
		d, err := one(pipeChain, b.cfg.chain)
		if err != nil {
			chain.Err = err.Error()
			break
		}
		chain.Samples = append(chain.Samples, d.Seconds())
	}
	b.profile(ctx, s, c, "wide", func(ctx context.Context) error { _, err := one(pipeWide, b.cfg.wide); return err })
	b.profile(ctx, s, c, "chain", func(ctx context.Context) error { _, err := one(pipeChain, b.cfg.chain); return err })
	return nil
}

// scheduleMany schedules n jobs of pipeline from b.cfg.clients goroutines. Every request must be
// answered 202. It returns the IDs in schedule order and each request's latency.
func (b *bench) scheduleMany(ctx context.Context, c *client, pipeline string, n int, vars func(i int) map[string]any) ([]string, []float64, error) {
	return b.scheduleRoundRobin(ctx, []*client{c}, pipeline, n, vars)
}

// scheduleRoundRobin is scheduleMany through several servers: job i through clients[i%n].
func (b *bench) scheduleRoundRobin(ctx context.Context, clients []*client, pipeline string, n int, vars func(i int) map[string]any) ([]string, []float64, error) {
	ids := make([]string, n)
	lat := make([]float64, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	var failures int
	for range b.cfg.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				var v map[string]any
				if vars != nil {
					v = vars(i)
				}
				t0 := time.Now()
				id, err := clients[i%len(clients)].schedule(ctx, pipeline, v)
				lat[i] = ms(time.Since(t0))
				if err != nil {
					mu.Lock()
					failures++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, lat, fmt.Errorf("%d of %d schedule requests not acknowledged with 202; first: %w", failures, n, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return nil, lat, err
	}
	return ids, lat, nil
}

// groupThroughput schedules 500 jobs of a pipeline with concurrency 8 from several clients (each
// acknowledged with 202, i.e. durable) and measures until all completed.
func (b *bench) groupThroughput(ctx context.Context) error {
	tp := &result{Group: "throughput", Scenario: fmt.Sprintf("%d jobs, concurrency %d: schedule → all completed", b.cfg.tpJobs, b.cfg.tpConcurrency),
		Unit: "jobs/s", Target: atLeast(1000), Extra: map[string]any{"clients": b.cfg.clients}}
	acks := &result{Group: "throughput", Scenario: fmt.Sprintf("… scheduling alone (%d clients, every 202 durable)", b.cfg.clients), Unit: "jobs/s"}
	ack := &result{Group: "throughput", Scenario: "… one schedule request under that load", Unit: "ms"}
	defer func() {
		b.add(tp)
		b.add(acks)
		b.add(ack)
	}()
	s, c, err := b.startFresh(ctx, "throughput")
	if err != nil {
		return err
	}
	defer s.kill()
	var lats []float64
	batch := func() (total, sched time.Duration, failed int, err error) {
		t0 := time.Now()
		ids, lat, err := b.scheduleMany(ctx, c, pipeTP, b.cfg.tpJobs, nil)
		lats = append(lats, lat...)
		if err != nil {
			return 0, 0, 0, err
		}
		sched = time.Since(t0)
		failed, err = c.waitAll(ctx, ids, b.cfg.poll, 5*time.Minute)
		return time.Since(t0), sched, failed, err
	}
	for range b.cfg.tpReps {
		total, sched, failed, err := batch()
		if err != nil {
			tp.Err = err.Error()
			return nil
		}
		if failed > 0 {
			tp.Err = fmt.Sprintf("%d jobs failed", failed)
		}
		tp.Samples = append(tp.Samples, float64(b.cfg.tpJobs)/total.Seconds())
		acks.Samples = append(acks.Samples, float64(b.cfg.tpJobs)/sched.Seconds())
	}
	ack.Samples = lats
	b.profile(ctx, s, c, "throughput", func(ctx context.Context) error { _, _, _, err := batch(); return err })
	return nil
}

// groupHuge runs a task writing hugeBytes to stdout (server RSS while it runs), then fetches
// its log with GET /job/logs (and GET /job/logs/raw when the route exists): peak RSS and time.
func (b *bench) groupHuge(ctx context.Context) error {
	mb := float64(b.cfg.hugeBytes) / 1e6
	run := &result{Group: "huge", Scenario: fmt.Sprintf("task writing %.0f MB to stdout: server peak RSS while running", mb), Unit: "MiB", Target: atMost(32)}
	wall := &result{Group: "huge", Scenario: "… the job: schedule → completed", Unit: "s"}
	logsRSS := &result{Group: "huge", Scenario: "… then GET /job/logs: server peak RSS", Unit: "MiB", Target: atMost(64)}
	logsTime := &result{Group: "huge", Scenario: "… then GET /job/logs: time", Unit: "s", Target: atMost(2)}
	rawRSS := &result{Group: "huge", Scenario: "… GET /job/logs/raw?stream=stdout: server peak RSS", Unit: "MiB"}
	rawTime := &result{Group: "huge", Scenario: "… GET /job/logs/raw?stream=stdout: time", Unit: "s"}
	rawExists := true
	defer func() {
		b.add(run)
		b.add(wall)
		b.add(logsRSS)
		b.add(logsTime)
		if rawExists {
			b.add(rawRSS)
			b.add(rawTime)
		} else {
			b.add(&result{Group: "huge", Scenario: "… GET /job/logs/raw", Unit: "s", Skipped: "route absent: 404"})
		}
	}()
	s, c, err := b.startFresh(ctx, "huge")
	if err != nil {
		return err
	}
	defer s.kill()
	pid := s.pid()
	// fetch GETs path and measures the server's peak RSS and the time to the last byte.
	fetch := func(path string, wantMin int64) (peak float64, d time.Duration, status int, err error) {
		p := startRSSPeak(pid, 10*time.Millisecond)
		t0 := time.Now()
		st, n, err := c.stream(ctx, path, io.Discard)
		d = time.Since(t0)
		peak, _ = p.finish()
		if err == nil && st == http.StatusOK && n < wantMin {
			err = fmt.Errorf("GET %s: %d bytes, want at least %d", path, n, wantMin)
		}
		return peak, d, st, err
	}
	var lastID string
	for i := range b.cfg.hugeReps {
		p := startRSSPeak(pid, 10*time.Millisecond)
		t0 := time.Now()
		id, err := c.schedule(ctx, pipeHuge, nil)
		if err != nil {
			p.finish()
			return err
		}
		d, err := c.waitDone(ctx, id, 10*time.Millisecond, 10*time.Minute)
		el := time.Since(t0)
		peak, sampled := p.finish()
		if err != nil {
			return err
		}
		if d.failed() {
			run.Err = fmt.Sprintf("job %s failed: %s", id, d.LastError)
			return nil
		}
		run.Samples = append(run.Samples, peak)
		wall.Samples = append(wall.Samples, el.Seconds())
		if run.Extra == nil {
			run.Extra = map[string]any{}
		}
		run.Extra[fmt.Sprintf("sampled_max_rss_mib_%d", i)] = round3(sampled)
		lastID = id
		q := "?id=" + url.QueryEscape(id) + "&task=t"
		for range b.cfg.logsReps {
			peak, d, st, err := fetch("/job/logs"+q, b.cfg.hugeBytes)
			if err != nil || st != http.StatusOK {
				logsTime.Err = fmt.Sprintf("GET /job/logs: HTTP %d: %v", st, err)
				logsRSS.Err = logsTime.Err
				break
			}
			logsRSS.Samples = append(logsRSS.Samples, peak)
			logsTime.Samples = append(logsTime.Samples, d.Seconds())
		}
		if !rawExists {
			continue
		}
		for range b.cfg.logsReps {
			peak, d, st, err := fetch("/job/logs/raw"+q+"&stream=stdout", b.cfg.hugeBytes)
			if st == http.StatusNotFound {
				rawExists = false
				break
			}
			if err != nil || st != http.StatusOK {
				rawTime.Err = fmt.Sprintf("GET /job/logs/raw: HTTP %d: %v", st, err)
				rawRSS.Err = rawTime.Err
				break
			}
			rawRSS.Samples = append(rawRSS.Samples, peak)
			rawTime.Samples = append(rawTime.Samples, d.Seconds())
		}
	}
	if lastID != "" {
		q := "?id=" + url.QueryEscape(lastID) + "&task=t"
		b.profile(ctx, s, c, "huge-logs", func(ctx context.Context) error {
			_, _, _, err := fetch("/job/logs"+q, b.cfg.hugeBytes)
			return err
		})
		b.profile(ctx, s, c, "huge-run", func(ctx context.Context) error {
			id, err := c.schedule(ctx, pipeHuge, nil)
			if err != nil {
				return err
			}
			_, err = c.waitDone(ctx, id, 10*time.Millisecond, 10*time.Minute)
			return err
		})
	}
	return nil
}

// historySpec is one history group: how many finished jobs, how they get there, and the
// targets of its rows (nil: information only).
type historySpec struct {
	group string
	n     int
	// seeded: all but a few of the jobs are written into the store before the server starts
	// (see seedHistory) instead of being scheduled and run through the API.
	seeded bool
	// Targets, in ms and MiB.
	list, page, rss, exit, restart float64
}

// historyLarge is the size of the history-100k group.
const historyLarge = 100_000

// groupHistory fills the history of the 10,000-job scenario of performance.md through the API.
func (b *bench) groupHistory(ctx context.Context) error {
	return b.history(ctx, historySpec{group: "history", n: b.cfg.historyN,
		list: 40, page: 5, rss: 40, exit: 100, restart: 60})
}

// groupHistoryLarge measures a history of 100,000 finished jobs: a full list must need bounded
// memory (at most 48 MiB RSS after listing; it was 119–125 MiB while the list was held whole to
// send a Content-Length). The list time's target is the 10,000-job target (40 ms for 4.3 MB)
// scaled to the list's 43 MB: a list that long is sent chunked, and fasthttp writes a chunked
// body to the socket 4 KiB at a time, which costs about twice the CPU of the held body (about
// 200 ms on the 2-core VM, commit a05893f). A page of 50 keeps the 10,000-job target; restart
// → first 200 keeps the figure of the binary before the list streamed (880 ms, measured with
// this group on the same VM).
func (b *bench) groupHistoryLarge(ctx context.Context) error {
	return b.history(ctx, historySpec{group: "history-100k", n: b.cfg.historyLargeN, seeded: true,
		list: 400, page: 5, rss: 48, restart: 880})
}

// history fills a history with finished jobs, then measures the full list, one page of 50, the
// server's RSS after listing, and restarts (SIGINT → exit, exec → first 200).
func (b *bench) history(ctx context.Context, spec historySpec) error {
	n, g := spec.n, spec.group
	tgt := func(v float64) *target {
		if v <= 0 {
			return nil
		}
		return atMost(v)
	}
	fill := &result{Group: g, Scenario: fmt.Sprintf("history fill: %d jobs scheduled and finished", n), Unit: "jobs/s"}
	if spec.seeded {
		fill.Scenario = fmt.Sprintf("history fill: %d jobs run, %d more seeded through the store", min(n, seedTemplateJobs), max(0, n-seedTemplateJobs))
	}
	list := &result{Group: g, Scenario: fmt.Sprintf("%d finished jobs: GET /pipelines/jobs (full list)", n), Unit: "ms", Target: tgt(spec.list)}
	size := &result{Group: g, Scenario: "… its response size", Unit: "MB"}
	cpu := &result{Group: g, Scenario: "… server CPU time per full list", Unit: "ms"}
	pageJobs := &result{Group: g, Scenario: "… one page of 50: GET /jobs?limit=50", Unit: "ms", Target: tgt(spec.page)}
	pagePJ := &result{Group: g, Scenario: "… one page of 50: GET /pipelines/jobs?limit=50", Unit: "ms", Target: tgt(spec.page)}
	rss := &result{Group: g, Scenario: "… server RSS after listing", Unit: "MiB", Target: tgt(spec.rss)}
	exit := &result{Group: g, Scenario: "… SIGINT → exit, idle", Unit: "ms", Target: tgt(spec.exit)}
	restart := &result{Group: g, Scenario: "… restart: exec → first 200 on /pipelines/jobs", Unit: "ms", Target: tgt(spec.restart)}
	list2 := &result{Group: g, Scenario: "… after restart: GET /pipelines/jobs (full list)", Unit: "ms", Target: tgt(spec.list)}
	rss2 := &result{Group: g, Scenario: "… after restart: server RSS after listing", Unit: "MiB", Target: tgt(spec.rss)}
	defer func() {
		for _, r := range []*result{fill, list, size, cpu, pageJobs, pagePJ, rss, exit, restart, list2, rss2} {
			b.add(r)
		}
	}()
	s, c, err := b.startFresh(ctx, g)
	if err != nil {
		return err
	}
	defer s.kill()

	t0 := time.Now()
	run := n
	if spec.seeded {
		run = min(n, seedTemplateJobs)
	}
	ids, _, err := b.scheduleMany(ctx, c, pipeHist, run, func(i int) map[string]any { return map[string]any{"i": i} })
	if err != nil {
		fill.Err = err.Error()
		return nil
	}
	failed, err := c.waitAll(ctx, ids, 5*time.Millisecond, 10*time.Minute)
	if err != nil {
		fill.Err = err.Error()
		return nil
	}
	if failed > 0 {
		fill.Err = fmt.Sprintf("%d jobs failed", failed)
	}
	if spec.seeded && n > run {
		c.closeIdle()
		if _, err := s.stop(syscall.SIGINT); err != nil {
			return err
		}
		if err := seedHistory(ctx, s.dataDir, n-run); err != nil {
			fill.Err = err.Error()
			return nil
		}
		if _, err := b.startServer(ctx, s); err != nil {
			return err
		}
	}
	fill.Samples = []float64{float64(n) / time.Since(t0).Seconds()}

	// listFull GETs the full list reps times; the first answer is checked for n jobs.
	listFull := func(into *result, sizeInto *result, reps int) error {
		for i := range reps {
			t0 := time.Now()
			st, body, err := c.do(ctx, http.MethodGet, "/pipelines/jobs", nil)
			d := time.Since(t0)
			if err != nil || st != http.StatusOK {
				return fmt.Errorf("GET /pipelines/jobs: HTTP %d: %v", st, err)
			}
			into.Samples = append(into.Samples, ms(d))
			if sizeInto != nil {
				sizeInto.Samples = append(sizeInto.Samples, float64(len(body))/1e6)
			}
			if i == 0 {
				if got, err := countJobs(body); err != nil || got != n {
					into.Err = fmt.Sprintf("list has %d jobs, want %d (%v)", got, n, err)
				}
			}
		}
		return nil
	}
	listPage := func(into *result, path string) error {
		for i := range b.cfg.pageReps {
			t0 := time.Now()
			st, body, err := c.do(ctx, http.MethodGet, path, nil)
			d := time.Since(t0)
			if err != nil || st != http.StatusOK {
				into.Err = fmt.Sprintf("GET %s: HTTP %d: %v %s", path, st, err, truncate(body, 100))
				return nil
			}
			into.Samples = append(into.Samples, ms(d))
			if i == 0 {
				if got, err := countJobs(body); err != nil || got != 50 {
					into.Err = fmt.Sprintf("page has %d jobs, want 50 (%v)", got, err)
					return nil
				}
			}
		}
		return nil
	}
	cpu0 := procCPU(s.pid())
	if err := listFull(list, size, b.cfg.listReps); err != nil {
		return err
	}
	// The server's CPU time per list tells more than the wall time on a busy machine.
	cpu.Samples = []float64{(procCPU(s.pid()) - cpu0) * 1000 / float64(b.cfg.listReps)}
	if err := listPage(pageJobs, "/jobs?limit=50"); err != nil {
		return err
	}
	if err := listPage(pagePJ, "/pipelines/jobs?limit=50"); err != nil {
		return err
	}
	if v, _, err := procStatus(s.pid()); err == nil {
		rss.Samples = []float64{v}
	}
	b.profile(ctx, s, c, g+"-list", func(ctx context.Context) error { return listFull(&result{}, nil, 1) })
	b.profile(ctx, s, c, g+"-page", func(ctx context.Context) error {
		return listPage(&result{}, "/pipelines/jobs?limit=50")
	})

	// Restarts: SIGINT the idle server, start it again on the same data and port.
	for range b.cfg.restartReps {
		c.closeIdle()
		e, err := s.stop(syscall.SIGINT)
		if err != nil {
			return err
		}
		exit.Samples = append(exit.Samples, ms(e))
		t0, err := s.start()
		if err != nil {
			return err
		}
		d, body, err := s.waitFirst200(ctx, t0, b.token, "/pipelines/jobs", time.Millisecond, 2*time.Minute)
		if err != nil {
			return err
		}
		restart.Samples = append(restart.Samples, ms(d))
		if got, err := countJobs(body); err != nil || got != n {
			restart.Err = fmt.Sprintf("first answer after restart lists %d jobs, want %d (%v)", got, n, err)
		}
	}
	if err := listFull(list2, nil, min(b.cfg.listReps, 5)); err != nil {
		return err
	}
	if v, _, err := procStatus(s.pid()); err == nil {
		rss2.Samples = []float64{v}
	}
	return nil
}

// countJobs counts the jobs of a list answer ({"jobs": [...]}).
func countJobs(body []byte) (int, error) {
	var v struct {
		Jobs []json.RawMessage `json:"jobs"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return 0, err
	}
	return len(v.Jobs), nil
}

// profile, with --pprof, takes a CPU profile of the server while work runs repeatedly, then its
// heap and allocs profiles, into the profile directory as <name>.{cpu,heap,allocs}.pprof. It runs
// after the measurements of a group, so it never perturbs them; failures are only reported.
func (b *bench) profile(ctx context.Context, s *server, c *client, name string, work func(context.Context) error) {
	if b.cfg.pprofDir == "" || ctx.Err() != nil {
		return
	}
	save := func(kind, path string) error {
		f, err := os.Create(filepath.Join(b.cfg.pprofDir, name+"."+kind+".pprof"))
		if err != nil {
			return err
		}
		defer f.Close()
		st, _, err := c.stream(ctx, path, f)
		if err == nil && st != http.StatusOK {
			err = fmt.Errorf("GET %s: HTTP %d (is --enable-profiling supported?)", path, st)
		}
		return err
	}
	secs := max(1, b.cfg.pprofSeconds)
	done := make(chan error, 1)
	go func() { done <- save("cpu", fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs)) }()
	// Give the profile request a moment to start before the work does.
	_ = sleepCtx(ctx, 50*time.Millisecond)
	deadline := time.Now().Add(time.Duration(secs)*time.Second + time.Minute)
	runs := 0
	var workErr error
loop:
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			done <- err
			break loop
		default:
		}
		if workErr = work(ctx); workErr != nil {
			break
		}
		runs++
	}
	err := <-done
	if err == nil {
		err = workErr
	}
	if err == nil {
		err = save("heap", "/debug/pprof/heap")
	}
	if err == nil {
		err = save("allocs", "/debug/pprof/allocs")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench:   profile %s: %v\n", name, err)
		return
	}
	fmt.Fprintf(os.Stderr, "bench:   profile %s: %d runs in %ds → %s/%s.cpu.pprof\n", name, runs, secs, b.cfg.pprofDir, name)
}
