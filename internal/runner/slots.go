package runner

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prunner-dev/prunner/internal/store"
)

// A runner with Config.MaxJobs runs at most that many jobs at once, over all pipelines. What
// it starts is bounded where it is decided, in the store: a claim asks for at most the room
// left (store.ClaimParams.Limit), and an admission on a full node stores the job queued
// (store.AdmitParams.NoStart), for a later claim here or on a node of the cluster with room
// (the store wakes the other nodes when it stores a queued job).
//
// Claims and admissions run concurrently, so the room is reserved before the store is asked
// (r.reserved) and given back once what it started is registered in r.running; counting both
// never lets the jobs exceed the limit. The end of a job claims nothing in its transaction
// (see claimParams): the runner then looks at every pipeline with waiting jobs (claimQueued),
// since the job that waits for the freed slot may be of any pipeline, and the pipelines take
// turns, beginning after the one whose job started last, so that a busy pipeline does not
// keep a node's slots from the others.

// takeSlotsLocked reserves room for up to want jobs (0: all the room left) and returns how much
// it reserved, which is the limit of a claim: 0 without a limit (MaxJobs 0, nothing reserved).
// ok is false when the node has no room. The caller holds r.mu.
func (r *Runner) takeSlotsLocked(want int) (n int, ok bool) {
	if r.cfg.MaxJobs <= 0 {
		return 0, true
	}
	free := r.cfg.MaxJobs - len(r.running) - r.reserved
	if free <= 0 {
		return 0, false
	}
	if want > 0 {
		free = min(free, want)
	}
	r.reserved += free
	return free, true
}

// admissionWait bounds how long an admission waits for the room that claims in flight hold
// (each gives it back once its transaction ends, normally within milliseconds).
const admissionWait = 5 * time.Second

// takeAdmissionSlot reserves room for the one job an admission may start (see takeSlotsLocked).
// A claim in flight holds all the room left while it looks for waiting jobs, and gives back
// what it did not use when it ends, within a transaction's time: when only such reservations
// fill the node, the admission waits for them (at most admissionWait), rather than leave a job
// waiting, or send it to another node, while this one has room.
func (r *Runner) takeAdmissionSlot(ctx context.Context) (int, bool) {
	deadline := time.NewTimer(admissionWait)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		n, ok := r.takeSlotsLocked(1)
		reservedOnly := !ok && len(r.running) < r.cfg.MaxJobs
		released := r.released
		r.mu.Unlock()
		if ok || !reservedOnly {
			return n, ok
		}
		select {
		case <-released:
		case <-deadline.C:
			return 0, false
		case <-ctx.Done():
			return 0, false
		}
	}
}

// releaseSlots gives back a reservation of n once the jobs started with it are registered.
// When a claim found no room meanwhile (r.starved) and there is room now, the waiting jobs of
// every pipeline are looked at again: nothing else would, until a job ends.
func (r *Runner) releaseSlots(n int) {
	if n == 0 {
		return
	}
	r.mu.Lock()
	r.reserved -= n
	close(r.released)
	r.released = make(chan struct{})
	again := r.starved && !r.closing && r.cfg.MaxJobs-len(r.running)-r.reserved > 0
	if again {
		r.starved = false
	}
	r.mu.Unlock()
	if again {
		go r.claimQueued()
	}
}

// held follows the admission of a job that waits for room on this node (store.AdmitResult.Held):
// the room may have come back between the admission's look at it and the job's storing (a
// claim gave back a reservation it did not use), so the pipeline is claimed when there is room
// now, and a later return of room claims again (r.starved).
func (r *Runner) held(name string) {
	r.mu.Lock()
	r.starved = true
	room := r.cfg.MaxJobs-len(r.running)-r.reserved > 0
	r.mu.Unlock()
	if room {
		go r.claim(name)
	}
}

// claimQueued claims every loaded pipeline that has waiting jobs (a slot of the node freed up:
// the job that waits for it may be of any pipeline).
func (r *Runner) claimQueued() {
	ctx, cancel := context.WithTimeout(context.Background(), r.pollInterval())
	defer cancel()
	r.mu.Lock()
	r.starved = false
	r.mu.Unlock()
	names, err := r.st.QueuedPipelines(ctx)
	if err != nil {
		r.log.Error("look for waiting jobs", "error", err)
		return
	}
	r.mu.Lock()
	last := r.lastStarted
	r.mu.Unlock()
	for _, name := range inTurn(names, last) {
		if r.defs.Load().Get(name) != nil {
			r.claim(name)
		}
	}
}

// inTurn returns the sorted names rotated to begin after last: the pipelines whose turn it is
// come first.
func inTurn(names []string, last string) []string {
	i, _ := slices.BinarySearch(names, last)
	if i < len(names) && names[i] == last {
		i++
	}
	return append(slices.Clone(names[i:]), names[:i]...)
}

// noRoomReason says why a job that its pipeline would let start waits for room on a node: ""
// when some node has room (or there is no limit), so that it waits for nothing else.
func (r *Runner) noRoomReason(ctx context.Context) string {
	if cl := r.cluster(); cl != nil {
		nodes, err := cl.Nodes(ctx)
		if err != nil {
			return ""
		}
		return clusterFullReason(nodes)
	}
	running := r.Running()
	if r.cfg.MaxJobs > 0 && running >= r.cfg.MaxJobs {
		return fmt.Sprintf("this node runs its --max-jobs (%d/%d)", running, r.cfg.MaxJobs)
	}
	return ""
}

// clusterFullReason is noRoomReason for the nodes of a cluster: only when every alive node
// runs its --max-jobs does the job wait for room.
func clusterFullReason(nodes []store.Node) string {
	var full []string
	for _, n := range nodes {
		if n.State != store.NodeAlive {
			continue
		}
		if n.MaxJobs <= 0 || n.Running < n.MaxJobs {
			return ""
		}
		full = append(full, fmt.Sprintf("%s %d/%d", n.ID, n.Running, n.MaxJobs))
	}
	if len(full) == 0 {
		return ""
	}
	return "every node runs its --max-jobs (" + strings.Join(full, ", ") + ")"
}
