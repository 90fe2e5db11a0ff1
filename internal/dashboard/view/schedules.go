package view

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/prunner-dev/prunner/internal/durfmt"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// SchedulesPage lists the schedules (of one pipeline when Pipeline is set).
type SchedulesPage struct {
	Layout    Layout
	Pipeline  string
	Schedules []ScheduleRow
	NewURL    string
	AllURL    string
}

// ScheduleRow is a schedule as the schedules page and a schedule's page show it.
type ScheduleRow struct {
	ID          string
	Pipeline    string
	Name        string
	URL         string
	PipelineURL string
	Cron        string
	// Description is the expression in plain words ("every day at 03:00, Europe/Berlin").
	Description string
	Zone        string
	Paused      bool
	PauseNote   string
	// Source is "file" or "api"; Declared is "<file>:<line>" of a file schedule.
	Source   string
	Declared string
	// Next are the next fire times, each in the viewer's zone and the schedule's.
	Next []ZonedTime
	// Last is the latest firing (nil when none).
	Last    *FiringRow
	Actions ScheduleActions
}

// ZonedTime is a fire time: Viewer is rendered as a <time> that the page's script shows in the
// viewer's zone (UTC without script); InZone is the time in the schedule's zone.
type ZonedTime struct {
	Viewer Time
	InZone string
}

// FiringRow is one recorded firing: when, why, what became of it, and the job it started.
type FiringRow struct {
	Time ZonedTime
	// Kind is cron, backfill or trigger; Outcome started, rejected or skipped.
	Kind    string
	Outcome string
	Detail  string
	// JobURL and JobShortID link the job it started ("" when none); Status is that job's.
	JobURL     string
	JobShortID string
	Status     Status
}

// ScheduleActions are the buttons of a schedule: pause (with a note) or resume, and run now.
type ScheduleActions struct {
	CSRF      string
	PauseURL  string
	ResumeURL string
	RunURL    string
	// Next is the page to return to after pausing or resuming.
	Next string
}

// SchedulePage is one schedule: its settings, next runs, last firings and the edit form
// (nil for a file schedule, which is changed in its file).
type SchedulePage struct {
	Layout         Layout
	Schedule       ScheduleRow
	Variables      []KV
	QueuePartition string
	Jitter         string
	Missed         string
	CatchupWindow  string
	Overlap        string
	Firings        []FiringRow
	Form           *ScheduleForm
	DeleteURL      string
	SchedulesURL   string
}

// ScheduleForm creates a schedule or edits an API schedule. Its fields are the text that was
// sent (shown again with Error, the scheduler's message, when it was refused).
type ScheduleForm struct {
	Action string
	CSRF   string
	// Edit is true for an existing schedule: pipeline and name are fixed.
	Edit           bool
	Pipelines      []string
	Pipeline       string
	Name           string
	Cron           string
	Timezone       string
	QueuePartition string
	Jitter         string
	Missed         string
	CatchupWindow  string
	Overlap        string
	Rows           []KV
	JSON           string
	Error          string
	MissedChoices  []string
	OverlapChoices []string
}

// ScheduleFormPage is the create form on a page of its own (also shown again with an error).
type ScheduleFormPage struct {
	Layout       Layout
	Form         ScheduleForm
	SchedulesURL string
}

// ScheduleInput is what NewScheduleRow needs besides the schedule.
type ScheduleInput struct {
	Paths Paths
	CSRF  string
	Now   time.Time
	// Next is the page that pause and resume return to.
	Next string
}

// NewScheduleRow builds the row of schedule v.
func NewScheduleRow(v pipeline.ScheduleView, in ScheduleInput) ScheduleRow {
	s := v.Spec
	id := s.ID()
	loc := ZoneOf(s.Timezone)
	r := ScheduleRow{
		ID:          id,
		Pipeline:    s.Pipeline,
		Name:        s.Name,
		URL:         in.Paths.Schedule(id),
		PipelineURL: in.Paths.Jobs(s.Pipeline, "", ""),
		Cron:        s.Cron,
		Description: v.Description,
		Zone:        loc.String(),
		Paused:      v.Paused,
		PauseNote:   v.PauseNote,
		Source:      string(s.Source),
		Actions: ScheduleActions{
			CSRF:      in.CSRF,
			PauseURL:  in.Paths.ScheduleAction(id, "pause"),
			ResumeURL: in.Paths.ScheduleAction(id, "resume"),
			RunURL:    in.Paths.ScheduleAction(id, "run"),
			Next:      in.Next,
		},
	}
	if s.Source == pipeline.SourceFile && s.SourceFile != "" {
		r.Declared = s.SourceFile
		if s.SourceLine > 0 {
			r.Declared += ":" + strconv.Itoa(s.SourceLine)
		}
	}
	for _, t := range v.Next {
		r.Next = append(r.Next, Zoned(t, loc, in.Now))
	}
	if v.Last != nil {
		f := NewFiringRow(in.Paths, *v.Last, loc, in.Now)
		r.Last = &f
	}
	return r
}

// NewFiringRow builds the row of firing f of a schedule in zone loc.
func NewFiringRow(p Paths, f pipeline.ScheduleFiring, loc *time.Location, now time.Time) FiringRow {
	r := FiringRow{
		Time:    Zoned(f.FireTime, loc, now),
		Kind:    string(f.Kind),
		Outcome: string(f.Outcome),
		Detail:  f.Detail,
	}
	if f.JobID != "" {
		r.JobURL, r.JobShortID = p.Job(f.JobID), ShortID(f.JobID)
	}
	if f.JobStatus != "" {
		r.Status = JobStatus(f.JobStatus)
	} else {
		// No job (refused, skipped, or deleted by retention): the outcome is the status.
		r.Status = Status{Label: string(f.Outcome), Class: "st-firing-" + string(f.Outcome)}
	}
	return r
}

// ZoneOf loads a schedule's zone; "" and names that do not load (the scheduler refuses them)
// are UTC.
func ZoneOf(name string) *time.Location {
	if name == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Zoned formats t for the viewer (rewritten to the browser's zone by the page's script) and in
// zone loc: "Mon Dec 7 03:00 CET", with the year when it is not now's.
func Zoned(t time.Time, loc *time.Location, now time.Time) ZonedTime {
	in := t.In(loc)
	layout := "Mon Jan 2 15:04 MST"
	if in.Year() != now.In(loc).Year() {
		layout = "Mon Jan 2 2006 15:04 MST"
	}
	return ZonedTime{Viewer: AtFull(&t), InZone: in.Format(layout)}
}

// ScheduleDetails fills the settings of schedule v into page.
func ScheduleDetails(page *SchedulePage, v pipeline.ScheduleView) {
	s := v.Spec
	page.Variables = Variables(s.Variables)
	page.QueuePartition = s.QueuePartition
	page.Jitter = durfmt.Format(s.Jitter)
	page.Missed = string(s.Missed)
	page.CatchupWindow = durfmt.Format(s.CatchupWindow)
	page.Overlap = string(s.Overlap)
}

// EditForm is the form of API schedule v, filled with its settings.
func EditForm(v pipeline.ScheduleView, action, csrf string) ScheduleForm {
	s := v.Spec
	f := ScheduleForm{
		Action:         action,
		CSRF:           csrf,
		Edit:           true,
		Pipeline:       s.Pipeline,
		Name:           s.Name,
		Cron:           s.Cron,
		Timezone:       s.Timezone,
		QueuePartition: s.QueuePartition,
		Jitter:         durfmt.Format(s.Jitter),
		Missed:         string(s.Missed),
		CatchupWindow:  durfmt.Format(s.CatchupWindow),
		Overlap:        string(s.Overlap),
	}
	if len(s.Variables) > 0 {
		// As JSON, so that numbers and nested values come back as they are.
		if data, err := json.Marshal(s.Variables); err == nil {
			f.JSON = string(data)
		}
	}
	return f.WithChoices()
}

// WithChoices adds the choices of the form's selects and a few empty variable rows.
func (f ScheduleForm) WithChoices() ScheduleForm {
	f.MissedChoices = []string{string(pipeline.MissedSkip), string(pipeline.MissedOnce), string(pipeline.MissedAll)}
	f.OverlapChoices = []string{string(pipeline.OverlapAllow), string(pipeline.OverlapSkip)}
	f.Rows = append(f.Rows[:len(f.Rows):len(f.Rows)], KV{}, KV{})
	return f
}
