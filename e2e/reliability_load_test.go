package e2e

import (
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// Item 23: GET /pipelines/jobs under concurrent load on loopback (bounded in count and time):
// no errors; latency figures are logged.
func TestReliabilityListUnderLoad(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  fill:
    concurrency: 8
    tasks: {t: {script: ["echo {{ .i }}"]}}
`).start()
	for i := 0; i < 300; i++ {
		s.schedule("fill", map[string]any{"i": i})
	}
	eventually(t, 30*time.Second, "fill jobs to finish", func() bool {
		return len(s.page("/jobs?status=queued,running&limit=10").Jobs) == 0
	})
	const clients, perClient = 16, 25
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  int
	)
	token := s.token()
	deadline := time.Now().Add(60 * time.Second)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; i < perClient && time.Now().Before(deadline); i++ {
				path := "/pipelines/jobs"
				if i%2 == 1 {
					path = "/jobs?limit=50"
				}
				req, _ := http.NewRequest("GET", s.url+path, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				begin := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					mu.Lock()
					failures++
					mu.Unlock()
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(begin)
				mu.Lock()
				if resp.StatusCode != 200 {
					failures++
				}
				latencies = append(latencies, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failures > 0 {
		t.Errorf("%d of %d requests failed", failures, clients*perClient)
	}
	slices.Sort(latencies)
	if len(latencies) == 0 {
		t.Fatal("no requests")
	}
	t.Logf("%d requests by %d clients over 300 jobs: median %v, p90 %v, max %v", len(latencies), clients,
		latencies[len(latencies)/2], latencies[len(latencies)*9/10], latencies[len(latencies)-1])
}
