// Package logfollow follows a task's output for a live view. The runner's FollowLog delivers the
// output of one attempt of a task and ends when the task ends, when a later attempt starts or when
// the reader fell behind; Follow strings such follows together into one sequence of events that
// a live view (the API's event stream, the dashboard's log pane) only has to format: output in
// whole UTF-8 characters with the offsets to resume from, the switch to a retried task's next
// attempt, heartbeats while nothing happens, and the end with the task's final state.
package logfollow

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Default timing of a follow.
const (
	// DefaultHeartbeat is how long a follow stays silent before it sends a Heartbeat.
	DefaultHeartbeat = 15 * time.Second
	// DefaultRefollow is how long a follow waits before it follows again after a follow ended
	// without output while the task goes on.
	DefaultRefollow = time.Second
)

// Source is what a follow needs of the runner.
type Source interface {
	// Job returns one job, or pipeline.ErrJobNotFound.
	Job(ctx context.Context, jobID string) (*pipeline.Job, error)
	// FollowLog streams the output of the task's current attempt from the offsets in from on,
	// then new output as it is produced. The channel is closed when the task has ended and
	// everything was sent, when a later attempt started and this one's output was sent, when
	// ctx ends, or when the reader fell behind. The chunks' Attempt tells which attempt is
	// followed (0: not told); it may be a later one than the record Job returned just before.
	FollowLog(ctx context.Context, jobID, task string, from map[pipeline.LogStream]int64) (<-chan pipeline.LogChunk, error)
}

// Kind is what an Event tells.
type Kind int

// The kinds of events.
const (
	// Output is a piece of one stream (Stream, Data) that ends on a whole UTF-8 character; Pos
	// holds both streams' offsets after it.
	Output Kind = iota + 1
	// Attempt tells that the output of attempt Attempt of a retried task follows. With Restart,
	// that attempt started after the output of the one before was delivered, and its offsets
	// start again at 0 (Pos is 0,0). Without, the follow found the task retried already when it
	// started: the start offsets are taken as offsets of this attempt.
	Attempt
	// Flush asks a consumer that gathers output to send it now: Options.Batch has passed since
	// the first Output after the last Flush. It comes only with a Batch; a consumer sends what
	// it gathered before an Attempt, End or Error as well.
	Flush
	// Heartbeat comes when nothing was delivered for Options.Heartbeat, so that a stream can
	// keep its connection open and notice a client that went away.
	Heartbeat
	// End is the last event when the task ended and its output was delivered. Task is its final
	// record; nil for an on_error handler that never ran. What was left of a character cut at the
	// very end of the output came before it, as an Output that is not valid UTF-8.
	End
	// Error is the last event when the job or the output could not be read (Err).
	Error
)

// Event is one thing a follow delivers. Data is shared with the runner's other readers: it must
// not be modified, and it is valid only until emit returns unless copied.
type Event struct {
	Kind    Kind
	Stream  pipeline.LogStream
	Data    []byte
	Pos     [2]int64
	Attempt int
	Restart bool
	Task    *pipeline.Task
	Err     error
}

// Options configure a follow.
type Options struct {
	// From is where the output starts: the offsets of stdout and stderr (see Index).
	From [2]int64
	// Attempt is the attempt that From belongs to; 0 takes From as offsets of the attempt that
	// is current when the follow starts. When the task is at another attempt, its output is
	// delivered from 0 after an Attempt with Restart.
	Attempt int
	// Heartbeat is how long the follow may stay silent (default DefaultHeartbeat).
	Heartbeat time.Duration
	// Refollow is the wait before following again after a follow ended without output while
	// the task goes on (default DefaultRefollow).
	Refollow time.Duration
	// Batch, when set, sends a Flush this long after the first Output after the last Flush.
	Batch time.Duration
	// Logger reports what the runner did wrong (default slog.Default()).
	Logger *slog.Logger
}

// Index is the place of a stream in an Event's and an Options' offsets: 0 for stdout, 1 for
// stderr.
func Index(stream pipeline.LogStream) int {
	if stream == pipeline.Stderr {
		return 1
	}
	return 0
}

// streams are the streams in the order of the offsets.
var streams = [2]pipeline.LogStream{pipeline.Stdout, pipeline.Stderr}

// Follow follows the output of a task of a job and hands each event to emit, in the caller's
// goroutine, until an End or an Error was delivered, ctx ends (then nothing more is delivered),
// or emit fails (a client that went away). It returns emit's error or nil.
//
// The follow reads the task's state before each follow of its output. A task that had ended
// before a follow started has its output complete when that follow closes, so End follows.
// Otherwise the follow closed because the task ended meanwhile, because a later attempt started,
// or because the runner dropped this reader for falling behind; the next round tells which, and
// a dropped reader resumes from its offsets. A follow that closed without output while the task
// goes on (a task that has not started yet, or whose retried attempt has not begun writing) is
// followed again after Options.Refollow rather than at once, so that such a task is not
// followed in a tight loop.
func Follow(ctx context.Context, src Source, jobID, task string, opts Options, emit func(Event) error) error {
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.Refollow <= 0 {
		opts.Refollow = DefaultRefollow
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	f := &follower{
		src:     src,
		jobID:   jobID,
		task:    task,
		opts:    opts,
		emit:    emit,
		pos:     [2]int64{max(opts.From[0], 0), max(opts.From[1], 0)},
		attempt: max(opts.Attempt, 0),
	}
	return f.run(ctx)
}

// follower is one Follow call.
type follower struct {
	src         Source
	jobID, task string
	opts        Options
	emit        func(Event) error

	// pos is what was delivered of each stream: the offsets of the events.
	pos [2]int64
	// attempt is the attempt whose output is delivered (0 before the first look), confirmed
	// whether a record or the output said so (rather than only Options.Attempt).
	attempt   int
	confirmed bool
	// carry holds the start of a character that a piece of output ended in the middle of; it
	// goes out with the next piece. The runner's follow continues after it (pos + len(carry)).
	carry [2][]byte
	// active tells whether anything was delivered since the last heartbeat tick.
	active    bool
	heartbeat *time.Ticker
	// batch is armed (batchC set) from the first Output after a Flush until the next Flush.
	batch  *time.Timer
	batchC <-chan time.Time
}

func (f *follower) run(ctx context.Context) error {
	f.heartbeat = time.NewTicker(f.opts.Heartbeat)
	defer f.heartbeat.Stop()
	if f.opts.Batch > 0 {
		f.batch = time.NewTimer(f.opts.Batch)
		f.batch.Stop()
		defer f.batch.Stop()
	}
	for {
		job, err := f.src.Job(ctx, f.jobID)
		if err != nil {
			return f.fail(ctx, err)
		}
		t := job.Task(f.task)
		ended := job.Status.Final() || t != nil && t.Status.Final()
		if t != nil {
			if err := f.switchAttempt(max(t.Attempt, 1)); err != nil {
				return err
			}
		}
		// A new follow starts where the delivered output ends: a carried piece of a character
		// comes again, whole with the rest of it.
		f.carry = [2][]byte{}
		followCtx, stop := context.WithCancel(ctx)
		chunks, err := f.src.FollowLog(followCtx, f.jobID, f.task, map[pipeline.LogStream]int64{pipeline.Stdout: f.pos[0], pipeline.Stderr: f.pos[1]})
		if err != nil {
			stop()
			return f.fail(ctx, err)
		}
		sent, later, err := f.forward(ctx, chunks)
		stop()
		if err != nil || ctx.Err() != nil {
			return err
		}
		if later > 0 {
			// The runner followed a later attempt than the record read before said (the runner
			// knows of a new attempt a moment before its record is stored), from offsets of the
			// earlier one: follow it again from its start.
			if err := f.restart(later); err != nil {
				return err
			}
			continue
		}
		if ended {
			return f.end(t)
		}
		if !sent {
			if err := f.wait(ctx, f.opts.Refollow); err != nil || ctx.Err() != nil {
				return err
			}
		}
	}
}

// switchAttempt makes current the attempt whose output is delivered.
func (f *follower) switchAttempt(current int) error {
	confirmed := f.confirmed
	f.confirmed = true
	switch {
	case current == f.attempt:
		return nil
	case f.attempt == 0:
		// The first look: the start offsets are this attempt's. Only a retried task says so.
		f.attempt = current
		if current == 1 {
			return nil
		}
		return f.send(Event{Kind: Attempt, Attempt: current, Pos: f.pos})
	case current < f.attempt && confirmed:
		// The record is behind what the runner's output showed already.
		return nil
	}
	return f.restart(current)
}

// restart delivers the output of attempt current from its start. The attempt delivered so far
// is complete: a character cut at its very end goes out as it is before the next attempt's
// output, which has offsets of its own.
func (f *follower) restart(current int) error {
	if err := f.flushCarry(); err != nil {
		return err
	}
	f.attempt = current
	f.pos = [2]int64{}
	return f.send(Event{Kind: Attempt, Attempt: current, Restart: true, Pos: f.pos})
}

// forward delivers the chunks of one follow until its channel closes or ctx ends. It reports
// whether it delivered any output, and the attempt of the follow when that is a later one than
// the attempt delivered (the follow's chunks do not fit the offsets; it must be left).
func (f *follower) forward(ctx context.Context, chunks <-chan pipeline.LogChunk) (sent bool, later int, err error) {
	for {
		select {
		case c, open := <-chunks:
			if !open {
				return sent, 0, nil
			}
			if c.Attempt != 0 && c.Attempt != f.attempt {
				if f.attempt == 0 {
					// An on_error handler that started after the first look.
					if err := f.switchAttempt(c.Attempt); err != nil {
						return sent, 0, err
					}
				} else if c.Attempt > f.attempt {
					return sent, c.Attempt, nil
				} else {
					f.opts.Logger.Error("follow log: chunk of an earlier attempt", "job_id", f.jobID, "task", f.task, "attempt", c.Attempt, "want", f.attempt)
					continue
				}
			}
			wrote, err := f.chunk(c)
			if err != nil {
				return sent, 0, err
			}
			sent = sent || wrote
		case <-f.heartbeat.C:
			if err := f.tick(); err != nil {
				return sent, 0, err
			}
		case <-f.batchC:
			if err := f.send(Event{Kind: Flush, Pos: f.pos}); err != nil {
				return sent, 0, err
			}
		case <-ctx.Done():
			return sent, 0, nil
		}
	}
}

// wait waits d (heartbeats and flushes go on) or until ctx ends.
func (f *follower) wait(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return nil
		case <-f.heartbeat.C:
			if err := f.tick(); err != nil {
				return err
			}
		case <-f.batchC:
			if err := f.send(Event{Kind: Flush, Pos: f.pos}); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// tick sends a Heartbeat when nothing was delivered since the last tick.
func (f *follower) tick() error {
	if f.active {
		f.active = false
		return nil
	}
	return f.send(Event{Kind: Heartbeat, Pos: f.pos})
}

// chunk delivers one piece of output (the start of a character it ends in the middle of waits
// for the next piece). It reports whether it delivered an Output.
func (f *follower) chunk(c pipeline.LogChunk) (bool, error) {
	i := Index(c.Stream)
	next := f.pos[i] + int64(len(f.carry[i]))
	if c.Offset != next {
		// The runner sends each stream in order and without gaps from the offsets asked for;
		// anything else is a bug that must not corrupt the consumer's copy.
		if c.Offset > next || c.Offset+int64(len(c.Data)) <= next {
			f.opts.Logger.Error("follow log: chunk out of order", "job_id", f.jobID, "task", f.task, "stream", c.Stream, "offset", c.Offset, "want", next)
			return false, nil
		}
		c.Data = c.Data[next-c.Offset:]
	}
	// c.Data is shared with other readers: never modify it.
	data := c.Data
	if len(f.carry[i]) > 0 {
		data = append(f.carry[i], c.Data...)
	}
	keep := incompleteTail(data)
	f.carry[i] = bytes.Clone(data[len(data)-keep:])
	data = data[:len(data)-keep]
	if len(data) == 0 {
		return false, nil
	}
	return true, f.output(i, data)
}

// output delivers data as the next piece of stream i.
func (f *follower) output(i int, data []byte) error {
	f.pos[i] += int64(len(data))
	return f.send(Event{Kind: Output, Stream: streams[i], Data: data, Pos: f.pos})
}

// flushCarry delivers what is left of characters cut at the end of the output, as it is.
func (f *follower) flushCarry() error {
	for i := range streams {
		if rest := f.carry[i]; len(rest) > 0 {
			f.carry[i] = nil
			if err := f.output(i, rest); err != nil {
				return err
			}
		}
	}
	return nil
}

// end delivers the rest of a cut character and the End. t is nil for an on_error handler that
// never ran.
func (f *follower) end(t *pipeline.Task) error {
	if err := f.flushCarry(); err != nil {
		return err
	}
	return f.send(Event{Kind: End, Task: t, Pos: f.pos, Attempt: f.attempt})
}

// fail delivers an Error, unless the error comes from the follow ending (ctx).
func (f *follower) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return nil
	}
	return f.send(Event{Kind: Error, Err: err, Pos: f.pos})
}

// send hands ev to the consumer and keeps the heartbeat and the batch window in step.
func (f *follower) send(ev Event) error {
	switch ev.Kind {
	case Heartbeat:
	case Output:
		f.active = true
		if f.batch != nil && f.batchC == nil {
			f.batch.Reset(f.opts.Batch)
			f.batchC = f.batch.C
		}
	default:
		// A Flush, or an event before which the consumer sends what it gathered.
		f.active = true
		if f.batchC != nil {
			f.batch.Stop()
			f.batchC = nil
		}
	}
	if ev.Attempt == 0 {
		ev.Attempt = f.attempt
	}
	return f.emit(ev)
}

// incompleteTail returns the length of an incomplete UTF-8 sequence at the end of b: the start
// of a character whose remaining bytes have not arrived yet (0 when b ends on a whole character
// or on bytes that are invalid anyway).
func incompleteTail(b []byte) int {
	for i := 1; i <= utf8.UTFMax-1 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < utf8.RuneSelf {
			return 0
		}
		if utf8.RuneStart(c) {
			if utf8.FullRune(b[len(b)-i:]) {
				return 0
			}
			return i
		}
	}
	return 0
}
