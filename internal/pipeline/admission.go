package pipeline

import (
	"fmt"
	"time"
)

// WaitingJob is what admission needs to know of a job on a pipeline's wait list.
type WaitingJob struct {
	ID         string
	Partition  string
	StartAfter time.Time
}

// AdmissionState is the state of one pipeline at the moment a schedule request is admitted. Store
// backends read it inside the admission transaction.
type AdmissionState struct {
	// Running is the number of running jobs of the pipeline.
	Running int
	// Waiting is the wait list in order (oldest first).
	Waiting []WaitingJob
}

// Admission is the decision for one schedule request.
type Admission struct {
	// Start is true when the job starts at once (it is stored as running); else it is queued.
	Start bool
	// Replace lists waiting jobs that the new job replaces (they end as replaced).
	Replace []string
}

// Admit decides what happens to a new job of pipeline d with the given queue partition, given the
// pipeline's current state. It returns ErrQueueFull or ErrNoQueue (wrapped) when the request must be
// rejected. Admit is pure: the store backends call it inside their admission transaction, so every
// backend applies the same rules.
func (d *Definition) Admit(state AdmissionState, partition string) (Admission, error) {
	return d.AdmitWith(state.Running, state, partition)
}

// WaitList is what admission reads of a pipeline's wait list. A store backend may answer from
// queries instead of loading the whole list (a long list would make every admission slow).
type WaitList interface {
	// Len is the number of waiting jobs; PartitionLen those of one partition.
	Len() int
	PartitionLen(partition string) int
	// Last returns the IDs of the last n waiting jobs in list order; LastInPartition those of
	// one partition.
	Last(n int) []string
	LastInPartition(partition string, n int) []string
}

// AdmitWith is Admit for a wait list given as a WaitList.
func (d *Definition) AdmitWith(running int, w WaitList, partition string) (Admission, error) {
	if d.StartDelay == 0 && running < d.Concurrency && w.Len() == 0 {
		return Admission{Start: true}, nil
	}
	if d.QueueLimit != nil && *d.QueueLimit == 0 && d.QueueStrategy != QueuePartitionedReplace {
		return Admission{}, fmt.Errorf("%w: pipeline %q has no wait list (queue_limit: 0) and all %d slots are busy", ErrNoQueue, d.Name, d.Concurrency)
	}
	switch d.QueueStrategy {
	case QueueReplace:
		if d.QueueLimit == nil {
			return Admission{}, nil
		}
		n := w.Len()
		if n < *d.QueueLimit {
			return Admission{}, nil
		}
		// Replace from the end until the new job fits within the limit.
		return Admission{Replace: w.Last(n - *d.QueueLimit + 1)}, nil
	case QueuePartitionedReplace:
		limit := d.QueuePartitionLimit
		if limit < 1 {
			limit = 1
		}
		n := w.PartitionLen(partition)
		if n < limit {
			return Admission{}, nil
		}
		return Admission{Replace: w.LastInPartition(partition, n-limit+1)}, nil
	default: // append
		if d.QueueLimit != nil && w.Len() >= *d.QueueLimit {
			return Admission{}, fmt.Errorf("%w: the wait list of pipeline %q is full (queue_limit: %d)", ErrQueueFull, d.Name, *d.QueueLimit)
		}
		return Admission{}, nil
	}
}

// Len implements WaitList.
func (s AdmissionState) Len() int { return len(s.Waiting) }

// PartitionLen implements WaitList.
func (s AdmissionState) PartitionLen(partition string) int {
	n := 0
	for _, w := range s.Waiting {
		if w.Partition == partition {
			n++
		}
	}
	return n
}

// Last implements WaitList.
func (s AdmissionState) Last(n int) []string { return lastIDs(s.Waiting, n) }

// LastInPartition implements WaitList.
func (s AdmissionState) LastInPartition(partition string, n int) []string {
	var in []WaitingJob
	for _, w := range s.Waiting {
		if w.Partition == partition {
			in = append(in, w)
		}
	}
	return lastIDs(in, n)
}

func lastIDs(jobs []WaitingJob, n int) []string {
	ids := make([]string, 0, n)
	for i := len(jobs) - n; i < len(jobs); i++ {
		ids = append(ids, jobs[i].ID)
	}
	return ids
}

// Claimable walks the wait list in order and returns the jobs that may start now: those whose start
// delay has elapsed, while fewer than concurrency jobs run. next is the earliest future StartAfter
// of a job that must still wait for its delay (zero when none), so the caller can set a timer.
func Claimable(running, concurrency int, waiting []WaitingJob, now time.Time) (start []string, next time.Time) {
	for _, w := range waiting {
		if !w.StartAfter.After(now) {
			if running < concurrency {
				start = append(start, w.ID)
				running++
			}
			continue
		}
		if next.IsZero() || w.StartAfter.Before(next) {
			next = w.StartAfter
		}
	}
	return start, next
}
