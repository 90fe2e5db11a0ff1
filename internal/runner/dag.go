package runner

import (
	"github.com/prunner-dev/prunner/internal/pipeline"
)

// dag is the bookkeeping of one job's task graph: which tasks may start, which are running, which
// are decided. It knows nothing of processes, the store or the clock, so the run loop asks it what
// to do and its semantics are tested without running anything. It is not safe for concurrent use:
// the run loop alone owns it.
type dag struct {
	// nodes are the tasks in the job's order; ready tasks start in this order.
	nodes []dagNode
	index map[string]int
	// continueAfterFailure is the pipeline's continue_running_tasks_after_failure: a failure
	// skips only the failed task's dependents instead of everything not started yet.
	continueAfterFailure bool
	running              int
}

type dagNode struct {
	name   string
	status pipeline.TaskStatus
	// waitingOn counts the dependencies that are not done yet.
	waitingOn int
	// dependents are the indexes of the tasks that depend on this one.
	dependents []int
}

// newDAG returns the graph of a job's tasks in their current state (normally all waiting).
func newDAG(tasks []pipeline.Task, continueAfterFailure bool) *dag {
	d := &dag{
		nodes:                make([]dagNode, len(tasks)),
		index:                make(map[string]int, len(tasks)),
		continueAfterFailure: continueAfterFailure,
	}
	for i, t := range tasks {
		d.nodes[i] = dagNode{name: t.Name, status: t.Status, waitingOn: len(t.DependsOn)}
		d.index[t.Name] = i
		if t.Status == pipeline.TaskRunning {
			d.running++
		}
	}
	for i, t := range tasks {
		for _, dep := range t.DependsOn {
			if j, ok := d.index[dep]; ok {
				d.nodes[j].dependents = append(d.nodes[j].dependents, i)
			}
		}
	}
	return d
}

// start returns the waiting tasks whose dependencies are all done, in job order, and counts them
// as running from now on: the caller must start each and report its end with finish.
func (d *dag) start() []string {
	var ready []string
	for i := range d.nodes {
		if n := &d.nodes[i]; n.status == pipeline.TaskWaiting && n.waitingOn == 0 {
			n.status = pipeline.TaskRunning
			d.running++
			ready = append(ready, n.name)
		}
	}
	return ready
}

// finish records how a running task ended (done, error or canceled) and returns the waiting
// tasks that will never run because of it, now marked skipped. A done task (an allowed failure
// included) counts towards its dependents' start. A failed task skips its dependents, transitively;
// without continueAfterFailure (fail-fast) it skips every task that has not started. A canceled
// task skips nothing: it was stopped by a cancel request, the job's timeout or fail-fast, so
// nothing new starts anyway and its waiting dependents are left to the job's end.
func (d *dag) finish(name string, status pipeline.TaskStatus) (skipped []string) {
	i, ok := d.index[name]
	if !ok {
		return nil
	}
	n := &d.nodes[i]
	if n.status == pipeline.TaskRunning {
		d.running--
	}
	n.status = status
	switch status {
	case pipeline.TaskDone:
		for _, dep := range n.dependents {
			d.nodes[dep].waitingOn--
		}
	case pipeline.TaskError:
		if !d.continueAfterFailure {
			for j := range d.nodes {
				if d.nodes[j].status == pipeline.TaskWaiting {
					d.nodes[j].status = pipeline.TaskSkipped
					skipped = append(skipped, d.nodes[j].name)
				}
			}
			return skipped
		}
		skipped = d.skipDependents(i, skipped)
	}
	return skipped
}

// skipDependents marks every waiting task that (transitively) depends on node i as skipped and
// appends it to skipped.
func (d *dag) skipDependents(i int, skipped []string) []string {
	for _, dep := range d.nodes[i].dependents {
		if n := &d.nodes[dep]; n.status == pipeline.TaskWaiting {
			n.status = pipeline.TaskSkipped
			skipped = append(skipped, n.name)
			skipped = d.skipDependents(dep, skipped)
		}
	}
	return skipped
}

// busy reports whether a started task has not reported its end yet.
func (d *dag) busy() bool { return d.running > 0 }

// unfinished reports whether a task is still waiting: it neither ran nor was skipped. When
// nothing runs any more, such a task was held back by a cancel or the job's timeout.
func (d *dag) unfinished() bool {
	for _, n := range d.nodes {
		if n.status == pipeline.TaskWaiting {
			return true
		}
	}
	return false
}
