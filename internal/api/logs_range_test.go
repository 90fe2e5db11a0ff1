package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// fileRunner serves logs from real files (as the runner does: *os.File, which has ReadAt and
// Stat) instead of the fake's plain readers.
type fileRunner struct {
	*fakeRunner
	dir string
}

func (f *fileRunner) path(jobID, task string, stream pipeline.LogStream) string {
	return filepath.Join(f.dir, jobID+"-"+task+"."+string(stream))
}

func (f *fileRunner) write(t *testing.T, jobID, task string, stream pipeline.LogStream, content string) {
	t.Helper()
	if err := os.WriteFile(f.path(jobID, task, stream), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *fileRunner) OpenLog(ctx context.Context, jobID, task string, stream pipeline.LogStream) (io.ReadCloser, error) {
	if _, err := f.Job(ctx, jobID); err != nil {
		return nil, err
	}
	file, err := os.Open(f.path(jobID, task, stream))
	if errors.Is(err, fs.ErrNotExist) {
		// An empty file stands for a task without output.
		empty := filepath.Join(f.dir, "empty")
		if err := os.WriteFile(empty, nil, 0o644); err != nil {
			return nil, err
		}
		return os.Open(empty)
	}
	return file, err
}

func newFileTestEnv(t *testing.T) (*testEnv, *fileRunner) {
	t.Helper()
	e := newTestEnv(t)
	seed(e.runner)
	fr := &fileRunner{fakeRunner: e.runner, dir: t.TempDir()}
	e.app = New(Config{Secret: testSecret, Logger: discardLogger()}, fr)
	return e, fr
}

type logsAnswer struct {
	Stdout       string `json:"stdout"`
	Stderr       string `json:"stderr"`
	StdoutOffset *int64 `json:"stdoutOffset"`
	StderrOffset *int64 `json:"stderrOffset"`
}

func getLogs(t *testing.T, e *testEnv, query string) logsAnswer {
	t.Helper()
	resp, body := e.do(t, http.MethodGet, "/job/logs?"+query, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logs?%s: status %d, body %s", query, resp.StatusCode, body)
	}
	var a logsAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("logs?%s: %q: %v", query, body, err)
	}
	if a.StdoutOffset == nil || a.StderrOffset == nil {
		t.Fatalf("logs?%s: offsets missing in %s", query, body)
	}
	return a
}

func TestJobLogsOffsets(t *testing.T) {
	t.Parallel()
	const out, errOut = "line 1\nline 2\nline 3\n", "warn\n"
	run := func(t *testing.T, e *testEnv) {
		base := "id=" + jobRunningID + "&task=build"
		tests := []struct {
			query                string
			wantOut, wantErr     string
			wantOutOff, wantErrO int64
		}{
			{"", out, errOut, 21, 5},
			{"&stdoutOffset=0&stderrOffset=0", out, errOut, 21, 5},
			{"&stdoutOffset=7", "line 2\nline 3\n", errOut, 21, 5},
			{"&stderrOffset=5", out, "", 21, 5},
			{"&stdoutOffset=21&stderrOffset=2", "", "rn\n", 21, 5},
			// Beyond the end: nothing, and the end.
			{"&stdoutOffset=1000&stderrOffset=99999999999", "", "", 21, 5},
		}
		for _, tt := range tests {
			a := getLogs(t, e, base+tt.query)
			if a.Stdout != tt.wantOut || a.Stderr != tt.wantErr || *a.StdoutOffset != tt.wantOutOff || *a.StderrOffset != tt.wantErrO {
				t.Errorf("%s: got %q %q %d %d, want %q %q %d %d", tt.query, a.Stdout, a.Stderr, *a.StdoutOffset, *a.StderrOffset,
					tt.wantOut, tt.wantErr, tt.wantOutOff, tt.wantErrO)
			}
		}
	}
	t.Run("files", func(t *testing.T) {
		t.Parallel()
		e, fr := newFileTestEnv(t)
		fr.write(t, jobRunningID, "build", pipeline.Stdout, out)
		fr.write(t, jobRunningID, "build", pipeline.Stderr, errOut)
		run(t, e)
	})
	t.Run("plain readers", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t)
		seed(e.runner)
		e.runner.setLog(jobRunningID, "build", pipeline.Stdout, func() io.Reader { return strings.NewReader(out) })
		e.runner.setLog(jobRunningID, "build", pipeline.Stderr, func() io.Reader { return strings.NewReader(errOut) })
		run(t, e)
	})
}

func TestJobLogsOffsetReadsOnlyNewBytes(t *testing.T) {
	t.Parallel()
	e, fr := newFileTestEnv(t)
	path := fr.path(jobRunningID, "build", pipeline.Stdout)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var all strings.Builder
	var got strings.Builder
	off := int64(0)
	for i := range 5 {
		chunk := "output " + strconv.Itoa(i) + " ü€\n"
		_, _ = f.WriteString(chunk)
		all.WriteString(chunk)
		a := getLogs(t, e, "id="+jobRunningID+"&task=build&stdoutOffset="+strconv.FormatInt(off, 10))
		if a.Stdout != chunk {
			t.Errorf("read %d: got %q, want only the new %q", i, a.Stdout, chunk)
		}
		got.WriteString(a.Stdout)
		off = *a.StdoutOffset
	}
	if got.String() != all.String() || off != int64(all.Len()) {
		t.Errorf("got %q up to %d, want %q up to %d", got.String(), off, all.String(), all.Len())
	}
}

func TestJobLogsOffsetHoldsBackSplitCharacter(t *testing.T) {
	t.Parallel()
	e, fr := newFileTestEnv(t)
	// The task has written the first byte of "ü" so far.
	fr.write(t, jobRunningID, "build", pipeline.Stdout, "abc\xc3")
	a := getLogs(t, e, "id="+jobRunningID+"&task=build&stdoutOffset=0")
	if a.Stdout != "abc" || *a.StdoutOffset != 3 {
		t.Errorf("with offsets: got %q up to %d, want %q up to 3", a.Stdout, *a.StdoutOffset, "abc")
	}
	fr.write(t, jobRunningID, "build", pipeline.Stdout, "abc\xc3\xbc!")
	a = getLogs(t, e, "id="+jobRunningID+"&task=build&stdoutOffset=3")
	if a.Stdout != "ü!" || *a.StdoutOffset != 6 {
		t.Errorf("next read: got %q up to %d, want %q up to 6", a.Stdout, *a.StdoutOffset, "ü!")
	}
	// Without offsets the answer is as it always was: the whole log as encoding/json has it.
	fr.write(t, jobRunningID, "build", pipeline.Stdout, "abc\xc3")
	a = getLogs(t, e, "id="+jobRunningID+"&task=build")
	if a.Stdout != "abc\ufffd" || *a.StdoutOffset != 4 {
		t.Errorf("without offsets: got %q up to %d, want %q up to 4", a.Stdout, *a.StdoutOffset, "abc\ufffd")
	}
}

func TestIncompleteUTF8Tail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int
	}{
		{"", 0}, {"abc", 0}, {"ü", 0}, {"a\xc3", 1}, {"a\xe2\x82", 2}, {"a\xf0\x9f\x8e", 3},
		{"a\xf0\x9f", 2}, {"🎉", 0}, {"a\x80", 0}, {"a\xff", 0}, {"\x80\x80\x80", 0}, {"a\xc3\xbc", 0},
	}
	for _, tt := range tests {
		if got := incompleteUTF8Tail([]byte(tt.in)); got != tt.want {
			t.Errorf("incompleteUTF8Tail(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestJobLogsOffsetErrors(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	base := "/job/logs?id=" + jobRunningID + "&task=build"
	for _, q := range []string{"&stdoutOffset=-1", "&stdoutOffset=abc", "&stdoutOffset=1.5", "&stdoutOffset=99999999999999999999"} {
		resp, body := e.do(t, http.MethodGet, base+q, "")
		wantError(t, resp, body, http.StatusBadRequest, "Invalid stdoutOffset: must be a byte offset >= 0")
	}
	resp, body := e.do(t, http.MethodGet, base+"&stderrOffset=-5", "")
	wantError(t, resp, body, http.StatusBadRequest, "Invalid stderrOffset: must be a byte offset >= 0")
	if n := e.runner.opened.Load(); n != 0 {
		t.Errorf("%d logs opened for invalid requests", n)
	}
}

func TestJobLogRaw(t *testing.T) {
	t.Parallel()
	e, fr := newFileTestEnv(t)
	big := bigLog()
	fr.write(t, jobRunningID, "build", pipeline.Stdout, big)
	fr.write(t, jobRunningID, "build", pipeline.Stderr, "warn <b>\xff\n")
	base := "/job/logs/raw?id=" + jobRunningID + "&task=build"
	tests := []struct {
		query string
		want  string
	}{
		{"&stream=stdout", big},
		{"&stream=stdout&offset=0", big},
		{"&stream=stdout&offset=10", big[10:]},
		{"&stream=stdout&offset=" + strconv.Itoa(len(big)), ""},
		{"&stream=stdout&offset=" + strconv.Itoa(len(big)+100), ""},
		// Raw bytes, exactly: no escaping, no replacement of invalid UTF-8.
		{"&stream=stderr", "warn <b>\xff\n"},
	}
	for _, tt := range tests {
		resp, body := e.do(t, http.MethodGet, base+tt.query, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, body %.200s", tt.query, resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", tt.query, ct)
		}
		size := len(big)
		if strings.Contains(tt.query, "stderr") {
			size = len("warn <b>\xff\n")
		}
		if got := resp.Header.Get(HeaderLogSize); got != strconv.Itoa(size) {
			t.Errorf("%s: %s = %q, want %d", tt.query, HeaderLogSize, got, size)
		}
		if !bytes.Equal(body, []byte(tt.want)) {
			t.Errorf("%s: body of %d bytes differs from the %d wanted", tt.query, len(body), len(tt.want))
		}
	}
	resp, body := e.do(t, http.MethodHead, base+"&stream=stdout", "")
	if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get(HeaderLogSize) != strconv.Itoa(len(big)) {
		t.Errorf("HEAD: status %d, %d body bytes, %s %q", resp.StatusCode, len(body), HeaderLogSize, resp.Header.Get(HeaderLogSize))
	}
	// A task without output: empty, size 0.
	resp, body = e.do(t, http.MethodGet, "/job/logs/raw?id="+jobRunningID+"&task=test&stream=stdout", "")
	if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get(HeaderLogSize) != "0" {
		t.Errorf("no output: status %d, body %q, %s %q", resp.StatusCode, body, HeaderLogSize, resp.Header.Get(HeaderLogSize))
	}
}

func TestJobLogRawPlainReader(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	e.runner.setLog(jobRunningID, "build", pipeline.Stdout, func() io.Reader { return strings.NewReader("hello\nworld\n") })
	resp, body := e.do(t, http.MethodGet, "/job/logs/raw?id="+jobRunningID+"&task=build&stream=stdout&offset=6", "")
	if resp.StatusCode != http.StatusOK || string(body) != "world\n" {
		t.Errorf("status %d, body %q", resp.StatusCode, body)
	}
	if o, c := e.runner.opened.Load(), e.runner.closed.Load(); o != 1 || c != 1 {
		t.Errorf("opened %d, closed %d log readers, want 1 and 1", o, c)
	}
}

func TestJobLogRawErrors(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	base := "/job/logs/raw?id=" + jobRunningID + "&task=build"
	tests := []struct {
		target string
		status int
		msg    string
	}{
		{base, 400, "Invalid stream: must be stdout or stderr"},
		{base + "&stream=both", 400, "Invalid stream: must be stdout or stderr"},
		{base + "&stream=stdout&offset=-1", 400, "Invalid offset: must be a byte offset >= 0"},
		{base + "&stream=stdout&offset=x", 400, "Invalid offset: must be a byte offset >= 0"},
		{"/job/logs/raw?id=nope&task=build&stream=stdout", 400, "Invalid job id"},
		{"/job/logs/raw?id=" + jobRunningID + "&stream=stdout", 400, "Invalid task name"},
		{"/job/logs/raw?id=" + unknownJobID + "&task=build&stream=stdout", 404, "Job not found"},
		{"/job/logs/raw?id=" + jobRunningID + "&task=nope&stream=stdout", 404, "Task not found"},
	}
	for _, tt := range tests {
		resp, body := e.do(t, http.MethodGet, tt.target, "")
		wantError(t, resp, body, tt.status, tt.msg)
	}
	if n := e.runner.opened.Load(); n != 0 {
		t.Errorf("%d logs opened for invalid requests", n)
	}
}
