package runner

import (
	"github.com/prunner-dev/prunner/internal/pipeline"
)

// dag is the bookkeeping of one job's task graph: which tasks may start, which are running, which
// are decided. It knows nothing of processes, the store or the clock, so the run loop asks it what
// to do and its semantics are tested without running anything. It is not safe for concurrent use:
// the run loop alone owns it.
type dag struct {
	// order is the tasks' order in the job; ready tasks start in this order.
	order      []string
	status     map[string]pipeline.TaskStatus
	waitingOn  map[string]int
	dependents map[string][]string
	// continueAfterFailure is the pipeline's continue_running_tasks_after_failure: a failure
	// skips only the failed task's dependents instead of everything not started yet.
	continueAfterFailure bool
	running              int
}

// newDAG returns the graph of a job's tasks in their current state (normally all waiting).
func newDAG(tasks []pipeline.Task, continueAfterFailure bool) *dag {
	d := &dag{
		order:                make([]string, 0, len(tasks)),
		status:               make(map[string]pipeline.TaskStatus, len(tasks)),
		waitingOn:            make(map[string]int, len(tasks)),
		dependents:           make(map[string][]string),
		continueAfterFailure: continueAfterFailure,
	}
	for _, t := range tasks {
		d.order = append(d.order, t.Name)
		d.status[t.Name] = t.Status
		d.waitingOn[t.Name] = len(t.DependsOn)
		for _, dep := range t.DependsOn {
			d.dependents[dep] = append(d.dependents[dep], t.Name)
		}
		if t.Status == pipeline.TaskRunning {
			d.running++
		}
	}
	return d
}

// start returns the waiting tasks whose dependencies are all done, in job order, and counts them
// as running from now on: the caller must start each and report its end with finish.
func (d *dag) start() []string {
	var ready []string
	for _, name := range d.order {
		if d.status[name] == pipeline.TaskWaiting && d.waitingOn[name] == 0 {
			d.status[name] = pipeline.TaskRunning
			d.running++
			ready = append(ready, name)
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
	if d.status[name] == pipeline.TaskRunning {
		d.running--
	}
	d.status[name] = status
	switch status {
	case pipeline.TaskDone:
		for _, dep := range d.dependents[name] {
			d.waitingOn[dep]--
		}
	case pipeline.TaskError:
		if !d.continueAfterFailure {
			for _, n := range d.order {
				if d.status[n] == pipeline.TaskWaiting {
					d.status[n] = pipeline.TaskSkipped
					skipped = append(skipped, n)
				}
			}
			return skipped
		}
		skipped = d.skipDependents(name, skipped)
	}
	return skipped
}

// skipDependents marks every waiting task that (transitively) depends on name as skipped and
// appends it to skipped.
func (d *dag) skipDependents(name string, skipped []string) []string {
	for _, dep := range d.dependents[name] {
		if d.status[dep] == pipeline.TaskWaiting {
			d.status[dep] = pipeline.TaskSkipped
			skipped = append(skipped, dep)
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
	for _, st := range d.status {
		if st == pipeline.TaskWaiting {
			return true
		}
	}
	return false
}
