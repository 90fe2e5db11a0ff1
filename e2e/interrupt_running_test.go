package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// interruptPipelines: each job records whether the job it follows still has a live process
// (pid-<prev>; a zombie that its parent has not reaped yet is dead), then runs a long process
// whose PID it writes to pid-<n>. An empty pid file (a process killed between the shell's
// truncate and its write) is no process: without the test -n, /proc//stat is /proc/stat.
const interruptPipelines = `
pipelines:
  deploy:
    queue_strategy: replace
    queue_limit: 1
    interrupt_running: true
    tasks:
      run:
        script:
          - 'if test -n "{{ .prev }}" && p=$(cat pid-{{ .prev }} 2>/dev/null) && test -n "$p" && st=$(cut -d" " -f3 /proc/$p/stat 2>/dev/null) && test "$st" != Z; then echo old-alive; else echo old-gone; fi'
          - "sh -c 'echo $$ > pid-{{ .n }}; exec sleep 60'"
    on_error:
      script: ["echo on_error ran"]
  tenant_deploy:
    concurrency: 2
    queue_strategy: partitioned_replace
    queue_partition_limit: 1
    interrupt_running: true
    tasks:
      run:
        script:
          - 'if test -n "{{ .prev }}" && p=$(cat pid-{{ .prev }} 2>/dev/null) && test -n "$p" && st=$(cut -d" " -f3 /proc/$p/stat 2>/dev/null) && test "$st" != Z; then echo old-alive; else echo old-gone; fi'
          - "sh -c 'echo $$ > pid-{{ .n }}; exec sleep 60'"
`

// TestInterruptRunning: with interrupt_running, a new job does not wait behind the running one:
// the running job is canceled (replacedBy the new job, lastError saying so, no on_error), its
// processes are gone before the new job's task starts, and the pipeline's concurrency is never
// exceeded; with partitioned_replace only the job of the same partition is interrupted.
func TestInterruptRunning(t *testing.T) {
	t.Parallel()
	s := newServer(t, interruptPipelines).start()

	// Sample the running jobs of deploy while the jobs hand over: never more than one.
	var maxRunning atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			status, body := s.do("GET", "/pipelines/jobs?pipeline=deploy&status=running&limit=10", nil)
			var list struct {
				Jobs []struct {
					Status string `json:"status"`
				} `json:"jobs"`
			}
			if status == 200 && json.Unmarshal(body, &list) == nil {
				n := int64(0)
				for _, j := range list.Jobs {
					if j.Status == "running" {
						n++
					}
				}
				if n > maxRunning.Load() {
					maxRunning.Store(n)
				}
			}
		}
	}()

	first := s.schedule("deploy", map[string]any{"n": "1", "prev": ""})
	waitPIDFile(t, s, "1")
	second := s.schedule("deploy", map[string]any{"n": "2", "prev": "1"})
	j := s.waitFinished(first)
	if j.Status != "canceled" || j.ReplacedBy != second || !strings.Contains(j.LastError, "interrupted by the newer job "+second) {
		t.Errorf("the interrupted job ended %s, replacedBy %q, %q; want canceled, replaced by %s, saying why", j.Status, j.ReplacedBy, j.LastError, second)
	}
	for _, task := range j.Tasks {
		if task.Name == "on_error" {
			t.Errorf("on_error ran for an interrupted job")
		}
	}
	waitLog(t, s, second, "run", "old-")
	if out, _ := s.logs(second, "run"); !strings.HasPrefix(out, "old-gone") {
		t.Errorf("the new job's task started while the interrupted job's process lived: %q", out)
	}
	close(stop)
	<-sampled
	if n := maxRunning.Load(); n > 1 {
		t.Errorf("%d deploy jobs ran at once, want at most its concurrency 1", n)
	}

	// partitioned_replace: a2 interrupts a1, b1 runs on.
	a1 := s.trySchedulePartition(t, "tenant_deploy", map[string]any{"n": "a1", "prev": ""}, "a")
	b1 := s.trySchedulePartition(t, "tenant_deploy", map[string]any{"n": "b1", "prev": ""}, "b")
	waitPIDFile(t, s, "a1")
	waitPIDFile(t, s, "b1")
	a2 := s.trySchedulePartition(t, "tenant_deploy", map[string]any{"n": "a2", "prev": "a1"}, "a")
	if j := s.waitFinished(a1); j.Status != "canceled" || j.ReplacedBy != a2 {
		t.Errorf("a1 ended %s replacedBy %q, want canceled by a2", j.Status, j.ReplacedBy)
	}
	waitLog(t, s, a2, "run", "old-gone")
	if j := s.job(b1); j.Status != "running" {
		t.Errorf("b1 of another partition is %s, want still running", j.Status)
	}
	for _, id := range []string{second, a2, b1} {
		s.do("POST", "/job/cancel?id="+id, nil)
	}
}

// waitLog waits until a task's stdout contains want.
func waitLog(t *testing.T, s *server, id, task, want string) {
	t.Helper()
	eventually(t, 15*time.Second, "output "+want+" of "+id, func() bool {
		out, _ := s.logs(id, task)
		return strings.Contains(out, want)
	})
}

// waitPIDFile waits until the long process of job n has written its PID, so that an interrupt
// has a live process to end.
func waitPIDFile(t *testing.T, s *server, n string) {
	t.Helper()
	eventually(t, 15*time.Second, "pid file of job "+n, func() bool {
		b, err := os.ReadFile(filepath.Join(s.dir, "pid-"+n))
		return err == nil && strings.HasSuffix(string(b), "\n")
	})
}

// trySchedulePartition schedules a job in a queue partition and fails the test unless it is
// accepted.
func (s *server) trySchedulePartition(t *testing.T, pipeline string, vars map[string]any, partition string) string {
	t.Helper()
	id, status, body := s.trySchedule(pipeline, vars, partition)
	if status != 202 {
		t.Fatalf("schedule %s/%s: %d %s", pipeline, partition, status, body)
	}
	return id
}
