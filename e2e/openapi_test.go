package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// The OpenAPI document is kept true by validating every response that the e2e tests receive
// through server.do against it: a route, status or field that the document does not describe
// fails the test that saw it.
var (
	openAPIOnce   sync.Once
	openAPIRouter routers.Router
	openAPIErr    error
)

func loadOpenAPI() (routers.Router, error) {
	openAPIOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromFile("../internal/api/openapi.json")
		if err != nil {
			openAPIErr = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			openAPIErr = err
			return
		}
		// Route matching ignores the server URL.
		doc.Servers = nil
		openAPIRouter, openAPIErr = gorillamux.NewRouter(doc)
	})
	return openAPIRouter, openAPIErr
}

// validateAgainstOpenAPI checks one request/response pair against the document.
func validateAgainstOpenAPI(t *testing.T, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	router, err := loadOpenAPI()
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if strings.HasPrefix(req.URL.Path, "/debug/") {
		return // pprof is a debugging aid, not part of the API
	}
	// The router matches on the path only.
	matchReq := req.Clone(context.Background())
	matchReq.URL.Scheme, matchReq.URL.Host, matchReq.Host = "", "", ""
	route, pathParams, err := router.FindRoute(matchReq)
	if err != nil {
		t.Errorf("openapi: %s %s is not described: %v", req.Method, req.URL.Path, err)
		return
	}
	if ct := header.Get("Content-Type"); strings.HasPrefix(ct, "text/event-stream") {
		return // a stream's body is not a document
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    matchReq,
			PathParams: pathParams,
			Route:      route,
		},
		Status: status,
		Header: header,
		Body:   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		t.Errorf("openapi: response of %s %s (%d) does not match the document: %v\nbody: %.500s", req.Method, req.URL.Path, status, err, body)
	}
}

func TestOpenAPIDocumentIsValidAndServed(t *testing.T) {
	t.Parallel()
	if _, err := loadOpenAPI(); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	s := newServer(t, "pipelines:\n  p: {tasks: {t: {script: [\"true\"]}}}\n").start()
	resp, err := http.Get(s.url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	served, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(served, []byte(`"openapi"`)) {
		t.Errorf("/openapi.json: %d %.100s", resp.StatusCode, served)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		status, body := s.doWithToken("GET", path, nil, "")
		if status != 200 {
			t.Errorf("%s: %d %s", path, status, body)
		}
	}
	status, body := s.do("GET", "/metrics", nil)
	if status != 200 || !strings.Contains(string(body), "prunner_jobs_running") {
		t.Errorf("/metrics: %d %.300s", status, body)
	}
	if status, _ := s.doWithToken("GET", "/metrics", nil, ""); status != 401 {
		t.Errorf("/metrics without token: %d, want 401", status)
	}
	// A finished job shows in the counters. The runner counts it just after it records the end,
	// so the API may show the job finished a moment before the counter moves.
	s.waitFinished(s.schedule("p", nil))
	eventually(t, 5*time.Second, "the finished job in prunner_jobs_finished_total", func() bool {
		_, body = s.do("GET", "/metrics", nil)
		return strings.Contains(string(body), `prunner_jobs_finished_total{pipeline="p",status="succeeded"} 1`)
	})
}
