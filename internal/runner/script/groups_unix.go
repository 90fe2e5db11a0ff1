//go:build unix

package script

import (
	"errors"
	"maps"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"
)

// errSessionEnded stops a background statement of a session that has ended or is being
// canceled from starting another process.
var errSessionEnded = errors.New("shell session ended")

// groupPollInterval is how often a canceled task checks whether its process groups are empty.
// Grandchildren are not our children, so there is no event to wait for.
const groupPollInterval = 20 * time.Millisecond

// groups tracks the process groups of one task: every process the session starts leads a group
// of its own, whose ID is its PID. A group is forgotten once it is empty, so that a later process
// that happens to get the same ID is never signalled.
type groups struct {
	mu     sync.Mutex
	pgids  map[int]struct{}
	closed bool // no new process may start
}

func newGroups() *groups {
	return &groups{pgids: make(map[int]struct{})}
}

// start starts cmd as the leader of a new process group and tracks the group. Holding the lock
// while starting means that close, stop and kill never miss a process that is being started.
func (g *groups) start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errSessionEnded
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	g.signalLocked(0) // forgets groups that emptied since
	g.pgids[cmd.Process.Pid] = struct{}{}
	return nil
}

// release forgets the group of a process that has been waited for, unless other members of the
// group (its background children) still run.
func (g *groups) release(pgid int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		delete(g.pgids, pgid)
	}
}

// stop closes the groups and ends them: SIGINT, then SIGTERM after grace, then SIGKILL after
// another grace, each only while members remain. It returns when every group is empty, or grace
// after the SIGKILL (a member stuck in uninterruptible sleep, or a zombie nobody reaps).
func (g *groups) stop(grace time.Duration) {
	g.close()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
		if g.signal(sig) == 0 || g.waitEmpty(grace) {
			return
		}
	}
}

// kill closes the groups and sends SIGKILL to those that still have members.
func (g *groups) kill() {
	g.close()
	g.signal(syscall.SIGKILL)
}

func (g *groups) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// signal sends sig to every tracked group (0 only checks), forgets the empty ones, and returns
// how many groups remain.
func (g *groups) signal(sig syscall.Signal) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.signalLocked(sig)
}

func (g *groups) signalLocked(sig syscall.Signal) int {
	for pgid := range g.pgids {
		if errors.Is(syscall.Kill(-pgid, sig), syscall.ESRCH) {
			delete(g.pgids, pgid)
		}
	}
	return len(g.pgids)
}

// waitEmpty reports whether every group lost its live members within d. Zombies do not count:
// a killed grandchild stays a zombie until its new parent reaps it, and an init process that
// never reaps (common in containers) would otherwise make every cancel take all grace periods.
func (g *groups) waitEmpty(d time.Duration) bool {
	deadline := time.Now().Add(d)
	ticker := time.NewTicker(groupPollInterval)
	defer ticker.Stop()
	for range ticker.C {
		g.mu.Lock()
		g.signalLocked(0)
		pgids := slices.Collect(maps.Keys(g.pgids))
		g.mu.Unlock()
		if len(pgids) == 0 || liveGroups(pgids) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
	return false
}
