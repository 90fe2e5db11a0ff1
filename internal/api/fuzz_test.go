package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
)

// FuzzScheduleBody feeds arbitrary bodies to POST /pipelines/schedule: the answer is always 202
// or a 4xx with the JSON error shape, never a 5xx or a panic.
func FuzzScheduleBody(f *testing.F) {
	for _, seed := range []string{
		`{"pipeline":"release_it"}`,
		`{"pipeline":"release_it","variables":{"a":1,"b":"x","c":[1,2],"d":{"e":null}}}`,
		`{"pipeline":"release_it","variables":[1,2]}`,
		`{"pipeline":"release_it","variables":"x"}`,
		`{"pipeline":"release_it","queuePartition":"p"}`,
		`{"pipeline":`, `[]`, `null`, `"x"`, ``, `{"pipeline":"\u0000"}`, `{"variables":{"n":12345678901}}`,
	} {
		f.Add(seed)
	}
	e := newTestEnv(f)
	seed(e.runner)
	f.Fuzz(func(t *testing.T, body string) {
		resp, data := e.do(t, http.MethodPost, "/pipelines/schedule", body)
		switch {
		case resp.StatusCode == http.StatusAccepted:
			var out struct {
				JobID string `json:"jobId"`
			}
			if err := json.Unmarshal(data, &out); err != nil || out.JobID == "" {
				t.Fatalf("202 with body %q", data)
			}
		case resp.StatusCode >= 400 && resp.StatusCode < 500:
			var out struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(data, &out); err != nil || out.Error == "" {
				t.Fatalf("%d with body %q, want the JSON error shape", resp.StatusCode, data)
			}
		default:
			t.Fatalf("body %q: status %d %s", body, resp.StatusCode, data)
		}
	})
}

// FuzzLogRange feeds arbitrary offsets and task names to GET /job/logs: 200 with valid JSON, or
// a 4xx JSON error; never a 5xx.
func FuzzLogRange(f *testing.F) {
	for _, s := range [][3]string{
		{"build", "0", "0"}, {"build", "5", ""}, {"build", "-1", "0"}, {"build", "99999999999999999999", "0"},
		{"build", "abc", ""}, {"../../etc/passwd", "0", "0"}, {"build\x00", "", ""}, {"", "", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	e := newTestEnv(f)
	seed(e.runner)
	f.Fuzz(func(t *testing.T, task, stdoutOffset, stderrOffset string) {
		q := url.Values{"id": {jobFinishedID}, "task": {task}}
		if stdoutOffset != "" {
			q.Set("stdoutOffset", stdoutOffset)
		}
		if stderrOffset != "" {
			q.Set("stderrOffset", stderrOffset)
		}
		resp, data := e.do(t, http.MethodGet, "/job/logs?"+q.Encode(), "")
		if resp.StatusCode >= 500 {
			t.Fatalf("status %d for %q: %s", resp.StatusCode, q.Encode(), data)
		}
		if !json.Valid(data) {
			t.Fatalf("invalid JSON for %q: %q", q.Encode(), data)
		}
	})
}
