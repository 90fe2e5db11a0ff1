package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	ready := error(nil)
	e := newTestEnv(t, func(c *Config) {
		c.Ready = func(context.Context) error { return ready }
	})
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, body := e.send(t, httptest.NewRequest(http.MethodGet, path, nil))
		if resp.StatusCode != 200 {
			t.Errorf("%s without token: %d %s, want 200", path, resp.StatusCode, body)
		}
	}
	ready = errors.New("store unreachable: disk I/O error")
	resp, body := e.send(t, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "store unreachable") {
		t.Errorf("/readyz when not ready: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.send(t, httptest.NewRequest(http.MethodGet, "/healthz", nil)); resp.StatusCode != 200 {
		t.Errorf("/healthz must stay 200 while not ready: %d", resp.StatusCode)
	}
}

// TestReadinessIsBounded: the readiness check runs with a deadline, so that a database that
// does not answer makes the node unready instead of hanging the check.
func TestReadinessIsBounded(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) {
		c.Ready = func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("no deadline")
			}
			return nil
		}
	})
	if resp, body := e.send(t, httptest.NewRequest(http.MethodGet, "/readyz", nil)); resp.StatusCode != 200 {
		t.Errorf("/readyz: %d %s, want 200 (the check must get a deadline)", resp.StatusCode, body)
	}
}

func TestMetricsRouteAuth(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	if resp, _ := e.send(t, httptest.NewRequest(http.MethodGet, "/metrics", nil)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without token: %d, want 401", resp.StatusCode)
	}
	resp, body := e.do(t, http.MethodGet, "/metrics", "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "prunner_test_metric 1") {
		t.Errorf("/metrics with token: %d %s", resp.StatusCode, body)
	}
	public := newTestEnv(t, func(c *Config) { c.MetricsPublic = true })
	if resp, _ := public.send(t, httptest.NewRequest(http.MethodGet, "/metrics", nil)); resp.StatusCode != 200 {
		t.Errorf("public /metrics without token: %d, want 200", resp.StatusCode)
	}
}

func TestOpenAPIDocumentListsEveryRoute(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	resp, body := e.send(t, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if resp.StatusCode != 200 {
		t.Fatalf("/openapi.json: %d", resp.StatusCode)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	// Every API route of the app is described (the dashboard's HTML routes under /ui are not
	// part of the API, nor is pprof).
	for _, r := range e.app.GetRoutes(true) {
		if r.Method == http.MethodHead || strings.HasPrefix(r.Path, "/ui") || strings.HasPrefix(r.Path, "/debug/") || r.Path == "/" {
			continue
		}
		ops, ok := doc.Paths[openAPIPath(r.Path)]
		if !ok {
			t.Errorf("route %s %s is not in openapi.json", r.Method, r.Path)
			continue
		}
		if _, ok := ops[strings.ToLower(r.Method)]; !ok {
			t.Errorf("method %s of %s is not in openapi.json", r.Method, r.Path)
		}
	}
}

// openAPIPath writes a route pattern as OpenAPI writes its path: /schedules/:id is
// /schedules/{id}.
func openAPIPath(route string) string {
	segs := strings.Split(route, "/")
	for i, seg := range segs {
		if name, ok := strings.CutPrefix(seg, ":"); ok {
			segs[i] = "{" + name + "}"
		}
	}
	return strings.Join(segs, "/")
}
