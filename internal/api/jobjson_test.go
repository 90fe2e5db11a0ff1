package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// jobJSONCases are jobs in every shape a list shows: each optional field set and unset, and
// strings that encoding/json escapes.
func jobJSONCases() []*pipeline.Job {
	t0 := time.Date(2026, 11, 28, 1, 2, 3, 456789, time.FixedZone("x", 3600))
	t1 := t0.Add(90 * time.Second)
	return []*pipeline.Job{
		{ID: "a", Pipeline: "p", Status: pipeline.JobQueued, Created: t0},
		{ID: "b", Pipeline: "p", Status: pipeline.JobQueued, Created: t0, StartAfter: t1, QueuePartition: "tenant-1",
			Variables: map[string]any{}, Tasks: []pipeline.Task{{Name: "t", Status: pipeline.TaskWaiting, DependsOn: []string{}}}},
		{ID: "c", Pipeline: "p", Status: pipeline.JobSucceeded, Created: t0, Start: &t0, End: &t1, User: "ann",
			Variables: map[string]any{"n": json.Number("12345678901"), "s": "<script>&", "nested": map[string]any{"a": []any{true, nil}}},
			Tasks: []pipeline.Task{
				{Name: "build", Status: pipeline.TaskDone, Start: &t0, End: &t1, Attempt: 1},
				{Name: "test", Status: pipeline.TaskSkipped, DependsOn: []string{"build", "lint"}},
			}},
		{ID: "d", Pipeline: "p\u2028q", Status: pipeline.JobFailed, Created: t0, Start: &t0, End: &t1, Errored: true,
			LastError: "exit \"status\" 1\n\t\\ \x00\x1f\x7f <>&", Tasks: []pipeline.Task{
				{Name: "tâsk ✓", Status: pipeline.TaskError, Start: &t0, End: &t1, ExitCode: -1, Errored: true,
					Error: "bad \xff\xfe utf8 \u2029 \b\f", Attempt: 3, Attempts: []pipeline.TaskAttempt{
						{Number: 1, Start: t0, End: t1, ExitCode: 2, Error: "exit status 2"},
						{Number: 2, Start: t0, End: t1}}},
			}},
		{ID: "e", Pipeline: "p", Status: pipeline.JobReplaced, Created: t0, End: &t1, ReplacedBy: "f"},
		{ID: "s", Pipeline: "nightly", Status: pipeline.JobQueued, Created: t0, User: "schedule:nightly/full",
			Schedule: "nightly/full", ScheduledFor: &t1, Node: "node-\"b\""},
		{ID: "s2", Pipeline: "nightly", Status: pipeline.JobQueued, Created: t0, Schedule: "nightly/<full>&"},
		{ID: "g", Pipeline: "p", Status: pipeline.JobCanceled, Created: t0, Start: &t0, End: &t1, LastError: "canceled"},
		{ID: "h", Variables: map[string]any{"z": "last", "a": json.Number("-1.5e+10"), "m": json.Number("0"), "f": 1.5,
			"i": 7, "b": false, "l": []any{"x", json.Number("2"), map[string]any{"k<": "v>"}, []any{}}, "e": map[string]any{},
			"\u00e9 ": "ÿ"}},
		{ID: "y", Created: time.Date(12345, 1, 2, 3, 4, 5, 0, time.UTC), Start: ptr(time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC))},
		{},
	}
}

func ptr[T any](v T) *T { return &v }

// TestAppendJSONTimeEveryDigit: the hand-written layout matches time.Format over dates and
// clock values with every digit.
func TestAppendJSONTimeEveryDigit(t *testing.T) {
	base := time.Date(1999, 12, 31, 23, 59, 58, 999999999, time.FixedZone("y", -7200))
	for i := range 5000 {
		tm := base.Add(time.Duration(i) * 7919 * time.Second)
		want, _ := json.Marshal(jsonTime(tm))
		if got := appendJSONTime(nil, tm); !bytes.Equal(got, want) {
			t.Fatalf("appendJSONTime(%v) = %s, want %s", tm, got, want)
		}
	}
}

// TestAppendJobJSONMatchesEncodingJSON: the list encoder writes exactly what encoding/json
// writes for the job's view (the job detail's encoding), byte for byte.
func TestAppendJobJSONMatchesEncodingJSON(t *testing.T) {
	for _, j := range jobJSONCases() {
		want, err := json.Marshal(newJobView(j))
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJobJSON(nil, j)
		if err != nil {
			t.Fatalf("appendJobJSON(%s) error: %v", j.ID, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("appendJobJSON(%s) =\n%s\nwant\n%s", j.ID, got, want)
		}
		if j.Variables != nil {
			// The same job as a list reads it: the variables as their stored JSON.
			vars, err := json.Marshal(j.Variables)
			if err != nil {
				t.Fatal(err)
			}
			raw := *j
			raw.Variables, raw.VariablesJSON = nil, string(vars)
			if got, _ := appendJobJSON(nil, &raw); !bytes.Equal(got, want) {
				t.Errorf("appendJobJSON(%s with VariablesJSON) =\n%s\nwant\n%s", j.ID, got, want)
			}
		}
	}
}

// FuzzAppendJSONString: any string, valid UTF-8 or not, encodes as encoding/json encodes it.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "<a href=\"x\">&amp;</a>", "\x00\x01\n\r\t\b\f", "\xff", "é\u2028\u2029✓", "\xe2\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}

func BenchmarkAppendJobJSON(b *testing.B) {
	t0 := time.Now()
	j := &pipeline.Job{ID: "0d9a3c1e-8a4e-4a52-9f5e-2b7f1f0e6a11", Pipeline: "bench_hist", Status: pipeline.JobSucceeded,
		Created: t0, Start: &t0, End: &t0, Tasks: []pipeline.Task{{Name: "t", Status: pipeline.TaskDone, Start: &t0, End: &t0, Attempt: 1}}}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = appendJobJSON(buf[:0], j)
	}
}

// TestLongListIsOneValidDocument: a list spanning many body chunks is one JSON document whose
// jobs are exactly their single encodings, in order; a page sets nextCursor.
func TestLongListIsOneValidDocument(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 3000
	for i := range n {
		start := t0.Add(time.Duration(i) * time.Second)
		e.runner.addJob(&pipeline.Job{ID: fmt.Sprintf("job-%05d", i), Pipeline: "p", Status: pipeline.JobSucceeded,
			Created: start, Start: &start, End: &start, Variables: map[string]any{"i": json.Number(fmt.Sprint(i))},
			Tasks: []pipeline.Task{{Name: "t", Status: pipeline.TaskDone, Start: &start, End: &start, Attempt: 1}}})
	}
	for _, target := range []string{"/pipelines/jobs", "/jobs?limit=1000"} {
		resp, body := e.do(t, http.MethodGet, target, "")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: status %d, type %q", target, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var doc struct {
			Jobs       []json.RawMessage `json:"jobs"`
			NextCursor string            `json:"nextCursor"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("%s: %d bytes are not one JSON document: %v", target, len(body), err)
		}
		want := n
		if target != "/pipelines/jobs" {
			want = 1000
		}
		if len(doc.Jobs) != want {
			t.Fatalf("%s: %d jobs, want %d", target, len(doc.Jobs), want)
		}
		for i, raw := range doc.Jobs {
			j := e.runner.jobs[fmt.Sprintf("job-%05d", n-1-i)]
			if enc, _ := json.Marshal(newJobView(j)); !bytes.Equal(raw, enc) {
				t.Fatalf("%s: job %d = %s, want %s", target, i, raw, enc)
			}
		}
		if wantCursor := map[bool]string{true: "", false: fmt.Sprintf("job-%05d", n-1000)}[want == n]; doc.NextCursor != wantCursor {
			t.Errorf("%s: nextCursor = %q, want %q", target, doc.NextCursor, wantCursor)
		}
	}
}
