package api

import (
	"net/http"
	"testing"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// TestStatusFilter: the status parameter of job lists accepts every job status
// (pipeline.JobStatuses) and names them all when it gets another value.
func TestStatusFilter(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for _, s := range pipeline.JobStatuses() {
		if resp, body := e.do(t, http.MethodGet, "/pipelines/jobs?status="+string(s), ""); resp.StatusCode != http.StatusOK {
			t.Errorf("status=%s: %d %s, want 200", s, resp.StatusCode, body)
		}
	}
	resp, body := e.do(t, http.MethodGet, "/pipelines/jobs?status=cancelled", "")
	wantError(t, resp, body, http.StatusBadRequest, `Invalid status "cancelled": use queued, running, succeeded, failed, canceled or replaced`)
}
