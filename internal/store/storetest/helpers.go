package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// base is the clock of the suite: every time is derived from it, so expectations are exact.
// It has nanoseconds to show that backends keep full precision.
var base = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

// at returns base plus sec seconds.
func at(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }

// fixture is one fresh store of the backend under test.
type fixture struct {
	t   *testing.T
	ctx context.Context
	s   store.Store
}

func newFixture(t *testing.T, open func(t *testing.T) store.Store) *fixture {
	t.Helper()
	return &fixture{t: t, ctx: t.Context(), s: open(t)}
}

// testDefinition returns a pipeline with three chained tasks (build → test → deploy), the
// append strategy and an unbounded wait list, changed by mods.
func testDefinition(name string, concurrency int, mods ...func(*pipeline.Definition)) *pipeline.Definition {
	d := &pipeline.Definition{
		Name:          name,
		Concurrency:   concurrency,
		QueueStrategy: pipeline.QueueAppend,
		Tasks: map[string]pipeline.TaskDefinition{
			"build":  {Name: "build", Script: []string{"make build"}},
			"test":   {Name: "test", Script: []string{"make test"}, DependsOn: []string{"build"}},
			"deploy": {Name: "deploy", Script: []string{"make deploy"}, DependsOn: []string{"test"}},
		},
	}
	for _, m := range mods {
		m(d)
	}
	return d
}

// taskNames is the task order of testDefinition.
var taskNames = []string{"build", "test", "deploy"}

func queueLimit(n int) func(*pipeline.Definition) {
	return func(d *pipeline.Definition) { d.QueueLimit = &n }
}

func strategy(s pipeline.QueueStrategy) func(*pipeline.Definition) {
	return func(d *pipeline.Definition) { d.QueueStrategy = s }
}

func partitionLimit(n int) func(*pipeline.Definition) {
	return func(d *pipeline.Definition) {
		d.QueueStrategy = pipeline.QueuePartitionedReplace
		d.QueuePartitionLimit = n
	}
}

func startDelay(delay time.Duration) func(*pipeline.Definition) {
	return func(d *pipeline.Definition) { d.StartDelay = delay }
}

// newJob returns a new job of d as the runner builds it: created at created, with the start
// delay applied and every task waiting.
func newJob(d *pipeline.Definition, id string, created time.Time) *pipeline.Job {
	j := &pipeline.Job{
		ID:         id,
		Pipeline:   d.Name,
		Created:    created,
		Definition: d,
		Tasks:      pipeline.NewJobTasks(d),
	}
	if d.StartDelay > 0 {
		j.StartAfter = created.Add(d.StartDelay)
	}
	return j
}

func (f *fixture) tryAdmit(d *pipeline.Definition, j *pipeline.Job, now time.Time) (store.AdmitResult, error) {
	return f.s.Admit(f.ctx, store.AdmitParams{Job: j, Definition: d, Now: now})
}

// admit admits j and fails the test when the store rejects it.
func (f *fixture) admit(d *pipeline.Definition, j *pipeline.Job, now time.Time) store.AdmitResult {
	f.t.Helper()
	res, err := f.tryAdmit(d, j, now)
	if err != nil {
		f.t.Fatalf("Admit(%s) error: %v", j.ID, err)
	}
	return res
}

// admitStarted admits new jobs of d created at now and requires that each starts at once.
func (f *fixture) admitStarted(d *pipeline.Definition, now time.Time, ids ...string) {
	f.t.Helper()
	for _, id := range ids {
		if res := f.admit(d, newJob(d, id, now), now); !res.Started {
			f.t.Fatalf("Admit(%s) Started = false, want true", id)
		}
	}
}

// admitQueued admits new jobs of d created at now and requires that each waits.
func (f *fixture) admitQueued(d *pipeline.Definition, now time.Time, ids ...string) {
	f.t.Helper()
	for _, id := range ids {
		if res := f.admit(d, newJob(d, id, now), now); res.Started {
			f.t.Fatalf("Admit(%s) Started = true, want false", id)
		}
	}
}

func (f *fixture) job(id string) *pipeline.Job {
	f.t.Helper()
	j, err := f.s.Job(f.ctx, id)
	if err != nil {
		f.t.Fatalf("Job(%s) error: %v", id, err)
	}
	return j
}

func (f *fixture) wantNoJob(id string) {
	f.t.Helper()
	if j, err := f.s.Job(f.ctx, id); !errors.Is(err, pipeline.ErrJobNotFound) {
		f.t.Fatalf("Job(%s) = %v, %v; want error %v", id, j, err, pipeline.ErrJobNotFound)
	}
}

func (f *fixture) wantStatus(id string, want pipeline.JobStatus) {
	f.t.Helper()
	if got := f.job(id).Status; got != want {
		f.t.Errorf("job %s status = %q, want %q", id, got, want)
	}
}

func (f *fixture) wantTaskStatuses(id string, want ...pipeline.TaskStatus) {
	f.t.Helper()
	j := f.job(id)
	got := make([]pipeline.TaskStatus, len(j.Tasks))
	for i, t := range j.Tasks {
		got[i] = t.Status
	}
	if !slices.Equal(got, want) {
		f.t.Errorf("job %s task statuses = %v, want %v", id, got, want)
	}
}

func (f *fixture) finish(id string, status pipeline.JobStatus, end time.Time) {
	f.t.Helper()
	err := f.s.FinishJob(f.ctx, store.FinishParams{
		JobID: id, Status: status, End: end,
		PendingTasks: pipeline.TaskSkipped, RunningTasks: pipeline.TaskCanceled,
	})
	if err != nil {
		f.t.Fatalf("FinishJob(%s) error: %v", id, err)
	}
}

func (f *fixture) updateTask(id string, t pipeline.Task) {
	f.t.Helper()
	if err := f.s.UpdateTask(f.ctx, id, t); err != nil {
		f.t.Fatalf("UpdateTask(%s, %s) error: %v", id, t.Name, err)
	}
}

func (f *fixture) claim(d *pipeline.Definition, now time.Time) store.ClaimResult {
	f.t.Helper()
	res, err := f.s.Claim(f.ctx, store.ClaimParams{Pipeline: d.Name, Concurrency: d.Concurrency, Now: now})
	if err != nil {
		f.t.Fatalf("Claim(%s) error: %v", d.Name, err)
	}
	return res
}

func (f *fixture) state(name string) pipeline.AdmissionState {
	f.t.Helper()
	states, err := f.s.PipelineStates(f.ctx)
	if err != nil {
		f.t.Fatalf("PipelineStates() error: %v", err)
	}
	return states[name]
}

// wantState checks a pipeline's running count and wait list (IDs in order).
func (f *fixture) wantState(name string, running int, waiting ...string) {
	f.t.Helper()
	st := f.state(name)
	if st.Running != running || !slices.Equal(waitingIDs(st.Waiting), waiting) {
		f.t.Errorf("pipeline %s state = running %d, waiting %v; want running %d, waiting %v",
			name, st.Running, waitingIDs(st.Waiting), running, waiting)
	}
}

func (f *fixture) list(q store.JobQuery) []*pipeline.Job {
	f.t.Helper()
	jobs, err := f.s.Jobs(f.ctx, q)
	if err != nil {
		f.t.Fatalf("Jobs(%+v) error: %v", q, err)
	}
	return jobs
}

// withoutDefinition returns j as a list shows it: without its definition.
func withoutDefinition(j *pipeline.Job) *pipeline.Job {
	c := *j
	c.Definition = nil
	return &c
}

func waitingIDs(ws []pipeline.WaitingJob) []string {
	ids := []string{}
	for _, w := range ws {
		ids = append(ids, w.ID)
	}
	return ids
}

func jobIDs(jobs []*pipeline.Job) []string {
	ids := []string{}
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	return ids
}

// wantTime checks that got is want, in UTC.
func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
	if !got.IsZero() && got.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", what, got.Location())
	}
}

// wantTimePtr checks that got is want (nil for nil), in UTC.
func wantTimePtr(t *testing.T, what string, got, want *time.Time) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Errorf("%s = %v, want %v", what, fmtTimePtr(got), fmtTimePtr(want))
	default:
		wantTime(t, what, *got, *want)
	}
}

func fmtTimePtr(p *time.Time) string {
	if p == nil {
		return "nil"
	}
	return p.String()
}

func ptr[T any](v T) *T { return &v }

// checkJob compares every field of a stored job with the expectation; times by instant, and
// they must be UTC.
func checkJob(t *testing.T, got, want *pipeline.Job) {
	t.Helper()
	if got == nil {
		t.Fatalf("job %s = nil", want.ID)
	}
	type field struct {
		name      string
		got, want any
	}
	for _, fd := range []field{
		{"ID", got.ID, want.ID},
		{"Pipeline", got.Pipeline, want.Pipeline},
		{"Status", got.Status, want.Status},
		{"User", got.User, want.User},
		{"QueuePartition", got.QueuePartition, want.QueuePartition},
		{"LastError", got.LastError, want.LastError},
		{"Errored", got.Errored, want.Errored},
		{"ReplacedBy", got.ReplacedBy, want.ReplacedBy},
		{"Variables", got.Variables, want.Variables},
		{"Definition", got.Definition, want.Definition},
		{"Schedule", got.Schedule, want.Schedule},
	} {
		if !reflect.DeepEqual(fd.got, fd.want) {
			t.Errorf("job %s %s = %#v, want %#v", want.ID, fd.name, fd.got, fd.want)
		}
	}
	wantTime(t, "job "+want.ID+" Created", got.Created, want.Created)
	wantTime(t, "job "+want.ID+" StartAfter", got.StartAfter, want.StartAfter)
	wantTimePtr(t, "job "+want.ID+" Start", got.Start, want.Start)
	wantTimePtr(t, "job "+want.ID+" End", got.End, want.End)
	wantTimePtr(t, "job "+want.ID+" ScheduledFor", got.ScheduledFor, want.ScheduledFor)
	if len(got.Tasks) != len(want.Tasks) {
		t.Errorf("job %s has %d tasks %v, want %d", want.ID, len(got.Tasks), got.Tasks, len(want.Tasks))
		return
	}
	for i := range want.Tasks {
		checkTask(t, want.ID, got.Tasks[i], want.Tasks[i])
	}
}

func checkTask(t *testing.T, jobID string, got, want pipeline.Task) {
	t.Helper()
	what := "job " + jobID + " task " + want.Name
	if got.Name != want.Name || got.Status != want.Status || got.ExitCode != want.ExitCode ||
		got.Errored != want.Errored || got.Error != want.Error || !reflect.DeepEqual(got.DependsOn, want.DependsOn) ||
		got.Attempt != want.Attempt || len(got.Attempts) != len(want.Attempts) || (got.Attempts == nil) != (want.Attempts == nil) {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
	wantTimePtr(t, what+" Start", got.Start, want.Start)
	wantTimePtr(t, what+" End", got.End, want.End)
	for i := range min(len(got.Attempts), len(want.Attempts)) {
		g, w := got.Attempts[i], want.Attempts[i]
		if g.Number != w.Number || g.ExitCode != w.ExitCode || g.Error != w.Error {
			t.Errorf("%s attempt %d = %+v, want %+v", what, i, g, w)
		}
		wantTime(t, fmt.Sprintf("%s attempt %d Start", what, i), g.Start, w.Start)
		wantTime(t, fmt.Sprintf("%s attempt %d End", what, i), g.End, w.End)
	}
}
