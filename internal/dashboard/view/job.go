package view

import (
	"strconv"
	"strings"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// JobPage is a job's page.
type JobPage struct {
	Layout Layout
	Job    JobView
	// Log is the selected task's output; nil when the job has no tasks.
	Log *LogPanel
}

// JobView is everything about a job that the page shows and the live stream re-renders.
type JobView struct {
	ID          string
	ShortID     string
	URL         string
	Pipeline    string
	PipelineURL string
	QueueURL    string
	Status      Status
	Final       bool
	User        string
	Created     Time
	Start       Time
	End         Time
	Duration    string
	Partition   string
	Variables   []KV
	LastError   string
	// Wait is set while the job is queued.
	Wait *WaitView
	// ReplacedBy is the job that replaced this one on the wait list.
	ReplacedBy    string
	ReplacedByURL string
	// Schedule is the ID of the schedule that started the job ("" when none), ScheduleURL its
	// page, ScheduledFor the fire time the job stands for.
	Schedule     string
	ScheduleURL  string
	ScheduledFor Time
	CanCancel    bool
	CancelURL    string
	RerunURL     string
	CSRF         string
	// EventsURL is the live stream of this view; "" once the job is final.
	EventsURL string
	Graph     Graph
	Timeline  Timeline
	Tasks     []TaskRow
	// Selected is the task whose log is shown ("" when the job has no tasks).
	Selected     string
	SelectedTask TaskRow
}

// WaitView tells where and why a queued job waits.
type WaitView struct {
	Position  int
	Of        int
	Partition string
	Reason    string
	StartsIn  string
}

// TaskRow is one task of a job.
type TaskRow struct {
	Name      string
	URL       string
	Status    Status
	Final     bool
	Start     Time
	Duration  string
	ExitCode  string
	Error     string
	DependsOn string
	Selected  bool
}

// LogPanel is the output of the selected task.
type LogPanel struct {
	Task    string
	Streams []LogStream
	// EventsURL is the live tail's stream; "" when the task's output is complete.
	EventsURL string
	// MaxLines is how many lines the page keeps (older lines are dropped from the page, not the
	// log; the download links have everything).
	MaxLines int
}

// LogStream is the output of one stream of a task as first rendered.
type LogStream struct {
	Name string
	Text string
	// Lines counts the newlines in Text.
	Lines int
	// Omitted is true when earlier output was left out of Text.
	Omitted     bool
	DownloadURL string
}

// LogText is what the handler read of one stream: the tail of its output and where it ends.
type LogText struct {
	Stream  pipeline.LogStream
	Text    string
	Omitted bool
	// End is the offset just after Text: the live tail continues there.
	End int64
}

// JobInput is what NewJobView needs besides the job.
type JobInput struct {
	Paths Paths
	CSRF  string
	// Wait is the runner's wait information for a queued job (may be nil).
	Wait *pipeline.WaitInfo
	// Task is the requested task ("" selects one).
	Task string
	Now  time.Time
}

// NewJobView builds the view of job at in.Now.
func NewJobView(job *pipeline.Job, in JobInput) JobView {
	p := in.Paths
	now := in.Now
	v := JobView{
		ID:          job.ID,
		ShortID:     ShortID(job.ID),
		URL:         p.Job(job.ID),
		Pipeline:    job.Pipeline,
		PipelineURL: p.Jobs(job.Pipeline, "", ""),
		QueueURL:    p.Queue(job.Pipeline),
		Status:      JobStatus(job.Status),
		Final:       job.Status.Final(),
		User:        job.User,
		Created:     AtFull(&job.Created),
		Start:       AtFull(job.Start),
		End:         AtFull(job.End),
		Duration:    span(job.Start, job.End, now),
		Partition:   job.QueuePartition,
		Variables:   Variables(job.Variables),
		LastError:   job.LastError,
		CanCancel:   job.Status == pipeline.JobQueued || job.Status == pipeline.JobRunning,
		CancelURL:   p.Cancel(job.ID),
		RerunURL:    p.Rerun(job.ID),
		CSRF:        in.CSRF,
	}
	if job.Schedule != "" {
		v.Schedule, v.ScheduleURL, v.ScheduledFor = job.Schedule, p.Schedule(job.Schedule), AtFull(job.ScheduledFor)
	}
	if job.ReplacedBy != "" {
		v.ReplacedBy = job.ReplacedBy
		v.ReplacedByURL = p.Job(job.ReplacedBy)
	}
	if job.Status == pipeline.JobQueued {
		w := &WaitView{Partition: job.QueuePartition}
		if in.Wait != nil {
			w.Position, w.Of, w.Reason = in.Wait.Position, in.Wait.Of, in.Wait.Reason
			if in.Wait.Partition != "" {
				w.Partition = in.Wait.Partition
			}
		}
		startAfter := job.StartAfter
		if in.Wait != nil && !in.Wait.StartAfter.IsZero() {
			startAfter = in.Wait.StartAfter
		}
		if !startAfter.IsZero() && startAfter.After(now) {
			w.StartsIn = Duration(startAfter.Sub(now).Round(time.Second))
		}
		v.Wait = w
	}
	v.Selected = SelectTask(job, in.Task)
	if !v.Final {
		// A task the person chose stays chosen; otherwise the stream tells which log the page
		// shows, so that it can switch the panel when another task starts to matter.
		if v.Selected == in.Task {
			v.EventsURL = p.JobEvents(job.ID, v.Selected, "")
		} else {
			v.EventsURL = p.JobEvents(job.ID, "", v.Selected)
		}
	}
	v.Tasks = make([]TaskRow, len(job.Tasks))
	for i := range job.Tasks {
		v.Tasks[i] = newTaskRow(p, job, &job.Tasks[i], v.Selected, now)
		if v.Tasks[i].Selected {
			v.SelectedTask = v.Tasks[i]
		}
	}
	v.Graph = NewGraph(job, v.Selected, func(task string) string { return p.JobTask(job.ID, task) })
	v.Timeline = NewTimeline(job, v.Selected, func(task string) string { return p.JobTask(job.ID, task) }, now)
	return v
}

func newTaskRow(p Paths, job *pipeline.Job, t *pipeline.Task, selected string, now time.Time) TaskRow {
	r := TaskRow{
		Name:      t.Name,
		URL:       p.JobTask(job.ID, t.Name),
		Status:    TaskStatus(t.Status),
		Final:     t.Status.Final(),
		Start:     AtFull(t.Start),
		Duration:  span(t.Start, t.End, now),
		Error:     t.Error,
		DependsOn: strings.Join(t.DependsOn, ", "),
		Selected:  t.Name == selected,
	}
	if t.Status == pipeline.TaskDone || t.Status == pipeline.TaskError {
		r.ExitCode = strconv.Itoa(t.ExitCode)
	}
	return r
}

// SelectTask picks the task whose log a job page shows: the requested one when the job has
// it; else the task that matters, as CI systems open a pipeline's page on the step to look at:
// the running task (the one that started first, when several run), else the task that failed
// first (by its end; the cause, not a consequence), else the one that started last, else the
// first.
func SelectTask(job *pipeline.Job, requested string) string {
	if len(job.Tasks) == 0 {
		return ""
	}
	if requested != "" && job.Task(requested) != nil {
		return requested
	}
	if t := earliest(job.Tasks, pipeline.TaskRunning, func(t *pipeline.Task) *time.Time { return t.Start }); t != nil {
		return t.Name
	}
	if t := earliest(job.Tasks, pipeline.TaskError, func(t *pipeline.Task) *time.Time { return t.End }); t != nil {
		return t.Name
	}
	last := -1
	for i, t := range job.Tasks {
		if t.Start != nil && (last < 0 || !t.Start.Before(*job.Tasks[last].Start)) {
			last = i
		}
	}
	if last >= 0 {
		return job.Tasks[last].Name
	}
	return job.Tasks[0].Name
}

// earliest returns the task with the given status whose time (at) is the earliest; a task
// without that time counts as later than any with it, and ties keep the job's task order. It
// returns nil when no task has the status.
func earliest(tasks []pipeline.Task, status pipeline.TaskStatus, at func(*pipeline.Task) *time.Time) *pipeline.Task {
	var best *pipeline.Task
	for i := range tasks {
		t := &tasks[i]
		if t.Status != status {
			continue
		}
		if best == nil || at(t) != nil && (at(best) == nil || at(t).Before(*at(best))) {
			best = t
		}
	}
	return best
}

// NewLogPanel builds the log panel of task from what the handler read of its streams. live
// says whether the output may still grow (the task has not ended).
func NewLogPanel(p Paths, jobID, task string, texts []LogText, live bool, maxLines int) *LogPanel {
	lp := &LogPanel{Task: task, MaxLines: maxLines}
	var offsets [2]int64
	for _, t := range texts {
		lp.Streams = append(lp.Streams, LogStream{
			Name:        string(t.Stream),
			Text:        t.Text,
			Lines:       strings.Count(t.Text, "\n"),
			Omitted:     t.Omitted,
			DownloadURL: p.LogDownload(jobID, task, string(t.Stream)),
		})
		if t.Stream == pipeline.Stderr {
			offsets[1] = t.End
		} else {
			offsets[0] = t.End
		}
	}
	if live {
		lp.EventsURL = p.LogEvents(jobID, task, offsets[0], offsets[1])
	}
	return lp
}

// NewJobRow builds the row of a job in a list.
func NewJobRow(p Paths, j *pipeline.Job, now time.Time) JobRow {
	r := JobRow{
		ID:          j.ID,
		ShortID:     ShortID(j.ID),
		URL:         p.Job(j.ID),
		Pipeline:    j.Pipeline,
		PipelineURL: p.Jobs(j.Pipeline, "", ""),
		Status:      JobStatus(j.Status),
		User:        j.User,
		Created:     At(j.Created, now),
		Duration:    span(j.Start, j.End, now),
		Variables:   VariablesSummary(j.Variables, 60),
	}
	for _, t := range j.Tasks {
		r.Tasks = append(r.Tasks, TaskDot{Name: t.Name, Status: TaskStatus(t.Status)})
	}
	return r
}
