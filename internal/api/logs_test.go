package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// wantLogsBody is what encoding/json writes for the two logs (read whole: the offsets after them
// are their lengths), which the stream must match byte for byte.
func wantLogsBody(t *testing.T, stdout, stderr string) string {
	t.Helper()
	b, err := json.Marshal(struct {
		Stdout       string `json:"stdout"`
		Stderr       string `json:"stderr"`
		StdoutOffset int    `json:"stdoutOffset"`
		StderrOffset int    `json:"stderrOffset"`
	}{stdout, stderr, len(stdout), len(stderr)})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// chunkRecorder is a lazily generated log that records the largest read buffer it was given.
type chunkRecorder struct {
	r       io.Reader
	maxRead atomic.Int64
}

func (c *chunkRecorder) Read(p []byte) (int, error) {
	if int64(len(p)) > c.maxRead.Load() {
		c.maxRead.Store(int64(len(p)))
	}
	return c.r.Read(p)
}

func bigLog() string {
	var b strings.Builder
	for i := 0; b.Len() < 5<<20; i++ {
		fmt.Fprintf(&b, "line %d: \"quoted\" <b>&amp;</b> tab\t ümlaut € 🎉 \\ back\n", i)
	}
	return b.String()
}

func TestJobLogsStreamsLargeLog(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	big := bigLog()
	rec := &chunkRecorder{}
	e.runner.setLog(jobRunningID, "build", pipeline.Stdout, func() io.Reader {
		rec.r = strings.NewReader(big)
		return rec
	})
	e.runner.setLog(jobRunningID, "build", pipeline.Stderr, func() io.Reader { return strings.NewReader("warn\n") })

	resp, body := e.do(t, http.MethodGet, "/job/logs?id="+jobRunningID+"&task=build", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %.200s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	if want := wantLogsBody(t, big, "warn\n"); string(body) != want {
		t.Errorf("body differs from encoding/json's (len %d, want %d)", len(body), len(want))
	}
	if got := rec.maxRead.Load(); got > logChunkSize || got == 0 {
		t.Errorf("largest read = %d bytes, want chunks of at most %d", got, logChunkSize)
	}
	if o, c := e.runner.opened.Load(), e.runner.closed.Load(); o != 2 || c != 2 {
		t.Errorf("opened %d, closed %d log readers, want 2 and 2", o, c)
	}
}

func TestJobLogsContentIsExact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stdout string
		stderr string
	}{
		{name: "empty", stdout: "", stderr: ""},
		{name: "html", stdout: "<script>alert('x')</script> & </html>", stderr: "a > b"},
		{name: "nul and controls", stdout: "a\x00b\x01c\x1f\x7f\b\f\r\n\t", stderr: "\x00"},
		{name: "invalid utf-8", stdout: "ok \xff\xfe bad \xe2\x82 cut \xc3", stderr: "\x80"},
		{name: "separators", stdout: "a\u2028b\u2029c", stderr: "\"\\"},
		{name: "multibyte", stdout: "日本語 🎉 ü", stderr: "€"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			seed(e.runner)
			e.runner.setLog(jobFinishedID, "build", pipeline.Stdout, func() io.Reader { return strings.NewReader(tt.stdout) })
			e.runner.setLog(jobFinishedID, "build", pipeline.Stderr, func() io.Reader { return strings.NewReader(tt.stderr) })
			resp, body := e.do(t, http.MethodGet, "/job/logs?id="+jobFinishedID+"&task=build", "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, body %s", resp.StatusCode, body)
			}
			if !json.Valid(body) {
				t.Fatalf("body is not valid JSON: %q", body)
			}
			if want := wantLogsBody(t, tt.stdout, tt.stderr); string(body) != want {
				t.Errorf("body =\n%q\nwant\n%q", body, want)
			}
			if bytes.ContainsAny(body, "<>&") {
				t.Errorf("body %q contains unescaped HTML characters", body)
			}
		})
	}
}

func TestJobLogsTaskWithoutOutput(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	resp, body := e.do(t, http.MethodGet, "/job/logs?id="+jobRunningID+"&task=test", "")
	if resp.StatusCode != http.StatusOK || string(body) != `{"stdout":"","stderr":"","stdoutOffset":0,"stderrOffset":0}` {
		t.Errorf("status %d body %s, want 200 with empty strings", resp.StatusCode, body)
	}
}

func TestJobLogsHead(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	resp, body := e.do(t, http.MethodHead, "/job/logs?id="+jobRunningID+"&task=build", "")
	if resp.StatusCode != http.StatusOK || len(body) != 0 {
		t.Errorf("HEAD: status %d, body %q", resp.StatusCode, body)
	}
	if o, c := e.runner.opened.Load(), e.runner.closed.Load(); o != c {
		t.Errorf("opened %d, closed %d log readers", o, c)
	}
}

func TestJobLogsErrors(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	base := "/job/logs?id=" + jobRunningID
	tests := []struct {
		target string
		status int
		msg    string
	}{
		{"/job/logs?task=build", 400, "Invalid job id"},
		{"/job/logs?id=nope&task=build", 400, "Invalid job id"},
		{base, 400, "Invalid task name"},
		{base + "&task=", 400, "Invalid task name"},
		{base + "&task=a%00b", 400, "Invalid task name"},
		{base + "&task=" + strings.Repeat("x", 257), 400, "Invalid task name"},
		{base + "&task=..%2F..%2Fetc%2Fpasswd", 404, "Task not found"},
		{base + "&task=nope", 404, "Task not found"},
		{"/job/logs?id=" + unknownJobID + "&task=build", 404, "Job not found"},
	}
	for _, tt := range tests {
		resp, body := e.do(t, http.MethodGet, tt.target, "")
		wantError(t, resp, body, tt.status, tt.msg)
	}
	if n := e.runner.opened.Load(); n != 0 {
		t.Errorf("%d logs opened for invalid requests", n)
	}
}

func TestJobLogsOpenErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stream pipeline.LogStream
		err    error
		status int
		msg    string
	}{
		{name: "stdout gone", stream: pipeline.Stdout, err: fmt.Errorf("open: %w", pipeline.ErrTaskNotFound), status: 404, msg: "Task not found"},
		{name: "stderr fails", stream: pipeline.Stderr, err: errBoom, status: 500, msg: "internal error"},
		{name: "job deleted meanwhile", stream: pipeline.Stderr, err: pipeline.ErrJobNotFound, status: 404, msg: "Job not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			seed(e.runner)
			e.runner.openLogErr[tt.stream] = tt.err
			resp, body := e.do(t, http.MethodGet, "/job/logs?id="+jobRunningID+"&task=build", "")
			wantError(t, resp, body, tt.status, tt.msg)
			if o, c := e.runner.opened.Load(), e.runner.closed.Load(); o != c {
				t.Errorf("opened %d, closed %d log readers", o, c)
			}
		})
	}
}

// failingReader returns some output and then an error, like a log file that vanished.
type failingReader struct{ done bool }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.done {
		return 0, errors.New("read log: input/output error")
	}
	f.done = true
	return copy(p, "partial output"), nil
}

func TestJobLogsReadErrorTruncates(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	e.runner.setLog(jobRunningID, "build", pipeline.Stdout, func() io.Reader { return &failingReader{} })
	resp, body := e.do(t, http.MethodGet, "/job/logs?id="+jobRunningID+"&task=build", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The status is sent before the failure; the client sees a body that is not valid JSON.
	if json.Valid(body) {
		t.Errorf("body %q is valid JSON, want a truncated one", body)
	}
	if !strings.Contains(e.logs.String(), "input/output error") {
		t.Errorf("read error not logged:\n%s", e.logs.String())
	}
	if o, c := e.runner.opened.Load(), e.runner.closed.Load(); o != 2 || c != 2 {
		t.Errorf("opened %d, closed %d log readers", o, c)
	}
}
