package dashboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/net/html"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

const (
	xssScript = `<script>alert(1)</script>`
	xssAttr   = `"><img src=x onerror=alert(1)>`
)

func buildDef() *pipeline.Definition {
	return &pipeline.Definition{Name: "build", Concurrency: 1, QueueStrategy: pipeline.QueueAppend,
		Tasks: map[string]pipeline.TaskDefinition{
			"compile": {Name: "compile"},
			"test":    {Name: "test", DependsOn: []string{"compile"}},
		}}
}

// seed adds two pipelines and a running, a finished and a queued job of "build".
func (h *harness) seed() (running, done, queued *pipeline.Job) {
	h.r.pipelines = []pipeline.Info{
		{Name: "build", RunningJobs: 1, WaitingJobs: 1, Schedulable: true, Definition: buildDef()},
		{Name: "deploy", Schedulable: false, NotSchedulableReason: "queue full: " + xssAttr,
			Definition: &pipeline.Definition{Name: "deploy", Concurrency: 1, QueueStrategy: pipeline.QueuePartitionedReplace, Tasks: map[string]pipeline.TaskDefinition{"go": {Name: "go"}}}},
	}
	start := testNow.Add(-2 * time.Minute)
	done = &pipeline.Job{ID: "job-done", Pipeline: "build", Status: pipeline.JobSucceeded, User: "bob",
		Created: start, Start: tp(start), End: tp(start.Add(time.Minute)),
		Variables: map[string]any{"branch": "main"},
		Tasks: []pipeline.Task{
			{Name: "compile", Status: pipeline.TaskDone, Start: tp(start), End: tp(start.Add(30 * time.Second))},
			{Name: "test", DependsOn: []string{"compile"}, Status: pipeline.TaskDone, Start: tp(start.Add(30 * time.Second)), End: tp(start.Add(time.Minute))},
		}}
	h.r.addJob(done)
	rs := testNow.Add(-30 * time.Second)
	running = &pipeline.Job{ID: "job-running", Pipeline: "build", Status: pipeline.JobRunning, User: "ada" + xssAttr,
		Created: rs, Start: tp(rs),
		Variables: map[string]any{"branch": xssScript, "n": json.Number("42")},
		Tasks: []pipeline.Task{
			{Name: "compile", Status: pipeline.TaskDone, Start: tp(rs), End: tp(rs.Add(10 * time.Second))},
			{Name: "test", DependsOn: []string{"compile"}, Status: pipeline.TaskRunning, Start: tp(rs.Add(10 * time.Second))},
		}}
	h.r.addJob(running)
	queued = &pipeline.Job{ID: "job-queued", Pipeline: "build", Status: pipeline.JobQueued, Created: testNow.Add(-time.Second),
		QueuePartition: "p1", Tasks: pipeline.NewJobTasks(buildDef())}
	h.r.addJob(queued)
	h.r.wait["job-queued"] = &pipeline.WaitInfo{Position: 1, Of: 1, Partition: "p1", Reason: "concurrency 1/1 reached"}
	return running, done, queued
}

func TestRootRedirectsBrowsers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, base, path, accept string
		want                     int
		location                 string
	}{
		{"browser", "", "/", "text/html,application/xhtml+xml", http.StatusSeeOther, "/ui/"},
		{"api client", "", "/", "application/json", http.StatusNotFound, ""},
		{"browser with base path", "/prunner/", "/", "text/html", http.StatusSeeOther, "/prunner/ui/"},
		{"base path itself", "prunner", "/prunner", "text/html", http.StatusSeeOther, "/prunner/ui/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *Config) { c.BasePath = tt.base })
			r := h.do(request{path: tt.path, anonymous: true, header: map[string]string{"Accept": tt.accept}})
			if r.StatusCode != tt.want || r.Header.Get("Location") != tt.location {
				t.Errorf("GET %s = %d %q, want %d %q", tt.path, r.StatusCode, r.Header.Get("Location"), tt.want, tt.location)
			}
		})
	}
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	for _, req := range []request{
		{path: "/ui/login", anonymous: true},
		{path: "/ui/jobs", anonymous: true},
		{path: "/ui/"},
		{path: "/ui/jobs"},
		{path: "/ui/jobs/job-running"},
		{path: "/ui/jobs/nope"},
		{path: "/ui/static/app.css"},
		{path: "/ui/no-such-page"},
		{method: http.MethodPost, path: "/ui/jobs/job-running/cancel", noCSRF: true},
	} {
		r := h.do(req)
		csp := r.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") ||
			!strings.Contains(csp, "style-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s %s: CSP = %q", req.method, req.path, csp)
		}
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN", "Referrer-Policy": "same-origin"} {
			if got := r.Header.Get(k); got != want {
				t.Errorf("%s %s: %s = %q, want %q", req.method, req.path, k, got, want)
			}
		}
	}
}

func TestPagesWithoutSessionRedirectToLogin(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	expired := mint(t, jwt.MapClaims{"sub": "ada", "exp": time.Now().Add(-time.Minute).Unix()})
	wrongKey, _ := auth_mintWith("another-secret-0123456789abcdef", jwt.MapClaims{})
	tests := []struct {
		name     string
		req      request
		location string
	}{
		{"no token", request{path: "/ui/jobs?status=running", anonymous: true}, "/ui/login?next=%2Fui%2Fjobs%3Fstatus%3Drunning"},
		{"expired cookie", request{path: "/ui/", cookies: map[string]string{jwtCookie: expired}}, "/ui/login?reason=expired"},
		{"cookie dropped by the browser at expiry", request{path: "/ui/", anonymous: true, cookies: map[string]string{sessionCookie: fmt.Sprint(testNow.Add(-time.Second).Unix())}}, "/ui/login?reason=expired"},
		{"token of another server", request{path: "/ui/", cookies: map[string]string{jwtCookie: wrongKey}}, "/ui/login?reason=invalid"},
		{"post", request{method: http.MethodPost, path: "/ui/jobs/job-running/rerun", anonymous: true}, "/ui/login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(tt.req)
			wantRedirect(t, r, tt.location)
		})
	}

	t.Run("expired cookie is cleared", func(t *testing.T) {
		r := h.do(request{path: "/ui/", cookies: map[string]string{jwtCookie: expired}})
		c := cookie(r, jwtCookie)
		if c == nil || c.Value != "" || c.Path != "/" || !c.Expires.Before(time.Now()) {
			t.Errorf("jwt cookie = %+v, want it deleted", c)
		}
	})
	t.Run("htmx request", func(t *testing.T) {
		r := h.do(request{path: "/ui/fragments/jobs", anonymous: true, header: map[string]string{"HX-Request": "true",
			"HX-Current-URL": "http://prunner.test/ui/jobs?pipeline=build"}})
		if r.StatusCode != http.StatusUnauthorized || r.Header.Get("HX-Redirect") != "/ui/login?next=%2Fui%2Fjobs%3Fpipeline%3Dbuild" {
			t.Errorf("htmx fragment = %d HX-Redirect %q", r.StatusCode, r.Header.Get("HX-Redirect"))
		}
	})
	t.Run("event stream", func(t *testing.T) {
		r := h.do(request{path: "/ui/jobs/job-running/events", anonymous: true, header: map[string]string{"Accept": "text/event-stream"}})
		wantStatus(t, r, http.StatusUnauthorized)
	})
}

func auth_mintWith(secret string, claims jwt.MapClaims) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
}

func TestAuthorizationHeaderNeedsNoLogin(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	r := h.do(request{path: "/ui/jobs", anonymous: true, header: map[string]string{"Authorization": "Bearer " + h.token}})
	wantStatus(t, r, http.StatusOK)
	doc := parse(t, r.body)
	if got := text(one(t, doc, "user")); strings.TrimSpace(got) != "ada" {
		t.Errorf("user = %q", got)
	}
	if n := len(byTestID(doc, "logout")); n != 0 {
		t.Errorf("a proxied request offers sign-out")
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	withExp := mint(t, jwt.MapClaims{"sub": "ada", "exp": exp.Unix()})
	noExp := mint(t, jwt.MapClaims{"iat": time.Now().Unix()})
	tests := []struct {
		name    string
		pasted  string
		token   string
		expires time.Time
	}{
		{"bare token with exp", withExp, withExp, exp},
		{"Bearer prefix", "Bearer " + withExp, withExp, exp},
		{"whole header line from prunner debug", "Authorization: Bearer " + noExp + "\n", noExp, time.Time{}},
		{"lower-case bearer", "  bearer " + noExp, noExp, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *Config) { c.BasePath = "/prunner" })
			r := h.do(request{method: http.MethodPost, path: "/prunner/ui/login", anonymous: true,
				form: url.Values{"token": {tt.pasted}, "next": {"/prunner/ui/jobs"}}})
			wantRedirect(t, r, "/prunner/ui/jobs")
			c := cookie(r, jwtCookie)
			if c == nil {
				t.Fatalf("no jwt cookie set")
			}
			if c.Value != tt.token || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/prunner/" {
				t.Errorf("jwt cookie = %+v; want the token, HttpOnly, SameSite=Strict, Path=/prunner/", c)
			}
			if !c.Expires.Equal(tt.expires) && !(tt.expires.IsZero() && c.Expires.IsZero()) {
				t.Errorf("jwt cookie expires %v, want %v", c.Expires, tt.expires)
			}
			if tt.expires.IsZero() && (c.MaxAge != 0 || !c.Expires.IsZero()) {
				t.Errorf("a token without exp must give a session cookie, got %+v", c)
			}
			if !strings.Contains(c.Raw, "SameSite=Strict") || !strings.Contains(c.Raw, "HttpOnly") {
				t.Errorf("Set-Cookie = %q", c.Raw)
			}
		})
	}
}

func TestLoginRefusals(t *testing.T) {
	t.Parallel()
	expired := mint(t, jwt.MapClaims{"exp": time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC).Unix()})
	other, _ := auth_mintWith("another-secret-0123456789abcdef", jwt.MapClaims{})
	tests := []struct {
		name   string
		req    request
		status int
		msg    string
	}{
		{"empty", request{form: url.Values{"token": {"  "}}}, http.StatusBadRequest, "Paste a token"},
		{"expired", request{form: url.Values{"token": {expired}}}, http.StatusUnauthorized, "expired at 2020-01-02 03:04:05 UTC"},
		{"wrong secret", request{form: url.Values{"token": {other}}}, http.StatusUnauthorized, "not signed with this server's secret"},
		{"garbage", request{form: url.Values{"token": {xssScript}}}, http.StatusUnauthorized, "not a token"},
		{"no csrf", request{form: url.Values{"token": {"x"}}, noCSRF: true}, http.StatusForbidden, "form expired"},
		{"cross-site", request{form: url.Values{"token": {"x"}}, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, http.StatusForbidden, "another site"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			tt.req.method, tt.req.path, tt.req.anonymous = http.MethodPost, "/ui/login", true
			r := h.do(tt.req)
			wantStatus(t, r, tt.status)
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type = %q, want a page", ct)
			}
			doc := parse(t, r.body)
			if got := text(one(t, doc, "flash")); !strings.Contains(got, tt.msg) {
				t.Errorf("message = %q, want it to contain %q", got, tt.msg)
			}
			one(t, doc, "login-form")
			if cookie(r, jwtCookie) != nil {
				t.Errorf("a refused login set the jwt cookie")
			}
			assertSafe(t, r.body)
		})
	}
}

func TestLoginPageMessages(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for reason, want := range map[string]string{
		"expired":    "Your session has expired",
		"invalid":    "not valid for this server",
		"signed_out": "signed out",
	} {
		r := h.do(request{path: "/ui/login?reason=" + reason, anonymous: true})
		wantStatus(t, r, http.StatusOK)
		if got := text(one(t, parse(t, r.body), "flash")); !strings.Contains(got, want) {
			t.Errorf("reason %s: message %q, want %q", reason, got, want)
		}
	}
	r := h.do(request{path: "/ui/login", anonymous: true})
	if c := cookie(r, csrfCookie); c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Errorf("login page csrf cookie = %+v", c)
	}
	// A signed-in person is sent on.
	wantRedirect(t, h.get("/ui/login?next=%2Fui%2Fjobs"), "/ui/jobs")
	// The next parameter cannot leave the dashboard.
	for _, next := range []string{"https://evil.example/", "//evil.example/ui/", "/job/detail", `/\evil`, "/uix", "/ui/login?next=/ui/"} {
		wantRedirect(t, h.get("/ui/login?next="+url.QueryEscape(next)), "/ui/")
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.post("/ui/logout", nil)
	wantRedirect(t, r, "/ui/login?reason=signed_out")
	for _, name := range []string{jwtCookie, sessionCookie} {
		c := cookie(r, name)
		if c == nil || c.Value != "" || !c.Expires.Before(time.Now()) || c.Path != "/" {
			t.Errorf("cookie %s = %+v, want deleted", name, c)
		}
	}
}

func TestCrossSitePostsAreRejected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header map[string]string
		noCSRF bool
		csrf   string
		status int
	}{
		{"same origin", map[string]string{"Sec-Fetch-Site": "same-origin"}, false, "", http.StatusSeeOther},
		{"old browser, same origin", map[string]string{"Origin": "http://prunner.test"}, false, "", http.StatusSeeOther},
		{"cross-site fetch metadata", map[string]string{"Sec-Fetch-Site": "cross-site"}, false, "", http.StatusForbidden},
		{"same-site sibling", map[string]string{"Sec-Fetch-Site": "same-site"}, false, "", http.StatusForbidden},
		{"other origin", map[string]string{"Origin": "http://evil.example"}, false, "", http.StatusForbidden},
		{"no csrf token", nil, true, "", http.StatusForbidden},
		{"forged csrf token", nil, false, "forged", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.seed()
			form := url.Values{}
			if tt.csrf != "" {
				form.Set("csrf", tt.csrf)
			}
			r := h.do(request{method: http.MethodPost, path: "/ui/jobs/job-done/rerun", form: form, header: tt.header, noCSRF: tt.noCSRF})
			wantStatus(t, r, tt.status)
			if tt.status == http.StatusForbidden {
				if len(h.r.scheduled) != 0 {
					t.Errorf("a refused POST scheduled a job")
				}
				one(t, parse(t, r.body), "error-page")
			}
		})
	}
}

func TestPipelinesPage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	r := h.get("/ui/")
	wantStatus(t, r, http.StatusOK)
	assertSafe(t, r.body)
	doc := parse(t, r.body)
	rows := byTestID(doc, "pipeline-row")
	if len(rows) != 2 {
		t.Fatalf("%d pipeline rows, want 2", len(rows))
	}
	build, deploy := rows[0], rows[1]
	if got := strings.TrimSpace(text(byTestID(build, "pipeline-running")[0])); got != "1" {
		t.Errorf("running = %q", got)
	}
	if got := strings.TrimSpace(text(byTestID(build, "pipeline-waiting")[0])); got != "1" {
		t.Errorf("waiting = %q", got)
	}
	// The last job is the newest: the queued one.
	if got := attr(byTestID(build, "status")[0], "data-status"); got != "queued" {
		t.Errorf("last job status = %q, want queued", got)
	}
	if got := text(byTestID(deploy, "pipeline-reason")[0]); got != "queue full: "+xssAttr {
		t.Errorf("reason = %q", got)
	}
	if len(byTestID(build, "start-partition")) != 0 || len(byTestID(deploy, "start-partition")) != 1 {
		t.Errorf("partition input must appear for the partitioned pipeline only")
	}
	for _, q := range h.r.queries {
		if q.Limit != 1 {
			t.Errorf("pipelines page listed jobs with limit %d, want 1 per pipeline", q.Limit)
		}
	}
}

func TestStartJob(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	h.r.newID = "job-new"
	form := url.Values{
		"var_key":        {"branch", "note", "", ""},
		"var_value":      {"main", xssScript, "", ""},
		"variables_json": {`{"build": 42, "note": "from json"}`},
		"partition":      {"tenant-a"},
	}
	r := h.post("/ui/pipelines/deploy/start", form)
	wantRedirect(t, r, "/ui/jobs/job-new")
	if len(h.r.scheduled) != 1 {
		t.Fatalf("%d jobs scheduled", len(h.r.scheduled))
	}
	got := h.r.scheduled[0]
	if got.Pipeline != "deploy" || got.QueuePartition != "tenant-a" || got.User != "ada" {
		t.Errorf("scheduled %+v", got)
	}
	want := map[string]any{"branch": "main", "note": "from json", "build": json.Number("42")}
	if fmt.Sprint(got.Variables) != fmt.Sprint(want) {
		t.Errorf("variables = %#v, want %#v", got.Variables, want)
	}

	r = h.post("/ui/pipelines/build/start", nil)
	wantRedirect(t, r, "/ui/jobs/job-new")
	if v := h.r.scheduled[1].Variables; v != nil {
		t.Errorf("a form without variables sent %#v, want none", v)
	}
}

func TestStartJobErrorsKeepTheForm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		pipeline string
		form     url.Values
		err      error
		status   int
		msg      string
	}{
		{"bad json", "build", url.Values{"variables_json": {`[1,2]`}, "var_key": {"k"}, "var_value": {xssAttr}}, nil, http.StatusBadRequest, "one JSON object"},
		{"value without name", "build", url.Values{"var_key": {""}, "var_value": {"v"}}, nil, http.StatusBadRequest, "has a value but no name"},
		{"queue full", "build", url.Values{"var_key": {"k"}, "var_value": {xssAttr}}, fmt.Errorf("%w: the wait list of pipeline \"build\" is full (queue_limit: 1)", pipeline.ErrQueueFull), http.StatusConflict, "is full"},
		{"shutting down", "build", nil, pipeline.ErrShuttingDown, http.StatusServiceUnavailable, "shutting down"},
		{"database unreachable", "build", nil, fmt.Errorf("admit: %w", store.ErrUnavailable), http.StatusServiceUnavailable, "cannot be reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.seed()
			h.r.scheduleErr = tt.err
			r := h.post("/ui/pipelines/"+tt.pipeline+"/start", tt.form)
			wantStatus(t, r, tt.status)
			assertSafe(t, r.body)
			doc := parse(t, r.body)
			if got := text(one(t, doc, "start-error")); !strings.Contains(got, tt.msg) {
				t.Errorf("error = %q, want %q", got, tt.msg)
			}
			if v := tt.form.Get("var_value"); v != "" {
				if got := attr(byTestID(doc, "var-value")[0], "value"); got != v {
					t.Errorf("the form lost the entered value: %q", got)
				}
			}
		})
	}
	h := newHarness(t)
	h.seed()
	wantStatus(t, h.post("/ui/pipelines/nope/start", nil), http.StatusNotFound)
	wantStatus(t, h.get("/ui/pipelines/nope/start"), http.StatusNotFound)
	r := h.get("/ui/pipelines/build/start")
	wantStatus(t, r, http.StatusOK)
	one(t, parse(t, r.body), "start-form")
}

func TestJobsPagePagesAndFilters(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.r.pipelines = []pipeline.Info{{Name: "build", Definition: buildDef()}, {Name: "other", Definition: buildDef()}}
	for i := range 120 {
		p := "build"
		if i%2 == 1 {
			p = "other"
		}
		h.r.addJob(&pipeline.Job{ID: fmt.Sprintf("job-%03d", i), Pipeline: p, Status: pipeline.JobSucceeded,
			Created: testNow.Add(time.Duration(i) * time.Second), Variables: map[string]any{"i": i, "x": xssAttr}})
	}
	r := h.get("/ui/jobs")
	wantStatus(t, r, http.StatusOK)
	assertSafe(t, r.body)
	doc := parse(t, r.body)
	rows := byTestID(doc, "job-row")
	if len(rows) != 50 {
		t.Fatalf("%d rows, want a page of 50", len(rows))
	}
	if attr(rows[0], "data-job-id") != "job-119" || attr(rows[49], "data-job-id") != "job-070" {
		t.Errorf("rows from %s to %s, want job-119 to job-070", attr(rows[0], "data-job-id"), attr(rows[49], "data-job-id"))
	}
	older := attr(one(t, doc, "page-older"), "href")
	if older != "/ui/jobs?before=job-070" {
		t.Errorf("older = %q", older)
	}
	for _, q := range h.r.queries {
		if q.Limit != 51 {
			t.Errorf("jobs page queried with limit %d, want 51", q.Limit)
		}
	}

	r = h.get(older)
	doc = parse(t, r.body)
	if rows := byTestID(doc, "job-row"); len(rows) != 50 || attr(rows[0], "data-job-id") != "job-069" {
		t.Errorf("second page starts at %s", attr(rows[0], "data-job-id"))
	}
	one(t, doc, "page-newest")

	r = h.get("/ui/jobs?pipeline=other&status=succeeded&before=job-021")
	doc = parse(t, r.body)
	rows = byTestID(doc, "job-row")
	if len(rows) != 10 {
		t.Errorf("%d rows of other before job-021, want 10", len(rows))
	}
	if len(byTestID(doc, "page-older")) != 0 {
		t.Errorf("last page links to older jobs")
	}
	last := h.r.queries[len(h.r.queries)-1]
	if last.Pipeline != "other" || len(last.Statuses) != 1 || last.Statuses[0] != pipeline.JobSucceeded || last.Before != "job-021" {
		t.Errorf("query = %+v", last)
	}

	// An unknown status is ignored rather than failing.
	r = h.get("/ui/jobs?status=bogus")
	wantStatus(t, r, http.StatusOK)
	if q := h.r.queries[len(h.r.queries)-1]; len(q.Statuses) != 0 {
		t.Errorf("unknown status filtered by %v", q.Statuses)
	}
}

func TestJobsFragment(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	r := h.get("/ui/fragments/jobs?pipeline=build")
	wantStatus(t, r, http.StatusOK)
	if strings.Contains(r.body, "<html") {
		t.Errorf("fragment is a whole page")
	}
	doc := parse(t, r.body)
	table := one(t, doc, "jobs-table")
	version := attr(table, "data-version")
	if len(byTestID(doc, "job-row")) != 3 || version == "" {
		t.Fatalf("fragment rows = %d, version %q", len(byTestID(doc, "job-row")), version)
	}
	// Unchanged: no content, so htmx keeps the table as it is.
	r = h.get("/ui/fragments/jobs?pipeline=build&v=" + version)
	wantStatus(t, r, http.StatusNoContent)
	// Changed: a fresh table.
	h.r.update("job-running", func(j *pipeline.Job) { j.Status = pipeline.JobFailed; j.End = tp(testNow) })
	r = h.get("/ui/fragments/jobs?pipeline=build&v=" + version)
	wantStatus(t, r, http.StatusOK)
	if got := attr(one(t, parse(t, r.body), "jobs-table"), "data-version"); got == version {
		t.Errorf("version unchanged after a job changed")
	}
}

func TestJobPage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	h.r.setLog("job-running", "test", pipeline.Stdout, "ok 1\n"+xssScript+"\n"+xssAttr+"\n")
	h.r.setLog("job-running", "test", pipeline.Stderr, "warn\n")
	r := h.get("/ui/jobs/job-running")
	wantStatus(t, r, http.StatusOK)
	assertSafe(t, r.body)
	doc := parse(t, r.body)
	if got := attr(one(t, doc, "job"), "sse-connect"); got != "/ui/jobs/job-running/events?log=test" {
		// No task was chosen: the stream is told which log the page shows, to switch it later.
		t.Errorf("job stream = %q", got)
	}
	if got := text(one(t, doc, "job-user")); got != "ada"+xssAttr {
		t.Errorf("user = %q", got)
	}
	if n := len(byTestID(doc, "graph-node")); n != 2 {
		t.Errorf("%d graph nodes", n)
	}
	if got := text(one(t, doc, "log-stdout")); got != "ok 1\n"+xssScript+"\n"+xssAttr+"\n" {
		t.Errorf("stdout = %q", got)
	}
	if got := text(one(t, doc, "log-stderr")); got != "warn\n" {
		t.Errorf("stderr = %q", got)
	}
	// The live tail continues where the page's text ends.
	if got := attr(one(t, doc, "log-streams"), "sse-connect"); got != "/ui/jobs/job-running/tasks/test/log/events?stderr=5&stdout=62" {
		t.Errorf("log stream = %q", got)
	}
	vars := byTestID(doc, "job-variable")
	if len(vars) != 2 || !strings.Contains(text(vars[0]), xssScript) || !strings.Contains(text(vars[1]), "42") {
		t.Errorf("variables = %d", len(vars))
	}

	// Another task by query; a finished job has no streams.
	r = h.get("/ui/jobs/job-done?task=compile")
	doc = parse(t, r.body)
	if attr(one(t, doc, "log"), "data-task") != "compile" {
		t.Errorf("log of %q", attr(one(t, doc, "log"), "data-task"))
	}
	if attr(one(t, doc, "job"), "sse-connect") != "" || attr(one(t, doc, "log-streams"), "sse-connect") != "" {
		t.Errorf("a finished job's page opens streams")
	}

	// A queued job says where and why it waits.
	r = h.get("/ui/jobs/job-queued")
	doc = parse(t, r.body)
	if got := text(one(t, doc, "wait-info")); !strings.Contains(got, "position 1 of 1") || !strings.Contains(got, "concurrency 1/1 reached") {
		t.Errorf("wait info = %q", got)
	}

	r = h.get("/ui/jobs/missing")
	wantStatus(t, r, http.StatusNotFound)
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("not found answered %q", r.Header.Get("Content-Type"))
	}
	if got := text(one(t, parse(t, r.body), "error-message")); !strings.Contains(got, "no job with this ID") {
		t.Errorf("message = %q", got)
	}
}

func TestJobPageLongLogShowsTail(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.TailBytes = 1000; c.MaxLogLines = 20 })
	h.seed()
	var b strings.Builder
	for i := range 500 {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	h.r.setLog("job-done", "test", pipeline.Stdout, b.String())
	doc := parse(t, h.get("/ui/jobs/job-done?task=test").body)
	got := text(one(t, doc, "log-stdout"))
	if !strings.HasPrefix(got, "line 480\n") || !strings.HasSuffix(got, "line 499\n") {
		t.Errorf("tail = %q, want lines 480 to 499", got)
	}
	one(t, doc, "log-omitted")
}

func TestLogDownload(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	h.r.setLog("job-done", "test", pipeline.Stderr, xssScript+"\n")
	r := h.get("/ui/jobs/job-done/tasks/test/log/stderr")
	wantStatus(t, r, http.StatusOK)
	if r.body != xssScript+"\n" {
		t.Errorf("body = %q", r.body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cd := r.Header.Get("Content-Disposition"); cd != `attachment; filename="build-job-test.stderr.log"` {
		t.Errorf("Content-Disposition = %q", cd)
	}
	wantStatus(t, h.get("/ui/jobs/job-done/tasks/nope/log/stdout"), http.StatusNotFound)
	wantStatus(t, h.get("/ui/jobs/job-done/tasks/test/log/other"), http.StatusNotFound)
}

func TestCancelNeedsConfirmation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	r := h.get("/ui/jobs/job-running/cancel")
	wantStatus(t, r, http.StatusOK)
	one(t, parse(t, r.body), "confirm-cancel")

	// A POST without the confirmation shows it instead of canceling.
	r = h.post("/ui/jobs/job-running/cancel", nil)
	wantStatus(t, r, http.StatusOK)
	one(t, parse(t, r.body), "confirm-cancel")
	if len(h.r.canceled) != 0 {
		t.Fatalf("canceled without confirmation")
	}

	r = h.post("/ui/jobs/job-running/cancel", url.Values{"confirmed": {"1"}})
	wantRedirect(t, r, "/ui/jobs/job-running")
	if len(h.r.canceled) != 1 {
		t.Errorf("canceled %v", h.r.canceled)
	}

	// From the wait list, back to the wait list.
	r = h.post("/ui/jobs/job-queued/cancel", url.Values{"confirmed": {"1"}, "next": {"/ui/pipelines/build/queue"}})
	wantRedirect(t, r, "/ui/pipelines/build/queue")

	r = h.post("/ui/jobs/job-done/cancel", url.Values{"confirmed": {"1"}})
	wantStatus(t, r, http.StatusConflict)
	wantStatus(t, h.get("/ui/jobs/job-done/cancel"), http.StatusConflict)
}

func TestRerun(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	h.r.newID = "job-again"
	wantRedirect(t, h.post("/ui/jobs/job-queued/rerun", nil), "/ui/jobs/job-again")
	got := h.r.scheduled[0]
	if got.Pipeline != "build" || got.QueuePartition != "p1" || got.User != "ada" {
		t.Errorf("rerun scheduled %+v", got)
	}
	h.r.scheduleErr = fmt.Errorf("%w: no room", pipeline.ErrNoQueue)
	r := h.post("/ui/jobs/job-running/rerun", nil)
	wantStatus(t, r, http.StatusConflict)
	if got := text(one(t, parse(t, r.body), "error-message")); !strings.Contains(got, "no room") {
		t.Errorf("message = %q", got)
	}
}

func TestQueuePage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	h.r.addJob(&pipeline.Job{ID: "job-queued-2", Pipeline: "build", Status: pipeline.JobQueued, Created: testNow,
		QueuePartition: xssScript, StartAfter: testNow.Add(45 * time.Second)})
	r := h.get("/ui/pipelines/build/queue")
	wantStatus(t, r, http.StatusOK)
	assertSafe(t, r.body)
	doc := parse(t, r.body)
	rows := byTestID(doc, "queue-row")
	if len(rows) != 2 || attr(rows[0], "data-job-id") != "job-queued" || attr(rows[1], "data-job-id") != "job-queued-2" {
		t.Fatalf("wait list order wrong: %d rows", len(rows))
	}
	if got := text(rows[1]); !strings.Contains(got, xssScript) || !strings.Contains(got, "in 45s") {
		t.Errorf("second row = %q", got)
	}
	if n := len(byTestID(doc, "running-row")); n != 1 {
		t.Errorf("%d running rows", n)
	}
	if got := attr(byTestID(rows[0], "queue-cancel")[0], "href"); got != "/ui/jobs/job-queued/cancel?next=%2Fui%2Fpipelines%2Fbuild%2Fqueue" {
		t.Errorf("cancel link = %q", got)
	}
	wantStatus(t, h.get("/ui/pipelines/nope/queue"), http.StatusNotFound)
}

func TestBasePath(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.BasePath = "/prunner" })
	h.seed()
	for _, path := range []string{"/prunner/ui/", "/ui/"} {
		r := h.get(path)
		wantStatus(t, r, http.StatusOK)
		walk(parse(t, r.body), func(n *html.Node) {
			for _, key := range []string{"href", "src", "action", "hx-get", "sse-connect"} {
				if v := attr(n, key); v != "" && !strings.HasPrefix(v, "/prunner/") && !strings.HasPrefix(v, "#") {
					t.Errorf("%s: %s=%q does not respect the base path", path, key, v)
				}
			}
		})
	}
	wantRedirect(t, h.do(request{path: "/prunner/ui/jobs", anonymous: true}), "/prunner/ui/login?next=%2Fprunner%2Fui%2Fjobs")
	wantRedirect(t, h.do(request{path: "/ui/jobs", anonymous: true}), "/prunner/ui/login?next=%2Fprunner%2Fui%2Fjobs")
}

func TestStaticAssets(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	doc := parse(t, h.do(request{path: "/ui/login", anonymous: true}).body)
	var css string
	walk(doc, func(n *html.Node) {
		if n.Data == "link" && attr(n, "rel") == "stylesheet" {
			css = attr(n, "href")
		}
	})
	if !strings.Contains(css, "?v=") {
		t.Fatalf("stylesheet URL %q has no version", css)
	}
	r := h.do(request{path: css, anonymous: true})
	wantStatus(t, r, http.StatusOK)
	if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("Cache-Control = %q", cc)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
		t.Errorf("Content-Type = %q", ct)
	}
	r2 := h.do(request{path: "/ui/static/app.css", anonymous: true, header: map[string]string{"If-None-Match": r.Header.Get("ETag")}})
	wantStatus(t, r2, http.StatusNotModified)
	r3 := h.do(request{path: "/ui/static/app.css?v=old", anonymous: true})
	if cc := r3.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("stale version Cache-Control = %q", cc)
	}
	wantStatus(t, h.do(request{path: "/ui/static/nope.js", anonymous: true}), http.StatusNotFound)
	for _, name := range []string{"htmx.min.js", "sse.min.js", "app.js", "icon.svg"} {
		wantStatus(t, h.do(request{path: "/ui/static/" + name, anonymous: true}), http.StatusOK)
	}
}
