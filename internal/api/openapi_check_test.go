package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// The handler tests of newer routes check each response against openapi.json (as the e2e
// tests do against the real server), so that the document stays true for every status.
var (
	openAPIOnce   sync.Once
	openAPIRouter routers.Router
	openAPIErr    error
)

func openAPI(t *testing.T) routers.Router {
	t.Helper()
	openAPIOnce.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(openAPISpec)
		if err == nil {
			err = doc.Validate(context.Background())
		}
		if err != nil {
			openAPIErr = err
			return
		}
		doc.Servers = nil
		openAPIRouter, openAPIErr = gorillamux.NewRouter(doc)
	})
	if openAPIErr != nil {
		t.Fatalf("openapi.json: %v", openAPIErr)
	}
	return openAPIRouter
}

// doChecked sends an authenticated request like do and fails the test when the response is not
// one that openapi.json describes for the route.
func (e *testEnv) doChecked(t *testing.T, method, target, body string) (*http.Response, []byte) {
	t.Helper()
	resp, respBody := e.do(t, method, target, body)
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	req.URL.Scheme, req.URL.Host, req.Host = "", "", ""
	route, params, err := openAPI(t).FindRoute(req)
	if err != nil {
		t.Errorf("openapi: %s %s is not described: %v", method, target, err)
		return resp, respBody
	}
	reqInput := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if body != "" && resp.StatusCode < 300 {
		// What the handler accepted, the document accepts too.
		req.Header.Set("Content-Type", "application/json")
		if err := openapi3filter.ValidateRequest(context.Background(), reqInput); err != nil {
			t.Errorf("openapi: accepted request %s %s %s does not match the document: %v", method, target, body, err)
		}
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqInput,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(respBody)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		t.Errorf("openapi: response of %s %s (%d) does not match the document: %v\nbody: %.500s", method, target, resp.StatusCode, err, respBody)
	}
	return resp, respBody
}
