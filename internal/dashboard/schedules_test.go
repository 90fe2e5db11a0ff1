package dashboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

// seedSchedules adds the pipelines of seed and two schedules of "build": a file schedule in
// Europe/Berlin, paused with a note, whose last firing started a job; and an API schedule whose
// last firing was rejected.
func seedSchedules(h *harness, fs *fakeSchedules) (file, api pipeline.ScheduleView) {
	h.seed()
	file = pipeline.ScheduleView{
		Spec: pipeline.ScheduleSpec{Pipeline: "build", Name: "nightly", Cron: "0 3 * * *", Timezone: "Europe/Berlin",
			Variables: map[string]any{"mode": "full"}, Missed: pipeline.MissedOnce, CatchupWindow: 24 * time.Hour,
			Overlap: pipeline.OverlapSkip, Source: pipeline.SourceFile, SourceFile: "pipelines.yml", SourceLine: 12},
		Paused: true, PauseNote: "db migration " + xssScript, Description: "every day at 03:00, Europe/Berlin",
		// 2026-11-29 02:00 UTC is 03:00 in Berlin (CET).
		Next: []time.Time{testNow.Add(14 * time.Hour), testNow.Add(38 * time.Hour)},
		Last: &pipeline.ScheduleFiring{FireTime: testNow.Add(-10 * time.Hour), Kind: pipeline.FiringCron,
			Outcome: pipeline.FiringStarted, JobID: "job-done", JobStatus: pipeline.JobSucceeded},
	}
	api = pipeline.ScheduleView{
		Spec: pipeline.ScheduleSpec{Pipeline: "build", Name: "hourly", Cron: "@hourly", Missed: pipeline.MissedSkip,
			CatchupWindow: 24 * time.Hour, Overlap: pipeline.OverlapAllow, Source: pipeline.SourceAPI,
			Variables: map[string]any{"n": json.Number("12345678901"), "s": xssAttr}, Jitter: 30 * time.Second},
		Description: "every hour, UTC",
		Next:        []time.Time{testNow.Add(time.Hour), testNow.Add(2 * time.Hour)},
		Last: &pipeline.ScheduleFiring{FireTime: testNow, Kind: pipeline.FiringCron, Outcome: pipeline.FiringRejected,
			Detail: "the wait list of pipeline \"build\" is full"},
	}
	fs.add(file, *file.Last,
		pipeline.ScheduleFiring{FireTime: testNow.Add(-34 * time.Hour), Kind: pipeline.FiringTrigger, Outcome: pipeline.FiringSkipped, Detail: "a job of the schedule is running"})
	fs.add(api, *api.Last)
	return file, api
}

// TestSchedulesPage: each schedule with its plain-words description, next runs in the
// viewer's zone (a <time> the script rewrites) and the schedule's, pause state and note, last
// firing with its job and status, and the actions that fit its state.
func TestSchedulesPage(t *testing.T) {
	t.Parallel()
	h, fs := newScheduleHarness(t)
	seedSchedules(h, fs)
	r := h.get("/ui/schedules")
	wantStatus(t, r, http.StatusOK)
	assertSafe(t, r.body)
	doc := parse(t, r.body)
	if got := attr(one(t, doc, "nav-schedules"), "aria-current"); got != "page" {
		t.Errorf("nav entry aria-current = %q", got)
	}
	rows := byTestID(doc, "schedule-row")
	if len(rows) != 2 {
		t.Fatalf("%d schedule rows, want 2", len(rows))
	}
	hourly, nightly := rows[0], rows[1]
	if got := attr(byTestID(nightly, "schedule-id")[0], "href"); got != "/ui/schedules/build/nightly" {
		t.Errorf("schedule link = %q", got)
	}
	if got := text(byTestID(nightly, "schedule-description")[0]); got != "every day at 03:00, Europe/Berlin" {
		t.Errorf("description = %q", got)
	}
	next := byTestID(nightly, "next-run")
	if len(next) != 2 {
		t.Fatalf("%d next runs shown, want 2", len(next))
	}
	if got := text(byTestID(next[0], "next-run-zone")[0]); got != "Sun Nov 29 03:00 CET" {
		t.Errorf("next run in the schedule's zone = %q", got)
	}
	var viewer string
	walk(next[0], func(n *html.Node) {
		if n.Data == "time" && hasAttr(n, "data-local") {
			viewer = attr(n, "datetime")
		}
	})
	if viewer != "2026-11-29T02:00:00Z" {
		t.Errorf("next run for the viewer's zone: <time data-local datetime=%q>", viewer)
	}
	if got := text(byTestID(nightly, "schedule-pause-note")[0]); got != "db migration "+xssScript {
		t.Errorf("pause note = %q", got)
	}
	if len(byTestID(nightly, "schedule-resume")) != 1 || len(byTestID(nightly, "schedule-pause")) != 0 {
		t.Errorf("a paused schedule offers Resume, not Pause")
	}
	if len(byTestID(hourly, "schedule-pause")) != 1 || len(byTestID(hourly, "pause-note")) != 1 || len(byTestID(hourly, "schedule-resume")) != 0 {
		t.Errorf("an active schedule offers Pause with a note, not Resume")
	}
	if len(byTestID(hourly, "schedule-run")) != 1 {
		t.Errorf("Run now is missing")
	}
	last := byTestID(nightly, "firing-job")
	if len(last) != 1 || attr(last[0], "href") != "/ui/jobs/job-done" || attr(byTestID(last[0], "status")[0], "data-status") != "succeeded" {
		t.Errorf("last firing of nightly must link its job with its status")
	}
	if got := attr(byTestID(hourly, "status")[0], "data-status"); got != "rejected" {
		t.Errorf("a rejected firing shows %q, want rejected", got)
	}
	if got := text(byTestID(hourly, "firing-detail")[0]); !strings.Contains(got, "is full") {
		t.Errorf("rejected firing detail = %q", got)
	}

	r = h.get("/ui/schedules?pipeline=deploy")
	wantStatus(t, r, http.StatusOK)
	one(t, parse(t, r.body), "schedules-empty")
}

// TestSchedulesAbsentWithoutScheduler: no scheduler, no navigation entry, pages or column.
func TestSchedulesAbsentWithoutScheduler(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	r := h.get("/ui/")
	wantStatus(t, r, http.StatusOK)
	doc := parse(t, r.body)
	if len(byTestID(doc, "nav-schedules")) != 0 || len(byTestID(doc, "pipeline-next-run")) != 0 {
		t.Errorf("schedules shown without a scheduler")
	}
	wantStatus(t, h.get("/ui/schedules"), http.StatusNotFound)
}

// TestPipelinesPageShowsNextRun: a pipeline's next run is the earliest next fire time of its
// schedules that are not paused; a pipeline without one says so.
func TestPipelinesPageShowsNextRun(t *testing.T) {
	t.Parallel()
	h, fs := newScheduleHarness(t)
	seedSchedules(h, fs)
	fs.add(pipeline.ScheduleView{Spec: pipeline.ScheduleSpec{Pipeline: "build", Name: "later", Source: pipeline.SourceAPI},
		Next: []time.Time{testNow.Add(3 * time.Hour)}})
	fs.add(pipeline.ScheduleView{Spec: pipeline.ScheduleSpec{Pipeline: "build", Name: "paused-soon", Source: pipeline.SourceAPI},
		Paused: true, Next: []time.Time{testNow.Add(30 * time.Minute)}})
	r := h.get("/ui/")
	wantStatus(t, r, http.StatusOK)
	doc := parse(t, r.body)
	rows := byTestID(doc, "pipeline-row")
	build, deploy := byTestID(rows[0], "pipeline-next-run")[0], byTestID(rows[1], "pipeline-next-run")[0]
	var when string
	walk(build, func(n *html.Node) {
		if n.Data == "time" {
			when = attr(n, "datetime")
		}
	})
	// The paused schedules (in 30 min, in 14 h) do not count; hourly (in 1 h) is the earliest.
	if when != "2026-11-28T13:00:00Z" {
		t.Errorf("build's next run = %q, want 2026-11-28T13:00:00Z", when)
	}
	if !strings.Contains(text(deploy), "not scheduled") {
		t.Errorf("deploy's next run = %q", text(deploy))
	}

	// A scheduler that does not answer leaves the page as it is, with the next runs unknown.
	fs.listErr = fmt.Errorf("store down")
	r = h.get("/ui/")
	wantStatus(t, r, http.StatusOK)
	rows = byTestID(parse(t, r.body), "pipeline-row")
	if got := strings.TrimSpace(text(byTestID(rows[0], "pipeline-next-run")[0])); got != "unknown" {
		t.Errorf("next run without an answer = %q, want unknown", got)
	}
}

// TestSchedulePage: a file schedule says where it is declared and has no edit form; its last
// firings link their jobs or say why none started.
func TestSchedulePage(t *testing.T) {
	t.Parallel()
	h, fs := newScheduleHarness(t)
	seedSchedules(h, fs)
	r := h.get("/ui/schedules/build/nightly")
	wantStatus(t, r, http.StatusOK)
	assertSafe(t, r.body)
	doc := parse(t, r.body)
	if got := strings.Join(strings.Fields(text(one(t, doc, "schedule-source"))), " "); got != "declared in pipelines.yml:12" {
		t.Errorf("source = %q", got)
	}
	if len(byTestID(doc, "schedule-form")) != 0 || len(byTestID(doc, "schedule-delete")) != 0 {
		t.Errorf("a file schedule cannot be edited or deleted here")
	}
	if got := text(one(t, doc, "schedule-zone")); got != "Europe/Berlin" {
		t.Errorf("zone = %q", got)
	}
	if n := len(byTestID(one(t, doc, "schedule-next-runs"), "next-run")); n != 2 {
		t.Errorf("%d next runs, want all 2", n)
	}
	firings := byTestID(doc, "firing-row")
	if len(firings) != 2 {
		t.Fatalf("%d firings, want 2", len(firings))
	}
	if got := attr(byTestID(firings[0], "firing-job")[0], "href"); got != "/ui/jobs/job-done" {
		t.Errorf("first firing job link = %q", got)
	}
	if got := attr(byTestID(firings[1], "status")[0], "data-status"); got != "skipped" {
		t.Errorf("skipped firing status = %q", got)
	}
	if got := text(byTestID(firings[1], "firing-detail")[0]); got != "a job of the schedule is running" {
		t.Errorf("skipped firing detail = %q", got)
	}

	r = h.get("/ui/schedules/build/none")
	wantStatus(t, r, http.StatusNotFound)
	if got := text(one(t, parse(t, r.body), "error-message")); !strings.Contains(got, "no schedule") {
		t.Errorf("unknown schedule message = %q", got)
	}
}

// TestEditFormOfAnAPISchedule: an API schedule's page has its edit form, filled with its
// settings (variables as JSON, so numbers stay numbers), and a delete button.
func TestEditFormOfAnAPISchedule(t *testing.T) {
	t.Parallel()
	h, fs := newScheduleHarness(t)
	seedSchedules(h, fs)
	r := h.get("/ui/schedules/build/hourly")
	wantStatus(t, r, http.StatusOK)
	assertSafe(t, r.body)
	doc := parse(t, r.body)
	form := one(t, doc, "schedule-form")
	if got := attr(form, "action"); got != "/ui/schedules/build/hourly/edit" {
		t.Errorf("form action = %q", got)
	}
	if got := attr(one(t, form, "schedule-cron-input"), "value"); got != "@hourly" {
		t.Errorf("cron = %q", got)
	}
	if got := attr(one(t, form, "schedule-jitter"), "value"); got != "30s" {
		t.Errorf("jitter = %q", got)
	}
	if got := text(one(t, form, "schedule-json")); got != `{"n":12345678901,"s":"\"\u003e\u003cimg src=x onerror=alert(1)\u003e"}` {
		t.Errorf("variables JSON = %q", got)
	}
	one(t, doc, "schedule-delete")
}

// TestPauseWithNoteResumeAndRunNow: the buttons' flows, each returning to the page they were on.
func TestPauseWithNoteResumeAndRunNow(t *testing.T) {
	t.Parallel()
	h, fs := newScheduleHarness(t)
	seedSchedules(h, fs)

	r := h.post("/ui/schedules/build/hourly/pause", url.Values{"note": {" release freeze "}, "next": {"/ui/schedules"}})
	wantRedirect(t, r, "/ui/schedules")
	p := fs.patches[len(fs.patches)-1]
	if p.Paused == nil || !*p.Paused || p.Note == nil || *p.Note != "release freeze" || p.Cron != nil {
		t.Errorf("pause sent %+v", p)
	}
	doc := parse(t, h.get("/ui/schedules/build/hourly").body)
	if got := text(one(t, doc, "schedule-pause-note")); got != "release freeze" {
		t.Errorf("pause note shown = %q", got)
	}

	r = h.post("/ui/schedules/build/hourly/resume", nil)
	wantRedirect(t, r, "/ui/schedules/build/hourly")
	if p := fs.patches[len(fs.patches)-1]; p.Paused == nil || *p.Paused || p.Note != nil {
		t.Errorf("resume sent %+v", p)
	}
	// next outside the dashboard is not followed.
	wantRedirect(t, h.post("/ui/schedules/build/nightly/resume", url.Values{"next": {"https://evil.example/"}}), "/ui/")

	r = h.post("/ui/schedules/build/nightly/run", nil)
	wantRedirect(t, r, "/ui/jobs/job-triggered")
	if want := []string{"build/nightly ada"}; !reflect.DeepEqual(fs.triggers, want) {
		t.Errorf("triggers = %q, want %q", fs.triggers, want)
	}

	fs.err = fmt.Errorf("%w: the wait list of pipeline \"build\" is full (queue_limit: 1)", pipeline.ErrQueueFull)
	r = h.post("/ui/schedules/build/nightly/run", nil)
	wantStatus(t, r, http.StatusConflict)
	if got := text(one(t, parse(t, r.body), "error-message")); !strings.Contains(got, "is full") {
		t.Errorf("run now refused: %q", got)
	}
	wantStatus(t, h.post("/ui/schedules/build/none/pause", nil), http.StatusNotFound)
	r = h.do(request{method: http.MethodPost, path: "/ui/schedules/build/hourly/pause", noCSRF: true})
	if r.StatusCode != http.StatusForbidden {
		t.Errorf("pause without CSRF token: %d, want 403", r.StatusCode)
	}
}

// TestCreateSchedule: the form becomes an API spec for the scheduler, and the new schedule's
// page opens.
func TestCreateSchedule(t *testing.T) {
	t.Parallel()
	h, fs := newScheduleHarness(t)
	seedSchedules(h, fs)
	r := h.get("/ui/schedules/new?pipeline=deploy")
	wantStatus(t, r, http.StatusOK)
	doc := parse(t, r.body)
	var selected string
	walk(one(t, doc, "schedule-pipeline"), func(n *html.Node) {
		if n.Data == "option" && hasAttr(n, "selected") {
			selected = attr(n, "value")
		}
	})
	if selected != "deploy" {
		t.Errorf("pipeline preselected = %q, want deploy", selected)
	}

	r = h.post("/ui/schedules/new", url.Values{
		"pipeline": {"deploy"}, "name": {"weekly"}, "cron": {"0 6 * * 1"}, "timezone": {"America/New_York"},
		"partition": {"tenant-a"}, "jitter": {"1m"}, "missed": {"all"}, "catchup_window": {"48h"}, "overlap": {"skip"},
		"var_key": {"env", ""}, "var_value": {"prod", ""}, "variables_json": {`{"build": 42}`},
	})
	wantRedirect(t, r, "/ui/schedules/deploy/weekly")
	want := pipeline.ScheduleSpec{Pipeline: "deploy", Name: "weekly", Cron: "0 6 * * 1", Timezone: "America/New_York",
		Variables: map[string]any{"env": "prod", "build": json.Number("42")}, QueuePartition: "tenant-a", Jitter: time.Minute,
		Missed: pipeline.MissedAll, CatchupWindow: 48 * time.Hour, Overlap: pipeline.OverlapSkip, Source: pipeline.SourceAPI}
	if got := fs.created[len(fs.created)-1]; !reflect.DeepEqual(got, want) {
		t.Errorf("created %+v\nwant %+v", got, want)
	}
}

// TestScheduleFormShowsTheAPIsMessages: a refused form comes back with what was entered and
// the message the API answers with.
func TestScheduleFormShowsTheAPIsMessages(t *testing.T) {
	t.Parallel()
	base := url.Values{"pipeline": {"build"}, "name": {"x"}, "cron": {"0 0 30 2 *"}, "missed": {"skip"}, "overlap": {"allow"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for kk, vv := range base {
			f[kk] = vv
		}
		f.Set(k, v)
		return f
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		err    error
		status int
		msg    string
	}{
		{"never fires", base, fmt.Errorf(`%w: cron "0 0 30 2 *" never fires`, pipeline.ErrInvalidSchedule), 400, `invalid schedule: cron "0 0 30 2 *" never fires`},
		{"bad jitter", with("jitter", "soon"), nil, 400, `jitter: "soon" is not a duration such as 30s, 15m or 24h`},
		{"bad window", with("catchup_window", "1d"), nil, 400, `catchupWindow: "1d" is not a duration such as 30s, 15m or 24h`},
		{"bad variables", with("variables_json", "[1]"), nil, 400, "one JSON object"},
		{"exists", with("name", "hourly"), nil, 409, `schedule "build/hourly": schedule already exists`},
		{"pipeline gone", with("pipeline", "gone"), fmt.Errorf("create schedule: %w", pipeline.ErrUnknownPipeline), 400, "No pipeline of that name is loaded."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, fs := newScheduleHarness(t)
			seedSchedules(h, fs)
			fs.err = tc.err
			r := h.post("/ui/schedules/new", tc.form)
			wantStatus(t, r, tc.status)
			assertSafe(t, r.body)
			doc := parse(t, r.body)
			if got := text(one(t, doc, "schedule-error")); !strings.Contains(got, tc.msg) {
				t.Errorf("error = %q, want %q", got, tc.msg)
			}
			if got := attr(one(t, doc, "schedule-cron-input"), "value"); got != tc.form.Get("cron") {
				t.Errorf("the form lost the expression: %q", got)
			}
		})
	}
}

// TestEditSchedule: the edit form changes every field of an API schedule; a refusal shows the
// schedule's page with the form and the message; a file schedule is refused naming its file.
func TestEditSchedule(t *testing.T) {
	t.Parallel()
	h, fs := newScheduleHarness(t)
	seedSchedules(h, fs)
	r := h.post("/ui/schedules/build/hourly/edit", url.Values{"cron": {"*/15 * * * *"}, "timezone": {"Australia/Lord_Howe"},
		"jitter": {"10s"}, "missed": {"once"}, "catchup_window": {"2h"}, "overlap": {"skip"}, "variables_json": {`{"n": 7}`}})
	wantRedirect(t, r, "/ui/schedules/build/hourly")
	p := fs.patches[len(fs.patches)-1]
	if *p.Cron != "*/15 * * * *" || *p.Timezone != "Australia/Lord_Howe" || *p.Jitter != 10*time.Second ||
		*p.Missed != pipeline.MissedOnce || *p.CatchupWindow != 2*time.Hour || *p.Overlap != pipeline.OverlapSkip ||
		*p.QueuePartition != "" || !reflect.DeepEqual(p.Variables, map[string]any{"n": json.Number("7")}) || p.Paused != nil {
		t.Errorf("edit sent %+v", p)
	}
	// A form without variables clears them.
	h.post("/ui/schedules/build/hourly/edit", url.Values{"cron": {"@daily"}})
	if p := fs.patches[len(fs.patches)-1]; p.Variables == nil || len(p.Variables) != 0 {
		t.Errorf("variables = %#v, want an empty map (cleared)", p.Variables)
	}

	fs.err = fmt.Errorf(`%w: unknown time zone "Mars/Olympus"`, pipeline.ErrInvalidSchedule)
	r = h.post("/ui/schedules/build/hourly/edit", url.Values{"cron": {"@daily"}, "timezone": {"Mars/Olympus"}})
	wantStatus(t, r, http.StatusBadRequest)
	doc := parse(t, r.body)
	if got := text(one(t, doc, "schedule-error")); got != `invalid schedule: unknown time zone "Mars/Olympus"` {
		t.Errorf("error = %q", got)
	}
	if got := attr(one(t, doc, "schedule-timezone"), "value"); got != "Mars/Olympus" {
		t.Errorf("the form lost the zone: %q", got)
	}
	one(t, doc, "firings") // still the schedule's page

	fs.err = nil
	r = h.post("/ui/schedules/build/nightly/edit", url.Values{"cron": {"@daily"}})
	wantStatus(t, r, http.StatusConflict)
	if !strings.Contains(r.body, "pipelines.yml:12") {
		t.Errorf("the refusal must name the file: %.500s", r.body)
	}
	wantStatus(t, h.post("/ui/schedules/build/none/edit", url.Values{"cron": {"@daily"}}), http.StatusNotFound)
}

// TestDeleteSchedule: an API schedule is deleted and the list opens; a file schedule is refused.
func TestDeleteSchedule(t *testing.T) {
	t.Parallel()
	h, fs := newScheduleHarness(t)
	seedSchedules(h, fs)
	wantRedirect(t, h.post("/ui/schedules/build/hourly/delete", nil), "/ui/schedules")
	if _, ok := fs.views["build/hourly"]; ok {
		t.Errorf("not deleted")
	}
	r := h.post("/ui/schedules/build/nightly/delete", nil)
	wantStatus(t, r, http.StatusConflict)
	if got := text(one(t, parse(t, r.body), "error-message")); !strings.Contains(got, "pipelines.yml:12") {
		t.Errorf("message = %q", got)
	}
}

// TestJobPageLinksItsSchedule: a job started by a schedule links to it, with its fire time.
func TestJobPageLinksItsSchedule(t *testing.T) {
	t.Parallel()
	h, fs := newScheduleHarness(t)
	seedSchedules(h, fs)
	h.r.update("job-done", func(j *pipeline.Job) {
		j.Schedule, j.ScheduledFor = "build/nightly", tp(testNow.Add(-10*time.Hour))
	})
	r := h.get("/ui/jobs/job-done")
	wantStatus(t, r, http.StatusOK)
	s := one(t, parse(t, r.body), "job-schedule")
	var href, when string
	walk(s, func(n *html.Node) {
		switch n.Data {
		case "a":
			href = attr(n, "href")
		case "time":
			when = attr(n, "datetime")
		}
	})
	if href != "/ui/schedules/build/nightly" || when != "2026-11-28T02:00:00Z" {
		t.Errorf("schedule link %q, fire time %q", href, when)
	}
}
