package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// followChunkSize bounds the pieces in which a follower reads a log from disk.
const followChunkSize = 32 << 10

// How soon a waiting follower looks at the task again without being woken. Starts and ends of
// a task's output wake it at once; these cover what sends no wake-up: a task that is running
// but has no output writers (rendering its script, or between the end of its output and its
// final record), a task skipped while its job goes on, and a job that waits to be claimed.
const (
	recheckRunning = 10 * time.Millisecond
	recheckWaiting = 500 * time.Millisecond
	recheckStore   = time.Second
)

// logStreams are the streams of a task, in the order of a follower's arrays.
var logStreams = [2]pipeline.LogStream{pipeline.Stdout, pipeline.Stderr}

// FollowLog streams a task's output: first what was written from the offsets in from on (a
// stream missing from from starts at 0), then new output as it is produced, straight from the
// task's writers. The channel is closed when the task has ended (its record is final) and
// everything was sent, when ctx ends, or when the reader fell too far behind: the task never
// waits for a reader; a dropped one resumes from the offsets it got. A task that has not started
// yet is waited for. A task whose record says it started while its job does not run in this
// process (the final record could not be written, so the job looks running) has no live output:
// its files are read to their end and the channel is closed, and the caller follows again later.
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
	f := &follower{r: r, jobID: jobID, task: task, attempt: r.lastAttempt(ctx, jobID, task), out: make(chan pipeline.LogChunk)}
	for i, s := range logStreams {
		if f.paths[i], err = r.logPath(jobID, task, f.attempt, s); err != nil {
			return nil, err
		}
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
	attempt int
	paths   [2]string
	out     chan pipeline.LogChunk
	// pos is the offset up to which each stream was sent. While the streams are followed live,
	// each is owned by its stream's goroutine.
	pos [2]int64
	// followed is the live output followed last; it stays registered for a moment after its
	// end.
	followed *taskOutput
}

func (f *follower) run(ctx context.Context) {
	defer close(f.out)
	for {
		wake, release := f.r.outputs.watchJob(f.paths[0])
		over := f.step(ctx, wake)
		release()
		if over {
			return
		}
	}
}

// step does what the task's state calls for: it follows the task's live output, reads its files
// to their end, or waits for a change. It reports whether the follow is over.
func (f *follower) step(ctx context.Context, wake <-chan struct{}) bool {
	if o := f.r.outputs.lookup(f.paths[0]); o != nil && o != f.followed {
		f.followed = o
		// After the live output ended, the next step waits for the task's final record and
		// reads what may have been written after the subscription ended (nothing, normally).
		return !f.followLive(ctx, o)
	}
	status, attempt, here, idle := f.r.localTask(f.jobID, f.task)
	var recheck time.Duration
	switch {
	case here && attempt > f.attempt:
		// Retried: the followed attempt's output is complete.
		return f.readToEnd(ctx)
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
			return f.readToEnd(ctx)
		}
		if !here && t != nil && t.Status != pipeline.TaskWaiting || t != nil && t.Attempt > f.attempt {
			// Retried; or its record says it started but its job does not run here, so no
			// writer will ever register (the job's final record failed to be written): waiting
			// would never end, so the follow ends with what the files hold.
			return f.readToEnd(ctx)
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

// followLive sends both streams of a running task: each from its file up to the size at the
// moment of subscribing, then the live writes. It reports true when both writers ended and
// everything was sent, false when the reader was dropped or ctx ended.
func (f *follower) followLive(ctx context.Context, o *taskOutput) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var ok [2]bool
	for i, w := range [2]*logWriter{o.stdout, o.stderr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok[i] = f.followWriter(ctx, i, w)
			if !ok[i] {
				cancel()
			}
		}()
	}
	wg.Wait()
	return ok[0] && ok[1]
}

// followWriter sends stream i of a running task until its writer is closed.
func (f *follower) followWriter(ctx context.Context, i int, w *logWriter) bool {
	sub, size := w.subscribe()
	if sub == nil {
		// The writer is closed: its file is complete.
		return f.readFile(ctx, i, -1) == nil
	}
	defer w.unsubscribe(sub)
	// The writes up to size are on disk; every later one comes through sub.
	if f.readFile(ctx, i, size) != nil {
		return false
	}
	for {
		select {
		case c, open := <-sub.ch:
			if !open {
				return !sub.dropped.Load()
			}
			sub.taken(c)
			if c.Offset > f.pos[i] && f.readFile(ctx, i, c.Offset) != nil {
				return false
			}
			if !f.send(ctx, i, c) {
				return false
			}
		case <-ctx.Done():
			return false
		}
	}
}

// send sends the part of c after what stream i sent so far, marked with the followed attempt.
func (f *follower) send(ctx context.Context, i int, c pipeline.LogChunk) bool {
	c.Attempt = f.attempt
	end := c.Offset + int64(len(c.Data))
	if end <= f.pos[i] {
		return true
	}
	if c.Offset < f.pos[i] {
		c.Data = c.Data[f.pos[i]-c.Offset:]
		c.Offset = f.pos[i]
	}
	select {
	case f.out <- c:
		f.pos[i] = end
		return true
	case <-ctx.Done():
		return false
	}
}

// readFile sends stream i from the file, from what was sent so far up to limit (to the end of
// the file when limit < 0), in bounded pieces. A file that does not exist is empty. It returns
// an error when the file cannot be read or ctx ended.
func (f *follower) readFile(ctx context.Context, i int, limit int64) error {
	if limit >= 0 && f.pos[i] >= limit {
		return nil
	}
	fh, err := os.Open(f.paths[i])
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		f.r.log.Warn("follow log: open", "job_id", f.jobID, "task", f.task, "stream", logStreams[i], "error", err)
		return err
	}
	defer fh.Close()
	for limit < 0 || f.pos[i] < limit {
		n := int64(followChunkSize)
		if limit >= 0 {
			n = min(n, limit-f.pos[i])
		}
		// A fresh buffer per piece: the receiver keeps it.
		buf := make([]byte, n)
		m, err := fh.ReadAt(buf, f.pos[i])
		if m > 0 && !f.send(ctx, i, pipeline.LogChunk{Stream: logStreams[i], Offset: f.pos[i], Data: buf[:m]}) {
			return ctx.Err()
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			f.r.log.Warn("follow log: read", "job_id", f.jobID, "task", f.task, "stream", logStreams[i], "error", err)
			return err
		}
	}
	return nil
}

// readToEnd sends the rest of both files of a task that does not write any more. It returns
// true: the follow is over.
func (f *follower) readToEnd(ctx context.Context) bool {
	for i := range logStreams {
		if f.readFile(ctx, i, -1) != nil {
			break
		}
	}
	return true
}
