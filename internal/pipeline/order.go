package pipeline

import (
	"container/heap"
	"sort"
)

func sortStrings(s []string) { sort.Strings(s) }

// TaskOrder returns the names of the definition's tasks in topological order, always taking the
// lexicographically smallest ready task first (Kahn's algorithm with a min-heap). This is the order
// of a job's tasks in the API. Tasks that are part of a cycle are left out; Load refuses cycles, so
// for a loaded definition every task is returned.
func (d *Definition) TaskOrder() []string {
	indegree := make(map[string]int, len(d.Tasks))
	dependents := make(map[string][]string, len(d.Tasks))
	for name, t := range d.Tasks {
		if _, ok := indegree[name]; !ok {
			indegree[name] = 0
		}
		for _, dep := range t.DependsOn {
			if _, ok := d.Tasks[dep]; !ok {
				continue
			}
			indegree[name]++
			dependents[dep] = append(dependents[dep], name)
		}
	}
	ready := &stringHeap{}
	for name, n := range indegree {
		if n == 0 {
			heap.Push(ready, name)
		}
	}
	order := make([]string, 0, len(d.Tasks))
	for ready.Len() > 0 {
		name := heap.Pop(ready).(string)
		order = append(order, name)
		for _, dep := range dependents[name] {
			indegree[dep]--
			if indegree[dep] == 0 {
				heap.Push(ready, dep)
			}
		}
	}
	return order
}

type stringHeap []string

func (h stringHeap) Len() int           { return len(h) }
func (h stringHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h stringHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *stringHeap) Push(x any)        { *h = append(*h, x.(string)) }
func (h *stringHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
