package scheduler

import "container/heap"

// armedHeap orders the armed schedules by when they fire next (sched.at, the fire time plus its
// jitter), so that the scheduler waits for the earliest one only: thousands of schedules cost
// one timer, not a scan. Each schedule is in it at most once; sched.index is its position.
type armedHeap []*sched

func (h armedHeap) Len() int { return len(h) }

func (h armedHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].spec.ID() < h[j].spec.ID()
}

func (h armedHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *armedHeap) Push(x any) {
	sc := x.(*sched)
	sc.index = len(*h)
	*h = append(*h, sc)
}

func (h *armedHeap) Pop() any {
	old := *h
	n := len(old)
	sc := old[n-1]
	old[n-1] = nil
	sc.index = -1
	*h = old[:n-1]
	return sc
}

// put adds sc, or moves it to where its new time belongs when it is in the heap already.
func (h *armedHeap) put(sc *sched) {
	if sc.index >= 0 {
		heap.Fix(h, sc.index)
		return
	}
	heap.Push(h, sc)
}

// drop removes sc when it is in the heap.
func (h *armedHeap) drop(sc *sched) {
	if sc.index >= 0 {
		heap.Remove(h, sc.index)
	}
}
