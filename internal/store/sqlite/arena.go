package sqlite

import (
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// arena hands out the jobs and times of one read from blocks, instead of one allocation each:
// a list of thousands of jobs otherwise spends much of its time allocating and collecting
// them. Every value is distinct, so a caller may still modify any of them.
type arena struct {
	jobs    []pipeline.Job
	times   []time.Time
	jobRow  jobRow
	taskRow taskRow
}

// nextBlock returns the capacity of the next block: small for a single job, growing for lists.
func nextBlock(prev int) int {
	return min(max(2*prev, 4), 512)
}

func (a *arena) job() *pipeline.Job {
	if len(a.jobs) == cap(a.jobs) {
		a.jobs = make([]pipeline.Job, 0, nextBlock(cap(a.jobs)))
	}
	a.jobs = a.jobs[:len(a.jobs)+1]
	j := &a.jobs[len(a.jobs)-1]
	*j = pipeline.Job{} // a reused slot holds an earlier job
	return j
}

// reset lets the arena hand out the memory of its current blocks again: every value it handed
// out before must be dead.
func (a *arena) reset() {
	a.jobs = a.jobs[:0]
	a.times = a.times[:0]
}

// time returns the UTC time of a column value, nil for NULL.
func (a *arena) time(n intCol) *time.Time {
	if !n.Valid {
		return nil
	}
	if len(a.times) == cap(a.times) {
		a.times = make([]time.Time, 0, nextBlock(cap(a.times)))
	}
	a.times = append(a.times, time.Unix(0, n.V).UTC())
	return &a.times[len(a.times)-1]
}

// taskBlocks allocates the tasks of many jobs in blocks instead of one slice per job (tens of
// thousands of small allocations) or one growing slice (which copies megabytes as it grows).
// The tasks of one job are contiguous in a block; each job's slice is capped at its length, so
// an append by the caller reallocates instead of overwriting the next job's tasks.
type taskBlocks struct {
	block []pipeline.Task
	from  int // start of the current job's tasks in block
}

func (b *taskBlocks) add(t pipeline.Task) {
	if len(b.block) == cap(b.block) {
		// Move the current job's tasks to a new block, so they stay contiguous. Blocks start
		// small (one job) and grow up to a fixed size (lists).
		partial := b.block[b.from:]
		next := make([]pipeline.Task, 0, max(min(2*cap(b.block), 1024), 8, 2*len(partial)))
		b.block = append(next, partial...)
		b.from = 0
	}
	b.block = append(b.block, t)
}

// reset reuses the current block from its start: every task handed out must be dead.
func (b *taskBlocks) reset() {
	b.block = b.block[:0]
	b.from = 0
}

// take returns the current job's tasks and starts the next job's.
func (b *taskBlocks) take() []pipeline.Task {
	ts := b.block[b.from:len(b.block):len(b.block)]
	b.from = len(b.block)
	return ts
}
