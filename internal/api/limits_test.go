package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// serve runs the app on a loopback listener until the test ends and returns its address.
// app.Test cannot show responses to requests that fasthttp rejects before any handler runs (it
// returns the server's error instead), so those tests use a real connection.
func (e *testEnv) serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.app.Listener(ln) }()
	t.Cleanup(func() {
		if err := e.app.ShutdownWithTimeout(5 * time.Second); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// rawRequest writes raw to a new connection to addr and reads one response.
func rawRequest(t *testing.T, addr, raw string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, body
}

// oversizedSchedule announces a body of announced bytes but sends only its first few bytes: a
// 413 proves the server answered without waiting for, or reading, the body.
func oversizedSchedule(token string, announced int) string {
	return fmt.Sprintf("POST /pipelines/schedule HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"pipeline\":", token, announced)
}

func TestBodyTooLargeIsNotRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		limit     int
		announced int
	}{
		{name: "default limit, 1 GiB", announced: 1 << 30},
		{name: "default limit, one byte over", announced: DefaultBodyLimit + 1},
		{name: "custom limit", limit: 1024, announced: 1025},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, func(c *Config) { c.BodyLimit = tt.limit })
			seed(e.runner)
			resp, body := rawRequest(t, e.serve(t), oversizedSchedule(e.token, tt.announced))
			wantError(t, resp, body, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
			if len(e.runner.scheduled) != 0 {
				t.Errorf("an oversized request was scheduled")
			}
			// fasthttp rejects the body before any handler runs; the request is still logged.
			if !strings.Contains(e.logs.String(), `"status":413`) {
				t.Errorf("no log line with status 413:\n%s", e.logs.String())
			}
		})
	}
}

func TestBodyLimitFullyTransmitted(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.BodyLimit = 1024 })
	seed(e.runner)
	body := `{"pipeline":"release_it","variables":{"x":"` + strings.Repeat("a", 2048) + `"}}`
	raw := fmt.Sprintf("POST /pipelines/schedule HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\n"+
		"Content-Length: %d\r\n\r\n%s", e.token, len(body), body)
	resp, out := rawRequest(t, e.serve(t), raw)
	wantError(t, resp, out, http.StatusRequestEntityTooLarge, "")
}

func TestBodyBelowDefaultLimit(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	body := `{"pipeline":"release_it","variables":{"x":"` + strings.Repeat("a", 900<<10) + `"}}`
	resp, out := e.do(t, http.MethodPost, "/pipelines/schedule", body)
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("900 KiB body: status %d (%.100s), want 202", resp.StatusCode, out)
	}
}

func TestHugeRequestLine(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	raw := fmt.Sprintf("GET /job/detail?id=%s HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\n\r\n",
		strings.Repeat("a", 64<<10), e.token)
	resp, body := rawRequest(t, e.serve(t), raw)
	wantError(t, resp, body, http.StatusRequestHeaderFieldsTooLarge, "")
}

func TestPprof(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.EnableProfiling = true })
	resp, body := e.do(t, http.MethodGet, "/debug/pprof/", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Errorf("GET /debug/pprof/: status %d, body %.200s", resp.StatusCode, body)
	}
	resp, body = e.do(t, http.MethodGet, "/debug/pprof/goroutine?debug=1", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Errorf("GET /debug/pprof/goroutine: status %d, body %.200s", resp.StatusCode, body)
	}
	// The command line may carry --jwt-secret: never served.
	resp, body = e.do(t, http.MethodGet, "/debug/pprof/cmdline", "")
	wantError(t, resp, body, http.StatusNotFound, "")

	req := httptest.NewRequest(http.MethodGet, "/debug/pprof/", nil)
	resp, _ = e.send(t, req)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("pprof without token: status %d, want 401", resp.StatusCode)
	}
}
