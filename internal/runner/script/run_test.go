//go:build linux

package script

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// lockedBuffer is a bytes.Buffer that tests can read while Run writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// testEnv is a small environment for tasks: enough to find sh, sleep and friends.
func testEnv(extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH")}, extra...)
}

type runResult struct {
	code           int
	err            error
	stdout, stderr string
}

// runTask runs task with a deadline and separate output buffers (unless the task has writers).
func runTask(t *testing.T, task Task) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stdout, stderr lockedBuffer
	if task.Stdout == nil {
		task.Stdout = &stdout
	}
	if task.Stderr == nil {
		task.Stderr = &stderr
	}
	if task.Env == nil {
		task.Env = testEnv()
	}
	code, err := Run(ctx, task)
	if ctx.Err() != nil {
		t.Fatalf("Run did not return before the test deadline")
	}
	return runResult{code: code, err: err, stdout: stdout.String(), stderr: stderr.String()}
}

// waitUntil polls cond until it is true or the deadline passes.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readPID waits until file holds a PID and returns it.
func readPID(t *testing.T, file string) int {
	t.Helper()
	var pid int
	waitUntil(t, 10*time.Second, "a PID in "+file, func() bool {
		b, err := os.ReadFile(file)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	return pid
}

// processGone reports whether pid has exited. A zombie has exited; it only waits to be reaped,
// which an init process that does not reap never does.
func processGone(pid int) bool {
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	state, _, ok := parseStat(stat)
	return ok && state == 'Z'
}

// killAtCleanup makes sure that a process a failing test leaves behind does not outlive it.
func killAtCleanup(t *testing.T, pid int) {
	t.Cleanup(func() {
		if !processGone(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

func TestRunLinesShareOneSession(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	got := runTask(t, Task{
		Dir: dir,
		Lines: []string{
			"cd sub",
			"X=1; greet() { echo \"hello $1 $X\"; }",
			"greet bee",
			"pwd",
			"sh -c pwd",
			"echo \"last status $?\"",
		},
	})
	want := "hello bee 1\n" + dir + "/sub\n" + dir + "/sub\nlast status 0\n"
	if got.code != 0 || got.err != nil || got.stdout != want {
		t.Errorf("Run = %d, %v, stdout %q; want 0, nil, %q (stderr %q)", got.code, got.err, got.stdout, want, got.stderr)
	}
}

func TestRunFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		lines        []string
		allowFailure bool
		wantCode     int
		wantErr      string
		wantStdout   string
		wantStderr   string // substring
	}{
		{
			name:       "first failing line stops the task",
			lines:      []string{"echo one", "sh -c 'exit 3'", "echo three"},
			wantCode:   3,
			wantErr:    "exit status 3",
			wantStdout: "one\n",
		},
		{
			name:       "failing builtin",
			lines:      []string{"false", "echo never"},
			wantCode:   1,
			wantErr:    "exit status 1",
			wantStdout: "",
		},
		{
			name:       "a line's status is its last command's",
			lines:      []string{"false; echo still", "echo next"},
			wantStdout: "still\nnext\n",
		},
		{
			name:         "allow_failure goes on, ends ok, and reports the last failing line's code",
			lines:        []string{"sh -c 'exit 3'", "false", "echo after"},
			allowFailure: true,
			wantCode:     1,
			wantStdout:   "after\n",
		},
		{
			name:         "allow_failure with one failing line reports its code",
			lines:        []string{"echo a", "sh -c 'exit 3'", "echo b"},
			allowFailure: true,
			wantCode:     3,
			wantStdout:   "a\nb\n",
		},
		{
			name:         "allow_failure without a failure reports 0",
			lines:        []string{"true", "echo ok"},
			allowFailure: true,
			wantStdout:   "ok\n",
		},
		{
			name:       "command not found",
			lines:      []string{"no-such-command-prunner arg", "echo never"},
			wantCode:   127,
			wantErr:    "exit status 127",
			wantStderr: `"no-such-command-prunner": executable file not found in $PATH`,
		},
		{
			name:       "exit ends the task with its code",
			lines:      []string{"echo a", "exit 5", "echo b"},
			wantCode:   5,
			wantErr:    "exit status 5",
			wantStdout: "a\n",
		},
		{
			name:       "exit 0 ends the task ok",
			lines:      []string{"echo a", "exit 0", "echo b"},
			wantStdout: "a\n",
		},
		{
			name:         "exit ends the session even with allow_failure, and its code is reported",
			lines:        []string{"exit 4", "echo b"},
			allowFailure: true,
			wantCode:     4,
		},
		{
			name:         "exit 0 after a failure with allow_failure keeps the failure's code",
			lines:        []string{"sh -c 'exit 3'", "exit 0"},
			allowFailure: true,
			wantCode:     3,
		},
		{
			name:       "errexit",
			lines:      []string{"set -e", "false; echo never"},
			wantCode:   1,
			wantErr:    "exit status 1",
			wantStdout: "",
		},
		{
			name:     "killed by a signal",
			lines:    []string{"sh -c 'kill -TERM $$'"},
			wantCode: 128 + int(syscall.SIGTERM),
			wantErr:  "exit status 143",
		},
		{
			name:       "a line that does not parse fails before any line runs",
			lines:      []string{"echo ran", "echo 'unterminated"},
			wantCode:   2,
			wantErr:    "line 2: 1:6: reached EOF without closing quote `'`",
			wantStdout: "",
		},
		{
			name:         "parse errors fail even with allow_failure",
			lines:        []string{"if then"},
			allowFailure: true,
			wantCode:     2,
			wantErr:      "line 1: 1:1: `if` must be followed by a statement list",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := runTask(t, Task{Lines: tt.lines, AllowFailure: tt.allowFailure})
			if got.code != tt.wantCode {
				t.Errorf("exit code = %d, want %d", got.code, tt.wantCode)
			}
			if tt.wantErr == "" && got.err != nil {
				t.Errorf("err = %v, want nil", got.err)
			}
			if tt.wantErr != "" && (got.err == nil || got.err.Error() != tt.wantErr) {
				t.Errorf("err = %v, want %q", got.err, tt.wantErr)
			}
			if got.stdout != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", got.stdout, tt.wantStdout)
			}
			if !strings.Contains(got.stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", got.stderr, tt.wantStderr)
			}
		})
	}
}

func TestRunExitErrorCarriesTheCode(t *testing.T) {
	t.Parallel()
	got := runTask(t, Task{Lines: []string{"exit 7"}})
	ee, ok := errors.AsType[*ExitError](got.err)
	if !ok || ee.Code != 7 {
		t.Errorf("err = %#v, want *ExitError with Code 7", got.err)
	}
}

func TestRunEnvironment(t *testing.T) {
	t.Parallel()
	got := runTask(t, Task{
		Env: testEnv("FOO=bar", "TASK_NAME=build"),
		Lines: []string{
			`echo "builtin $FOO $TASK_NAME"`,
			`sh -c 'echo "process $FOO $TASK_NAME"'`,
			`export ADDED=yes; NOT_EXPORTED=no`,
			`sh -c 'echo "exported ${ADDED-} ${NOT_EXPORTED-unset}"'`,
			`unset FOO`,
			`sh -c 'echo "unset ${FOO-unset}"'`,
			`ONE_SHOT=once sh -c 'echo "prefix $ONE_SHOT"'`,
			`sh -c 'echo "after ${ONE_SHOT-unset}"'`,
		},
	})
	want := "builtin bar build\nprocess bar build\nexported yes unset\nunset unset\nprefix once\nafter unset\n"
	if got.err != nil || got.stdout != want {
		t.Errorf("Run = %v, stdout %q; want nil, %q (stderr %q)", got.err, got.stdout, want, got.stderr)
	}
}

func TestRunEnvironmentIsComplete(t *testing.T) {
	t.Parallel()
	// Only the task's environment reaches a process; env prints it whole.
	got := runTask(t, Task{Env: testEnv("ONLY=this"), Lines: []string{"env"}})
	lines := strings.Fields(got.stdout)
	for _, kv := range lines {
		if !strings.HasPrefix(kv, "PATH=") && kv != "ONLY=this" {
			t.Errorf("process environment has %q, want only PATH and ONLY (all: %q)", kv, lines)
		}
	}
	if !strings.Contains(got.stdout, "ONLY=this\n") {
		t.Errorf("stdout = %q, want ONLY=this", got.stdout)
	}
}

func TestRunDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	got := runTask(t, Task{Dir: dir, Lines: []string{"pwd", "sh -c pwd", "touch made-here"}})
	if want := dir + "\n" + dir + "\n"; got.err != nil || got.stdout != want {
		t.Errorf("Run = %v, stdout %q; want nil, %q", got.err, got.stdout, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "made-here")); err != nil {
		t.Errorf("file not created in Dir: %v", err)
	}
}

func TestRunDirMissing(t *testing.T) {
	t.Parallel()
	got := runTask(t, Task{Dir: filepath.Join(t.TempDir(), "missing"), Lines: []string{"true"}})
	if got.code != -1 || got.err == nil {
		t.Errorf("Run = %d, %v; want -1 and an error", got.code, got.err)
	}
}

func TestRunOutputOrder(t *testing.T) {
	t.Parallel()
	lines := []string{
		"echo 1; echo 2 >&2",
		"sh -c 'echo 3; echo 4 >&2; echo 5'",
		"echo 6 >&2",
		"printf '7\\n' | cat",
		"sh -c 'echo 8 >&2' 2>&1",
	}
	t.Run("one writer keeps the order", func(t *testing.T) {
		t.Parallel()
		var out lockedBuffer
		got := runTask(t, Task{Lines: lines, Stdout: &out, Stderr: &out})
		if want := "1\n2\n3\n4\n5\n6\n7\n8\n"; got.err != nil || out.String() != want {
			t.Errorf("Run = %v, output %q; want nil, %q", got.err, out.String(), want)
		}
	})
	t.Run("two writers", func(t *testing.T) {
		t.Parallel()
		got := runTask(t, Task{Lines: lines})
		if want := "1\n3\n5\n7\n8\n"; got.err != nil || got.stdout != want {
			t.Errorf("Run = %v, stdout %q; want nil, %q", got.err, got.stdout, want)
		}
		if want := "2\n4\n6\n"; got.stderr != want {
			t.Errorf("stderr %q, want %q", got.stderr, want)
		}
	})
}

func TestRunNilWriters(t *testing.T) {
	t.Parallel()
	code, err := Run(t.Context(), Task{Env: testEnv(), Lines: []string{"echo discarded", "sh -c 'echo discarded >&2'"}})
	if code != 0 || err != nil {
		t.Errorf("Run = %d, %v; want 0, nil", code, err)
	}
}

func TestRunStdinIsEmpty(t *testing.T) {
	t.Parallel()
	got := runTask(t, Task{Lines: []string{"cat", "read -r x || echo eof", "echo hi | tr a-z A-Z"}})
	if want := "eof\nHI\n"; got.err != nil || got.stdout != want {
		t.Errorf("Run = %v, stdout %q; want nil, %q", got.err, got.stdout, want)
	}
}

func TestRunExitTrapRunsOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"at the end", []string{"trap 'echo bye' EXIT", "echo one", "echo two"}, "one\ntwo\nbye\n"},
		{"after a failing line", []string{"trap 'echo bye' EXIT", "false", "echo never"}, "bye\n"},
		{"on exit", []string{"trap 'echo bye' EXIT", "exit 3", "echo never"}, "bye\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := runTask(t, Task{Lines: tt.lines})
			if got.stdout != tt.want {
				t.Errorf("stdout = %q, want %q", got.stdout, tt.want)
			}
		})
	}
}

func TestRunScriptWithoutShebang(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "noshebang"), []byte("echo \"script $1\"\nexit 4\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got := runTask(t, Task{Dir: dir, Lines: []string{"./noshebang x || echo \"status $?\""}})
	if want := "script x\nstatus 4\n"; got.err != nil || got.stdout != want {
		t.Errorf("Run = %v, stdout %q; want nil, %q (stderr %q)", got.err, got.stdout, want, got.stderr)
	}
}

func TestRunCancelKillsGrandchildren(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	cause := errors.New("job canceled by request")
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := Run(ctx, Task{
			Env:       testEnv(),
			Dir:       dir,
			KillGrace: 200 * time.Millisecond,
			// A non-interactive sh starts background jobs with SIGINT ignored, so the grandchild
			// only dies from the SIGTERM.
			Lines: []string{"sh -c 'sleep 300 & echo $! > pid; wait'", "touch never"},
		})
		done <- result{code, err}
	}()
	pid := readPID(t, pidFile)
	killAtCleanup(t, pid)
	cancel(cause)

	select {
	case res := <-done:
		if res.code != -1 || !errors.Is(res.err, cause) {
			t.Errorf("Run = %d, %v; want -1 and an error wrapping %v", res.code, res.err, cause)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if !processGone(pid) {
		t.Errorf("grandchild %d still runs after Run returned", pid)
	}
	if _, err := os.Stat(filepath.Join(dir, "never")); err == nil {
		t.Error("a line after the canceled one ran")
	}
}

func TestRunCancelEscalatesToSIGKILL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const grace = 300 * time.Millisecond
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Task{
			Env:       testEnv(),
			Dir:       dir,
			KillGrace: grace,
			// Ignored signals stay ignored across exec, so sleep ignores them too.
			Lines: []string{`sh -c "trap '' INT TERM; echo \$\$ > shpid; sleep 300 & echo \$! > pid; wait"`},
		})
		done <- err
	}()
	shPID := readPID(t, filepath.Join(dir, "shpid"))
	pid := readPID(t, filepath.Join(dir, "pid"))
	killAtCleanup(t, shPID)
	killAtCleanup(t, pid)

	canceled := time.Now()
	cancel(context.Canceled)
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run error = %v, want one wrapping context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	elapsed := time.Since(canceled)
	if elapsed < 2*grace {
		t.Errorf("Run returned %v after cancel, before SIGINT and SIGTERM had their grace periods (%v)", elapsed, 2*grace)
	}
	// Without the SIGKILL they would run for 300s; the slack is for loaded machines and -race.
	if elapsed > 2*grace+5*time.Second {
		t.Errorf("Run returned %v after cancel, want about %v", elapsed, 2*grace)
	}
	for _, p := range []int{shPID, pid} {
		if !processGone(p) {
			t.Errorf("process %d still runs after Run returned", p)
		}
	}
}

func TestRunCanceledBeforeStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithCancelCause(t.Context())
	cause := errors.New("server stopping")
	cancel(cause)
	code, err := Run(ctx, Task{Env: testEnv(), Dir: dir, Lines: []string{"touch ran"}})
	if code != -1 || !errors.Is(err, cause) {
		t.Errorf("Run = %d, %v; want -1 and an error wrapping %v", code, err, cause)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("a line ran after cancel")
	}
}

func TestRunKillsLeftoversAtTheEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	started := time.Now()
	got := runTask(t, Task{
		Dir: dir,
		Lines: []string{
			// A grandchild left in the group of a command that has exited...
			"sh -c 'sleep 300 & echo $! > pid1'",
			// ...and a background statement of the session itself.
			"sh -c 'echo $$ > pid2; exec sleep 301' &",
			"while [ ! -s pid2 ]; do sleep 0.01; done",
			"echo done",
		},
	})
	if got.err != nil || got.stdout != "done\n" {
		t.Fatalf("Run = %v, stdout %q; want nil, %q (stderr %q)", got.err, got.stdout, "done\n", got.stderr)
	}
	if elapsed := time.Since(started); elapsed > 10*time.Second {
		t.Errorf("Run took %v; it waited for the leftovers", elapsed)
	}
	for _, name := range []string{"pid1", "pid2"} {
		pid := readPID(t, filepath.Join(dir, name))
		killAtCleanup(t, pid)
		waitUntil(t, 5*time.Second, "leftover "+name+" to be killed", func() bool { return processGone(pid) })
	}
}

func TestRunDoesNotWaitForAnEscapedProcess(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid")
	}
	dir := t.TempDir()
	started := time.Now()
	// setsid leaves the task's process groups, so the task cannot kill it; it still holds the
	// task's stdout, and Run stops waiting for the output after drainTimeout.
	got := runTask(t, Task{Dir: dir, Lines: []string{
		`sh -c 'setsid sh -c "echo \$\$ > pid; exec sleep 30" &'`,
		"while [ ! -s pid ]; do sleep 0.01; done",
		"echo done",
	}})
	pid := readPID(t, filepath.Join(dir, "pid"))
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if got.err != nil || got.stdout != "done\n" {
		t.Errorf("Run = %v, stdout %q; want nil, %q (stderr %q)", got.err, got.stdout, "done\n", got.stderr)
	}
	if elapsed := time.Since(started); elapsed > drainTimeout+5*time.Second {
		t.Errorf("Run took %v, want about %v", elapsed, drainTimeout)
	}
}

func TestRunShellQuotedValuesStayText(t *testing.T) {
	t.Parallel()
	values := []string{
		`'; touch x; '`,
		`$(touch x)`,
		"`touch x`",
		"a\nb; touch x\n",
		`"; touch x; "`,
		`\'; touch x; \'`,
		`*`,
		`$HOME ${PATH} $1 !! ~`,
		``,
		`it's`,
	}
	for _, v := range values {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			line, err := Render("echo {{ shellquote .v }}", map[string]any{"v": v})
			if err != nil {
				t.Fatal(err)
			}
			got := runTask(t, Task{Dir: dir, Lines: []string{line}})
			if got.err != nil || got.stdout != v+"\n" {
				t.Errorf("line %q: Run = %v, stdout %q; want nil, %q (stderr %q)", line, got.err, got.stdout, v+"\n", got.stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
				t.Errorf("line %q created a file", line)
			}
		})
	}
}

func FuzzRender(f *testing.F) {
	seeds := []struct{ line, v string }{
		{"echo {{ .v }}", "plain"},
		{`{{ .v | default "x" }}`, ""},
		{`{{ default "x" .v }} {{ .__jobID }}`, "set"},
		{"{{ shellquote .v }}", `'; touch x; '`},
		{"{{ .v | shellquote }}", "$(touch x)"},
		{"{{ .missing }}", "`touch x`"},
		{"{{ .n }}", "a\nb\n"},
		{"{{ if .v }}{{ .v }}{{ else }}none{{ end }}", `'\''`},
		{"{{ range $i, $c := .v }}{{ $c }}{{ end }}", "ü ' \" \\ $ \t"},
		{"{{", "\x00"},
	}
	for _, s := range seeds {
		f.Add(s.line, s.v)
	}
	f.Fuzz(func(t *testing.T, line, v string) {
		data := PrepareData(map[string]any{"v": v, "n": "{{ .v }}"}, "job", nil)
		_, _ = Render(line, data) // must not panic

		quoted, err := Render("{{ shellquote .v }}", data)
		if err != nil {
			t.Fatalf("shellquote: %v", err)
		}
		if strings.ContainsRune(v, 0) || !utf8.ValidString(v) {
			// A NUL byte cannot be part of an argument, and the shell parser rejects invalid
			// UTF-8 (values from JSON are always valid UTF-8).
			return
		}
		var out bytes.Buffer
		// printf is a builtin of the interpreter: this starts no process.
		code, err := Run(t.Context(), Task{Lines: []string{"printf %s " + quoted}, Stdout: &out})
		if code != 0 || err != nil {
			t.Fatalf("printf %%s %s: Run = %d, %v", quoted, code, err)
		}
		if out.String() != v {
			t.Fatalf("printf %%s %s printed %q, want %q", quoted, out.String(), v)
		}
	})
}

func BenchmarkRunTrue(b *testing.B) {
	task := Task{Lines: []string{"true"}, Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
	for b.Loop() {
		if code, err := Run(b.Context(), task); code != 0 || err != nil {
			b.Fatalf("Run = %d, %v", code, err)
		}
	}
}
