package e2e

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// liveEvent is one Server-Sent Event of GET /job/logs/live.
type liveEvent struct {
	event, id, data string
}

// liveConn is an open GET /job/logs/live response.
type liveConn struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

// openLive opens the live log stream of a task; lastID is sent as Last-Event-ID unless empty.
func (s *server) openLive(jobID, task, lastID string) *liveConn {
	s.t.Helper()
	req, err := http.NewRequest("GET", s.url+"/job/logs/live?id="+jobID+"&task="+task, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token())
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("open live log: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		s.t.Fatalf("open live log: status %d, body %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		s.t.Errorf("live log Content-Type = %q", ct)
	}
	c := &liveConn{t: s.t, resp: resp, r: bufio.NewReaderSize(resp.Body, 64<<10)}
	s.t.Cleanup(c.close)
	return c
}

func (c *liveConn) close() { c.resp.Body.Close() }

// next returns the next event (comments are skipped); io.EOF when the stream ended.
func (c *liveConn) next() (liveEvent, error) {
	var ev liveEvent
	var data []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.event != "" || data != nil {
				ev.data = strings.Join(data, "\n")
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				ev.event = value
			case "id":
				ev.id = value
			case "data":
				data = append(data, value)
			}
		}
	}
}

// text returns the text of an output event.
func (ev liveEvent) text(t *testing.T) string {
	t.Helper()
	var d struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal([]byte(ev.data), &d); err != nil || d.Text == nil {
		t.Fatalf("event %s: data %q is not {\"text\":…}: %v", ev.event, ev.data, err)
	}
	return *d.Text
}

func numberedLines(prefix string, n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%s %d\n", prefix, i)
	}
	return b.String()
}

// logFile returns the path of the file of one stream of a task's output.
func (s *server) logFile(jobID, task, stream string) string {
	return filepath.Join(s.dataDir, "logs", jobID, hex.EncodeToString([]byte(task))+"."+stream)
}

func TestLiveLogFollowsAcrossReconnect(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  live:
    tasks:
      count:
        script:
          - "for i in $(seq 1 30); do echo line $i; sleep 0.05; done"
          - "echo done >&2"
`).start()
	id := s.schedule("live", nil)

	var stdout, stderr strings.Builder
	lastID := ""
	var end *liveEvent
	reconnects := 0
	deadline := time.Now().Add(30 * time.Second)
	for end == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no end event in time; got %q", stdout.String())
		}
		c := s.openLive(id, "count", lastID)
		for {
			ev, err := c.next()
			if err != nil {
				t.Fatalf("stream ended without an end event: %v (got %q)", err, stdout.String())
			}
			if ev.id != "" {
				lastID = ev.id
			}
			if ev.event == "end" {
				end = &ev
				break
			}
			switch ev.event {
			case "stdout":
				stdout.WriteString(ev.text(t))
			case "stderr":
				stderr.WriteString(ev.text(t))
			default:
				t.Fatalf("unexpected event %+v", ev)
			}
			if want := fmt.Sprintf("%d,%d", stdout.Len(), stderr.Len()); ev.id != want {
				t.Errorf("event id %q, want the offsets after it %q", ev.id, want)
			}
			// Drop the connection in the middle of the output, once.
			if reconnects == 0 && strings.Count(stdout.String(), "\n") >= 10 {
				reconnects++
				if strings.Contains(stdout.String(), "line 30\n") {
					t.Errorf("the task ended before the forced reconnect: the test shows nothing")
				}
				c.close()
				break
			}
		}
		c.close()
	}
	if reconnects != 1 {
		t.Errorf("reconnected %d times, want 1", reconnects)
	}
	if got, want := stdout.String(), numberedLines("line", 30); got != want {
		t.Errorf("stdout across the reconnect =\n%s\nwant every line once, in order:\n%s", got, want)
	}
	if stderr.String() != "done\n" {
		t.Errorf("stderr = %q, want %q", stderr.String(), "done\n")
	}
	var d struct {
		Status   string `json:"status"`
		ExitCode *int   `json:"exitCode"`
	}
	if err := json.Unmarshal([]byte(end.data), &d); err != nil || d.Status != "done" || d.ExitCode == nil || *d.ExitCode != 0 {
		t.Errorf("end data %q, want status done and exitCode 0 (%v)", end.data, err)
	}
	if want := fmt.Sprintf("%d,%d", stdout.Len(), stderr.Len()); end.id != want {
		t.Errorf("end id %q, want %q", end.id, want)
	}
}

func TestLiveLogOfTaskNotStartedYet(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  dag:
    tasks:
      first: {script: ["sleep 0.5"]}
      second: {script: ["echo hello; exit 3"], depends_on: [first]}
`).start()
	id := s.schedule("dag", nil)
	c := s.openLive(id, "second", "")
	var out strings.Builder
	for {
		ev, err := c.next()
		if err != nil {
			t.Fatalf("stream ended without an end event: %v", err)
		}
		if ev.event == "end" {
			if !strings.Contains(ev.data, `"status":"error"`) || !strings.Contains(ev.data, `"exitCode":3`) {
				t.Errorf("end data %s, want status error, exit code 3", ev.data)
			}
			break
		}
		out.WriteString(ev.text(t))
	}
	if out.String() != "hello\n" {
		t.Errorf("output %q, want %q", out.String(), "hello\n")
	}
}

func TestLiveLogReaderThatNeverReadsDoesNotDelayTheJob(t *testing.T) {
	t.Parallel()
	const size = 50_000_000
	s := newServer(t, `
pipelines:
  big:
    tasks:
      spew: {script: ["yes | head -c 50000000"]}
`).start()
	run := func(withReader bool) time.Duration {
		start := time.Now()
		id := s.schedule("big", nil)
		if withReader {
			// Opened and never read: the server's writes back up into the socket buffers.
			s.openLive(id, "spew", "")
		}
		j := s.waitJob(id, 60*time.Second, "finished", jobJSON.finished)
		d := time.Since(start)
		if j.Errored || j.task("spew").Status != "done" {
			t.Fatalf("job %s: %+v", id, j)
		}
		if st, err := os.Stat(s.logFile(id, "spew", "stdout")); err != nil || st.Size() != size {
			t.Fatalf("log of %s: %v, %v", id, st, err)
		}
		return d
	}
	without := run(false)
	with := run(true)
	t.Logf("50 MB task: %v without a reader, %v with a reader that never reads", without, with)
	if limit := 3*without + 2*time.Second; with > limit {
		t.Errorf("with a stuck reader the job took %v, more than %v (3x %v + 2s)", with, limit, without)
	}
	// The server still serves.
	if status, body := s.do("GET", "/pipelines", nil); status != http.StatusOK {
		t.Errorf("after the stuck reader: status %d, %s", status, body)
	}
}

func TestLogOffsetsReturnOnlyNewBytes(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  slow:
    tasks:
      w:
        script:
          - "for i in $(seq 1 25); do echo chunk $i; echo err $i >&2; sleep 0.05; done"
`).start()
	id := s.schedule("slow", nil)
	type answer struct {
		Stdout       string `json:"stdout"`
		Stderr       string `json:"stderr"`
		StdoutOffset *int64 `json:"stdoutOffset"`
		StderrOffset *int64 `json:"stderrOffset"`
	}
	var out, errOut strings.Builder
	var outOff, errOff int64
	polls, withData := 0, 0
	for {
		done := s.job(id).finished()
		status, body := s.do("GET", fmt.Sprintf("/job/logs?id=%s&task=w&stdoutOffset=%d&stderrOffset=%d", id, outOff, errOff), nil)
		if status != http.StatusOK {
			t.Fatalf("status %d, body %s", status, body)
		}
		var a answer
		if err := json.Unmarshal(body, &a); err != nil || a.StdoutOffset == nil || a.StderrOffset == nil {
			t.Fatalf("answer %s: %v", body, err)
		}
		if *a.StdoutOffset != outOff+int64(len(a.Stdout)) || *a.StderrOffset != errOff+int64(len(a.Stderr)) {
			t.Errorf("offsets %d,%d after %q/%q read from %d,%d", *a.StdoutOffset, *a.StderrOffset, a.Stdout, a.Stderr, outOff, errOff)
		}
		polls++
		if a.Stdout != "" && !done {
			withData++
		}
		out.WriteString(a.Stdout)
		errOut.WriteString(a.Stderr)
		outOff, errOff = *a.StdoutOffset, *a.StderrOffset
		if done {
			break
		}
		time.Sleep(120 * time.Millisecond)
	}
	if out.String() != numberedLines("chunk", 25) || errOut.String() != numberedLines("err", 25) {
		t.Errorf("incremental reads gave\n%q\n%q", out.String(), errOut.String())
	}
	if withData < 3 {
		t.Errorf("only %d of %d reads while the task ran returned new output", withData, polls)
	}
	// The whole log, without offsets, is what it always was, plus the offsets at its end.
	status, body := s.do("GET", "/job/logs?id="+id+"&task=w", nil)
	want := fmt.Sprintf(`{"stdout":%q,"stderr":%q,"stdoutOffset":%d,"stderrOffset":%d}`,
		numberedLines("chunk", 25), numberedLines("err", 25), outOff, errOff)
	if status != http.StatusOK || string(body) != want {
		t.Errorf("full read: status %d, body %s, want %s", status, body, want)
	}
}

func TestRawLogDownloadEqualsFile(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  out:
    tasks:
      t:
        script:
          - "seq 1 200000"
          - "printf 'no newline \\303\\274 <b>&'"
          - "printf '\\377 binary' >&2"
`).start()
	id := s.schedule("out", nil)
	s.waitFinished(id)
	for _, stream := range []string{"stdout", "stderr"} {
		file, err := os.ReadFile(s.logFile(id, "t", stream))
		if err != nil {
			t.Fatal(err)
		}
		for _, off := range []int{0, 7, len(file), len(file) + 10} {
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/job/logs/raw?id=%s&task=t&stream=%s&offset=%d", s.url, id, stream, off), nil)
			req.Header.Set("Authorization", "Bearer "+s.token())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s offset %d: status %d, %s", stream, off, resp.StatusCode, body)
			}
			if got := resp.Header.Get("X-Log-Size"); got != strconv.Itoa(len(file)) {
				t.Errorf("%s: X-Log-Size %q, want %d", stream, got, len(file))
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("%s: Content-Type %q", stream, ct)
			}
			if want := file[min(off, len(file)):]; !bytes.Equal(body, want) {
				t.Errorf("%s offset %d: %d bytes differ from the file's %d", stream, off, len(body), len(want))
			}
		}
	}
}

func TestLiveLogsEndAtShutdown(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  one:
    concurrency: 1
    queue_limit: 5
    tasks:
      t: {script: ["echo started; sleep 60"]}
  big:
    tasks:
      spew: {script: ["yes | head -c 20000000"]}
`).start()
	// A reader that never reads the stream of a big log: the server's write to it blocks.
	big := s.schedule("big", nil)
	s.waitFinished(big)
	s.openLive(big, "spew", "")
	// Time for the socket buffers to fill up (the stream is several times larger).
	time.Sleep(time.Second)
	running := s.schedule("one", nil)
	queued := s.schedule("one", nil)
	c1 := s.openLive(running, "t", "")
	// The shell may write the line in more than one piece, each an event of its own.
	for got := ""; got != "started\n"; {
		ev, err := c1.next()
		if err != nil || ev.event != "stdout" || !strings.HasPrefix("started\n", got+ev.text(t)) {
			t.Fatalf("after %q: event %+v, %v; want the rest of \"started\\n\"", got, ev, err)
		}
		got += ev.text(t)
	}
	// The queued job never starts here: its stream waits until the server shuts down.
	c2 := s.openLive(queued, "t", "")
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := c2.next(); err != nil {
				ended <- err
				return
			}
		}
	}()
	start := time.Now()
	s.signal(syscall.SIGTERM)
	if code := s.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	// Without ending the live streams (and the blocked write), the HTTP shutdown would wait its
	// full 5 s.
	d := time.Since(start)
	t.Logf("stopped %v after SIGTERM", d)
	if d > 4*time.Second {
		t.Errorf("the server took %v to stop with live log streams open", d)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Error("the live stream of the queued job did not end")
	}
}

// vmHWM returns the peak resident set size of a process in bytes (VmHWM in /proc/<pid>/status).
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}

// TestBigLogDownloadMemory downloads a 200 MB log through /job/logs/raw and /job/logs and
// checks the server's peak RSS. It runs with PRUNNER_BIG_LOG_TEST=1 (it writes 200 MB twice).
func TestBigLogDownloadMemory(t *testing.T) {
	if os.Getenv("PRUNNER_BIG_LOG_TEST") != "1" {
		t.Skip("set PRUNNER_BIG_LOG_TEST=1 to download a 200 MB log and measure the server's memory")
	}
	const size = 200_000_000
	const limit = 64 << 20
	s := newServer(t, `
pipelines:
  big:
    tasks:
      spew: {script: ["yes 'prunner \"big\" log <line> ü' | head -c 200000000"]}
`).start()
	pid := s.cmd.Process.Pid
	started := vmHWM(t, pid)
	id := s.schedule("big", nil)
	s.waitJob(id, 120*time.Second, "finished", jobJSON.finished)
	afterTask := vmHWM(t, pid)

	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err == nil {
				for _, line := range strings.Split(string(data), "\n") {
					if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
						kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
						peak.Store(kb << 10)
					}
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	download := func(path string) (n int64, head, tail []byte, d time.Duration) {
		t.Helper()
		start := time.Now()
		req, _ := http.NewRequest("GET", s.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+s.token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
		buf := make([]byte, 64<<10)
		for {
			k, err := resp.Body.Read(buf)
			if k > 0 {
				if head == nil {
					head = append([]byte(nil), buf[:min(k, 64)]...)
				}
				tail = append(tail, buf[:k]...)
				if len(tail) > 128 {
					tail = append([]byte(nil), tail[len(tail)-128:]...)
				}
				n += int64(k)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: read after %d bytes: %v", path, n, err)
			}
		}
		return n, head, tail, time.Since(start)
	}

	rawN, _, _, rawTime := download("/job/logs/raw?id=" + id + "&task=spew&stream=stdout")
	afterRaw := vmHWM(t, pid)
	jsonN, head, tail, jsonTime := download("/job/logs?id=" + id + "&task=spew")
	close(stop)
	<-sampled
	afterJSON := vmHWM(t, pid)

	if rawN != size {
		t.Errorf("raw download: %d bytes, want %d", rawN, size)
	}
	if !bytes.HasPrefix(head, []byte(`{"stdout":"prunner \"big\" log \u003cline\u003e ü\n`)) ||
		!bytes.HasSuffix(tail, []byte(fmt.Sprintf(`","stderr":"","stdoutOffset":%d,"stderrOffset":0}`, size))) {
		t.Errorf("JSON download: starts %q, ends %q", head, tail)
	}
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	t.Logf("server VmHWM: %s after start, %s after the task wrote 200 MB, %s after the raw download (%v), %s after the JSON download (%d bytes, %v); sampled peak %s",
		mib(started), mib(afterTask), mib(afterRaw), rawTime.Round(time.Millisecond), mib(afterJSON), jsonN, jsonTime.Round(time.Millisecond), mib(peak.Load()))
	if afterJSON >= limit {
		t.Errorf("peak RSS %s, want < %s", mib(afterJSON), mib(limit))
	}
}
