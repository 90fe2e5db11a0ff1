package api

import (
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// jsonTime is a timestamp as the compatible API writes it: RFC 3339 in UTC without fractional
// seconds ("2026-11-28T01:20:21Z"), because the PHP client parses with DATE_W3C.
type jsonTime time.Time

// apiTimeLayout is time.RFC3339 applied to UTC times, which never prints fractions.
const apiTimeLayout = time.RFC3339

func (t jsonTime) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(`"2006-01-02T15:04:05Z"`))
	b = append(b, '"')
	b = time.Time(t).UTC().AppendFormat(b, apiTimeLayout)
	return append(b, '"'), nil
}

// optionalTime converts a possibly unset time; nil encodes as null.
func optionalTime(t *time.Time) *jsonTime {
	if t == nil {
		return nil
	}
	jt := jsonTime(*t)
	return &jt
}

// pipelineView is a Pipeline of the compatible API.
type pipelineView struct {
	Pipeline    string `json:"pipeline"`
	Schedulable bool   `json:"schedulable"`
	Running     bool   `json:"running"`
}

// pipelineViews turns the runner's pipelines into the compatible API's. Running is a flag there
// (the original prunner had no counts): some job of the pipeline is running.
func pipelineViews(infos []pipeline.Info) []pipelineView {
	views := make([]pipelineView, 0, len(infos))
	for _, p := range infos {
		views = append(views, pipelineView{Pipeline: p.Name, Schedulable: p.Schedulable, Running: p.RunningJobs > 0})
	}
	return views
}

// jobView is a Job of the compatible API. Fields without omitempty are always present: the PHP
// client breaks on missing keys and on null where it expects a string or an array.
type jobView struct {
	ID        string         `json:"id"`
	Pipeline  string         `json:"pipeline"`
	Tasks     []taskView     `json:"tasks"`
	Completed bool           `json:"completed"`
	Canceled  bool           `json:"canceled"`
	Errored   bool           `json:"errored"`
	Created   jsonTime       `json:"created"`
	Start     *jsonTime      `json:"start"`
	End       *jsonTime      `json:"end"`
	LastError string         `json:"lastError,omitempty"`
	Variables map[string]any `json:"variables,omitempty"`
	User      string         `json:"user"`

	// Additions (old clients ignore them).
	Status         string    `json:"status"`
	QueuePartition string    `json:"queuePartition,omitempty"`
	StartAfter     *jsonTime `json:"startAfter,omitempty"`
	ReplacedBy     string    `json:"replacedBy,omitempty"`
	// Schedule is the ID of the schedule that started the job, ScheduledFor the fire time the
	// job stands for (both absent for a job started otherwise).
	Schedule     string    `json:"schedule,omitempty"`
	ScheduledFor *jsonTime `json:"scheduledFor,omitempty"`
	// Node is the node of a cluster that runs or ran the job (absent without a cluster).
	Node string `json:"node,omitempty"`
	// Wait is set in the job detail of a queued job.
	Wait *waitView `json:"wait,omitempty"`
}

// waitView tells where and why a queued job waits.
type waitView struct {
	Position  int    `json:"position"`
	Of        int    `json:"of"`
	Partition string `json:"partition"`
	Reason    string `json:"reason"`
}

// taskView is a Task of the compatible API.
type taskView struct {
	Name      string    `json:"name"`
	DependsOn []string  `json:"dependsOn,omitempty"`
	Status    string    `json:"status"`
	Start     *jsonTime `json:"start"`
	End       *jsonTime `json:"end"`
	Skipped   bool      `json:"skipped"`
	ExitCode  int       `json:"exitCode"`
	Errored   bool      `json:"errored"`
	Error     string    `json:"error,omitempty"`

	// Additions (old clients ignore them). Attempt is the task's current or last attempt
	// (1-based); Attempts lists the finished attempts before it (retries only).
	Attempt  int           `json:"attempt"`
	Attempts []attemptView `json:"attempts,omitempty"`
}

// attemptView is one finished earlier attempt of a retried task.
type attemptView struct {
	Number   int      `json:"number"`
	Start    jsonTime `json:"start"`
	End      jsonTime `json:"end"`
	ExitCode int      `json:"exitCode"`
	Error    string   `json:"error,omitempty"`
}

func attemptViews(attempts []pipeline.TaskAttempt) []attemptView {
	if len(attempts) == 0 {
		return nil
	}
	views := make([]attemptView, len(attempts))
	for i, a := range attempts {
		views[i] = attemptView{Number: a.Number, Start: jsonTime(a.Start), End: jsonTime(a.End), ExitCode: a.ExitCode, Error: a.Error}
	}
	return views
}

func newJobView(j *pipeline.Job) jobView {
	tasks := make([]taskView, 0, len(j.Tasks))
	for _, t := range j.Tasks {
		tasks = append(tasks, taskView{
			Name:      t.Name,
			DependsOn: t.DependsOn,
			Status:    string(t.Status),
			Start:     optionalTime(t.Start),
			End:       optionalTime(t.End),
			Skipped:   t.Status == pipeline.TaskSkipped,
			ExitCode:  t.ExitCode,
			Errored:   t.Errored,
			Error:     t.Error,
			Attempt:   max(t.Attempt, 1),
			Attempts:  attemptViews(t.Attempts),
		})
	}
	return jobView{
		ID:        j.ID,
		Pipeline:  j.Pipeline,
		Tasks:     tasks,
		Completed: j.Completed(),
		Canceled:  j.Canceled(),
		Errored:   j.Errored,
		Created:   jsonTime(j.Created),
		Start:     optionalTime(j.Start),
		End:       optionalTime(j.End),
		LastError: j.LastError,
		Variables: j.Variables,
		User:      j.User,

		Status:         string(j.Status),
		QueuePartition: j.QueuePartition,
		StartAfter:     nonZeroTime(j.StartAfter),
		ReplacedBy:     j.ReplacedBy,
		Schedule:       j.Schedule,
		ScheduledFor:   optionalTime(j.ScheduledFor),
		Node:           j.Node,
	}
}

func nonZeroTime(t time.Time) *jsonTime {
	if t.IsZero() {
		return nil
	}
	return optionalTime(&t)
}
