package dashboard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/prunner-dev/prunner/internal/dashboard/view"
	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/web/templates"
)

// emptyVarRows is how many empty key/value rows a start form offers.
const emptyVarRows = 3

// param returns a path parameter, unescaped (the app does not unescape paths).
func param(c *fiber.Ctx, name string) string {
	v := c.Params(name)
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

func (d *Dashboard) pipelinesPage(c *fiber.Ctx) error {
	ctx := c.UserContext()
	pipes, err := d.runner.Pipelines(ctx)
	if err != nil {
		return d.fail(c, err)
	}
	next, nextKnown := d.nextRuns(ctx)
	now := d.now()
	l := d.layout(c, "Pipelines", "pipelines")
	page := view.PipelinesPage{Layout: l, Pipelines: make([]view.PipelineRow, 0, len(pipes))}
	for _, p := range pipes {
		row := view.PipelineRow{
			Name:        p.Name,
			JobsURL:     d.paths.Jobs(p.Name, "", ""),
			QueueURL:    d.paths.Queue(p.Name),
			StartURL:    d.paths.Start(p.Name),
			Running:     p.RunningJobs,
			Waiting:     p.WaitingJobs,
			Schedulable: p.Schedulable,
			Reason:      p.NotSchedulableReason,
			Form:        d.startForm(p, l.CSRF, nil, "", "", ""),
		}
		row.Form.Compact = true
		row.NextRunUnknown = !nextKnown
		if t, ok := next[p.Name]; ok {
			row.NextRun, row.SchedulesURL = view.At(t, now), d.paths.Schedules(p.Name)
		}
		if def := p.Definition; def != nil {
			row.Concurrency, row.Tasks, row.Strategy = def.Concurrency, len(def.Tasks), string(def.QueueStrategy)
		}
		last, err := d.runner.Jobs(ctx, store.JobQuery{Pipeline: p.Name, Limit: 1, WithoutTasks: true})
		if err != nil {
			return d.fail(c, err)
		}
		if len(last) > 0 {
			r := view.NewJobRow(d.paths, last[0], now)
			row.LastJob = &r
		}
		page.Pipelines = append(page.Pipelines, row)
	}
	return d.render(c, fiber.StatusOK, templates.PipelinesPageView(page))
}

// startForm builds the start form of p, filled with what was sent when it is shown again.
func (d *Dashboard) startForm(p pipeline.Info, csrf string, rows []view.KV, jsonText, partition, errMsg string) view.StartForm {
	f := view.StartForm{
		Pipeline:  p.Name,
		Action:    d.paths.Start(p.Name),
		CSRF:      csrf,
		JSON:      jsonText,
		Partition: partition,
		Error:     errMsg,
	}
	if p.Definition != nil {
		f.Partitioned = p.Definition.QueueStrategy == pipeline.QueuePartitionedReplace
	}
	f.Rows = append(f.Rows, rows...)
	for range emptyVarRows {
		f.Rows = append(f.Rows, view.KV{})
	}
	return f
}

func (d *Dashboard) findPipeline(c *fiber.Ctx, name string) (pipeline.Info, error) {
	pipes, err := d.runner.Pipelines(c.UserContext())
	if err != nil {
		return pipeline.Info{}, err
	}
	for _, p := range pipes {
		if p.Name == name {
			return p, nil
		}
	}
	return pipeline.Info{}, fmt.Errorf("pipeline %q: %w", name, pipeline.ErrUnknownPipeline)
}

func (d *Dashboard) startPage(c *fiber.Ctx) error {
	p, err := d.findPipeline(c, param(c, "name"))
	if err != nil {
		return d.fail(c, err)
	}
	return d.renderStart(c, fiber.StatusOK, p, d.startForm(p, d.csrfToken(c), nil, "", "", ""))
}

func (d *Dashboard) renderStart(c *fiber.Ctx, status int, p pipeline.Info, f view.StartForm) error {
	desc := ""
	if def := p.Definition; def != nil {
		desc = fmt.Sprintf("%d tasks · concurrency %d · %s", len(def.Tasks), def.Concurrency, def.QueueStrategy)
	}
	return d.render(c, status, templates.StartPageView(view.StartPage{
		Layout:      d.layout(c, "Start "+p.Name, "pipelines"),
		Form:        f,
		Description: desc,
		PipelineURL: d.paths.Jobs(p.Name, "", ""),
	}))
}

// startJob schedules a job from the start form and opens it.
func (d *Dashboard) startJob(c *fiber.Ctx) error {
	p, err := d.findPipeline(c, param(c, "name"))
	if err != nil {
		return d.fail(c, err)
	}
	keys := c.Request().PostArgs().PeekMulti("var_key")
	values := c.Request().PostArgs().PeekMulti("var_value")
	jsonText := c.FormValue("variables_json")
	partition := strings.TrimSpace(c.FormValue("partition"))
	var rows []view.KV
	for i := range keys {
		kv := view.KV{Key: strings.TrimSpace(string(keys[i]))}
		if i < len(values) {
			kv.Value = string(values[i])
		}
		if kv.Key != "" || kv.Value != "" {
			rows = append(rows, kv)
		}
	}
	again := func(status int, msg string) error {
		return d.renderStart(c, status, p, d.startForm(p, d.csrfToken(c), rows, jsonText, partition, msg))
	}
	vars, msg := parseVariables(rows, jsonText)
	if msg != "" {
		return again(fiber.StatusBadRequest, msg)
	}
	id, err := d.runner.Schedule(c.UserContext(), pipeline.ScheduleRequest{
		Pipeline:       p.Name,
		Variables:      vars,
		QueuePartition: partition,
		User:           sessionFrom(c).User,
	})
	if err != nil {
		status, _, msg := failure(err)
		if status >= fiber.StatusInternalServerError && !errors.Is(err, pipeline.ErrShuttingDown) {
			d.logger.Error("dashboard: schedule failed", "pipeline", p.Name, "error", err)
		}
		return again(status, msg)
	}
	return c.Redirect(d.paths.Job(id), fiber.StatusSeeOther)
}

// parseVariables merges the key/value rows and the JSON object (whose keys win). It returns a
// message for people when the input is not usable.
func parseVariables(rows []view.KV, jsonText string) (map[string]any, string) {
	vars := map[string]any{}
	for i, kv := range rows {
		if kv.Key == "" {
			return nil, fmt.Sprintf("Variable row %d has a value but no name.", i+1)
		}
		if _, dup := vars[kv.Key]; dup {
			return nil, fmt.Sprintf("Variable %q is given twice.", kv.Key)
		}
		vars[kv.Key] = kv.Value
	}
	if strings.TrimSpace(jsonText) != "" {
		dec := json.NewDecoder(strings.NewReader(jsonText))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil || obj == nil || dec.More() {
			return nil, "Variables as JSON must be one JSON object, like {\"branch\": \"main\"}."
		}
		for k, v := range obj {
			vars[k] = v
		}
	}
	if len(vars) == 0 {
		return nil, ""
	}
	return vars, ""
}

// jobsTable builds the jobs table for the request's filters: one page from the store (never
// the whole history), newest first.
func (d *Dashboard) jobsTable(c *fiber.Ctx) (view.JobsTable, view.JobsFilter, error) {
	pipe := c.Query("pipeline")
	status := c.Query("status")
	before := c.Query("before")
	q := store.JobQuery{Pipeline: pipe, Limit: d.cfg.PageSize + 1, Before: before}
	if s, ok := pipeline.ParseJobStatus(status); ok {
		q.Statuses = []pipeline.JobStatus{s}
	} else {
		// An unknown status filters nothing (the page shows every job and no filter).
		status = ""
	}
	jobs, err := d.runner.Jobs(c.UserContext(), q)
	if err != nil {
		return view.JobsTable{}, view.JobsFilter{}, err
	}
	now := d.now()
	t := view.JobsTable{FragmentURL: d.paths.JobsFragment(pipe, status, before)}
	if len(jobs) > d.cfg.PageSize {
		jobs = jobs[:d.cfg.PageSize]
		t.OlderURL = d.paths.Jobs(pipe, status, jobs[len(jobs)-1].ID)
	}
	if before != "" {
		t.NewestURL = d.paths.Jobs(pipe, status, "")
	}
	for _, j := range jobs {
		t.Rows = append(t.Rows, view.NewJobRow(d.paths, j, now))
	}
	switch {
	case before != "":
		t.Empty = "No older jobs."
	case pipe != "" || status != "":
		t.Empty = "No jobs match these filters."
	default:
		t.Empty = "No jobs yet. Start one from the pipelines page."
	}
	digest, _ := json.Marshal(t)
	sum := sha256.Sum256(digest)
	t.Version = hex.EncodeToString(sum[:8])

	f := view.JobsFilter{Action: d.paths.Jobs("", "", ""), Pipeline: pipe, Status: status}
	for _, s := range pipeline.JobStatuses() {
		f.Statuses = append(f.Statuses, string(s))
	}
	return t, f, nil
}

func (d *Dashboard) jobsPage(c *fiber.Ctx) error {
	t, f, err := d.jobsTable(c)
	if err != nil {
		return d.fail(c, err)
	}
	pipes, err := d.runner.Pipelines(c.UserContext())
	if err != nil {
		return d.fail(c, err)
	}
	seen := false
	for _, p := range pipes {
		f.Pipelines = append(f.Pipelines, p.Name)
		seen = seen || p.Name == f.Pipeline
	}
	if f.Pipeline != "" && !seen {
		f.Pipelines = append(f.Pipelines, f.Pipeline)
	}
	title := "Jobs"
	if f.Pipeline != "" {
		title = "Jobs of " + f.Pipeline
	}
	return d.render(c, fiber.StatusOK, templates.JobsPageView(view.JobsPage{Layout: d.layout(c, title, "jobs"), Filter: f, Table: t}))
}

// jobsFragment is the jobs table alone, polled by the jobs page. It answers 204 (htmx keeps
// the table) when nothing changed since the version the page has.
func (d *Dashboard) jobsFragment(c *fiber.Ctx) error {
	t, _, err := d.jobsTable(c)
	if err != nil {
		return d.fail(c, err)
	}
	if c.Query("v") == t.Version {
		return c.SendStatus(fiber.StatusNoContent)
	}
	return d.render(c, fiber.StatusOK, templates.JobsTableView(t))
}

// jobView loads a job and builds its view at now.
func (d *Dashboard) jobView(c *fiber.Ctx, id, task, csrf string) (*pipeline.Job, view.JobView, error) {
	ctx := c.UserContext()
	job, err := d.runner.Job(ctx, id)
	if err != nil {
		return nil, view.JobView{}, err
	}
	var wait *pipeline.WaitInfo
	if job.Status == pipeline.JobQueued {
		if wait, err = d.runner.WaitInfo(ctx, id); err != nil && !errors.Is(err, pipeline.ErrJobNotFound) {
			return nil, view.JobView{}, err
		}
	}
	v := view.NewJobView(job, view.JobInput{Paths: d.paths, CSRF: csrf, Wait: wait, Task: task, Now: d.now()})
	return job, v, nil
}

func (d *Dashboard) jobPage(c *fiber.Ctx) error {
	id := param(c, "id")
	l := d.layout(c, "", "jobs")
	job, v, err := d.jobView(c, id, c.Query("task"), l.CSRF)
	if err != nil {
		return d.fail(c, err)
	}
	l.Title = job.Pipeline + " #" + view.ShortID(job.ID)
	page := view.JobPage{Layout: l, Job: v}
	if page.Log, err = d.logPanel(c.UserContext(), job, v.Selected); err != nil {
		return d.fail(c, err)
	}
	return d.render(c, fiber.StatusOK, templates.JobPageView(page))
}

// logPanel builds the log panel of a job's task from the tail of its output; nil when task is
// "" (a job without tasks).
func (d *Dashboard) logPanel(ctx context.Context, job *pipeline.Job, task string) (*view.LogPanel, error) {
	t := job.Task(task)
	if t == nil {
		return nil, nil
	}
	texts, err := d.readTails(ctx, job.ID, task)
	if err != nil {
		return nil, err
	}
	live := !job.Status.Final() && !t.Status.Final()
	return view.NewLogPanel(d.paths, job.ID, task, texts, live, d.cfg.MaxLogLines), nil
}

// logDownload sends one stream of a task's output as a text file, streamed from the runner
// (never loaded whole).
func (d *Dashboard) logDownload(c *fiber.Ctx) error {
	id, task := param(c, "id"), param(c, "task")
	stream := pipeline.LogStream(c.Params("stream"))
	if stream != pipeline.Stdout && stream != pipeline.Stderr {
		return d.notFound(c)
	}
	job, err := d.runner.Job(c.UserContext(), id)
	if err != nil {
		return d.fail(c, err)
	}
	if job.Task(task) == nil {
		return d.fail(c, pipeline.ErrTaskNotFound)
	}
	rc, err := d.runner.OpenLog(c.UserContext(), id, task, stream)
	if err != nil {
		return d.fail(c, err)
	}
	name := fileName(job.Pipeline + "-" + view.ShortID(job.ID) + "-" + task + "." + string(stream) + ".log")
	c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
	// fasthttp closes rc once it has been sent.
	return c.SendStream(rc)
}

// fileName keeps the characters that are safe in a Content-Disposition file name.
func fileName(s string) string {
	b := []byte(s)
	for i, ch := range b {
		ok := ch == '.' || ch == '-' || ch == '_' || ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z'
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}

func (d *Dashboard) cancelConfirm(c *fiber.Ctx) error {
	job, err := d.runner.Job(c.UserContext(), param(c, "id"))
	if err != nil {
		return d.fail(c, err)
	}
	return d.renderConfirm(c, job, c.Query("next"))
}

func (d *Dashboard) renderConfirm(c *fiber.Ctx, job *pipeline.Job, next string) error {
	if job.Status.Final() {
		return d.fail(c, pipeline.ErrJobFinished)
	}
	next = d.safeNext(next)
	back := next
	if back == d.paths.Home() {
		back, next = d.paths.Job(job.ID), ""
	}
	return d.render(c, fiber.StatusOK, templates.ConfirmCancelPageView(view.ConfirmCancelPage{
		Layout:  d.layout(c, "Cancel job", "jobs"),
		Job:     view.NewJobRow(d.paths, job, d.now()),
		Action:  d.paths.Cancel(job.ID),
		Next:    next,
		BackURL: back,
	}))
}

// cancelJob cancels after the confirmation page; a POST without the confirmation shows it.
func (d *Dashboard) cancelJob(c *fiber.Ctx) error {
	id := param(c, "id")
	next := c.FormValue("next")
	if c.FormValue("confirmed") != "1" {
		job, err := d.runner.Job(c.UserContext(), id)
		if err != nil {
			return d.fail(c, err)
		}
		return d.renderConfirm(c, job, next)
	}
	if err := d.runner.Cancel(c.UserContext(), id); err != nil {
		return d.fail(c, err)
	}
	to := d.safeNext(next)
	if next == "" || to == d.paths.Home() {
		to = d.paths.Job(id)
	}
	return c.Redirect(to, fiber.StatusSeeOther)
}

// rerunJob schedules the job's pipeline again with the same variables and partition.
func (d *Dashboard) rerunJob(c *fiber.Ctx) error {
	job, err := d.runner.Job(c.UserContext(), param(c, "id"))
	if err != nil {
		return d.fail(c, err)
	}
	id, err := d.runner.Schedule(c.UserContext(), pipeline.ScheduleRequest{
		Pipeline:       job.Pipeline,
		Variables:      job.Variables,
		QueuePartition: job.QueuePartition,
		User:           sessionFrom(c).User,
	})
	if err != nil {
		return d.fail(c, err)
	}
	return c.Redirect(d.paths.Job(id), fiber.StatusSeeOther)
}

// queueLimit caps the wait list shown (a wait list that long is a problem of its own).
const queueLimit = 1000

func (d *Dashboard) queuePage(c *fiber.Ctx) error {
	name := param(c, "name")
	ctx := c.UserContext()
	p, err := d.findPipeline(c, name)
	if err != nil {
		return d.fail(c, err)
	}
	running, err := d.runner.Jobs(ctx, store.JobQuery{Pipeline: name, Statuses: []pipeline.JobStatus{pipeline.JobRunning}, Limit: queueLimit, WithoutTasks: true})
	if err != nil {
		return d.fail(c, err)
	}
	queued, err := d.runner.Jobs(ctx, store.JobQuery{Pipeline: name, Statuses: []pipeline.JobStatus{pipeline.JobQueued}, Limit: queueLimit, WithoutTasks: true})
	if err != nil {
		return d.fail(c, err)
	}
	now := d.now()
	page := view.QueuePage{
		Layout:      d.layout(c, "Wait list of "+name, "pipelines"),
		Pipeline:    name,
		PipelineURL: d.paths.Jobs(name, "", ""),
	}
	if def := p.Definition; def != nil {
		page.Concurrency, page.Strategy = def.Concurrency, string(def.QueueStrategy)
	}
	for _, j := range running {
		page.Running = append(page.Running, view.NewJobRow(d.paths, j, now))
	}
	// The store lists newest first; the wait list runs oldest first.
	for i := len(queued) - 1; i >= 0; i-- {
		j := queued[i]
		r := view.QueueRow{
			Position:  len(page.Waiting) + 1,
			Job:       view.NewJobRow(d.paths, j, now),
			Partition: j.QueuePartition,
			CancelURL: d.paths.CancelNext(j.ID, d.paths.Queue(name)),
		}
		if !j.StartAfter.IsZero() && j.StartAfter.After(now) {
			r.StartsIn = view.Duration(j.StartAfter.Sub(now).Round(1e9))
		}
		page.Waiting = append(page.Waiting, r)
	}
	return d.render(c, fiber.StatusOK, templates.QueuePageView(page))
}

// atoi64 parses a non-negative offset; anything else is 0.
func atoi64(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}
