package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

var apiTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

const (
	jobRunningID  = "0b5a7b2e-6f0a-4c53-9b1e-4d7e2a0c1111"
	jobFinishedID = "0b5a7b2e-6f0a-4c53-9b1e-4d7e2a0c2222"
	jobEmptyID    = "0b5a7b2e-6f0a-4c53-9b1e-4d7e2a0c3333"
	jobCanceledID = "0b5a7b2e-6f0a-4c53-9b1e-4d7e2a0c4444"
	unknownJobID  = "0b5a7b2e-6f0a-4c53-9b1e-4d7e2a0c9999"
)

var (
	// created has fractions and a zone other than UTC: the API must print neither.
	created = time.Date(2026, 11, 28, 2, 20, 21, 987654321, time.FixedZone("CET", 3600))
	started = created.Add(1500 * time.Millisecond)
	ended   = created.Add(90*time.Second + 300*time.Millisecond)
)

// seed fills the fake runner with pipelines and jobs of every shape the API has to render.
func seed(f *fakeRunner) {
	f.pipelines = []pipeline.Info{
		{Name: "deploy", RunningJobs: 2, Schedulable: false},
		{Name: "release_it", RunningJobs: 0, Schedulable: true},
	}
	f.addJob(&pipeline.Job{
		ID:        jobRunningID,
		Pipeline:  "release_it",
		Status:    pipeline.JobRunning,
		Variables: map[string]any{"big": json.Number("12345678901"), "name": "x", "list": map[string]any{"0": "a"}},
		User:      "alice",
		Created:   created,
		Start:     &started,
		Tasks: []pipeline.Task{
			{Name: "build", Status: pipeline.TaskRunning, Start: &started},
			{Name: "test", DependsOn: []string{"build"}, Status: pipeline.TaskWaiting},
		},
	})
	f.addJob(&pipeline.Job{
		ID:        jobFinishedID,
		Pipeline:  "deploy",
		Status:    pipeline.JobFailed,
		Created:   created.Add(-time.Hour),
		Start:     &started,
		End:       &ended,
		LastError: "task build failed",
		Errored:   true,
		Tasks: []pipeline.Task{
			{Name: "build", Status: pipeline.TaskError, Start: &started, End: &ended, ExitCode: 42, Errored: true, Error: "exit status 42"},
			{Name: "ship", DependsOn: []string{"build"}, Status: pipeline.TaskSkipped},
			{Name: pipeline.OnErrorTaskName, Status: pipeline.TaskDone, Start: &ended, End: &ended},
		},
	})
	f.addJob(&pipeline.Job{
		ID:       jobEmptyID,
		Pipeline: "empty",
		Status:   pipeline.JobQueued,
		Created:  created.Add(-2 * time.Hour),
	})
	f.addJob(&pipeline.Job{
		ID:       jobCanceledID,
		Pipeline: "deploy",
		Status:   pipeline.JobCanceled,
		Created:  created.Add(-3 * time.Hour),
		End:      &ended,
	})
}

func TestRouteTable(t *testing.T) {
	t.Parallel()
	routes := func(app *fiber.App) []string {
		var got []string
		for _, r := range app.GetRoutes(true) {
			got = append(got, r.Method+" "+r.Path)
		}
		slices.Sort(got)
		return got
	}
	// The compatible routes must all be there; pprof only with profiling. (New routes are
	// covered by the token matrix, which enumerates the app's routes.)
	compat := []string{
		"GET /job/detail", "GET /job/logs", "GET /pipelines", "GET /pipelines/jobs",
		"POST /job/cancel", "POST /pipelines/schedule",
	}
	pprofRoutes := []string{"GET /debug/pprof/*", "POST /debug/pprof/symbol"}
	plain := routes(newTestEnv(t).app)
	for _, r := range compat {
		if !slices.Contains(plain, r) {
			t.Errorf("route %s missing: %q", r, plain)
		}
	}
	for _, r := range pprofRoutes {
		if slices.Contains(plain, r) {
			t.Errorf("route %s registered without --enable-profiling", r)
		}
	}
	withPprof := routes(newTestEnv(t, func(c *Config) { c.EnableProfiling = true }).app)
	for _, r := range pprofRoutes {
		if !slices.Contains(withPprof, r) {
			t.Errorf("route %s missing with profiling: %q", r, withPprof)
		}
	}
}

func TestPipelines(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	for _, path := range []string{"/pipelines", "/pipelines/"} {
		resp, body := e.do(t, http.MethodGet, path, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d, body %s", path, resp.StatusCode, body)
		}
		want := `{"pipelines":[{"pipeline":"deploy","schedulable":false,"running":true},{"pipeline":"release_it","schedulable":true,"running":false}]}`
		if string(body) != want {
			t.Errorf("GET %s body =\n%s\nwant\n%s", path, body, want)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type = %q", ct)
		}
	}
}

func TestPipelinesEmptyIsArray(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	_, body := e.do(t, http.MethodGet, "/pipelines", "")
	if string(body) != `{"pipelines":[]}` {
		t.Errorf("body = %s", body)
	}
	_, body = e.do(t, http.MethodGet, "/pipelines/jobs", "")
	if string(body) != `{"pipelines":[],"jobs":[]}` {
		t.Errorf("body = %s", body)
	}
}

// checkJobShape checks the types and presence of every field the PHP client and the UI read.
func checkJobShape(t *testing.T, job map[string]any) {
	t.Helper()
	for _, key := range []string{"id", "pipeline", "user"} {
		if _, ok := job[key].(string); !ok {
			t.Errorf("job %v: %s = %#v, want a string", job["id"], key, job[key])
		}
	}
	for _, key := range []string{"completed", "canceled", "errored"} {
		if _, ok := job[key].(bool); !ok {
			t.Errorf("job %v: %s = %#v, want a bool", job["id"], key, job[key])
		}
	}
	if s, ok := job["created"].(string); !ok || !apiTimeRE.MatchString(s) {
		t.Errorf("job %v: created = %#v, want a time string", job["id"], job["created"])
	}
	checkOptionalTimes(t, job)
	if v, ok := job["variables"]; ok {
		if _, ok := v.(map[string]any); !ok {
			t.Errorf("job %v: variables = %#v, want an object", job["id"], v)
		}
	}
	if v, ok := job["lastError"]; ok {
		if s, ok := v.(string); !ok || s == "" {
			t.Errorf("job %v: lastError = %#v, want a non-empty string or no key", job["id"], v)
		}
	}
	tasks, ok := job["tasks"].([]any)
	if !ok {
		t.Fatalf("job %v: tasks = %#v, want an array", job["id"], job["tasks"])
	}
	for _, raw := range tasks {
		task, ok := raw.(map[string]any)
		if !ok {
			t.Fatalf("task %#v is not an object", raw)
		}
		if _, ok := task["name"].(string); !ok {
			t.Errorf("task name = %#v", task["name"])
		}
		if s, ok := task["status"].(string); !ok || !slices.Contains([]string{"waiting", "running", "skipped", "done", "error", "canceled"}, s) {
			t.Errorf("task status = %#v", task["status"])
		}
		for _, key := range []string{"skipped", "errored"} {
			if _, ok := task[key].(bool); !ok {
				t.Errorf("task %v: %s = %#v, want a bool", task["name"], key, task[key])
			}
		}
		n, ok := task["exitCode"].(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			t.Errorf("task %v: exitCode = %#v, want an int", task["name"], task["exitCode"])
		}
		checkOptionalTimes(t, task)
		if v, ok := task["dependsOn"]; ok {
			if list, ok := v.([]any); !ok || len(list) == 0 {
				t.Errorf("task %v: dependsOn = %#v, want a non-empty array or no key", task["name"], v)
			}
		}
	}
}

func checkOptionalTimes(t *testing.T, obj map[string]any) {
	t.Helper()
	for _, key := range []string{"start", "end"} {
		v, present := obj[key]
		if !present {
			t.Errorf("%v: key %s missing, want null or a time", obj, key)
			continue
		}
		if v == nil {
			continue
		}
		if s, ok := v.(string); !ok || !apiTimeRE.MatchString(s) {
			t.Errorf("%v: %s = %#v, want null or a time like 2026-11-28T01:20:21Z", obj["id"], key, v)
		}
	}
}

func TestPipelinesJobs(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	resp, body := e.do(t, http.MethodGet, "/pipelines/jobs", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	got := decodeJSON(t, body)
	if p, ok := got["pipelines"].([]any); !ok || len(p) != 2 {
		t.Errorf("pipelines = %#v", got["pipelines"])
	}
	jobs, ok := got["jobs"].([]any)
	if !ok || len(jobs) != 4 {
		t.Fatalf("jobs = %#v, want 4", got["jobs"])
	}
	var ids []string
	for _, j := range jobs {
		job := j.(map[string]any)
		checkJobShape(t, job)
		ids = append(ids, job["id"].(string))
	}
	if want := []string{jobRunningID, jobFinishedID, jobEmptyID, jobCanceledID}; !slices.Equal(ids, want) {
		t.Errorf("job order = %v, want newest first %v", ids, want)
	}
	if len(e.runner.queries) != 1 || !isZeroQuery(e.runner.queries[0]) {
		t.Errorf("Jobs queries = %+v, want one empty JobQuery", e.runner.queries)
	}
}

func isZeroQuery(q store.JobQuery) bool {
	return q.Pipeline == "" && q.Statuses == nil && q.Limit == 0 && q.Before == "" && !q.WithoutTasks
}

func TestJobDetailExactShape(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)

	tests := []struct {
		id   string
		want string
	}{
		{
			id: jobRunningID,
			want: `{"id":"` + jobRunningID + `","pipeline":"release_it","tasks":[` +
				`{"name":"build","status":"running","start":"2026-11-28T01:20:23Z","end":null,"skipped":false,"exitCode":0,"errored":false,"attempt":1},` +
				`{"name":"test","dependsOn":["build"],"status":"waiting","start":null,"end":null,"skipped":false,"exitCode":0,"errored":false,"attempt":1}],` +
				`"completed":false,"canceled":false,"errored":false,"created":"2026-11-28T01:20:21Z","start":"2026-11-28T01:20:23Z","end":null,` +
				`"variables":{"big":12345678901,"list":{"0":"a"},"name":"x"},"user":"alice","status":"running"}`,
		},
		{
			id: jobFinishedID,
			want: `{"id":"` + jobFinishedID + `","pipeline":"deploy","tasks":[` +
				`{"name":"build","status":"error","start":"2026-11-28T01:20:23Z","end":"2026-11-28T01:21:52Z","skipped":false,"exitCode":42,"errored":true,"error":"exit status 42","attempt":1},` +
				`{"name":"ship","dependsOn":["build"],"status":"skipped","start":null,"end":null,"skipped":true,"exitCode":0,"errored":false,"attempt":1},` +
				`{"name":"on_error","status":"done","start":"2026-11-28T01:21:52Z","end":"2026-11-28T01:21:52Z","skipped":false,"exitCode":0,"errored":false,"attempt":1}],` +
				`"completed":true,"canceled":false,"errored":true,"created":"2026-11-28T00:20:21Z","start":"2026-11-28T01:20:23Z","end":"2026-11-28T01:21:52Z",` +
				`"lastError":"task build failed","user":"","status":"failed"}`,
		},
		{
			id: jobEmptyID,
			want: `{"id":"` + jobEmptyID + `","pipeline":"empty","tasks":[],"completed":false,"canceled":false,"errored":false,` +
				`"created":"2026-11-27T23:20:21Z","start":null,"end":null,"user":"","status":"queued",` +
				`"wait":{"position":1,"of":1,"partition":"","reason":"concurrency 1/1 reached"}}`,
		},
		{
			id: jobCanceledID,
			want: `{"id":"` + jobCanceledID + `","pipeline":"deploy","tasks":[],"completed":false,"canceled":true,"errored":false,` +
				`"created":"2026-11-27T22:20:21Z","start":null,"end":"2026-11-28T01:21:52Z","user":"","status":"canceled"}`,
		},
	}
	for _, tt := range tests {
		resp, body := e.do(t, http.MethodGet, "/job/detail?id="+tt.id, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /job/detail?id=%s: status %d, body %s", tt.id, resp.StatusCode, body)
		}
		if string(body) != tt.want {
			t.Errorf("GET /job/detail?id=%s body =\n%s\nwant\n%s", tt.id, body, tt.want)
		}
		checkJobShape(t, decodeJSON(t, body))
	}
}

func TestJobDetailErrors(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	tests := []struct {
		target string
		status int
		msg    string
	}{
		{"/job/detail", 400, "Invalid job id"},
		{"/job/detail?id=", 400, "Invalid job id"},
		{"/job/detail?id=42", 400, "Invalid job id"},
		{"/job/detail?id=../../etc/passwd", 400, "Invalid job id"},
		{"/job/detail?id=%00", 400, "Invalid job id"},
		{"/job/detail?id=" + strings.Repeat("a", 10000), 400, "Invalid job id"},
		{"/job/detail?id=" + jobRunningID + strings.Repeat("0", 100), 400, "Invalid job id"},
		{"/job/detail?id=" + unknownJobID, 404, "Job not found"},
	}
	for _, tt := range tests {
		resp, body := e.do(t, http.MethodGet, tt.target, "")
		wantError(t, resp, body, tt.status, tt.msg)
	}
}

func TestJobDetailCanonicalID(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	resp, body := e.do(t, http.MethodGet, "/job/detail?id="+strings.ToUpper(jobRunningID), "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upper-case id: status %d, body %s", resp.StatusCode, body)
	}
}

func TestSchedule(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)

	resp, body := e.do(t, http.MethodPost, "/pipelines/schedule",
		`{"pipeline":"release_it","variables":{"big":12345678901,"f":1.50,"e":1e3,"s":"x","nested":{"n":7},"list":{"0":"a","1":"b"}},"queuePartition":"p1","unknown":true}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status = %d, want exactly 202 (body %s)", resp.StatusCode, body)
	}
	got := decodeJSON(t, body)
	if len(got) != 1 {
		t.Errorf("body %s, want only jobId", body)
	}
	id, _ := got["jobId"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("jobId = %q, want a UUID v4", id)
	}
	if len(e.runner.scheduled) != 1 {
		t.Fatalf("Schedule calls = %d, want 1", len(e.runner.scheduled))
	}
	req := e.runner.scheduled[0]
	if req.Pipeline != "release_it" || req.QueuePartition != "p1" || req.User != "alice" {
		t.Errorf("ScheduleRequest = %+v", req)
	}
	// Numbers keep their form: they are json.Number, and re-encode as written.
	for key, want := range map[string]string{"big": "12345678901", "f": "1.50", "e": "1e3"} {
		n, ok := req.Variables[key].(json.Number)
		if !ok || n.String() != want {
			t.Errorf("variables[%s] = %#v, want json.Number(%s)", key, req.Variables[key], want)
		}
	}
	nested, _ := req.Variables["nested"].(map[string]any)
	if n, ok := nested["n"].(json.Number); !ok || n != "7" {
		t.Errorf("nested number = %#v, want json.Number(7)", nested["n"])
	}
	out, err := json.Marshal(req.Variables)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"big":12345678901`) {
		t.Errorf("variables re-encode as %s, want big as 12345678901", out)
	}
}

func TestScheduleNumbersRoundTrip(t *testing.T) {
	t.Parallel()
	// What the runner stores from a schedule request comes back unchanged in the job.
	e := newTestEnv(t)
	seed(e.runner)
	resp, body := e.do(t, http.MethodPost, "/pipelines/schedule", `{"pipeline":"release_it","variables":{"n":12345678901}}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	jobID := decodeJSON(t, body)["jobId"].(string)
	e.runner.addJob(&pipeline.Job{ID: jobID, Pipeline: "release_it", Status: pipeline.JobQueued, Created: created, Variables: e.runner.scheduled[0].Variables})
	_, body = e.do(t, http.MethodGet, "/job/detail?id="+jobID, "")
	if !strings.Contains(string(body), `"variables":{"n":12345678901}`) {
		t.Errorf("job detail %s, want variables {\"n\":12345678901}", body)
	}
}

func TestScheduleUserFromToken(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	for _, tc := range []struct {
		claims map[string]any
		want   string
	}{
		{map[string]any{"sub": "bob"}, "bob"},
		{map[string]any{}, ""},
		{map[string]any{"sub": 17}, ""},
	} {
		req := httptest.NewRequest(http.MethodPost, "/pipelines/schedule", strings.NewReader(`{"pipeline":"release_it"}`))
		req.Header.Set("Authorization", "Bearer "+mintToken(t, tc.claims))
		resp, body := e.send(t, req)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("claims %v: status %d, body %s", tc.claims, resp.StatusCode, body)
		}
		last := e.runner.scheduled[len(e.runner.scheduled)-1]
		if last.User != tc.want {
			t.Errorf("claims %v: user = %q, want %q", tc.claims, last.User, tc.want)
		}
		if last.Variables != nil {
			t.Errorf("claims %v: variables = %#v, want nil", tc.claims, last.Variables)
		}
	}
}

func TestScheduleErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		body   string
		runErr error
		status int
		msg    string
	}{
		{name: "malformed", body: `{"pipeline":`, status: 400, msg: "Error decoding JSON: unexpected EOF"},
		{name: "empty body", body: ``, status: 400, msg: "Error decoding JSON: EOF"},
		{name: "not an object", body: `[1,2]`, status: 400},
		{name: "pipeline not a string", body: `{"pipeline":1}`, status: 400},
		{name: "variables list", body: `{"pipeline":"release_it","variables":["a"]}`, status: 400, msg: "Error decoding JSON: variables must be an object"},
		{name: "variables string", body: `{"pipeline":"release_it","variables":"a=b"}`, status: 400, msg: "Error decoding JSON: variables must be an object"},
		{name: "variables number", body: `{"pipeline":"release_it","variables":1}`, status: 400, msg: "Error decoding JSON: variables must be an object"},
		{name: "unknown pipeline", body: `{"pipeline":"nope"}`, status: 400, msg: `pipeline "nope" not found`},
		{name: "queue full", body: `{"pipeline":"release_it"}`, runErr: fmt.Errorf("pipeline release_it: %w (limit 2)", pipeline.ErrQueueFull), status: 400, msg: "pipeline release_it: queue full (limit 2)"},
		{name: "no queue", body: `{"pipeline":"release_it"}`, runErr: pipeline.ErrNoQueue, status: 400, msg: "no wait list"},
		{name: "shutting down", body: `{"pipeline":"release_it"}`, runErr: fmt.Errorf("schedule: %w", pipeline.ErrShuttingDown), status: 503, msg: "Server is shutting down"},
		{name: "internal", body: `{"pipeline":"release_it"}`, runErr: errBoom, status: 500, msg: "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			seed(e.runner)
			e.runner.scheduleErr = tt.runErr
			resp, body := e.do(t, http.MethodPost, "/pipelines/schedule", tt.body)
			wantError(t, resp, body, tt.status, tt.msg)
			if tt.status == 400 && tt.runErr == nil && tt.msg == "" {
				if m := decodeJSON(t, body)["error"].(string); !strings.HasPrefix(m, "Error decoding JSON: ") {
					t.Errorf("error = %q, want the prefix Error decoding JSON", m)
				}
			}
		})
	}
}

// TestScheduleDatabaseUnavailable: a schedule request that fails because the database cannot be
// reached gets 503 with an error that says what to do, and is logged as a warning, not as an
// internal error.
func TestScheduleDatabaseUnavailable(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	e.runner.scheduleErr = fmt.Errorf("admit: %w: dial tcp: connection refused", store.ErrUnavailable)
	resp, body := e.do(t, http.MethodPost, "/pipelines/schedule", `{"pipeline":"release_it"}`)
	wantError(t, resp, body, http.StatusServiceUnavailable, UnavailableMessage)
	logs := e.logs.String()
	if !strings.Contains(logs, "database unavailable") || strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("logs = %s; want one warning about the database, no error", logs)
	}
}

func TestScheduleAcceptsNullVariables(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	for _, body := range []string{`{"pipeline":"release_it","variables":null}`, `{"pipeline":"release_it","variables":{}}`} {
		resp, out := e.do(t, http.MethodPost, "/pipelines/schedule", body)
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("%s: status %d, body %s", body, resp.StatusCode, out)
		}
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)

	tests := []struct {
		name   string
		target string
		status int
		msg    string
	}{
		{name: "running", target: "/job/cancel?id=" + jobRunningID, status: 200},
		{name: "again", target: "/job/cancel?id=" + jobRunningID, status: 200},
		{name: "already canceled", target: "/job/cancel?id=" + jobCanceledID, status: 200},
		{name: "finished", target: "/job/cancel?id=" + jobFinishedID, status: 409, msg: "Job already finished"},
		{name: "unknown", target: "/job/cancel?id=" + unknownJobID, status: 404, msg: "Job not found"},
		{name: "no id", target: "/job/cancel", status: 400, msg: "Invalid job id"},
		{name: "bad id", target: "/job/cancel?id=nope", status: 400, msg: "Invalid job id"},
	}
	for _, tt := range tests {
		resp, body := e.do(t, http.MethodPost, tt.target, `{"ignored": true}`)
		if tt.status == 200 {
			if resp.StatusCode != http.StatusOK || string(body) != "true" {
				t.Errorf("%s: status %d body %q, want exactly 200 true", tt.name, resp.StatusCode, body)
			}
			continue
		}
		wantError(t, resp, body, tt.status, tt.msg)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	resp, body := e.do(t, http.MethodGet, "/nope", "")
	wantError(t, resp, body, 404, "")
	resp, body = e.do(t, http.MethodGet, "/pipelines/schedule", "")
	wantError(t, resp, body, 405, "")
	resp, body = e.do(t, http.MethodGet, "/debug/pprof/", "")
	wantError(t, resp, body, 404, "")
}

func TestInternalErrorIsLoggedNotShown(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.runner.jobErr = errBoom
	resp, body := e.do(t, http.MethodGet, "/job/detail?id="+jobRunningID, "")
	wantError(t, resp, body, 500, "internal error")
	if strings.Contains(string(body), "disk on fire") {
		t.Errorf("body %s shows the internal cause", body)
	}
	if !strings.Contains(e.logs.String(), "disk on fire") {
		t.Errorf("logs do not contain the cause:\n%s", e.logs.String())
	}
}

func TestRequestLogLine(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	seed(e.runner)
	e.do(t, http.MethodGet, "/job/detail?id="+unknownJobID, "")

	var found bool
	for _, rec := range e.logs.logLines(t) {
		if rec["msg"] != "http request" {
			continue
		}
		found = true
		if rec["level"] != "INFO" || rec["method"] != "GET" || rec["path"] != "/job/detail" || rec["status"] != float64(404) {
			t.Errorf("log record = %v", rec)
		}
		if _, ok := rec["duration_ms"].(float64); !ok {
			t.Errorf("duration_ms = %#v", rec["duration_ms"])
		}
		if _, ok := rec["remote"].(string); !ok {
			t.Errorf("remote = %#v", rec["remote"])
		}
	}
	if !found {
		t.Fatalf("no request log line in:\n%s", e.logs.String())
	}
	if strings.Contains(e.logs.String(), e.token) || strings.Contains(e.logs.String(), string(testSecret)) {
		t.Errorf("logs contain the token or the secret:\n%s", e.logs.String())
	}
}

func TestPanicBecomes500(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.app.Get("/boom", func(*fiber.Ctx) error { panic("kaboom") })
	resp, body := e.do(t, http.MethodGet, "/boom", "")
	wantError(t, resp, body, 500, "internal error")
	if !strings.Contains(e.logs.String(), "kaboom") {
		t.Errorf("panic not logged:\n%s", e.logs.String())
	}
}

func TestErrorStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err    error
		status int
		msg    string
	}{
		{badRequest("Invalid job id"), 400, "Invalid job id"},
		{&scheduleError{pipeline: "x", err: fmt.Errorf("a: %w", pipeline.ErrUnknownPipeline)}, 400, `pipeline "x" not found`},
		{pipeline.ErrUnknownPipeline, 400, "pipeline not found"},
		{fmt.Errorf("p: %w", pipeline.ErrQueueFull), 400, "p: queue full"},
		{pipeline.ErrNoQueue, 400, "no wait list"},
		{fmt.Errorf("x: %w", pipeline.ErrJobNotFound), 404, "Job not found"},
		{fmt.Errorf("x: %w", pipeline.ErrTaskNotFound), 404, "Task not found"},
		{fmt.Errorf("x: %w", pipeline.ErrJobFinished), 409, "Job already finished"},
		{fmt.Errorf("x: %w", pipeline.ErrShuttingDown), 503, "Server is shutting down"},
		{fmt.Errorf("admit: %w", store.ErrLeaseLost), 503, "This node has lost its lease on the database and stores nothing until it has a new one: retry in a moment or through another node"},
		{fmt.Errorf("admit: %w", store.ErrUnavailable), 503, "The job database is unreachable: nothing was stored; retry in a moment"},
		{fiber.ErrRequestEntityTooLarge, 413, "Request Entity Too Large"},
		{fiber.ErrNotFound, 404, "Not Found"},
		{fiber.ErrMethodNotAllowed, 405, "Method Not Allowed"},
		{fiber.NewError(502, "upstream secret detail"), 502, "internal error"},
		{errors.New("secret detail"), 500, "internal error"},
	}
	for _, tt := range tests {
		status, msg := errorStatus(tt.err)
		if status != tt.status || msg != tt.msg {
			t.Errorf("errorStatus(%v) = %d %q, want %d %q", tt.err, status, msg, tt.status, tt.msg)
		}
	}
}

func TestNewPanicsWithoutSecret(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("New with an empty secret did not panic")
		}
	}()
	New(Config{}, newFakeRunner())
}
