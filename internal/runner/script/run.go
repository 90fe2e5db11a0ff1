package script

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// DefaultKillGrace is the time a canceled task's processes get after SIGINT before SIGTERM, and
// after SIGTERM before SIGKILL, when Task.KillGrace is not positive.
const DefaultKillGrace = 2 * time.Second

// drainTimeout bounds how long Run waits for the end of the task's output once every process of
// the task is gone. Only a process that left the task's process groups (setsid, a daemon) can hold
// the output open that long; it loses its output then.
const drainTimeout = time.Second

// Task is one task's script, ready to run.
type Task struct {
	// Lines are the rendered script lines. They run in order in one shell session, so cd, shell
	// variables and functions of one line are visible in the next.
	Lines []string
	// Env is the complete environment as "KEY=VALUE" pairs; nil is an empty environment.
	Env []string
	// Dir is the working directory; empty is the current directory of the server.
	Dir string
	// Stdout and Stderr receive the output as it is produced; nil discards it. Each writer is
	// called by one goroutine of Run at a time, so it needs no locking of its own. When both are
	// the same writer, stdout and stderr share one pipe and arrive in the order they were
	// written; otherwise the two writers are called concurrently. Run returns after the last
	// call. A write error does not stop the task: the rest of that stream is discarded.
	Stdout, Stderr io.Writer
	// AllowFailure makes a failing line not fail the task: the next line runs, and the task ends
	// ok (an `exit N` still ends the session).
	AllowFailure bool
	// KillGrace is the grace period on cancel: SIGINT, SIGTERM after KillGrace, SIGKILL after
	// another KillGrace. Not positive means DefaultKillGrace.
	KillGrace time.Duration
}

// ExitError is the error of a task whose shell session ended with a non-zero exit status. Its
// text is "exit status N", as the original prunner reported it.
type ExitError struct {
	Code int
}

func (e *ExitError) Error() string { return "exit status " + strconv.Itoa(e.Code) }

// Run runs the task's lines in one shell session (the pure-Go interpreter mvdan.cc/sh, with
// bash syntax) and returns the session's exit code and error:
//
//   - 0 and nil when every line succeeded.
//   - With AllowFailure, the exit code of the last failing line (0 if none failed) and nil.
//   - For the first failing line (exit status N, or `exit N`): N and an *ExitError. A command
//     that is not found fails with 127, one that cannot be started with 126, one killed by a
//     signal with 128+signal.
//   - For a line that does not parse: 2 and the parser's error, before any line runs.
//   - When ctx is canceled: -1 and an error wrapping context.Cause(ctx), after every process of
//     the task is gone.
//   - -1 and the error when the session cannot be set up (e.g. Dir does not exist).
//
// Every external command runs in a process group of its own, with stdin from /dev/null. On
// cancel the task's process groups (grandchildren included) get SIGINT, then SIGTERM and SIGKILL
// after KillGrace each, until they are empty. When the lines end, processes that are still
// running in the task's groups (background leftovers like `sleep 100 &`) are killed with SIGKILL.
func Run(ctx context.Context, t Task) (exitCode int, err error) {
	files, err := parseLines(t.Lines)
	if err != nil {
		return 2, err
	}
	grace := t.KillGrace
	if grace <= 0 {
		grace = DefaultKillGrace
	}
	out, err := newOutput(t.Stdout, t.Stderr)
	if err != nil {
		return -1, fmt.Errorf("script output: %w", err)
	}
	defer out.close()

	s := &session{groups: newGroups()}
	// The session's context ends when the lines end too, so that background statements of the
	// session stop at their next command instead of starting new processes.
	runCtx, stopSession := context.WithCancel(ctx)
	defer stopSession()
	runner, err := interp.New(
		interp.Env(expand.ListEnviron(t.Env...)),
		interp.Dir(t.Dir),
		interp.StdIO(nil, out.stdout, out.stderr),
		interp.ExecHandlers(s.middleware),
	)
	if err != nil {
		return -1, fmt.Errorf("script session: %w", err)
	}

	linesDone := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			s.groups.stop(grace)
		case <-linesDone:
		}
	}()

	exitCode, err = runLines(runCtx, runner, files, t.AllowFailure)
	canceled := ctx.Err() != nil
	close(linesDone)
	<-stopped
	stopSession()
	s.groups.kill()
	if canceled {
		return -1, fmt.Errorf("script canceled: %w", context.Cause(ctx))
	}
	return exitCode, err
}

// parseLines parses every line up front, so that a syntax error anywhere fails the task before
// any line has run.
func parseLines(lines []string) ([]*syntax.File, error) {
	parser := syntax.NewParser()
	files := make([]*syntax.File, len(lines))
	for i, line := range lines {
		f, err := parser.Parse(strings.NewReader(line), "")
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		files[i] = f
	}
	return files, nil
}

// runLines runs the statements of every line on the one runner. Statements are run one by one
// rather than as files, because running a whole file implies leaving the shell (the EXIT trap
// would fire after every line); the EXIT trap runs once at the end instead.
//
// With allowFailure, a failing line does not end the session, and the exit code returned (with a
// nil error) is the last failing line's: the task succeeds, but its record shows that something
// failed, as the original prunner reports it.
func runLines(ctx context.Context, runner *interp.Runner, files []*syntax.File, allowFailure bool) (int, error) {
	lastFailure := 0
	for _, f := range files {
		var lineErr error
		for _, st := range f.Stmts {
			lineErr = runner.Run(ctx, st)
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			if runner.Exited() {
				// `exit N`, errexit, or a fatal interpreter error: the session is over (and its
				// EXIT trap has run).
				if allowFailure {
					if code, _ := status(lineErr); code != 0 {
						lastFailure = code
					}
					return lastFailure, nil
				}
				return status(lineErr)
			}
		}
		if lineErr != nil {
			if !allowFailure {
				runExitTrap(ctx, runner)
				return status(lineErr)
			}
			if code, _ := status(lineErr); code != 0 {
				lastFailure = code
			}
		}
	}
	runExitTrap(ctx, runner)
	return lastFailure, nil
}

// runExitTrap runs the session's EXIT trap, if one was set: running an empty file leaves the
// shell. Its outcome does not change the task's, as in a shell.
func runExitTrap(ctx context.Context, runner *interp.Runner) {
	_ = runner.Run(ctx, &syntax.File{})
}

// status turns the error of a runner.Run into the task's exit code and error.
func status(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	if es, ok := errors.AsType[interp.ExitStatus](err); ok {
		return int(es), &ExitError{Code: int(es)}
	}
	// A fatal error of the interpreter or of our exec handler; the interpreter counts it as 1.
	return 1, err
}

// output carries the session's stdout and stderr to the task's writers. The shell's builtins
// write to them directly until the first process starts; from then on builtins and every
// process of the task write into the same pipe ends (so the order of lines and commands is kept,
// and a command's output never waits for the command's children to close it), and one goroutine
// per pipe copies to the task's writer. A task that runs only builtins (true, echo, test, …)
// never pays for pipes.
type output struct {
	mu      sync.Mutex
	dst     []io.Writer // the task's writers: stdout and, when it is another writer, stderr
	dead    []bool      // a direct write to dst[i] failed: later ones are dropped (as copyOutput does)
	ends    []*os.File  // the pipes' write ends, once a process needed them
	readers []*os.File
	done    chan struct{} // closed when every copier reached the end of its pipe

	stdout, stderr *outputWriter // what the shell writes to
}

// outputWriter is the writer of one stream of an output, given to the shell.
type outputWriter struct {
	o *output
	i int // index in o.dst
}

func newOutput(stdout, stderr io.Writer) (*output, error) {
	o := &output{dst: []io.Writer{stdout}}
	if !sameWriter(stdout, stderr) {
		o.dst = append(o.dst, stderr)
	}
	o.dead = make([]bool, len(o.dst))
	for i, w := range o.dst {
		o.dead[i] = w == nil // a stream nobody reads is discarded
	}
	o.stdout = &outputWriter{o: o, i: 0}
	o.stderr = &outputWriter{o: o, i: len(o.dst) - 1}
	return o, nil
}

func (w *outputWriter) Write(p []byte) (int, error) {
	o := w.o
	o.mu.Lock()
	if o.ends != nil {
		f := o.ends[w.i]
		o.mu.Unlock()
		return f.Write(p)
	}
	defer o.mu.Unlock()
	if !o.dead[w.i] {
		if _, err := o.dst[w.i].Write(p); err != nil {
			o.dead[w.i] = true
		}
	}
	return len(p), nil
}

// file returns the pipe write end of the stream of w for a process, creating the pipes and
// their copiers on first use.
func (w *outputWriter) file() (*os.File, error) {
	o := w.o
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ends == nil {
		if err := o.openPipes(); err != nil {
			return nil, err
		}
	}
	return o.ends[w.i], nil
}

// openPipes creates one pipe per writer and its copier; o.mu is held.
func (o *output) openPipes() error {
	ends := make([]*os.File, 0, len(o.dst))
	for range o.dst {
		r, w, err := os.Pipe()
		if err != nil {
			for _, f := range append(ends, o.readers...) {
				f.Close()
			}
			o.readers = nil
			return err
		}
		o.readers = append(o.readers, r)
		ends = append(ends, w)
	}
	o.ends = ends
	o.done = make(chan struct{})
	copied := make(chan struct{}, len(o.dst))
	for i, w := range o.dst {
		if o.dead[i] {
			w = nil
		}
		go func() {
			copyOutput(w, o.readers[i])
			copied <- struct{}{}
		}()
	}
	go func() {
		for range o.dst {
			<-copied
		}
		close(o.done)
	}()
	return nil
}

// processWriter returns what a process gets for a stream the shell hands it: the pipe end for
// one of ours, anything else (a redirect, a pipe between commands) as it is.
func processWriter(w io.Writer) (io.Writer, error) {
	if ow, ok := w.(*outputWriter); ok {
		return ow.file()
	}
	return w, nil
}

// close closes the write ends and waits until the copiers have passed on everything that was
// written, at most drainTimeout when something outside the task still holds a write end.
func (o *output) close() {
	o.mu.Lock()
	ends := o.ends
	// Writes that come later (none should) go nowhere.
	for i := range o.dead {
		o.dead[i] = true
	}
	o.mu.Unlock()
	if ends == nil {
		return
	}
	for _, f := range ends {
		f.Close()
	}
	timer := time.NewTimer(drainTimeout)
	select {
	case <-o.done:
	case <-timer.C:
		for _, r := range o.readers {
			_ = r.SetReadDeadline(time.Now())
		}
		<-o.done
	}
	timer.Stop()
	for _, r := range o.readers {
		r.Close()
	}
}

// copyBuffers recycles the copiers' buffers: tasks are short and many.
var copyBuffers = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

// copyOutput copies src to dst until src ends. After a write error it keeps reading and
// discards, so that a broken log never blocks the task's processes on a full pipe.
func copyOutput(dst io.Writer, src *os.File) {
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	buf := *bufp
	for {
		n, err := src.Read(buf)
		if n > 0 && dst != nil {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				dst = nil
			}
		}
		if err != nil {
			return
		}
	}
}

// sameWriter reports whether a and b are the same writer. Interface comparison panics for
// uncomparable dynamic types, which are then not the same.
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}
