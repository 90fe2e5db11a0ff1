package pipeline

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/prunner-dev/prunner/internal/schedule"
)

// MaxScheduleName bounds the length of a schedule's name.
const MaxScheduleName = 100

// scheduleName is what a schedule's name may hold: letters, digits, "-", "_" and ".", starting
// with a letter or digit. The name is part of the schedule's ID and of its URLs.
var scheduleName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ScheduleError is a schedule that Check refuses. It wraps ErrInvalidSchedule.
type ScheduleError struct {
	// ID is the schedule's ID ("<pipeline>/<name>", as far as known).
	ID string
	// Field is the setting that is wrong, as written in a pipelines file ("cron", "timezone",
	// "queue_partition", …; "pipeline" for the pipeline itself).
	Field string
	// Message says what is wrong and what to write instead.
	Message string
	// File and Line locate a file schedule's declaration ("" and 0 for an API schedule).
	File string
	Line int
}

// Error reads "file:line: schedule "nightly/full": cron "0 25 * * *": hour 25 out of range 0-23"
// (without the location for API schedules).
func (e *ScheduleError) Error() string {
	msg := fmt.Sprintf("schedule %q: %s", e.ID, e.Message)
	if e.File != "" {
		return Problem{File: e.File, Line: e.Line, Message: msg}.String()
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrInvalidSchedule) hold.
func (e *ScheduleError) Unwrap() error { return ErrInvalidSchedule }

// Check validates a schedule of the pipeline def and fills in the defaults (Missed skip,
// CatchupWindow DefaultCatchupWindow when 0, Overlap allow; Pipeline def's name when empty). Its
// errors are *ScheduleError (wrapping ErrInvalidSchedule) and say what to change; a file
// schedule's errors name its file and line. def nil means the pipeline is not loaded.
//
// queue_partition is only allowed on a partitioned_replace pipeline: elsewhere it would be
// silently ignored, which for a declaration is a mistake. An empty partition on a
// partitioned_replace pipeline is the "" partition, as for POST /pipelines/schedule.
func (s *ScheduleSpec) Check(def *Definition) error {
	s.fillDefaults(def)
	field, msg := s.problem(def)
	if msg == "" {
		return nil
	}
	e := &ScheduleError{ID: s.ID(), Field: field, Message: msg}
	if s.Source == SourceFile {
		e.File, e.Line = s.SourceFile, s.SourceLine
	}
	return e
}

func (s *ScheduleSpec) fillDefaults(def *Definition) {
	if s.Pipeline == "" && def != nil {
		s.Pipeline = def.Name
	}
	if s.Missed == "" {
		s.Missed = MissedSkip
	}
	if s.CatchupWindow == 0 {
		s.CatchupWindow = DefaultCatchupWindow
	}
	if s.Overlap == "" {
		s.Overlap = OverlapAllow
	}
}

// problem returns the first thing wrong with the schedule: the setting and a message ("" when
// none).
func (s *ScheduleSpec) problem(def *Definition) (field, msg string) {
	switch {
	case def == nil:
		return "pipeline", fmt.Sprintf("unknown pipeline %q", s.Pipeline)
	case s.Pipeline != def.Name:
		return "pipeline", fmt.Sprintf("belongs to pipeline %q, not %q", s.Pipeline, def.Name)
	}
	if msg := checkScheduleName(s.Name); msg != "" {
		return "name", msg
	}
	if s.Cron == "" {
		return "cron", "cron is required: five fields such as \"0 3 * * *\", a descriptor such as @daily, or \"@every 15m\""
	}
	if _, err := schedule.LoadZone(s.Timezone); err != nil {
		return "timezone", err.Error()
	}
	if _, err := schedule.Parse(s.Cron, s.Timezone); err != nil {
		return "cron", err.Error()
	}
	return s.settingsProblem(def)
}

// settingsProblem checks the settings besides the name and the expression.
func (s *ScheduleSpec) settingsProblem(def *Definition) (field, msg string) {
	switch {
	case s.Jitter < 0:
		return "jitter", "jitter must not be negative"
	case s.CatchupWindow < 0:
		return "catchup_window", "catchup_window must not be negative"
	case s.Missed != MissedSkip && s.Missed != MissedOnce && s.Missed != MissedAll:
		return "missed", fmt.Sprintf("missed must be skip, once or all, got %q", string(s.Missed))
	case s.Overlap != OverlapAllow && s.Overlap != OverlapSkip:
		return "overlap", fmt.Sprintf("overlap must be allow or skip, got %q", string(s.Overlap))
	case s.QueuePartition != "" && def.QueueStrategy != QueuePartitionedReplace:
		return "queue_partition", fmt.Sprintf("queue_partition is only used if queue_strategy=partitioned_replace; pipeline %q uses %s, so remove it", def.Name, def.QueueStrategy)
	}
	return "", ""
}

// checkScheduleName says what is wrong with a schedule's name ("" when nothing).
func checkScheduleName(name string) string {
	switch {
	case name == "":
		return "name is required (it makes the schedule's ID \"<pipeline>/<name>\")"
	case len(name) > MaxScheduleName:
		return "name is longer than " + strconv.Itoa(MaxScheduleName) + " characters"
	case !scheduleName.MatchString(name):
		return fmt.Sprintf("name %q: use letters, digits, \"-\", \"_\" and \".\" only, starting with a letter or digit", name)
	}
	return ""
}

// AsScheduleError returns the *ScheduleError in err's chain, or nil.
func AsScheduleError(err error) *ScheduleError {
	var e *ScheduleError
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Timetable parses the schedule's expression in its zone; after a successful Check it does not
// fail.
func (s *ScheduleSpec) Timetable() (*schedule.Timetable, error) {
	return schedule.Parse(s.Cron, s.Timezone)
}
