package storetest

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

func testVariablesRoundTrip(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		vars map[string]any
	}{
		{"nil", nil},
		{"empty", map[string]any{}},
		{"numbers keep their form", map[string]any{
			"big":      json.Number("12345678901"),
			"huge":     json.Number("123456789012345678901234567890"),
			"float":    json.Number("1.50"),
			"exponent": json.Number("1e3"),
			"negative": json.Number("-7"),
		}},
		{"every JSON type", map[string]any{
			"string":  `quote " backslash \ newline` + "\n" + ` unicode ☃ <html>`,
			"bool":    true,
			"null":    nil,
			"list":    []any{json.Number("1"), "two", false, nil, []any{}, map[string]any{}},
			"nested":  map[string]any{"id": json.Number("12345678901"), "tags": []any{"a", "b"}},
			"empty":   "",
			"unicode": "日本語",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, open)
			d := testDefinition("p", 1)
			j := newJob(d, "j1", at(0))
			j.Variables = tt.vars
			f.admit(d, j, at(0))
			if got := f.job("j1").Variables; !reflect.DeepEqual(got, tt.vars) {
				t.Errorf("Job() Variables = %#v, want %#v", got, tt.vars)
			}
			if got := f.list(store.JobQuery{})[0].Variables; !reflect.DeepEqual(got, tt.vars) {
				t.Errorf("Jobs() Variables = %#v, want %#v", got, tt.vars)
			}
		})
	}
}

// testTimesRoundTrip stores times of other zones with nanoseconds: they come back as the same
// instants, in UTC.
func testTimesRoundTrip(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	created := time.Date(2024, 2, 29, 23, 59, 59, 999999999, zone)
	startAfter := created.Add(1500 * time.Millisecond)
	now := time.Date(2024, 3, 1, 1, 2, 3, 1, zone)
	end := now.Add(time.Hour + time.Nanosecond)
	d := testDefinition("p", 1, startDelay(1500*time.Millisecond))
	j := newJob(d, "j1", created)
	f.admit(d, j, now)
	res := f.claim(d, startAfter)
	if len(res.Started) != 1 {
		t.Fatalf("Claim() started %v, want [j1]", jobIDs(res.Started))
	}
	taskStart := time.Now() // with a monotonic reading, which must not matter
	f.updateTask("j1", pipeline.Task{Name: "build", Status: pipeline.TaskDone, Start: &taskStart, End: &end})
	f.finish("j1", pipeline.JobSucceeded, end)

	for _, got := range []*pipeline.Job{f.job("j1"), f.list(store.JobQuery{})[0]} {
		wantTime(t, "Created", got.Created, created)
		wantTime(t, "StartAfter", got.StartAfter, startAfter)
		wantTimePtr(t, "Start", got.Start, &startAfter)
		wantTimePtr(t, "End", got.End, &end)
		wantTimePtr(t, "task Start", got.Tasks[0].Start, &taskStart)
		wantTimePtr(t, "task End", got.Tasks[0].End, &end)
		wantTimePtr(t, "waiting task Start", got.Tasks[1].Start, nil)
	}
	// Zero times stay zero.
	d0 := testDefinition("q", 1)
	f.admitStarted(d0, at(0), "j2")
	wantTime(t, "StartAfter without delay", f.job("j2").StartAfter, time.Time{})
}

func testDefinitionRoundTrip(t *testing.T, open func(t *testing.T) store.Store) {
	f := newFixture(t, open)
	limit := 3
	d := &pipeline.Definition{
		Name:                             "release",
		SourceFile:                       "ci/pipelines.yml",
		Concurrency:                      2,
		QueueLimit:                       &limit,
		QueueStrategy:                    pipeline.QueueReplace,
		StartDelay:                       1500 * time.Millisecond,
		ContinueRunningTasksAfterFailure: true,
		RetentionPeriod:                  48 * time.Hour,
		RetentionCount:                   10,
		Timeout:                          time.Hour,
		Env:                              map[string]string{"GOFLAGS": "-mod=mod", "EMPTY": ""},
		Tasks: map[string]pipeline.TaskDefinition{
			"build": {Name: "build", Script: []string{"make build", "echo {{ .version }}"}, Env: map[string]string{"CGO_ENABLED": "0"}},
			"test": {Name: "test", Script: []string{"go test ./..."}, DependsOn: []string{"build"}, AllowFailure: true,
				Timeout: 10 * time.Minute, Retry: &pipeline.RetryPolicy{Attempts: 3, Delay: time.Second, Backoff: 1.5, MaxDelay: time.Minute}},
		},
		OnError: &pipeline.TaskDefinition{Name: pipeline.OnErrorTaskName, Script: []string{"notify {{ .failedTaskName }}"}},
	}
	f.admit(d, newJob(d, "j1", at(0)), at(0))
	// A job without a snapshot stays without one.
	plain := testDefinition("plain", 1)
	noDef := newJob(plain, "j2", at(1))
	noDef.Definition = nil
	f.admit(plain, noDef, at(1))

	if got := f.job("j1").Definition; !reflect.DeepEqual(got, d) {
		t.Errorf("Job() Definition = %+v, want %+v", got, d)
	}
	if got := f.job("j2").Definition; got != nil {
		t.Errorf("Job() Definition = %+v, want nil", got)
	}
	// Lists leave the definition out.
	jobs := f.list(store.JobQuery{Pipeline: "release"})
	if len(jobs) != 1 || jobs[0].Definition != nil {
		t.Errorf("Jobs() = %d jobs, Definition %+v; want 1 job without definition", len(jobs), jobs[0].Definition)
	}
}
