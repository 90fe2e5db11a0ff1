package e2e

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Item 7: an API request in flight when SIGTERM arrives completes, and a live log stream is
// closed cleanly (the client sees the end of the body, not a hang).
func TestReliabilitySIGTERMWithRequestsInFlight(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  talk:
    tasks:
      t: {script: ["for i in $(seq 1 600); do echo line $i; sleep 0.05; done"]}
`, "--kill-grace", "200ms").start()
	id := s.schedule("talk", nil)
	s.waitJob(id, 10*time.Second, "running", func(j jobJSON) bool { return j.task("t").Status == "running" })

	req, _ := http.NewRequest("GET", s.url+"/job/logs/live?id="+id+"&task=t", nil)
	req.Header.Set("Authorization", "Bearer "+s.token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	reader := bufio.NewReader(resp.Body)
	if _, err := reader.ReadString('\n'); err != nil {
		t.Fatalf("stream: %v", err)
	}
	// A large listing in flight while the signal arrives.
	listDone := make(chan int, 1)
	go func() {
		status, _ := s.do("GET", "/pipelines/jobs", nil)
		listDone <- status
	}()
	s.signal(syscall.SIGTERM)
	if status := <-listDone; status != http.StatusOK && status != http.StatusServiceUnavailable {
		t.Errorf("request in flight during SIGTERM: %d", status)
	}
	streamEnded := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, reader)
		streamEnded <- err
	}()
	select {
	case <-streamEnded:
	case <-time.After(10 * time.Second):
		t.Fatal("live stream still open 10s after SIGTERM")
	}
	if code := s.wait(15 * time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// Item 8: a task printing a lot, and one printing a single long line without a newline: the
// server's memory stays bounded and the log streams. The full sizes (1 GB, 100 MB line) run with
// PRUNNER_BIG_LOG_TEST=1; by default 100 MB and a 20 MB line keep CI fast.
func TestReliabilityHugeOutputAndLongLine(t *testing.T) {
	t.Parallel()
	total, line := 100_000_000, 20_000_000
	if os.Getenv("PRUNNER_BIG_LOG_TEST") == "1" {
		total, line = 1_000_000_000, 100_000_000
	}
	s := newServer(t, `
pipelines:
  huge:
    tasks:
      many: {script: ["yes 'a line of output' | head -c {{ .total }}"]}
      long: {script: ["head -c {{ .line }} /dev/zero | tr '\\0' x"]}
`).start()
	id := s.schedule("huge", map[string]any{"total": total, "line": line})
	// The API stays responsive while the output is written.
	for i := 0; i < 5; i++ {
		begin := time.Now()
		if status, _ := s.do("GET", "/pipelines", nil); status != 200 {
			t.Fatalf("GET /pipelines during the output: %d", status)
		}
		if d := time.Since(begin); d > 2*time.Second {
			t.Errorf("GET /pipelines took %v while a task wrote", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	j := s.waitJob(id, 120*time.Second, "finished", jobJSON.finished)
	if j.Errored {
		t.Fatalf("job errored: %+v", j)
	}
	for task, size := range map[string]int{"many": total, "long": line} {
		req, _ := http.NewRequest("GET", s.url+"/job/logs/raw?id="+id+"&task="+task+"&stream=stdout", nil)
		req.Header.Set("Authorization", "Bearer "+s.token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != int64(size) {
			t.Errorf("raw log of %s: %d bytes (%v), want %d", task, n, err, size)
		}
	}
	// The JSON route streams the long line too.
	status, body := s.do("GET", "/job/logs?id="+id+"&task=long", nil)
	if status != 200 || !strings.HasPrefix(string(body), `{"stdout":"xxxx`) {
		t.Errorf("JSON log of the long line: %d %.40s", status, body)
	}
	peak := vmHWM(t, s.cmd.Process.Pid)
	t.Logf("server peak RSS after %d MB of output and a %d MB line: %.1f MiB", total/1_000_000, line/1_000_000, float64(peak)/(1<<20))
	if peak > 64<<20 {
		t.Errorf("server peak RSS %.1f MiB, want under 64 MiB", float64(peak)/(1<<20))
	}
}
