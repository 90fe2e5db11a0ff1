package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

type pageJSON struct {
	Jobs       []jobJSON `json:"jobs"`
	NextCursor string    `json:"nextCursor"`
}

func (s *server) page(path string) pageJSON {
	s.t.Helper()
	status, body := s.do("GET", path, nil)
	if status != http.StatusOK {
		s.t.Fatalf("GET %s: %d %s", path, status, body)
	}
	var p pageJSON
	if err := json.Unmarshal(body, &p); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// TestJobPagingIsStableWhileJobsAreAdded walks all pages while new jobs keep arriving: every job
// that existed when the walk began is seen exactly once, newest first.
func TestJobPagingIsStableWhileJobsAreAdded(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  a: {tasks: {t: {script: ["true"]}}}
  b: {tasks: {t: {script: ["exit 1"]}}}
`).start()
	var before []string
	for i := 0; i < 23; i++ {
		p := "a"
		if i%3 == 0 {
			p = "b"
		}
		id := s.schedule(p, nil)
		s.waitFinished(id)
		before = append(before, id)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				s.schedule("a", nil)
				time.Sleep(2 * time.Millisecond)
			}
		}
	}()
	seen := map[string]int{}
	var order []string
	cursor := ""
	for pages := 0; ; pages++ {
		path := "/jobs?limit=5"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		p := s.page(path)
		if len(p.Jobs) > 5 {
			t.Fatalf("page of %d jobs, limit 5", len(p.Jobs))
		}
		for _, j := range p.Jobs {
			seen[j.ID]++
			order = append(order, j.ID)
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
		if pages > 100 {
			t.Fatal("too many pages")
		}
	}
	close(stop)
	wg.Wait()
	for _, id := range before {
		if seen[id] != 1 {
			t.Errorf("job %s seen %d times, want once", id, seen[id])
		}
	}
	// Newest first: the jobs made before the walk appear in reverse creation order.
	var got []string
	for _, id := range order {
		for _, b := range before {
			if id == b {
				got = append(got, id)
			}
		}
	}
	for i := range got {
		if got[i] != before[len(before)-1-i] {
			t.Fatalf("order of pre-existing jobs broken at %d", i)
		}
	}

	// Filters: pipeline and status.
	for _, j := range s.page("/jobs?pipeline=b&limit=100").Jobs {
		if j.Pipeline != "b" {
			t.Errorf("pipeline filter returned %s", j.Pipeline)
		}
	}
	failed := s.page("/pipelines/jobs?status=failed")
	if len(failed.Jobs) != 8 {
		t.Errorf("status=failed: %d jobs, want 8", len(failed.Jobs))
	}
	if status, body := s.do("GET", "/jobs?status=bogus", nil); status != 400 || !strings.Contains(string(body), "Invalid status") {
		t.Errorf("bad status filter: %d %s", status, body)
	}
	if status, _ := s.do("GET", "/jobs?limit=0", nil); status != 400 {
		t.Errorf("limit=0: %d, want 400", status)
	}
}

func TestWaitReasonsAndReplacedBy(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  busy:
    queue_limit: 1
    queue_strategy: replace
    tasks: {t: {script: ["sleep 30"]}}
  delayed:
    start_delay: 30s
    queue_strategy: partitioned_replace
    queue_partition_limit: 1
    tasks: {t: {script: ["true"]}}
`, "--kill-grace", "200ms").start()
	running := s.schedule("busy", nil)
	waiting := s.schedule("busy", nil)
	_, body := s.do("GET", "/job/detail?id="+waiting, nil)
	var detail struct {
		Status string `json:"status"`
		Wait   *struct {
			Position int    `json:"position"`
			Of       int    `json:"of"`
			Reason   string `json:"reason"`
		} `json:"wait"`
	}
	if err := json.Unmarshal(body, &detail); err != nil {
		t.Fatal(err)
	}
	if detail.Status != "queued" || detail.Wait == nil || detail.Wait.Position != 1 || detail.Wait.Of != 1 || detail.Wait.Reason != "concurrency 1/1 reached" {
		t.Errorf("waiting job detail: %s", body)
	}
	replacement := s.schedule("busy", nil)
	_, body = s.do("GET", "/job/detail?id="+waiting, nil)
	if !strings.Contains(string(body), `"replacedBy":"`+replacement+`"`) || !strings.Contains(string(body), `"status":"replaced"`) {
		t.Errorf("replaced job detail lacks replacedBy: %s", body)
	}
	s.do("POST", "/job/cancel?id="+running, nil)
	s.do("POST", "/job/cancel?id="+replacement, nil)

	id, _, _ := s.trySchedule("delayed", nil, "tenant-1")
	_, body = s.do("GET", "/job/detail?id="+id, nil)
	if !strings.Contains(string(body), `"reason":"start_delay until `) || !strings.Contains(string(body), `"partition":"tenant-1"`) || !strings.Contains(string(body), `"startAfter":"`) {
		t.Errorf("delayed job detail: %s", body)
	}
	s.do("POST", "/job/cancel?id="+id, nil)
}
