// Package pipeline is the domain leaf of prunner: pipeline definitions (loading, validation, DAG
// order), job and task records, their persisted status tokens and the sentinel errors shared by
// the runner, the store backends and the API. Of ours it imports only internal/schedule (pure
// fire-time computation, for checking schedules).
package pipeline

import (
	"time"
)

// QueueStrategy says what happens to a schedule request when the pipeline has no free slot.
type QueueStrategy string

// Queue strategies as written in pipelines.yml (persisted inside definition snapshots: never rename).
const (
	QueueAppend             QueueStrategy = "append"
	QueueReplace            QueueStrategy = "replace"
	QueuePartitionedReplace QueueStrategy = "partitioned_replace"
)

// OnErrorTaskName is the name under which a pipeline's on_error handler appears in a job's tasks.
const OnErrorTaskName = "on_error"

// Definition is one pipeline as declared in a pipelines.yml file, after validation.
//
// A Definition is immutable once loaded: jobs keep a snapshot of the definition they were
// scheduled with (it is stored as JSON with the job), so reloads never change queued or running
// jobs.
type Definition struct {
	Name string `json:"name"`
	// SourceFile is the file the pipeline was declared in (for messages).
	SourceFile string `json:"sourceFile,omitempty"`

	Concurrency int `json:"concurrency"`
	// QueueLimit is nil when the wait list is unbounded; 0 means no wait list at all.
	QueueLimit          *int          `json:"queueLimit,omitempty"`
	QueueStrategy       QueueStrategy `json:"queueStrategy"`
	QueuePartitionLimit int           `json:"queuePartitionLimit,omitempty"`
	StartDelay          time.Duration `json:"startDelay,omitempty"`
	// ReplaceVariables says, per variable (replace_variables), how a job that replaces waiting
	// jobs takes over their values; a variable not named keeps the new request's value.
	ReplaceVariables map[string]VariableMerge `json:"replaceVariables,omitempty"`
	// InterruptRunning (interrupt_running, with replace or partitioned_replace): a new job does
	// not wait behind a running job of the pipeline (of its partition): the running job is
	// canceled, and the new job takes its slot once the old one's processes are gone.
	InterruptRunning bool `json:"interruptRunning,omitempty"`

	ContinueRunningTasksAfterFailure bool `json:"continueRunningTasksAfterFailure,omitempty"`

	RetentionPeriod time.Duration `json:"retentionPeriod,omitempty"`
	RetentionCount  int           `json:"retentionCount,omitempty"`

	// Timeout bounds the run of a whole job (from its start to the end of its last task, the
	// on_error handler excluded); 0 means no limit. When it elapses the running tasks are
	// killed and the job fails.
	Timeout time.Duration `json:"timeout,omitempty"`

	Env map[string]string `json:"env,omitempty"`
	// Tasks by name.
	Tasks map[string]TaskDefinition `json:"tasks"`
	// OnError is nil when the pipeline has no on_error handler.
	OnError *TaskDefinition `json:"onError,omitempty"`

	// Schedules are the schedules declared under the pipeline's schedules: (Source file). They
	// are not part of a job's definition snapshot.
	Schedules []ScheduleSpec `json:"-"`
}

// TaskDefinition is one task of a pipeline (or its on_error handler).
type TaskDefinition struct {
	Name         string            `json:"name"`
	Script       []string          `json:"script"`
	DependsOn    []string          `json:"dependsOn,omitempty"`
	AllowFailure bool              `json:"allowFailure,omitempty"`
	Env          map[string]string `json:"env,omitempty"`
	// Timeout bounds each attempt of the task; 0 means no limit. When it elapses the task's
	// process groups are killed and the attempt fails.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Retry is nil when a failed task is not run again.
	Retry *RetryPolicy `json:"retry,omitempty"`
}

// Set is the loaded collection of pipeline definitions, keyed by name.
type Set struct {
	Pipelines map[string]*Definition
}

// Get returns the definition called name, or nil.
func (s *Set) Get(name string) *Definition {
	if s == nil {
		return nil
	}
	return s.Pipelines[name]
}

// Names returns the pipeline names in sorted order.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	names := make([]string, 0, len(s.Pipelines))
	for n := range s.Pipelines {
		names = append(names, n)
	}
	sortStrings(names)
	return names
}
