package templates

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"
	"golang.org/x/net/html"

	"github.com/prunner-dev/prunner/internal/dashboard/view"
	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Hostile strings that must come out as text, never as markup.
const (
	xssScript = `<script>alert(1)</script>`
	xssAttr   = `"><img src=x onerror=alert(1)>`
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func render(t *testing.T, c templ.Component) (*html.Node, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("Render() error: %v", err)
	}
	doc, err := html.Parse(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatalf("html.Parse() error: %v", err)
	}
	return doc, buf.String()
}

func walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

func byTestID(root *html.Node, id string) []*html.Node {
	var out []*html.Node
	walk(root, func(n *html.Node) {
		if n.Type == html.ElementNode && attr(n, "data-testid") == id {
			out = append(out, n)
		}
	})
	return out
}

func one(t *testing.T, root *html.Node, id string) *html.Node {
	t.Helper()
	nodes := byTestID(root, id)
	if len(nodes) != 1 {
		t.Fatalf("found %d elements with data-testid=%q, want 1", len(nodes), id)
	}
	return nodes[0]
}

func text(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	})
	return b.String()
}

func elements(root *html.Node, tag string) []*html.Node {
	var out []*html.Node
	walk(root, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == tag {
			out = append(out, n)
		}
	})
	return out
}

// assertNoInjectedMarkup fails when the document has an element or attribute that only a
// hostile string could have produced.
func assertNoInjectedMarkup(t *testing.T, doc *html.Node) {
	t.Helper()
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		if n.Data == "img" {
			t.Errorf("document has an injected <img> element")
		}
		if n.Data == "script" && attr(n, "src") == "" {
			t.Errorf("document has an inline <script> element")
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s> has an event handler attribute %s", n.Data, a.Key)
			}
			if a.Key == "style" {
				t.Errorf("<%s> has an inline style attribute (the CSP forbids them)", n.Data)
			}
		}
	})
}

func layout() view.Layout {
	return view.Layout{
		Title: "t", Paths: view.Paths{Base: "/base"}, Nav: "jobs", User: "ada", SignedIn: true, CSRF: "tok",
		Assets: view.Assets{CSS: "/base/ui/static/app.css?v=1", HTMX: "/base/ui/static/htmx.min.js?v=1", SSE: "/base/ui/static/sse.min.js?v=1", App: "/base/ui/static/app.js?v=1", Icon: "/base/ui/static/icon.svg?v=1"},
	}
}

func tp(t time.Time) *time.Time { return &t }

// sampleJob is a running job of a diamond DAG with hostile names and values.
func sampleJob() *pipeline.Job {
	start := now.Add(-time.Minute)
	return &pipeline.Job{
		ID:        "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
		Pipeline:  "release" + xssScript,
		Status:    pipeline.JobRunning,
		User:      "ada" + xssAttr,
		Variables: map[string]any{"branch": xssAttr, "note" + xssScript: "x"},
		Created:   start,
		Start:     &start,
		Tasks: []pipeline.Task{
			{Name: "build", Status: pipeline.TaskDone, Start: tp(start), End: tp(start.Add(20 * time.Second))},
			{Name: "lint", DependsOn: []string{"build"}, Status: pipeline.TaskError, Start: tp(start.Add(20 * time.Second)), End: tp(start.Add(30 * time.Second)), ExitCode: 2, Error: "exit status 2"},
			{Name: "test" + xssAttr, DependsOn: []string{"build"}, Status: pipeline.TaskRunning, Start: tp(start.Add(20 * time.Second))},
			{Name: "deploy", DependsOn: []string{"lint", "test" + xssAttr}, Status: pipeline.TaskWaiting},
		},
	}
}

func TestPageLayout(t *testing.T) {
	t.Parallel()
	doc, _ := render(t, JobsPageView(view.JobsPage{Layout: layout(), Table: view.JobsTable{Empty: "none"}}))
	for _, s := range elements(doc, "script") {
		if !strings.HasPrefix(attr(s, "src"), "/base/ui/static/") || !hasAttr(s, "defer") {
			t.Errorf("script src=%q defer=%v; want a deferred asset below /base/ui/static/", attr(s, "src"), hasAttr(s, "defer"))
		}
	}
	if got := attr(one(t, doc, "nav-jobs"), "aria-current"); got != "page" {
		t.Errorf("nav-jobs aria-current = %q, want page", got)
	}
	if got := attr(one(t, doc, "nav-pipelines"), "aria-current"); got != "" {
		t.Errorf("nav-pipelines aria-current = %q, want none", got)
	}
	var cfg string
	for _, m := range elements(doc, "meta") {
		if attr(m, "name") == "htmx-config" {
			cfg = attr(m, "content")
		}
	}
	if !strings.Contains(cfg, `"includeIndicatorStyles":false`) || !strings.Contains(cfg, `"allowEval":false`) {
		t.Errorf("htmx-config = %q; want indicator styles and eval off", cfg)
	}
	logout := one(t, doc, "logout")
	form := logout.Parent
	if attr(form, "action") != "/base/ui/logout" || attr(form, "method") != "post" {
		t.Errorf("logout form action=%q method=%q", attr(form, "action"), attr(form, "method"))
	}
	assertNoInjectedMarkup(t, doc)
}

func TestPageLayoutViaHeaderHasNoLogout(t *testing.T) {
	t.Parallel()
	l := layout()
	l.ViaHeader = true
	doc, _ := render(t, JobsPageView(view.JobsPage{Layout: l}))
	if n := len(byTestID(doc, "logout")); n != 0 {
		t.Errorf("found %d logout buttons for a header-authenticated request, want 0", n)
	}
}

func TestLoginPage(t *testing.T) {
	t.Parallel()
	l := layout()
	l.SignedIn = false
	doc, _ := render(t, LoginPageView(view.LoginPage{Layout: l, Next: "/base/ui/jobs", Flash: &view.Flash{Kind: "warning", Text: "expired " + xssScript}}))
	form := one(t, doc, "login-form")
	if attr(form, "action") != "/base/ui/login" || attr(form, "method") != "post" {
		t.Errorf("login form action=%q method=%q", attr(form, "action"), attr(form, "method"))
	}
	var csrf, next string
	for _, in := range elements(form, "input") {
		switch attr(in, "name") {
		case "csrf":
			csrf = attr(in, "value")
		case "next":
			next = attr(in, "value")
		}
	}
	if csrf != "tok" || next != "/base/ui/jobs" {
		t.Errorf("hidden fields csrf=%q next=%q", csrf, next)
	}
	f := one(t, doc, "flash")
	if got := text(f); got != "expired "+xssScript {
		t.Errorf("flash text = %q", got)
	}
	if attr(f, "role") != "status" {
		t.Errorf("warning flash role = %q, want status", attr(f, "role"))
	}
	if len(byTestID(doc, "nav-jobs")) != 0 {
		t.Errorf("signed-out page shows navigation")
	}
	assertNoInjectedMarkup(t, doc)
}

func TestJobPage(t *testing.T) {
	t.Parallel()
	job := sampleJob()
	p := view.Paths{Base: "/base"}
	v := view.NewJobView(job, view.JobInput{Paths: p, CSRF: "tok", Now: now})
	logText := "line 1\n" + xssScript + "\n" + xssAttr + "\n"
	lp := view.NewLogPanel(p, job.ID, v.Selected, []view.LogText{
		{Stream: pipeline.Stdout, Text: logText, End: 100},
		{Stream: pipeline.Stderr, Text: "", End: 0},
	}, true, 5000)
	doc, raw := render(t, JobPageView(view.JobPage{Layout: layout(), Job: v, Log: lp}))
	assertNoInjectedMarkup(t, doc)
	if strings.Contains(raw, xssScript) || strings.Contains(raw, xssAttr) {
		t.Errorf("page contains a hostile string unescaped")
	}

	root := one(t, doc, "job")
	if got := attr(root, "sse-connect"); got != "/base/ui/jobs/"+job.ID+"/events?log=test%22%3E%3Cimg+src%3Dx+onerror%3Dalert%281%29%3E" {
		t.Errorf("job sse-connect = %q", got)
	}
	if attr(root, "sse-close") != "end" || attr(root, "hx-ext") != "sse" {
		t.Errorf("job stream attributes: hx-ext=%q sse-close=%q", attr(root, "hx-ext"), attr(root, "sse-close"))
	}
	if got := text(one(t, doc, "job-pipeline")); got != job.Pipeline {
		t.Errorf("pipeline = %q, want %q", got, job.Pipeline)
	}
	if got := attr(one(t, doc, "job-status"), "data-status"); got != "running" {
		t.Errorf("job status = %q, want running", got)
	}
	if got := text(one(t, doc, "job-user")); got != job.User {
		t.Errorf("user = %q", got)
	}
	vars := byTestID(doc, "job-variable")
	if len(vars) != 2 {
		t.Fatalf("%d variables shown, want 2", len(vars))
	}
	if got := text(vars[0]); !strings.Contains(got, "branch") || !strings.Contains(got, xssAttr) {
		t.Errorf("first variable = %q", got)
	}
	if n := len(byTestID(doc, "job-cancel")); n != 1 {
		t.Errorf("%d cancel links for a running job, want 1", n)
	}

	// Graph: one node per task linking to its log, one edge per dependency.
	nodes := byTestID(doc, "graph-node")
	if len(nodes) != 4 {
		t.Fatalf("%d graph nodes, want 4", len(nodes))
	}
	status := map[string]string{}
	for _, n := range nodes {
		status[attr(n, "data-task")] = attr(n, "data-status")
		if !strings.HasPrefix(attr(n, "href"), "/base/ui/jobs/"+job.ID+"?task=") {
			t.Errorf("node %q href = %q", attr(n, "data-task"), attr(n, "href"))
		}
	}
	want := map[string]string{"build": "done", "lint": "error", "test" + xssAttr: "running", "deploy": "waiting"}
	for k, w := range want {
		if status[k] != w {
			t.Errorf("node %q status = %q, want %q", k, status[k], w)
		}
	}
	if n := len(byTestID(doc, "graph-edge")); n != 4 {
		t.Errorf("%d graph edges, want 4", n)
	}
	sel := 0
	for _, n := range nodes {
		if attr(n, "aria-current") == "true" {
			sel++
			if attr(n, "data-task") != "test"+xssAttr {
				t.Errorf("selected node = %q, want the running task", attr(n, "data-task"))
			}
		}
	}
	if sel != 1 {
		t.Errorf("%d selected nodes, want 1", sel)
	}

	// Timeline: a bar for each started task, none for the waiting one.
	if n := len(byTestID(doc, "timeline-bar")); n != 3 {
		t.Errorf("%d timeline bars, want 3", n)
	}
	if n := len(byTestID(doc, "task-row")); n != 4 {
		t.Errorf("%d task rows, want 4", n)
	}
	if got := text(one(t, doc, "task-error")); got != "exit status 2" {
		t.Errorf("task error = %q", got)
	}

	// Log panel: the text as text, the live stream from the rendered offsets.
	stdout := one(t, doc, "log-stdout")
	if got := text(stdout); got != logText {
		t.Errorf("stdout text = %q, want %q", got, logText)
	}
	if attr(stdout, "sse-swap") != "stdout" || attr(stdout, "hx-swap") != "beforeend" {
		t.Errorf("stdout swap attributes sse-swap=%q hx-swap=%q", attr(stdout, "sse-swap"), attr(stdout, "hx-swap"))
	}
	streams := one(t, doc, "log-streams")
	if got := attr(streams, "sse-connect"); !strings.HasSuffix(got, "/log/events?stderr=0&stdout=100") {
		t.Errorf("log sse-connect = %q", got)
	}
	if got := attr(streams, "data-max-lines"); got != "5000" {
		t.Errorf("data-max-lines = %q", got)
	}
	if got := attr(one(t, doc, "log-download-stdout"), "href"); !strings.HasSuffix(got, "/log/stdout") {
		t.Errorf("download href = %q", got)
	}
	if got := text(one(t, doc, "log-stderr")); got != "" {
		t.Errorf("stderr text = %q, want empty", got)
	}
}

func TestJobPageFinal(t *testing.T) {
	t.Parallel()
	job := sampleJob()
	job.Status = pipeline.JobSucceeded
	job.End = tp(now)
	for i := range job.Tasks {
		job.Tasks[i].Status = pipeline.TaskDone
		job.Tasks[i].Start, job.Tasks[i].End = tp(now.Add(-time.Second)), tp(now)
	}
	p := view.Paths{}
	v := view.NewJobView(job, view.JobInput{Paths: p, Task: "lint", Now: now})
	lp := view.NewLogPanel(p, job.ID, v.Selected, []view.LogText{{Stream: pipeline.Stdout, Text: "done\n", Omitted: true}}, false, 5000)
	doc, _ := render(t, JobPageView(view.JobPage{Layout: layout(), Job: v, Log: lp}))
	if hasAttr(one(t, doc, "job"), "sse-connect") {
		t.Errorf("a finished job's page opens a live stream")
	}
	if hasAttr(one(t, doc, "log-streams"), "sse-connect") {
		t.Errorf("a finished task's log opens a live stream")
	}
	if n := len(byTestID(doc, "job-cancel")); n != 0 {
		t.Errorf("a finished job offers cancel")
	}
	if n := len(byTestID(doc, "log-omitted")); n != 1 {
		t.Errorf("%d omitted notes, want 1", n)
	}
	if got := attr(one(t, doc, "log"), "data-task"); got != "lint" {
		t.Errorf("log of %q, want the requested task lint", got)
	}
}

func TestJobDetailsWaitingAndReplaced(t *testing.T) {
	t.Parallel()
	job := &pipeline.Job{ID: "j1", Pipeline: "p", Status: pipeline.JobQueued, Created: now, QueuePartition: "tenant" + xssScript,
		StartAfter: now.Add(90 * time.Second)}
	v := view.NewJobView(job, view.JobInput{Paths: view.Paths{}, Now: now,
		Wait: &pipeline.WaitInfo{Position: 2, Of: 3, Partition: "tenant" + xssScript, Reason: "concurrency 1/1 reached"}})
	doc, _ := render(t, JobDetails(v))
	w := text(one(t, doc, "wait-info"))
	for _, want := range []string{"position 2 of 3", "tenant" + xssScript, "concurrency 1/1 reached", "starts in 1m 30s"} {
		if !strings.Contains(w, want) {
			t.Errorf("wait info %q lacks %q", w, want)
		}
	}
	assertNoInjectedMarkup(t, doc)

	job.Status = pipeline.JobReplaced
	job.ReplacedBy = "j2"
	v = view.NewJobView(job, view.JobInput{Paths: view.Paths{Base: "/b"}, Now: now})
	doc, _ = render(t, JobDetails(v))
	a := elements(one(t, doc, "replaced-by"), "a")
	if len(a) != 1 || attr(a[0], "href") != "/b/ui/jobs/j2" {
		t.Errorf("replaced-by link = %v", a)
	}
	if len(byTestID(doc, "wait-info")) != 0 {
		t.Errorf("a replaced job shows wait info")
	}
}

func TestJobsTable(t *testing.T) {
	t.Parallel()
	p := view.Paths{}
	job := sampleJob()
	tbl := view.JobsTable{
		Rows:        []view.JobRow{view.NewJobRow(p, job, now)},
		FragmentURL: p.JobsFragment("release", "running", ""),
		Version:     "abc123",
		OlderURL:    p.Jobs("release", "running", job.ID),
	}
	doc, _ := render(t, JobsTableView(tbl))
	root := one(t, doc, "jobs-table")
	if attr(root, "hx-get") != "/ui/fragments/jobs?pipeline=release&status=running" || attr(root, "hx-trigger") != "every 2s" || attr(root, "hx-swap") != "outerHTML" {
		t.Errorf("polling attributes: hx-get=%q hx-trigger=%q hx-swap=%q", attr(root, "hx-get"), attr(root, "hx-trigger"), attr(root, "hx-swap"))
	}
	if got := attr(root, "hx-vals"); got != `{"v":"abc123"}` {
		t.Errorf("hx-vals = %q", got)
	}
	rows := byTestID(doc, "job-row")
	if len(rows) != 1 || attr(rows[0], "data-status") != "running" {
		t.Fatalf("rows = %d", len(rows))
	}
	if got := text(one(t, doc, "job-vars")); !strings.Contains(got, "branch="+xssAttr) {
		t.Errorf("variables summary = %q", got)
	}
	if got := attr(one(t, doc, "page-older"), "href"); got != "/ui/jobs?before="+job.ID+"&pipeline=release&status=running" {
		t.Errorf("older href = %q", got)
	}
	if len(byTestID(doc, "page-newest")) != 0 {
		t.Errorf("first page links to the newest page")
	}
	assertNoInjectedMarkup(t, doc)
}

func TestStartForm(t *testing.T) {
	t.Parallel()
	f := view.StartForm{Pipeline: "p" + xssAttr, Action: "/ui/pipelines/p/start", CSRF: "tok", Partitioned: true,
		Rows: []view.KV{{Key: "k", Value: xssScript}, {}, {}}, JSON: xssScript, Error: "bad " + xssScript}
	doc, _ := render(t, StartFormView(f))
	form := one(t, doc, "start-form")
	if attr(form, "method") != "post" || attr(form, "action") != "/ui/pipelines/p/start" {
		t.Errorf("form method=%q action=%q", attr(form, "method"), attr(form, "action"))
	}
	if n := len(byTestID(doc, "var-key")); n != 3 {
		t.Errorf("%d variable rows, want 3", n)
	}
	if got := attr(byTestID(doc, "var-value")[0], "value"); got != xssScript {
		t.Errorf("first value = %q", got)
	}
	if got := text(one(t, doc, "start-json")); got != xssScript {
		t.Errorf("json = %q", got)
	}
	one(t, doc, "start-partition")
	if got := text(one(t, doc, "start-error")); got != "bad "+xssScript {
		t.Errorf("error = %q", got)
	}
	assertNoInjectedMarkup(t, doc)

	f.Partitioned = false
	doc, _ = render(t, StartFormView(f))
	if len(byTestID(doc, "start-partition")) != 0 {
		t.Errorf("partition input shown for a pipeline without partitions")
	}
}

func TestPipelinesPage(t *testing.T) {
	t.Parallel()
	last := view.NewJobRow(view.Paths{}, sampleJob(), now)
	page := view.PipelinesPage{Layout: layout(), Pipelines: []view.PipelineRow{
		{Name: "a" + xssScript, Running: 2, Waiting: 1, Schedulable: true, LastJob: &last, Form: view.StartForm{Pipeline: "a"}},
		{Name: "b", Schedulable: false, Reason: "queue full " + xssAttr, Form: view.StartForm{Pipeline: "b"}},
	}}
	doc, _ := render(t, PipelinesPageView(page))
	rows := byTestID(doc, "pipeline-row")
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	if got := text(byTestID(rows[0], "pipeline-name")[0]); got != "a"+xssScript {
		t.Errorf("name = %q", got)
	}
	if got := strings.TrimSpace(text(byTestID(rows[0], "pipeline-running")[0])); got != "2" {
		t.Errorf("running = %q", got)
	}
	if got := attr(byTestID(rows[0], "status")[0], "data-status"); got != "running" {
		t.Errorf("last job status = %q", got)
	}
	if got := text(byTestID(rows[1], "pipeline-reason")[0]); got != "queue full "+xssAttr {
		t.Errorf("reason = %q", got)
	}
	if n := len(byTestID(doc, "start-form")); n != 2 {
		t.Errorf("%d start forms", n)
	}
	assertNoInjectedMarkup(t, doc)
}

func TestQueueAndConfirmPages(t *testing.T) {
	t.Parallel()
	p := view.Paths{}
	j := sampleJob()
	j.Status = pipeline.JobQueued
	page := view.QueuePage{Layout: layout(), Pipeline: "p", Waiting: []view.QueueRow{
		{Position: 1, Job: view.NewJobRow(p, j, now), Partition: "x" + xssScript, StartsIn: "5s", CancelURL: p.CancelNext(j.ID, p.Queue("p"))},
	}}
	doc, _ := render(t, QueuePageView(page))
	rows := byTestID(doc, "queue-row")
	if len(rows) != 1 || !strings.Contains(text(rows[0]), "x"+xssScript) || !strings.Contains(text(rows[0]), "in 5s") {
		t.Fatalf("queue rows = %d %q", len(rows), text(rows[0]))
	}
	if got := attr(one(t, doc, "queue-cancel"), "href"); got != "/ui/jobs/"+j.ID+"/cancel?next=%2Fui%2Fpipelines%2Fp%2Fqueue" {
		t.Errorf("cancel href = %q", got)
	}
	assertNoInjectedMarkup(t, doc)

	doc, _ = render(t, ConfirmCancelPageView(view.ConfirmCancelPage{Layout: layout(), Job: view.NewJobRow(p, j, now), Action: p.Cancel(j.ID), BackURL: p.Job(j.ID)}))
	form := one(t, doc, "confirm-cancel-submit").Parent
	if attr(form, "action") != "/ui/jobs/"+j.ID+"/cancel" || attr(form, "method") != "post" {
		t.Errorf("confirm form action=%q", attr(form, "action"))
	}
	found := false
	for _, in := range elements(form, "input") {
		found = found || attr(in, "name") == "confirmed" && attr(in, "value") == "1"
	}
	if !found {
		t.Errorf("confirm form lacks confirmed=1")
	}
}

func TestErrorPage(t *testing.T) {
	t.Parallel()
	doc, _ := render(t, ErrorPageView(view.ErrorPage{Layout: layout(), Status: 404, Heading: "Job not found", Message: xssScript, BackURL: "/ui/jobs", Back: "Back"}))
	if got := attr(one(t, doc, "error-page"), "data-status"); got != "404" {
		t.Errorf("data-status = %q", got)
	}
	if got := text(one(t, doc, "error-message")); got != xssScript {
		t.Errorf("message = %q", got)
	}
	assertNoInjectedMarkup(t, doc)
}

func TestHrefSanitized(t *testing.T) {
	t.Parallel()
	// A job ID is escaped into the path; even a hostile one cannot become a javascript: URL.
	row := view.NewJobRow(view.Paths{}, &pipeline.Job{ID: "javascript:alert(1)", Pipeline: "p", Status: pipeline.JobQueued, Created: now}, now)
	doc, _ := render(t, JobsTableView(view.JobsTable{Rows: []view.JobRow{row}}))
	if got := attr(one(t, doc, "job-link"), "href"); !strings.HasPrefix(got, "/ui/jobs/") {
		t.Errorf("href = %q", got)
	}
}
