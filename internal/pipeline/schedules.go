package pipeline

import (
	"errors"
	"time"
)

// Errors of schedules, mapped by the API to HTTP statuses.
var (
	// ErrScheduleNotFound: no schedule has the ID (404).
	ErrScheduleNotFound = errors.New("schedule not found")
	// ErrScheduleExists: a schedule with the ID exists already (409).
	ErrScheduleExists = errors.New("schedule already exists")
	// ErrScheduleFromFile: a schedule declared in a pipelines file cannot be changed or deleted
	// through the API, only paused and resumed (409; the message names the file).
	ErrScheduleFromFile = errors.New("schedule is declared in a pipelines file")
	// ErrInvalidSchedule: a bad expression, zone, pipeline or field value (400).
	ErrInvalidSchedule = errors.New("invalid schedule")
)

// MissedPolicy says what happens to fire times that passed while prunner was down.
type MissedPolicy string

const (
	MissedSkip MissedPolicy = "skip" // none of them fire (default)
	MissedOnce MissedPolicy = "once" // the latest one within the catch-up window fires
	MissedAll  MissedPolicy = "all"  // each one within the catch-up window fires, in order
)

// OverlapPolicy says whether a firing may start a job while one of the schedule's jobs is queued
// or running.
type OverlapPolicy string

const (
	OverlapAllow OverlapPolicy = "allow" // admission and the queue strategy decide (default)
	OverlapSkip  OverlapPolicy = "skip"  // the firing is skipped (and recorded as such)
)

// ScheduleSource tells where a schedule is declared.
type ScheduleSource string

const (
	SourceFile ScheduleSource = "file" // under a pipeline's schedules: in a pipelines file
	SourceAPI  ScheduleSource = "api"  // created through POST /schedules, kept in the store
)

// DefaultCatchupWindow is how far back missed: once and missed: all look when the schedule does
// not say.
const DefaultCatchupWindow = 24 * time.Hour

// ScheduleSpec is one schedule as declared (in a file, or through the API): when a pipeline
// starts on its own and with what. Its ID is "<pipeline>/<name>".
type ScheduleSpec struct {
	Pipeline string `json:"pipeline"`
	Name     string `json:"name"`
	// Cron is the expression as written: five fields, a descriptor (@hourly @daily @weekly
	// @monthly @yearly, @midnight, @annually) or "@every <duration>" (>= 1s).
	Cron string `json:"cron"`
	// Timezone is an IANA zone name; "" means UTC. It is never part of Cron.
	Timezone       string         `json:"timezone"`
	Variables      map[string]any `json:"variables"`
	QueuePartition string         `json:"queuePartition"`
	// Jitter delays each firing by a random duration in [0, Jitter).
	Jitter        time.Duration  `json:"jitter"`
	Missed        MissedPolicy   `json:"missed"`
	CatchupWindow time.Duration  `json:"catchupWindow"`
	Overlap       OverlapPolicy  `json:"overlap"`
	Source        ScheduleSource `json:"source"`
	// SourceFile and SourceLine locate a file schedule's declaration (for messages).
	SourceFile string `json:"sourceFile,omitempty"`
	SourceLine int    `json:"sourceLine,omitempty"`
}

// ID returns "<pipeline>/<name>".
func (s *ScheduleSpec) ID() string { return s.Pipeline + "/" + s.Name }

// FiringKind tells why a job of a schedule was started.
type FiringKind string

const (
	FiringCron     FiringKind = "cron"     // a fire time of the expression (also a missed one caught up)
	FiringBackfill FiringKind = "backfill" // POST /schedules/{id}/backfill
	FiringTrigger  FiringKind = "trigger"  // POST /schedules/{id}/trigger ("run now")
)

// FiringOutcome is what became of a firing.
type FiringOutcome string

const (
	FiringStarted  FiringOutcome = "started"  // a job was admitted (running or queued)
	FiringRejected FiringOutcome = "rejected" // admission refused it (full wait list, no wait list)
	FiringSkipped  FiringOutcome = "skipped"  // overlap: skip and a job of the schedule was active
)

// ScheduleFiring is one recorded firing of a schedule.
type ScheduleFiring struct {
	ScheduleID string `json:"scheduleId"`
	// FireTime is the instant the firing stands for (the fire time before jitter; for a
	// trigger, when it was asked for). At most one firing exists per schedule and fire time.
	FireTime time.Time     `json:"time"`
	Kind     FiringKind    `json:"kind"`
	Outcome  FiringOutcome `json:"outcome"`
	// Detail says why a firing was rejected or skipped ("" when started).
	Detail string `json:"detail,omitempty"`
	// JobID and JobStatus name the job it started ("" when none, or when retention deleted it:
	// then JobStatus is "").
	JobID     string    `json:"jobId,omitempty"`
	JobStatus JobStatus `json:"status,omitempty"`
	// Recorded is when the firing was stored.
	Recorded time.Time `json:"recorded"`
}

// ScheduleState is what the store keeps of every schedule besides its spec: the pause and the
// cursor of its regular firings.
type ScheduleState struct {
	ID        string
	Paused    bool
	PauseNote string
	PausedAt  time.Time
	// Cursor is the latest fire time of the expression that was handled (fired, rejected,
	// skipped, or passed over by missed: skip); the next regular fire time comes after it.
	Cursor time.Time
}

// ScheduleView is a schedule as GET /schedules and the dashboard show it.
type ScheduleView struct {
	Spec      ScheduleSpec
	Paused    bool
	PauseNote string
	// Description says the expression in plain words ("every day at 03:00, Europe/Berlin").
	Description string
	// Next are the next fire times (up to five; none while paused is still computed: the times
	// it would fire at), in UTC.
	Next []time.Time
	// Last is the latest firing (nil when none).
	Last *ScheduleFiring
}

// SchedulePatch changes an API schedule (PATCH /schedules/{id}); nil fields stay as they are.
// Paused and Note apply to file schedules too.
type SchedulePatch struct {
	Cron           *string
	Timezone       *string
	Variables      map[string]any // nil: unchanged; an empty map clears them
	QueuePartition *string
	Jitter         *time.Duration
	Missed         *MissedPolicy
	CatchupWindow  *time.Duration
	Overlap        *OverlapPolicy
	Paused         *bool
	Note           *string
}

// MaxBackfill is the most fire times one backfill request may start.
const MaxBackfill = 1000
