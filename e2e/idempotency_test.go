package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func (s *server) scheduleWithKey(pipeline, key string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest("POST", s.url+"/pipelines/schedule", strings.NewReader(`{"pipeline":"`+pipeline+`"}`))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	validateAgainstOpenAPI(s.t, req, resp.StatusCode, resp.Header, body)
	var out struct {
		JobID string `json:"jobId"`
	}
	_ = json.Unmarshal(body, &out)
	return resp.StatusCode, out.JobID
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  p: {tasks: {t: {script: ["sleep 0.2"]}}}
  other: {tasks: {t: {script: ["true"]}}}
`).start()

	// Concurrent requests with one key: one job, the same ID for all.
	const n = 8
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			status, id := s.scheduleWithKey("p", "order-4711")
			if status != http.StatusAccepted {
				t.Errorf("request %d: status %d", i, status)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || id == "" {
			t.Fatalf("ids = %v, want one job for one key", ids)
		}
	}
	s.waitFinished(ids[0])
	// After the job finished the key still names it.
	if _, again := s.scheduleWithKey("p", "order-4711"); again != ids[0] {
		t.Errorf("repeat after finish: %s, want %s", again, ids[0])
	}
	// Exactly one job exists for the key.
	if jobs := s.page("/jobs?pipeline=p&limit=100").Jobs; len(jobs) != 1 {
		t.Errorf("jobs of p: %d, want 1", len(jobs))
	}
	// The same key for another pipeline is a conflict, a new key a new job.
	if status, _ := s.scheduleWithKey("other", "order-4711"); status != http.StatusConflict {
		t.Errorf("key reused for another pipeline: %d, want 409", status)
	}
	if _, fresh := s.scheduleWithKey("p", "order-4712"); fresh == ids[0] || fresh == "" {
		t.Errorf("new key returned %q", fresh)
	}
	if status, _ := s.scheduleWithKey("p", strings.Repeat("k", 256)); status != http.StatusBadRequest {
		t.Errorf("oversized key: %d, want 400", status)
	}
}
