package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

var (
	schedT0 = time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	// fileSchedule is declared in a pipelines file, paused with a note, and fired once.
	fileSchedule = pipeline.ScheduleView{
		Spec: pipeline.ScheduleSpec{Pipeline: "nightly", Name: "full", Cron: "0 3 * * *", Timezone: "Europe/Berlin",
			Variables: map[string]any{"mode": "full", "n": json.Number("12345678901")}, Jitter: 30 * time.Second,
			Missed: pipeline.MissedOnce, CatchupWindow: 24 * time.Hour, Overlap: pipeline.OverlapSkip,
			Source: pipeline.SourceFile, SourceFile: "pipelines.yml", SourceLine: 12},
		Paused: true, PauseNote: "db migration", Description: "every day at 03:00, Europe/Berlin",
		Next: []time.Time{schedT0.Add(time.Hour), schedT0.Add(25 * time.Hour)},
		Last: &pipeline.ScheduleFiring{ScheduleID: "nightly/full", FireTime: schedT0.Add(-23 * time.Hour), Kind: pipeline.FiringCron,
			Outcome: pipeline.FiringStarted, JobID: "0d9a3c1e-8a4e-4a52-9f5e-2b7f1f0e6a11", JobStatus: pipeline.JobSucceeded},
	}
	// apiSchedule was created through the API and never fired.
	apiSchedule = pipeline.ScheduleView{
		Spec: pipeline.ScheduleSpec{Pipeline: "build", Name: "hourly", Cron: "@hourly", Missed: pipeline.MissedSkip,
			CatchupWindow: 90 * time.Minute, Overlap: pipeline.OverlapAllow, Source: pipeline.SourceAPI},
		Description: "every hour, UTC",
		Next:        []time.Time{schedT0.Add(time.Hour)},
	}
)

func newScheduleEnv(t *testing.T) *testEnv {
	e := newTestEnv(t)
	e.schedules.add(fileSchedule)
	e.schedules.add(apiSchedule)
	return e
}

// TestListSchedulesInTheIssuesShape: GET /schedules writes every schedule with the issue's
// JSON names, durations as written, the zone "UTC" when none was given, and the last firing.
func TestListSchedulesInTheIssuesShape(t *testing.T) {
	t.Parallel()
	e := newScheduleEnv(t)
	resp, body := e.doChecked(t, http.MethodGet, "/schedules", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	want := `{"schedules":[` +
		`{"id":"build/hourly","pipeline":"build","name":"hourly","cron":"@hourly","timezone":"UTC","description":"every hour, UTC",` +
		`"variables":{},"queuePartition":"","jitter":"0s","missed":"skip","catchupWindow":"1h30m","overlap":"allow","source":"api",` +
		`"paused":false,"pauseNote":"","next":["2026-12-07T03:00:00Z"],"last":null},` +
		`{"id":"nightly/full","pipeline":"nightly","name":"full","cron":"0 3 * * *","timezone":"Europe/Berlin",` +
		`"description":"every day at 03:00, Europe/Berlin","variables":{"mode":"full","n":12345678901},"queuePartition":"",` +
		`"jitter":"30s","missed":"once","catchupWindow":"24h","overlap":"skip","source":"file","sourceFile":"pipelines.yml","sourceLine":12,` +
		`"paused":true,"pauseNote":"db migration","next":["2026-12-07T03:00:00Z","2026-12-08T03:00:00Z"],` +
		`"last":{"time":"2026-12-06T03:00:00Z","kind":"cron","outcome":"started","jobId":"0d9a3c1e-8a4e-4a52-9f5e-2b7f1f0e6a11","status":"succeeded"}}]}`
	if string(body) != want {
		t.Errorf("body =\n%s\nwant\n%s", body, want)
	}

	_, body = e.doChecked(t, http.MethodGet, "/schedules?pipeline=nightly", "")
	if !strings.Contains(string(body), `"id":"nightly/full"`) || strings.Contains(string(body), "build/hourly") {
		t.Errorf("?pipeline=nightly: %s", body)
	}
	_, body = e.doChecked(t, http.MethodGet, "/schedules?pipeline=none", "")
	if string(body) != `{"schedules":[]}` {
		t.Errorf("no schedules: %s, want an empty array", body)
	}
}

// TestGetScheduleByIDWithItsSlash: the ID's slash is a path separator, or escaped in one segment.
func TestGetScheduleByIDWithItsSlash(t *testing.T) {
	t.Parallel()
	e := newScheduleEnv(t)
	for _, target := range []string{"/schedules/nightly/full", "/schedules/nightly%2Ffull", "/schedules/nightly%2ffull"} {
		resp, body := e.doChecked(t, http.MethodGet, target, "")
		if resp.StatusCode != http.StatusOK || decodeJSON(t, body)["id"] != "nightly/full" {
			t.Errorf("GET %s: %d %s", target, resp.StatusCode, body)
		}
	}
	resp, body := e.doChecked(t, http.MethodGet, "/schedules/nightly/none", "")
	wantError(t, resp, body, http.StatusNotFound, `schedule "nightly/none": schedule not found`)
	resp, body = e.do(t, http.MethodGet, "/schedules/noslash", "")
	wantError(t, resp, body, http.StatusNotFound, "")
}

// TestCreateSchedule: POST /schedules hands the scheduler an API spec with the durations and
// variables (numbers kept exact) of the body, and answers 201 with the schedule.
func TestCreateSchedule(t *testing.T) {
	t.Parallel()
	e := newScheduleEnv(t)
	resp, body := e.doChecked(t, http.MethodPost, "/schedules", `{"pipeline":"build","name":"nightly","cron":"30 2 * * *",
		"timezone":"America/New_York","variables":{"n":12345678901,"s":"x"},"queuePartition":"p1","jitter":"1m",
		"missed":"all","catchupWindow":"48h0m0s","overlap":"skip"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := decodeJSON(t, body)
	if got["id"] != "build/nightly" || got["jitter"] != "1m" || got["catchupWindow"] != "48h" || got["timezone"] != "America/New_York" {
		t.Errorf("created: %s", body)
	}
	want := pipeline.ScheduleSpec{Pipeline: "build", Name: "nightly", Cron: "30 2 * * *", Timezone: "America/New_York",
		Variables: map[string]any{"n": json.Number("12345678901"), "s": "x"}, QueuePartition: "p1", Jitter: time.Minute,
		Missed: pipeline.MissedAll, CatchupWindow: 48 * time.Hour, Overlap: pipeline.OverlapSkip, Source: pipeline.SourceAPI}
	if len(e.schedules.created) != 1 || !reflect.DeepEqual(e.schedules.created[0], want) {
		t.Errorf("Create got %+v, want %+v", e.schedules.created, want)
	}
}

// TestCreateScheduleErrors: every refusal is a JSON error with a message that says what is wrong.
func TestCreateScheduleErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		err        error // returned by the scheduler
		status     int
		msg        string
	}{
		{"unknown field", `{"pipeline":"build","name":"x","cron":"@daily","timezome":"UTC"}`, nil, 400,
			`Error decoding JSON: json: unknown field "timezome"`},
		{"malformed", `{"pipeline":`, nil, 400, "Error decoding JSON: unexpected EOF"},
		{"variables not an object", `{"pipeline":"build","name":"x","cron":"@daily","variables":[1]}`, nil, 400,
			"Error decoding JSON: variables must be an object"},
		{"bad jitter", `{"pipeline":"build","name":"x","cron":"@daily","jitter":"soon"}`, nil, 400,
			`jitter: "soon" is not a duration such as 30s, 15m or 24h`},
		{"bad catch-up window", `{"pipeline":"build","name":"x","cron":"@daily","catchupWindow":"1d"}`, nil, 400,
			`catchupWindow: "1d" is not a duration such as 30s, 15m or 24h`},
		{"invalid expression", `{"pipeline":"build","name":"x","cron":"0 0 30 2 *"}`,
			fmt.Errorf(`%w: cron "0 0 30 2 *" never fires`, pipeline.ErrInvalidSchedule), 400, `invalid schedule: cron "0 0 30 2 *" never fires`},
		{"unknown pipeline", `{"pipeline":"nope","name":"x","cron":"@daily"}`,
			fmt.Errorf("create schedule: %w", pipeline.ErrUnknownPipeline), 400, `pipeline "nope" not found`},
		{"exists", `{"pipeline":"nightly","name":"full","cron":"@daily"}`, nil, 409,
			`schedule "nightly/full": schedule already exists`},
		{"shutting down", `{"pipeline":"build","name":"x","cron":"@daily"}`, pipeline.ErrShuttingDown, 503, "Server is shutting down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newScheduleEnv(t)
			e.schedules.err = tc.err
			resp, body := e.doChecked(t, http.MethodPost, "/schedules", tc.body)
			wantError(t, resp, body, tc.status, tc.msg)
		})
	}
}

// TestPauseWithNoteAndResume: PATCH with paused and note pauses a file schedule (that is
// allowed), and paused false resumes it.
func TestPauseWithNoteAndResume(t *testing.T) {
	t.Parallel()
	e := newScheduleEnv(t)
	e.schedules.add(pipeline.ScheduleView{Spec: apiSchedule.Spec, Description: "x"})
	resp, body := e.doChecked(t, http.MethodPatch, "/schedules/build/hourly", `{"paused":true,"note":"release freeze"}`)
	got := decodeJSON(t, body)
	if resp.StatusCode != 200 || got["paused"] != true || got["pauseNote"] != "release freeze" {
		t.Fatalf("pause: %d %s", resp.StatusCode, body)
	}
	p := e.schedules.patches["build/hourly"]
	if p.Paused == nil || !*p.Paused || p.Note == nil || *p.Note != "release freeze" || p.Cron != nil || p.Variables != nil {
		t.Errorf("patch = %+v", p)
	}
	resp, body = e.doChecked(t, http.MethodPatch, "/schedules/nightly%2Ffull", `{"paused":false}`)
	if got := decodeJSON(t, body); resp.StatusCode != 200 || got["paused"] != false || got["pauseNote"] != "" {
		t.Errorf("resume: %d %s", resp.StatusCode, body)
	}
}

// TestPatchScheduleFields: each field of the body becomes the patch's field; absent ones stay nil.
func TestPatchScheduleFields(t *testing.T) {
	t.Parallel()
	e := newScheduleEnv(t)
	resp, body := e.doChecked(t, http.MethodPatch, "/schedules/build/hourly", `{"pipeline":"build","name":"hourly",
		"cron":"*/15 * * * *","timezone":"Australia/Lord_Howe","variables":{},"queuePartition":"q","jitter":"10s",
		"missed":"once","catchupWindow":"2h","overlap":"skip"}`)
	if resp.StatusCode != 200 || decodeJSON(t, body)["cron"] != "*/15 * * * *" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	p := e.schedules.patches["build/hourly"]
	if *p.Cron != "*/15 * * * *" || *p.Timezone != "Australia/Lord_Howe" || p.Variables == nil || len(p.Variables) != 0 ||
		*p.QueuePartition != "q" || *p.Jitter != 10*time.Second || *p.Missed != pipeline.MissedOnce ||
		*p.CatchupWindow != 2*time.Hour || *p.Overlap != pipeline.OverlapSkip || p.Paused != nil || p.Note != nil {
		t.Errorf("patch = %+v", p)
	}
}

func TestPatchScheduleErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, target, body string
		err                error
		status             int
		msg                string
	}{
		{"file schedule", "/schedules/nightly/full", `{"cron":"@daily"}`, nil, 409,
			`schedule "nightly/full" (pipelines.yml:12): schedule is declared in a pipelines file`},
		{"rename", "/schedules/build/hourly", `{"name":"daily"}`, nil, 400,
			"a schedule's pipeline and name cannot be changed: create a new schedule and delete this one"},
		{"move", "/schedules/build/hourly", `{"pipeline":"nightly"}`, nil, 400, ""},
		{"unknown field", "/schedules/build/hourly", `{"pause":true}`, nil, 400, `Error decoding JSON: json: unknown field "pause"`},
		{"bad duration", "/schedules/build/hourly", `{"jitter":"5"}`, nil, 400, `jitter: "5" is not a duration such as 30s, 15m or 24h`},
		{"unknown schedule", "/schedules/build/none", `{"paused":true}`, nil, 404, `schedule "build/none": schedule not found`},
		{"invalid", "/schedules/build/hourly", `{"timezone":"Mars/Olympus"}`,
			fmt.Errorf(`%w: unknown time zone "Mars/Olympus"`, pipeline.ErrInvalidSchedule), 400, `invalid schedule: unknown time zone "Mars/Olympus"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newScheduleEnv(t)
			e.schedules.err = tc.err
			resp, body := e.doChecked(t, http.MethodPatch, tc.target, tc.body)
			wantError(t, resp, body, tc.status, tc.msg)
		})
	}
}

// TestDeleteSchedule: 204 for an API schedule; a file schedule is 409 naming its file.
func TestDeleteSchedule(t *testing.T) {
	t.Parallel()
	e := newScheduleEnv(t)
	resp, body := e.doChecked(t, http.MethodDelete, "/schedules/build/hourly", "")
	if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
		t.Errorf("delete: %d %q", resp.StatusCode, body)
	}
	resp, body = e.doChecked(t, http.MethodGet, "/schedules/build/hourly", "")
	wantError(t, resp, body, http.StatusNotFound, "")
	resp, body = e.doChecked(t, http.MethodDelete, "/schedules/build/hourly", "")
	wantError(t, resp, body, http.StatusNotFound, `schedule "build/hourly": schedule not found`)
	resp, body = e.doChecked(t, http.MethodDelete, "/schedules/nightly%2Ffull", "")
	wantError(t, resp, body, http.StatusConflict, `schedule "nightly/full" (pipelines.yml:12): schedule is declared in a pipelines file`)
}

// TestTriggerSchedule: 202 with the job's ID; the token's subject is the user; admission's
// refusals are the 400 that POST /pipelines/schedule answers.
func TestTriggerSchedule(t *testing.T) {
	t.Parallel()
	e := newScheduleEnv(t)
	resp, body := e.doChecked(t, http.MethodPost, "/schedules/nightly/full/trigger", "")
	if resp.StatusCode != http.StatusAccepted || string(body) != `{"jobId":"0d9a3c1e-8a4e-4a52-9f5e-2b7f1f0e6a11"}` {
		t.Errorf("trigger: %d %s", resp.StatusCode, body)
	}
	if _, body = e.doChecked(t, http.MethodPost, "/schedules/nightly%2Ffull/trigger", ""); !strings.Contains(string(body), "jobId") {
		t.Errorf("escaped trigger: %s", body)
	}
	if want := []string{"nightly/full alice", "nightly/full alice"}; !reflect.DeepEqual(e.schedules.triggers, want) {
		t.Errorf("triggers = %q, want %q", e.schedules.triggers, want)
	}
	resp, body = e.doChecked(t, http.MethodPost, "/schedules/nightly/none/trigger", "")
	wantError(t, resp, body, http.StatusNotFound, `schedule "nightly/none": schedule not found`)

	e.schedules.err = fmt.Errorf("pipeline nightly: wait list full (10 of 10): %w", pipeline.ErrQueueFull)
	resp, body = e.doChecked(t, http.MethodPost, "/schedules/nightly/full/trigger", "")
	wantError(t, resp, body, http.StatusBadRequest, "pipeline nightly: wait list full (10 of 10): queue full")
}

// TestBackfillSchedule: 202 with each recorded firing (time, outcome, job); the range is
// handed to the scheduler as given.
func TestBackfillSchedule(t *testing.T) {
	t.Parallel()
	e := newScheduleEnv(t)
	e.schedules.firings = []pipeline.ScheduleFiring{
		{FireTime: schedT0.Add(-48 * time.Hour), Kind: pipeline.FiringBackfill, Outcome: pipeline.FiringStarted,
			JobID: "0d9a3c1e-8a4e-4a52-9f5e-2b7f1f0e6a11", JobStatus: pipeline.JobQueued},
		{FireTime: schedT0.Add(-24 * time.Hour), Kind: pipeline.FiringBackfill, Outcome: pipeline.FiringRejected,
			Detail: "wait list full"},
	}
	resp, body := e.doChecked(t, http.MethodPost, "/schedules/nightly/full/backfill",
		`{"from":"2026-12-04T00:00:00Z","to":"2026-12-06T05:00:00+02:00"}`)
	want := `{"firings":[{"time":"2026-12-05T02:00:00Z","kind":"backfill","outcome":"started","jobId":"0d9a3c1e-8a4e-4a52-9f5e-2b7f1f0e6a11","status":"queued"},` +
		`{"time":"2026-12-06T02:00:00Z","kind":"backfill","outcome":"rejected","detail":"wait list full"}]}`
	if resp.StatusCode != http.StatusAccepted || string(body) != want {
		t.Errorf("backfill: %d\n%s\nwant\n%s", resp.StatusCode, body, want)
	}
	if want := []string{"nightly/full 2026-12-04T00:00:00Z 2026-12-06T03:00:00Z alice"}; !reflect.DeepEqual(e.schedules.backfill, want) {
		t.Errorf("backfill calls = %q, want %q", e.schedules.backfill, want)
	}
	if _, body = e.doChecked(t, http.MethodPost, "/schedules/nightly%2Ffull/backfill", `{"from":"2026-12-04T00:00:00Z","to":"2026-12-05T00:00:00Z"}`); !strings.Contains(string(body), "firings") {
		t.Errorf("escaped backfill: %s", body)
	}
}

func TestBackfillScheduleErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, target, body string
		err                error
		status             int
		msg                string
	}{
		{"no from", "/schedules/nightly/full/backfill", `{"to":"2026-12-05T00:00:00Z"}`, nil, 400,
			"from is required (an RFC 3339 time such as 2026-01-31T03:00:00Z)"},
		{"bad to", "/schedules/nightly/full/backfill", `{"from":"2026-12-05T00:00:00Z","to":"yesterday"}`, nil, 400,
			`to: "yesterday" is not an RFC 3339 time such as 2026-01-31T03:00:00Z`},
		{"empty range", "/schedules/nightly/full/backfill", `{"from":"2026-12-05T00:00:00Z","to":"2026-12-05T00:00:00Z"}`, nil, 400,
			"to must be after from"},
		{"unknown field", "/schedules/nightly/full/backfill", `{"from":"2026-12-05T00:00:00Z","to":"2026-12-06T00:00:00Z","until":1}`, nil, 400,
			`Error decoding JSON: json: unknown field "until"`},
		{"too many", "/schedules/nightly/full/backfill", `{"from":"2020-01-01T00:00:00Z","to":"2026-12-06T00:00:00Z"}`,
			fmt.Errorf("%w: the range holds 2532 fire times, more than 1000 (backfill at most 1000 at a time)", pipeline.ErrInvalidSchedule), 400,
			"invalid schedule: the range holds 2532 fire times, more than 1000 (backfill at most 1000 at a time)"},
		{"unknown schedule", "/schedules/nightly/none/backfill", `{"from":"2026-12-05T00:00:00Z","to":"2026-12-06T00:00:00Z"}`, nil, 404,
			`schedule "nightly/none": schedule not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newScheduleEnv(t)
			e.schedules.err = tc.err
			resp, body := e.doChecked(t, http.MethodPost, tc.target, tc.body)
			wantError(t, resp, body, tc.status, tc.msg)
		})
	}
}

// TestSchedulesNeedTheScheduler: without Config.Schedules the routes do not exist.
func TestSchedulesNeedTheScheduler(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.Schedules = nil })
	for _, target := range []string{"/schedules", "/schedules/nightly/full"} {
		if resp, body := e.do(t, http.MethodGet, target, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s without a scheduler: %d %s", target, resp.StatusCode, body)
		}
	}
}

// TestJobOfAScheduleNamesIt: the job detail and lists carry schedule and scheduledFor, as the
// document describes them.
func TestJobOfAScheduleNamesIt(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	fire := schedT0
	e.runner.addJob(&pipeline.Job{ID: "0d9a3c1e-8a4e-4a52-9f5e-2b7f1f0e6a11", Pipeline: "nightly", Status: pipeline.JobSucceeded,
		Created: schedT0, Start: &fire, End: &fire, User: "schedule:nightly/full", Schedule: "nightly/full", ScheduledFor: &fire})
	for _, target := range []string{"/job/detail?id=0d9a3c1e-8a4e-4a52-9f5e-2b7f1f0e6a11", "/jobs?limit=5"} {
		_, body := e.doChecked(t, http.MethodGet, target, "")
		if !strings.Contains(string(body), `"schedule":"nightly/full","scheduledFor":"2026-12-07T02:00:00Z"`) {
			t.Errorf("%s: %s", target, body)
		}
	}
}
