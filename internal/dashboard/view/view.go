// Package view holds the dashboard's view models and the pure functions that build them from
// jobs, pipelines and the current time: URLs below the base path, durations, the DAG layout
// and the task timeline. The templ components in web/templates render these models and do no
// I/O and read no clock; everything time-dependent is decided here, from a `now` passed in.
package view

// Layout is what every full page needs besides its content.
type Layout struct {
	Title string
	Paths Paths
	// Nav names the active navigation entry: "pipelines", "jobs", "schedules", "nodes" or "".
	Nav string
	// User is the signed-in user (the token's sub claim; may be empty).
	User     string
	SignedIn bool
	// ViaHeader is true when the request was authenticated by an Authorization header (a host
	// app's proxy): there is no session to log out of.
	ViaHeader bool
	// CSRF is the token that every form posts back.
	CSRF   string
	Assets Assets
	// Schedules shows the Schedules navigation entry (the server has a scheduler).
	Schedules bool
	// Nodes shows the Nodes navigation entry (the server is a node of a cluster).
	Nodes bool
}

// Assets are the versioned URLs of the static files.
type Assets struct {
	CSS  string
	HTMX string
	SSE  string
	App  string
	Icon string
}

// Status is a job or task status as shown: a label and the CSS class that colours it.
type Status struct {
	Label string
	Class string
}

// Flash is a message shown at the top of a page.
type Flash struct {
	// Kind is "error", "warning" or "info".
	Kind string
	Text string
}

// KV is one variable of a job.
type KV struct {
	Key   string
	Value string
}

// LoginPage is the sign-in form.
type LoginPage struct {
	Layout Layout
	Flash  *Flash
	// Next is the page to open after signing in (a path below the base path).
	Next string
}

// ErrorPage explains a failed request in a page instead of a raw status.
type ErrorPage struct {
	Layout  Layout
	Status  int
	Heading string
	Message string
	BackURL string
	Back    string
}

// PipelinesPage lists every pipeline.
type PipelinesPage struct {
	Layout    Layout
	Pipelines []PipelineRow
}

// PipelineRow is one pipeline of the pipelines page.
type PipelineRow struct {
	Name        string
	JobsURL     string
	QueueURL    string
	StartURL    string
	Running     int
	Waiting     int
	Concurrency int
	Tasks       int
	Strategy    string
	Schedulable bool
	Reason      string
	// LastJob is nil when the pipeline never ran.
	LastJob *JobRow
	Form    StartForm
	// NextRun is the pipeline's next scheduled run (the earliest next fire time of its
	// schedules that are not paused); zero when none. SchedulesURL lists its schedules.
	NextRun      Time
	SchedulesURL string
	// NextRunUnknown is true when the scheduler did not answer.
	NextRunUnknown bool
}

// StartForm is the form that schedules a job of a pipeline.
type StartForm struct {
	Pipeline string
	Action   string
	CSRF     string
	// Rows are key/value inputs (filled rows first, then a few empty ones).
	Rows []KV
	// JSON is an alternative to Rows: a JSON object of variables.
	JSON string
	// Partitioned shows the queue partition input.
	Partitioned bool
	Partition   string
	Error       string
	// Compact renders the form inside a table row (fewer labels).
	Compact bool
}

// StartPage is the start form on a page of its own (also shown again with an error).
type StartPage struct {
	Layout      Layout
	Form        StartForm
	Description string
	PipelineURL string
}

// JobsPage is the paged, filtered list of jobs.
type JobsPage struct {
	Layout Layout
	Filter JobsFilter
	Table  JobsTable
}

// JobsFilter is the filter form of the jobs page.
type JobsFilter struct {
	Action    string
	Pipeline  string
	Status    string
	Pipelines []string
	Statuses  []string
}

// JobsTable is the part of the jobs page that refreshes itself.
type JobsTable struct {
	Rows []JobRow
	// FragmentURL is polled for a fresh table; Version is the digest of this table's content,
	// sent back so that the server can answer "unchanged" without a swap.
	FragmentURL string
	Version     string
	OlderURL    string
	NewestURL   string
	Empty       string
}

// JobRow is one job in a list.
type JobRow struct {
	ID          string
	ShortID     string
	URL         string
	Pipeline    string
	PipelineURL string
	Status      Status
	User        string
	Created     Time
	Duration    string
	Tasks       []TaskDot
	Variables   string
}

// Time is a timestamp as shown: ISO for the datetime attribute, text for people.
type Time struct {
	ISO   string
	Text  string
	Title string
}

// TaskDot is a task's status in a compact list.
type TaskDot struct {
	Name   string
	Status Status
}

// QueuePage is the wait list of one pipeline.
type QueuePage struct {
	Layout      Layout
	Pipeline    string
	PipelineURL string
	Running     []JobRow
	Waiting     []QueueRow
	Concurrency int
	Strategy    string
}

// QueueRow is one waiting job.
type QueueRow struct {
	Position  int
	Job       JobRow
	Partition string
	// StartsIn is the remaining start delay ("" when none).
	StartsIn  string
	CancelURL string
}

// ConfirmCancelPage asks before a job is canceled (works without JavaScript).
type ConfirmCancelPage struct {
	Layout  Layout
	Job     JobRow
	Action  string
	Next    string
	BackURL string
}
