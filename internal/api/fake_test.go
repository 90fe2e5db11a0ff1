package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// fakeRunner is a small in-memory Runner for the API tests.
type fakeRunner struct {
	mu        sync.Mutex
	pipelines []pipeline.Info
	jobs      map[string]*pipeline.Job
	// logs maps "jobID/task/stream" to a function returning a fresh reader.
	logs map[string]func() io.Reader

	scheduleErr error
	jobErr      error
	// eachJobErr, when set, fails EachJob after eachJobErrAfter jobs.
	eachJobErr      error
	eachJobErrAfter int
	openLogErr      map[pipeline.LogStream]error

	scheduled []pipeline.ScheduleRequest
	queries   []store.JobQuery
	opened    atomic.Int64
	closed    atomic.Int64
}

func newFakeRunner() *fakeRunner {
	return &fakeRunner{
		jobs:       map[string]*pipeline.Job{},
		logs:       map[string]func() io.Reader{},
		openLogErr: map[pipeline.LogStream]error{},
	}
}

func (f *fakeRunner) addJob(j *pipeline.Job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs[j.ID] = j
}

func (f *fakeRunner) setLog(jobID, task string, stream pipeline.LogStream, open func() io.Reader) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs[jobID+"/"+task+"/"+string(stream)] = open
}

func (f *fakeRunner) Schedule(_ context.Context, req pipeline.ScheduleRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.scheduleErr != nil {
		return "", f.scheduleErr
	}
	known := false
	for _, p := range f.pipelines {
		known = known || p.Name == req.Pipeline
	}
	if !known {
		return "", fmt.Errorf("schedule: pipeline %q: %w", req.Pipeline, pipeline.ErrUnknownPipeline)
	}
	f.scheduled = append(f.scheduled, req)
	return uuid.NewString(), nil
}

func (f *fakeRunner) Cancel(_ context.Context, jobID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[jobID]
	switch {
	case !ok:
		return fmt.Errorf("cancel job %s: %w", jobID, pipeline.ErrJobNotFound)
	case j.Status == pipeline.JobCanceled:
		return nil
	case j.Status.Final():
		return fmt.Errorf("cancel job %s: %w", jobID, pipeline.ErrJobFinished)
	}
	j.Status = pipeline.JobCanceled
	return nil
}

func (f *fakeRunner) Job(_ context.Context, jobID string) (*pipeline.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.jobErr != nil {
		return nil, f.jobErr
	}
	j, ok := f.jobs[jobID]
	if !ok {
		return nil, fmt.Errorf("job %s: %w", jobID, pipeline.ErrJobNotFound)
	}
	cp := *j
	return &cp, nil
}

func (f *fakeRunner) Jobs(_ context.Context, q store.JobQuery) ([]*pipeline.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	jobs := make([]*pipeline.Job, 0, len(f.jobs))
	for _, j := range f.jobs {
		cp := *j
		jobs = append(jobs, &cp)
	}
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].Created.After(jobs[b].Created) })
	return jobs, nil
}

func (f *fakeRunner) EachJob(ctx context.Context, q store.JobQuery, fn func(*pipeline.Job) error) error {
	jobs, err := f.Jobs(ctx, q)
	if err != nil {
		return err
	}
	if q.Limit > 0 && len(jobs) > q.Limit {
		jobs = jobs[:q.Limit]
	}
	for i, j := range jobs {
		if f.eachJobErr != nil && i == f.eachJobErrAfter {
			return f.eachJobErr
		}
		if err := fn(j); err != nil {
			return err
		}
	}
	return nil
}

// EachJobFrom lists like EachJob, a batch of q.Limit jobs at a time; ListPos.Key is the number
// of jobs read. It records the list's query once, at the list's start, without the batch size
// (which is not part of the list asked for). eachJobErr counts the jobs of all batches.
func (f *fakeRunner) EachJobFrom(ctx context.Context, q store.JobQuery, from store.ListPos, fn func(*pipeline.Job) error) (store.ListPos, error) {
	if from.End {
		return from, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if from == (store.ListPos{}) {
		list := q
		list.Limit = 0
		f.queries = append(f.queries, list)
	}
	jobs := make([]*pipeline.Job, 0, len(f.jobs))
	for _, j := range f.jobs {
		cp := *j
		jobs = append(jobs, &cp)
	}
	// Batches need one order: newest first, ties by ID.
	sort.Slice(jobs, func(a, b int) bool {
		if !jobs[a].Created.Equal(jobs[b].Created) {
			return jobs[a].Created.After(jobs[b].Created)
		}
		return jobs[a].ID < jobs[b].ID
	})
	next := from
	for i := int(from.Key); i < len(jobs); i++ {
		if q.Limit > 0 && i-int(from.Key) == q.Limit {
			return next, nil
		}
		if f.eachJobErr != nil && i == f.eachJobErrAfter {
			return from, f.eachJobErr
		}
		if err := fn(jobs[i]); err != nil {
			return from, err
		}
		next.Key = int64(i + 1)
	}
	next.End = true
	return next, nil
}

func (f *fakeRunner) Pipelines(context.Context) ([]pipeline.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]pipeline.Info(nil), f.pipelines...), nil
}

func (f *fakeRunner) OpenLog(_ context.Context, jobID, task string, stream pipeline.LogStream) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.openLogErr[stream]; err != nil {
		return nil, err
	}
	j, ok := f.jobs[jobID]
	if !ok {
		return nil, pipeline.ErrJobNotFound
	}
	if j.Task(task) == nil {
		return nil, pipeline.ErrTaskNotFound
	}
	var r io.Reader = strings.NewReader("")
	if open, ok := f.logs[jobID+"/"+task+"/"+string(stream)]; ok {
		r = open()
	}
	f.opened.Add(1)
	return &countingCloser{Reader: r, closed: &f.closed}, nil
}

// countingCloser counts Close calls, so tests can check that every opened log is closed.
type countingCloser struct {
	io.Reader
	closed *atomic.Int64
	once   sync.Once
}

func (c *countingCloser) Close() error {
	c.once.Do(func() { c.closed.Add(1) })
	return nil
}

var errBoom = errors.New("disk on fire: /var/lib/prunner/secret-path")

func (f *fakeRunner) FollowLog(ctx context.Context, jobID, task string, from map[pipeline.LogStream]int64) (<-chan pipeline.LogChunk, error) {
	ch := make(chan pipeline.LogChunk)
	var chunks []pipeline.LogChunk
	for _, stream := range []pipeline.LogStream{pipeline.Stdout, pipeline.Stderr} {
		f.mu.Lock()
		open := f.logs[jobID+"/"+task+"/"+string(stream)]
		f.mu.Unlock()
		if open == nil {
			continue
		}
		data, err := io.ReadAll(open())
		if err != nil {
			return nil, err
		}
		if off := from[stream]; off < int64(len(data)) {
			chunks = append(chunks, pipeline.LogChunk{Stream: stream, Offset: off, Data: data[off:]})
		}
	}
	go func() {
		defer close(ch)
		for _, c := range chunks {
			select {
			case ch <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

func (f *fakeRunner) WaitInfo(_ context.Context, jobID string) (*pipeline.WaitInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[jobID]
	if !ok {
		return nil, pipeline.ErrJobNotFound
	}
	if j.Status != pipeline.JobQueued {
		return nil, nil
	}
	return &pipeline.WaitInfo{Position: 1, Of: 1, Partition: j.QueuePartition, Reason: "concurrency 1/1 reached"}, nil
}

// OpenAttemptLog serves the log set for "jobID/task#N/stream" (attempts beyond 1), or for
// attempt 1 the one OpenLog serves when the task was not retried.
func (f *fakeRunner) OpenAttemptLog(ctx context.Context, jobID, task string, attempt int, stream pipeline.LogStream) (io.ReadCloser, error) {
	f.mu.Lock()
	j, ok := f.jobs[jobID]
	var t *pipeline.Task
	if ok {
		t = j.Task(task)
	}
	open := f.logs[fmt.Sprintf("%s/%s#%d/%s", jobID, task, attempt, stream)]
	f.mu.Unlock()
	switch {
	case !ok:
		return nil, pipeline.ErrJobNotFound
	case t == nil:
		return nil, pipeline.ErrTaskNotFound
	case attempt < 1 || attempt > max(t.Attempt, 1):
		return nil, pipeline.ErrAttemptNotFound
	case open == nil && attempt == max(t.Attempt, 1):
		return f.OpenLog(ctx, jobID, task, stream)
	}
	var r io.Reader = strings.NewReader("")
	if open != nil {
		r = open()
	}
	f.opened.Add(1)
	return &countingCloser{Reader: r, closed: &f.closed}, nil
}
