package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// addQueuedJobs adds n queued jobs, job-00000 the oldest, each with pad bytes of last error.
func addQueuedJobs(f *fakeRunner, n, pad int) {
	for i := range n {
		f.addJob(&pipeline.Job{ID: fmt.Sprintf("job-%05d", i), Pipeline: "p", Status: pipeline.JobQueued,
			Created: time.Unix(int64(i), 0), LastError: strings.Repeat("x", pad)})
	}
}

// get sends an authenticated GET to the server at addr; the caller reads and closes the body.
func (e *testEnv) get(t *testing.T, addr, target string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return resp
}

// TestListFramingOnTheWire: a whole list longer than the list buffer is sent chunked, as it is
// read; one that fits, and a page, keep a Content-Length. Each is one JSON document with every
// job, the same bytes either way.
func TestListFramingOnTheWire(t *testing.T) {
	t.Parallel()
	jobs := 3*streamBatch + 7 // about 300 KB of JSON
	small := newTestEnv(t, func(c *Config) { c.ListBuffer = 64 << 10 })
	addQueuedJobs(small.runner, jobs, 10)
	large := newTestEnv(t)
	addQueuedJobs(large.runner, jobs, 10)
	smallAddr, largeAddr := small.serve(t), large.serve(t)
	tests := []struct {
		env         *testEnv
		addr        string
		target      string
		wantJobs    int
		wantChunked bool
	}{
		{small, smallAddr, "/pipelines/jobs", jobs, true},
		{small, smallAddr, "/pipelines/jobs?pipeline=p", jobs, true},
		{small, smallAddr, "/pipelines/jobs?limit=50", 50, false},
		{small, smallAddr, "/jobs", 50, false},
		{large, largeAddr, "/pipelines/jobs", jobs, false},
	}
	bodies := map[string][]byte{}
	for _, tt := range tests {
		resp := tt.env.get(t, tt.addr, tt.target)
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d, %v", tt.target, resp.StatusCode, err)
		}
		chunked := len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] == "chunked"
		if chunked != tt.wantChunked || chunked == (resp.ContentLength >= 0) {
			t.Errorf("GET %s: Transfer-Encoding %v, Content-Length %d; want chunked %v", tt.target,
				resp.TransferEncoding, resp.ContentLength, tt.wantChunked)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q", tt.target, ct)
		}
		var doc struct {
			Jobs []struct{ ID string } `json:"jobs"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("GET %s: %d bytes are not one JSON document: %v", tt.target, len(body), err)
		}
		if len(doc.Jobs) != tt.wantJobs {
			t.Errorf("GET %s: %d jobs, want %d", tt.target, len(doc.Jobs), tt.wantJobs)
		}
		if prev, ok := bodies[tt.target]; ok && string(prev) != string(body) {
			t.Errorf("GET %s: the chunked and the Content-Length body differ", tt.target)
		}
		bodies[tt.target] = body
	}
}

// TestListErrorMidway: a store error while the response has not started (the first batch, or
// any batch of a list that fits the list buffer) is a JSON error with status 500; later, after
// part of the list went out, the response breaks off: the body has no closing brackets, the
// chunked encoding no last chunk (the client reads an unexpected EOF), and the error is logged.
func TestListErrorMidway(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		listBuffer int
		failAfter  int
		wantStatus bool
	}{
		{"in the first batch", 1, streamBatch / 2, true},
		{"in a batch held for a Content-Length", 0, 3*streamBatch + streamBatch/2, true},
		{"after the first batch went out", 1, 3*streamBatch + streamBatch/2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, func(c *Config) { c.ListBuffer = tt.listBuffer })
			addQueuedJobs(e.runner, 5*streamBatch, 100)
			e.runner.eachJobErr, e.runner.eachJobErrAfter = errors.New("disk on fire"), tt.failAfter
			resp := e.get(t, e.serve(t), "/pipelines/jobs")
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if tt.wantStatus {
				if err != nil {
					t.Fatalf("read body: %v", err)
				}
				wantError(t, resp, body, http.StatusInternalServerError, "")
				return
			}
			if resp.StatusCode != http.StatusOK || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("status %d, body read error %v; want 200 and an unexpected EOF", resp.StatusCode, err)
			}
			if json.Valid(body) {
				t.Errorf("the broken-off body is valid JSON: %.100s…", body)
			}
			// The body holds the whole batches read before the error.
			if n := strings.Count(string(body), `"id":`); n != tt.failAfter/streamBatch*streamBatch {
				t.Errorf("the broken-off body has %d jobs, want %d", n, tt.failAfter/streamBatch*streamBatch)
			}
			if !strings.Contains(e.logs.String(), "disk on fire") {
				t.Errorf("the error is not logged: %s", e.logs.String())
			}
		})
	}
}

// TestListEndsAtShutdown: a client that stops reading a long list does not hold the server's
// shutdown once Done is closed; its list breaks off.
func TestListEndsAtShutdown(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	e := newTestEnv(t, func(c *Config) { c.Done = done; c.ListBuffer = 1 })
	// About 40 MB of JSON: more than the sockets buffer, so the server's writes block.
	addQueuedJobs(e.runner, 40*streamBatch, 2000)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.app.Listener(ln) }()

	resp := e.get(t, ln.Addr().String(), "/pipelines/jobs")
	t.Cleanup(func() { _ = resp.Body.Close() })
	if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, first bytes: %v", resp.StatusCode, err)
	}
	// The client reads no further. The server's writes block once the buffers are full;
	// whether they do yet or not, the shutdown must end the list.
	close(done)
	start := time.Now()
	if err := e.app.ShutdownWithTimeout(10 * time.Second); err != nil {
		t.Errorf("shutdown with a list open: %v after %v", err, time.Since(start))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v with a list open, want about %v at most", d, shutdownWriteGrace)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err == nil || json.Valid(body) {
		t.Errorf("the list cut by the shutdown ended with %v after %d more bytes, want a broken-off body", err, len(body))
	}
}
