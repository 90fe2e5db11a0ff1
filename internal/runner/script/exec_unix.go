//go:build unix

package script

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// session runs the external commands of one task's shell session.
type session struct {
	groups *groups
}

// middleware is the session's exec handler for interp.ExecHandlers. It never calls next: the
// interpreter's default handler would start commands in the server's process group and only
// signal the direct child on cancel.
func (s *session) middleware(interp.ExecHandlerFunc) interp.ExecHandlerFunc {
	return s.exec
}

// exec runs one external command in a process group of its own and waits for it. The
// interpreter calls it only for commands that are neither builtins nor functions.
func (s *session) exec(ctx context.Context, args []string) error {
	if err := ctx.Err(); err != nil {
		return err // fatal: the session is over, start nothing
	}
	hc := interp.HandlerCtx(ctx)
	path, err := interp.LookPathDir(hc.Dir, hc.Env, args[0])
	if err != nil {
		fmt.Fprintln(hc.Stderr, err)
		return interp.ExitStatus(127)
	}
	env := environ(hc.Env)
	stdout, err := processWriter(hc.Stdout)
	if err != nil {
		fmt.Fprintln(hc.Stderr, err)
		return interp.ExitStatus(126)
	}
	stderr, err := processWriter(hc.Stderr)
	if err != nil {
		fmt.Fprintln(hc.Stderr, err)
		return interp.ExitStatus(126)
	}
	newCmd := func() *exec.Cmd {
		// Not exec.CommandContext: cancellation signals the whole process group (see groups.stop),
		// not only this process, and waits for the group to be empty.
		return &exec.Cmd{
			Path:   path,
			Args:   args,
			Env:    env,
			Dir:    hc.Dir,
			Stdin:  hc.Stdin, // nil (/dev/null) unless the command reads from a pipe or redirect
			Stdout: stdout,
			Stderr: stderr,
		}
	}
	cmd := newCmd()
	err = s.groups.start(cmd)
	// A process forked concurrently may briefly hold a write descriptor of a file we just wrote
	// and now execute (ETXTBSY, go.dev/issue/22315); the window is short, so retry with backoff.
	for delay := time.Millisecond; errors.Is(err, syscall.ETXTBSY) && delay < 300*time.Millisecond; delay *= 2 {
		time.Sleep(delay)
		cmd = newCmd()
		err = s.groups.start(cmd)
	}
	switch {
	case errors.Is(err, errSessionEnded):
		return err
	case errors.Is(err, syscall.ENOEXEC):
		return s.runShellScript(ctx, hc, path, args, env)
	case err != nil:
		fmt.Fprintln(hc.Stderr, err)
		return interp.ExitStatus(126)
	}
	err = cmd.Wait()
	s.groups.release(cmd.Process.Pid)
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return interp.ExitStatus(128 + int(ws.Signal()))
		}
		return interp.ExitStatus(ee.ExitCode())
	}
	return err
}

// runShellScript runs an executable file that the kernel refused to execute (ENOEXEC: a script
// without a #! line) as a shell script in a new session, as shells do. Its commands run through
// the same process groups.
func (s *session) runShellScript(ctx context.Context, hc interp.HandlerContext, path string, args, env []string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(hc.Stderr, err)
		return interp.ExitStatus(126)
	}
	if line, _, _ := bytes.Cut(src, []byte("\n")); bytes.IndexByte(line, 0) >= 0 {
		fmt.Fprintf(hc.Stderr, "%s: cannot execute binary file\n", args[0])
		return interp.ExitStatus(126)
	}
	file, err := syntax.NewParser().Parse(bytes.NewReader(src), args[0])
	if err != nil {
		fmt.Fprintln(hc.Stderr, err)
		return interp.ExitStatus(2)
	}
	runner, err := interp.New(
		interp.Env(expand.ListEnviron(env...)),
		interp.Dir(hc.Dir),
		interp.StdIO(hc.Stdin, hc.Stdout, hc.Stderr),
		interp.ExecHandlers(s.middleware),
	)
	if err != nil {
		return err
	}
	runner.Params = args[1:]
	return runner.Run(ctx, file)
}

// environ returns the exported string variables of env as "KEY=VALUE" pairs: the task's
// environment with the session's exports applied. It is never nil, since a nil exec.Cmd.Env
// would mean the server's environment.
func environ(env expand.Environ) []string {
	// Each may yield a name more than once (an overlay over its parent); the last one wins, and
	// an unset or unexported last one removes it.
	index := make(map[string]int)
	pairs := make([]string, 0, 64)
	env.Each(func(name string, vr expand.Variable) bool {
		i, seen := index[name]
		if !vr.IsSet() || !vr.Exported || vr.Kind != expand.String {
			if seen {
				pairs[i] = ""
			}
			return true
		}
		kv := name + "=" + vr.Str
		if seen {
			pairs[i] = kv
		} else {
			index[name] = len(pairs)
			pairs = append(pairs, kv)
		}
		return true
	})
	kept := pairs[:0]
	for _, kv := range pairs {
		if kv != "" {
			kept = append(kept, kv)
		}
	}
	return kept
}
