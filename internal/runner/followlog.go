package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/tasklog"
)

// How soon a waiting follower looks at the task again without being woken. Starts and ends of
// a task's output wake it at once; these cover what sends no wake-up: a task that is running
// but has no output writers (rendering its script, or between the end of its output and its
// final record), a task skipped while its job goes on, and a job that waits to be claimed.
const (
	recheckRunning = 10 * time.Millisecond
	recheckWaiting = 500 * time.Millisecond
	recheckStore   = time.Second
)

// FollowLog streams a task's output: first what was written from the offsets in from on (a
// stream missing from from starts at 0), then new output as it is produced, straight from the
// task's writers (all through the task log store, see tasklog.Store.Follow). The channel is closed when the task has ended (its record is final) and
// everything was sent, when ctx ends, or when the reader fell too far behind: the task never
// waits for a reader; a dropped one resumes from the offsets it got. A task that has not started
// yet is waited for. A task whose record says it started while its job does not run in this
// process (the final record could not be written, so the job looks running) has no live output:
// its stored output is read to its end and the channel is closed, and the caller follows again later.
//
// A retried task's output is followed for the attempt that is current when FollowLog is called
// (the one OpenLog serves; every chunk says which, in Attempt); when a later attempt starts, the
// channel is closed once the followed attempt's output was sent (the task has not ended then:
// follow again for the new attempt, from offset 0). The attempt is taken from memory, which is a
// moment ahead of the stored record that Job returns: compare with the chunks' Attempt.
func (r *Runner) FollowLog(ctx context.Context, jobID, task string, from map[pipeline.LogStream]int64) (<-chan pipeline.LogChunk, error) {
	job, err := r.st.Job(ctx, jobID)
	if err != nil {
		return nil, err
	}
	onError := task == pipeline.OnErrorTaskName && job.Definition != nil && job.Definition.OnError != nil
	if job.Task(task) == nil && !onError {
		return nil, fmt.Errorf("job %s: task %q: %w", jobID, task, pipeline.ErrTaskNotFound)
	}
	if err := tasklog.CheckJobID(jobID); err != nil {
		return nil, err
	}
	f := &follower{r: r, jobID: jobID, task: task, attempt: attemptOf(jobID, task, r.lastAttempt(ctx, jobID, task)), out: make(chan pipeline.LogChunk)}
	for i, s := range tasklog.Streams {
		f.pos[i] = max(from[s], 0)
	}
	go f.run(ctx)
	return f.out, nil
}

// follower is one FollowLog call.
type follower struct {
	r     *Runner
	jobID string
	task  string
	// attempt is the attempt of the task whose output is followed.
	attempt tasklog.Attempt
	out     chan pipeline.LogChunk
	// pos is the offset up to which each stream was sent (index as in tasklog.Streams).
	pos [2]int64
}

func (f *follower) run(ctx context.Context) {
	defer close(f.out)
	for {
		wake, release := f.r.logs.Watch(f.jobID)
		over := f.step(ctx, wake)
		release()
		if over {
			return
		}
	}
}

// step sends what the task's output has now (following it live while it is written here), then
// does what the task's state calls for: it ends the follow, or waits for a change. It reports
// whether the follow is over.
func (f *follower) step(ctx context.Context, wake <-chan struct{}) bool {
	if !f.follow(ctx) {
		return true
	}
	status, attempt, here, idle := f.r.localTask(f.jobID, f.task)
	var recheck time.Duration
	switch {
	case here && attempt > f.attempt.Number:
		// Retried: the followed attempt's output is complete.
		return f.finish(ctx)
	case here && status == pipeline.TaskRunning:
		recheck = recheckRunning
	case here && !status.Final():
		recheck = recheckWaiting
	default:
		// The store has the last word: the record in memory is final a moment before it is.
		job, err := f.r.st.Job(ctx, f.jobID)
		if err != nil {
			if ctx.Err() == nil {
				f.r.log.Warn("follow log: read job", "job_id", f.jobID, "task", f.task, "error", err)
			}
			return true
		}
		t := job.Task(f.task)
		if job.Status.Final() || t != nil && t.Status.Final() {
			return f.finish(ctx)
		}
		// A job that another node of the cluster runs is followed through what the task log
		// store holds, read again at each recheck, until its record is final.
		elsewhere := job.Node != "" && job.Node != f.r.cfg.Node.ID
		if !here && !elsewhere && t != nil && t.Status != pipeline.TaskWaiting || t != nil && t.Attempt > f.attempt.Number {
			// Retried; or its record says it started but its job does not run here (nor on
			// another node), so no writer will ever be created for it (the job's final record
			// failed to be written): waiting would never end, so the follow ends with what the
			// store holds.
			return f.finish(ctx)
		}
		recheck = recheckStore
		if here {
			recheck = recheckRunning
		}
	}
	timer := time.NewTimer(recheck)
	defer timer.Stop()
	select {
	case <-wake:
	case <-idle:
	case <-timer.C:
	case <-ctx.Done():
		return true
	}
	return false
}

// follow sends the followed attempt's output from what was sent so far: live until its writers
// are closed when it is written here, else what is stored. It reports false when the follow
// cannot go on: ctx ended, the reader fell behind (it resumes from the offsets it got) or the
// output could not be read.
func (f *follower) follow(ctx context.Context) bool {
	pos, err := f.r.logs.Follow(ctx, f.attempt, f.pos, f.send(ctx))
	f.pos = pos
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, tasklog.ErrFellBehind) {
			f.r.log.Warn("follow log", "job_id", f.jobID, "task", f.task, "attempt", f.attempt.Number, "error", err)
		}
		return false
	}
	return true
}

// finish sends the rest of the output of an attempt that is not written any more; the follow is
// over (it returns true).
func (f *follower) finish(ctx context.Context) bool {
	f.follow(ctx)
	return true
}

// send returns the function that hands a chunk to the reader, or gives up when ctx ends.
func (f *follower) send(ctx context.Context) func(pipeline.LogChunk) error {
	return func(c pipeline.LogChunk) error {
		select {
		case f.out <- c:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// localTask returns the state and current attempt of a task of a job that runs here (here is
// false for a job that does not) and a channel that is closed when some job here ends.
func (r *Runner) localTask(jobID, task string) (status pipeline.TaskStatus, attempt int, here bool, idle <-chan struct{}) {
	r.mu.Lock()
	jr := r.running[jobID]
	idle = r.idle
	r.mu.Unlock()
	if jr == nil {
		return "", 0, false, idle
	}
	jr.mu.Lock()
	defer jr.mu.Unlock()
	if t := jr.job.Task(task); t != nil {
		return t.Status, t.Attempt, true, idle
	}
	// The on_error task appears in the job once it starts.
	return pipeline.TaskWaiting, 0, true, idle
}
