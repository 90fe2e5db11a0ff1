package api

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/prunner-dev/prunner/internal/auth"
)

var testSecret = []byte("api-test-secret-0123456789")

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLines returns the JSON log records written so far.
func (b *lockedBuffer) logLines(t *testing.T) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		lines = append(lines, rec)
	}
	return lines
}

type testEnv struct {
	app       *fiber.App
	runner    *fakeRunner
	schedules *fakeSchedules
	logs      *lockedBuffer
	token     string
}

func newTestEnv(t testing.TB, configure ...func(*Config)) *testEnv {
	t.Helper()
	logs := &lockedBuffer{}
	fs := newFakeSchedules()
	cfg := Config{
		Secret:    testSecret,
		Schedules: fs,
		Logger:    slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "prunner_test_metric 1\n")
		}),
	}
	for _, f := range configure {
		f(&cfg)
	}
	fr := newFakeRunner()
	return &testEnv{
		app:       New(cfg, fr),
		runner:    fr,
		schedules: fs,
		logs:      logs,
		token:     mintToken(t, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Minute).Unix()}),
	}
}

func mintToken(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := auth.Mint(testSecret, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// send runs req against the app and returns the response with its whole body.
func (e *testEnv) send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := e.app.Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// do sends an authenticated request (as alice) with an optional body.
func (e *testEnv) do(t *testing.T, method, target, body string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	req.Header.Set("Authorization", "Bearer "+e.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return e.send(t, req)
}

// wantError checks an error response: status, JSON content type and {"error": msg}.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, msg string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	if len(got) != 1 {
		t.Errorf("error body %s has keys other than error", body)
	}
	m, ok := got["error"].(string)
	if !ok {
		t.Fatalf("error body %s has no string error", body)
	}
	if msg != "" && m != msg {
		t.Errorf("error = %q, want %q", m, msg)
	}
}

func decodeJSON(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", body, err)
	}
	return v
}
