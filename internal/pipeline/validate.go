package pipeline

import (
	"sort"
	"strings"
)

// validate checks the rules that involve more than one value of a parsed pipeline: queue settings,
// and the task graph (missing dependencies, cycles). The messages inside quotes are the ones users
// of the original prunner know; they are kept verbatim after the "pipeline %q: " prefix.
func (p *fileParser) validate(pp *parsedPipeline) {
	d := pp.def
	errorf := func(key string, format string, args ...any) {
		line, ok := pp.keys[key]
		if !ok {
			line = pp.line
		}
		p.errorAt(line, "pipeline %q: "+format, append([]any{d.Name}, args...)...)
	}

	if !pp.invalid["concurrency"] && d.Concurrency <= 0 {
		errorf("concurrency", "concurrency must be greater than 0")
	}
	if !pp.invalid["queue_limit"] && d.QueueLimit != nil && *d.QueueLimit < 0 {
		errorf("queue_limit", "queue_limit must not be negative")
	}
	if !pp.invalid["start_delay"] && d.StartDelay < 0 {
		errorf("start_delay", "start_delay must not be negative")
	}
	if !pp.invalid["retention_period"] && d.RetentionPeriod < 0 {
		errorf("retention_period", "retention_period must not be negative")
	}
	if !pp.invalid["retention_count"] && d.RetentionCount < 0 {
		errorf("retention_count", "retention_count must not be negative")
	}
	if _, set := pp.keys["timeout"]; set && !pp.invalid["timeout"] && d.Timeout <= 0 {
		errorf("timeout", "timeout must be greater than 0")
	}

	_, hasQueueLimit := pp.keys["queue_limit"]
	_, hasPartitionLimit := pp.keys["queue_partition_limit"]
	switch d.QueueStrategy {
	case QueueAppend, QueueReplace:
		if _, set := pp.keys["replace_variables"]; set && d.QueueStrategy == QueueAppend {
			errorf("replace_variables", "replace_variables is only used if queue_strategy=replace|partitioned_replace: with append no job replaces another")
		}
		if d.InterruptRunning && d.QueueStrategy == QueueAppend {
			errorf("interrupt_running", "interrupt_running is only used if queue_strategy=replace|partitioned_replace: with append a new job waits its turn")
		}
		if hasPartitionLimit {
			errorf("queue_partition_limit", "queue_partition_limit is not allowed if queue_strategy=append|replace, use queue_limit instead")
		}
	case QueuePartitionedReplace:
		if hasQueueLimit {
			errorf("queue_limit", "queue_limit is not allowed if queue_strategy=partitioned_replace, use queue_partition_limit instead")
		}
		if !pp.invalid["queue_partition_limit"] && d.QueuePartitionLimit < 1 {
			key := "queue_partition_limit"
			if !hasPartitionLimit {
				key = "queue_strategy"
			}
			errorf(key, "queue_partition_limit must be defined and >=1 if queue_strategy=partitioned_replace")
		}
	default:
		errorf("queue_strategy", "unknown queue strategy: %q", string(d.QueueStrategy))
	}

	// A pipeline that can never accept a job is an error, not a warning: it would start and then
	// reject every schedule request. Of the queue options' combinations, one is dead: with a
	// start delay every job waits on the wait list, and queue_limit 0 (append or replace) leaves
	// none. (concurrency < 1 and partitioned_replace without a partition limit are refused above;
	// queue_limit 0 without a delay still starts a job whenever a slot is free.)
	if d.StartDelay > 0 && d.QueueLimit != nil && *d.QueueLimit == 0 && d.QueueStrategy != QueuePartitionedReplace {
		errorf("queue_limit", "start_delay with queue_limit: 0 can never accept a job: every delayed job waits on the wait list, and queue_limit: 0 allows none; raise queue_limit (or remove it for no limit), or remove start_delay")
	}

	for _, name := range pp.taskOrder {
		for _, dep := range d.Tasks[name].DependsOn {
			if _, ok := d.Tasks[dep]; !ok {
				line := pp.dependsOnLines[name]
				if line == 0 {
					line = pp.taskLines[name]
				}
				p.errorAt(line, "pipeline %q: missing task %q referenced in depends_on of task %q", d.Name, dep, name)
			}
		}
	}
	for _, cycle := range dependencyCycles(d.Tasks) {
		p.errorAt(pp.taskLines[cycle[0]], "pipeline %q: dependency cycle: %s", d.Name, strings.Join(cycle, " -> "))
	}
}

// dependencyCycles returns one cycle of every strongly connected part of the task graph that has
// one, each as a path "a, b, …, a" where every task depends on the next, starting at the smallest
// name of its part. A task that depends on itself is the cycle "a, a". Dependencies on missing
// tasks are ignored (they are reported on their own). The result is sorted.
func dependencyCycles(tasks map[string]TaskDefinition) [][]string {
	names := make([]string, 0, len(tasks))
	for name := range tasks {
		names = append(names, name)
	}
	sort.Strings(names)
	deps := make(map[string][]string, len(tasks))
	for _, name := range names {
		var ds []string
		for _, dep := range tasks[name].DependsOn {
			if _, ok := tasks[dep]; ok {
				ds = append(ds, dep)
			}
		}
		sort.Strings(ds)
		deps[name] = ds
	}

	var cycles [][]string
	for _, component := range stronglyConnected(names, deps) {
		start := component[0]
		selfLoop := false
		for _, dep := range deps[start] {
			selfLoop = selfLoop || dep == start
		}
		if len(component) == 1 && !selfLoop {
			continue
		}
		cycles = append(cycles, shortestCycle(start, component, deps))
	}
	sort.Slice(cycles, func(i, j int) bool { return cycles[i][0] < cycles[j][0] })
	return cycles
}

// stronglyConnected returns the strongly connected components of the graph (Tarjan's algorithm),
// each sorted by name. It recurses once per task; task graphs are small.
func stronglyConnected(names []string, deps map[string][]string) [][]string {
	index := make(map[string]int, len(names))
	low := make(map[string]int, len(names))
	onStack := make(map[string]bool, len(names))
	var stack []string
	var components [][]string
	next := 0
	var visit func(v string)
	visit = func(v string) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range deps[v] {
			if _, seen := index[w]; !seen {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] != index[v] {
			return
		}
		var component []string
		for {
			w := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[w] = false
			component = append(component, w)
			if w == v {
				break
			}
		}
		sort.Strings(component)
		components = append(components, component)
	}
	for _, v := range names {
		if _, seen := index[v]; !seen {
			visit(v)
		}
	}
	return components
}

// shortestCycle finds, by breadth-first search inside one strongly connected component, a
// shortest path of dependencies from start back to start.
func shortestCycle(start string, component []string, deps map[string][]string) []string {
	in := make(map[string]bool, len(component))
	for _, v := range component {
		in[v] = true
	}
	parent := map[string]string{}
	queue := []string{start}
	visited := map[string]bool{start: true}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range deps[v] {
			if w == start {
				path := []string{start}
				for u := v; u != start; u = parent[u] {
					path = append(path, u)
				}
				// path is start, v, parent(v), …: reverse all but the first, then close the cycle.
				for i, j := 1, len(path)-1; i < j; i, j = i+1, j-1 {
					path[i], path[j] = path[j], path[i]
				}
				return append(path, start)
			}
			if in[w] && !visited[w] {
				visited[w] = true
				parent[w] = v
				queue = append(queue, w)
			}
		}
	}
	return []string{start, start} // Not reached for a real cycle.
}
