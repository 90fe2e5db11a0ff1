package pipeline

import (
	"time"
)

// JobStatus is the lifecycle state of a job. The values are persisted: never rename them.
type JobStatus string

// Job statuses (persisted tokens).
const (
	// JobQueued: accepted and on the pipeline's wait list (possibly waiting for its start delay).
	JobQueued JobStatus = "queued"
	// JobRunning: claimed; its tasks are running or about to.
	JobRunning JobStatus = "running"
	// JobSucceeded: every task ended done (or skipped by allow_failure rules).
	JobSucceeded JobStatus = "succeeded"
	// JobFailed: some task errored, or the server stopped while the job ran.
	JobFailed JobStatus = "failed"
	// JobCanceled: canceled by a request, while queued or while running.
	JobCanceled JobStatus = "canceled"
	// JobReplaced: removed from the wait list by a newer job (queue_strategy replace).
	JobReplaced JobStatus = "replaced"
)

// JobStatuses returns every job status, in lifecycle order: the values a list of jobs can be
// filtered by (the API's status parameter, the dashboard's filter). It is the one list of them;
// a new status added above belongs here too.
func JobStatuses() []JobStatus {
	return []JobStatus{JobQueued, JobRunning, JobSucceeded, JobFailed, JobCanceled, JobReplaced}
}

// ParseJobStatus returns the job status named s (its persisted token), or false when there is
// none of that name.
func ParseJobStatus(s string) (JobStatus, bool) {
	for _, st := range JobStatuses() {
		if string(st) == s {
			return st, true
		}
	}
	return "", false
}

// Final reports whether no further change of status can happen.
func (s JobStatus) Final() bool {
	switch s {
	case JobSucceeded, JobFailed, JobCanceled, JobReplaced:
		return true
	}
	return false
}

// TaskStatus is the state of one task of a job. The values are persisted and are also the API's
// task status strings: never rename them.
type TaskStatus string

// Task statuses (persisted tokens, API values).
const (
	TaskWaiting  TaskStatus = "waiting"
	TaskRunning  TaskStatus = "running"
	TaskSkipped  TaskStatus = "skipped"
	TaskDone     TaskStatus = "done"
	TaskError    TaskStatus = "error"
	TaskCanceled TaskStatus = "canceled"
)

// Final reports whether the task has ended.
func (s TaskStatus) Final() bool {
	return s == TaskSkipped || s == TaskDone || s == TaskError || s == TaskCanceled
}

// Job is one run of a pipeline, as stored.
type Job struct {
	ID       string
	Pipeline string
	Status   JobStatus
	// Variables as given in the schedule request. Numbers are json.Number so they keep their form.
	Variables map[string]any
	// VariablesJSON is set instead of Variables when a list asks for the stored JSON object
	// (store.JobQuery.VariablesAsJSON): what encoding/json writes for Variables.
	VariablesJSON string
	User          string
	// QueuePartition is the partition given with the schedule request ("" when none).
	QueuePartition string

	Created time.Time
	// StartAfter is the earliest start (created + start_delay); zero when the pipeline has no delay.
	StartAfter time.Time
	Start      *time.Time
	End        *time.Time

	LastError string
	// Errored is true once some task of the job errored.
	Errored bool
	// ReplacedBy names the job that replaced this one on the wait list.
	ReplacedBy string
	// Schedule is the ID of the schedule that started the job ("" when none), and ScheduledFor
	// the fire time the job stands for (nil when none).
	Schedule     string
	ScheduledFor *time.Time
	// Node is the ID of the node that started the job and runs it ("" when it never started, or
	// when its store is one node's: see store.Cluster).
	Node string

	// Definition is the snapshot of the pipeline definition the job was scheduled with.
	Definition *Definition
	// Tasks in API order (see Definition.TaskOrder); the on_error task is last once it ran.
	Tasks []Task
}

// Completed reports whether the job's run finished: it succeeded, failed, or was canceled while it
// was running. A job canceled or replaced on the wait list never ran and is not completed.
func (j *Job) Completed() bool {
	return j.Status.Final() && j.Start != nil
}

// Canceled reports whether the job was canceled by a request or replaced on the wait list.
func (j *Job) Canceled() bool {
	return j.Status == JobCanceled || j.Status == JobReplaced
}

// Task returns the job's task called name, or nil.
func (j *Job) Task(name string) *Task {
	for i := range j.Tasks {
		if j.Tasks[i].Name == name {
			return &j.Tasks[i]
		}
	}
	return nil
}

// Task is the record of one task of a job.
type Task struct {
	Name      string
	DependsOn []string
	Status    TaskStatus
	Start     *time.Time
	End       *time.Time
	ExitCode  int
	Errored   bool
	// Error is the task's error message ("exit status 42", a template error, …); empty when none.
	Error string
	// Attempt is the number of the task's current or last attempt (1-based; a task with a
	// retry policy runs again after a failure). Start is the start of the first attempt; End,
	// ExitCode, Errored and Error describe the last one.
	Attempt int
	// Attempts holds the finished attempts before the current or last one, oldest first (empty
	// unless the task was retried).
	Attempts []TaskAttempt
}

// TaskAttempt is one finished attempt of a task that was retried. It is persisted as JSON with
// the task: never rename the tags.
type TaskAttempt struct {
	Number   int       `json:"number"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exitCode"`
	Error    string    `json:"error,omitempty"`
}

// NewJobTasks returns the initial task records of a job of definition d: every task waiting, in
// API order.
func NewJobTasks(d *Definition) []Task {
	order := d.TaskOrder()
	tasks := make([]Task, 0, len(order))
	for _, name := range order {
		def := d.Tasks[name]
		tasks = append(tasks, Task{
			Name:      name,
			DependsOn: append([]string(nil), def.DependsOn...),
			Status:    TaskWaiting,
			Attempt:   1,
		})
	}
	return tasks
}

// LogStream names one output stream of a task.
type LogStream string

// The output streams of a task (also part of log file names: never rename).
const (
	Stdout LogStream = "stdout"
	Stderr LogStream = "stderr"
)

// LogChunk is a piece of one output stream of a task.
type LogChunk struct {
	Stream LogStream
	// Offset is the byte offset of Data[0] within the stream (its file).
	Offset int64
	Data   []byte
	// Attempt is the attempt (1-based) of a retried task whose output this is: each attempt's
	// offsets start at 0. 0 when the source does not tell.
	Attempt int
}

// WaitInfo tells where and why a job that has not started waits.
type WaitInfo struct {
	// Position on the pipeline's wait list, 1-based, and the length of the list.
	Position int
	Of       int
	// Partition is the job's queue partition ("" when none).
	Partition string
	// Reason is a sentence for people, e.g. "concurrency 1/1 reached" or
	// "start_delay until 2026-11-28T01:20:21Z".
	Reason string
	// StartAfter is the end of the job's start delay (zero when none).
	StartAfter time.Time
}
