package view

import (
	"net/url"
	"strconv"
	"strings"
)

// Paths builds the dashboard's URLs below the base path (a host app may serve prunner under a
// sub-path such as /prunner). Every link and form action comes from here.
type Paths struct {
	// Base is "" or a path starting with "/" and not ending with one.
	Base string
}

func (p Paths) ui() string { return p.Base + "/ui" }

// Home is the pipelines page.
func (p Paths) Home() string { return p.ui() + "/" }

// Login is the sign-in page; next is the page to return to ("" for the home page).
func (p Paths) Login(next string) string {
	if next == "" {
		return p.ui() + "/login"
	}
	return p.ui() + "/login?" + url.Values{"next": {next}}.Encode()
}

// LoginWithReason is the sign-in page with a message key (expired, signed_out).
func (p Paths) LoginWithReason(reason, next string) string {
	v := url.Values{"reason": {reason}}
	if next != "" {
		v.Set("next", next)
	}
	return p.ui() + "/login?" + v.Encode()
}

// Logout signs out (POST).
func (p Paths) Logout() string { return p.ui() + "/logout" }

// Jobs is the jobs page with optional filters and cursor.
func (p Paths) Jobs(pipeline, status, before string) string {
	return p.ui() + "/jobs" + query(pipeline, status, before)
}

// JobsFragment is the self-refreshing table of the jobs page.
func (p Paths) JobsFragment(pipeline, status, before string) string {
	return p.ui() + "/fragments/jobs" + query(pipeline, status, before)
}

func query(pipeline, status, before string) string {
	v := url.Values{}
	if pipeline != "" {
		v.Set("pipeline", pipeline)
	}
	if status != "" {
		v.Set("status", status)
	}
	if before != "" {
		v.Set("before", before)
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// Job is a job's page.
func (p Paths) Job(id string) string { return p.ui() + "/jobs/" + url.PathEscape(id) }

// JobTask is a job's page with the log of task selected.
func (p Paths) JobTask(id, task string) string {
	return p.Job(id) + "?" + url.Values{"task": {task}}.Encode()
}

// JobEvents is the SSE stream of a job page's live fragments. task is the task the person
// chose ("" for none); shown is the task whose log the page shows when none was chosen, so that
// the stream can switch the log panel to the task that matters now.
func (p Paths) JobEvents(id, task, shown string) string {
	u := p.Job(id) + "/events"
	q := url.Values{}
	if task != "" {
		q.Set("task", task)
	}
	if shown != "" {
		q.Set("log", shown)
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// LogEvents is the SSE stream of a task's output from the given byte offsets on.
func (p Paths) LogEvents(id, task string, stdout, stderr int64) string {
	return p.Job(id) + "/tasks/" + url.PathEscape(task) + "/log/events?" + url.Values{
		"stdout": {strconv.FormatInt(stdout, 10)},
		"stderr": {strconv.FormatInt(stderr, 10)},
	}.Encode()
}

// LogDownload is the full output of one stream of a task, as a text file.
func (p Paths) LogDownload(id, task, stream string) string {
	return p.Job(id) + "/tasks/" + url.PathEscape(task) + "/log/" + url.PathEscape(stream)
}

// Cancel is the cancel confirmation (GET) and action (POST) of a job.
func (p Paths) Cancel(id string) string { return p.Job(id) + "/cancel" }

// CancelNext is the cancel confirmation that returns to next afterwards.
func (p Paths) CancelNext(id, next string) string {
	return p.Cancel(id) + "?" + url.Values{"next": {next}}.Encode()
}

// Rerun schedules a job again with the same variables (POST).
func (p Paths) Rerun(id string) string { return p.Job(id) + "/rerun" }

// Queue is a pipeline's wait list.
func (p Paths) Queue(pipeline string) string {
	return p.ui() + "/pipelines/" + url.PathEscape(pipeline) + "/queue"
}

// Start is a pipeline's start form (GET) and action (POST).
func (p Paths) Start(pipeline string) string {
	return p.ui() + "/pipelines/" + url.PathEscape(pipeline) + "/start"
}

// Static is the URL of an embedded asset with its content version.
func (p Paths) Static(name, version string) string {
	return p.ui() + "/static/" + name + "?v=" + version
}

// Schedules is the schedules page, of one pipeline when pipeline is not "".
// Nodes is the page of the cluster's nodes.
func (p Paths) Nodes() string { return p.ui() + "/nodes" }

func (p Paths) Schedules(pipeline string) string {
	if pipeline == "" {
		return p.ui() + "/schedules"
	}
	return p.ui() + "/schedules?" + url.Values{"pipeline": {pipeline}}.Encode()
}

// NewSchedule is the form that creates a schedule (GET) and its action (POST).
func (p Paths) NewSchedule() string { return p.ui() + "/schedules/new" }

// Schedule is a schedule's page. Its ID "<pipeline>/<name>" keeps the slash as a path
// separator; each part is escaped.
func (p Paths) Schedule(id string) string {
	pipe, name, _ := strings.Cut(id, "/")
	return p.ui() + "/schedules/" + url.PathEscape(pipe) + "/" + url.PathEscape(name)
}

// ScheduleAction is one of a schedule's POST actions: pause, resume, run, edit, delete.
func (p Paths) ScheduleAction(id, action string) string { return p.Schedule(id) + "/" + action }
