package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/prunner-dev/prunner/internal/metrics"
	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/runner"
	"github.com/prunner-dev/prunner/internal/scheduler"
	"github.com/prunner-dev/prunner/internal/store/sqlite"
)

// publicRoutes answer without a token: probes, the API description, the way to the login page,
// the login itself and the dashboard's static assets.
var publicRoutes = map[string]bool{
	"GET /healthz": true, "HEAD /healthz": true,
	"GET /readyz": true, "HEAD /readyz": true,
	"GET /openapi.json": true, "HEAD /openapi.json": true,
	"GET /": true, "HEAD /": true,
	"GET /ui/login": true, "HEAD /ui/login": true, "POST /ui/login": true,
	"GET /ui/static/*": true, "HEAD /ui/static/*": true,
}

// TestTokenMatrixEveryRoute (reliability item 19): the app exactly as served — API and dashboard
// on one Fiber app, with a real runner and store — is enumerated route by route. Without a
// valid token every route that is not public answers 401 (API) or sends the browser to the login
// page (dashboard), whatever the kind of bad token; with a valid one none of them does.
func TestTokenMatrixEveryRoute(t *testing.T) {
	dir := t.TempDir()
	secret := []byte("route-matrix-secret-0123456789")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "prunner.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pf := filepath.Join(dir, "pipelines.yml")
	if err := os.WriteFile(pf, []byte("pipelines:\n  p:\n    tasks:\n      t: {script: [\"echo hi\"]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defs, problems, err := pipeline.Load(dir, "")
	if err != nil || len(problems) > 0 {
		t.Fatalf("Load() = %v, %v", problems, err)
	}
	r := runner.New(runner.Config{Store: st, DataDir: dir, WorkDir: dir, Logger: log})
	r.SetDefinitions(defs)
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer r.Stop(context.Background())
	jobID, err := r.Schedule(t.Context(), pipeline.ScheduleRequest{Pipeline: "p"})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if j, err := r.Job(t.Context(), jobID); err == nil && j.Status.Final() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("job not finished")
		}
	}
	liveDone := make(chan struct{})
	defer close(liveDone)
	sched := scheduler.New(scheduler.Config{Store: st, Firer: r, Logger: log})
	if err := sched.SetDefinitions(t.Context(), defs); err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer sched.Stop()
	app, dash := newApp(&config{}, secret, log, metrics.New(), liveDone, r, sched)
	defer dash.Close()

	now := time.Now()
	sign := func(m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := jwt.MapClaims{"sub": "matrix", "exp": now.Add(time.Hour).Unix()}
	bad := map[string]string{
		"none":         "",
		"wrong secret": sign(jwt.SigningMethodHS256, []byte("another-secret-0123456789"), valid),
		"alg none":     sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid),
		"HS512":        sign(jwt.SigningMethodHS512, secret, valid),
		"expired":      sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()}),
		"not yet":      sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()}),
		"malformed":    "a.b.c",
	}
	good := sign(jwt.SigningMethodHS256, secret, valid)

	target := func(path string) string {
		var segs []string
		for _, seg := range strings.Split(path, "/") {
			switch seg {
			case ":id":
				seg = jobID
			case ":task":
				seg = "t"
			case ":stream":
				seg = "stdout"
			case ":name":
				seg = "p"
			case "*":
				seg = "app.css"
			}
			segs = append(segs, seg)
		}
		return strings.Join(segs, "/") + "?id=" + jobID + "&task=t"
	}
	send := func(method, path, token string, asCookie bool) *http.Response {
		body := strings.NewReader("")
		if method == http.MethodPost {
			body = strings.NewReader(`{"pipeline":"p"}`)
		}
		req := httptest.NewRequest(method, target(path), body)
		if method == http.MethodPost && path == "/pipelines/schedule" {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			if asCookie {
				req.AddCookie(&http.Cookie{Name: "jwt", Value: token})
			} else {
				req.Header.Set("Authorization", "Bearer "+token)
			}
		}
		resp, err := app.Test(req, 3000)
		if err != nil {
			// A live stream that stays open: it was accepted.
			return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader(""))}
		}
		return resp
	}
	toLogin := func(resp *http.Response) bool {
		return resp.StatusCode >= 300 && resp.StatusCode < 400 && strings.Contains(resp.Header.Get("Location"), "/ui/login")
	}
	routes := app.GetRoutes(true)
	checked := map[string]bool{}
	for _, route := range routes {
		key := route.Method + " " + route.Path
		if publicRoutes[key] || checked[key] || route.Method == http.MethodConnect || route.Method == http.MethodTrace ||
			route.Method == http.MethodOptions {
			continue
		}
		checked[key] = true
		dashboardRoute := strings.HasPrefix(route.Path, "/ui")
		for name, token := range bad {
			for _, asCookie := range []bool{false, true} {
				resp := send(route.Method, route.Path, token, asCookie)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusUnauthorized:
				case dashboardRoute && toLogin(resp):
				case dashboardRoute && route.Method == http.MethodPost && resp.StatusCode == http.StatusForbidden:
				default:
					t.Errorf("%s with %s token (cookie %v): status %d (Location %q), want 401 or the login page",
						key, name, asCookie, resp.StatusCode, resp.Header.Get("Location"))
				}
			}
		}
		resp := send(route.Method, route.Path, good, dashboardRoute) // the dashboard by its cookie
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized || toLogin(resp) {
			t.Errorf("%s with a valid token: status %d (Location %q), want accepted", key, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	var api, ui int
	for key := range checked {
		if strings.Contains(key, " /ui") {
			ui++
		} else {
			api++
		}
	}
	if api < 10 || ui < 10 {
		t.Fatalf("checked %d API and %d dashboard routes; the enumeration is broken", api, ui)
	}
	t.Logf("checked %d API and %d dashboard routes", api, ui)
}
