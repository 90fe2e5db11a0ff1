package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// markerEnv marks every process the suite starts: each server (and the browser) gets
// markerEnv=<marker> in its environment, and every task process inherits it, in whatever process
// group or session it runs. A scan of /proc/*/environ then finds what a test started even after
// the server that spawned it was SIGKILLed on purpose, and only that: other test runs on the same
// machine carry other markers.
const markerEnv = "PRUNNER_E2E_TEST"

// suiteMarker is unique to one run of the test binary; every marker of the run starts with it and
// a slash. TestMain sets it.
var suiteMarker string

var markerSeq atomic.Int64

// newSuiteMarker returns a random marker for a run of the test binary.
func newSuiteMarker() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return fmt.Sprintf("run-%d-%s", os.Getpid(), hex.EncodeToString(b))
}

// newMarker returns a marker for the processes one server (or browser) of t starts: unique in
// the run, and naming the test, so that a process left behind tells who started it.
func newMarker(t *testing.T) string {
	return fmt.Sprintf("%s/%s#%d", suiteMarker, t.Name(), markerSeq.Add(1))
}

// markedProcess is a live process that carries a marker.
type markedProcess struct {
	pid, pgid int
	marker    string
	cmdline   string
}

func (p markedProcess) String() string {
	return fmt.Sprintf("pid %d (group %d) %q marked %s", p.pid, p.pgid, p.cmdline, p.marker)
}

// markedProcesses lists the live processes whose markerEnv value satisfies match. Zombies are
// not listed: they run nothing, and their environment is gone. On a system without /proc the
// list is empty.
func markedProcesses(match func(marker string) bool) []markedProcess {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	prefix := []byte(markerEnv + "=")
	self := os.Getpid()
	var found []markedProcess
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || pid <= 1 {
			continue
		}
		environ, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue // gone, a zombie, or not ours to read
		}
		for _, kv := range bytes.Split(environ, []byte{0}) {
			if !bytes.HasPrefix(kv, prefix) {
				continue
			}
			marker := string(kv[len(prefix):])
			if !match(marker) || !pidAlive(pid) {
				break
			}
			pgid, _ := syscall.Getpgid(pid)
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			found = append(found, markedProcess{
				pid: pid, pgid: pgid, marker: marker,
				cmdline: strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))),
			})
			break
		}
	}
	return found
}

// killProcesses SIGKILLs each process and its process group. The test binary's own group is
// spared: a server runs in it, and killing the group would kill the test run.
func killProcesses(procs []markedProcess) {
	own := syscall.Getpgrp()
	for _, p := range procs {
		if p.pgid > 1 && p.pgid != own {
			_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
		}
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

// killMarked kills every process marked with exactly marker, by process group, until none is
// left or the timeout passes, and returns the processes it found at first (nil when there were
// none). Killing repeats because a process may fork while its group is being killed.
func killMarked(marker string, timeout time.Duration) (found, left []markedProcess) {
	match := func(m string) bool { return m == marker }
	deadline := time.Now().Add(timeout)
	for {
		procs := markedProcesses(match)
		if found == nil {
			found = procs
		}
		if len(procs) == 0 || time.Now().After(deadline) {
			return found, procs
		}
		killProcesses(procs)
		time.Sleep(10 * time.Millisecond)
	}
}

// reapMarked is the cleanup for what marker's owner started: it kills whatever is left and
// reports it in t's log (a test that SIGKILLs its server on purpose leaves its tasks behind);
// a process that cannot be killed fails t.
func reapMarked(t *testing.T, marker string) {
	t.Helper()
	found, left := killMarked(marker, 10*time.Second)
	if len(found) > 0 {
		t.Logf("killed %d process(es) the test left behind: %v", len(found), found)
	}
	if len(left) > 0 {
		t.Errorf("%d process(es) of the test still alive after SIGKILL: %v", len(left), left)
	}
}

// checkNoneLeft is the suite's last check: no process of this run is alive. It gives the ones
// that are just ending a moment, then kills what is left and reports it.
func checkNoneLeft() error {
	match := func(m string) bool { return strings.HasPrefix(m, suiteMarker+"/") }
	var procs []markedProcess
	deadline := time.Now().Add(5 * time.Second)
	for {
		if procs = markedProcesses(match); len(procs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	killProcesses(procs)
	lines := make([]string, len(procs))
	for i, p := range procs {
		lines[i] = "  " + p.String()
	}
	return fmt.Errorf("%d process(es) started by the tests were still running at the end (now killed):\n%s",
		len(procs), strings.Join(lines, "\n"))
}

// TestHarnessLeavesNothingBehind is the spec of the cleanup every server of the suite gets. The
// operator's stop ends a server that still runs a job, cleanly and within its bounds; the
// processes that a server SIGKILLed on purpose leaves behind (its tasks, in their own process
// groups, and one that even left for a session of its own) are found by their marker and
// killed. (The one in a session of its own, "sleep 301", also outlives the operator's stop: the
// server kills its tasks by process group, and that process left the group.)
func TestHarnessLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("no /proc here: the harness cannot find processes by their marker")
	}
	const pipelines = `
pipelines:
  p:
    tasks:
      t:
        script:
          - setsid sleep 301 &
          - sleep 300 &
          - sleep 300
`
	for _, tc := range []struct {
		name      string
		stop      func(s *server)
		wantFound int // processes the reaping finds after the stop, at least
	}{
		{"operator stop", func(s *server) {
			s.stop(s.cmd, s.exited)
			// The server has exited when stop returns; wait only reads its exit code (with a
			// zero timeout, its select could pick the timeout).
			if code := s.wait(time.Second); code != 0 {
				t.Errorf("exit code after the operator's stop = %d, want 0", code)
			}
		}, 0},
		{"kill -9", (*server).kill9, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, pipelines, "--kill-grace", "200ms").start()
			id := s.schedule("p", nil)
			s.waitJob(id, 10*time.Second, "running", func(j jobJSON) bool { return j.task("t").Status == "running" })
			ofServer := func(m string) bool { return m == s.marker }
			// Counting processes is not enough: a forked child shows its parent's environment
			// until it has exec'd, and setsid forks once more.
			eventually(t, 10*time.Second, "the task's three sleeps", func() bool {
				sleeps := map[string]int{}
				for _, p := range markedProcesses(ofServer) {
					sleeps[p.cmdline]++
				}
				return sleeps["sleep 300"] == 2 && sleeps["sleep 301"] == 1
			})
			tc.stop(s)
			found, left := killMarked(s.marker, 10*time.Second)
			t.Logf("after the stop: %v", found)
			if len(found) < tc.wantFound {
				t.Errorf("found %d processes after the stop, want at least %d: %v", len(found), tc.wantFound, found)
			}
			if len(left) > 0 {
				t.Errorf("alive after the reaping: %v", left)
			}
		})
	}
}
