// Package store declares the persistence contract of prunner: the Store interface and the
// parameter structs of its methods. The one backend is the embedded SQLite store
// (store/sqlite); the conformance suite in storetest checks the semantics documented here, so
// that any other backend can be held to the same ones.
//
// Admission and claiming are store transactions: a backend serialises them at least per
// pipeline (the SQLite store runs every write transaction on its single writer connection) and
// applies the pure rules of pipeline.Definition.Admit (or AdmitWith) and pipeline.Claimable
// inside the transaction. In-memory structures of the runner are only caches and wake-up signals.
package store

import (
	"context"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Store is the persistence contract. Every method is safe for concurrent use. A job returned by
// the store is a copy that the caller may modify.
type Store interface {
	// Admit stores a new job (with its tasks, all waiting) in one transaction that also decides,
	// with p.Definition.Admit on the pipeline's current state, whether it starts at once (stored
	// running, Start set to p.Now; never with p.NoStart), waits (stored queued) or is rejected
	// (the error of Admit, nothing stored). Waiting jobs named by the decision's Replace end as replaced (End = p.Now,
	// ReplacedBy = the new job's ID), and the new job is stored with the variables that
	// pipeline.MergeReplacedVariables gives for them (replace_variables). The job is durable when
	// Admit returns.
	Admit(ctx context.Context, p AdmitParams) (AdmitResult, error)

	// Claim starts, in one transaction, the queued jobs of a pipeline that pipeline.Claimable
	// allows (status running, Start = now), at most p.Limit of them when it is set, and returns
	// them in wait-list order, with the earliest future start delay of the jobs left waiting
	// (zero when none).
	Claim(ctx context.Context, p ClaimParams) (ClaimResult, error)

	// UpdateTask writes one task record of a running job (insert when the job has no task of that
	// name yet, which is how the on_error task is added at the end). It also sets the job's
	// Errored flag when the task errored.
	UpdateTask(ctx context.Context, jobID string, task pipeline.Task) error

	// FinishJob ends a running job: status (a final one), End, LastError and, for every task
	// that is not final yet, the status given in p.PendingTasks (running tasks become
	// p.RunningTasks). Returns pipeline.ErrJobNotFound, or pipeline.ErrJobFinished when the
	// job is already final.
	FinishJob(ctx context.Context, p FinishParams) error

	// FinishAndClaim is FinishJob of f followed by Claim of c in one transaction: a job's end
	// frees a slot, which the next waiting job takes at once. When the finish fails nothing is
	// claimed (the error is FinishJob's).
	FinishAndClaim(ctx context.Context, f FinishParams, c ClaimParams) (ClaimResult, error)

	// CancelQueued cancels a queued job (status canceled, End = now, its tasks skipped), which
	// frees its wait-list place. Returns the job's status before the call; only when that was
	// queued did the call change anything. pipeline.ErrJobNotFound when there is no such job.
	CancelQueued(ctx context.Context, jobID string, now time.Time) (pipeline.JobStatus, error)

	// Job returns one job with its tasks, or pipeline.ErrJobNotFound.
	Job(ctx context.Context, jobID string) (*pipeline.Job, error)

	// Jobs lists jobs with their tasks, newest first (by creation order). The jobs of a list
	// have no Definition (Job has it).
	Jobs(ctx context.Context, q JobQuery) ([]*pipeline.Job, error)

	// EachJob calls fn with every job that Jobs would return, in the same order, from one
	// consistent snapshot, without holding the whole list: a list of any length streams in
	// bounded memory. The job passed to fn, and everything it references, is valid only until
	// fn returns (a store may reuse the memory): fn copies what it keeps. An error from fn stops
	// the list and is returned.
	EachJob(ctx context.Context, q JobQuery, fn func(*pipeline.Job) error) error

	// EachJobFrom is EachJob for a list read in batches, each in a short read of its own: it
	// calls fn with the next q.Limit jobs (at most; 0: all the rest) of the list q that come
	// after from, in list order, and returns where the next batch begins. The zero ListPos is
	// the start of the list, where q.Before applies (later batches ignore it); the returned
	// position has End set when the list has no more jobs. A caller that streams a long list
	// to a slow reader thus never holds a read open for the whole response (in SQLite, that
	// would keep the WAL from being checkpointed).
	//
	// A list read in batches is not one snapshot, but it never repeats or skips a job: a job
	// that exists for the whole list comes exactly once, in its place, when it matches q at
	// the time its batch is read; a job deleted meanwhile comes at most once; jobs created
	// meanwhile are newer than the list's start and normally do not come. The job passed to fn
	// is valid only until fn returns, as with EachJob.
	EachJobFrom(ctx context.Context, q JobQuery, from ListPos, fn func(*pipeline.Job) error) (ListPos, error)

	// PipelineStates returns, per pipeline name that has running or queued jobs, the admission
	// state (running count and wait list in order).
	PipelineStates(ctx context.Context) (map[string]pipeline.AdmissionState, error)

	// QueuedPipelines returns the names of pipelines that have queued jobs, sorted. The runner
	// claims them when it looks for waiting jobs (a node's poll, a slot of a node with
	// --max-jobs that frees up), and its readiness check uses it as a cheap read of the jobs
	// table that shows the store answers.
	QueuedPipelines(ctx context.Context) ([]string, error)

	// RecoverRunning ends every job still marked running (the server that ran it stopped without
	// finishing it) as failed with LastError = reason and End = now; its running tasks become
	// error with that reason and its waiting tasks skipped. Returns the IDs of those jobs.
	RecoverRunning(ctx context.Context, reason string, now time.Time) ([]string, error)

	// DeleteFinished applies retention for one pipeline: it deletes the finished jobs (and their
	// tasks) that ended before p.EndedBefore (when not zero) and those beyond the p.KeepNewest
	// newest finished jobs (when > 0). Running and queued jobs are never deleted. Returns the
	// IDs of the deleted jobs.
	DeleteFinished(ctx context.Context, p RetentionParams) ([]string, error)

	// ImportJobs stores finished jobs as given (ID, status, variables, times, LastError,
	// Errored, ReplacedBy, Schedule, ScheduledFor, Definition and tasks with their records), in one transaction: either
	// all new jobs are stored or none. It is how the history of another prunner installation is
	// taken over. Jobs whose ID already exists are skipped, so an interrupted import can be
	// repeated. The jobs are history: in creation order they come, in the order given, before
	// every job already stored (the caller sorts them by Created). Every job must have a final
	// status and an ID; otherwise nothing is stored. Returns how many jobs were stored.
	ImportJobs(ctx context.Context, jobs []*pipeline.Job) (imported int, err error)

	// --- Schedules (see pipeline.ScheduleSpec). A firing is Admit with AdmitParams.Firing. ---

	// CreateSchedule stores an API schedule. pipeline.ErrScheduleExists when a stored schedule
	// has its ID. Its state is created with Cursor = now (fire times before its creation are
	// never missed runs).
	CreateSchedule(ctx context.Context, spec pipeline.ScheduleSpec, now time.Time) error
	// UpdateSchedule replaces the spec of a stored API schedule (its state and firings stay).
	// pipeline.ErrScheduleNotFound when there is none.
	UpdateSchedule(ctx context.Context, spec pipeline.ScheduleSpec) error
	// DeleteSchedule deletes an API schedule with its state and its firing records (jobs it
	// started stay). pipeline.ErrScheduleNotFound when there is none.
	DeleteSchedule(ctx context.Context, id string) error
	// APISchedules returns every stored API schedule, sorted by ID.
	APISchedules(ctx context.Context) ([]pipeline.ScheduleSpec, error)

	// EnsureScheduleStates creates the state of each ID that has none, with Cursor = now, and
	// leaves existing states alone (it is how file schedules get theirs at load and reload).
	EnsureScheduleStates(ctx context.Context, ids []string, now time.Time) error
	// ScheduleStates returns the state of every schedule that has one, by ID.
	ScheduleStates(ctx context.Context) (map[string]pipeline.ScheduleState, error)
	// SetSchedulePaused pauses (with a note, "" for none) or resumes a schedule, creating its
	// state when it has none (Cursor = now). Resuming clears the note and PausedAt; pausing a
	// paused schedule again replaces the note and keeps PausedAt.
	SetSchedulePaused(ctx context.Context, id string, paused bool, note string, now time.Time) error
	// AdvanceScheduleCursor moves a schedule's cursor forward to t (never back): fire times up to
	// t will not fire as regular firings (missed: skip, a paused schedule's passing times). A
	// schedule without a state gets one with Cursor = t.
	AdvanceScheduleCursor(ctx context.Context, id string, t time.Time) error

	// ScheduleFirings returns the newest firings of a schedule, newest fire time first, at most
	// limit (0: all kept), with the status of each firing's job.
	ScheduleFirings(ctx context.Context, id string, limit int) ([]pipeline.ScheduleFiring, error)
	// LastFirings returns the newest firing of every schedule that has one, by ID.
	LastFirings(ctx context.Context) (map[string]pipeline.ScheduleFiring, error)

	// Close releases the store. It is idempotent.
	Close() error
}

// Firing makes Admit the firing of a schedule: one transaction keyed by (ScheduleID, FireTime)
// that records the firing and, unless it is skipped or rejected, stores the job.
//
//   - At most one firing is ever recorded per (ScheduleID, FireTime): when one exists, Admit
//     stores nothing and returns AdmitResult.AlreadyFired.
//   - Kind cron: the fire time must also come after the schedule's cursor (else AlreadyFired),
//     and the cursor moves to it in the same transaction.
//   - SkipIfActive (overlap: skip): when a job of the schedule is queued or running, no job is
//     stored; the firing is recorded as skipped (Detail names that job) and AdmitResult.Skipped
//     says why.
//   - A firing that admission rejects (pipeline.ErrQueueFull, ErrNoQueue) is recorded as
//     rejected with the error's message, and Admit returns that error.
//   - The job stored carries Schedule = ScheduleID and ScheduledFor = FireTime (the caller sets
//     both on AdmitParams.Job).
//   - The record's Recorded is AdmitParams.Now. A schedule without a state gets one (Cursor =
//     the fire time for kind cron, else Now). When AdmitParams.IdempotencyKey names a stored
//     job, only ExistingID applies: nothing is recorded.
//
// The firing records of a schedule are bounded: a backend keeps at least its newest
// KeptFirings by fire time (and the cursor, which is what guarantees the key for regular
// firings). The key of a backfill or trigger is thus guaranteed while its record is kept: a
// backfill of a time older than the kept records may fire it again.
type Firing struct {
	ScheduleID   string
	FireTime     time.Time
	Kind         pipeline.FiringKind
	SkipIfActive bool
}

// KeptFirings is how many firing records per schedule a store keeps at least.
const KeptFirings = 100

// AdmitParams are the inputs of Store.Admit.
type AdmitParams struct {
	// Job is the new job: ID, Pipeline, Variables, User, QueuePartition, Created, StartAfter,
	// Definition and Tasks are stored as given; Status, Start are set by the decision.
	Job *pipeline.Job
	// Definition is the pipeline definition whose admission rules apply (the current one).
	Definition *pipeline.Definition
	Now        time.Time
	// IdempotencyKey, when not empty, makes the request repeatable: if a stored job already has
	// this key, nothing is admitted or stored and AdmitResult.Existing names that job. Keys are
	// unique among stored jobs (of any pipeline).
	IdempotencyKey string
	// Firing, when not nil, makes this the firing of a schedule (see Firing).
	Firing *Firing
	// NoStart stores the job queued even when admission would start it (the decision's
	// replacements still apply): the node that admits it has no room for another job (its
	// --max-jobs), so a claim, here or on another node, starts it later.
	NoStart bool
}

// AdmitResult is what Store.Admit decided.
type AdmitResult struct {
	// Started is true when the job was stored as running: the caller must run it.
	Started bool
	// Held is true when admission would have started the job and AdmitParams.NoStart kept it
	// queued: it waits for room on a node, not for its pipeline.
	Held bool
	// Replaced lists the IDs of waiting jobs that ended as replaced.
	Replaced []string
	// ExistingID and ExistingPipeline name the job that already had the request's idempotency
	// key; then nothing else in the result applies.
	ExistingID       string
	ExistingPipeline string
	// AlreadyFired: the firing (AdmitParams.Firing) was recorded before; nothing was stored.
	AlreadyFired bool
	// Skipped, when not empty, says why the firing was skipped (overlap: skip); no job was
	// stored, the firing was recorded.
	Skipped string
}

// ClaimParams are the inputs of Store.Claim.
type ClaimParams struct {
	Pipeline    string
	Concurrency int
	Now         time.Time
	// Limit is the most jobs the claim starts, whatever the pipeline's concurrency allows (the
	// first ones of the wait list that may start): the room left on the claiming node (its
	// --max-jobs). 0: no limit.
	Limit int
}

// LimitClaim returns the first limit of the jobs a claim may start (all of them when limit is
// 0): what ClaimParams.Limit asks of a backend.
func LimitClaim(ids []string, limit int) []string {
	if limit > 0 && len(ids) > limit {
		return ids[:limit]
	}
	return ids
}

// ClaimResult is what Store.Claim started.
type ClaimResult struct {
	// Started jobs, with their tasks, in wait-list order.
	Started []*pipeline.Job
	// NextStart is the earliest StartAfter in the future among the jobs left waiting (zero when
	// none).
	NextStart time.Time
}

// FinishParams are the inputs of Store.FinishJob.
type FinishParams struct {
	JobID     string
	Status    pipeline.JobStatus
	End       time.Time
	LastError string
	// PendingTasks is the status given to tasks that are still waiting (normally skipped).
	PendingTasks pipeline.TaskStatus
	// RunningTasks is the status given to tasks still marked running (normally canceled).
	RunningTasks pipeline.TaskStatus
	// ReplacedBy, when not empty, is the job that interrupted this one (interrupt_running): it
	// is stored as the job's ReplacedBy.
	ReplacedBy string
}

// JobQuery selects jobs for Store.Jobs. The zero value lists every job.
type JobQuery struct {
	// Pipeline limits the list to one pipeline when not empty.
	Pipeline string
	// Statuses limits the list to these statuses when not empty.
	Statuses []pipeline.JobStatus
	// Limit is the maximum number of jobs (0 = no limit).
	Limit int
	// Before, when not empty, is a job ID: only jobs created before it are listed (a cursor).
	Before string
	// WithoutTasks skips loading tasks (faster for counts and pages that do not show them).
	WithoutTasks bool
	// VariablesAsJSON sets each job's VariablesJSON (the JSON object as stored) instead of
	// decoding its Variables: for callers that only write them out again.
	VariablesAsJSON bool
}

// ListPos is a place in a list read in batches (see Store.EachJobFrom). The zero value is the
// start of the list.
type ListPos struct {
	// Key is the store's: the list order's key of the last job read (SQLite: its seq). Callers
	// only pass it back.
	Key int64
	// End tells that the list has no more jobs.
	End bool
}

// RetentionParams are the inputs of Store.DeleteFinished.
type RetentionParams struct {
	Pipeline    string
	EndedBefore time.Time
	KeepNewest  int
}
