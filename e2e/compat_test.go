package e2e

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

var timeFormat = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

const compatPipelines = `
pipelines:
  release:
    tasks:
      zeta:
        script: ["echo zeta"]
      alpha:
        script: ["echo alpha-out", "echo alpha-err >&2"]
      b:
        script: ["echo number {{ .n }}"]
        depends_on: [alpha]
  empty:
    tasks: {}
  failing:
    tasks:
      boom:
        script: ["exit 42"]
`

// TestCompatJobShapes checks, on the real binary, every field the PHP client and the React UI read,
// with its JSON type and presence.
func TestCompatJobShapes(t *testing.T) {
	t.Parallel()
	s := newServer(t, compatPipelines).start()

	id := s.schedule("release", map[string]any{"n": json.Number("12345678901")})
	s.waitFinished(id)

	status, body := s.do("GET", "/job/detail?id="+id, nil)
	if status != http.StatusOK {
		t.Fatalf("detail: status %d", status)
	}
	var raw map[string]any
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		t.Fatal(err)
	}
	for field, kind := range map[string]string{
		"id": "string", "pipeline": "string", "tasks": "array", "completed": "bool", "canceled": "bool",
		"errored": "bool", "created": "time", "start": "time", "end": "time", "variables": "object", "user": "string",
	} {
		checkKind(t, "job."+field, raw[field], kind)
	}
	if _, ok := raw["lastError"]; ok {
		t.Errorf("lastError present on a successful job: %v", raw["lastError"])
	}
	if got := raw["user"]; got != "e2e-user" {
		t.Errorf("user = %v, want the token's sub e2e-user", got)
	}
	if got := raw["variables"].(map[string]any)["n"]; got != json.Number("12345678901") {
		t.Errorf("variables.n = %v, want 12345678901", got)
	}
	var names []string
	for _, task := range raw["tasks"].([]any) {
		tm := task.(map[string]any)
		names = append(names, tm["name"].(string))
		for field, kind := range map[string]string{"name": "string", "status": "string", "start": "time", "end": "time", "skipped": "bool", "exitCode": "number", "errored": "bool"} {
			checkKind(t, "task."+field, tm[field], kind)
		}
	}
	if got, want := strings.Join(names, ","), "alpha,b,zeta"; got != want {
		t.Errorf("task order = %s, want %s", got, want)
	}
	j := s.job(id)
	if !j.Completed || j.Canceled || j.Errored {
		t.Errorf("flags completed/canceled/errored = %v/%v/%v, want true/false/false", j.Completed, j.Canceled, j.Errored)
	}
	if b := j.task("b"); len(b.DependsOn) != 1 || b.DependsOn[0] != "alpha" || b.Status != "done" || b.ExitCode != 0 {
		t.Errorf("task b = %+v", b)
	}
	if _, ok := raw["tasks"].([]any)[0].(map[string]any)["dependsOn"]; ok {
		t.Errorf("dependsOn present on a task without dependencies")
	}

	out, errOut := s.logs(id, "alpha")
	if out != "alpha-out\n" || errOut != "alpha-err\n" {
		t.Errorf("logs of alpha = %q / %q", out, errOut)
	}
	if out, _ := s.logs(id, "b"); out != "number 12345678901\n" {
		t.Errorf("logs of b = %q, want the number in its JSON form", out)
	}

	// An empty pipeline has an empty tasks array, never null.
	emptyID := s.schedule("empty", nil)
	s.waitFinished(emptyID)
	_, body = s.do("GET", "/job/detail?id="+emptyID, nil)
	if !strings.Contains(string(body), `"tasks":[]`) {
		t.Errorf("empty pipeline job: %s, want \"tasks\":[]", body)
	}
	if !strings.Contains(string(body), `"user":"e2e-user"`) {
		t.Errorf("empty pipeline job: %s, want user", body)
	}
	if strings.Contains(string(body), `"variables"`) {
		t.Errorf("variables present although empty: %s", body)
	}

	// A failing task: real exit code, end set, error text, job lastError.
	failID := s.schedule("failing", nil)
	f := s.waitFinished(failID)
	boom := f.task("boom")
	if boom.Status != "error" || boom.ExitCode != 42 || !boom.Errored || boom.Error != "exit status 42" || boom.End == nil {
		t.Errorf("failed task = %+v", boom)
	}
	if !f.Errored || f.Canceled || !f.Completed || f.LastError == "" {
		t.Errorf("failed job = %+v", f)
	}
}

func checkKind(t *testing.T, name string, v any, kind string) {
	t.Helper()
	ok := false
	switch kind {
	case "string":
		_, ok = v.(string)
	case "bool":
		_, ok = v.(bool)
	case "array":
		_, ok = v.([]any)
	case "object":
		_, ok = v.(map[string]any)
	case "number":
		_, ok = v.(json.Number)
	case "time":
		s, isString := v.(string)
		ok = isString && timeFormat.MatchString(s)
	}
	if !ok {
		t.Errorf("%s = %#v, want a %s", name, v, kind)
	}
}

func TestCompatRoutes(t *testing.T) {
	t.Parallel()
	s := newServer(t, compatPipelines+`
  slow:
    tasks:
      sleep:
        script: ["sleep 30"]
`).start()

	t.Run("pipelines", func(t *testing.T) {
		for _, path := range []string{"/pipelines", "/pipelines/"} {
			status, body := s.do("GET", path, nil)
			if status != 200 {
				t.Fatalf("%s: %d", path, status)
			}
			var resp struct {
				Pipelines []struct {
					Pipeline    string `json:"pipeline"`
					Schedulable *bool  `json:"schedulable"`
					Running     *bool  `json:"running"`
				} `json:"pipelines"`
			}
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range resp.Pipelines {
				names = append(names, p.Pipeline)
				if p.Schedulable == nil || p.Running == nil {
					t.Errorf("pipeline %s lacks schedulable/running: %s", p.Pipeline, body)
				}
			}
			if got := strings.Join(names, ","); got != "empty,failing,release,slow" {
				t.Errorf("%s: pipelines = %s, want sorted by name", path, got)
			}
		}
	})

	t.Run("jobs list newest first", func(t *testing.T) {
		a := s.schedule("empty", nil)
		time.Sleep(5 * time.Millisecond)
		b := s.schedule("empty", nil)
		status, body := s.do("GET", "/pipelines/jobs", nil)
		if status != 200 {
			t.Fatalf("status %d", status)
		}
		var resp struct {
			Pipelines []map[string]any `json:"pipelines"`
			Jobs      []jobJSON        `json:"jobs"`
		}
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatal(err)
		}
		if len(resp.Pipelines) != 4 {
			t.Errorf("pipelines: %d, want 4", len(resp.Pipelines))
		}
		posA, posB := -1, -1
		for i, j := range resp.Jobs {
			if j.ID == a {
				posA = i
			}
			if j.ID == b {
				posB = i
			}
		}
		if posA < 0 || posB < 0 || posB > posA {
			t.Errorf("positions: a=%d b=%d, want b (newer) before a", posA, posB)
		}
	})

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			method, path string
			body         any
			status       int
			errContains  string
		}{
			{"POST", "/pipelines/schedule", `{"pipeline":`, 400, "Error decoding JSON"},
			{"POST", "/pipelines/schedule", map[string]any{"pipeline": "nope"}, 400, "nope"},
			{"POST", "/pipelines/schedule", `{"pipeline":"release","variables":[1,2]}`, 400, "variables"},
			{"GET", "/job/detail?id=not-a-uuid", nil, 400, "Invalid job id"},
			{"GET", "/job/detail?id=6f1c7b1e-4d1a-4c2b-9a7e-0d4b8f1e2a3c", nil, 404, "Job not found"},
			{"GET", "/job/logs?id=xyz&task=a", nil, 400, "Invalid job id"},
			{"GET", "/job/logs?id=6f1c7b1e-4d1a-4c2b-9a7e-0d4b8f1e2a3c&task=a", nil, 404, "Job not found"},
			{"POST", "/job/cancel?id=bad", nil, 400, "Invalid job id"},
			{"POST", "/job/cancel?id=6f1c7b1e-4d1a-4c2b-9a7e-0d4b8f1e2a3c", nil, 404, "Job not found"},
		}
		for _, tt := range tests {
			status, body := s.do(tt.method, tt.path, tt.body)
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Errorf("%s %s: body %q is not the JSON error shape", tt.method, tt.path, body)
				continue
			}
			if status != tt.status || !strings.Contains(e.Error, tt.errContains) {
				t.Errorf("%s %s: %d %q, want %d containing %q", tt.method, tt.path, status, e.Error, tt.status, tt.errContains)
			}
		}
		id := s.schedule("release", map[string]any{"n": 1})
		s.waitFinished(id)
		if status, body := s.do("GET", "/job/logs?id="+id+"&task=nope", nil); status != 404 || !strings.Contains(string(body), "Task not found") {
			t.Errorf("unknown task: %d %s", status, body)
		}
		if status, body := s.do("GET", "/job/logs?id="+id, nil); status != 400 || !strings.Contains(string(body), "Invalid task name") {
			t.Errorf("missing task: %d %s", status, body)
		}
		// Cancel of a finished job: 409 with a JSON error (the original answered 500).
		if status, body := s.do("POST", "/job/cancel?id="+id, nil); status != 409 || !strings.Contains(string(body), `"error"`) {
			t.Errorf("cancel finished: %d %s", status, body)
		}
	})

	t.Run("cancel running returns 200 true and twice too", func(t *testing.T) {
		id := s.schedule("slow", nil)
		s.waitJob(id, 10*time.Second, "running", func(j jobJSON) bool { return j.task("sleep").Status == "running" })
		for i := 0; i < 2; i++ {
			status, body := s.do("POST", "/job/cancel?id="+id, nil)
			if status != 200 || strings.TrimSpace(string(body)) != "true" {
				t.Fatalf("cancel #%d: %d %s", i+1, status, body)
			}
		}
		j := s.waitFinished(id)
		if !j.Canceled || !j.Completed || j.Errored {
			t.Errorf("canceled job flags = %+v", j)
		}
		if st := j.task("sleep"); st.End == nil || st.Status != "canceled" {
			t.Errorf("canceled task = %+v", st)
		}
		if status, _ := s.do("POST", "/job/cancel?id="+id, nil); status != 200 {
			t.Errorf("cancel of a canceled job: %d, want 200", status)
		}
	})

	t.Run("unauthorized", func(t *testing.T) {
		for _, tok := range []string{"", "garbage", mintToken(t, "another-secret-0123456789", nil)} {
			status, body := s.doWithToken("GET", "/pipelines", nil, tok)
			if status != 401 || !strings.Contains(string(body), `"error"`) {
				t.Errorf("token %q: %d %s, want 401 JSON error", tok, status, body)
			}
		}
	})
}
