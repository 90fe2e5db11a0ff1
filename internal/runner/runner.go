// Package runner admits jobs, keeps the wait lists moving and executes jobs: each job's tasks run as
// a DAG, event-driven (a task ending starts its ready dependents at once; a job ending claims the
// next waiting job at once), each task's script lines in one shell session whose processes live in
// their own process groups. State lives in the store; the runner's memory holds only the jobs this
// process executes, timers for start delays and the loaded definitions.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/tasklog"
)

// Config configures a Runner.
type Config struct {
	Store store.Store
	// DataDir holds the task output files (DataDir/logs/<job>/…) unless TaskLogs is set, and
	// the disk space reserved for the store.
	DataDir string
	// TaskLogs keeps the output of tasks (default: tasklog.NewFiles(DataDir/logs)).
	TaskLogs tasklog.Store
	// WorkDir is the working directory of every task ("" = the server's).
	WorkDir string
	// Env is the base environment of every task (the server's environment after the dotenv
	// files, without secrets), "KEY=VALUE".
	Env []string
	// KillGrace is the time a canceled task gets after SIGINT before SIGTERM, and after SIGTERM
	// before SIGKILL (default 2s).
	KillGrace time.Duration
	// RetentionInterval is how often retention runs besides after every finished job (default 1m).
	RetentionInterval time.Duration
	Logger            *slog.Logger
	// Now returns the current time (tests may fix it); default time.Now.
	Now func() time.Time
	// Observer receives events for metrics (default: none).
	Observer Observer
	// Node identifies this runner as a node of a cluster. With an ID and a store that several
	// nodes share (store.Cluster), the runner registers the node, holds its lease, recovers
	// only its own jobs at start-up and reaps lost nodes (see lease.go). Without an ID, or with
	// a store of one node, none of this runs, and the runner is the store's only node: its
	// start-up ends every running job of the store (RecoverRunning), so a shared database must
	// then be held exclusively (postgres.Options.Exclusive).
	Node store.NodeInfo
	// Lease is the node's lease (default DefaultLease); it is renewed four times per lease.
	Lease time.Duration
	// PollInterval is how often a node of a cluster looks for waiting jobs and cancel requests
	// besides the wake-ups it gets from other nodes (default DefaultPollInterval; see
	// wakeups.go): the most a lost wake-up costs.
	PollInterval time.Duration
	// MaxJobs is the most jobs this runner (node) runs at once, over all pipelines; 0: no
	// limit. Jobs beyond it wait, for a node with room (see slots.go).
	MaxJobs int
}

// Causes of a job's cancellation, checked with context.Cause.
var (
	errCanceledByRequest = errors.New("job canceled by request")
	errServerStopping    = errors.New("job canceled: server stopping (SIGTERM)")
)

// Runner is the job engine. Create it with New, load definitions with SetDefinitions, then Start.
type Runner struct {
	cfg Config
	st  store.Store
	log *slog.Logger
	// logs keeps the output of tasks: written, read, followed live and deleted only through it.
	logs tasklog.Store

	defs atomic.Pointer[pipeline.Set]

	mu sync.Mutex
	// known remembers every definition ever loaded by name, so jobs of a pipeline that was
	// removed from the files still find their concurrency.
	known map[string]*pipeline.Definition
	// running holds the jobs this process executes.
	running map[string]*jobRun
	// cancelPending holds the cancel requests that launch applies to a job it registers (see
	// Cancel).
	cancelPending map[string]bool
	// claiming and claimAgain coalesce concurrent claims per pipeline (see claim).
	claiming   map[string]bool
	claimAgain map[string]bool
	// reserved is the room of MaxJobs held by claims and admissions in flight; starved is set
	// when a claim found no room (see slots.go).
	reserved int
	starved  bool
	// released is closed and replaced whenever reserved room is given back.
	released chan struct{}
	// lastStarted is the pipeline of the job launched last: the turn of claimQueued begins
	// after it.
	lastStarted string
	// timers wake a pipeline's wait list when a start delay elapses.
	timers map[string]*time.Timer
	// idle is closed and replaced whenever a running job ends, for Drain.
	idle    chan struct{}
	closing bool
	// stopping is set by CancelAll: a job the store claimed before it and launch registers after
	// it is canceled too.
	stopping bool

	// recovered is set by Recover, which leaves the pipelines with waiting jobs in
	// queuedAtStart for Start to claim.
	recovered     bool
	queuedAtStart []string
	// opened is closed when Start has opened the runner (see awaitStart).
	opened chan struct{}
	// leaseGranted is when Recover registered the node (zero when not a node of a cluster).
	leaseGranted time.Time
	// leaseStop ends the lease loop (Leave); leaseDone is closed when it has returned (nil
	// while it does not run).
	leaseStop     chan struct{}
	leaseStopOnce sync.Once
	leaseDone     chan struct{}
	// defsHash is the hash of the loaded definitions (see nodes.go); publishMu serialises its
	// publications.
	defsHash  string
	publishMu sync.Mutex

	stopOnce sync.Once
	stopped  chan struct{}

	// reserve is disk space held back in the data directory for the store (see ballast).
	reserve *ballast

	// wakeupsOff turns the listener of wake-ups off (tests of the poll; see wakeups.go).
	wakeupsOff bool

	// storeDown is set while the background work finds the database unavailable (outage.go).
	storeDown atomic.Bool
}

// New returns a Runner that is not started yet.
func New(cfg Config) *Runner {
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = 2 * time.Second
	}
	if cfg.RetentionInterval <= 0 {
		cfg.RetentionInterval = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.TaskLogs == nil {
		cfg.TaskLogs = tasklog.NewFiles(filepath.Join(cfg.DataDir, "logs"))
	}
	cfg.Node.MaxJobs = cfg.MaxJobs
	r := &Runner{
		cfg:           cfg,
		st:            cfg.Store,
		log:           cfg.Logger,
		logs:          cfg.TaskLogs,
		known:         map[string]*pipeline.Definition{},
		running:       map[string]*jobRun{},
		cancelPending: map[string]bool{},
		timers:        map[string]*time.Timer{},
		claiming:      map[string]bool{},
		claimAgain:    map[string]bool{},
		idle:          make(chan struct{}),
		opened:        make(chan struct{}),
		stopped:       make(chan struct{}),
		leaseStop:     make(chan struct{}),
		released:      make(chan struct{}),
		reserve:       newBallast(cfg.DataDir),
	}
	r.defs.Store(&pipeline.Set{Pipelines: map[string]*pipeline.Definition{}})
	// Until Start has recovered from an unclean stop, the runner admits and starts nothing: it
	// begins closed, and Start opens it. So the claims that SetDefinitions starts before Start
	// neither race with the recovery (which would end a job they just started as failed) nor
	// cost the start-up a write transaction per pipeline; Start claims every pipeline that has
	// waiting jobs once it has recovered.
	r.closing = true
	return r
}

func (r *Runner) now() time.Time { return r.cfg.Now().UTC() }

// SetDefinitions replaces the loaded definitions. Queued and running jobs keep the definition they
// were scheduled with; the new concurrency limits apply to the next claims.
func (r *Runner) SetDefinitions(set *pipeline.Set) {
	hash := definitionsHash(set)
	r.defs.Store(set)
	r.mu.Lock()
	for name, d := range set.Pipelines {
		r.known[name] = d
	}
	r.defsHash = hash
	r.mu.Unlock()
	select {
	case <-r.opened:
		// A reload: the other nodes learn of it. (Start publishes the first load.)
		go r.publishDefinitions()
	default:
	}
	// A raised concurrency limit may let waiting jobs start now.
	for _, name := range set.Names() {
		go r.claim(name)
	}
}

// Recover ends the jobs that an unclean stop left running (as failed, their orphaned processes
// killed) and remembers which pipelines have waiting jobs, for Start. It needs only the store,
// not the definitions, so a server can answer reads once it has recovered, while its definitions
// still load. Start calls it when it has not run.
func (r *Runner) Recover(ctx context.Context) error {
	// One read tells whether an unclean stop left jobs running and which pipelines have waiting
	// jobs. Nothing else writes to the store before Start opens the runner, so when no job is
	// running the recovery has nothing to do, and its write transaction is skipped.
	states, err := r.st.PipelineStates(ctx)
	if err != nil {
		return fmt.Errorf("read the store: %w", err)
	}
	var running bool
	var queued []string
	for name, s := range states {
		running = running || s.Running > 0
		if len(s.Waiting) > 0 {
			queued = append(queued, name)
		}
	}
	// Sorted by name, so that Start claims them in a stable order.
	slices.Sort(queued)
	recoverJobs := r.st.RecoverRunning
	if cl := r.cluster(); cl != nil {
		// A node of a cluster ends only the jobs it ran itself before it restarted.
		granted, err := r.register(ctx, cl)
		if err != nil {
			return fmt.Errorf("register node: %w", err)
		}
		r.mu.Lock()
		r.leaseGranted = granted
		r.mu.Unlock()
		recoverJobs = cl.RecoverNode
		// The jobs of a run of this node that was lost were ended by another node, so the
		// recovery below does not see them: their processes are found by the node's marker.
		if killed := killNodeOrphans(r.nodeMarker()); killed > 0 {
			r.log.Warn("killed task processes left by a previous run of this node", "node", r.cfg.Node.ID, "count", killed)
		}
	}
	if running {
		ids, err := recoverJobs(ctx, "the server stopped while this job was running (crash or kill -9); it was marked failed on restart", r.now())
		if err != nil {
			return fmt.Errorf("recover running jobs: %w", err)
		}
		if len(ids) > 0 {
			r.log.Warn("jobs were running when the server stopped; marked failed", "count", len(ids))
			killed := killOrphans(ids)
			if killed > 0 {
				r.log.Warn("killed orphaned task processes of the previous server", "count", killed)
			}
		}
	}
	r.mu.Lock()
	r.recovered, r.queuedAtStart = true, queued
	r.mu.Unlock()
	return nil
}

// Start recovers from an unclean stop unless Recover did, opens the runner (jobs are admitted
// and claimed only from now on), starts the waiting jobs that may start and begins periodic
// retention.
func (r *Runner) Start(ctx context.Context) error {
	if err := r.reserve.fill(); err != nil {
		r.log.Warn("could not reserve disk space in the data directory", "error", err)
	}
	r.mu.Lock()
	recovered := r.recovered
	r.mu.Unlock()
	if !recovered {
		if err := r.Recover(ctx); err != nil {
			return err
		}
	}
	r.mu.Lock()
	select {
	case <-r.stopped:
		// Stopped (Drain or Stop) before it started: it stays closed.
	default:
		r.closing = false
	}
	queued := r.queuedAtStart
	r.queuedAtStart = nil
	granted := r.leaseGranted
	r.mu.Unlock()
	close(r.opened)
	if cl := r.cluster(); cl != nil {
		done := make(chan struct{})
		r.mu.Lock()
		r.leaseDone = done
		r.mu.Unlock()
		go func() {
			defer close(done)
			r.leaseLoop(cl, granted)
		}()
		r.startWakeups()
		r.publishDefinitions()
	}
	for _, name := range queued {
		r.claim(name)
	}
	r.applyRetentionAll()
	go r.retentionLoop()
	return nil
}

// awaitStart waits until Start has opened the runner (or it stopped before): what needs the
// definitions, like admitting a job or listing the pipelines, waits for them while a server
// that already answers reads finishes its start-up.
func (r *Runner) awaitStart(ctx context.Context) error {
	select {
	case <-r.opened:
		return nil
	case <-r.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Schedule admits a new job. It returns once the job is durable.
func (r *Runner) Schedule(ctx context.Context, req pipeline.ScheduleRequest) (string, error) {
	id, _, err := r.admit(ctx, req, nil)
	return id, err
}

// Fire admits the job of a schedule's firing (see store.Firing): the same admission as Schedule
// (concurrency, wait list, strategies, partitions, start_delay, interrupt_running), in one store
// transaction keyed by (f.ScheduleID, f.FireTime), with job.Schedule and job.ScheduledFor set.
// The result tells a firing that was recorded before (AlreadyFired, jobID "") and one skipped by
// overlap: skip (Skipped, jobID ""); a rejected firing returns the admission error (the store
// recorded it as rejected).
func (r *Runner) Fire(ctx context.Context, req pipeline.ScheduleRequest, f store.Firing) (string, store.AdmitResult, error) {
	return r.admit(ctx, req, &f)
}

// admit is the admission of Schedule and Fire: it builds the job, stores it (as the firing f when
// not nil) and starts it or leaves it waiting.
func (r *Runner) admit(ctx context.Context, req pipeline.ScheduleRequest, f *store.Firing) (string, store.AdmitResult, error) {
	if err := r.awaitStart(ctx); err != nil {
		return "", store.AdmitResult{}, err
	}
	r.mu.Lock()
	closing := r.closing
	r.mu.Unlock()
	if closing {
		r.cfg.Observer.ScheduleRejected(req.Pipeline, "shutting_down")
		return "", store.AdmitResult{}, pipeline.ErrShuttingDown
	}
	def := r.defs.Load().Get(req.Pipeline)
	if def == nil {
		r.cfg.Observer.ScheduleRejected(req.Pipeline, "unknown_pipeline")
		return "", store.AdmitResult{}, fmt.Errorf("%w: pipeline %q is not defined", pipeline.ErrUnknownPipeline, req.Pipeline)
	}
	now := r.now()
	job := newJob(def, req, now, f)
	// Room for the job on this node, held until it runs (see slots.go); without room it waits.
	slots, room := r.takeAdmissionSlot(ctx)
	defer r.releaseSlots(slots)
	res, err := r.st.Admit(ctx, store.AdmitParams{Job: job, Definition: def, Now: now, IdempotencyKey: req.IdempotencyKey, Firing: f, NoStart: !room})
	if err != nil {
		r.observeRejection(def.Name, err)
		return "", res, err
	}
	if res.ExistingID != "" {
		if res.ExistingPipeline != def.Name {
			return "", res, fmt.Errorf("%w: the key belongs to job %s of pipeline %q", pipeline.ErrIdempotencyConflict, res.ExistingID, res.ExistingPipeline)
		}
		r.log.Info("schedule repeated with an idempotency key; returning the existing job", "job_id", res.ExistingID, "pipeline", def.Name)
		return res.ExistingID, res, nil
	}
	if res.AlreadyFired || res.Skipped != "" {
		// A firing that stored no job: nothing to start.
		return "", res, nil
	}
	r.admitted(job, res, now)
	r.log.Info("job scheduled", "job_id", job.ID, "pipeline", def.Name, "user", req.User, "started", res.Started)
	return job.ID, res, nil
}

// newJob builds the job that req asks for, as the firing f when not nil.
func newJob(def *pipeline.Definition, req pipeline.ScheduleRequest, now time.Time, f *store.Firing) *pipeline.Job {
	job := &pipeline.Job{
		ID:             uuid.NewString(),
		Pipeline:       def.Name,
		Variables:      req.Variables,
		User:           req.User,
		QueuePartition: req.QueuePartition,
		Created:        now,
		Definition:     def,
		Tasks:          pipeline.NewJobTasks(def),
	}
	if def.StartDelay > 0 {
		job.StartAfter = now.Add(def.StartDelay)
	}
	if f != nil {
		job.Schedule = f.ScheduleID
		at := f.FireTime.UTC()
		job.ScheduledFor = &at
	}
	return job
}

// observeRejection counts an admission the store refused, by reason.
func (r *Runner) observeRejection(name string, err error) {
	switch {
	case errors.Is(err, pipeline.ErrQueueFull):
		r.cfg.Observer.ScheduleRejected(name, "queue_full")
	case errors.Is(err, pipeline.ErrNoQueue):
		r.cfg.Observer.ScheduleRejected(name, "no_queue")
	}
}

// admitted acts on a stored new job: it runs it when the store started it; otherwise it interrupts
// a running job for it (interrupt_running) and arms the timer of its start delay.
func (r *Runner) admitted(job *pipeline.Job, res store.AdmitResult, now time.Time) {
	for _, id := range res.Replaced {
		r.log.Info("job replaced on the wait list", "job_id", id, "replaced_by", job.ID, "pipeline", job.Pipeline)
	}
	if res.Started {
		job.Status = pipeline.JobRunning
		start := now
		job.Start = &start
		r.launch(job)
		return
	}
	if res.Held {
		r.held(job.Pipeline)
	}
	if job.Definition.InterruptRunning && !res.Held {
		// A held job waits for room on a node, not for its pipeline: nothing to interrupt.
		r.interruptFor(job)
	}
	if !job.StartAfter.IsZero() {
		r.armTimer(job.Pipeline, job.StartAfter)
	}
}

// interruptFor makes room for a new job of an interrupt_running pipeline that had to wait: it
// cancels the running job of the pipeline (of the new job's partition, with
// partitioned_replace) that started first, with the new job as the cause. The new job takes the
// slot when the interrupted job's end is stored, which is after its processes are gone, so
// the pipeline's concurrency is never exceeded.
//
// On a node of a cluster, the job to interrupt may run on another node: it is found in the
// store (see interruptInCluster).
func (r *Runner) interruptFor(job *pipeline.Job) {
	if rc, ok := r.st.(store.RemoteCancel); ok && r.cluster() != nil {
		r.interruptInCluster(job, rc)
		return
	}
	partitioned := job.Definition.QueueStrategy == pipeline.QueuePartitionedReplace
	r.mu.Lock()
	var oldest *jobRun
	for _, jr := range r.running {
		j := jr.job
		if j.Pipeline != job.Pipeline || j.ID == job.ID || partitioned && j.QueuePartition != job.QueuePartition {
			continue
		}
		if oldest == nil || j.Start != nil && oldest.job.Start != nil && j.Start.Before(*oldest.job.Start) {
			oldest = jr
		}
	}
	r.mu.Unlock()
	if oldest == nil {
		return
	}
	if oldest.requestCancel(interruptedError{by: job.ID}) {
		r.log.Info("running job interrupted by a new job (interrupt_running)", "job_id", oldest.job.ID, "replaced_by", job.ID, "pipeline", job.Pipeline)
	}
}

// interruptedError is the cancel cause of a job that a newer job interrupted (interrupt_running).
type interruptedError struct{ by string }

func (e interruptedError) Error() string {
	return "job canceled: interrupted by the newer job " + e.by + " (interrupt_running)"
}

// Is makes an interrupted job count as canceled on request: on_error does not run.
func (e interruptedError) Is(target error) bool { return target == errCanceledByRequest }

// interruptedBy returns the job that interrupted a job canceled with cause; "" for other causes.
func interruptedBy(cause error) string {
	var ie interruptedError
	if errors.As(cause, &ie) {
		return ie.by
	}
	return ""
}

// Cancel cancels a queued or running job. Canceling an already canceled job is a no-op;
// pipeline.ErrJobFinished for a job that ended otherwise (also one that was just deciding its
// outcome when the request came).
//
// A job the store has just claimed is running in the store before launch registers it here. So
// that a cancel in that moment is not lost, Cancel leaves a note before it asks the store, and
// launch applies the note when it registers the job: either Cancel finds the job registered, or
// launch finds the note. The note is taken back unless the store says the job is running.
func (r *Runner) Cancel(ctx context.Context, jobID string) error {
	r.mu.Lock()
	jr := r.running[jobID]
	if jr == nil {
		r.cancelPending[jobID] = true
	}
	r.mu.Unlock()
	if jr != nil {
		if jr.requestCancel(errCanceledByRequest) {
			return nil
		}
		// Too late: the job is storing its end. Wait for it, then answer from the store.
		select {
		case <-jr.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	prev, err := r.st.CancelQueued(ctx, jobID, r.now())
	if jr == nil && (err != nil || prev != pipeline.JobRunning) {
		r.mu.Lock()
		delete(r.cancelPending, jobID)
		r.mu.Unlock()
	}
	if err != nil {
		return err
	}
	switch prev {
	case pipeline.JobQueued:
		r.log.Info("queued job canceled", "job_id", jobID)
		if j, err := r.st.Job(ctx, jobID); err == nil {
			go r.claim(j.Pipeline)
		}
		return nil
	case pipeline.JobCanceled, pipeline.JobReplaced:
		return nil
	case pipeline.JobSucceeded, pipeline.JobFailed:
		return fmt.Errorf("job %s: %w", jobID, pipeline.ErrJobFinished)
	case pipeline.JobRunning:
		if jr != nil {
			// The job ended here but its end could not be stored (see persistEnd); the next
			// start's recovery ends it.
			return fmt.Errorf("job %s: %w", jobID, pipeline.ErrJobFinished)
		}
		// Running on another node (see cancelElsewhere), or claimed here and not registered
		// yet, or registered since the note was left: launch cancels it either way.
		return r.cancelElsewhere(ctx, jobID)
	default:
		return fmt.Errorf("job %s: cancel: unexpected status %q", jobID, prev)
	}
}

// Job returns one job.
func (r *Runner) Job(ctx context.Context, jobID string) (*pipeline.Job, error) {
	return r.st.Job(ctx, jobID)
}

// Jobs lists jobs newest first.
func (r *Runner) Jobs(ctx context.Context, q store.JobQuery) ([]*pipeline.Job, error) {
	return r.st.Jobs(ctx, q)
}

// EachJob streams the jobs of a list to fn (see store.Store.EachJob).
func (r *Runner) EachJob(ctx context.Context, q store.JobQuery, fn func(*pipeline.Job) error) error {
	return r.st.EachJob(ctx, q, fn)
}

// EachJobFrom streams one batch of a list read in batches to fn (see store.Store.EachJobFrom).
func (r *Runner) EachJobFrom(ctx context.Context, q store.JobQuery, from store.ListPos, fn func(*pipeline.Job) error) (store.ListPos, error) {
	return r.st.EachJobFrom(ctx, q, from, fn)
}

// Pipelines returns the loaded pipelines sorted by name with their running and waiting counts.
func (r *Runner) Pipelines(ctx context.Context) ([]pipeline.Info, error) {
	if err := r.awaitStart(ctx); err != nil {
		return nil, err
	}
	states, err := r.st.PipelineStates(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	closing := r.closing
	r.mu.Unlock()
	set := r.defs.Load()
	infos := make([]pipeline.Info, 0, len(set.Pipelines))
	for _, name := range set.Names() {
		d := set.Pipelines[name]
		s := states[name]
		info := pipeline.Info{Name: d.Name, Definition: d, RunningJobs: s.Running, WaitingJobs: len(s.Waiting), Schedulable: true}
		if _, err := d.Admit(s, ""); err != nil {
			info.Schedulable, info.NotSchedulableReason = false, err.Error()
		}
		if closing {
			info.Schedulable, info.NotSchedulableReason = false, "the server is shutting down"
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// launch registers a claimed job and runs it in its own goroutine.
func (r *Runner) launch(job *pipeline.Job) {
	jr := newJobRun(r, job)
	r.mu.Lock()
	r.running[job.ID] = jr
	r.lastStarted = job.Pipeline
	pendingCancel := r.cancelPending[job.ID]
	delete(r.cancelPending, job.ID)
	stopping := r.stopping
	r.mu.Unlock()
	switch {
	case stopping:
		jr.requestCancel(errServerStopping)
	case pendingCancel:
		jr.requestCancel(errCanceledByRequest)
	}
	go func() {
		jr.run()
		r.mu.Lock()
		delete(r.running, job.ID)
		close(r.idle)
		r.idle = make(chan struct{})
		closing := r.closing
		r.mu.Unlock()
		if jr.next != nil {
			// The job's end already claimed the freed slot; what it started must run.
			r.startClaimed(job.Pipeline, *jr.next)
		}
		switch {
		case closing:
		case r.cfg.MaxJobs > 0:
			// A slot of the node is free: the job that waits for it may be of any pipeline.
			r.claimQueued()
		case jr.next == nil:
			r.claim(job.Pipeline)
		}
		if !closing {
			r.applyRetention(job.Pipeline)
		}
	}()
}

// claim starts the waiting jobs of a pipeline that may start now and arms a timer for the next
// start delay.
func (r *Runner) claim(name string) {
	// Claims of one pipeline are coalesced: when several jobs end at once, one claim runs and,
	// if more requests came meanwhile, one more after it, instead of one transaction each.
	r.mu.Lock()
	if r.claiming[name] {
		r.claimAgain[name] = true
		r.mu.Unlock()
		return
	}
	r.claiming[name] = true
	r.mu.Unlock()
	for {
		r.claimOnce(name)
		r.mu.Lock()
		if r.claimAgain[name] && !r.closing {
			delete(r.claimAgain, name)
			r.mu.Unlock()
			continue
		}
		delete(r.claimAgain, name)
		delete(r.claiming, name)
		r.mu.Unlock()
		return
	}
}

func (r *Runner) claimOnce(name string) {
	p, ok := r.reserveClaim(name)
	if !ok {
		return
	}
	// The reservation is given back once what the claim started is registered.
	defer r.releaseSlots(p.Limit)
	res, err := r.st.Claim(context.Background(), p)
	if err != nil {
		r.logStoreError("claim waiting jobs", err, "pipeline", name)
		return
	}
	r.storeReachable()
	r.startClaimed(name, res)
}

// reserveClaim returns the parameters of a claim of the pipeline's waiting jobs now, with the
// room of the node reserved as its limit (the caller releases it: releaseSlots(Limit)); false
// when the runner is closing or the node has no room, and starts nothing.
func (r *Runner) reserveClaim(name string) (store.ClaimParams, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return store.ClaimParams{}, false
	}
	limit, room := r.takeSlotsLocked(0)
	if !room {
		r.starved = true
		return store.ClaimParams{}, false
	}
	return store.ClaimParams{Pipeline: name, Concurrency: r.concurrencyLocked(name), Now: r.now(), Limit: limit}, true
}

// claimParams returns the parameters of the claim in the transaction that ends a job of the
// pipeline (see persistEnd); false when that transaction claims nothing: the runner is closing,
// or it has MaxJobs, whose freed slot goes to the pipelines in turn (see claimQueued) rather
// than to the ending job's pipeline.
func (r *Runner) claimParams(name string) (store.ClaimParams, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing || r.cfg.MaxJobs > 0 {
		return store.ClaimParams{}, false
	}
	return store.ClaimParams{Pipeline: name, Concurrency: r.concurrencyLocked(name), Now: r.now()}, true
}

// concurrencyLocked returns how many jobs of the pipeline may run at once: the loaded
// definition's limit, else that of the last definition loaded by that name (its jobs still wait
// after the pipeline was removed from the files), else 1. The caller holds r.mu.
func (r *Runner) concurrencyLocked(name string) int {
	if d := r.defs.Load().Get(name); d != nil {
		return d.Concurrency
	}
	if d := r.known[name]; d != nil {
		return d.Concurrency
	}
	return 1
}

// startClaimed runs the jobs a claim started and arms the timer of the next start delay.
func (r *Runner) startClaimed(name string, res store.ClaimResult) {
	for _, job := range res.Started {
		r.log.Info("waiting job started", "job_id", job.ID, "pipeline", name)
		r.launch(job)
	}
	if !res.NextStart.IsZero() {
		r.armTimer(name, res.NextStart)
	}
}

// armTimer makes sure the pipeline's wait list is looked at again at t.
func (r *Runner) armTimer(name string, t time.Time) {
	d := t.Sub(r.now())
	if d < 0 {
		d = 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return
	}
	if old := r.timers[name]; old != nil {
		old.Stop()
	}
	// A little slack so the claim's clock is past StartAfter.
	r.timers[name] = time.AfterFunc(d+time.Millisecond, func() { r.claim(name) })
}

// Drain stops accepting and starting jobs (Schedule returns pipeline.ErrShuttingDown; waiting jobs
// stay queued in the store) and waits until the running jobs have finished or ctx ends.
func (r *Runner) Drain(ctx context.Context) error {
	r.beginClose()
	return r.waitIdle(ctx)
}

// Stop stops accepting and starting jobs, cancels the running jobs (killing their process groups)
// and waits for them to end, or for ctx.
func (r *Runner) Stop(ctx context.Context) error {
	r.beginClose()
	r.CancelAll()
	return r.waitIdle(ctx)
}

// CancelAll cancels every running job with the server-stopping cause (used when a drain is cut
// short by a second signal).
func (r *Runner) CancelAll() { r.cancelAll(errServerStopping) }

// CancelAllBecause cancels every running job as CancelAll does, with reason in the jobs'
// lastError ("job canceled: server stopping (<reason>)"), for example a drain that ran out of
// time.
func (r *Runner) CancelAllBecause(reason string) { r.cancelAll(stoppingError{reason: reason}) }

func (r *Runner) cancelAll(cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopping = true
	for _, jr := range r.running {
		if !jr.requestCancel(cause) {
			// Deciding its end (maybe running on_error): stop its processes all the same.
			jr.cancel(cause)
		}
	}
}

// stoppingError is errServerStopping with another reason than SIGTERM.
type stoppingError struct{ reason string }

func (e stoppingError) Error() string        { return "job canceled: server stopping (" + e.reason + ")" }
func (e stoppingError) Is(target error) bool { return target == errServerStopping }

func (r *Runner) beginClose() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closing = true
	for name, t := range r.timers {
		t.Stop()
		delete(r.timers, name)
	}
	r.stopOnce.Do(func() { close(r.stopped) })
}

func (r *Runner) waitIdle(ctx context.Context) error {
	for {
		r.mu.Lock()
		n := len(r.running)
		idle := r.idle
		r.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-idle:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d running jobs: %w", n, ctx.Err())
		}
	}
}

// Running returns the number of jobs this process executes now.
func (r *Runner) Running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.running)
}

// diskFull is called when a task's output cannot be written because the disk is full. The task
// fails with that error; the reserved space is released so that the store can still record how
// the job ended.
func (r *Runner) diskFull() {
	if r.reserve.release() {
		r.log.Error("disk full in the data directory: released the reserved space so that job ends can be stored; free disk space (retention_count/retention_period remove old logs)", "reserved_mib", ballastSize>>20)
	}
}
