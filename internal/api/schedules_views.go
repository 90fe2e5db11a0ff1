package api

import (
	"github.com/prunner-dev/prunner/internal/durfmt"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// scheduleView is a schedule as GET /schedules and the other schedule routes write it.
// Durations are Go duration strings without zero units ("30s", "24h", "1h30m"; "0s" for none);
// requests accept any form time.ParseDuration reads ("24h0m0s" too).
type scheduleView struct {
	ID             string         `json:"id"`
	Pipeline       string         `json:"pipeline"`
	Name           string         `json:"name"`
	Cron           string         `json:"cron"`
	Timezone       string         `json:"timezone"`
	Description    string         `json:"description"`
	Variables      map[string]any `json:"variables"`
	QueuePartition string         `json:"queuePartition"`
	Jitter         string         `json:"jitter"`
	Missed         string         `json:"missed"`
	CatchupWindow  string         `json:"catchupWindow"`
	Overlap        string         `json:"overlap"`
	Source         string         `json:"source"`
	// SourceFile and SourceLine locate a file schedule's declaration.
	SourceFile string `json:"sourceFile,omitempty"`
	SourceLine int    `json:"sourceLine,omitempty"`
	Paused     bool   `json:"paused"`
	PauseNote  string `json:"pauseNote"`
	// Next are the next fire times (up to five), computed while paused too.
	Next []jsonTime `json:"next"`
	// Last is the latest firing; null before the first.
	Last *firingView `json:"last"`
}

// firingView is one recorded firing of a schedule: when, why, what became of it, and the job.
type firingView struct {
	Time    jsonTime `json:"time"`
	Kind    string   `json:"kind"`
	Outcome string   `json:"outcome"`
	Detail  string   `json:"detail,omitempty"`
	JobID   string   `json:"jobId,omitempty"`
	Status  string   `json:"status,omitempty"`
}

type schedulesResponse struct {
	Schedules []scheduleView `json:"schedules"`
}

type firingsResponse struct {
	Firings []firingView `json:"firings"`
}

func newScheduleView(v pipeline.ScheduleView) scheduleView {
	s := v.Spec
	tz := s.Timezone
	if tz == "" {
		tz = "UTC"
	}
	vars := s.Variables
	if vars == nil {
		vars = map[string]any{}
	}
	next := make([]jsonTime, 0, len(v.Next))
	for _, t := range v.Next {
		next = append(next, jsonTime(t))
	}
	view := scheduleView{
		ID:             s.ID(),
		Pipeline:       s.Pipeline,
		Name:           s.Name,
		Cron:           s.Cron,
		Timezone:       tz,
		Description:    v.Description,
		Variables:      vars,
		QueuePartition: s.QueuePartition,
		Jitter:         durfmt.Format(s.Jitter),
		Missed:         string(s.Missed),
		CatchupWindow:  durfmt.Format(s.CatchupWindow),
		Overlap:        string(s.Overlap),
		Source:         string(s.Source),
		SourceFile:     s.SourceFile,
		SourceLine:     s.SourceLine,
		Paused:         v.Paused,
		PauseNote:      v.PauseNote,
		Next:           next,
	}
	if v.Last != nil {
		last := newFiringView(*v.Last)
		view.Last = &last
	}
	return view
}

func newFiringView(f pipeline.ScheduleFiring) firingView {
	return firingView{
		Time:    jsonTime(f.FireTime),
		Kind:    string(f.Kind),
		Outcome: string(f.Outcome),
		Detail:  f.Detail,
		JobID:   f.JobID,
		Status:  string(f.JobStatus),
	}
}

func newFiringViews(firings []pipeline.ScheduleFiring) []firingView {
	views := make([]firingView, 0, len(firings))
	for _, f := range firings {
		views = append(views, newFiringView(f))
	}
	return views
}
