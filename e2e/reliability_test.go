package e2e

// Reliability tests. prunner's reliability promise is that an accepted job is never lost, a
// finished job is never shown as running, no task process outlives its job, and nobody without
// the secret gets in. It is broken down into a numbered checklist (crash and restart 1-4,
// shutdown 5-7, disk and output 8-11, concurrency 12-15, bad input 16-18, auth and secrets
// 19-22, load 23); each test names the item it proves and states it in its comment.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Item 2: kill -9 during a burst of schedule requests: every acknowledged job is there after the
// restart, none twice.
func TestReliabilityKill9DuringScheduleBurst(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  burst:
    concurrency: 4
    tasks: {t: {script: ["true"]}}
`).start()
	var (
		mu    sync.Mutex
		acked []string
		sent  atomic.Int64
	)
	killAt := 300 + rand.IntN(400)
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second}
			for sent.Add(1) <= 1000 {
				req, _ := http.NewRequest("POST", s.url+"/pipelines/schedule", strings.NewReader(`{"pipeline":"burst"}`))
				req.Header.Set("Authorization", "Bearer "+s.token())
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				var out struct {
					JobID string `json:"jobId"`
				}
				if resp.StatusCode == http.StatusAccepted && json.NewDecoder(resp.Body).Decode(&out) == nil {
					mu.Lock()
					acked = append(acked, out.JobID)
					n := len(acked)
					mu.Unlock()
					if n == killAt {
						_ = s.cmd.Process.Signal(syscall.SIGKILL)
					}
				}
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	s.wait(10 * time.Second)
	if len(acked) < killAt {
		t.Fatalf("only %d acknowledged before the kill", len(acked))
	}
	s.start()
	all := s.page("/pipelines/jobs")
	count := map[string]int{}
	for _, j := range all.Jobs {
		count[j.ID]++
	}
	for id, n := range count {
		if n != 1 {
			t.Errorf("job %s listed %d times", id, n)
		}
	}
	for _, id := range acked {
		if count[id] != 1 {
			t.Errorf("acknowledged job %s lost after kill -9", id)
		}
	}
	t.Logf("%d acknowledged, %d stored after the restart", len(acked), len(all.Jobs))
	// The ones left waiting run after the restart.
	eventually(t, 30*time.Second, "all jobs to finish", func() bool {
		return len(s.page("/jobs?status=queued,running&limit=10").Jobs) == 0
	})
}

// Item 3: a crash loop while jobs flow: the store stays consistent and every acknowledged job
// finishes exactly once or is still queued.
func TestReliabilityCrashLoop(t *testing.T) {
	t.Parallel()
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	s := newServer(t, `
pipelines:
  flow:
    concurrency: 2
    tasks: {t: {script: ["sleep 0.05"]}}
`)
	var acked []string
	for round := 0; round < rounds; round++ {
		s.start()
		deadline := time.Now().Add(time.Duration(rand.IntN(1500)) * time.Millisecond)
		for time.Now().Before(deadline) {
			id, status, _ := s.trySchedule("flow", nil, "")
			if status == http.StatusAccepted {
				acked = append(acked, id)
			}
			time.Sleep(10 * time.Millisecond)
		}
		s.kill9()
	}
	s.start()
	eventually(t, 60*time.Second, "every acknowledged job to end", func() bool {
		return len(s.page("/jobs?status=queued,running&limit=10").Jobs) == 0
	})
	for _, id := range acked {
		j := s.job(id)
		if j.End == nil {
			t.Errorf("job %s has no end: %+v", id, j)
		}
		if j.Start != nil && j.End == nil {
			t.Errorf("job %s still shown as running", id)
		}
		if j.Completed && j.Errored && !strings.Contains(j.LastError, "server stopped") && j.task("t").Status != "done" {
			t.Errorf("job %s failed without the crash reason: %+v", id, j)
		}
	}
	t.Logf("%d rounds, %d acknowledged jobs, all ended", rounds, len(acked))
}

// Item 12: a schedule storm against concurrency 4 never runs more than 4 at once (sampled from
// the processes themselves), and every accepted job runs.
func TestReliabilityScheduleStormRespectsConcurrency(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  storm:
    concurrency: 4
    tasks:
      t:
        script:
          - touch "running/$PRUNNER_JOB_ID"
          - sleep 0.02
          - rm "running/$PRUNNER_JOB_ID"
`)
	if err := os.Mkdir(filepath.Join(s.dir, "running"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.start()
	var maxSeen atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			entries, _ := os.ReadDir(filepath.Join(s.dir, "running"))
			if n := int64(len(entries)); n > maxSeen.Load() {
				maxSeen.Store(n)
			}
			time.Sleep(time.Millisecond)
		}
	})
	var acked atomic.Int64
	var ids sync.Map
	var wg sync.WaitGroup
	for c := 0; c < 50; c++ {
		wg.Go(func() {
			for i := 0; i < 10; i++ {
				id, status, body := s.trySchedule("storm", nil, "")
				if status != http.StatusAccepted {
					t.Errorf("schedule: %d %s", status, body)
					return
				}
				acked.Add(1)
				ids.Store(id, true)
			}
		})
	}
	wg.Wait()
	eventually(t, 90*time.Second, "storm jobs to finish", func() bool {
		return len(s.page("/jobs?status=queued,running&limit=10").Jobs) == 0
	})
	close(stop)
	sampler.Wait()
	if m := maxSeen.Load(); m > 4 {
		t.Errorf("up to %d jobs ran at once, concurrency is 4", m)
	}
	succeeded := 0
	ids.Range(func(k, _ any) bool {
		if j := s.job(k.(string)); j.Completed && !j.Errored {
			succeeded++
		}
		return true
	})
	if int64(succeeded) != acked.Load() || acked.Load() != 500 {
		t.Errorf("%d of %d accepted jobs succeeded (want all 500)", succeeded, acked.Load())
	}
	t.Logf("max running sampled: %d (limit 4)", maxSeen.Load())
}

// Item 13: replace and partitioned replace under a storm: the wait list never exceeds its limits
// and the newest request survives.
func TestReliabilityReplaceStormInvariants(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  replace:
    queue_limit: 3
    queue_strategy: replace
    tasks: {t: {script: ["sleep 30"]}}
  parts:
    queue_strategy: partitioned_replace
    queue_partition_limit: 2
    tasks: {t: {script: ["sleep 30"]}}
`, "--kill-grace", "100ms").start()
	violations := atomic.Int64{}
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := len(s.page("/jobs?pipeline=replace&status=queued&limit=100").Jobs); n > 3 {
				violations.Add(1)
			}
			perPartition := map[string]int{}
			for _, j := range s.page("/jobs?pipeline=parts&status=queued&limit=100").Jobs {
				perPartition[j.QueuePartition]++
				if perPartition[j.QueuePartition] > 2 {
					violations.Add(1)
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
	var wg sync.WaitGroup
	for c := 0; c < 20; c++ {
		wg.Go(func() {
			for i := 0; i < 10; i++ {
				if _, status, body := s.trySchedule("replace", nil, ""); status != http.StatusAccepted {
					t.Errorf("replace schedule: %d %s", status, body)
				}
				part := fmt.Sprintf("tenant-%d", rand.IntN(3))
				if _, status, body := s.trySchedule("parts", nil, part); status != http.StatusAccepted {
					t.Errorf("parts schedule: %d %s", status, body)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	if v := violations.Load(); v > 0 {
		t.Errorf("a wait list exceeded its limit (queue_limit 3, queue_partition_limit 2) in %d samples", v)
	}
	// The newest request survives: one more request now is waiting, not replaced.
	newest := s.schedule("replace", nil)
	if j := s.job(newest); j.Canceled {
		t.Errorf("newest request was replaced")
	}
	queued := s.page("/jobs?pipeline=replace&status=queued&limit=100").Jobs
	if len(queued) != 3 || queued[0].ID != newest {
		t.Errorf("replace wait list after the storm: %d jobs, newest first %v; want 3 with %s first", len(queued), jobIDsOf(queued), newest)
	}
	// Per partition at most 2 wait.
	per := map[string]int{}
	for _, j := range s.page("/jobs?pipeline=parts&status=queued&limit=1000").Jobs {
		per[j.QueuePartition]++
	}
	for p, n := range per {
		if n > 2 {
			t.Errorf("partition %s has %d waiting jobs, limit 2", p, n)
		}
	}
	for _, id := range jobIDsOf(s.page("/jobs?status=queued,running&limit=1000").Jobs) {
		s.do("POST", "/job/cancel?id="+id, nil)
	}
}

func jobIDsOf(jobs []jobJSON) []string {
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	return ids
}

// Item 14: cancel races: cancel while queued, while starting, while finishing; every job ends in
// exactly one final state, slots are freed and no process is left.
func TestReliabilityCancelRaces(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  race:
    concurrency: 2
    tasks:
      t: {script: ["sleep 0.0$((RANDOM % 5))"]}
`, "--kill-grace", "100ms").start()
	var ids []string
	for i := 0; i < 40; i++ {
		id := s.schedule("race", nil)
		ids = append(ids, id)
		go func(id string, delay time.Duration) {
			time.Sleep(delay)
			s.do("POST", "/job/cancel?id="+id, nil)
		}(id, time.Duration(rand.IntN(40))*time.Millisecond)
		time.Sleep(time.Duration(rand.IntN(5)) * time.Millisecond)
	}
	eventually(t, 30*time.Second, "all jobs to end", func() bool {
		return len(s.page("/jobs?status=queued,running&limit=10").Jobs) == 0
	})
	for _, id := range ids {
		j := s.job(id)
		switch {
		case j.End == nil:
			t.Errorf("job %s never ended", id)
		case j.Canceled && j.Start == nil && j.Completed:
			t.Errorf("job %s canceled while queued but completed", id)
		case !j.Canceled && !j.Completed:
			t.Errorf("job %s neither completed nor canceled", id)
		}
		for _, task := range j.Tasks {
			if task.Status == "running" || task.Status == "waiting" {
				t.Errorf("job %s ended with task %s %s", id, task.Name, task.Status)
			}
		}
	}
	// Slots are free: a new job starts at once.
	id := s.schedule("race", nil)
	s.waitJob(id, 5*time.Second, "started", func(j jobJSON) bool { return j.Start != nil })
	if n := processesOfJobs(ids); n > 0 {
		t.Errorf("%d task processes of canceled jobs still alive", n)
	}
}

// processesOfJobs counts live processes whose environment marks them as a task of those jobs.
func processesOfJobs(ids []string) int {
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, id := range ids {
			if strings.Contains(string(env), "PRUNNER_JOB_ID="+id) {
				var pid int
				if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err == nil && pidAlive(pid) {
					n++
				}
			}
		}
	}
	return n
}

// Item 9: binary and invalid UTF-8 output: valid JSON comes back, nothing panics.
func TestReliabilityBinaryOutput(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  bin:
    tasks:
      t: {script: ["head -c 200000 /dev/urandom", "printf '\\377\\376<script>\\000end'"]}
`).start()
	id := s.schedule("bin", nil)
	if j := s.waitFinished(id); j.Errored {
		t.Fatalf("job errored: %+v", j)
	}
	status, body := s.do("GET", "/job/logs?id="+id+"&task=t", nil)
	if status != 200 || !json.Valid(body) {
		t.Fatalf("logs: %d, valid JSON %v", status, json.Valid(body))
	}
	if strings.Contains(string(body), "<script>") {
		t.Errorf("log JSON carries a raw <script>; want it escaped")
	}
}

// Item 18: API limits: oversized bodies, odd IDs and task names never reach a file outside the
// data directory.
func TestReliabilityAPILimits(t *testing.T) {
	t.Parallel()
	s := newServer(t, "pipelines:\n  p: {tasks: {t: {script: [\"echo hi\"]}}}\n").start()
	id := s.schedule("p", nil)
	s.waitFinished(id)
	writeFile(t, filepath.Join(s.dir, "secret.txt"), "do not serve me")
	// An oversized body is refused from its Content-Length, before it is read.
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /pipelines/schedule HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"pipeline\":", s.token(), 2<<20)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("oversized body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB body: %d, want 413", resp.StatusCode)
	}
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/job/detail?id=../../etc/passwd", 400},
		{"/job/detail?id=" + strings.Repeat("a", 5000), 400},
		{"/job/logs?id=" + id + "&task=../../../secret.txt", 404},
		{"/job/logs?id=" + id + "&task=..%2F..%2Fsecret.txt", 404},
		{"/job/logs?id=" + id + "&task=t%00x", 400},
		{"/job/logs?id=" + id + "&task=" + strings.Repeat("t", 300), 400},
		{"/job/logs?id=..%2F" + id + "&task=t", 400},
	} {
		status, body := s.do("GET", tc.path, nil)
		if status != tc.status {
			t.Errorf("GET %.80s: %d, want %d", tc.path, status, tc.status)
		}
		if strings.Contains(string(body), "do not serve me") || strings.Contains(string(body), "root:") {
			t.Errorf("GET %.80s served a file outside the data directory", tc.path)
		}
	}
}

// Item 21: the secret and the config file's content never appear in responses or logs.
func TestReliabilitySecretNeverLeaks(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  p:
    tasks:
      t: {script: ["env", "cat .prunner.yml 2>/dev/null || true"]}
`, "--enable-profiling").start()
	id := s.schedule("p", nil)
	s.waitFinished(id)
	var bodies []string
	for _, path := range []string{"/pipelines/jobs", "/job/detail?id=" + id, "/job/logs?id=" + id + "&task=t", "/debug/pprof/cmdline", "/metrics"} {
		_, body := s.do("GET", path, nil)
		bodies = append(bodies, string(body))
	}
	if status, _ := s.do("GET", "/debug/pprof/cmdline", nil); status != 404 {
		t.Errorf("/debug/pprof/cmdline: %d, want 404 (it would show --jwt-secret)", status)
	}
	bodies = append(bodies, s.output.String())
	for i, b := range bodies {
		if strings.Contains(b, testSecret) {
			t.Errorf("the JWT secret appears in output %d", i)
		}
	}
}

// Item 1: kill -9 with 4 jobs running and 50 queued: after the restart the queued jobs run in
// order, the running ones are finished as errored with a clear reason, and none of their
// processes is alive.
func TestReliabilityKill9WithRunningAndQueuedJobs(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  work:
    concurrency: 4
    tasks:
      t:
        script: ["sleep {{ .sleep }}"]
`).start()
	var running, queued []string
	for i := 0; i < 4; i++ {
		running = append(running, s.schedule("work", map[string]any{"sleep": "300"}))
	}
	for i := 0; i < 50; i++ {
		queued = append(queued, s.schedule("work", map[string]any{"sleep": "0.01"}))
	}
	for _, id := range running {
		s.waitJob(id, 10*time.Second, "running", func(j jobJSON) bool { return j.task("t").Status == "running" })
	}
	s.kill9()
	if n := processesOfJobs(running); n == 0 {
		t.Fatalf("the running jobs' processes died with the server; the test needs orphans")
	}
	s.start()
	for _, id := range running {
		j := s.job(id)
		if j.End == nil || !j.Completed || !j.Errored || !strings.Contains(j.LastError, "server stopped") {
			t.Errorf("crashed job %s = %+v", id, j)
		}
	}
	// They start in the order they were accepted. That is the order in which the server claims
	// them, which it records in the store: at every moment the jobs it has started are a prefix
	// of the wait list. Each snapshot of the job list (one read of the store) is checked until
	// all have run. When the spawned processes happen to run is not looked at: under load,
	// process start-up jitter reorders jobs that the server started in order.
	pos := make(map[string]int, len(queued))
	for i, id := range queued {
		pos[id] = i
	}
	snapshots := 0
	eventually(t, 30*time.Second, "queued jobs to finish", func() bool {
		snapshots++
		firstWaiting, lastStarted, finished := len(queued), -1, 0
		for _, j := range s.page("/jobs?pipeline=work&limit=100").Jobs {
			i, ok := pos[j.ID]
			switch {
			case !ok:
			case j.Status == "queued":
				firstWaiting = min(firstWaiting, i)
			default:
				lastStarted = max(lastStarted, i)
				if j.finished() {
					finished++
				}
			}
		}
		if lastStarted > firstWaiting {
			t.Fatalf("snapshot %d: job #%d of the wait list started while #%d was still waiting", snapshots, lastStarted, firstWaiting)
		}
		return finished == len(queued)
	})
	t.Logf("claim order checked in %d snapshots of the job list", snapshots)
	for _, id := range queued {
		if j := s.job(id); !j.Completed || j.Errored {
			t.Errorf("queued job %s after restart = %+v", id, j)
		}
	}
	eventually(t, 5*time.Second, "orphans to be killed", func() bool { return processesOfJobs(running) == 0 })
}
